"""Settings of a radar picture feed (CAT240 video or a captured radar display): how sweeps are
assembled, which detector finds plots on them, and how plots become tracks.

    >>> s = RadarVideoSettings()
    >>> s.detector, s.cfar.pfa, s.tracker.confirm_m, s.tracker.confirm_n
    ('cfar', 1e-06, 4, 5)
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.detect.config import DetectorConfig
from edge.radar.tracker import TrackerSettings


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CfarSettings(Strict):
    """Cell-averaging (or ordered-statistic) CFAR along range."""

    method: Literal["ca", "os"] = Field("ca", description="ca: cell averaging; os: ordered statistic, which holds "
                                                          "its false-alarm rate better at clutter edges (slower).")
    guard: int = Field(2, ge=0, le=64, description="Guard cells on each side of the cell under test, left out.")
    ref: int = Field(16, ge=1, le=256, description="Reference cells on each side, beyond the guard cells.")
    pfa: float = Field(1e-6, gt=0.0, lt=0.1, description="False-alarm probability per cell in Rayleigh noise.")
    os_rank: float = Field(0.75, gt=0.0, le=1.0, description="os: the rank of the reference cell used, as a share "
                                                             "of the 2 x ref cells.")
    min_amplitude: float = Field(0.0, ge=0.0, description="Cells below this value are never detections (a display's "
                                                          "black background has no noise to average).")


class ClutterMapSettings(Strict):
    """The static clutter map that learns fixed returns (coast, buildings) and suppresses them."""

    enabled: bool = True
    weight: float = Field(0.005, gt=0.0, le=1.0, description="Learning weight per sweep (time constant 1/weight sweeps).")
    ratio: float = Field(3.0, ge=1.0, le=1000.0, description="A detection survives where the cell is over this many "
                                                             "times what the map expects.")
    learn_scans: int = Field(3, ge=1, le=1000, description="Sweeps after start-up that give no plots while the map settles.")


class PlotSettings(Strict):
    min_cells: int = Field(1, ge=1, le=10_000, description="Smallest cluster of detected cells that makes a plot.")
    max_cells: int = Field(5000, ge=1, le=10_000_000, description="Larger clusters (land the map has not learned) "
                                                                  "make no plot.")


class PictureDetectorSettings(Strict):
    """An ONNX detector (the detector issue's) on the rendered radar picture (north-up PPI)."""

    model: DetectorConfig = Field(default_factory=lambda: DetectorConfig(conf=0.25),
                                  description="A model trained on radar pictures (see models/ for the Ultralytics path).")
    size_px: int = Field(1024, ge=64, le=8192, description="The rendered picture's side, pixels.")
    range_m: float | None = Field(None, gt=0.0, description="Range at the picture's edge; default: the sweep's.")
    classes: list[str] = Field(default_factory=list, description="Classes that are plots; empty: all.")


class DisplaySettings(Strict):
    """Where the radar picture is on a captured display, and how it maps to the radar."""

    region: tuple[int, int, int, int] | None = Field(None, description="[x, y, width, height] of the radar picture "
                                                                       "on the screen; default: the whole frame.")
    centre_px: tuple[float, float] = Field(..., description="[x, y] of the radar (the sweep's centre), screen pixels.")
    radius_px: float = Field(..., gt=1.0, description="Radius of the picture's outer range ring, pixels.")
    range_m: float = Field(..., gt=0.0, description="The range that radius stands for, metres (the range scale).")
    orientation: Literal["north-up", "heading-up"] = Field("north-up", description="heading-up: the screen's top "
                                                                                   "is the ship's heading.")
    heading_deg: float = Field(0.0, ge=0.0, lt=360.0, description="heading-up: the heading (true degrees) of the top "
                                                                  "of the screen.")
    channel: Literal["max", "gray", "blue", "green", "red"] = Field(
        "max", description="Which colour channel carries the echo: max of B, G, R (any colour on black), or one.")
    scan_s: float = Field(2.5, gt=0.0, le=60.0, description="One frame per this many seconds is a sweep (the "
                                                            "antenna's rotation period).")
    azimuths: int = Field(1024, ge=16, le=8192, description="Azimuth bins the picture is resampled to.")
    range_cells: int = Field(512, ge=16, le=8192, description="Range cells the picture is resampled to.")
    start_time: dt.datetime | None = Field(None, description="A recording's wall time of its first frame; default: "
                                                             "the file's modification time. Live streams use the clock.")


class RadarVideoSettings(Strict):
    """How a radar picture becomes tracks."""

    detector: Literal["cfar", "onnx"] = Field("cfar", description="cfar: CFAR, clutter map and clustering on the "
                                                                  "polar video; onnx: a picture model on the rendered PPI.")
    azimuths: int = Field(4096, ge=16, le=65536, description="Azimuth bins per sweep (CAT240 radials are put in the "
                                                             "bin of their mid azimuth).")
    max_range_cells: int = Field(4096, ge=16, le=65536, description="Range cells kept per radial; more are cut.")
    cfar: CfarSettings = Field(default_factory=CfarSettings)
    clutter_map: ClutterMapSettings = Field(default_factory=ClutterMapSettings)
    plots: PlotSettings = Field(default_factory=PlotSettings)
    onnx: PictureDetectorSettings = Field(default_factory=PictureDetectorSettings)
    tracker: TrackerSettings = Field(default_factory=TrackerSettings)
    picture_px: int = Field(800, ge=128, le=4096, description="Side of the radar overlay picture (replay, live view).")
    keep_pictures: int = Field(2048, ge=1, le=100_000, description="Replay: sweeps whose picture is kept for the overlay.")

    @model_validator(mode="after")
    def _m_of_n(self):
        if self.tracker.confirm_m > self.tracker.confirm_n:
            raise ValueError(f"tracker.confirm_m ({self.tracker.confirm_m}) is over confirm_n ({self.tracker.confirm_n})")
        return self
