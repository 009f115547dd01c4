"""Central's store: alerts, snapshots, dead letters and node state in SQLite or PostgreSQL.

    store = Store("sqlite:///zastava-central.db")       # or "postgresql://zastava@db.hq/zastava"
    new = store.add_alerts([(alert, received_at), ...])  # idempotent on the alert id
    rows, cursor = store.list_alerts(AlertFilters(severity=("high",)), None, 100)

SQLAlchemy Core with the dialect's `INSERT ... ON CONFLICT`, so one code path serves both
databases: a redelivered message (MQTT QoS 1 is at-least-once) never becomes a second row, and
several central replicas may write at once. Times are stored in UTC and returned timezone-aware.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    bindparam,
    case,
    create_engine,
    event,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from edge.contract import ULID_PATTERN, Alert, ConfigState, Heartbeat, Status
from edge.errors import ZastavaError

UTC = dt.timezone.utc
TOPIC_MAX_CHARS = 300
REASON_MAX_CHARS = 2000
SNAPSHOT_PATH = "/api/v1/alerts/{id}/snapshot"


class StoreError(ZastavaError):
    """The database cannot be opened or used; the message names it (without its password)."""


class _SomeAlreadyStored(Exception):
    """A batch held alerts already stored: ask the database which ones are new."""


class InvalidCursor(ValueError):
    """A pagination cursor this store did not hand out."""


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out. SQLite keeps them as naive UTC text in one fixed format,
    so text order is time order and keyset pagination works on both databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        value = utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc(value: dt.datetime) -> dt.datetime:
    """A naive time is taken as UTC (the contract's times are UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("site", String(64), nullable=False),
    Column("node", String(64), nullable=False),
    Column("camera", String(64), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("rule_type", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("class_name", String(64), nullable=False),
    Column("score", Float, nullable=False),
    Column("best_score", Float, nullable=False),
    Column("track_id", BigInteger),
    Column("zone", String(64)),
    Column("line", String(64)),
    Column("event_time", UTCDateTime, nullable=False),
    Column("sequence", BigInteger),
    Column("received_at", UTCDateTime, nullable=False),
    Column("payload", Text, nullable=False),
    Column("has_snapshot", Boolean, nullable=False),
    Column("acknowledged_at", UTCDateTime),
    Column("acknowledged_by", String(100)),
    Column("ack_note", Text),
    # The console's: "false_alarm" once an operator said so (kept as feedback), and the
    # incident the correlator put the alert in.
    Column("verdict", String(16)),
    Column("incident_id", String(26)),
    # Every list is newest first, so each filter's index ends with the sort key.
    Index("ix_alerts_time", "event_time", "id"),
    Index("ix_alerts_node_sequence", "node", "sequence"),  # gaps in a node's numbering
    Index("ix_alerts_node_time", "node", "event_time", "id"),
    Index("ix_alerts_site_time", "site", "event_time", "id"),
    Index("ix_alerts_camera_time", "camera", "event_time", "id"),
    Index("ix_alerts_rule_time", "rule", "event_time", "id"),
    Index("ix_alerts_class_time", "class_name", "event_time", "id"),
    Index("ix_alerts_severity_time", "severity", "event_time", "id"),
    Index("ix_alerts_received", "received_at"),  # the live feed follows arrivals
    Index("ix_alerts_incident", "incident_id"),
)
# The operators' usual question is "what is still open": a partial index keeps it quick
# however many acknowledged alerts pile up.
Index(
    "ix_alerts_open_time",
    alerts.c.event_time,
    alerts.c.id,
    sqlite_where=alerts.c.acknowledged_at.is_(None),
    postgresql_where=alerts.c.acknowledged_at.is_(None),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("alert_id", String(26), primary_key=True),  # no foreign key: a snapshot may come first
    Column("data", LargeBinary, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("topic", String(TOPIC_MAX_CHARS), nullable=False),
    Column("reason", Text, nullable=False),
    Column("reason_key", String(32), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Index("ix_dead_letters_reason", "reason_key"),
)

nodes = Table(
    "nodes",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("node", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("status_time", UTCDateTime),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("software", String(64)),
    Column("config_version", String(64)),
    Column("heartbeat", Text),
    Column("heartbeat_time", UTCDateTime),
    Column("last_sequence", BigInteger),
    Column("alerts", BigInteger, nullable=False),
    Column("last_event_time", UTCDateTime),
    Column("config_state", Text),
    Column("config_state_time", UTCDateTime),
)

# Dead letters are counted by a short key (a metric label must not carry free text): the
# `key` of edge.contract.ContractError, or "other" for what ingest refuses for its own reasons.
REASON_KEYS = ("topic", "size", "schema", "jpeg", "spoofed", "other")
_REASON_PATTERNS = (  # for callers without a ContractError; the most specific first
    ("size", re.compile(r"byte limit|too large")),
    ("jpeg", re.compile(r"not a JPEG")),
    ("spoofed", re.compile(r"payload names node")),
    ("schema", re.compile(r"fails the contract")),
    ("topic", re.compile(r"\btopic\b")),
)


def reason_key(reason: str) -> str:
    """'snapshot payload is not a JPEG' -> 'jpeg': the dead letter's kind, as ContractError.key names it."""
    for key, pattern in _REASON_PATTERNS:
        if pattern.search(reason):
            return key
    return "other"


@dataclass(frozen=True, slots=True)
class AlertFilters:
    """What `list_alerts` keeps; None (or an empty tuple) means any. `since` is inclusive,
    `until` exclusive, both on the alert's event time."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    site: str | None = None
    node: str | None = None
    camera: str | None = None
    class_name: str | None = None
    rule: str | None = None
    severity: tuple[str, ...] = ()
    acknowledged: bool | None = None
    # The console's states: open (nobody acted), acknowledged (handled, a real alert),
    # false_alarm (handled, marked as one).
    states: tuple[str, ...] = ()
    incident_id: str | None = None


ALERT_STATES = ("open", "acknowledged", "false_alarm")


def encode_cursor(event_time: dt.datetime, alert_id: str) -> str:
    raw = f"{utc(event_time).isoformat()}|{alert_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, alert_id = raw.split("|")
        parsed = utc(dt.datetime.fromisoformat(when))
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise InvalidCursor("cursor is not one this API handed out") from None
    if not re.fullmatch(ULID_PATTERN, alert_id):
        raise InvalidCursor("cursor is not one this API handed out")
    return parsed, alert_id


def _later(old, new):
    """The larger of two nullable values, in SQL both databases run (SQLite's max() and
    PostgreSQL's GREATEST() treat NULL differently)."""
    return case((new.is_(None), old), (old.is_(None), new), (new > old, new), else_=old)


def _if_newer(time_col, new_time, old, new):
    """`new` when the message is at least as recent as the one stored, else keep `old`: a stale
    retained message must not overwrite fresher state."""
    return case((or_(time_col.is_(None), new_time >= time_col), new), else_=old)


class Store:
    """One database. Thread-safe: every method takes a pooled connection for its own transaction."""

    def __init__(self, url: str, *, dead_letter_max_bytes: int = 4096, echo: bool = False):
        self.url = _driver_url(url)
        self.dead_letter_max_bytes = dead_letter_max_bytes
        self._shown = self.url.render_as_string(hide_password=True)
        self.engine = _engine(self.url, echo)
        self.dialect = self.engine.dialect.name
        self._insert = sqlite.insert if self.dialect == "sqlite" else postgresql.insert
        try:
            metadata.create_all(self.engine)
        except SQLAlchemyError as e:
            self.engine.dispose()
            raise StoreError(f"cannot open the database {self._shown}: {_first_line(e)}") from None

    def __repr__(self) -> str:
        return f"Store({self._shown!r})"

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """Raises SQLAlchemyError when the database does not answer."""
        with self.engine.connect() as conn:
            conn.execute(select(literal(1))).scalar_one()

    # --- ingest -------------------------------------------------------------------------------

    def add_alerts(self, items: Sequence[tuple[Alert, dt.datetime] | tuple[Alert, dt.datetime, bytes]]) -> int:
        """Store (alert, received_at[, JSON as received]) in one transaction; returns how many
        were new. A redelivered alert, or one repeated inside the batch, is not a second row.
        The JSON as received, when given, is stored as it is (no second serialisation)."""
        if not items:
            return 0
        rows: dict[str, dict[str, Any]] = {}
        for alert, received_at, *raw in items:
            if alert.id not in rows:
                rows[alert.id] = _alert_row(alert, received_at, raw[0].decode() if raw else None)
        # Sorted by key so two replicas writing overlapping batches lock rows in the same order.
        ordered = [rows[k] for k in sorted(rows)]
        # The usual batch holds only new alerts; a batch after a reconnect may hold redeliveries;
        # rarely, another replica stores some of the same alerts at the same moment.
        for how in ("all_new", "skip_known", "returning"):
            try:
                return self._store_alerts(ordered, how)
            except _SomeAlreadyStored:
                continue
        raise AssertionError("RETURNING always tells which alerts are new")

    def _store_alerts(self, ordered: list[dict[str, Any]], how: str) -> int:
        # A plain executemany is the fast way in (RETURNING would make PostgreSQL's driver parse a
        # multi-row VALUES statement in Python: 2.5x slower), and its row count is all the node
        # counters need, provided every row it offers is new. "all_new" assumes so, "skip_known"
        # first asks which ids are stored already; either stops when the count falls short, and
        # "returning" then says exactly which rows went in.
        insert = self._insert(alerts).on_conflict_do_nothing(index_elements=[alerts.c.id])
        with self.engine.begin() as conn:
            if how == "returning":
                new_ids = set(conn.execute(insert.returning(alerts.c.id), ordered).scalars())
            else:
                fresh = ordered
                if how == "skip_known":
                    # Read, then write: safe on SQLite, where pysqlite begins the transaction at the
                    # first write, so the read holds no snapshot the write would have to upgrade.
                    ids = [r["id"] for r in ordered]
                    known = set(conn.execute(select(alerts.c.id).where(alerts.c.id.in_(ids))).scalars())
                    fresh = [r for r in ordered if r["id"] not in known]
                if fresh:
                    stored = conn.execution_options(preserve_rowcount=True).execute(insert, fresh).rowcount
                    if stored != len(fresh):  # also when the driver cannot count (-1)
                        raise _SomeAlreadyStored  # rolls the transaction back
                new_ids = {r["id"] for r in fresh}
            if new_ids:
                # Snapshots that came before their alert.
                waiting = select(snapshots.c.alert_id).where(snapshots.c.alert_id.in_(sorted(new_ids)))
                conn.execute(update(alerts).where(alerts.c.id.in_(waiting)).values(has_snapshot=True))
            conn.execute(self._node_upsert(), _node_rows(ordered, new_ids))
        return len(new_ids)

    def add_snapshot(self, alert_id: str, data: bytes, received_at: dt.datetime) -> bool:
        """Store an alert's JPEG whether the alert is here yet or not; True when it was new."""
        stmt = (self._insert(snapshots).on_conflict_do_nothing(index_elements=[snapshots.c.alert_id])
                .returning(snapshots.c.alert_id))
        with self.engine.begin() as conn:
            new = conn.execute(
                stmt, {"alert_id": alert_id, "data": data, "sha256": hashlib.sha256(data).hexdigest(),
                       "received_at": received_at}
            ).first() is not None
            conn.execute(update(alerts).where(alerts.c.id == alert_id, alerts.c.has_snapshot.is_(False))
                         .values(has_snapshot=True))
        return new

    def add_dead_letter(self, topic: str, reason: str, payload: bytes, received_at: dt.datetime,
                        key: str | None = None) -> None:
        """Keep a refused message aside: its topic, why, and the first bytes of its payload.
        `key` is the ContractError's key; without it, one is read from the reason."""
        with self.engine.begin() as conn:
            conn.execute(
                dead_letters.insert(),
                {
                    "received_at": received_at,
                    "topic": _text(topic[:TOPIC_MAX_CHARS]),
                    "reason": _text(reason[:REASON_MAX_CHARS]),
                    "reason_key": key or reason_key(reason),
                    "payload": bytes(payload[: self.dead_letter_max_bytes]),
                    "size": len(payload),
                },
            )

    def update_status(self, status: Status, received_at: dt.datetime) -> None:
        # The last status received wins, not the newest `time`: the broker publishes a node's
        # Last Will ("offline") with the time the node wrote it when it connected.
        stmt = self._insert(nodes).values(
            site=status.site, node=status.node, state=status.state, status_time=status.time, last_seen=received_at,
            software=_text(status.software), config_version=_text(status.config_version), alerts=0,
        )
        ex = stmt.excluded
        self._execute(stmt.on_conflict_do_update(
            index_elements=[nodes.c.site, nodes.c.node],
            set_={
                "state": ex.state,
                "status_time": ex.status_time,
                "software": ex.software,
                "config_version": func.coalesce(ex.config_version, nodes.c.config_version),
                "last_seen": _later(nodes.c.last_seen, ex.last_seen),
            },
        ))

    def update_heartbeat(self, hb: Heartbeat, received_at: dt.datetime) -> None:
        stmt = self._insert(nodes).values(
            site=hb.site, node=hb.node, state="unknown", last_seen=received_at, heartbeat=hb.model_dump_json(),
            heartbeat_time=hb.time, config_version=_text(hb.config_version), alerts=0,
        )
        ex = stmt.excluded
        newer = lambda col: _if_newer(nodes.c.heartbeat_time, ex.heartbeat_time, nodes.c[col], ex[col])  # noqa: E731
        self._execute(stmt.on_conflict_do_update(
            index_elements=[nodes.c.site, nodes.c.node],
            set_={
                "heartbeat": newer("heartbeat"),
                "config_version": _if_newer(nodes.c.heartbeat_time, ex.heartbeat_time,
                                            nodes.c.config_version,
                                            func.coalesce(ex.config_version, nodes.c.config_version)),
                "heartbeat_time": newer("heartbeat_time"),
                "last_seen": _later(nodes.c.last_seen, ex.last_seen),
                # last_sequence counts alerts central holds; the node's own figure stays in the heartbeat.
            },
        ))

    def update_config_state(self, cs: ConfigState, received_at: dt.datetime) -> None:
        stmt = self._insert(nodes).values(
            site=cs.site, node=cs.node, state="unknown", last_seen=received_at, config_state=cs.model_dump_json(),
            config_state_time=cs.time, alerts=0,
        )
        ex = stmt.excluded
        newer = lambda col: _if_newer(nodes.c.config_state_time, ex.config_state_time,  # noqa: E731
                                      nodes.c[col], ex[col])
        self._execute(stmt.on_conflict_do_update(
            index_elements=[nodes.c.site, nodes.c.node],
            set_={
                "config_state": newer("config_state"),
                "config_state_time": newer("config_state_time"),
                "last_seen": _later(nodes.c.last_seen, ex.last_seen),
            },
        ))

    def touch_node(self, site: str, node: str, received_at: dt.datetime) -> None:
        """Any message from a node proves it is alive."""
        stmt = self._insert(nodes).values(site=site, node=node, state="unknown", last_seen=received_at, alerts=0)
        self._execute(stmt.on_conflict_do_update(
            index_elements=[nodes.c.site, nodes.c.node],
            set_={"last_seen": _later(nodes.c.last_seen, stmt.excluded.last_seen)},
        ))

    # --- queries ------------------------------------------------------------------------------

    def list_alerts(self, filters: AlertFilters, cursor: str | None, limit: int) -> tuple[list[dict], str | None]:
        """Newest first by (event_time, id); `cursor` continues where the previous page ended.
        Keyset pagination: a page costs the same however deep it is, and alerts arriving
        meanwhile neither repeat nor shift rows between pages."""
        query = _alert_select().where(*_conditions(filters))
        if cursor:
            when, alert_id = decode_cursor(cursor)
            query = query.where(
                tuple_(alerts.c.event_time, alerts.c.id)
                < tuple_(bindparam("c_time", when, type_=UTCDateTime()), bindparam("c_id", alert_id, type_=String()))
            )
        query = query.order_by(alerts.c.event_time.desc(), alerts.c.id.desc()).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        page = [_alert_dict(r) for r in rows[:limit]]
        more = len(rows) > limit
        next_cursor = encode_cursor(rows[limit - 1].event_time, rows[limit - 1].id) if more else None
        return page, next_cursor

    def received_since(self, since: dt.datetime, limit: int = 10_000) -> list[tuple[str, dt.datetime]]:
        """(id, received_at) of alerts received at or after `since`, oldest first (the live feed)."""
        q = (select(alerts.c.id, alerts.c.received_at).where(alerts.c.received_at >= since)
             .order_by(alerts.c.received_at, alerts.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [(r.id, r.received_at) for r in conn.execute(q)]

    def get_alerts(self, ids: Sequence[str]) -> list[dict]:
        """The alerts with these ids (those that exist), in the order given."""
        if not ids:
            return []
        with self.engine.connect() as conn:
            rows = {r.id: r for r in conn.execute(_alert_select().where(alerts.c.id.in_(list(ids))))}
        return [_alert_dict(rows[i]) for i in ids if i in rows]

    def get_alert(self, alert_id: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(_alert_select().where(alerts.c.id == alert_id)).first()
        return _alert_dict(row) if row else None

    def get_snapshot(self, alert_id: str) -> bytes | None:
        with self.engine.connect() as conn:
            return conn.execute(select(snapshots.c.data).where(snapshots.c.alert_id == alert_id)).scalar_one_or_none()

    def acknowledge(self, alert_id: str, operator: str, note: str | None = None,
                    at: dt.datetime | None = None) -> dict | None:
        """Mark an alert handled; None when there is no such alert. Acknowledging again keeps
        the first acknowledged_at (when someone first acted) and records the latest operator;
        a new note replaces the old one, no note keeps it."""
        at = at or dt.datetime.now(UTC)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(alerts)
                .where(alerts.c.id == alert_id)
                .values(
                    acknowledged_at=func.coalesce(alerts.c.acknowledged_at, bindparam("at", at, type_=UTCDateTime())),
                    acknowledged_by=_text(operator),
                    ack_note=func.coalesce(bindparam("note", _text(note), type_=Text()), alerts.c.ack_note),
                )
            ).rowcount
            if not done:
                return None
            row = conn.execute(_alert_select().where(alerts.c.id == alert_id)).first()
        return _alert_dict(row)

    def nodes(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(nodes).order_by(nodes.c.site, nodes.c.node)).mappings().all()
        out = []
        for r in rows:
            d = dict(r)
            d["heartbeat"] = json.loads(d["heartbeat"]) if d["heartbeat"] else None
            d["config_state"] = json.loads(d["config_state"]) if d["config_state"] else None
            out.append(d)
        return out

    def dead_letters(self, limit: int = 100) -> list[dict]:
        """Newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)).mappings().all()
        return [dict(r) for r in rows]

    def stats(self) -> dict:
        """Totals for metrics, cheap enough for every scrape: per-node figures are kept on the
        node rows, so nothing here scans the alerts."""
        with self.engine.connect() as conn:
            per_node = conn.execute(
                select(nodes.c.site, nodes.c.node, nodes.c.state, nodes.c.last_sequence, nodes.c.alerts,
                       nodes.c.last_seen, nodes.c.last_event_time).order_by(nodes.c.site, nodes.c.node)
            ).mappings().all()
            by_reason = dict(
                conn.execute(select(dead_letters.c.reason_key, func.count()).group_by(dead_letters.c.reason_key)).all()
            )
        return {
            "alerts": sum(r["alerts"] for r in per_node),
            "dead_letters": sum(by_reason.values()),
            "dead_letters_by_reason": by_reason,
            "nodes": [dict(r) for r in per_node],
        }

    # --- internals ----------------------------------------------------------------------------

    def _execute(self, stmt, params=None) -> None:
        with self.engine.begin() as conn:
            conn.execute(stmt, params)

    def _node_upsert(self):
        stmt = self._insert(nodes)
        ex = stmt.excluded
        return stmt.on_conflict_do_update(
            index_elements=[nodes.c.site, nodes.c.node],
            set_={
                "last_seen": _later(nodes.c.last_seen, ex.last_seen),
                "alerts": nodes.c.alerts + ex.alerts,
                "last_sequence": _later(nodes.c.last_sequence, ex.last_sequence),
                "last_event_time": _later(nodes.c.last_event_time, ex.last_event_time),
            },
        )


def _driver_url(url: str):
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"{url!r} is not a database URL (sqlite:///FILE or postgresql://USER@HOST/DB)") from None
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")  # psycopg 3, whatever SQLAlchemy's default
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(f"{parsed.get_backend_name()!r} databases are not supported: use sqlite or postgresql")
    return parsed


def _engine(url, echo: bool) -> Engine:
    if url.get_backend_name() == "postgresql":
        return create_engine(url, echo=echo, pool_pre_ping=True)
    engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        # WAL: the API reads while ingest writes. NORMAL: durable across a crash of the process
        # (WAL is fsynced at checkpoints), an OS crash may lose the last transactions.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    return engine


def _first_line(e: Exception) -> str:
    orig = getattr(e, "orig", None) or e
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0][:300]


def _text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL, which the contract's free-text fields let through; one
    such alert must not sink its whole batch (SQLite gets the same text, for one behaviour)."""
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


def _alert_row(alert: Alert, received_at: dt.datetime, payload: str | None = None) -> dict[str, Any]:
    payload = payload or alert.to_json()  # JSON escapes NUL as \u0000, which both databases keep
    if "\\u0000" in payload:
        return {**_alert_row(alert.model_copy(update={
            k: _text(getattr(alert, k)) for k in ("camera", "rule", "class_name", "zone", "line")}), received_at),
            "payload": payload}
    return {
        "id": alert.id,
        "site": alert.site,
        "node": alert.node,
        "camera": alert.camera,
        "rule": alert.rule,
        "rule_type": alert.rule_type,
        "severity": alert.severity,
        "class_name": alert.class_name,
        "score": alert.score,
        "best_score": alert.best_score,
        "track_id": alert.track_id,
        "zone": alert.zone,
        "line": alert.line,
        "event_time": alert.time,
        "sequence": alert.sequence,
        "received_at": received_at,
        "payload": payload,
        "has_snapshot": False,
        "acknowledged_at": None,
        "acknowledged_by": None,
        "ack_note": None,
        "verdict": None,
        "incident_id": None,
    }


def _node_rows(rows: Iterable[dict[str, Any]], new_ids: set[str]) -> list[dict[str, Any]]:
    """One row per node of the batch: how many new alerts, the newest sequence, times."""
    per: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["site"], r["node"])
        n = per.get(key)
        if n is None:
            n = per[key] = {"site": r["site"], "node": r["node"], "state": "unknown", "last_seen": r["received_at"],
                            "alerts": 0, "last_sequence": r["sequence"], "last_event_time": r["event_time"]}
        else:
            n["last_seen"] = max(n["last_seen"], r["received_at"], key=utc)
            n["last_event_time"] = max(n["last_event_time"], r["event_time"], key=utc)
            if r["sequence"] is not None and (n["last_sequence"] is None or r["sequence"] > n["last_sequence"]):
                n["last_sequence"] = r["sequence"]
        n["alerts"] += r["id"] in new_ids
    return [per[k] for k in sorted(per)]


def _alert_select():
    # The flag is written with the alert or its snapshot; with several replicas the two can be
    # stored by concurrent transactions that miss each other, so reads also look for the row.
    snapshot_stored = or_(
        alerts.c.has_snapshot, exists().where(snapshots.c.alert_id == alerts.c.id)
    ).label("snapshot_stored")
    return select(alerts.c.id, alerts.c.payload, alerts.c.event_time, alerts.c.received_at,
                  alerts.c.acknowledged_at, alerts.c.acknowledged_by, alerts.c.ack_note, alerts.c.verdict,
                  alerts.c.incident_id, snapshot_stored)


def _conditions(f: AlertFilters) -> list:
    c = alerts.c
    out = []
    if f.since is not None:
        out.append(c.event_time >= utc(f.since))
    if f.until is not None:
        out.append(c.event_time < utc(f.until))
    for col, value in ((c.site, f.site), (c.node, f.node), (c.camera, f.camera), (c.class_name, f.class_name),
                       (c.rule, f.rule)):
        if value is not None:
            out.append(col == value)
    if f.severity:
        out.append(c.severity.in_(list(f.severity)))
    if f.acknowledged is not None:
        out.append(c.acknowledged_at.is_not(None) if f.acknowledged else c.acknowledged_at.is_(None))
    if f.states and set(f.states) != set(ALERT_STATES):
        by_state = {"open": c.acknowledged_at.is_(None),
                    "acknowledged": (c.acknowledged_at.is_not(None)) & (c.verdict.is_(None)),
                    "false_alarm": c.verdict == "false_alarm"}
        out.append(or_(*(by_state[s] for s in f.states)))
    if f.incident_id is not None:
        out.append(c.incident_id == f.incident_id)
    return out


def _alert_dict(row) -> dict[str, Any]:
    """The alert as it came over the wire (the contract's JSON, `class` key) plus what central knows."""
    out = json.loads(row.payload)
    out.update(
        received_at=row.received_at,
        acknowledged=row.acknowledged_at is not None,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        ack_note=row.ack_note,
        snapshot_url=SNAPSHOT_PATH.format(id=row.id) if row.snapshot_stored else None,
        verdict=row.verdict,
        incident_id=row.incident_id,
    )
    return out


# The console's tables share this metadata, so Store(url) creates them too.
from central import console_tables  # noqa: E402,F401
