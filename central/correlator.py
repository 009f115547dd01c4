"""Keeps incidents up to date as alerts arrive: central.incidents' grouping, fed from the store.

The correlator holds the last `lookback_s` of alerts in memory (loaded from the store at start),
links each new alert to the ones that describe the same object, and writes the result: a new
incident for a new group, new members for an existing one, two incidents merged when an alert
joins them. An incident that gains an alert after it was acknowledged is open again: the new
alert is news to the guards.

Run it on one central replica (settings: `correlate`); the others serve the console.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from ulid import ULID

from central.console_tables import incidents
from central.incidents import IncidentRules, Sighting, _Sets, links, sighting, summarise
from central.store import alerts

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
MAX_RECENT = 100_000


class Correlator:
    def __init__(self, engine: Engine, rules: IncidentRules, lookback_s: float = 600.0):
        self.engine = engine
        self.rules = rules
        self.lookback = dt.timedelta(seconds=lookback_s)
        self.recent: dict[str, Sighting] = {}
        self.incident_of: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def bootstrap(self, now: dt.datetime | None = None, exclude: set[str] = frozenset()) -> int:
        """Load the last `lookback_s` of stored alerts (but `exclude`: those about to be processed)."""
        now = now or dt.datetime.now(UTC)
        q = (select(alerts.c.payload, alerts.c.incident_id).where(alerts.c.event_time >= now - self.lookback)
             .order_by(alerts.c.event_time.desc()).limit(MAX_RECENT))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        with self._lock:
            for payload, incident_id in rows:
                s = sighting(json.loads(payload))
                if s.id in exclude:
                    continue
                self.recent[s.id] = s
                self.incident_of[s.id] = incident_id
        return len(rows)

    def process(self, new_alerts: list[dict]) -> list[str]:
        """Group newly stored alerts (the API's dicts); returns the incidents created or changed."""
        with self._lock:
            fresh = [sighting(a) for a in new_alerts if a["id"] not in self.recent]
            if not fresh:
                return []
            pairs = links(fresh, list(self.recent.values()), self.rules)
            for s in fresh:
                self.recent[s.id] = s
                self.incident_of.setdefault(s.id, None)
            self._prune(max(s.end for s in fresh))
            sets = _Sets()
            for a, b in pairs:
                sets.union(a, b)
            components: dict[str, set[str]] = {}
            for a, b in pairs:
                components.setdefault(sets.find(a), set()).update((a, b))
            changed = []
            for members in components.values():
                changed.append(self._write(members))
            return sorted(set(changed))

    def _prune(self, newest: dt.datetime) -> None:
        horizon = newest - self.lookback
        for k in [k for k, s in self.recent.items() if s.end < horizon]:
            del self.recent[k]
            self.incident_of.pop(k, None)
        while len(self.recent) > MAX_RECENT:
            k = next(iter(self.recent))
            del self.recent[k]
            self.incident_of.pop(k, None)

    def _write(self, members: set[str]) -> str:
        existing = sorted({self.incident_of[m] for m in members if self.incident_of.get(m)})
        now = dt.datetime.now(UTC)
        with self.engine.begin() as conn:
            if existing:
                target, merged = existing[0], existing[1:]
            else:
                first = min(self.recent[m].start for m in members)
                target, merged = str(ULID.from_datetime(first)), []
            cond = alerts.c.id.in_(sorted(members))
            if merged:
                cond = cond | alerts.c.incident_id.in_(merged)
            conn.execute(update(alerts).where(cond).values(incident_id=target))
            if merged:
                conn.execute(delete(incidents).where(incidents.c.id.in_(merged)))
            rows = conn.execute(select(alerts.c.payload, alerts.c.acknowledged_at)
                                .where(alerts.c.incident_id == target)).all()
            summary = summarise([json.loads(r.payload) for r in rows])
            all_acked = all(r.acknowledged_at is not None for r in rows)
            values = {**summary, "summary": json.dumps(summary["summary"]), "updated_at": now}
            old = conn.execute(select(incidents.c.revision).where(incidents.c.id == target)).scalar()
            if old is None:
                conn.execute(insert(incidents).values(id=target, revision=1, created_at=now, **values))
            else:
                if not all_acked:  # news since the acknowledgement: open again
                    values.update(acknowledged_at=None, acknowledged_by=None)
                conn.execute(update(incidents).where(incidents.c.id == target).values(revision=old + 1, **values))
        for m, inc in list(self.incident_of.items()):
            if inc in merged:
                self.incident_of[m] = target
        for m in members:
            self.incident_of[m] = target
        return target
