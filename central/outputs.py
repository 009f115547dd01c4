"""The outputs queue: alerts and incidents for TAK servers and webhooks, durable in the database.

    outputs = Outputs(store.engine, [TakSink(...), WebhookSink(...)], filters)
    outputs.enqueue("alert", alert["id"], 1, {"kind": "alert", "alert": alert})   # idempotent
    outputs.start()      # a worker thread sends what is due, oldest first per sink

Enqueueing is one INSERT (ON CONFLICT DO NOTHING: a second replica or a restart enqueueing the
same item adds nothing); sending happens on the worker's own thread, so a TAK server or webhook
that is slow or away never holds up ingest. A failed send is retried with exponential backoff
(1 s doubling to `max_backoff_s`), each sink in its own order, until `give_up_after_s`. Items
survive a restart of central: the worker picks up what is still undelivered.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from central.console_tables import outputs

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
BATCH = 50


@dataclass(frozen=True, slots=True)
class SinkFilter:
    kinds: tuple[str, ...] = ("alert", "incident")
    min_severity: str = "info"

    def wants(self, kind: str, severity: str) -> bool:
        return kind in self.kinds and SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK[self.min_severity]


class Outputs:
    def __init__(self, engine: Engine, sinks: Sequence, filters: dict[str, SinkFilter] | None = None, *,
                 max_backoff_s: float = 300.0, give_up_after_s: float = 86_400.0, poll_s: float = 0.5):
        self.engine = engine
        self.sinks = {s.name: s for s in sinks}
        self.filters = filters or {}
        self.max_backoff_s = max_backoff_s
        self.give_up_after_s = give_up_after_s
        self.poll_s = poll_s
        self.delivered = 0
        self.failures = 0
        self._insert = sqlite.insert if engine.dialect.name == "sqlite" else postgresql.insert
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def enqueue(self, kind: str, ref: str, revision: int, item: dict, severity: str = "info",
                now: dt.datetime | None = None) -> int:
        """Queue the item for every sink that wants it; returns how many rows were new."""
        now = now or dt.datetime.now(UTC)
        rows = [dict(sink=name, kind=kind, ref=ref, revision=revision, payload=json.dumps(item, default=str),
                     created_at=now, next_at=now, attempts=0, gave_up=False)
                for name in self.sinks if self.filters.get(name, SinkFilter()).wants(kind, severity)]
        if not rows:
            return 0
        stmt = self._insert(outputs).on_conflict_do_nothing(index_elements=["sink", "kind", "ref", "revision"])
        with self.engine.begin() as conn:
            n = conn.execute(stmt, rows).rowcount
        self._wake.set()
        return max(n, 0)

    def pending(self) -> dict[str, int]:
        """Undelivered items per sink (given-up ones excluded)."""
        q = (select(outputs.c.sink, func.count()).where(outputs.c.delivered_at.is_(None), outputs.c.gave_up.is_(False))
             .group_by(outputs.c.sink))
        with self.engine.connect() as conn:
            return dict(conn.execute(q).all())

    def items(self, limit: int = 100) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(outputs).order_by(outputs.c.id.desc()).limit(limit)).mappings()]

    def run_once(self, now: dt.datetime | None = None) -> int:
        """Send what is due, per sink; returns how many were delivered."""
        sent = 0
        for name, sink in self.sinks.items():
            now = now or dt.datetime.now(UTC)
            q = (select(outputs).where(outputs.c.sink == name, outputs.c.delivered_at.is_(None),
                                       outputs.c.gave_up.is_(False))
                 .order_by(outputs.c.id).limit(BATCH))
            with self.engine.connect() as conn:
                rows = conn.execute(q).mappings().all()
            for row in rows:
                if row["next_at"] > now:
                    break  # this sink waits out its backoff: keep its order
                if self._stop.is_set():
                    return sent
                try:
                    sink.send(json.loads(row["payload"]), row["id"])
                except Exception as e:  # any failure of a remote system: retry later, never raise into the worker
                    self._failed(row, e, now)
                    break
                with self.engine.begin() as conn:
                    conn.execute(update(outputs).where(outputs.c.id == row["id"])
                                 .values(delivered_at=dt.datetime.now(UTC), attempts=row["attempts"] + 1))
                sent += 1
                self.delivered += 1
        return sent

    def _failed(self, row, e: Exception, now: dt.datetime) -> None:
        self.failures += 1
        attempts = row["attempts"] + 1
        backoff = min(self.max_backoff_s, 2.0 ** (attempts - 1))
        give_up = (now - row["created_at"]).total_seconds() > self.give_up_after_s
        reason = f"{type(e).__name__}: {e}"[:500]
        log.warning("output %s: sending %s %s failed (attempt %d): %s%s", row["sink"], row["kind"], row["ref"],
                    attempts, reason, "; giving up" if give_up else f"; retrying in {backoff:.0f} s")
        with self.engine.begin() as conn:
            conn.execute(update(outputs).where(outputs.c.id == row["id"]).values(
                attempts=attempts, last_error=reason, gave_up=give_up,
                next_at=now + dt.timedelta(seconds=backoff)))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the database away: say so, try again
                log.exception("outputs worker")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def start(self) -> None:
        if self.sinks and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="outputs", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        for sink in self.sinks.values():
            try:
                sink.close()
            except Exception:  # closing a broken connection
                pass

