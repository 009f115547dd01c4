"""The audit log: who acknowledged what, marked false alarms, changed configs or users, logged in.

    audit = AuditLog(store.engine)
    audit.record("ana", "ack", "alert:01J...", {"note": "patrol sent"})
    audit.entries(limit=50, target="alert:01J...")

Rows are only ever added; nothing in central updates or deletes them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Engine

from central.console_tables import audit_log

UTC = dt.timezone.utc
ACTIONS = ("login", "login_failed", "logout", "ack", "false_alarm", "incident_ack", "config_change", "config_rollback",
           "user_create", "user_update", "node_forget")
MAX_DETAIL_CHARS = 20_000


class AuditLog:
    def __init__(self, engine: Engine):
        self.engine = engine

    def record(self, actor: str, action: str, target: str | None = None, detail: dict[str, Any] | None = None, *,
               conn: Connection | None = None, at: dt.datetime | None = None) -> None:
        """Add one entry; with `conn`, inside that transaction (the change and its record commit together)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        text = json.dumps(detail, default=str)[:MAX_DETAIL_CHARS] if detail else None
        stmt = insert(audit_log).values(at=at or dt.datetime.now(UTC), actor=actor[:100], action=action,
                                        target=target[:200] if target else None, detail=text)
        if conn is not None:
            conn.execute(stmt)
            return
        with self.engine.begin() as c:
            c.execute(stmt)

    def entries(self, *, limit: int = 100, target: str | None = None, before: int | None = None) -> list[dict]:
        """Newest first; `before` is an entry id to continue from."""
        q = select(audit_log)
        if target is not None:
            q = q.where(audit_log.c.target == target)
        if before is not None:
            q = q.where(audit_log.c.id < before)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(audit_log.c.id.desc()).limit(limit)).mappings().all()
        return [{**r, "detail": json.loads(r["detail"]) if r["detail"] else None} for r in rows]
