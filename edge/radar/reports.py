"""What every radar and AIS decoder produces: one target report per observation.

Decoders turn bytes into TargetReports; the track store turns reports into tracks. Positions
are filled as far as the source gives them: a radar's range and true bearing from the sensor,
lat/lon when the sensor's (or own ship's) position is known or the message carries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

KNOT = 1852.0 / 3600.0  # metres per second
NAUTICAL_MILE = 1852.0


# Not frozen: a frozen dataclass's __init__ sets each field through object.__setattr__, three
# times the cost of a plain one, and a radar sends thousands of reports a second. Nothing
# changes a report after its decoder made it; the store copies what it keeps.
@dataclass(slots=True)
class TargetReport:
    source: str  # the feed's id in the node config
    kind: Literal["radar", "ais"]
    target: str  # the radar's track number, or the vessel's MMSI
    time: float  # UTC epoch seconds of the observation (the message's own time when it has one)
    lat: float | None = None
    lon: float | None = None
    range_m: float | None = None  # from the sensor
    bearing_deg: float | None = None  # true bearing from the sensor, 0..360
    speed_mps: float | None = None  # over ground
    course_deg: float | None = None  # true course over ground, 0..360
    name: str | None = None  # a radar target's label, or the vessel's name
    status: str | None = None  # radar: "tracking", "lost", "acquiring"...; AIS: navigation status
    extra: Mapping[str, Any] = field(default_factory=dict)  # source-specific: callsign, ship type, SAC/SIC...
    # The (lat, lon) that range_m and bearing_deg are measured from, when lat/lon were placed from
    # them: the track store then places a sensor at the post without a round trip through lat/lon.
    origin: tuple[float, float] | None = None


@dataclass
class DecoderStats:
    """Per-source quality figures: what came in, what was used, what was refused and why."""

    messages: int = 0
    reports: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, reason: str) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1

    @property
    def rejected(self) -> int:
        return sum(self.errors.values())
