"""The classifiers a process scores with: the registry's active versions, switched
without a restart.

Without a sessionmaker a provider serves one artifact (the configured path, else the
bundled classifier), loaded once. With one it serves the registry's active versions:
at most every ``poll_seconds`` it asks, in one cheap query, which versions are active
(globally and per site), and loads an artifact only when a version it has not loaded
becomes active. So a promotion reaches every worker and API process within
``poll_seconds`` plus one artifact load, and no comment ever pays for a reload. With no
active global version the configured artifact is the implicit one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from service.classifier.model import Classifier, load_classifier, load_classifier_bytes
from service.moderation.registry import active_versions, artifact_of

log = logging.getLogger(__name__)


class LoadedClassifier:
    """A loaded artifact as classification sees it (``ScoringClassifier``): its version,
    its suggested thresholds and ``score``. It serves every site (``for_site``)."""

    def __init__(self, classifier: Classifier, path: Path | None) -> None:
        self.classifier = classifier
        self.path = path
        self.version = str(classifier.metadata["version"])
        self.thresholds = classifier.thresholds
        self.score = classifier.score
        self.score_many = classifier.score_many

    def for_site(self, site_id: int | None) -> LoadedClassifier:
        """This classifier, whatever the site."""
        return self


class ClassifierProvider:
    """The active classifier of each scope, thread-safely (see the module docstring).

    ``get()`` is the global one, ``for_site(site_id)`` the site's own active version or
    else the global one. Both raise the artifact's own error when the implicit artifact
    cannot be loaded; a registry version that fails to load is logged and the scope keeps
    what it served before. ``ready()`` says whether a classifier is loaded, without
    raising, for readiness checks.
    """

    def __init__(
        self,
        path: Path | None,
        *,
        sessions: sessionmaker[Session] | None = None,
        poll_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = path
        self._sessions = sessions
        self._poll_seconds = poll_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._implicit: LoadedClassifier | None = None
        # Scope -> loaded classifier; None until the registry was read once.
        self._serving: dict[int | None, LoadedClassifier] | None = None
        self._checked_at = float("-inf")

    def get(self) -> LoadedClassifier:
        return self.for_site(None)

    def for_site(self, site_id: int | None) -> LoadedClassifier:
        serving = self._current()
        if serving:
            found = serving.get(site_id) if site_id is not None else None
            found = found or serving.get(None)
            if found is not None:
                return found
        return self._implicit_classifier()

    def ready(self) -> tuple[bool, str]:
        """``(True, "ok (<global version>; site <id>: <version> ...)")`` once a classifier
        is loaded, naming what each scope is served with; ``(False, why)`` otherwise."""
        try:
            detail = self.get().version
        except Exception as exc:
            return False, str(exc)
        sites = sorted(
            (scope, loaded.version)
            for scope, loaded in (self._serving or {}).items()
            if scope is not None
        )
        if sites:
            detail += "; " + ", ".join(f"site {scope}: {version}" for scope, version in sites)
        return True, f"ok ({detail})"

    def versions(self) -> dict[int | None, str]:
        """Scope (a site id; None for every site without a version of its own) -> the
        version :meth:`for_site` scores with there now: each site's active version, and
        the global one (the registry's, else the implicit artifact's). Raises as
        :meth:`get` when the implicit artifact is needed and cannot be loaded."""
        found = {scope: loaded.version for scope, loaded in (self._current() or {}).items()}
        if None not in found:
            found[None] = self._implicit_classifier().version
        return found

    def check_now(self) -> None:
        """Ask the registry at the next use, whatever the interval (after a promotion made
        by this very process, say)."""
        self._checked_at = float("-inf")

    # --- internals ----------------------------------------------------------------------

    def _implicit_classifier(self) -> LoadedClassifier:
        loaded = self._implicit
        if loaded is not None:
            return loaded
        with self._lock:
            if self._implicit is None:
                self._implicit = LoadedClassifier(load_classifier(self._path), self._path)
                log.info(
                    "classifier %s loaded from %s",
                    self._implicit.version,
                    self._path or "the bundled artifact",
                )
            return self._implicit

    def _current(self) -> dict[int | None, LoadedClassifier] | None:
        if self._sessions is None:
            return None
        serving = self._serving
        if self._clock() - self._checked_at < self._poll_seconds and serving is not None:
            return serving
        # One thread checks; the others go on with what is served now. Only the very
        # first check (nothing served yet) makes them wait.
        if not self._lock.acquire(blocking=serving is None):
            return serving
        try:
            if self._serving is None or self._clock() - self._checked_at >= self._poll_seconds:
                self._refresh(self._sessions)
            return self._serving
        finally:
            self._lock.release()

    def _refresh(self, sessions: sessionmaker[Session]) -> None:
        previous = self._serving or {}
        try:
            with sessions() as session:
                active = active_versions(session)
                loaded = {v.version: v for v in previous.values()}
                serving: dict[int | None, LoadedClassifier] = {}
                for scope, version in active.items():
                    found = loaded.get(version)
                    if found is None:
                        found = self._load(session, version, previous.get(scope))
                    if found is not None:
                        serving[scope] = found
                        loaded[found.version] = found
        except Exception:
            # The registry cannot be read (the database is down): keep serving what is
            # loaded, and ask again at the next interval.
            log.warning("classifier registry unreachable; serving what is loaded", exc_info=True)
            self._checked_at = self._clock()
            if self._serving is None:
                self._serving = {}
            return
        for scope, found in serving.items():
            before = previous.get(scope)
            if before is None or before.version != found.version:
                log.info(
                    "classifier %s active for %s (was %s)",
                    found.version,
                    "every site" if scope is None else f"site {scope}",
                    before.version if before else "implicit",
                )
        self._serving = serving
        self._checked_at = self._clock()

    def _load(
        self, session: Session, version: str, fallback: LoadedClassifier | None
    ) -> LoadedClassifier | None:
        try:
            classifier = load_classifier_bytes(
                artifact_of(session, version_id=version), name=f"registry:{version}"
            )
        except Exception:
            log.exception(
                "classifier version %s cannot be loaded; the scope keeps %s",
                version,
                fallback.version if fallback else "its fallback",
            )
            return fallback
        return LoadedClassifier(classifier, None)
