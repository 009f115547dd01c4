"""Config hot reload: a changed file or SIGHUP brings in the new config, if it is valid.

The file is polled (modification time, size, inode) rather than watched with inotify: one small
file checked once a second costs nothing, and polling also sees editors that replace the file
and bind mounts that inotify misses. An invalid new config is rejected with every reason logged
and the running one is kept.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.config import ConfigError, NodeConfig, load_config

log = logging.getLogger(__name__)

SETTLE_S = 0.3  # a polled change must hold still this long before it is read


@dataclass(frozen=True)
class _Stamp:
    mtime_ns: int
    size: int
    inode: int


def _stamp(path: Path) -> _Stamp | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return _Stamp(st.st_mtime_ns, st.st_size, st.st_ino)


class ConfigReloader:
    """Calls `apply(new_config)` when the file changes to a valid config.

    `check()` does one check now (the polling thread and SIGHUP call it); `applied` and
    `rejected` count outcomes, `last_error` keeps the latest rejection's reasons.
    """

    def __init__(self, path: str | Path, current: NodeConfig, apply: Callable[[NodeConfig], None], *,
                 interval_s: float = 1.0, on_reject: Callable[[list[str]], None] = lambda problems: None):
        self.path = Path(path)
        self.current = current
        self.apply = apply
        self.on_reject = on_reject
        self.interval_s = interval_s
        self.applied = 0
        self.rejected = 0
        self.last_error: list[str] | None = None
        self._stamp = _stamp(self.path)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self, force: bool = False) -> str:
        """'applied', 'rejected' or 'unchanged'."""
        with self._lock:
            stamp = _stamp(self.path)
            if not force:
                if stamp == self._stamp:
                    return "unchanged"
                # An editor or `cat >` may be half-way through writing: wait until the file
                # holds still, or the next poll will look again.
                time.sleep(SETTLE_S)
                if _stamp(self.path) != stamp:
                    return "unchanged"
            self._stamp = stamp
            try:
                new = load_config(self.path)
            except ConfigError as e:
                self.rejected += 1
                self.last_error = e.problems
                for problem in e.problems:
                    log.error("config rejected: %s", problem)
                log.error("keeping the running config (version %s)", self.current.version or "unversioned")
                self.on_reject(e.problems)
                return "rejected"
            if new == self.current:
                return "unchanged"
            self.apply(new)
            self.current = new
            self.applied += 1
            self.last_error = None
            log.warning("config reloaded from %s (version %s)", self.path, new.version or "unversioned")
            return "applied"

    def _run(self) -> None:
        while not self._stop.is_set():
            forced = self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.check(force=forced)
            except Exception:  # a reload bug must not kill the node; say so and keep watching
                log.exception("config reload failed")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="config-reload", daemon=True)
        self._thread.start()

    def request(self) -> None:
        """Check now, even if the file looks unchanged (what SIGHUP does)."""
        self._wake.set()

    def install_sighup(self) -> None:
        if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGHUP, lambda signum, frame: self.request())

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=5)
