"""A radar or AIS feed's settings, validated before anything opens.

    >>> cfg = RadarFeedConfig(id="arpa-1", format="nmea", transport="udp", port=10110)
    >>> cfg.stale_s, cfg.range_sigma_m
    (30.0, 10.0)
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.radar.video_config import DisplaySettings, RadarVideoSettings

FeedFormat = Literal["nmea", "ais", "asterix", "cat240", "display"]
Transport = Literal["udp", "tcp", "serial", "file", "frames"]
VIDEO_FORMATS = ("cat240", "display")


class RadarFeedConfig(BaseModel):
    """Where a radar's (or AIS receiver's) messages come from, and what the sensor is."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
                    description="The feed's name in reports and alerts: lower-case letters, digits, '-' and '_'.")
    format: FeedFormat = Field(..., description="nmea: ARPA TTM/TLL plus own-ship sentences; ais: AIVDM/AIVDO; "
                                                "asterix: CAT048/CAT010 datagrams; cat240: radar video (ASTERIX "
                                                "CAT240) turned into plots and tracks here; display: a captured radar "
                                                "screen, read through a frame source.")
    transport: Transport = Field(..., description="udp (listen), tcp (connect to a server), serial (a port), "
                                                  "file (a recording: NMEA/AIS text, pcap/pcapng, raw ASTERIX); "
                                                  "frames (display: any camera source, `source`).")
    host: str = Field("0.0.0.0", description="udp: the address to listen on (unicast; a multicast feed listens on "
                                             "its group); tcp: the server to connect to.")
    port: int | None = Field(None, ge=1, le=65535, description="udp: the port to listen on; tcp: the server's port; "
                                                               "file: only datagrams to this port (pcap).")
    multicast_group: str | None = Field(None, description="udp: an IPv4 multicast group to join (ASTERIX feeds "
                                                          "are usually multicast).")
    multicast_interface: str = Field("0.0.0.0", description="udp: the address of the interface to join the group "
                                                            "on; 0.0.0.0 lets the kernel choose.")
    device: str | None = Field(None, description="serial: the port, e.g. /dev/ttyUSB0.")
    baudrate: int = Field(4800, ge=50, le=4_000_000, description="serial: line speed; NMEA 0183 is 4800, "
                                                                 "AIS receivers (NMEA 0183-HS) 38400.")
    path: Path | None = Field(None, description="file: the recording to replay.")
    pace: Literal["recorded", "fast"] = Field(
        "recorded", description="file: replay at the recording's own pace (its sentences' or packets' times), "
                                "or as fast as possible.")
    position: tuple[float, float] | None = Field(None, description="[lat, lon] of a radar at a fixed post (WGS84 "
                                                                   "degrees); unset: own ship's position from the feed.")
    height_m: float = Field(0.0, ge=-100.0, le=10_000.0, description="Antenna height above sea level, metres.")
    range_sigma_m: float = Field(10.0, gt=0.0, description="The sensor's range accuracy (1 sigma), metres; "
                                                           "a marine radar's is about 10 m.")
    bearing_sigma_deg: float = Field(1.0, gt=0.0, le=45.0, description="The sensor's bearing accuracy (1 sigma), "
                                                                       "degrees; a marine radar's is about 1 degree.")
    stale_s: float = Field(30.0, gt=0.0, description="A target not reported for this long is dropped.")
    max_message_bytes: int = Field(65_536, ge=82, le=1 << 20, description="Longer lines or datagrams are counted "
                                                                          "and dropped.")
    coalesce_s: float = Field(0.04, ge=0.0, le=1.0, description="udp: after a datagram, wait this long and read "
                              "what came meanwhile at once: the feed's thread wakes once per burst instead of once "
                              "per datagram (each keeps its own receive time, the kernel's); 0: one at a time.")
    reconnect_min_s: float = Field(0.5, gt=0.0, description="tcp/serial: first wait before reconnecting; doubles "
                                                            "on each failure.")
    reconnect_max_s: float = Field(30.0, gt=0.0, description="tcp/serial: longest wait between reconnects.")
    source: str | None = Field(None, description="frames: the captured display (video file, image folder, rtsp:// "
                                                 "or http:// URL, USB index), as a camera's source.")
    video: RadarVideoSettings = Field(default_factory=RadarVideoSettings,
                                      description="cat240/display: sweeps, detector, clutter map and tracker.")
    display: DisplaySettings | None = Field(None, description="display: where the radar picture is on the screen.")
    cat010_edition: Literal["1.1", "sensis-0.24"] = Field("1.1", description="asterix: CAT010 layout; Sensis' "
                                                                             "pre-standard 0.24 differs in I010/202.")

    @field_validator("position")
    @classmethod
    def _position_on_earth(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (-90.0 <= v[0] <= 90.0 and -180.0 <= v[1] <= 180.0):
            raise ValueError("position is [lat, lon] in degrees: lat within -90..90, lon within -180..180")
        return v

    @field_validator("multicast_group")
    @classmethod
    def _is_multicast(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                addr = ipaddress.IPv4Address(v)
            except ValueError:
                raise ValueError(f"{v!r} is not an IPv4 address") from None
            if not addr.is_multicast:
                raise ValueError(f"{v} is not a multicast address (224.0.0.0/4)")
        return v

    @model_validator(mode="after")
    def _transport_needs(self) -> RadarFeedConfig:
        t = self.transport
        if t in ("udp", "tcp") and self.port is None:
            raise ValueError(f"transport {t} needs a port")
        if t == "tcp" and self.host in ("0.0.0.0", "::", ""):
            raise ValueError("transport tcp needs the server's host")
        if t == "serial" and not self.device:
            raise ValueError("transport serial needs a device")
        if t == "serial" and self.format == "asterix":
            raise ValueError("asterix comes over udp, tcp or a file, not a serial line")
        if t == "file" and self.path is None:
            raise ValueError("transport file needs a path")
        if self.multicast_group and t != "udp":
            raise ValueError("multicast_group is for transport udp")
        video = self.format in VIDEO_FORMATS
        if self.format == "cat240" and t not in ("udp", "file"):
            raise ValueError("cat240 comes over udp or from a file (pcap, or raw CAT240 blocks)")
        if (self.format == "display") != (t == "frames"):
            raise ValueError("a display feed has transport frames, and only a display feed has")
        if t == "frames" and not self.source:
            raise ValueError("transport frames needs a source")
        if self.format == "display" and self.display is None:
            raise ValueError("a display feed needs `display` (centre_px, radius_px, range_m)")
        if video and self.position is None:
            raise ValueError(f"a {self.format} feed needs the radar's position [lat, lon]: its plots are measured from it")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s is below reconnect_min_s")
        return self
