"""Small hand-written labelled comments for tests that need something to train on.

Not a corpus and not realistic: a few dozen ordinary blog comments and blatant spam,
written here, combined so that a test can ask for a few hundred distinct comments. Tests
that use them assert behaviour (a classifier trains, saves, scores, ranks blatant spam
above plain comments), never a particular score.
"""

from __future__ import annotations

import random

from service.classifier.datasets import Dataset, dataset_fingerprint
from service.classifier.types import CommentRecord

HAM_OPENERS = (
    "Thanks for this post.",
    "Great write-up.",
    "I tried this last weekend.",
    "Interesting point about the second step.",
    "Not sure I agree.",
    "This matches what I saw at work.",
    "Quick question.",
    "Lovely photos as always.",
    "Bookmarked for later.",
    "My grandmother made it the same way.",
    "Good explanation.",
    "I had the same problem.",
    "Small correction:",
    "Followed your guide yesterday.",
    "Nice to see this covered.",
    "We use something similar on our team.",
)
HAM_BODIES = (
    "The part about the sourdough starter finally made sense to me.",
    "Does the retry setting also apply when the worker restarts?",
    "I think the chart in the third section has the axes swapped.",
    "It took me two tries but the bread came out fine.",
    "We moved our cluster to the newer version and it has been stable.",
    "Could you share which lens you used for the harbour picture?",
    "The trail was muddy after the rain, so bring proper boots.",
    "My tomatoes did better once I watered them in the morning.",
    "I would add a note about backing up the database first.",
    "The recipe works with oat milk too, just add a little more flour.",
    "Looking forward to the next part of the series.",
    "The library changed its defaults in the last release, worth mentioning.",
    "I read the book after your review and enjoyed the ending.",
    "Our kids loved the museum you recommended.",
    "Happy to help test the new version if you need people.",
    "The bike route along the river is even nicer in autumn.",
)
SPAM_PITCHES = (
    "BUY CHEAP VIAGRA NOW best prices online",
    "Earn $5000 a week from home, no experience needed",
    "Best online casino bonus, free spins for new players",
    "Cheap replica watches and designer bags, free shipping",
    "Get rich with bitcoin trading, guaranteed profit daily",
    "Subscribe to my channel and win a free iPhone",
    "Lose 20 pounds in 10 days with this miracle pill",
    "Payday loans approved instantly, no credit check",
    "CHECK OUT MY CHANNEL for the best music videos",
    "Hot singles in your area waiting for you",
    "Buy followers and likes cheap, instant delivery",
    "Make money online fast, click here for the secret",
    "Discount pharmacy, no prescription required",
    "Win a free gift card, limited offer, act now",
    "SEO services, rank first on Google guaranteed",
    "Work from home and earn big money today",
)
SPAM_LINKS = (
    "http://cheap-pills.example/buy",
    "http://bit.ly/3xYz9Q",
    "http://casino-bonus.example/?ref=77",
    "www.get-rich-now.example",
    "http://free-iphone.example/win",
    "http://loans-fast.example/apply",
    "http://tinyurl.com/y7abc12",
    "http://seo-rank.example/offer",
)


def _texts(pool_a: tuple[str, ...], pool_b: tuple[str, ...]) -> list[str]:
    return [f"{a} {b}" for a in pool_a for b in pool_b]


def labelled_comments(n: int, *, seed: int = 0, spam_ratio: float = 0.4) -> Dataset:
    """``n`` distinct labelled comments (``round(n * spam_ratio)`` spam), shuffled by
    ``seed``: combinations of the hand-written lines above (and, past the 256 ham or 128
    spam combinations, the same with a counter word appended)."""
    if n < 0 or not 0.0 <= spam_ratio <= 1.0:
        raise ValueError("n must be >= 0 and spam_ratio within [0, 1]")
    rng = random.Random(seed)
    ham, spam = _texts(HAM_OPENERS, HAM_BODIES), _texts(SPAM_PITCHES, SPAM_LINKS)
    rng.shuffle(ham)
    rng.shuffle(spam)
    n_spam = round(n * spam_ratio)
    labels = [1] * n_spam + [0] * (n - n_spam)
    rng.shuffle(labels)
    records: list[CommentRecord] = []
    seen = {0: 0, 1: 0}
    for label in labels:
        pool = spam if label else ham
        i = seen[label]
        seen[label] += 1
        text = pool[i % len(pool)]
        if i >= len(pool):
            text = f"{text} (take {i // len(pool) + 1})"
        records.append(CommentRecord(content=text, author_name=f"reader{rng.randrange(1000)}"))
    return Dataset(
        records=records,
        labels=labels,
        format="csv",
        source=f"tests:seed={seed},n={n}",
        fingerprint=dataset_fingerprint(records, labels),
    )
