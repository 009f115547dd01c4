"""The wire contract: what an edge node sends over MQTT and central accepts. Both import this.

Topics live under `zastava/v1/{site}/{node}/`:

| topic                 | direction      | payload            | QoS | retained | max size |
|-----------------------|----------------|--------------------|-----|----------|----------|
| alert                 | edge -> central| Alert JSON         | 1   | no       | 64 KiB   |
| alert/{id}/snapshot   | edge -> central| JPEG bytes         | 1   | no       | 2 MiB    |
| status                | edge -> central| Status JSON (LWT)  | 1   | yes      | 4 KiB    |
| heartbeat             | edge -> central| Heartbeat JSON     | 0   | no       | 32 KiB   |
| config                | central -> edge| ConfigMessage JSON | 1   | yes      | 1 MiB    |
| config/state          | edge -> central| ConfigState JSON   | 1   | yes      | 64 KiB   |

Every alert carries its node's sequence number, which only grows, so central can see gaps and
order. Alert ids are ULIDs: unique, and sorted by event time.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ALERT_SCHEMA_VERSION = 1
TOPIC_ROOT = "zastava/v1"
SLUG = r"[a-z0-9][a-z0-9_-]{0,63}"
ULID_PATTERN = r"[0-9A-HJKMNP-TV-Z]{26}"
JPEG_MAGIC = b"\xff\xd8\xff"


class Kind(str, enum.Enum):
    ALERT = "alert"
    SNAPSHOT = "snapshot"
    STATUS = "status"
    HEARTBEAT = "heartbeat"
    CONFIG = "config"
    CONFIG_STATE = "config/state"


QOS = {Kind.ALERT: 1, Kind.SNAPSHOT: 1, Kind.STATUS: 1, Kind.HEARTBEAT: 0, Kind.CONFIG: 1, Kind.CONFIG_STATE: 1}
RETAIN = {Kind.ALERT: False, Kind.SNAPSHOT: False, Kind.STATUS: True, Kind.HEARTBEAT: False, Kind.CONFIG: True,
          Kind.CONFIG_STATE: True}
MAX_BYTES = {Kind.ALERT: 64 * 1024, Kind.SNAPSHOT: 2 * 1024 * 1024, Kind.STATUS: 4 * 1024, Kind.HEARTBEAT: 32 * 1024,
             Kind.CONFIG: 1024 * 1024, Kind.CONFIG_STATE: 64 * 1024}

_TOPIC = re.compile(
    rf"^{re.escape(TOPIC_ROOT)}/(?P<site>{SLUG})/(?P<node>{SLUG})/"
    rf"(?:(?P<snap>alert/(?P<alert_id>{ULID_PATTERN})/snapshot)|(?P<kind>alert|status|heartbeat|config/state|config))$"
)


class ContractError(ValueError):
    """A message that breaks the contract; the text says why (it goes to the dead letters), and
    `key` names the kind of breach for counting: topic, size, schema, jpeg, spoofed."""

    def __init__(self, message: str, key: str = "schema"):
        super().__init__(message)
        self.key = key


def topic(site: str, node: str, kind: Kind, alert_id: str | None = None) -> str:
    if kind is Kind.SNAPSHOT:
        if not alert_id:
            raise ValueError("a snapshot topic needs the alert id")
        return f"{TOPIC_ROOT}/{site}/{node}/alert/{alert_id}/snapshot"
    return f"{TOPIC_ROOT}/{site}/{node}/{kind.value}"


def subscriptions(shared_group: str | None = None) -> list[str]:
    """What central subscribes to; with a group, an MQTT 5 shared subscription that several
    central replicas split between them."""
    filters = [f"{TOPIC_ROOT}/+/+/{k}" for k in ("alert", "status", "heartbeat", "config/state")]
    filters.append(f"{TOPIC_ROOT}/+/+/alert/+/snapshot")
    return [f"$share/{shared_group}/{f}" for f in filters] if shared_group else filters


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    site: str
    node: str
    kind: Kind
    alert_id: str | None = None


def parse_topic(name: str) -> ParsedTopic:
    m = _TOPIC.match(name)
    if not m:
        raise ContractError(f"topic {name[:200]!r} is not a zastava/v1 topic", "topic")
    if m.group("snap"):
        return ParsedTopic(m.group("site"), m.group("node"), Kind.SNAPSHOT, m.group("alert_id"))
    return ParsedTopic(m.group("site"), m.group("node"), Kind(m.group("kind")))


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SnapshotInfo(_Message):
    content_type: Literal["image/jpeg"] = "image/jpeg"
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    bytes: int = Field(gt=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class PathPoint(_Message):
    """Where the object's anchor was, in picture pixels, at a moment of its track."""

    t: dt.datetime
    x: float
    y: float


class Position(_Message):
    """Where the object is on the earth, as the post's geometry and sensors place it."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    sigma_m: float | None = Field(None, ge=0, description="1-sigma radius of the position's uncertainty.")


class RadarEvidence(_Message):
    source: str = Field(max_length=64, description="The radar feed's id.")
    target: str = Field(max_length=64, description="The radar's track number.")
    range_m: float | None = Field(None, ge=0, description="From the post.")
    bearing_deg: float | None = Field(None, ge=0, le=360, description="True bearing from the post.")
    speed_mps: float | None = Field(None, ge=0)
    course_deg: float | None = Field(None, ge=0, le=360)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)


class AisEvidence(_Message):
    mmsi: str = Field(max_length=16)
    name: str | None = Field(None, max_length=64)
    callsign: str | None = Field(None, max_length=16)
    ship_type: str | None = Field(None, max_length=64)
    speed_mps: float | None = Field(None, ge=0)
    course_deg: float | None = Field(None, ge=0, le=360)


RULE_TYPES = ("intrusion", "loitering", "line_crossing", "crowding", "radar_confirmed", "radar_only", "dark_vessel")


class Alert(_Message):
    """One alert: one event of one rule about one object (or one crowd)."""

    schema_version: Literal[1] = ALERT_SCHEMA_VERSION
    id: str = Field(pattern=rf"^{ULID_PATTERN}$", description="ULID: unique and sortable by event time.")
    site: str = Field(pattern=rf"^{SLUG}$")
    node: str = Field(pattern=rf"^{SLUG}$")
    camera: str = Field(max_length=64, description="The camera that saw it; for a radar-only alert, the radar feed.")
    rule: str = Field(max_length=64)
    rule_type: Literal["intrusion", "loitering", "line_crossing", "crowding", "radar_confirmed", "radar_only",
                       "dark_vessel"]
    severity: Literal["info", "low", "medium", "high", "critical"]
    zone: str | None = Field(None, max_length=64)
    line: str | None = Field(None, max_length=64)
    direction: Literal["in", "out"] | None = None
    class_name: str = Field(alias="class", max_length=64)
    score: float = Field(ge=0, le=1, description="The object's detection score in the alert's frame.")
    best_score: float = Field(ge=0, le=1, description="The object's best detection score so far.")
    track_id: int | None = Field(None, description="The object's track; for crowding, the best-scoring one.")
    track_ids: list[int] = Field(default_factory=list, max_length=10_000, description="Every track the event is about.")
    count: int | None = Field(None, description="Crowding: how many objects were in the zone.")
    time: dt.datetime = Field(description="When the event happened (UTC).")
    started: dt.datetime = Field(description="When the condition began: entry, crossing, crowding.")
    first_seen: dt.datetime
    last_seen: dt.datetime
    frame: int | None = Field(None, ge=0, description="Index of the alert's frame in its source (none: radar only).")
    media_time: float | None = Field(None, description="Seconds into the source (recordings) or capture time (live).")
    bbox: tuple[float, float, float, float] | None = Field(None, description="x1, y1, x2, y2 in the picture's pixels.")
    frame_size: tuple[int, int] | None = Field(None, description="Picture width and height.")
    position: Position | None = Field(None, description="On the earth, when the post's geometry or a radar knows it.")
    sensors: list[Literal["camera", "radar", "ais"]] = Field(
        default_factory=lambda: ["camera"], description="The sensors that confirmed the object."
    )
    radar: RadarEvidence | None = None
    ais: AisEvidence | None = None
    path: list[PathPoint] = Field(default_factory=list, max_length=1000, description="Recent anchor positions.")
    snapshot: SnapshotInfo | None = None
    sequence: int | None = Field(None, ge=1, description="The node's alert number; only grows. Set by the outbox.")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


class Status(_Message):
    """A node's presence (retained). The broker publishes the node's Last Will, state
    offline, when the node's connection dies without a goodbye."""

    schema_version: Literal[1] = 1
    site: str = Field(pattern=rf"^{SLUG}$")
    node: str = Field(pattern=rf"^{SLUG}$")
    state: Literal["online", "offline"]
    time: dt.datetime
    software: str = Field(max_length=64)
    config_version: str | None = Field(None, max_length=64)
    reason: str | None = Field(None, max_length=200)


class CameraHealth(_Message):
    camera: str = Field(max_length=64)
    source_state: str = Field(max_length=32)
    fps: float = Field(ge=0, description="Frames processed per second over the last heartbeat interval.")
    inference_ms: float = Field(ge=0, description="Mean time from reading a frame to its detections, last interval.")
    frames: int = Field(ge=0)
    dropped_frames: int = Field(ge=0, description="Live frames superseded before the pipeline could take them.")
    corrupt_frames: int = Field(ge=0)
    alerts: int = Field(ge=0)
    error: str | None = Field(None, max_length=500)


class RadarHealth(_Message):
    """One radar or AIS feed's figures: is it delivering, and how much of it decodes."""

    feed: str = Field(max_length=64)
    state: str = Field(max_length=32, description="connecting, connected, replaying, finished, failed...")
    messages: int = Field(ge=0, description="Messages (sentences, datagrams) read, ever.")
    reports: int = Field(ge=0, description="Target reports decoded from them, ever.")
    rejected: int = Field(ge=0, description="Malformed or failed-checksum messages, counted and skipped.")
    live_targets: int = Field(0, ge=0)
    reports_per_s: float = Field(0.0, ge=0, description="Over the last minute.")


class Heartbeat(_Message):
    schema_version: Literal[1] = 1
    site: str = Field(pattern=rf"^{SLUG}$")
    node: str = Field(pattern=rf"^{SLUG}$")
    time: dt.datetime
    uptime_s: float = Field(ge=0)
    cameras: list[CameraHealth] = Field(max_length=64)
    outbox_depth: int = Field(ge=0, description="Alerts waiting to be delivered.")
    outbox_bytes: int = Field(ge=0)
    outbox_oldest_s: float | None = Field(None, ge=0, description="Age of the oldest waiting alert.")
    outbox_evicted: int = Field(ge=0, description="Alerts dropped because the outbox was full or too old, ever.")
    published: int = Field(ge=0, description="Alerts delivered since start.")
    last_sequence: int | None = Field(None, ge=0, description="The newest alert's sequence number.")
    mqtt_reconnects: int = Field(ge=0)
    config_version: str | None = Field(None, max_length=64)
    radars: list[RadarHealth] = Field(default_factory=list, max_length=32)


class ConfigMessage(_Message):
    """A node's desired config (retained on its config topic)."""

    schema_version: Literal[1] = 1
    version: str = Field(max_length=64)
    issued_at: dt.datetime
    author: str | None = Field(None, max_length=200)
    config: dict[str, Any] = Field(description="A node config (the YAML file's content as JSON).")


class ConfigState(_Message):
    """What a node did with its desired config (retained)."""

    schema_version: Literal[1] = 1
    site: str = Field(pattern=rf"^{SLUG}$")
    node: str = Field(pattern=rf"^{SLUG}$")
    time: dt.datetime
    state: Literal["applied", "rejected"]
    applied_version: str | None = Field(None, max_length=64)
    desired_version: str | None = Field(None, max_length=64)
    errors: list[str] = Field(default_factory=list, max_length=200)


PAYLOAD_MODELS: dict[Kind, type[_Message]] = {
    Kind.ALERT: Alert,
    Kind.STATUS: Status,
    Kind.HEARTBEAT: Heartbeat,
    Kind.CONFIG: ConfigMessage,
    Kind.CONFIG_STATE: ConfigState,
}


def decode(parsed: ParsedTopic, payload: bytes) -> _Message | bytes:
    """Validate a message received on a parsed topic; ContractError says why it is refused."""
    limit = MAX_BYTES[parsed.kind]
    if len(payload) > limit:
        raise ContractError(f"{parsed.kind.value} payload of {len(payload)} bytes is over the {limit}-byte limit", "size")
    if parsed.kind is Kind.SNAPSHOT:
        if not payload.startswith(JPEG_MAGIC):
            raise ContractError("snapshot payload is not a JPEG", "jpeg")
        return payload
    model = PAYLOAD_MODELS[parsed.kind]
    try:
        message = model.model_validate_json(payload)
    except ValueError as e:  # pydantic's ValidationError is a ValueError
        first = str(e).splitlines()
        raise ContractError(f"{parsed.kind.value} payload fails the contract: {' '.join(first[:3])[:400]}") from None
    owner = (getattr(message, "site", parsed.site), getattr(message, "node", parsed.node))
    if owner != (parsed.site, parsed.node):
        raise ContractError(
            f"payload names node {owner[0]}/{owner[1]} but was published on {parsed.site}/{parsed.node}'s topic", "spoofed"
        )
    return message


def json_schemas() -> dict[str, dict]:
    """The published schemas, file name -> schema (configs/schemas/)."""
    out = {}
    for name, model in (("alert", Alert), ("status", Status), ("heartbeat", Heartbeat), ("config-message", ConfigMessage),
                        ("config-state", ConfigState)):
        schema = model.model_json_schema(by_alias=True)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://zastava.example/schemas/{name}.v1.schema.json"
        out[f"{name}.v1.schema.json"] = schema
    return out
