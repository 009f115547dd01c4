"""The node configuration: one YAML file per observation post, validated before anything starts.

    node: {site: river-post, id: node-01, lat: 58.2, lon: 11.5}
    cameras:
      - id: cam1
        source: rtsp://${CAM1_USER}:${CAM1_PASS}@10.0.0.5/stream   # secrets from the environment
        detector: {model: yolox-nano, conf: 0.3}
        zones: [{id: riverbank, points: [[0.1, 0.5], [0.9, 0.5], [0.9, 1], [0.1, 1]], coordinates: normalized}]
        rules: [{id: bank-intrusion, type: intrusion, zone: riverbank, classes: [person], dwell_s: 4}]

`load_config(path)` returns a NodeConfig or raises ConfigError listing every problem as
"FILE: cameras[0].zones[2].points: a polygon needs at least 3 points". The JSON Schema of this
model is published in configs/schemas/node-config.schema.json.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge.camera_model import CameraGeometry
from edge.detect.config import DetectorConfig
from edge.fusion import FusionConfig
from edge.radar.config import RadarFeedConfig
from edge.errors import ZastavaError
from edge.geometry import polygon_self_intersection, segment_length
from edge.settings_files import FileProblem, expand_env, parse_yaml, read_text
from edge.track import TrackerConfig

SCHEMA_VERSION = 1
MAX_CONFIG_BYTES = 1_000_000  # a post's config is a few kB; refuse what cannot be one
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="Lower-case letters, digits, '-' and '_'.")]
Point = tuple[float, float]
Anchor = Literal["bottom_center", "center", "top_center", "bottom_left", "bottom_right"]
Severity = Literal["info", "low", "medium", "high", "critical"]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ConfigError(ZastavaError):
    """A config that cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(problems[0] if len(problems) == 1 else f"{len(problems)} problems:\n" + "\n".join(problems))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NodeIdentity(Strict):
    """Who this post is: alerts carry these."""

    site: Slug = Field(description="The site (post) this node belongs to; the MQTT topic's {site}.")
    id: Slug = Field(description="This node's id, unique within the site; the MQTT topic's {node}.")
    name: str | None = Field(None, max_length=200, description="A human name for the post.")
    lat: float | None = Field(None, ge=-90, le=90, description="Latitude of the post, degrees WGS84.")
    lon: float | None = Field(None, ge=-180, le=180, description="Longitude of the post, degrees WGS84.")
    altitude_m: float | None = Field(None, ge=-500, le=9000, description="Altitude above sea level, metres.")
    timezone: str = Field("UTC", description="IANA time zone of the post, for rule schedules.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as Europe/Zagreb)") from None
        return v


class Shape(Strict):
    coordinates: Literal["pixels", "normalized"] = Field(
        "pixels", description="'pixels' of the camera picture, or 'normalized' 0..1 of its width and height."
    )
    color: str | None = Field(None, pattern=r"^#[0-9a-fA-F]{6}$", description="Drawing colour, #rrggbb.")

    @model_validator(mode="after")
    def _normalized_in_unit_square(self):
        if self.coordinates == "normalized":
            for i, (x, y) in enumerate(self.points):  # type: ignore[attr-defined]
                if not (0 <= x <= 1 and 0 <= y <= 1):
                    raise ValueError(f"points[{i}]: ({x}, {y}) is outside 0..1 for normalized coordinates")
        return self


class Zone(Shape):
    """A polygon on the picture; concave shapes are fine, crossing edges are not."""

    id: Slug
    name: str | None = Field(None, max_length=200)
    points: list[Point] = Field(description="Polygon corners in order, at least 3.", max_length=256)

    @field_validator("points")
    @classmethod
    def _polygon(cls, pts: list[Point]) -> list[Point]:
        if len(pts) < 3:
            raise ValueError("a polygon needs at least 3 points")
        crossing = polygon_self_intersection(pts)
        if crossing is not None:
            raise ValueError(f"the polygon's edges {crossing[0]} and {crossing[1]} cross each other")
        area = 0.5 * abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1])))
        if area == 0:
            raise ValueError("the polygon has no area (its points are on one line)")
        return pts


class Line(Shape):
    """A tripwire from points[0] to points[1]; `in_side` names the side that is "in",
    as seen on the picture when walking from the first point to the second."""

    id: Slug
    name: str | None = Field(None, max_length=200)
    points: list[Point] = Field(description="Exactly two distinct points.")
    in_side: Literal["left", "right"] = Field("left", description="Which side of the line is 'in'.")
    direction: Literal["in", "out", "both"] = Field("both", description="Crossings of interest: into 'in', out of it, or both.")

    @field_validator("points")
    @classmethod
    def _two_points(cls, pts: list[Point]) -> list[Point]:
        if len(pts) != 2:
            raise ValueError(f"a line needs exactly 2 points, got {len(pts)}")
        if segment_length(pts[0], pts[1]) == 0:
            raise ValueError("the line's two points are the same")
        return pts


class Schedule(Strict):
    """When a rule is active, in the node's time zone. A window whose end is before its start
    runs past midnight; `days` name the day the window starts."""

    days: list[Day] = Field(default_factory=lambda: list(DAYS), min_length=1)
    start: dt.time = Field(dt.time(0, 0), description="HH:MM")
    end: dt.time = Field(dt.time(0, 0), description="HH:MM; equal to start means all day.")


class RuleBase(Strict):
    id: Slug
    classes: list[str] = Field(default_factory=list, description="Class names the rule applies to; empty: all.")
    min_score: float = Field(0.0, ge=0, le=1, description="The object's best detection score must reach this.")
    min_size: float = Field(0.0, ge=0, description="The object's larger box side must reach this many pixels.")
    max_size: float | None = Field(None, gt=0, description="The object's larger box side must not exceed this.")
    schedule: Schedule | None = Field(None, description="When the rule is active; always when unset.")
    cooldown_s: float = Field(
        30.0, ge=0, le=86_400,
        description="After an alert, the same object raises no new alert for this rule until it has been "
        "away (out of the zone, or not crossing) for this long.",
    )
    severity: Severity = "medium"
    anchor: Anchor = Field("bottom_center", description="The point of the box that must be in the zone or cross the line.")
    enabled: bool = True

    @model_validator(mode="after")
    def _sizes(self):
        if self.max_size is not None and self.max_size < self.min_size:
            raise ValueError(f"max_size ({self.max_size}) is below min_size ({self.min_size})")
        return self


class IntrusionRule(RuleBase):
    """An object of a class in the zone for at least `dwell_s` without leaving it."""

    type: Literal["intrusion"]
    zone: Slug
    dwell_s: float = Field(0.0, ge=0, le=86_400)


class LoiteringRule(RuleBase):
    """An object in the zone for longer than `min_duration_s`; absences shorter than
    `max_gap_s` (stepping out, a missed detection) do not restart the clock."""

    type: Literal["loitering"]
    zone: Slug
    min_duration_s: float = Field(gt=0, le=86_400)
    max_gap_s: float = Field(5.0, ge=0, le=3600)


class LineCrossingRule(RuleBase):
    """An object's anchor crossing the line segment in the line's direction of interest."""

    type: Literal["line_crossing"]
    line: Slug
    direction: Literal["in", "out", "both"] | None = Field(None, description="Overrides the line's direction.")


class CrowdingRule(RuleBase):
    """More than `max_count` objects of the classes in the zone for `min_duration_s`."""

    type: Literal["crowding"]
    zone: Slug
    max_count: int = Field(ge=0, le=10_000)
    min_duration_s: float = Field(0.0, ge=0, le=86_400)


Rule = Annotated[Union[IntrusionRule, LoiteringRule, LineCrossingRule, CrowdingRule], Field(discriminator="type")]


class CameraConfig(Strict):
    id: Slug
    name: str | None = Field(None, max_length=200)
    source: str = Field(min_length=1, description="Video file, image folder, rtsp:// or http:// URL, or USB index.")
    fps_cap: float | None = Field(None, gt=0, le=240, description="Process at most this many frames per second.")
    source_fps: float | None = Field(
        None, gt=0, le=240, description="Frame rate of an image-folder source (timestamps = index / fps)."
    )
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    zones: list[Zone] = Field(default_factory=list, max_length=64)
    lines: list[Line] = Field(default_factory=list, max_length=64)
    rules: list[Rule] = Field(default_factory=list, max_length=256)
    geometry: CameraGeometry | None = Field(
        None, description="Where the camera stands and looks (or a ground homography): places detections on the earth."
    )
    fusion: FusionConfig = Field(default_factory=FusionConfig, description="How this camera's tracks pair with radar.")

    @model_validator(mode="after")
    def _references(self):
        problems = []
        for kind, items in (("zones", self.zones), ("lines", self.lines), ("rules", self.rules)):
            seen: dict[str, int] = {}
            for i, item in enumerate(items):
                if item.id in seen:
                    problems.append(f"{kind}[{i}].id: {item.id!r} is already used by {kind}[{seen[item.id]}]")
                seen[item.id] = i
        zones, lines = {z.id for z in self.zones}, {ln.id for ln in self.lines}
        for i, rule in enumerate(self.rules):
            if isinstance(rule, LineCrossingRule):
                if rule.line not in lines:
                    problems.append(f"rules[{i}].line: no line {rule.line!r} on this camera ({_known(lines)})")
            elif rule.zone not in zones:
                problems.append(f"rules[{i}].zone: no zone {rule.zone!r} on this camera ({_known(zones)})")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def zone(self, zone_id: str) -> Zone:
        return next(z for z in self.zones if z.id == zone_id)

    def line(self, line_id: str) -> Line:
        return next(ln for ln in self.lines if ln.id == line_id)


def _known(ids: set[str]) -> str:
    return "defined: " + ", ".join(sorted(ids)) if ids else "none defined"


class SnapshotSettings(Strict):
    max_width: int = Field(1280, ge=64, le=7680, description="Snapshots wider than this are scaled down.")
    quality: int = Field(85, ge=10, le=100, description="JPEG quality.")
    max_bytes: int = Field(
        400_000, ge=10_000, le=2 * 1024 * 1024, description="Quality is lowered until the JPEG fits (the wire allows 2 MiB)."
    )


class AlertSettings(Strict):
    snapshot: SnapshotSettings = Field(default_factory=SnapshotSettings)
    path_points: int = Field(50, ge=2, le=500, description="Recent track positions carried by an alert.")


class GeoZone(Strict):
    """A zone on the earth (lat/lon corners), for the fused radar and camera picture."""

    id: Slug
    name: str | None = Field(None, max_length=200)
    kind: Literal["land", "maritime"] = Field("land", description="Dark-vessel rules need a maritime zone.")
    points: list[tuple[float, float]] = Field(description="Corners as [lat, lon], in order, at least 3.", max_length=256)
    color: str | None = Field(None, pattern=r"^#[0-9a-fA-F]{6}$")

    @field_validator("points")
    @classmethod
    def _polygon(cls, pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(pts) < 3:
            raise ValueError("a polygon needs at least 3 points")
        for i, (lat, lon) in enumerate(pts):
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise ValueError(f"points[{i}] = ({lat}, {lon}) is not a [lat, lon] pair")
        crossing = polygon_self_intersection([(lon, lat) for lat, lon in pts])
        if crossing is not None:
            raise ValueError(f"the polygon's edges {crossing[0]} and {crossing[1]} cross each other")
        return pts


class GeoRuleBase(Strict):
    id: Slug
    zone: Slug
    dwell_s: float = Field(0.0, ge=0, le=86_400, description="Seconds the object must stay in the zone.")
    min_speed_mps: float = Field(0.0, ge=0, description="Ignore objects slower than this (moored boats, clutter).")
    schedule: Schedule | None = None
    cooldown_s: float = Field(60.0, ge=0, le=86_400, description="A new visit needs the object away this long.")
    severity: Severity = "high"
    enabled: bool = True


class RadarConfirmedRule(GeoRuleBase):
    """A radar track that a camera confirms (and classifies) in the zone."""

    type: Literal["radar_confirmed"]
    classes: list[str] = Field(default_factory=list, description="Camera classes it applies to; empty: all.")


class RadarOnlyRule(GeoRuleBase):
    """A radar track in a guard zone that no camera sees (night, fog, out of view)."""

    type: Literal["radar_only"]


class DarkVesselRule(GeoRuleBase):
    """A vessel in a maritime zone that no AIS transmission identifies."""

    type: Literal["dark_vessel"]
    vessel_classes: list[str] = Field(default_factory=lambda: ["boat"], description="Camera classes that are vessels.")


GeoRule = Annotated[Union[RadarConfirmedRule, RadarOnlyRule, DarkVesselRule], Field(discriminator="type")]


class MqttSettings(Strict):
    """How the node reaches the broker. Credentials come from the environment (${VAR})."""

    broker: str = Field(
        pattern=r"^mqtts?://[^/\s:]+(:\d{1,5})?/?$", description="mqtt://host[:1883] or mqtts://host[:8883] (TLS)."
    )
    username: str | None = Field(None, max_length=200, description="Defaults to the node id.")
    password: str | None = Field(None, max_length=500)
    ca_file: Path | None = Field(None, description="CA bundle that signed the broker's certificate (mqtts).")
    cert_file: Path | None = Field(None, description="Client certificate, when the broker asks for one.")
    key_file: Path | None = Field(None, description="Client certificate's private key.")
    client_id: str | None = Field(None, max_length=128, description="Defaults to zastava-edge-{site}-{node}.")
    protocol: Literal["auto", "5", "3.1.1"] = Field("auto", description="auto: MQTT 5, else 3.1.1 if the broker refuses it.")
    keepalive_s: int = Field(30, ge=5, le=3600)
    session_expiry_s: int = Field(7 * 86_400, ge=0, description="How long the broker keeps the session while away.")
    reconnect_min_s: float = Field(0.5, gt=0, le=60)
    reconnect_max_s: float = Field(60.0, gt=0, le=3600)
    max_inflight: int = Field(64, ge=1, le=10_000, description="Alerts published and not yet acknowledged.")
    heartbeat_s: float = Field(10.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _client_cert_pair(self):
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class OutboxSettings(Strict):
    """The local store every alert waits in until the broker has acknowledged it."""

    path: Path = Field(Path("zastava-outbox.db"), description="SQLite file; relative paths are under the state folder.")
    max_alerts: int = Field(100_000, ge=10, le=100_000_000)
    max_bytes: int = Field(1_000_000_000, ge=1_000_000, description="Alerts and snapshots together.")
    max_age_s: float = Field(7 * 86_400, gt=0, description="Older alerts are dropped (and counted).")


class LiveViewSettings(Strict):
    """The node's live pictures over HTTP: an MJPEG stream per camera (overlay with radar) and the plan view."""

    bind: str = Field("127.0.0.1", description="Address to listen on. 127.0.0.1 keeps it on the node (reach it "
                                              "through an SSH tunnel or a TLS reverse proxy); any other needs a token.")
    port: int = Field(8090, ge=0, le=65535, description="0: any free port (logged).")
    max_fps: float = Field(5.0, gt=0, le=30, description="Pictures per second per stream, at most.")
    jpeg_quality: int = Field(75, ge=10, le=100)
    max_clients: int = Field(8, ge=1, le=64, description="Streams open at once; more are refused (503).")
    token: str | None = Field(None, min_length=16, max_length=500,
                              description="Bearer token (or ?token=) a viewer must present; put ${VAR} here, not the secret.")

    @model_validator(mode="after")
    def _exposed_needs_token(self):
        try:
            loopback = ipaddress.ip_address(self.bind).is_loopback
        except ValueError:
            loopback = self.bind == "localhost"
        if not loopback and self.token is None:
            raise ValueError(f"bind {self.bind} reaches beyond this machine: set a token")
        return self


class NodeConfig(Strict):
    """One observation post: its identity, cameras, and alert settings."""

    schema_version: Literal[1] = Field(SCHEMA_VERSION, description="Version of this config format.")
    version: str | None = Field(None, max_length=64, description="Revision of this config (set by central).")
    node: NodeIdentity
    cameras: list[CameraConfig] = Field(min_length=1, max_length=64)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    mqtt: MqttSettings | None = Field(None, description="Publish alerts to a broker; without it, `run` prints them.")
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    radars: list[RadarFeedConfig] = Field(default_factory=list, max_length=32, description="Radar and AIS feeds.")
    geo_zones: list[GeoZone] = Field(default_factory=list, max_length=64, description="Zones on the earth.")
    geo_rules: list[GeoRule] = Field(default_factory=list, max_length=256, description="Rules on the fused picture.")
    live_view: LiveViewSettings | None = Field(None, description="Serve live pictures over HTTP (off without it).")

    @model_validator(mode="after")
    def _unique_cameras(self):
        seen: dict[str, int] = {}
        for i, cam in enumerate(self.cameras):
            if cam.id in seen:
                raise ValueError(f"cameras[{i}].id: {cam.id!r} is already used by cameras[{seen[cam.id]}]")
            seen[cam.id] = i
        return self

    @model_validator(mode="after")
    def _geo(self):
        problems = []
        zones = {z.id: z for z in self.geo_zones}
        if len(zones) != len(self.geo_zones):
            problems.append("geo_zones: zone ids must be unique")
        for i, rule in enumerate(self.geo_rules):
            zone = zones.get(rule.zone)
            if zone is None:
                problems.append(f"geo_rules[{i}].zone: no geo zone {rule.zone!r} ({_known(set(zones))})")
            elif rule.type == "dark_vessel" and zone.kind != "maritime":
                problems.append(f"geo_rules[{i}].zone: a dark-vessel rule needs a maritime zone ({rule.zone!r} is {zone.kind})")
        needs_place = self.geo_zones or self.geo_rules or self.radars or any(
            c.geometry is not None and c.geometry.needs_post_position for c in self.cameras)
        if needs_place and (self.node.lat is None or self.node.lon is None):
            problems.append("node.lat: radars, camera geometry and geo zones need the post's lat and lon")
        ids = [r.id for r in self.radars]
        if len(set(ids)) != len(ids):
            problems.append("radars: feed ids must be unique")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def camera(self, camera_id: str) -> CameraConfig:
        for cam in self.cameras:
            if cam.id == camera_id:
                return cam
        raise ZastavaError(f"no camera {camera_id!r} in the config (cameras: {', '.join(c.id for c in self.cameras)})")


# -- loading ---------------------------------------------------------------------------------

_RULE_TAGS = {"intrusion", "loitering", "line_crossing", "crowding", "radar_confirmed", "radar_only", "dark_vessel"}


def _location(loc: tuple) -> str:
    """('cameras', 0, 'rules', 1, 'intrusion', 'dwell_s') -> 'cameras[0].rules[1].dwell_s'."""
    out = ""
    prev = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _RULE_TAGS and isinstance(prev, int):
            pass  # pydantic adds the discriminator's value to the path; a reader does not need it
        else:
            out += f".{part}" if out else str(part)
        prev = part
    return out


def format_errors(e: ValidationError) -> list[str]:
    lines = []
    for err in e.errors():
        msg = err["msg"].removeprefix("Value error, ")
        where = _location(err["loc"])
        # Model-level checks report several problems, each already located ("rules[1].zone: ...").
        for part in msg.split("; "):
            if re.match(r"^[a-z_]+\[\d+\]", part):
                lines.append(f"{where}.{part}" if where else part)
            else:
                lines.append(f"{where}: {part}" if where else part)
    return lines


def parse_config(text: str, origin: str = "<config>", *, expand: bool = True) -> NodeConfig:
    """Validate YAML text; ConfigError lists every problem prefixed with `origin`. With
    `expand=False` the ${VAR}s stay as written (central checks a config meant for a node,
    whose environment it does not have)."""
    if len(text.encode()) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{origin}: {len(text.encode())} bytes is over the {MAX_CONFIG_BYTES}-byte limit for a config"])
    try:
        raw = parse_yaml(text, origin)
    except FileProblem as e:
        raise ConfigError([str(e)]) from None
    if not isinstance(raw, dict):
        raise ConfigError([f"{origin}: a config is a mapping with `node` and `cameras`, got {type(raw).__name__}"])
    problems: list[str] = []
    if expand:
        raw = expand_env(raw, "", problems)
    try:
        config = NodeConfig.model_validate(raw)
    except ValidationError as e:
        # A field whose ${VAR} is unset was already reported; its empty value would only repeat it.
        unset = {p.split(": ", 1)[0] for p in problems}
        problems += [p for p in format_errors(e) if p.split(": ", 1)[0] not in unset]
        config = None
    if problems:
        raise ConfigError([f"{origin}: {p}" for p in problems])
    return config


def load_config(path: str | Path) -> NodeConfig:
    p = Path(path)
    try:
        text = read_text(p, MAX_CONFIG_BYTES, "config")
    except FileProblem as e:
        raise ConfigError([str(e)]) from None
    return parse_config(text, str(p))


def json_schema() -> dict:
    schema = NodeConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://zastava.example/schemas/node-config.schema.json"
    return schema
