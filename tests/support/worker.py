"""A real Celery worker in a child process, as ``celery -A workers.celery_app worker``.

The worker (with an embedded beat, and its pool processes if it has any) runs in its own
session, so it can be killed as a whole, like a machine losing power. Its output goes to
one log file per start, which tests read to see what it did.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 20.0

_names = itertools.count(1)


class CeleryWorker:
    """One worker node: ``start()``, ``kill(sig)``, ``restart()``, ``stop()``.

    ``env`` is the whole environment of the child (the test Settings among it, see
    ``tests.support.env.settings_env``); ``workdir`` holds the log files and beat's
    schedule. ``pool`` is Celery's: ``solo`` (one process running one task at a time, as
    production runs the comment path) or ``prefork`` with ``concurrency`` processes;
    ``beat`` embeds the outbox sweeper's scheduler (``-B``).
    """

    def __init__(
        self,
        env: dict[str, str],
        workdir: Path,
        *,
        pool: str = "solo",
        concurrency: int = 2,
        beat: bool = True,
    ) -> None:
        self.env = {
            **env,
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
            "PYTHONUNBUFFERED": "1",
        }
        self.workdir = workdir
        self.pool = pool
        # The processes that run tasks, each loading its classifier: the solo pool runs
        # them in the worker's own process.
        self.concurrency = 1 if pool == "solo" else concurrency
        self.beat = beat
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self.starts = 0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Start a worker and return once it consumes and every pool process has loaded
        its classifier; fails the test (with the log) if it dies or times out first."""
        assert not self.alive, "a worker is running already; stop or kill it first"
        self.starts += 1
        node = f"cg-test-{os.getpid()}-{next(_names)}"
        self.log_path = self.workdir / f"{node}.log"
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.celery_app",
            "worker",
            f"--pool={self.pool}",
            f"--concurrency={self.concurrency}",
            f"--hostname={node}@%h",
            "--loglevel=INFO",
            # Mingle and gossip talk to other nodes; a test has none, and mingle costs ~1 s.
            "--without-mingle",
            "--without-gossip",
        ]
        if self.beat:
            argv += ["--beat", f"--schedule={self.workdir / 'celerybeat-schedule'}"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv,
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(
            self._ready,
            timeout=timeout,
            interval=0.1,
            message=lambda: f"the worker to start; its log:\n{self.log_tail()}",
        )

    def _ready(self) -> bool:
        if not self.alive:
            raise AssertionError(f"the worker exited while starting; its log:\n{self.log_tail()}")
        text = self.log()
        # workers.celery_app logs "worker process <pid> ready: classifier <version>" from
        # each process that runs tasks once it has loaded the classifier.
        loaded = text.count(" ready: classifier ")
        return " ready." in text and loaded >= self.concurrency

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to the worker and reap it.

        SIGKILL goes to the whole worker (main process, pool and beat) at once: a crash,
        nothing acknowledged, nothing cleaned up. Any other signal goes to the main process
        only, as a process manager sends it (Celery stops its pool itself; signalling the
        pool directly makes it start replacements and hang); it is waited for up to
        ``STOP_GRACE_SECONDS``, then followed by SIGKILL.
        """
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if sig == signal.SIGKILL:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)
        try:
            process.wait(timeout=10 if sig == signal.SIGKILL else STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # A pool or beat process that outlived its parent is in the same process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def stop(self) -> None:
        """Celery's warm shutdown (SIGTERM): finish the tasks in hand, then exit."""
        self.kill(signal.SIGTERM)

    def restart(self) -> None:
        """``stop()`` then ``start()``."""
        self.stop()
        self.start()

    def log(self) -> str:
        """Everything the current (or last) worker wrote."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])
