"""A synthetic corpus of blog comments to bootstrap a classifier before any site has labels.

:func:`generate_corpus` writes ``n`` labelled comments, deterministic by seed: the same
``(n, seed, spam_ratio)`` gives the same comments, in the same order, on every machine
and Python version (only ``random.Random(seed)`` is drawn from, and every choice is made
from tuples, never from sets or anything whose order depends on ``hash()``).

Ham is on-topic discussion of blog posts (cooking, programming, travel, gardening,
photography, news, fitness, personal finance, music, books, DIY, cycling) in English,
French, German, Spanish, Portuguese, Japanese, Russian and Arabic: questions, thanks,
disagreement, corrections, code in backticks, links to documentation. Spam is SEO link
spam, pharma, casino, crypto scams, channel promotion, gibberish, keyword stuffing, fake
praise with a link, "contact me on WhatsApp", loan offers and recovery scams. Each kind
is written from templates with many slots, synonyms, typos and casing changes, and the
two classes overlap on purpose (ham that links to docs or mentions a newsletter; spam
that only praises, with its link in the author URL), so that a classifier must learn
more than a handful of tokens. The author columns (name, email, URL, IP, user agent,
referrer, history counts) are drawn from overlapping distributions as well.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from service.classifier.datasets import Dataset, dataset_fingerprint
from service.classifier.types import CommentRecord

__all__ = ["generate_corpus"]

Vocab = Mapping[str, Sequence[str]]


def generate_corpus(n: int, *, seed: int = 0, spam_ratio: float = 0.4) -> Dataset:
    """``n`` synthetic comments, ``round(n * spam_ratio)`` of them spam, in shuffled order.

    The result is a :class:`~service.classifier.datasets.Dataset` of format "bootstrap"
    whose source is ``"bootstrap:seed=S,n=N"``. Raises ``ValueError`` when ``n`` is
    negative or ``spam_ratio`` is outside [0, 1].
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= spam_ratio <= 1.0:
        raise ValueError(f"spam_ratio must be within [0, 1], got {spam_ratio}")
    rng = random.Random(seed)
    n_spam = round(n * spam_ratio)
    labels = [1] * n_spam + [0] * (n - n_spam)
    rng.shuffle(labels)
    records = [_spam(rng) if label else _ham(rng) for label in labels]
    return Dataset(
        records=records,
        labels=labels,
        format="bootstrap",
        source=f"bootstrap:seed={seed},n={n}",
        fingerprint=dataset_fingerprint(records, labels),
    )


# --- slot filling --------------------------------------------------------------------

Generator = Callable[[random.Random], str]
_RAW_SLOTS: Final = frozenset({"code", "code2", "code_block"})


class _Slots(dict[str, str]):
    """A ``str.format_map`` mapping that draws each slot the first time a template uses it,
    from the first vocabulary that has it, else from a generator; a slot used twice in one
    comment keeps its value, as a writer would repeat the same word."""

    def __init__(self, rng: random.Random, vocabs: Sequence[Vocab]) -> None:
        super().__init__()
        self._rng = rng
        self._vocabs = vocabs

    def __missing__(self, key: str) -> str:
        for vocab in self._vocabs:
            choices = vocab.get(key)
            if choices is not None:
                value = self._rng.choice(choices)
                # Vocabulary entries may hold slots of their own ("{num}0 free spins");
                # code snippets are inserted as they are, braces and all.
                if "{" in value and key not in _RAW_SLOTS:
                    value = value.format_map(self)
                break
        else:
            value = _GENERATORS[key](self._rng)
        self[key] = value
        return value


def _fill(rng: random.Random, template: str, *vocabs: Vocab) -> str:
    return template.format_map(_Slots(rng, vocabs))


# --- author columns ------------------------------------------------------------------

_ISP_FIRST_OCTETS: Final = (
    24,
    31,
    37,
    46,
    62,
    67,
    71,
    73,
    76,
    78,
    79,
    81,
    82,
    84,
    86,
    88,
    90,
    92,
    93,
    94,
    95,
    98,
    99,
    107,
    108,
    109,
    151,
    173,
    174,
    176,
    178,
    185,
    186,
    187,
    189,
    190,
    200,
    201,
    212,
    217,
)
# Comment spam comes disproportionately (not only) from a few hosting and proxy ranges.
_HOSTING_PREFIXES: Final = (
    "5.188.62",
    "45.134.26",
    "91.200.12",
    "185.220.101",
    "193.32.162",
    "103.152.220",
    "146.70.88",
    "194.26.29",
    "37.120.210",
    "212.102.40",
)


def _ipv4(rng: random.Random) -> str:
    first = rng.choice(_ISP_FIRST_OCTETS)
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _ip(rng: random.Random, spam: bool) -> str | None:
    roll = rng.random()
    if roll < 0.03:
        return None
    if spam and roll < 0.45:
        return f"{rng.choice(_HOSTING_PREFIXES)}.{rng.randrange(1, 255)}"
    if roll < 0.12:
        groups = ":".join(f"{rng.randrange(65536):x}" for _ in range(3))
        return f"{rng.choice(('2a01:e0a', '2001:4860', '2600:1700', '2a02:8108'))}:{groups}::1"
    return _ipv4(rng)


def _user_agent(rng: random.Random, spam: bool) -> str | None:
    roll = rng.random()
    if spam and roll < 0.14:
        return rng.choice(_BOT_AGENTS)
    if roll < 0.02:
        return None
    if spam and roll < 0.25:
        return rng.choice(_OLD_AGENTS)
    kind = rng.randrange(6)
    chrome = rng.randrange(112, 132)
    firefox = rng.randrange(115, 134)
    if kind == 0:
        return (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{chrome}.0.0.0 Safari/537.36"
        )
    if kind == 1:
        os_name = rng.choice(
            (
                "Windows NT 10.0; Win64; x64",
                "X11; Linux x86_64",
                "Macintosh; Intel Mac OS X 10.15",
                "X11; Ubuntu; Linux x86_64",
            )
        )
        return f"Mozilla/5.0 ({os_name}; rv:{firefox}.0) Gecko/20100101 Firefox/{firefox}.0"
    if kind == 2:
        version = rng.choice(("16.6", "17.1", "17.4", "17.6", "18.0", "18.1"))
        return (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            f"(KHTML, like Gecko) Version/{version} Safari/605.1.15"
        )
    if kind == 3:
        ios = rng.choice(("16_7", "17_2", "17_5", "18_0", "18_1"))
        return (
            f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 "
            f"(KHTML, like Gecko) Version/{ios.replace('_', '.')} Mobile/15E148 Safari/604.1"
        )
    if kind == 4:
        device = rng.choice(("SM-S918B", "Pixel 7", "Pixel 8 Pro", "SM-A546B", "M2101K6G"))
        return (
            f"Mozilla/5.0 (Linux; Android {rng.randrange(11, 15)}; {device}) AppleWebKit/537.36 "
            f"(KHTML, like Gecko) Chrome/{chrome}.0.0.0 Mobile Safari/537.36"
        )
    return (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{chrome}.0.0.0 Safari/537.36 Edg/{chrome}.0.0.0"
    )


_BOT_AGENTS: Final = (
    "python-requests/2.31.0",
    "python-requests/2.28.1",
    "curl/8.4.0",
    "Go-http-client/1.1",
    "Java/1.8.0_181",
    "Wget/1.21.2",
    "okhttp/4.9.3",
    "",
)
_OLD_AGENTS: Final = (
    "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:40.0) Gecko/20100101 Firefox/40.1",
    "Mozilla/5.0 (Windows NT 6.1) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/41.0.2228.0 Safari/537.36",
    "Opera/9.80 (Windows NT 6.0) Presto/2.12.388 Version/12.14",
)

_BLOG_HOSTS: Final = {
    "cooking": ("saltandcrumb.blog", "thekitchennotes.net", "smittenpans.com"),
    "programming": ("devnotes.io", "blog.bitshift.dev", "til.example-code.org"),
    "travel": ("slowroads.travel", "nomadnotebook.com", "wanderlines.net"),
    "gardening": ("mudandroots.org", "thebackyardplot.com", "greenthumbdiary.net"),
    "photography": ("f8andbethere.com", "lightroomdiaries.net", "grainandfocus.blog"),
    "news": ("localledger.news", "thedailybrief.org", "civicwire.net"),
    "fitness": ("runningslow.blog", "liftlog.net", "couchtofive.org"),
    "finance": ("frugalfolio.com", "thesavingsjar.net", "plainmoney.blog"),
    "music": ("basslineblog.com", "vinylcorner.net", "thechordchart.org"),
    "books": ("marginalia.blog", "thereadingnook.net", "dogearedpages.com"),
    "diy": ("sawdustweekend.com", "fixitfriday.net", "thehandyhouse.org"),
    "cycling": ("spokeandchain.net", "gravelgrinders.blog", "cadencediary.com"),
}


def _permalink(rng: random.Random, topic: str) -> str:
    host = rng.choice(_BLOG_HOSTS[topic])
    words = rng.sample(_SLUG_WORDS[topic], 3)
    year = rng.randrange(2016, 2026)
    return f"https://{host}/{year}/{rng.randrange(1, 13):02d}/{'-'.join(words)}/"


_SLUG_WORDS: Final = {
    "cooking": (
        "sourdough",
        "risotto",
        "weeknight",
        "braise",
        "ramen",
        "pie",
        "brine",
        "vegan",
        "curry",
        "stock",
        "bread",
        "summer",
        "tart",
    ),
    "programming": (
        "python",
        "rust",
        "async",
        "postgres",
        "testing",
        "docker",
        "git",
        "refactoring",
        "types",
        "api",
        "cache",
        "queues",
        "lessons",
    ),
    "travel": (
        "lisbon",
        "kyoto",
        "hiking",
        "budget",
        "train",
        "patagonia",
        "packing",
        "slow",
        "weekend",
        "island",
        "guide",
        "road-trip",
    ),
    "gardening": (
        "tomatoes",
        "compost",
        "raised-beds",
        "pruning",
        "seeds",
        "winter",
        "roses",
        "soil",
        "mulch",
        "herbs",
        "balcony",
    ),
    "photography": (
        "film",
        "35mm",
        "portraits",
        "golden-hour",
        "lenses",
        "editing",
        "street",
        "astro",
        "raw",
        "mirrorless",
        "light",
    ),
    "news": (
        "council",
        "budget",
        "election",
        "transit",
        "weather",
        "schools",
        "housing",
        "library",
        "vote",
        "report",
    ),
    "fitness": (
        "marathon",
        "squats",
        "recovery",
        "plan",
        "beginner",
        "stretching",
        "zone-2",
        "strength",
        "injury",
        "shoes",
    ),
    "finance": (
        "budget",
        "index-funds",
        "mortgage",
        "savings",
        "taxes",
        "retirement",
        "debt",
        "pension",
        "emergency-fund",
        "inflation",
    ),
    "music": (
        "guitar",
        "jazz",
        "vinyl",
        "chords",
        "synth",
        "practice",
        "album",
        "review",
        "theory",
        "piano",
    ),
    "books": (
        "review",
        "novel",
        "translation",
        "reading-list",
        "sci-fi",
        "poetry",
        "memoir",
        "book-club",
        "library",
        "classics",
    ),
    "diy": (
        "shelves",
        "drywall",
        "tiling",
        "workbench",
        "wiring",
        "paint",
        "deck",
        "plumbing",
        "insulation",
        "tools",
    ),
    "cycling": (
        "gravel",
        "tubeless",
        "commute",
        "gearing",
        "bikepacking",
        "chain",
        "saddle",
        "touring",
        "climbs",
        "brakes",
    ),
}


def _history(rng: random.Random, spam: bool) -> tuple[int, int]:
    """(approved_count, spam_count): regular readers have approved comments; a spammer has
    mostly none, and sometimes earlier spam; compromised and patient accounts blur both."""
    if spam:
        approved = 0 if rng.random() < 0.9 else rng.randrange(1, 4)
        spam_count = 0 if rng.random() < 0.55 else min(int(rng.paretovariate(0.9)), 60)
        return approved, spam_count
    approved = 0 if rng.random() < 0.3 else min(int(rng.paretovariate(0.8)), 400)
    spam_count = 0 if rng.random() < 0.96 else rng.randrange(1, 3)
    return approved, spam_count


def _ascii_handle(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch in string.ascii_lowercase)


def _ham_author(rng: random.Random, lang: _Lang) -> tuple[str | None, str | None, str | None]:
    first = rng.choice(lang.first_names)
    last = rng.choice(lang.last_names)
    roll = rng.random()
    if roll < 0.45:
        name = f"{first} {last}"
    elif roll < 0.65:
        name = first
    elif roll < 0.8:
        name = rng.choice(_HAM_HANDLES)
    elif roll < 0.9:
        name = f"{first} {last[0]}."
    else:
        name = f"{first.lower()}{rng.randrange(70, 100) if rng.random() < 0.5 else ''}"
    if rng.random() < 0.04:
        name = ""  # anonymous comment forms exist
    local_first = _ascii_handle(first) or rng.choice(_HAM_HANDLES)
    local_last = _ascii_handle(last) or str(rng.randrange(10, 99))
    email: str | None = None
    if rng.random() < 0.82:
        local = rng.choice(
            (
                f"{local_first}.{local_last}",
                f"{local_first}{rng.randrange(1, 99)}",
                f"{local_first[0]}{local_last}",
                f"{local_last}.{local_first}",
                local_first,
            )
        )
        email = f"{local}@{rng.choice(lang.email_domains)}"
    url: str | None = None
    roll = rng.random()
    if roll < 0.12:
        url = f"https://github.com/{local_first}{local_last[:3]}"
    elif roll < 0.22:
        url = f"https://{local_first}{local_last}.{rng.choice(('com', 'net', 'me', 'dev'))}"
    elif roll < 0.27:
        url = f"https://mastodon.social/@{local_first}"
    return name or None, email, url


_HAM_HANDLES: Final = (
    "gardenlover",
    "codemonkey",
    "breadhead",
    "slowtraveler",
    "night_owl",
    "pixelpeeper",
    "trailrunner",
    "bookworm",
    "tinkerer",
    "thriftyjoe",
    "jazzcat",
    "wrenchy",
    "curious_reader",
    "old_timer",
    "firsttimecommenter",
    "longtimelurker",
    "spokesman",
    "ferment_fan",
    "lensflare",
    "dad_of_three",
    "sofia_cooks",
    "retired_engineer",
    "the_gardener",
    "coffee_addict",
)

_SPAM_NAMES: Final = (
    "Buy Viagra Online",
    "Best SEO Company",
    "cheap essay writing",
    "Crypto Expert",
    "Online Casino",
    "Payday Loans",
    "Replica Watches",
    "Instagram Followers",
    "seo services",
    "Web Design Agency",
    "Bitcoin Recovery",
    "Loan Officer",
    "Dr. Ogun",
    "Essay Writer",
    "Keto Diet Pills",
    "Free Spins",
    "Forex Signals",
    "Escort Service",
    "CBD Oil Shop",
    "Slot Gacor",
    "Mark Trading",
    "Investment Manager",
    "Cheap Flights Deals",
)


def _spam_author(rng: random.Random) -> tuple[str | None, str | None, str | None]:
    roll = rng.random()
    lang = _LANGS["en"] if rng.random() < 0.8 else rng.choice(_LANG_LIST)
    if roll < 0.35:
        name: str | None = rng.choice(_SPAM_NAMES)
    elif roll < 0.8:
        name = f"{rng.choice(lang.first_names)} {rng.choice(lang.last_names)}"
    elif roll < 0.95:
        name = _gibberish_word(rng, 5, 11) + (str(rng.randrange(100)) if rng.random() < 0.5 else "")
    else:
        name = None
    handle = _gibberish_word(rng, 4, 9) if rng.random() < 0.5 else _ascii_handle(name or "x")
    email: str | None = None
    if rng.random() < 0.9:
        domain = rng.choice(_SPAM_EMAIL_DOMAINS) if rng.random() < 0.7 else _spam_domain(rng, ())
        email = f"{handle or 'info'}{rng.randrange(1000) if rng.random() < 0.6 else ''}@{domain}"
    url = _spam_url(rng) if rng.random() < 0.6 else None
    return name, email, url


_SPAM_EMAIL_DOMAINS: Final = (
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "hotmail.com",
    "mail.ru",
    "yandex.com",
    "protonmail.com",
    "tempmail.plus",
    "aol.com",
    "gmx.com",
    "inbox.lv",
    "rambler.ru",
)


# --- generated slot values -----------------------------------------------------------

_DOMAIN_HEADS: Final = (
    "best",
    "cheap",
    "buy",
    "top",
    "pro",
    "smart",
    "fast",
    "easy",
    "mega",
    "super",
    "online",
    "global",
    "my",
    "get",
    "true",
    "prime",
    "elite",
    "royal",
    "lucky",
    "gold",
    "win",
    "the",
)
_DOMAIN_TAILS: Final = (
    "pills",
    "meds",
    "pharma",
    "casino",
    "slots",
    "bet",
    "loans",
    "cash",
    "crypto",
    "coin",
    "trade",
    "seo",
    "rank",
    "traffic",
    "essay",
    "followers",
    "deals",
    "shop",
    "replica",
    "dating",
    "profit",
    "invest",
    "wins",
    "store",
    "hub",
    "leads",
    "views",
)
_SPAM_TLDS: Final = (
    "com",
    "net",
    "xyz",
    "top",
    "info",
    "online",
    "site",
    "ru",
    "biz",
    "club",
    "shop",
    "pro",
    "io",
    "live",
    "store",
    "click",
    "co",
    "in",
)


def _spam_domain(rng: random.Random, tails: Sequence[str]) -> str:
    head = rng.choice(_DOMAIN_HEADS)
    tail = rng.choice(tails or _DOMAIN_TAILS)
    shape = rng.randrange(5)
    if shape == 0:
        name = f"{head}{tail}"
    elif shape == 1:
        name = f"{head}-{tail}"
    elif shape == 2:
        name = f"{tail}{rng.randrange(1, 999)}"
    elif shape == 3:
        name = f"{head}{tail}{rng.choice(('online', 'now', 'hq', '24', '365', 'world'))}"
    else:
        name = f"{tail}-{rng.choice(_DOMAIN_HEADS)}-{rng.choice(_DOMAIN_TAILS)}"
    return f"{name}.{rng.choice(_SPAM_TLDS)}"


def _spam_url(rng: random.Random, tails: Sequence[str] = ()) -> str:
    domain = _spam_domain(rng, tails)
    scheme = rng.choice(("https://", "https://", "http://", "https://www.", "www.", ""))
    path = rng.choice(
        (
            "",
            "/",
            f"/{rng.choice(_DOMAIN_TAILS)}",
            f"/?ref={_code(rng, 6)}",
            f"/go/{rng.randrange(10, 9999)}",
            f"/{rng.choice(_DOMAIN_HEADS)}-{rng.choice(_DOMAIN_TAILS)}.html",
            f"/index.php?id={rng.randrange(100, 99999)}",
        )
    )
    return f"{scheme}{domain}{path}"


def _obfuscated_url(rng: random.Random) -> str:
    domain = _spam_domain(rng, ())
    name, _, tld = domain.rpartition(".")
    return rng.choice(
        (
            f"{name} . {tld}",
            f"{name} dot {tld}",
            f"{name}(.){tld}",
            f"hxxp://{domain}",
            f"www . {name} . {tld}",
            f"{domain.upper()}",
        )
    )


def _short_url(rng: random.Random) -> str:
    host = rng.choice(("bit.ly", "tinyurl.com", "cutt.ly", "t.co", "rb.gy", "is.gd"))
    return f"https://{host}/{_code(rng, rng.randrange(5, 9))}"


_ALNUM: Final = string.ascii_letters + string.digits


def _code(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(_ALNUM, k=length))


def _phone(rng: random.Random) -> str:
    country = rng.choice(("+1", "+44", "+234", "+91", "+27", "+971", "+63", "+1", "+234"))
    digits = f"{rng.randrange(10**10):010d}"
    shape = rng.randrange(3)
    if shape == 0:
        return f"{country}{digits}"
    if shape == 1:
        return f"{country} {digits[:3]} {digits[3:6]} {digits[6:]}"
    return f"{country} ({digits[:3]}) {digits[3:6]}-{digits[6:]}"


def _gibberish_word(rng: random.Random, low: int, high: int) -> str:
    """A pronounceable nonsense word: consonants and vowels in turn."""
    length = rng.randrange(low, high)
    consonants = rng.choices("bcdfghjklmnprstvwxz", k=(length + 1) // 2)
    vowels = rng.choices("aeiouy", k=length // 2)
    letters = [c + v for c, v in zip(consonants, vowels, strict=False)]
    return "".join(letters) + (consonants[-1] if length % 2 else "")


def _keyboard_mash(rng: random.Random) -> str:
    rows = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "qazwsx", "1234567890")
    return "".join(rng.choice(rng.choice(rows)) for _ in range(rng.randrange(6, 14)))


_GENERATORS: Final[Mapping[str, Generator]] = {
    "url": _spam_url,
    "url2": _spam_url,
    "pharma_url": lambda rng: _spam_url(rng, ("pills", "meds", "pharma", "rx", "health")),
    "casino_url": lambda rng: _spam_url(rng, ("casino", "slots", "bet", "spins", "wins")),
    "crypto_url": lambda rng: _spam_url(rng, ("crypto", "coin", "trade", "profit", "invest")),
    "loan_url": lambda rng: _spam_url(rng, ("loans", "cash", "credit", "finance")),
    "seo_url": lambda rng: _spam_url(rng, ("seo", "rank", "traffic", "leads", "backlinks")),
    "domain": lambda rng: _spam_domain(rng, ()),
    "obfuscated": _obfuscated_url,
    "short_url": _short_url,
    "phone": _phone,
    "spam_email": lambda rng: (
        f"{_gibberish_word(rng, 4, 9)}{rng.randrange(100)}@{rng.choice(_SPAM_EMAIL_DOMAINS)}"
    ),
    "tg": lambda rng: (
        f"@{rng.choice(('crypto', 'invest', 'trade', 'mark', 'anna', 'btc'))}"
        f"_{rng.choice(('pro', 'official', 'expert', 'signals', 'help'))}{rng.randrange(1, 99)}"
    ),
    "channel": lambda rng: rng.choice(
        (
            f"youtube.com/@{_gibberish_word(rng, 5, 10)}",
            f"youtube.com/c/{_code(rng, 8)}",
            f"twitch.tv/{_gibberish_word(rng, 5, 10)}",
            f"instagram.com/{_gibberish_word(rng, 5, 9)}",
            f"tiktok.com/@{_gibberish_word(rng, 4, 9)}{rng.randrange(99)}",
        )
    ),
    "price": lambda rng: (
        rng.choice(("$", "$", "€", "£")) + f"{rng.randrange(1, 99)}.{rng.randrange(100):02d}"
    ),
    "amount": lambda rng: f"{rng.choice(('$', '$', '€', '£'))}{rng.randrange(2, 98) * 1000:,}",
    "pct": lambda rng: str(rng.choice((2, 3, 5, 10, 15, 20, 30, 50, 100, 200, 300, 500))),
    "rate": lambda rng: rng.choice(("2", "3", "1.5", "2.5", "3.5", "0.5")),
    "num": lambda rng: str(rng.randrange(2, 60)),
    "big_num": lambda rng: f"{rng.randrange(2, 99) * 1000:,}",
    "year": lambda rng: str(rng.randrange(2012, 2026)),
    "percent": lambda rng: str(rng.randrange(5, 95)),
    "version": lambda rng: f"{rng.randrange(1, 8)}.{rng.randrange(0, 20)}",
    "pyver": lambda rng: rng.choice(("3.9", "3.10", "3.11", "3.12", "3.13")),
    "issue": lambda rng: str(rng.randrange(12, 48000)),
    "gibberish": lambda rng: " ".join(
        _gibberish_word(rng, 3, 10) for _ in range(rng.randrange(3, 12))
    ),
    "mash": _keyboard_mash,
    "minutes": lambda rng: str(rng.choice((5, 10, 15, 20, 25, 30, 40, 45, 60, 90))),
    "temp": lambda rng: str(rng.choice((160, 175, 180, 190, 200, 220, 230, 250))),
    "km": lambda rng: str(rng.randrange(3, 220)),
}


# --- languages -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Lang:
    code: str
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    email_domains: tuple[str, ...]
    openers: tuple[str, ...]
    bodies: tuple[str, ...]
    questions: tuple[str, ...]
    closers: tuple[str, ...]
    short: tuple[str, ...]
    links: tuple[str, ...]
    common: Vocab
    topics: Mapping[str, Vocab]


# Every topic vocabulary fills the same slots, so that every body template fits every
# topic: thing/thing2 (noun phrases), step (an activity), problem (what went wrong),
# tip (a suggestion), tool (an object), fact (a correction-worthy claim).
_EN_TOPICS: Final[Mapping[str, Vocab]] = {
    "cooking": {
        "thing": (
            "the sourdough recipe",
            "this risotto",
            "the chicken brine",
            "the miso glaze",
            "your pie crust method",
            "the lentil soup",
            "the ramen broth",
            "the banana bread",
        ),
        "thing2": (
            "the starter",
            "the stock",
            "the dough",
            "the sauce",
            "the marinade",
            "the cast-iron pan",
            "the oven temperature",
            "the resting time",
        ),
        "step": (
            "proofing the dough overnight",
            "toasting the rice first",
            "salting the water",
            "browning the butter",
            "blooming the spices",
            "deglazing with white wine",
            "letting it rest for {minutes} minutes",
        ),
        "problem": (
            "the crust came out soggy",
            "the sauce split",
            "it stuck to the pan",
            "the bread didn't rise",
            "it was way too salty",
            "the middle stayed raw",
        ),
        "tip": (
            "adding a splash of vinegar at the end",
            "using bread flour instead",
            "baking it at {temp} degrees",
            "a pinch of MSG",
            "weighing the flour",
            "swapping the butter for olive oil",
        ),
        "tool": (
            "a Dutch oven",
            "a stand mixer",
            "a probe thermometer",
            "a pizza steel",
            "a mandoline",
            "a wok",
        ),
        "fact": (
            "you need to rinse the rice",
            "searing seals in the juices",
            "the alcohol all cooks off",
            "salt makes water boil much faster",
        ),
    },
    "programming": {
        "thing": (
            "the async example",
            "this refactoring",
            "the migration script",
            "your take on type hints",
            "the caching layer",
            "the retry decorator",
            "the benchmark",
            "the section on connection pooling",
        ),
        "thing2": (
            "the test suite",
            "the ORM",
            "the event loop",
            "the query planner",
            "the CI pipeline",
            "the borrow checker",
            "the GC",
            "the type checker",
        ),
        "step": (
            "pinning the dependencies",
            "adding an index on the foreign key",
            "running the tests in parallel",
            "switching to a connection pool",
            "profiling before optimising",
            "bisecting the regression",
        ),
        "problem": (
            "the build broke on Windows",
            "it deadlocked under load",
            "mypy complained about the generics",
            "the query went from 3 ms to 2 s",
            "memory kept growing",
            "the tests were flaky in CI",
        ),
        "tip": (
            "using `git bisect`",
            "setting `statement_timeout`",
            "a `functools.cache`",
            "`EXPLAIN ANALYZE` on the slow query",
            "property-based tests",
            "a feature flag instead of a long-lived branch",
        ),
        "tool": (
            "pytest",
            "ruff",
            "PostgreSQL {version}",
            "Rust",
            "Go",
            "Docker",
            "Redis",
            "SQLite",
            "TypeScript",
            "Kubernetes",
            "Python {pyver}",
        ),
        "fact": (
            "the GIL was removed in {pyver}",
            "SQLite can't handle concurrent readers",
            "`async` makes CPU-bound code faster",
            "Rust has no unsafe code",
        ),
    },
    "travel": {
        "thing": (
            "the Lisbon itinerary",
            "your packing list",
            "the night train post",
            "the Kyoto guide",
            "the budget breakdown",
            "the hike to the glacier",
            "the island hopping route",
        ),
        "thing2": (
            "the rail pass",
            "the hostel",
            "the ferry",
            "the visa",
            "the trailhead",
            "the old town",
            "the market",
        ),
        "step": (
            "booking the trains early",
            "travelling in shoulder season",
            "staying outside the centre",
            "walking instead of taking taxis",
            "getting a local SIM",
        ),
        "problem": (
            "the ferry was cancelled",
            "our bags got lost",
            "the trail was closed",
            "everything was booked out",
            "the prices doubled since your post",
        ),
        "tip": (
            "going at sunrise to avoid the crowds",
            "buying the pass at the station",
            "taking the {km} km detour along the coast",
            "eating where the locals queue",
        ),
        "tool": ("a daypack", "offline maps", "a rail pass", "packing cubes", "a water filter"),
        "fact": (
            "you need a visa for a {num}-day stay",
            "the museum is free on Mondays",
            "the bus runs every hour",
        ),
    },
    "gardening": {
        "thing": (
            "the raised bed guide",
            "your compost post",
            "the tomato trellis",
            "the pruning advice",
            "the seed starting schedule",
            "the balcony herb garden",
        ),
        "thing2": (
            "the seedlings",
            "the roses",
            "the soil",
            "the mulch",
            "the basil",
            "the fig tree",
            "the lawn",
        ),
        "step": (
            "hardening off the seedlings",
            "pruning in late winter",
            "turning the compost",
            "watering in the morning",
            "adding leaf mould",
            "rotating the beds",
        ),
        "problem": (
            "the leaves turned yellow",
            "aphids took over",
            "the seedlings got leggy",
            "slugs ate everything",
            "blossom end rot hit half the tomatoes",
        ),
        "tip": (
            "a layer of wood chips",
            "companion planting with marigolds",
            "crushed eggshells",
            "watering deeply twice a week",
            "a soil test first",
        ),
        "tool": (
            "a soil thermometer",
            "a broadfork",
            "bypass pruners",
            "a cold frame",
            "drip irrigation",
        ),
        "fact": (
            "coffee grounds make soil acidic",
            "you should prune roses in autumn",
            "tomatoes need full shade",
        ),
    },
    "photography": {
        "thing": (
            "the golden hour shots",
            "your film scans",
            "the portrait lighting setup",
            "the lens comparison",
            "the astro photos",
            "the street photography post",
        ),
        "thing2": (
            "the 50mm",
            "the histogram",
            "the white balance",
            "the tripod",
            "the RAW files",
            "the shutter speed",
            "the ISO",
        ),
        "step": (
            "shooting at f/8",
            "exposing for the highlights",
            "using a polariser",
            "bracketing the exposures",
            "shooting in RAW",
            "focus stacking",
        ),
        "problem": (
            "everything came out soft",
            "the skies were blown out",
            "the colours looked muddy",
            "the autofocus kept hunting",
        ),
        "tip": (
            "a 1/{num} shutter speed",
            "back-button focus",
            "a cheap reflector",
            "ISO {big_num} and a bit of noise reduction",
            "shooting from lower down",
        ),
        "tool": ("a 35mm prime", "a mirrorless body", "a light meter", "an ND filter", "a 70-200"),
        "fact": (
            "crop sensors change the focal length",
            "higher megapixels always help",
            "f/1.4 gives more depth of field",
        ),
    },
    "news": {
        "thing": (
            "the article on the council budget",
            "the transit report",
            "the piece on school funding",
            "the housing numbers",
            "the library story",
            "the weather summary",
        ),
        "thing2": (
            "the council",
            "the new bus line",
            "the survey",
            "the zoning rules",
            "the report",
            "the turnout figures",
        ),
        "step": (
            "reading the full report",
            "comparing it with last year",
            "going to the public meeting",
            "checking the original source",
        ),
        "problem": (
            "the chart has the wrong year",
            "the quote is missing context",
            "the headline overstates it",
            "the link to the report is broken",
        ),
        "tip": (
            "linking the primary source",
            "adding the turnout by district",
            "a correction note at the top",
        ),
        "tool": ("the open data portal", "the minutes", "the budget spreadsheet"),
        "fact": (
            "the budget rose by {percent}%",
            "the vote was unanimous",
            "the line opens next year",
        ),
    },
    "fitness": {
        "thing": (
            "the beginner running plan",
            "the squat form post",
            "the zone 2 article",
            "the stretching routine",
            "your marathon recap",
        ),
        "thing2": (
            "the long run",
            "the deload week",
            "the warm-up",
            "the rest days",
            "the intervals",
        ),
        "step": (
            "running slower on easy days",
            "adding a rest day",
            "foam rolling",
            "tracking sleep",
            "increasing mileage by {percent}% a week",
        ),
        "problem": (
            "my knee started hurting",
            "I plateaued after {num} weeks",
            "I got shin splints",
            "I couldn't finish the intervals",
        ),
        "tip": ("strength work twice a week", "a proper warm-up", "new shoes every {num}0 km"),
        "tool": ("a heart rate strap", "a kettlebell", "a foam roller", "a running watch"),
        "fact": ("stretching prevents injuries", "you burn more fat fasted"),
    },
    "finance": {
        "thing": (
            "the budgeting spreadsheet",
            "the index fund explainer",
            "the mortgage comparison",
            "your emergency fund post",
            "the tax guide",
        ),
        "thing2": (
            "the fees",
            "the interest rate",
            "the pension",
            "the savings account",
            "the loan calculator",
        ),
        "step": (
            "automating the transfers",
            "paying off the highest rate first",
            "checking the total expense ratio",
            "rebalancing once a year",
        ),
        "problem": (
            "the calculator assumes a fixed rate",
            "the fees ate most of the gains",
            "the numbers don't add up for {year}",
        ),
        "tip": (
            "a separate account for bills",
            "the 50/30/20 split",
            "comparing the APR, not the monthly payment",
        ),
        "tool": ("a budgeting app", "a spreadsheet", "a high-yield savings account"),
        "fact": ("the rate is {rate}% for everyone", "the allowance doubled in {year}"),
    },
    "music": {
        "thing": (
            "the chord progression breakdown",
            "the album review",
            "the practice routine",
            "the synth patch",
            "the vinyl setup post",
        ),
        "thing2": ("the bridge", "the second verse", "the mix", "the bassline", "the turntable"),
        "step": (
            "practising with a metronome",
            "learning the modes",
            "transcribing solos",
            "playing along with the record",
        ),
        "problem": (
            "the recording sounds thin",
            "I can't get the barre chord clean",
            "the timing drifts",
        ),
        "tip": (
            "slowing it down to {percent}%",
            "a capo on the {num}th fret",
            "recording yourself",
        ),
        "tool": ("a looper pedal", "an audio interface", "a metronome app", "studio monitors"),
        "fact": ("the song is in D minor", "that album came out in {year}"),
    },
    "books": {
        "thing": (
            "the review",
            "your reading list",
            "the post on the translation",
            "the book club questions",
            "the essay on the ending",
        ),
        "thing2": (
            "the ending",
            "the narrator",
            "the translation",
            "the second half",
            "the first chapter",
        ),
        "step": ("reading it slowly", "reading the original first", "rereading the ending"),
        "problem": (
            "the middle dragged",
            "the translation loses the humour",
            "the audiobook cuts a chapter",
        ),
        "tip": (
            "the annotated edition",
            "the earlier translation",
            "starting with the short stories",
        ),
        "tool": ("the library app", "an e-reader", "the annotated edition"),
        "fact": ("it was published in {year}", "the author wrote it in prison"),
    },
    "diy": {
        "thing": (
            "the floating shelves tutorial",
            "the tiling guide",
            "the workbench plans",
            "the drywall patch post",
            "the deck stain comparison",
        ),
        "thing2": ("the anchors", "the grout", "the studs", "the primer", "the level"),
        "step": (
            "pre-drilling the holes",
            "sanding between coats",
            "finding the studs first",
            "letting the thinset cure",
        ),
        "problem": (
            "the shelf sags in the middle",
            "the grout cracked",
            "the paint peeled after a month",
        ),
        "tip": (
            "toggle bolts instead of plugs",
            "a scrap piece to test the stain",
            "a {num} mm drill bit",
        ),
        "tool": ("an oscillating multi-tool", "a stud finder", "a track saw", "a laser level"),
        "fact": ("you don't need primer on new drywall", "the wire gauge doesn't matter"),
    },
    "cycling": {
        "thing": (
            "the tubeless setup guide",
            "the gravel route",
            "the commuting post",
            "the gearing explainer",
            "the bikepacking packing list",
        ),
        "thing2": (
            "the chain",
            "the cassette",
            "the tyre pressure",
            "the saddle height",
            "the brake pads",
        ),
        "step": (
            "dropping the tyre pressure",
            "cleaning the chain weekly",
            "raising the saddle a few mm",
            "riding the climb seated",
        ),
        "problem": (
            "the sealant never sealed",
            "my knees hurt after {km} km",
            "the chain keeps dropping",
        ),
        "tip": ("{num} psi on gravel", "a wider cassette", "a chain checker"),
        "tool": ("a torque wrench", "a mini pump", "a tubeless plug kit", "a chain whip"),
        "fact": ("wider tyres are always slower", "the climb is {km} km long"),
    },
}

_EN: Final = _Lang(
    code="en",
    first_names=(
        "James",
        "Mary",
        "Priya",
        "Chen",
        "Olivia",
        "Liam",
        "Aisha",
        "Noah",
        "Emma",
        "Mateo",
        "Hannah",
        "Kwame",
        "Sarah",
        "David",
        "Grace",
        "Tom",
        "Ravi",
        "Zoe",
        "Ben",
        "Chloe",
        "Samir",
        "Laura",
        "Ian",
        "Megan",
    ),
    last_names=(
        "Smith",
        "Johnson",
        "Patel",
        "Nguyen",
        "Brown",
        "O'Connor",
        "Williams",
        "Kim",
        "Garcia",
        "Okafor",
        "Taylor",
        "Murphy",
        "Lee",
        "Walker",
        "Hughes",
        "Singh",
        "Clarke",
        "Evans",
        "Wright",
        "Hall",
    ),
    email_domains=(
        "gmail.com",
        "gmail.com",
        "outlook.com",
        "yahoo.com",
        "icloud.com",
        "proton.me",
        "hotmail.com",
        "fastmail.com",
        "hey.com",
    ),
    openers=(
        "Great post!",
        "Thanks for writing this up.",
        "Long-time reader, first comment.",
        "Really useful, thank you.",
        "Hi {blogger},",
        "This is exactly what I needed.",
        "Interesting read.",
        "I have to disagree a bit here.",
        "Small correction:",
        "Thanks {blogger}!",
        "Hmm, not sure about this one.",
        "Loved this.",
        "Nice write-up.",
        "Quick question.",
        "Ok so",
        "Funny timing,",
        "Good points overall.",
        "Bookmarked.",
    ),
    bodies=(
        "I tried {thing} last weekend and {problem}.",
        "I tried {thing} and it worked perfectly, {step} made all the difference.",
        "{thing} is great, but I think {tip} works even better.",
        "In my experience {step} matters more than {thing2}.",
        "We followed {thing} step by step and {problem}, any idea why?",
        "You say that {fact}, but as far as I know that's not right.",
        "I've been {step} for {num} years now and I'd never go back.",
        "Honestly {thing2} was the part I struggled with most.",
        "After reading {thing} I switched to {tool} and I'm much happier.",
        "{tool} is overrated in my opinion, {tip} does the job.",
        "Same here: {problem} the first time, {tip} fixed it.",
        "My {relative} swears by {tip}.",
        "I disagree that {thing2} is the hard part, for me it was {step}.",
        "This reminded me of when {problem} and I had to start over.",
        "I think there's a typo in {thing}: it should be {num}, not {num2}.",
        "Would love a follow-up on {thing2}.",
        "{thing} saved me a lot of time, thanks.",
        "Not sure {tip} is a good idea, it didn't work for me at all.",
        "I printed {thing} and stuck it on the fridge haha.",
        "Agree with the other commenter about {thing2}.",
        "We tried {step} with {tool} and {problem}, so YMMV.",
        "The part about {thing2} is spot on.",
        "I bought {tool} on sale for {price} and it was worth every penny.",
        "Free tip from someone who learned the hard way: {tip}.",
        "Click through to the follow-up post, it explains {thing2} much better.",
        "I was sceptical, but {tip} really works, no joke.",
        "Cheap {tool} is fine to start with, you don't need the best one.",
    ),
    questions=(
        "Do you think {tip} would work too?",
        "How long did {step} take you?",
        "Would {tool} be overkill for a beginner?",
        "Any tips for when {problem}?",
        "Does this still apply in {year}?",
        "What would you change next time?",
        "Is {thing2} really necessary?",
        "Where did you get {tool}?",
        "Could you share more about {thing2}?",
        "Anyone else had this happen?",
    ),
    closers=(
        "Thanks again!",
        "Keep it up.",
        "Cheers,",
        "Looking forward to the next one.",
        "Anyway, just my two cents.",
        "Thanks for sharing.",
        "Happy to be corrected.",
        "Greetings from {city}.",
        ":)",
        "Thanks!",
    ),
    short=(
        "Thanks!",
        "Great post, thanks {blogger}.",
        "+1",
        "This.",
        "Very helpful, thank you.",
        "Love this!",
        "Agreed.",
        "Bookmarked for later.",
        "Nice one.",
        "So useful!",
        "Thanks for the update.",
        "Same question as above.",
        "great read",
        "Very informative article, thanks for sharing.",
        "Great information, thank you!",
        "I really enjoyed reading this.",
    ),
    links=(
        "The official docs cover this: https://docs.python.org/3/library/{pymod}.html",
        "There's a good Wikipedia article on it: https://en.wikipedia.org/wiki/{wiki}",
        "I opened an issue about it: https://github.com/{org}/{repo}/issues/{issue}",
        "See also https://en.wikipedia.org/wiki/{wiki} for the background.",
        "The source is on GitHub if anyone wants it: https://github.com/{org}/{repo}",
        "The release notes explain the change: https://www.python.org/downloads/release/python-3{minor}0/",
        "Relevant MDN page: https://developer.mozilla.org/en-US/docs/Web/{mdn}",
        "I subscribed to the newsletter after the last post, is there an RSS feed too?",
        "Will this be in the newsletter? I'd subscribe just for that.",
        "I wrote up my own attempt on my blog, happy to share the link if that's allowed.",
        "Check out the official docs, they explain {thing2} better than I can.",
    ),
    common={
        "blogger": ("Anna", "Mark", "Julia", "Sam", "Priya", "Tom", "Kate", "Dan", "everyone"),
        "relative": ("grandma", "dad", "mum", "partner", "neighbour", "uncle", "sister"),
        "city": ("Leeds", "Toronto", "Melbourne", "Austin", "Dublin", "Cape Town", "Pune"),
        "num2": ("12", "15", "20", "30", "8", "250", "3"),
        "pymod": (
            "asyncio",
            "functools",
            "pathlib",
            "dataclasses",
            "csv",
            "sqlite3",
            "typing",
            "itertools",
            "logging",
            "unittest",
        ),
        "wiki": (
            "Maillard_reaction",
            "Sourdough",
            "Compost",
            "Exposure_triangle",
            "Rule_of_thirds",
            "Index_fund",
            "Zone_2_training",
            "Bikepacking",
            "Mortise_and_tenon",
            "Circle_of_fifths",
            "Database_index",
            "Shinkansen",
        ),
        "org": (
            "python",
            "psf",
            "pallets",
            "sqlalchemy",
            "astral-sh",
            "rust-lang",
            "scikit-learn",
            "numpy",
            "django",
            "tokio-rs",
        ),
        "repo": (
            "cpython",
            "black",
            "flask",
            "sqlalchemy",
            "ruff",
            "rust",
            "scikit-learn",
            "numpy",
            "django",
            "tokio",
        ),
        "minor": ("11", "12", "13"),
        "mdn": ("API/Fetch_API", "HTML/Element/details", "CSS/grid", "HTTP/Status/429"),
    },
    topics=_EN_TOPICS,
)

_CODE_LINES: Final = (
    "`git rebase -i HEAD~3`",
    "`pip install -U requests`",
    "`for i in range(len(xs)):`",
    "`SELECT count(*) FROM posts WHERE draft = false;`",
    "`const res = await fetch(url);`",
    "`docker compose up -d`",
    "`df.groupby('city').size()`",
    "`kubectl get pods -A`",
    "`python -m venv .venv`",
    "`std::vector<int> v;`",
    "`cargo build --release`",
    "`npm ci`",
    "`CREATE INDEX CONCURRENTLY ix_posts_author ON posts (author_id);`",
    "`from functools import cache`",
    "`let x: Vec<u8> = Vec::new();`",
    "`if err != nil { return err }`",
    "`SET statement_timeout = '5s';`",
    "`await asyncio.gather(*tasks)`",
    "`git bisect start`",
    "`ruff check --fix .`",
)
_CODE_SENTENCES: Final = (
    "With {code} it works for me.",
    "I think {code} should be {code2}.",
    "{code} fails with a TimeoutError on Python {pyver}, is that expected?",
    "Minor nit: {code} is clearer than {code2}.",
    "Running {code} first fixed it for me.",
    "Here's what I ended up with:\n```\n{code_block}\n```",
    "Why not just {code}?",
    "In {tool} you can do {code}.",
)
_CODE_BLOCKS: Final = (
    "for row in rows:\n    if row.draft:\n        continue\n    publish(row)",
    "with open(path, newline='') as f:\n    rows = list(csv.DictReader(f))",
    "SELECT author_id, count(*)\nFROM comments\nGROUP BY author_id\nORDER BY 2 DESC;",
    "async def main():\n    async with session.get(url) as r:\n        return await r.json()",
    'fn main() {\n    println!("hello");\n}',
)
_CODE_VOCAB: Final[Vocab] = {
    "code": _CODE_LINES,
    "code2": _CODE_LINES,
    "code_block": _CODE_BLOCKS,
}


def _topics(**topics: Mapping[str, tuple[str, ...]]) -> Mapping[str, Vocab]:
    return topics


_FR: Final = _Lang(
    code="fr",
    first_names=(
        "Camille",
        "Louis",
        "Chloé",
        "Hugo",
        "Léa",
        "Julien",
        "Manon",
        "Théo",
        "Inès",
        "Nicolas",
        "Élodie",
        "Mathieu",
    ),
    last_names=(
        "Martin",
        "Bernard",
        "Dubois",
        "Lefèvre",
        "Moreau",
        "Laurent",
        "Girard",
        "Roux",
        "Fournier",
        "Mercier",
    ),
    email_domains=("gmail.com", "orange.fr", "free.fr", "laposte.net", "outlook.fr", "sfr.fr"),
    openers=(
        "Merci pour cet article !",
        "Super article.",
        "Bonjour {blogger},",
        "Je ne suis pas tout à fait d'accord.",
        "Petite correction :",
        "Très intéressant.",
        "Merci beaucoup !",
        "Article très clair.",
    ),
    bodies=(
        "J'ai essayé {thing} le week-end dernier et {problem}.",
        "{thing} est très bien, mais je trouve que {tip} marche encore mieux.",
        "Chez moi, {step} a tout changé.",
        "Vous dites que {fact}, mais je crois que c'est faux.",
        "J'ai suivi {thing} à la lettre et {problem}, une idée ?",
        "Depuis que j'utilise {tool}, c'est beaucoup plus simple.",
        "Pour moi le plus dur, c'est {thing2}.",
        "Ma grand-mère recommandait toujours {tip}.",
        "Je pense qu'il y a une coquille : {num} et pas {num2}.",
    ),
    questions=(
        "Est-ce que {tip} fonctionnerait aussi ?",
        "Combien de temps pour {step} ?",
        "{tool}, ça vaut le coup pour débuter ?",
        "Vous avez une astuce quand {problem} ?",
        "C'est toujours valable en {year} ?",
    ),
    closers=(
        "Merci encore !",
        "Bonne continuation.",
        "À bientôt !",
        "Bonne journée.",
        "Cordialement,",
    ),
    short=("Merci !", "Top, merci {blogger}.", "Génial.", "Très utile, merci.", "+1"),
    links=(
        "Voir aussi https://fr.wikipedia.org/wiki/{wiki}",
        "La doc officielle l'explique bien : https://docs.python.org/fr/3/library/{pymod}.html",
        "Je me suis abonné à la newsletter, vivement le prochain article.",
    ),
    common={
        "blogger": ("Claire", "Marc", "Sophie", "Antoine", "à tous"),
        "num2": ("12", "20", "250", "8"),
        "wiki": ("Levain", "Compost", "Photographie_argentique", "Réaction_de_Maillard"),
        "pymod": ("asyncio", "pathlib", "csv", "functools"),
    },
    topics=_topics(
        cooking={
            "thing": (
                "la recette du pain au levain",
                "ce risotto",
                "la pâte brisée",
                "le bœuf bourguignon",
            ),
            "thing2": ("le levain", "la pâte", "la cuisson", "le bouillon"),
            "step": (
                "laisser reposer la pâte une nuit",
                "torréfier le riz avant",
                "saler l'eau",
                "cuire à feu doux",
            ),
            "problem": ("la croûte était molle", "la sauce a tranché", "ça a collé au fond"),
            "tip": ("un filet de vinaigre à la fin", "de la farine T65", "un four à {temp} degrés"),
            "tool": ("une cocotte en fonte", "un robot pâtissier", "un thermomètre"),
            "fact": ("il faut rincer le riz", "l'alcool s'évapore entièrement"),
        },
        travel={
            "thing": ("l'itinéraire à Lisbonne", "ta liste de bagages", "le guide de Kyoto"),
            "thing2": ("le train de nuit", "l'auberge", "le ferry", "le sentier"),
            "step": ("réserver les trains tôt", "partir hors saison", "marcher plutôt que le taxi"),
            "problem": ("le ferry a été annulé", "tout était complet", "le sentier était fermé"),
            "tip": ("partir au lever du soleil", "acheter le pass à la gare"),
            "tool": ("un sac à dos léger", "des cartes hors ligne"),
            "fact": ("le musée est gratuit le lundi", "il faut un visa"),
        },
        gardening={
            "thing": ("le guide du potager", "l'article sur le compost", "les conseils de taille"),
            "thing2": ("les semis", "les tomates", "le paillage", "les rosiers"),
            "step": ("pailler en automne", "tailler en fin d'hiver", "arroser le matin"),
            "problem": (
                "les feuilles ont jauni",
                "les pucerons ont tout envahi",
                "les limaces ont tout mangé",
            ),
            "tip": ("du purin d'ortie", "planter des œillets d'Inde à côté"),
            "tool": ("un sécateur", "une grelinette", "un composteur"),
            "fact": ("le marc de café acidifie le sol", "il faut tailler les rosiers en automne"),
        },
        programming={
            "thing": ("l'exemple asynchrone", "le script de migration", "la partie sur le cache"),
            "thing2": ("les tests", "l'ORM", "la CI", "le typage"),
            "step": ("figer les dépendances", "ajouter un index", "profiler avant d'optimiser"),
            "problem": (
                "le build a cassé sous Windows",
                "la requête est passée à 2 s",
                "les tests sont instables",
            ),
            "tip": ("`git bisect`", "un `functools.cache`", "`EXPLAIN ANALYZE`"),
            "tool": ("pytest", "PostgreSQL", "Rust", "Docker"),
            "fact": ("le GIL a disparu", "SQLite ne gère pas la concurrence"),
        },
    ),
)

_DE: Final = _Lang(
    code="de",
    first_names=(
        "Lukas",
        "Anna",
        "Jonas",
        "Lea",
        "Felix",
        "Marie",
        "Tobias",
        "Sophie",
        "Jan",
        "Katrin",
        "Moritz",
        "Julia",
    ),
    last_names=(
        "Müller",
        "Schmidt",
        "Schneider",
        "Fischer",
        "Weber",
        "Meyer",
        "Wagner",
        "Becker",
        "Hoffmann",
        "Schäfer",
    ),
    email_domains=("gmail.com", "web.de", "gmx.de", "t-online.de", "posteo.de", "mailbox.org"),
    openers=(
        "Danke für den Artikel!",
        "Toller Beitrag.",
        "Hallo {blogger},",
        "Da muss ich widersprechen.",
        "Kleine Korrektur:",
        "Sehr interessant.",
        "Vielen Dank!",
        "Super erklärt.",
    ),
    bodies=(
        "Ich habe {thing} am Wochenende ausprobiert und {problem}.",
        "{thing} ist gut, aber {tip} funktioniert bei mir noch besser.",
        "Bei mir hat {step} den Unterschied gemacht.",
        "Du schreibst, dass {fact}, aber das stimmt so nicht.",
        "Wir haben {thing} genau befolgt und {problem}, woran kann das liegen?",
        "Seit ich {tool} benutze, klappt es viel besser.",
        "Am schwierigsten fand ich {thing2}.",
        "Ich glaube, da ist ein Tippfehler: {num} statt {num2}.",
    ),
    questions=(
        "Würde {tip} auch funktionieren?",
        "Wie lange hat {step} gedauert?",
        "Lohnt sich {tool} für Anfänger?",
        "Hast du einen Tipp, wenn {problem}?",
        "Gilt das {year} noch?",
    ),
    closers=(
        "Danke nochmal!",
        "Weiter so.",
        "Viele Grüße",
        "Liebe Grüße aus {city}.",
        "Bis zum nächsten Artikel.",
    ),
    short=("Danke!", "Super, danke {blogger}.", "Sehr hilfreich.", "+1", "Klasse!"),
    links=(
        "Siehe auch https://de.wikipedia.org/wiki/{wiki}",
        "Die Doku erklärt es gut: https://docs.python.org/de/3/library/{pymod}.html",
        "Ich habe den Newsletter abonniert, gibt es auch einen RSS-Feed?",
    ),
    common={
        "blogger": ("Stefan", "Petra", "Martin", "Sabine", "alle"),
        "num2": ("12", "20", "250", "8"),
        "city": ("Berlin", "Hamburg", "München", "Wien", "Zürich", "Köln"),
        "wiki": ("Sauerteig", "Kompostierung", "Belichtung_(Fotografie)", "Maillard-Reaktion"),
        "pymod": ("asyncio", "pathlib", "csv", "functools"),
    },
    topics=_topics(
        cooking={
            "thing": (
                "das Sauerteigbrot-Rezept",
                "das Risotto",
                "den Zwiebelkuchen",
                "die Rinderrouladen",
            ),
            "thing2": ("der Sauerteig", "der Teig", "die Garzeit", "die Soße"),
            "step": ("den Teig über Nacht gehen lassen", "den Reis anrösten", "langsam schmoren"),
            "problem": ("die Kruste wurde weich", "die Soße ist geronnen", "alles ist angebrannt"),
            "tip": ("ein Schuss Essig am Ende", "Mehl Type 1050", "der Ofen auf {temp} Grad"),
            "tool": ("ein gusseiserner Bräter", "eine Küchenmaschine", "ein Thermometer"),
            "fact": ("man muss den Reis waschen", "der Alkohol verkocht komplett"),
        },
        cycling={
            "thing": ("die Anleitung zu Tubeless", "die Gravel-Route", "der Pendler-Artikel"),
            "thing2": ("die Kette", "der Reifendruck", "die Sattelhöhe", "die Bremsbeläge"),
            "step": ("den Reifendruck senken", "die Kette wöchentlich reinigen"),
            "problem": ("die Milch hat nicht abgedichtet", "die Kette springt ständig"),
            "tip": ("{num} psi auf Schotter", "eine breitere Kassette"),
            "tool": ("ein Drehmomentschlüssel", "eine Minipumpe"),
            "fact": ("breite Reifen sind immer langsamer", "der Anstieg ist {km} km lang"),
        },
        gardening={
            "thing": ("die Hochbeet-Anleitung", "der Kompost-Artikel", "die Schnitt-Tipps"),
            "thing2": ("die Setzlinge", "die Tomaten", "der Mulch", "die Rosen"),
            "step": ("im Spätwinter schneiden", "morgens gießen", "den Kompost umsetzen"),
            "problem": ("die Blätter wurden gelb", "die Blattläuse haben alles befallen"),
            "tip": ("Brennnesseljauche", "Tagetes als Nachbarn"),
            "tool": ("eine Gartenschere", "ein Frühbeet"),
            "fact": ("Kaffeesatz macht den Boden sauer", "Rosen schneidet man im Herbst"),
        },
        programming={
            "thing": ("das Async-Beispiel", "das Migrationsskript", "der Abschnitt zum Caching"),
            "thing2": ("die Tests", "das ORM", "die CI", "die Typisierung"),
            "step": ("die Abhängigkeiten pinnen", "einen Index anlegen", "erst profilen"),
            "problem": ("der Build unter Windows kaputtging", "die Abfrage 2 s dauerte"),
            "tip": ("`git bisect`", "`EXPLAIN ANALYZE`", "ein `functools.cache`"),
            "tool": ("pytest", "PostgreSQL", "Rust", "Docker"),
            "fact": ("der GIL entfernt wurde", "SQLite keine parallelen Leser kann"),
        },
    ),
)

_ES: Final = _Lang(
    code="es",
    first_names=(
        "Lucía",
        "Pablo",
        "Sofía",
        "Javier",
        "Carmen",
        "Diego",
        "Valentina",
        "Alejandro",
        "Marta",
        "Andrés",
        "Elena",
        "Sergio",
    ),
    last_names=(
        "García",
        "Fernández",
        "López",
        "Martínez",
        "Sánchez",
        "Pérez",
        "Gómez",
        "Ruiz",
        "Hernández",
        "Díaz",
    ),
    email_domains=("gmail.com", "hotmail.es", "yahoo.es", "outlook.es", "telefonica.net"),
    openers=(
        "¡Gracias por el artículo!",
        "Muy buen post.",
        "Hola {blogger},",
        "No estoy del todo de acuerdo.",
        "Una pequeña corrección:",
        "Muy interesante.",
        "¡Muchas gracias!",
    ),
    bodies=(
        "Probé {thing} el fin de semana y {problem}.",
        "{thing} está muy bien, pero creo que {tip} funciona aún mejor.",
        "En mi caso, {step} marcó la diferencia.",
        "Dices que {fact}, pero creo que no es así.",
        "Seguí {thing} paso a paso y {problem}, ¿alguna idea?",
        "Desde que uso {tool} todo es más fácil.",
        "Lo más difícil para mí fue {thing2}.",
        "Creo que hay una errata: {num}, no {num2}.",
    ),
    questions=(
        "¿Funcionaría también {tip}?",
        "¿Cuánto tiempo te llevó {step}?",
        "¿Vale la pena {tool} para empezar?",
        "¿Algún consejo cuando {problem}?",
        "¿Sigue siendo válido en {year}?",
    ),
    closers=("¡Gracias de nuevo!", "Saludos.", "Un abrazo desde {city}.", "¡Sigue así!"),
    short=("¡Gracias!", "Genial, gracias {blogger}.", "Muy útil.", "+1", "¡Me encanta!"),
    links=(
        "Más información en https://es.wikipedia.org/wiki/{wiki}",
        "La documentación lo explica: https://docs.python.org/es/3/library/{pymod}.html",
        "Me suscribí al boletín, ¡espero el próximo artículo!",
    ),
    common={
        "blogger": ("Laura", "Carlos", "Ana", "Miguel", "a todos"),
        "num2": ("12", "20", "250", "8"),
        "city": ("Madrid", "Sevilla", "Buenos Aires", "Ciudad de México", "Bogotá"),
        "wiki": ("Masa_madre", "Compost", "Fotografía", "Reacción_de_Maillard"),
        "pymod": ("asyncio", "pathlib", "csv", "functools"),
    },
    topics=_topics(
        cooking={
            "thing": (
                "la receta de pan de masa madre",
                "este risotto",
                "la paella",
                "la tortilla de patatas",
            ),
            "thing2": ("la masa madre", "el sofrito", "el caldo", "el punto de sal"),
            "step": (
                "dejar reposar la masa toda la noche",
                "tostar el arroz",
                "cocinar a fuego lento",
            ),
            "problem": ("la corteza quedó blanda", "el arroz se pasó", "se pegó al fondo"),
            "tip": ("un chorrito de vinagre al final", "el horno a {temp} grados"),
            "tool": ("una paellera", "una olla de hierro", "un termómetro"),
            "fact": ("hay que lavar el arroz", "el alcohol se evapora del todo"),
        },
        travel={
            "thing": ("el itinerario por Lisboa", "tu lista de equipaje", "la guía de Kioto"),
            "thing2": ("el tren nocturno", "el albergue", "el ferry", "el sendero"),
            "step": ("reservar los trenes con antelación", "viajar en temporada baja"),
            "problem": ("cancelaron el ferry", "todo estaba lleno", "el sendero estaba cerrado"),
            "tip": ("ir al amanecer", "comprar el pase en la estación"),
            "tool": ("una mochila ligera", "mapas sin conexión"),
            "fact": ("el museo es gratis los lunes", "hace falta visado"),
        },
        photography={
            "thing": (
                "las fotos de la hora dorada",
                "tus escaneos de película",
                "la comparativa de objetivos",
            ),
            "thing2": ("el 50mm", "el balance de blancos", "el trípode", "el ISO"),
            "step": ("disparar a f/8", "exponer para las luces", "disparar en RAW"),
            "problem": ("todo salió desenfocado", "el cielo quedó quemado"),
            "tip": ("un polarizador", "enfoque con el botón trasero"),
            "tool": ("un 35mm fijo", "un fotómetro", "un filtro ND"),
            "fact": ("f/1.4 da más profundidad de campo", "más megapíxeles siempre ayudan"),
        },
    ),
)

_PT: Final = _Lang(
    code="pt",
    first_names=(
        "João",
        "Ana",
        "Pedro",
        "Beatriz",
        "Lucas",
        "Mariana",
        "Gabriel",
        "Inês",
        "Rafael",
        "Larissa",
        "Tiago",
        "Camila",
    ),
    last_names=(
        "Silva",
        "Santos",
        "Oliveira",
        "Souza",
        "Pereira",
        "Costa",
        "Rodrigues",
        "Almeida",
        "Ferreira",
        "Carvalho",
    ),
    email_domains=(
        "gmail.com",
        "hotmail.com",
        "uol.com.br",
        "bol.com.br",
        "sapo.pt",
        "outlook.com",
    ),
    openers=(
        "Obrigado pelo artigo!",
        "Ótimo post.",
        "Olá {blogger},",
        "Não concordo totalmente.",
        "Uma pequena correção:",
        "Muito interessante.",
        "Valeu!",
    ),
    bodies=(
        "Experimentei {thing} no fim de semana e {problem}.",
        "{thing} é ótimo, mas acho que {tip} funciona ainda melhor.",
        "No meu caso, {step} fez toda a diferença.",
        "Você diz que {fact}, mas acho que não é bem assim.",
        "Segui {thing} passo a passo e {problem}, alguma ideia?",
        "Desde que comecei a usar {tool} ficou bem mais fácil.",
        "O mais difícil pra mim foi {thing2}.",
    ),
    questions=(
        "{tip} também funcionaria?",
        "Quanto tempo levou {step}?",
        "Vale a pena {tool} para iniciantes?",
        "Alguma dica quando {problem}?",
    ),
    closers=("Obrigado de novo!", "Abraços.", "Um abraço de {city}.", "Continue assim!"),
    short=("Obrigado!", "Muito bom, valeu {blogger}.", "Muito útil.", "+1", "Adorei!"),
    links=(
        "Mais detalhes em https://pt.wikipedia.org/wiki/{wiki}",
        "A documentação explica: https://docs.python.org/pt-br/3/library/{pymod}.html",
        "Assinei a newsletter, aguardando o próximo post!",
    ),
    common={
        "blogger": ("Fernanda", "Paulo", "Rita", "Bruno", "pessoal"),
        "city": ("Lisboa", "Porto", "São Paulo", "Recife", "Curitiba"),
        "wiki": ("Fermento_natural", "Compostagem", "Fotografia", "Reação_de_Maillard"),
        "pymod": ("asyncio", "pathlib", "csv", "functools"),
    },
    topics=_topics(
        cooking={
            "thing": (
                "a receita de pão de fermentação natural",
                "esse risoto",
                "a feijoada",
                "o bolo de cenoura",
            ),
            "thing2": ("o fermento", "a massa", "o caldo", "o ponto do sal"),
            "step": (
                "deixar a massa descansar durante a noite",
                "tostar o arroz",
                "cozinhar em fogo baixo",
            ),
            "problem": ("a casca ficou mole", "o molho talhou", "grudou no fundo"),
            "tip": ("um fio de vinagre no final", "o forno a {temp} graus"),
            "tool": ("uma panela de ferro", "uma batedeira", "um termômetro"),
            "fact": ("é preciso lavar o arroz", "o álcool evapora todo"),
        },
        gardening={
            "thing": ("o guia da horta", "o post sobre compostagem", "as dicas de poda"),
            "thing2": ("as mudas", "os tomates", "a cobertura morta", "as roseiras"),
            "step": ("podar no fim do inverno", "regar de manhã", "revirar a composteira"),
            "problem": ("as folhas amarelaram", "os pulgões tomaram conta"),
            "tip": ("casca de ovo triturada", "plantar cravo-de-defunto ao lado"),
            "tool": ("uma tesoura de poda", "uma composteira"),
            "fact": ("borra de café acidifica o solo", "tomate precisa de sombra"),
        },
        programming={
            "thing": ("o exemplo assíncrono", "o script de migração", "a parte sobre cache"),
            "thing2": ("os testes", "o ORM", "a CI", "a tipagem"),
            "step": ("fixar as dependências", "criar um índice", "medir antes de otimizar"),
            "problem": ("o build quebrou no Windows", "a consulta passou para 2 s"),
            "tip": ("`git bisect`", "`EXPLAIN ANALYZE`"),
            "tool": ("pytest", "PostgreSQL", "Rust", "Docker"),
            "fact": ("o GIL foi removido", "SQLite não aguenta leitores concorrentes"),
        },
    ),
)

# Japanese, Russian and Arabic take fewer, whole-sentence templates: their word order and
# agreement make English-style noun-phrase slots read badly.
_JA: Final = _Lang(
    code="ja",
    first_names=("Haruto", "Yui", "Sota", "Aoi", "Ren", "Hina", "健太", "さくら", "翔", "美咲"),
    last_names=("Sato", "Suzuki", "Takahashi", "Tanaka", "Ito", "佐藤", "鈴木", "高橋"),
    email_domains=("gmail.com", "yahoo.co.jp", "docomo.ne.jp", "icloud.com"),
    openers=(
        "記事をありがとうございます。",
        "とても参考になりました。",
        "{blogger}さん、こんにちは。",
        "初めてコメントします。",
    ),
    bodies=(
        "{thing}を試してみましたが、{problem}。",
        "{tip}がとても良かったです。",
        "{thing2}の部分がよく分かりました。",
        "{tool}を使ってみたら、うまくいきました。",
        "{thing}について、少し意見が違います。",
    ),
    questions=(
        "{tip}でも大丈夫でしょうか？",
        "{tool}は初心者にもおすすめですか？",
        "{thing2}はどのくらい時間がかかりましたか？",
    ),
    closers=(
        "次の記事も楽しみにしています。",
        "ありがとうございました！",
        "よろしくお願いします。",
    ),
    short=("ありがとうございます！", "参考になりました。", "いいですね！"),
    links=(
        "詳しくは https://ja.wikipedia.org/wiki/{wiki} を参照してください。",
        "公式ドキュメント: https://docs.python.org/ja/3/library/{pymod}.html",
    ),
    common={
        "blogger": ("田中", "山本", "Ken"),
        "wiki": ("サワードウ", "堆肥", "写真"),
        "pymod": ("asyncio", "pathlib", "csv"),
    },
    topics=_topics(
        cooking={
            "thing": ("天然酵母パンのレシピ", "このリゾット", "ラーメンのスープ"),
            "thing2": ("発酵", "出汁", "生地"),
            "problem": ("生地が膨らみませんでした", "焦げてしまいました"),
            "tip": ("塩を少し足すこと", "一晩寝かせること"),
            "tool": ("鋳鉄の鍋", "温度計"),
        },
        travel={
            "thing": ("京都の旅程", "夜行列車の記事", "荷物リスト"),
            "thing2": ("電車の予約", "宿", "フェリー"),
            "problem": ("フェリーが欠航しました", "どこも満室でした"),
            "tip": ("早朝に行くこと", "駅でパスを買うこと"),
            "tool": ("オフライン地図", "軽いリュック"),
        },
        programming={
            "thing": ("非同期の例", "マイグレーションのスクリプト", "キャッシュの章"),
            "thing2": ("テスト", "型ヒント", "CI"),
            "problem": ("Windowsでビルドが失敗しました", "クエリが遅くなりました"),
            "tip": ("`git bisect`を使うこと", "インデックスを追加すること"),
            "tool": ("pytest", "PostgreSQL", "Rust"),
        },
    ),
)

_RU: Final = _Lang(
    code="ru",
    first_names=("Алексей", "Мария", "Дмитрий", "Анна", "Сергей", "Екатерина", "Ivan", "Olga"),
    last_names=("Иванов", "Смирнова", "Кузнецов", "Попова", "Petrov", "Sokolova"),
    email_domains=("yandex.ru", "mail.ru", "gmail.com", "rambler.ru"),
    openers=(
        "Спасибо за статью!",
        "Отличный пост.",
        "{blogger}, добрый день.",
        "Не совсем согласен.",
        "Небольшая поправка:",
    ),
    bodies=(
        "Попробовал {thing} на выходных, но {problem}.",
        "Мне очень помог совет: {tip}.",
        "Самое сложное для меня — {thing2}.",
        "С {tool} стало намного проще.",
        "По поводу {thing}: у меня получилось иначе.",
    ),
    questions=(
        "А {tip} тоже подойдёт?",
        "{tool} подойдёт для новичка?",
        "Сколько времени ушло на {thing2}?",
    ),
    closers=("Спасибо ещё раз!", "Жду продолжения.", "С уважением,"),
    short=("Спасибо!", "Полезно, спасибо.", "Отлично!", "+1"),
    links=(
        "Подробнее: https://ru.wikipedia.org/wiki/{wiki}",
        "В документации есть пример: https://docs.python.org/3/library/{pymod}.html",
    ),
    common={
        "blogger": ("Андрей", "Наталья", "Павел"),
        "wiki": ("Закваска", "Компост", "Фотография"),
        "pymod": ("asyncio", "pathlib", "csv"),
    },
    topics=_topics(
        cooking={
            "thing": ("рецепт хлеба на закваске", "этот борщ", "рецепт пирога"),
            "thing2": ("закваска", "тесто", "бульон"),
            "problem": ("тесто не поднялось", "всё пригорело"),
            "tip": ("добавить немного уксуса в конце", "оставить тесто на ночь"),
            "tool": ("чугунной кастрюлей", "термометром"),
        },
        programming={
            "thing": ("пример с asyncio", "скрипт миграции", "раздел про кэш"),
            "thing2": ("тесты", "типизация", "CI"),
            "problem": ("сборка упала на Windows", "запрос стал медленным"),
            "tip": ("использовать `git bisect`", "добавить индекс"),
            "tool": ("pytest", "PostgreSQL", "Rust"),
        },
        gardening={
            "thing": ("совет про компост", "схему грядок", "статью про обрезку"),
            "thing2": ("рассада", "томаты", "мульча"),
            "problem": ("листья пожелтели", "тля всё съела"),
            "tip": ("мульчировать осенью", "поливать утром"),
            "tool": ("секатором", "теплицей"),
        },
    ),
)

_AR: Final = _Lang(
    code="ar",
    first_names=("محمد", "فاطمة", "أحمد", "مريم", "Omar", "Layla", "Youssef", "Nour"),
    last_names=("الحسن", "العلي", "Haddad", "Khalil", "Mansour", "السيد"),
    email_domains=("gmail.com", "hotmail.com", "yahoo.com", "outlook.com"),
    openers=("شكرا على المقال!", "مقال رائع.", "مرحبا {blogger}،", "لا أتفق تماما."),
    bodies=(
        "جربت {thing} في نهاية الأسبوع لكن {problem}.",
        "نصيحة {tip} كانت مفيدة جدا.",
        "أصعب جزء بالنسبة لي كان {thing2}.",
        "استخدمت {tool} وكانت النتيجة ممتازة.",
    ),
    questions=("هل تنجح {tip} أيضا؟", "هل {tool} مناسب للمبتدئين؟"),
    closers=("شكرا مرة أخرى!", "بانتظار المقال القادم.", "تحياتي."),
    short=("شكرا!", "مفيد جدا.", "رائع!"),
    links=(
        "المزيد هنا: https://ar.wikipedia.org/wiki/{wiki}",
        "التوثيق الرسمي: https://docs.python.org/3/library/{pymod}.html",
    ),
    common={
        "blogger": ("سارة", "خالد", "Karim"),
        "wiki": ("تصوير_فوتوغرافي", "سماد", "خبز"),
        "pymod": ("asyncio", "pathlib"),
    },
    topics=_topics(
        cooking={
            "thing": ("وصفة الخبز", "طريقة الكبسة", "وصفة الحمص"),
            "thing2": ("العجين", "المرق", "التوابل"),
            "problem": ("العجين لم يختمر", "احترق الأرز"),
            "tip": ("إضافة القليل من الليمون", "ترك العجين ليلة كاملة"),
            "tool": ("قدر الضغط", "ميزان المطبخ"),
        },
        travel={
            "thing": ("برنامج الرحلة إلى لشبونة", "قائمة الأمتعة", "دليل إسطنبول"),
            "thing2": ("حجز القطار", "الفندق", "العبارة"),
            "problem": ("ألغيت العبارة", "كانت الفنادق محجوزة"),
            "tip": ("الذهاب عند الفجر", "شراء التذكرة من المحطة"),
            "tool": ("خرائط دون اتصال", "حقيبة ظهر خفيفة"),
        },
        photography={
            "thing": ("صور الساعة الذهبية", "مقارنة العدسات", "إعداد الإضاءة"),
            "thing2": ("توازن اللون الأبيض", "الحامل الثلاثي", "سرعة الغالق"),
            "problem": ("خرجت الصور غير واضحة", "احترقت السماء"),
            "tip": ("التصوير بصيغة RAW", "استخدام فلتر مستقطب"),
            "tool": ("عدسة 50 مم", "مقياس الضوء"),
        },
    ),
)

_LANGS: Final[Mapping[str, _Lang]] = {
    lang.code: lang for lang in (_EN, _FR, _DE, _ES, _PT, _JA, _RU, _AR)
}
_LANG_LIST: Final = tuple(_LANGS.values())
_TOPIC_NAMES: Final = {lang.code: tuple(lang.topics) for lang in _LANG_LIST}
_HAM_LANG_WEIGHTS: Final = (0.58, 0.08, 0.08, 0.08, 0.06, 0.04, 0.05, 0.03)
_HAM_LANG_CUM: Final = tuple(sum(_HAM_LANG_WEIGHTS[: i + 1]) for i in range(len(_HAM_LANG_WEIGHTS)))


# --- ham -----------------------------------------------------------------------------


def _ham(rng: random.Random) -> CommentRecord:
    lang = rng.choices(_LANG_LIST, cum_weights=_HAM_LANG_CUM)[0]
    topic_name = rng.choice(_TOPIC_NAMES[lang.code])
    slots = _Slots(rng, (lang.topics[topic_name], lang.common, _CODE_VOCAB))

    def say(templates: Sequence[str]) -> str:
        return _capitalise(rng.choice(templates).format_map(slots))

    if rng.random() < 0.08:
        text = say(lang.short)
    else:
        parts: list[str] = []
        if rng.random() < 0.45:
            parts.append(say(lang.openers))
        parts.append(say(lang.bodies))
        if rng.random() < 0.45:
            parts.append(say(lang.bodies))
        if lang is _EN and topic_name == "programming" and rng.random() < 0.45:
            parts.append(say(_CODE_SENTENCES))
        if rng.random() < 0.11:
            parts.append(say(lang.links))
        if rng.random() < 0.35:
            parts.append(say(lang.questions))
        if rng.random() < 0.3:
            parts.append(say(lang.closers))
        text = _join(rng, parts)
    text = _ham_noise(rng, text)
    name, email, url = _ham_author(rng, lang)
    approved, spam_count = _history(rng, spam=False)
    permalink = _permalink(rng, topic_name)
    return CommentRecord(
        content=text,
        author_name=name,
        author_email=email,
        author_url=url,
        user_ip=_ip(rng, spam=False),
        user_agent=_user_agent(rng, spam=False),
        referrer=_ham_referrer(rng, permalink, topic_name),
        permalink=permalink,
        lang=lang.code if rng.random() < 0.85 else None,
        approved_count=approved,
        spam_count=spam_count,
    )


def _ham_referrer(rng: random.Random, permalink: str, topic: str) -> str | None:
    roll = rng.random()
    if roll < 0.55:
        return permalink
    if roll < 0.7:
        return "https://www.google.com/"
    if roll < 0.78:
        return (
            "https://news.ycombinator.com/" if topic == "programming" else "https://www.reddit.com/"
        )
    if roll < 0.82:
        return "https://duckduckgo.com/"
    return None


def _capitalise(sentence: str) -> str:
    """A sentence whose template began with a slot ("{thing} is great") starts in lower
    case; writers capitalise it."""
    return sentence[:1].upper() + sentence[1:] if sentence[:1].islower() else sentence


def _join(rng: random.Random, parts: Sequence[str]) -> str:
    if len(parts) > 2 and rng.random() < 0.2:
        cut = rng.randrange(1, len(parts))
        return " ".join(parts[:cut]) + "\n\n" + " ".join(parts[cut:])
    return " ".join(parts)


def _ham_noise(rng: random.Random, text: str) -> str:
    roll = rng.random()
    if roll < 0.07:
        text = text.lower()
    elif roll < 0.09:
        text = text.rstrip(".!") + rng.choice(("!!", "!!!", " :D", " 🙂", " 👍", " 😅"))
    if rng.random() < 0.18:
        text = _typo(rng, text)
    return text


# --- spam ----------------------------------------------------------------------------

_PHARMA: Final[Vocab] = {
    "drug": (
        "viagra",
        "cialis",
        "levitra",
        "tramadol",
        "xanax",
        "ambien",
        "phentermine",
        "v1agra",
        "c1alis",
        "VIAGRA",
        "kamagra",
        "modafinil",
        "ozempic",
        "semaglutide",
        "oxycodone",
        "valium",
        "propecia",
        "accutane",
    ),
    "drug2": ("cialis", "levitra", "xanax", "tramadol", "soma", "adderall", "clomid"),
    "no_rx": (
        "without prescription",
        "no prescription needed",
        "no rx",
        "without a doctor",
        "overnight delivery",
        "discreet shipping",
        "FDA approved",
        "generic",
    ),
}
_PHARMA_T: Final = (
    "Buy {drug} online {no_rx} {pharma_url}",
    "{drug} {price} per pill, {no_rx}! Order now: {pharma_url}",
    "Cheap {drug} and {drug2} - {no_rx} - {pharma_url}",
    '<a href="{pharma_url}">buy {drug} online</a> <a href="{url2}">{drug2} {no_rx}</a>',
    "Looking for {drug}? Best prices here {pharma_url} {no_rx}",
    "[url={pharma_url}]{drug} {no_rx}[/url] [url={url2}]cheap {drug2}[/url]",
    "I lost 20 pounds in {num} days with {drug}!!! get yours {pharma_url}",
    "{drug} {drug} {drug} {no_rx} {pharma_url}",
    "Hello! {drug} {no_rx}. Order: {pharma_url} . Contact {spam_email}",
)

_CASINO: Final[Vocab] = {
    "casino": (
        "online casino",
        "slot gacor",
        "live casino",
        "sports betting",
        "poker room",
        "crypto casino",
        "slots",
        "roulette",
        "judi online",
        "bonus casino",
    ),
    "bonus": (
        "{pct}% welcome bonus",
        "{num}0 free spins",
        "no deposit bonus",
        "instant payout",
        "VIP cashback",
        "double your first deposit",
    ),
}
_CASINO_T: Final = (
    "Best {casino} {year} - {bonus} - {casino_url}",
    "Play {casino} and get {bonus}! {casino_url}",
    "I won {amount} last night at {casino_url} !!! {bonus}, try it",
    '<a href="{casino_url}">{casino}</a> | <a href="{url2}">{casino} {bonus}</a>',
    "{casino} {casino} {bonus} {casino_url} daftar sekarang",
    "Top rated {casino}: {bonus}. Sign up now {short_url}",
    "Bored? Try {casino} with {bonus} 🎰💰 {casino_url}",
)

_CRYPTO: Final[Vocab] = {
    "coin": ("bitcoin", "BTC", "ethereum", "USDT", "crypto", "forex", "binary options", "solana"),
    "mentor": (
        "Mrs. Sarah Johnson",
        "Mr. Mark Anderson",
        "Expert Emily Carter",
        "Mr. Adam Scott",
        "Dr. Williams Recovery",
        "Mrs. Olivia Bennett",
        "Mr. James Edward",
    ),
    "gain": (
        "{amount} in {num} days",
        "{pct}% profit weekly",
        "{amount} every week",
        "{amount} from an investment of {price}",
    ),
}
_CRYPTO_T: Final = (
    "I made {gain} trading {coin} with the help of {mentor}. Contact on Telegram {tg}",
    "Investing in {coin} with {mentor} changed my life, I now earn {gain}. WhatsApp {phone}",
    "I lost my {coin} to a fake broker but {mentor} helped me recover everything. "
    "Email {spam_email}",
    "Earn {gain} with our {coin} trading bot 🚀🚀 {crypto_url}",
    "Free {coin} giveaway! Send 0.1 and receive 1.0 back: {crypto_url}",
    "Everyone talks about {coin} but nobody tells you how {mentor} makes {gain}. Message {tg}",
    "Guaranteed {pct}% returns on {coin}, no risk. Join now {crypto_url}",
    "All thanks to {mentor}, I can now pay my bills. I'm earning {gain} from {coin}. "
    "Reach out: {phone}",
)

_SEO: Final[Vocab] = {
    "anchor": (
        "best seo services",
        "cheap essay writing",
        "replica watches",
        "buy instagram followers",
        "web design company",
        "payday loans online",
        "cheap flights",
        "buy youtube views",
        "digital marketing agency",
        "essay writing service",
        "mobile app development",
        "locksmith near me",
        "cheap hotels",
        "cbd oil",
        "weight loss pills",
        "dating site",
        "backlinks",
    ),
    "service": (
        "SEO",
        "link building",
        "web design",
        "guest posting",
        "digital marketing",
        "backlinks",
        "PBN links",
        "social media marketing",
        "content writing",
    ),
}
_SEO_T: Final = (
    '<a href="{seo_url}">{anchor}</a>',
    '<a href="{seo_url}">{anchor}</a> <a href="{url2}">{anchor2}</a> <a href="{url}">{anchor}</a>',
    "[url={seo_url}]{anchor}[/url]",
    "[{anchor}]({seo_url}) and [{anchor2}]({url2})",
    "We provide affordable {service} services for your website. Visit {seo_url}",
    "Need more traffic? Our {service} team can rank you #1 on Google. {seo_url}",
    "I can do {service} for your blog, {num}00 high DA backlinks for {price}. Contact {spam_email}",
    "{anchor} {seo_url}\n{anchor2} {url2}\n{anchor} {url}",
    "Hi, I'm interested in a guest post on your blog. Do you accept sponsored posts? "
    "Reply to {spam_email}",
    "Check {obfuscated} for {anchor}",
)

_CHANNEL_T: Final = (
    "Hey guys check out my new channel {channel} please subscribe!!!",
    "check out my channel for funny videos {channel}",
    "Please subscribe to my channel {channel}, I'm trying to reach {num}00 subs 🙏",
    "sub to me and I sub back {channel}",
    "Hi everyone! I make {topic_word} videos, would mean a lot if you checked them out {channel}",
    "Follow me on {channel} for daily content!!",
    "Can someone give me {num} likes? Check my profile {channel}",
)

_LOAN: Final[Vocab] = {
    "lender": (
        "Mr. Harry Loan Company",
        "Skyline Finance",
        "Dr. Loan Services",
        "Global Credit Home",
        "Rapid Cash Lenders",
        "Mrs. Helen Credit Firm",
    ),
    "loan_kind": (
        "personal loan",
        "business loan",
        "payday loan",
        "student loan",
        "mortgage",
        "car loan",
        "debt consolidation loan",
    ),
}
_LOAN_T: Final = (
    "Are you in need of a {loan_kind}? We offer loans at {rate}% interest rate. "
    "Contact {lender} via email: {spam_email}",
    "Do you need urgent {loan_kind}? Apply now {loan_url} no credit check, fast approval!",
    "I got my {loan_kind} of {amount} from {lender} within 24 hours. "
    "Contact them on WhatsApp {phone}",
    "GET {loan_kind} UP TO {amount} AT {rate}% INTEREST. EMAIL {spam_email}",
    "Bad credit? No problem. {loan_kind} approved in {num} minutes: {short_url}",
)

_WHATSAPP_T: Final = (
    "Contact me on WhatsApp {phone} for {offer}",
    "For {offer} message me on WhatsApp: {phone}",
    "Dr. {spell_doctor} brought my ex back in {num} days! WhatsApp him {phone}",
    "lovely girl talk to me {phone} xxx",
    "Looking for {offer}? Call/WhatsApp {phone} or email {spam_email}",
    "Hello dear, I saw your profile and I'd like to know you better. Write me at {spam_email}",
    "Join our Telegram group {tg} for {offer}",
)
_WHATSAPP: Final[Vocab] = {
    "offer": (
        "work from home jobs",
        "fast cash",
        "a genuine hacker",
        "cheap followers",
        "a real love spell",
        "an investment opportunity",
        "cheap phones",
        "visa assistance",
        "a part-time job paying {price} per hour",
        "bulk SMS",
    ),
    "spell_doctor": ("Ogun", "Oduduwa", "Zakuza", "Ekpen", "Lawson", "Wakina"),
}

_PRAISE_T: Final = (
    "Wow, this is a great article! I have bookmarked your site. Here is mine: {url}",
    "Very informative post, thanks for sharing. Please visit my website {url} as well.",
    "Nice blog! Is your theme custom made or did you download it from somewhere? {url}",
    "I really enjoyed reading this {topic_word} post. Keep up the good work. {url}",
    "Hello there! This post couldn't be written any better! Reading through this post "
    "reminds me of my previous room mate! He always kept talking about this. {url}",
    "Great information, I will share it with my friends. Thanks! {short_url}",
    "This is really interesting, You're a very skilled blogger. I have joined your rss feed "
    "and look forward to seeking more of your fantastic post. {url}",
    "Hey! I know this is kinda off topic but I was wondering if you knew where I could get a "
    "captcha plugin for my comment form? {url}",
)
# Chatty spam with no link in the text: the promotion is in the author URL only, and
# the praise never names anything the post said. These are the hard positives.
_CHATTY_T: Final = (
    "Great post! Thanks for sharing.",
    "Thanks for sharing.",
    "Nice one, thanks {blogger}.",
    "Very helpful, thank you.",
    "Interesting read. Bookmarked.",
    "Thank you for this wonderful article, it was very helpful to me.",
    "I really like your writing style, great information, thank you for posting.",
    "Very nice post. I just stumbled upon your blog and wanted to say that I have truly "
    "enjoyed browsing your posts.",
    "This is exactly the kind of {topic_word} content I was looking for. Thanks a lot!",
    "Wow, amazing blog layout! How long have you been blogging for?",
    "Hi, I do believe this is an excellent blog. I stumbled upon it and I will come back.",
    "Good day! I simply wish to give you a huge thumbs up for the great info you have here.",
    "Awesome things here. I am very happy to see your article. Thanks a lot and I'm looking "
    "forward to contact you.",
    "I have been surfing online more than {num} hours today, yet I never found any "
    "interesting article like yours.",
)
_STUFFING_WORDS: Final = (
    "cheap",
    "best",
    "buy",
    "online",
    "discount",
    "free",
    "shipping",
    "sale",
    "replica",
    "watches",
    "bags",
    "shoes",
    "outlet",
    "viagra",
    "loans",
    "seo",
    "casino",
    "followers",
    "likes",
    "views",
    "crypto",
    "bitcoin",
    "jerseys",
    "wholesale",
    "2025",
    "top",
    "deal",
    "offer",
    "order",
    "now",
    "official",
    "store",
    "usa",
    "uk",
)
_GIBBERISH_T: Final = (
    "{gibberish}",
    "{gibberish} {url}",
    "{mash}",
    "{mash} {mash} {url}",
    "{gibberish}\n{url}\n{url2}",
    "ok {gibberish}",
)

# Spam in other languages: the same kinds, fewer templates.
_FOREIGN_SPAM_T: Final[tuple[tuple[str, str], ...]] = (
    ("ru", "Купить {drug} без рецепта недорого {pharma_url}"),
    ("ru", "Лучшее онлайн казино, {num}0 фриспинов за регистрацию: {casino_url}"),
    ("ru", "Заработок от {amount} в неделю без вложений, пиши в телеграм {tg}"),
    ("ru", "Продвижение сайтов, SEO, ссылки. Недорого! {seo_url}"),
    ("es", "Comprar {drug} sin receta, envío discreto {pharma_url}"),
    ("es", "¿Necesitas un préstamo urgente? Tasa del {rate}%. Escríbenos por WhatsApp {phone}"),
    ("es", "Gana {amount} al mes desde casa con {coin}! {crypto_url}"),
    ("pt", "Comprar {drug} sem receita, entrega rápida {pharma_url}"),
    ("pt", "Ganhe dinheiro com {coin}, lucro garantido de {pct}%! Chama no WhatsApp {phone}"),
    ("fr", "Acheter {drug} sans ordonnance, livraison rapide {pharma_url}"),
    ("fr", "Casino en ligne : {num}0 tours gratuits sans dépôt {casino_url}"),
    ("fr", "Prêt entre particuliers sérieux à {rate}%, contactez-moi : {spam_email}"),
    ("de", "{drug} rezeptfrei kaufen, diskreter Versand {pharma_url}"),
    ("de", "Schnell Geld verdienen mit {coin}, {pct}% Gewinn garantiert! {crypto_url}"),
    ("de", "Seriöser Privatkredit zu {rate}% Zinsen, Kontakt per WhatsApp {phone}"),
    ("ja", "素晴らしい記事ですね！私のサイトも見てください {url}"),
    ("ar", "مقال رائع! تواصل معي على واتساب {phone} للربح من {coin}"),
)

_SPAM_VOCAB: Final[Vocab] = {
    **_PHARMA,
    **_CASINO,
    **_CRYPTO,
    **_SEO,
    **_LOAN,
    **_WHATSAPP,
    "anchor2": _SEO["anchor"],
    "blogger": _EN.common["blogger"],
    "topic_word": (
        "cooking",
        "travel",
        "gardening",
        "photography",
        "programming",
        "fitness",
        "finance",
        "music",
        "DIY",
        "cycling",
        "recipe",
        "tech",
    ),
}

_SPAM_KINDS: Final[tuple[tuple[str, tuple[str, ...], float], ...]] = (
    ("pharma", _PHARMA_T, 0.1),
    ("casino", _CASINO_T, 0.08),
    ("crypto", _CRYPTO_T, 0.1),
    ("seo", _SEO_T, 0.14),
    ("channel", _CHANNEL_T, 0.07),
    ("loan", _LOAN_T, 0.07),
    ("whatsapp", _WHATSAPP_T, 0.07),
    ("praise", _PRAISE_T, 0.1),
    ("chatty", _CHATTY_T, 0.1),
    ("gibberish", _GIBBERISH_T, 0.04),
    ("stuffing", (), 0.04),
    ("foreign", (), 0.09),
)
_SPAM_CUM: Final = tuple(
    sum(kind[2] for kind in _SPAM_KINDS[: i + 1]) for i in range(len(_SPAM_KINDS))
)


def _spam(rng: random.Random) -> CommentRecord:
    kind, templates, _ = rng.choices(_SPAM_KINDS, cum_weights=_SPAM_CUM)[0]
    lang: str | None = "en"
    if kind == "stuffing":
        words = [rng.choice(_STUFFING_WORDS) for _ in range(rng.randrange(8, 26))]
        sep = rng.choice((" ", ", ", " | ", " - "))
        text = sep.join(words) + (f" {_spam_url(rng)}" if rng.random() < 0.7 else "")
    elif kind == "foreign":
        lang, template = rng.choice(_FOREIGN_SPAM_T)
        text = _fill(rng, template, _SPAM_VOCAB)
    else:
        text = _fill(rng, rng.choice(templates), _SPAM_VOCAB)
    if kind in ("chatty", "praise") and rng.random() < 0.3:
        # Chatty spam often opens with a fake first-hand story on the post's topic.
        topic = rng.choice(tuple(_EN_TOPICS))
        story = _fill(rng, rng.choice(_EN.bodies), _EN_TOPICS[topic], _EN.common)
        text = f"{_capitalise(story)} {text}"
    text = _spam_noise(rng, text)
    name, email, url = _spam_author(rng)
    if kind == "chatty" and url is None:
        url = _spam_url(rng)
    approved, spam_count = _history(rng, spam=True)
    topic_name = rng.choice(tuple(_BLOG_HOSTS))
    permalink = _permalink(rng, topic_name)
    roll = rng.random()
    referrer = None if roll < 0.5 else permalink if roll < 0.85 else _spam_url(rng)
    return CommentRecord(
        content=text,
        author_name=name,
        author_email=email,
        author_url=url,
        user_ip=_ip(rng, spam=True),
        user_agent=_user_agent(rng, spam=True),
        referrer=referrer,
        permalink=permalink,
        lang=lang if rng.random() < 0.6 else None,
        approved_count=approved,
        spam_count=spam_count,
    )


def _spam_noise(rng: random.Random, text: str) -> str:
    roll = rng.random()
    if roll < 0.1:
        text = text.upper()
    elif roll < 0.2:
        text = text.lower()
    elif roll < 0.25:
        text = " ".join(word.capitalize() for word in text.split(" "))
    roll = rng.random()
    if roll < 0.12:
        text += rng.choice((" !!!", "!!", " 🔥🔥", " 💰💰💰", " 🙏", " ✅", " 👉👉"))
    elif roll < 0.16:
        text = rng.choice(("Hello, ", "Hi! ", "Dear admin, ", "Hey, ")) + text
    if rng.random() < 0.22:
        text = _typo(rng, text)
    return text


_KEYBOARD_NEIGHBOURS: Final = {
    "a": "qs",
    "e": "wr",
    "i": "uo",
    "o": "ip",
    "n": "bm",
    "t": "ry",
    "s": "ad",
    "r": "et",
    "l": "k",
    "h": "gj",
    "u": "yi",
    "c": "xv",
    "d": "sf",
    "m": "n",
}


def _typo(rng: random.Random, text: str) -> str:
    """One human slip at a random letter: swap, drop, double or a neighbouring key. Links
    and code are not protected, as people do mistype them."""
    if len(text) < 6:
        return text
    i = rng.randrange(1, len(text) - 2)
    a, b = text[i], text[i + 1]
    if not (a.isalpha() and b.isalpha()):
        return text
    kind = rng.randrange(4)
    if kind == 0:
        return text[:i] + b + a + text[i + 2 :]
    if kind == 1:
        return text[:i] + text[i + 1 :]
    if kind == 2:
        return text[:i] + a + text[i:]
    neighbours = _KEYBOARD_NEIGHBOURS.get(a.lower())
    if neighbours is None:
        return text
    return text[:i] + rng.choice(neighbours) + text[i + 1 :]
