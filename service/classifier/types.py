"""The classifier's vocabulary: what goes in (a comment record) and what comes out (a score).

These types are plain frozen dataclasses so that every layer (API schemas, Celery tasks,
data set readers, the CLI) can build them without importing scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class CommentRecord:
    """One comment as the classifier sees it.

    Only ``content`` is required. The author history counts are the author's approved and
    spam comments on the site before this one (0 for a first-time author).
    """

    content: str
    author_name: str | None = None
    author_email: str | None = None
    author_url: str | None = None
    user_ip: str | None = None
    user_agent: str | None = None
    referrer: str | None = None
    permalink: str | None = None
    lang: str | None = None
    approved_count: int = 0
    spam_count: int = 0


Direction = Literal["spam", "ham"]


@dataclass(frozen=True, slots=True)
class Reason:
    """One feature's contribution to a score, in words a moderator can read.

    ``weight`` is the feature's contribution to the log-odds of spam: positive pushes
    toward spam, negative toward ham. ``feature`` is the stable machine name.
    """

    phrase: str
    weight: float
    feature: str

    @property
    def direction(self) -> Direction:
        return "spam" if self.weight > 0 else "ham"


@dataclass(frozen=True, slots=True)
class Score:
    """A calibrated spam probability in [0, 1] and the reasons behind it.

    ``reasons`` holds the strongest contributions toward spam first (largest weight),
    then the strongest toward ham.
    """

    probability: float
    reasons: tuple[Reason, ...] = field(default_factory=tuple)

    @property
    def spam_reasons(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.weight > 0)

    @property
    def ham_reasons(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.weight < 0)
