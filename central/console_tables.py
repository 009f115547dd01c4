"""The console's tables: users and sessions, the audit log, config versions, incidents,
false-alarm feedback and the outputs queue. They live in the store's metadata, so
`Store(url)` creates them with the alerts, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from central.store import UTCDateTime, metadata

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    # Only the token's SHA-256 is kept: a copy of the database opens no session.
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_sessions_user", "user_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(200)),
    Column("detail", Text),
    Index("ix_audit_target", "target", "id"),
)

config_versions = Table(
    "config_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site", String(64), nullable=False),
    Column("node", String(64), nullable=False),
    Column("number", Integer, nullable=False),
    Column("version", String(64), nullable=False),  # what the node reports back: "v3"
    Column("yaml", Text, nullable=False),
    Column("author", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("comment", Text),
    Column("rollback_of", Integer),  # the number this version restored, when it is a rollback
    Column("published_at", UTCDateTime),
    UniqueConstraint("site", "node", "number", name="uq_config_versions_number"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("family", String(32), nullable=False),
    Column("first_time", UTCDateTime, nullable=False),
    Column("last_time", UTCDateTime, nullable=False),
    Column("lat", Float),
    Column("lon", Float),
    Column("alert_count", Integer, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("summary", Text, nullable=False),  # JSON: sites, nodes, cameras, sensors, classes
    Column("revision", Integer, nullable=False),  # grows whenever alerts join: outputs send each revision
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("acknowledged_at", UTCDateTime),
    Column("acknowledged_by", String(100)),
    Column("ack_note", Text),
    Index("ix_incidents_last", "last_time", "id"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String(26), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("note", Text),
    Column("by", String(100), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    # What a later suppression rule would match on, copied so the feedback stands on its own.
    Column("site", String(64), nullable=False),
    Column("node", String(64), nullable=False),
    Column("camera", String(64), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("zone", String(64)),
    Column("class_name", String(64), nullable=False),
    Column("bbox", Text),
    Index("ix_feedback_rule", "site", "node", "camera", "rule"),
)

outputs = Table(
    "outputs",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("sink", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # alert | incident
    Column("ref", String(26), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("delivered_at", UTCDateTime),
    Column("gave_up", Boolean, nullable=False),
    UniqueConstraint("sink", "kind", "ref", "revision", name="uq_outputs_item"),
    Index("ix_outputs_due", "delivered_at", "gave_up", "next_at"),
)
