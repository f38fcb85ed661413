"""The classifier a process scores with: loaded once, on first use, then shared."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from service.classifier.model import Classifier, load_classifier

log = logging.getLogger(__name__)


class LoadedClassifier:
    """A loaded artifact as classification sees it (``ScoringClassifier``): its version,
    its suggested thresholds and ``score``."""

    def __init__(self, classifier: Classifier, path: Path | None) -> None:
        self.classifier = classifier
        self.path = path
        self.version = str(classifier.metadata["version"])
        self.thresholds = classifier.thresholds
        self.score = classifier.score


class ClassifierProvider:
    """Loads the configured artifact (the bundled one when ``path`` is None) once per
    process, thread-safely.

    ``get()`` raises the artifact's own error when it cannot be loaded; ``ready()`` says
    so without raising, for readiness checks.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._loaded: LoadedClassifier | None = None

    def get(self) -> LoadedClassifier:
        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._lock:
            if self._loaded is None:
                self._loaded = LoadedClassifier(load_classifier(self._path), self._path)
                log.info(
                    "classifier %s loaded from %s",
                    self._loaded.version,
                    self._path or "the bundled artifact",
                )
            return self._loaded

    def ready(self) -> tuple[bool, str]:
        try:
            return True, f"ok ({self.get().version})"
        except Exception as exc:
            return False, str(exc)
