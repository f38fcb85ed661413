"""Moderators' regular expressions: refused before they are stored when they could
backtrack catastrophically, and run with a safety net when they are applied.

Python's ``re`` is a backtracking engine: ``(a+)+$`` takes exponential time on
``"aaaa…b"``, and a site's rules run on every comment in the worker. So a pattern is
accepted only if it passes a static check, done by walking the pattern's parse tree (the
standard library's own parser, ``re._parser``), that refuses, naming why:

* a quantifier inside a repeated group: ``(a+)+``, ``(a*)*``, ``(\\w+\\s?)*``,
  ``(?:ab{1,3})+`` (the check is conservative: some harmless nestings are refused too);
* an alternation under a quantifier whose branches can start with the same character or
  match the empty string: ``(a|a)*``, ``(a|ab)+``, ``(\\w|\\d)+``, ``(|x)*``;
* two unbounded quantifiers that can match the same character with nothing between
  them that the first cannot match too: ``\\d+\\d+``, ``a*a*``, ``.*.*``, and
  ``.*a.*b`` or ``buy.*now.*cheap`` (the first ``.*`` slides over every ``a``): each adds
  a factor of the comment's length, and three of them on 8,000 characters run for
  minutes (``\\w+@\\w+`` passes: ``\\w`` cannot cross the ``@``);
* backreferences (``\\1``, ``(?P=name)``, ``(?(1)…)``), which no linear engine supports.

At match time the patterns run on the first :data:`MATCH_TEXT_LIMIT` characters of a
comment only, which bounds what the check lets through (one unbounded quantifier, under
``search``, is quadratic: ``.*b`` on 8,000 characters takes about a quarter second).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

from service.moderation.text import storable_text

#: The longest pattern accepted, in characters.
MAX_PATTERN_LENGTH = 200
#: The most patterns a site may keep.
MAX_PATTERNS = 100
#: Patterns see at most this many characters of a comment (the safety net).
MATCH_TEXT_LIMIT = 8_000

# The standard library's regex parser: private, but it is what ``re.compile`` itself runs,
# so the tree walked here is the one the engine executes. Typed ``Any``: it has no stubs.
_parser: Any = importlib.import_module("re._parser")
_c: Any = importlib.import_module("re._constants")

_REPEATS = frozenset({_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT})
_BACKREFS = frozenset({_c.GROUPREF, _c.GROUPREF_EXISTS, _c.GROUPREF_IGNORE})
_CATEGORY_TESTS: dict[Any, Callable[[str], bool]] = {
    _c.CATEGORY_DIGIT: lambda ch: re.match(r"\d", ch) is not None,
    _c.CATEGORY_NOT_DIGIT: lambda ch: re.match(r"\D", ch) is not None,
    _c.CATEGORY_SPACE: lambda ch: re.match(r"\s", ch) is not None,
    _c.CATEGORY_NOT_SPACE: lambda ch: re.match(r"\S", ch) is not None,
    _c.CATEGORY_WORD: lambda ch: re.match(r"\w", ch) is not None,
    _c.CATEGORY_NOT_WORD: lambda ch: re.match(r"\W", ch) is not None,
}
#: The characters two character sets are compared on: Latin-1 and a few other scripts.
_ALPHABET = [chr(i) for i in range(256)] + list("ąłšжЖλΩ中文日本한국\u2028\u3000٣")

CharTest = Callable[[str], bool]


class UnsafePattern(ValueError):
    """A pattern that is refused; the message says why."""


def check_pattern(pattern: str) -> str:
    """``pattern`` itself when it is acceptable; else :class:`UnsafePattern` saying why
    (too long, empty, does not compile, or could backtrack catastrophically)."""
    why = _refusal(pattern)
    if why is not None:
        raise UnsafePattern(why)
    return pattern


# The worker validates a site's policy for every comment: check each pattern once.
@lru_cache(maxsize=1024)
def _refusal(pattern: str) -> str | None:
    try:
        _check(pattern)
    except UnsafePattern as exc:
        return str(exc)
    return None


def _check(pattern: str) -> None:
    if not pattern:
        raise UnsafePattern("must not be empty")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise UnsafePattern(f"is over {MAX_PATTERN_LENGTH} characters")
    try:
        storable_text(pattern)
    except ValueError as exc:
        raise UnsafePattern(str(exc)) from None
    try:
        re.compile(pattern, re.IGNORECASE)
        tree = _parser.parse(pattern, re.IGNORECASE)
    except re.error as exc:
        raise UnsafePattern(f"does not compile: {exc}") from None
    _walk(list(tree), inside_repeat=False)


def _walk(items: Sequence[tuple[Any, Any]], *, inside_repeat: bool) -> None:
    previous_unbounded: list[CharTest] | None = None
    for op, av in items:
        if op in _BACKREFS:
            raise UnsafePattern("uses a backreference, which can backtrack catastrophically")
        if op in _REPEATS:
            low, high, body = av
            body_items = list(body)
            repeats_many = high is _c.MAXREPEAT or high > 1
            if repeats_many:
                if inside_repeat:
                    raise UnsafePattern(
                        "nests a quantifier inside a repeated group (as in (a+)+), "
                        "which can backtrack catastrophically"
                    )
                _check_branches(body_items)
            _walk(body_items, inside_repeat=inside_repeat or repeats_many)
            if high is _c.MAXREPEAT:
                first = _first(body_items)
                if previous_unbounded is not None and _overlap(previous_unbounded, first):
                    raise UnsafePattern(
                        "has two unbounded quantifiers in a row that match the same "
                        "characters (as in \\d+\\d+ or .*a.*b)"
                    )
                previous_unbounded = first
            elif low > 0:
                previous_unbounded = _still_open(previous_unbounded, [(op, av)])
            continue
        if previous_unbounded is not None and op is not _c.AT and _has_unbounded([(op, av)]):
            _separated(previous_unbounded, [(op, av)])
        if op is _c.SUBPATTERN:
            _walk(list(av[-1]), inside_repeat=inside_repeat)
        elif op is _c.BRANCH:
            for branch in av[1]:
                _walk(list(branch), inside_repeat=inside_repeat)
        elif op in (_c.ASSERT, _c.ASSERT_NOT):
            _walk(list(av[1]), inside_repeat=inside_repeat)
            continue
        elif op is _c.ATOMIC_GROUP:
            _walk(list(av), inside_repeat=inside_repeat)
        if op is not _c.AT:
            previous_unbounded = _still_open(previous_unbounded, [(op, av)])


def _still_open(
    previous_unbounded: list[CharTest] | None, items: list[tuple[Any, Any]]
) -> list[CharTest] | None:
    """After ``items`` (which must consume a character), is the unbounded quantifier
    before them still one a later quantifier must not overlap? Only when it cannot match
    the characters ``items`` start with: then the text between them is fixed. When it can
    (``.*`` before ``a`` in ``.*a.*b``), it can slide over every ``a`` of the comment, and
    each further unbounded quantifier multiplies the tries by the comment's length."""
    if previous_unbounded is None or not _overlap(previous_unbounded, _first(items)):
        return None
    return previous_unbounded


def _separated(previous_unbounded: list[CharTest], items: list[tuple[Any, Any]]) -> None:
    """``items`` hold an unbounded quantifier of their own (in a group or alternation):
    refuse them after an open unbounded quantifier that can slide over them."""
    if _overlap(previous_unbounded, _first(items)):
        raise UnsafePattern(
            "has two unbounded quantifiers in a row that match the same "
            "characters (as in \\d+\\d+ or .*a.*b)"
        )


def _has_unbounded(items: Iterable[tuple[Any, Any]]) -> bool:
    for op, av in items:
        if op in _REPEATS and (av[1] is _c.MAXREPEAT or _has_unbounded(av[2])):
            return True
        if op is _c.SUBPATTERN and _has_unbounded(av[-1]):
            return True
        if op is _c.BRANCH and any(_has_unbounded(b) for b in av[1]):
            return True
        if op is _c.ATOMIC_GROUP and _has_unbounded(av):
            return True
    return False


def _check_branches(items: Sequence[tuple[Any, Any]]) -> None:
    """Under a quantifier: alternatives must not be able to start alike or be empty.

    The parser rewrites single-character alternatives into a set (``(a|b)`` becomes
    ``[ab]``) and factors out common prefixes (``(a|ab)`` becomes ``a(?:|b)``), so a set
    with overlapping members counts as an alternation here, and so does a factored one.
    """
    for op, av in items:
        if op is _c.SUBPATTERN:
            _check_branches(list(av[-1]))
        elif op is _c.BRANCH:
            firsts: list[list[CharTest]] = []
            for branch in (list(b) for b in av[1]):
                if _nullable(branch):
                    raise UnsafePattern(
                        "repeats an alternation with an empty alternative (as in (|a)* or (a|ab)+)"
                    )
                first = _first(branch)
                if any(_overlap(first, other) for other in firsts):
                    raise UnsafePattern(
                        "repeats an alternation whose alternatives can match the same "
                        "text (as in (ab|a.)+)"
                    )
                firsts.append(first)
                _check_branches(branch)
        elif op is _c.IN and not any(o is _c.NEGATE for o, _ in av):
            members = [[_char_test(o, a)] for o, a in av]
            for i, member in enumerate(members):
                if any(_overlap(member, other) for other in members[:i]):
                    raise UnsafePattern(
                        "repeats alternatives that can match the same character "
                        "(as in (a|a)* or (\\w|\\d)+)"
                    )


def _nullable(items: Iterable[tuple[Any, Any]]) -> bool:
    for op, av in items:
        if op in _REPEATS:
            if av[0] > 0 and not _nullable(av[2]):
                return False
        elif op is _c.SUBPATTERN:
            if not _nullable(av[-1]):
                return False
        elif op is _c.BRANCH:
            if not any(_nullable(b) for b in av[1]):
                return False
        elif op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
            continue
        else:
            return False
    return True


def _first(items: Iterable[tuple[Any, Any]]) -> list[CharTest]:
    """Tests for the characters a match of ``items`` can start with (over-approximated)."""
    tests: list[CharTest] = []
    for op, av in items:
        if op in _REPEATS:
            tests.extend(_first(av[2]))
            if av[0] > 0 and not _nullable(av[2]):
                return tests
        elif op is _c.SUBPATTERN:
            tests.extend(_first(av[-1]))
            if not _nullable(av[-1]):
                return tests
        elif op is _c.BRANCH:
            for branch in av[1]:
                tests.extend(_first(branch))
            if not any(_nullable(b) for b in av[1]):
                return tests
        elif op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
            continue
        else:
            tests.append(_char_test(op, av))
            return tests
    return tests


def _char_test(op: Any, av: Any) -> CharTest:
    if op is _c.LITERAL:
        char = chr(av)
        return lambda ch: ch.lower() == char.lower()
    if op is _c.NOT_LITERAL:
        char = chr(av)
        return lambda ch: ch.lower() != char.lower()
    if op is _c.IN:
        negate = any(o is _c.NEGATE for o, _ in av)
        parts = [_char_test(o, a) for o, a in av if o is not _c.NEGATE]
        if negate:
            return lambda ch: not any(t(ch) for t in parts)
        return lambda ch: any(t(ch) for t in parts)
    if op is _c.RANGE:
        low, high = chr(av[0]), chr(av[1])
        return lambda ch: low <= ch <= high or low <= ch.lower() <= high
    if op is _c.CATEGORY:
        return _CATEGORY_TESTS.get(av, lambda ch: True)
    # ANY and whatever else: assume it can match anything.
    return lambda ch: True


def _overlap(left: list[CharTest], right: list[CharTest]) -> bool:
    return any(
        any(test(ch) for test in left) and any(test(ch) for test in right) for ch in _ALPHABET
    )


@lru_cache(maxsize=256)
def _compiled(patterns: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((p, re.compile(p, re.IGNORECASE)) for p in patterns)


def find_patterns(patterns: Sequence[str], text: str) -> list[str]:
    """The patterns that match somewhere in the first :data:`MATCH_TEXT_LIMIT` characters
    of ``text`` (case-insensitive), in the order they are listed."""
    if not patterns:
        return []
    head = text[:MATCH_TEXT_LIMIT]
    return [p for p, compiled in _compiled(tuple(patterns)) if compiled.search(head)]
