"""The outbox: where every alert waits until the broker has acknowledged it.

A SQLite file in WAL mode. An alert (and its snapshot) is written here before anything is
published and deleted only after the broker's PUBACK, so a crash, a power cut, a broker outage
or a cut link loses nothing. Its row number is the alert's sequence number: it only grows, also
across restarts (AUTOINCREMENT never reuses a number).

The outbox is bounded by count, bytes and age. When full, it drops the oldest alert of the
lowest severity first; every drop is counted (and the count survives restarts) and logged.

Camera threads never wait for the disk: `put` hands the record to a writer thread through a
queue; if the disk stalls for so long that the queue fills, the same eviction rule applies to
what waits in memory, counted alike.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge.alerts import AlertRecord
from edge.config import OutboxSettings

log = logging.getLogger(__name__)

SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
MEMORY_QUEUE = 10_000  # records waiting for the writer thread before memory eviction starts

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    severity INTEGER NOT NULL,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    alert BLOB NOT NULL,
    snapshot BLOB
);
CREATE INDEX IF NOT EXISTS outbox_eviction ON outbox (severity, seq);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Pending:
    seq: int
    id: str
    alert: bytes  # the alert JSON, sequence included
    snapshot: bytes | None


class Outbox:
    def __init__(self, path: str | Path, settings: OutboxSettings, *, clock=time.time):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self._clock = clock
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed alert survives a power cut, not only a crash; alerts are few, an
        # fsync each is cheap next to losing one.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue(MEMORY_QUEUE)
        self._memory_evicted = 0  # dropped from the memory queue, not yet added to the file's counter
        self._evicted_lock = threading.Lock()
        self._written = threading.Condition()
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="outbox-writer", daemon=True)
        self._writer.start()
        self.listeners: list = []  # called after new alerts are stored (the publisher wakes up)

    # -- writing ---------------------------------------------------------------------------------

    def put(self, record: AlertRecord) -> None:
        """Queue an alert for the outbox; never blocks the caller."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._evict_from_memory(record)

    def _evict_from_memory(self, record: AlertRecord) -> None:
        """The disk has stalled for MEMORY_QUEUE alerts: drop the least severe, oldest one."""
        with self._queue.mutex:
            items = list(self._queue.queue)
            items.append(record)
            victim = min(range(len(items)), key=lambda i: (SEVERITY_RANK[items[i].alert.severity], i))
            dropped = items.pop(victim)
            self._queue.queue.clear()
            self._queue.queue.extend(items)
        with self._evicted_lock:  # counted here, written by the writer: the camera never waits on the disk
            self._memory_evicted += 1
        log.error("outbox writer is behind (disk stalled?): dropped alert %s (%s)", dropped.alert.id, dropped.alert.severity)

    def _write_loop(self) -> None:
        while not self._stop.is_set() or not self._queue.empty():
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < 500:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            while True:
                try:
                    self.store(batch)
                    break
                except sqlite3.Error:  # a full or failing disk: keep the batch, try again
                    log.exception("outbox write failed; retrying these %d alert(s) in 1 s", len(batch))
                    time.sleep(1.0)
            for _ in batch:
                self._queue.task_done()
            with self._written:
                self._written.notify_all()

    def store(self, records: list[AlertRecord]) -> list[int]:
        """Write records now (one transaction); returns their sequence numbers (0: duplicate id)."""
        seqs = []
        now = self._clock()
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for rec in records:
                    body = rec.alert.to_json().encode()
                    size = len(body) + len(rec.snapshot or b"")
                    cur.execute(
                        "INSERT OR IGNORE INTO outbox (id, severity, created, size, alert, snapshot) VALUES (?, ?, ?, ?, ?, ?)",
                        (rec.alert.id, SEVERITY_RANK[rec.alert.severity], now, size, body, rec.snapshot),
                    )
                    if cur.rowcount == 0:
                        seqs.append(0)  # already waiting: the same event raised again
                        continue
                    seq = cur.lastrowid
                    numbered = rec.alert.model_copy(update={"sequence": seq}).to_json().encode()
                    cur.execute("UPDATE outbox SET alert = ?, size = ? WHERE seq = ?",
                                (numbered, len(numbered) + len(rec.snapshot or b""), seq))
                    seqs.append(seq)
                with self._evicted_lock:
                    from_memory, self._memory_evicted = self._memory_evicted, 0
                self._enforce_bounds(cur, now, from_memory)
                try:
                    cur.execute("COMMIT")
                except BaseException:
                    with self._evicted_lock:
                        self._memory_evicted += from_memory
                    raise
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        for listener in self.listeners:
            listener()
        return seqs

    def _enforce_bounds(self, cur: sqlite3.Cursor, now: float, already: int = 0) -> None:
        s = self.settings
        evicted = cur.execute("DELETE FROM outbox WHERE created < ?", (now - s.max_age_s,)).rowcount
        if evicted:
            log.warning("outbox: dropped %d alert(s) older than %.0f s", evicted, s.max_age_s)
        count, size = cur.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox").fetchone()
        while count > s.max_alerts or size > s.max_bytes:
            row = cur.execute("SELECT seq, id, size, severity FROM outbox ORDER BY severity, seq LIMIT 1").fetchone()
            cur.execute("DELETE FROM outbox WHERE seq = ?", (row[0],))
            log.warning("outbox full (%d alerts, %d bytes): dropped alert %s (severity rank %d)", count, size, row[1], row[3])
            count, size, evicted = count - 1, size - row[2], evicted + 1
        if evicted + already:
            cur.execute(
                "INSERT INTO counters (name, value) VALUES ('evicted', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (evicted + already,)
            )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued record is in the file."""
        end = time.monotonic() + timeout
        with self._written:
            while self._queue.unfinished_tasks:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                self._written.wait(min(remaining, 0.1))
        return True

    # -- reading (the publisher) -----------------------------------------------------------------

    def pending(self, after_seq: int, limit: int) -> list[Pending]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, alert, snapshot FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            ).fetchall()
        return [Pending(*r) for r in rows]

    def delete(self, seqs: list[int]) -> None:
        if not seqs:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES ('published', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (len(seqs),)
            )
            self._db.execute("COMMIT")

    # -- figures ---------------------------------------------------------------------------------

    def depth(self) -> tuple[int, int, float | None]:
        """(alerts waiting, their bytes, age of the oldest in seconds)."""
        with self._lock:
            count, size, oldest = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(created) FROM outbox"
            ).fetchone()
        return count + self._queue.qsize(), size, (self._clock() - oldest) if oldest is not None else None

    def counter(self, name: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        pending = self._memory_evicted if name == "evicted" else 0
        return (row[0] if row else 0) + pending

    def last_sequence(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        return row[0] if row else 0

    def close(self) -> None:
        self._stop.set()
        self._writer.join(timeout=30)
        with self._lock:
            self._db.close()
