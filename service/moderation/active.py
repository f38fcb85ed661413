"""The classifier a process scores with: loaded once, on first use, then shared."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from service.classifier import CommentRecord, Score
from service.classifier.model import BUNDLED_PATH, Classifier
from service.moderation.policy import Thresholds

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoadedClassifier:
    """A loaded artifact seen through what classification needs (``ScoringClassifier``)."""

    classifier: Classifier
    path: Path

    @property
    def version(self) -> str:
        return self.classifier.metadata.version

    @property
    def thresholds(self) -> Thresholds:
        t = self.classifier.metadata.thresholds
        return Thresholds(hold=t["hold"], spam=t["spam"], discard=t["discard"])

    def score(self, record: CommentRecord) -> Score:
        return self.classifier.score(record)


class ClassifierProvider:
    """Loads the configured artifact (or the bundled one) once per process, thread-safely.

    ``get()`` raises the artifact's own error when it cannot be loaded; ``ready()`` says
    so without raising, for readiness checks.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path or BUNDLED_PATH
        self._lock = threading.Lock()
        self._loaded: LoadedClassifier | None = None

    def get(self) -> LoadedClassifier:
        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._lock:
            if self._loaded is None:
                self._loaded = LoadedClassifier(Classifier.load(self._path), self._path)
                log.info("classifier %s loaded from %s", self._loaded.version, self._path)
            return self._loaded

    def ready(self) -> tuple[bool, str]:
        try:
            return True, f"ok ({self.get().version})"
        except Exception as exc:
            return False, str(exc)
