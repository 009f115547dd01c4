"""The wire contract: what an edge node sends and central accepts.

One module both sides import. Version 1 of the alert: every field a border guard needs to act
on an alert without opening anything else, plus the evidence (a JPEG snapshot, sent as its own
message and described here by size and checksum).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ALERT_SCHEMA_VERSION = 1


class SnapshotInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_type: Literal["image/jpeg"] = "image/jpeg"
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    bytes: int = Field(gt=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class PathPoint(BaseModel):
    """Where the object's anchor was, in picture pixels, at a moment of its track."""

    model_config = ConfigDict(extra="forbid")

    t: dt.datetime
    x: float
    y: float


class Alert(BaseModel):
    """One alert: one event of one rule about one object (or one crowd)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_version: Literal[1] = ALERT_SCHEMA_VERSION
    id: str = Field(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$", description="ULID: unique and sortable by event time.")
    site: str
    node: str
    camera: str
    rule: str
    rule_type: Literal["intrusion", "loitering", "line_crossing", "crowding"]
    severity: Literal["info", "low", "medium", "high", "critical"]
    zone: str | None = None
    line: str | None = None
    direction: Literal["in", "out"] | None = None
    class_name: str = Field(alias="class")
    score: float = Field(ge=0, le=1, description="The object's detection score in the alert's frame.")
    best_score: float = Field(ge=0, le=1, description="The object's best detection score so far.")
    track_id: int | None = Field(None, description="The object's track; for crowding, the best-scoring one.")
    track_ids: list[int] = Field(default_factory=list, description="Every track the event is about.")
    count: int | None = Field(None, description="Crowding: how many objects were in the zone.")
    time: dt.datetime = Field(description="When the event happened (UTC).")
    started: dt.datetime = Field(description="When the condition began: entry, crossing, crowding.")
    first_seen: dt.datetime
    last_seen: dt.datetime
    frame: int = Field(ge=0, description="Index of the alert's frame in its source.")
    media_time: float = Field(description="Seconds into the source (recordings) or capture time (live).")
    bbox: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in picture pixels.")
    frame_size: tuple[int, int] = Field(description="Picture width and height.")
    path: list[PathPoint] = Field(default_factory=list, description="The object's recent anchor positions.")
    snapshot: SnapshotInfo | None = None
    sequence: int | None = Field(None, ge=0, description="The node's monotonically increasing alert number.")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)
