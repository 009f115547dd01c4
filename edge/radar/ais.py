"""AIS (AIVDM/AIVDO) decoder: vessels' own position reports, with their names once known.

pyais decodes the payloads; this module checks the sentence, puts multi-part messages back
together (fragments may arrive out of order; a message whose fragments never all arrive is
counted), keeps each vessel's static data (types 5, 19, 24) by MMSI and turns position reports
(types 1, 2, 3, 9, 18, 19, 27) into TargetReports in SI units, with AIS's "not available"
codes as None.

    >>> dec = AisDecoder("ais")
    >>> [r] = dec.feed(b"!AIVDM,1,1,,B,13U4vF0P001d<UnEeSmQ>gv`04hd,0*4C", received=1586295590.0)
    >>> r.target, round(r.lat, 5), round(r.lon, 5), r.speed_mps, r.course_deg
    ('240205400', 37.94425, 23.63594, 0.0, 31.4)
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pyais import NMEAMessage

from edge.radar.nmea import SentenceError, frame_counted
from edge.radar.reports import KNOT, DecoderStats, TargetReport

POSITION_TYPES = {1, 2, 3, 9, 18, 19, 27}
STATIC_TYPES = {5, 19, 24}
# Fewest payload bits each type needs for the fields read here (through RAIM for position reports).
# pyais fills a short payload's missing fields with None or zero bits, which would put a vessel at a
# wrong place; the radio status after RAIM may be cut short (real senders do: 163-bit type 1s).
MIN_BITS = {1: 149, 2: 149, 3: 149, 9: 148, 18: 148, 19: 306, 27: 96, 5: 420, 24: 160}

NAV_STATUS = [
    "under way using engine", "at anchor", "not under command", "restricted manoeuvrability",
    "constrained by draught", "moored", "aground", "engaged in fishing", "under way sailing",
    "reserved (HSC)", "reserved (WIG)", "power-driven vessel towing astern",
    "power-driven vessel pushing ahead or towing alongside", "reserved", "AIS-SART active", "not defined",
]


@dataclass
class Vessel:
    """A vessel's static data, merged from every message that carried some of it."""

    name: str | None = None
    callsign: str | None = None
    ship_type: int | None = None
    imo: int | None = None
    length_m: float | None = None
    beam_m: float | None = None
    destination: str | None = None
    draught_m: float | None = None

    def as_extra(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None and k != "name"}


@dataclass
class _Fragments:
    first_received: float
    parts: dict[int, NMEAMessage] = field(default_factory=dict)
    out_of_order: bool = False


class AisDecoder:
    """AIVDM/AIVDO lines in, TargetReports out. Other NMEA sentences on the line are ignored.

    `target` is the MMSI as nine digits ("002393200" for a base station). `time` is the
    receive time moved to the message's own UTC second when it carries one (AIS gives only
    the second within the minute). Own-ship messages (AIVDO) carry extra["own_ship"] = True.
    """

    def __init__(self, source: str, *, fragment_timeout_s: float = 10.0, max_vessels: int = 100_000):
        self.source = source
        self.fragment_timeout_s = fragment_timeout_s
        self.max_vessels = max_vessels
        self.stats = DecoderStats()
        self.ignored: Counter[str] = Counter()  # valid messages with no report: other sentences, AIS types
        self.noted: Counter[str] = Counter()  # worth knowing, not errors: "fragments out of order"
        self.vessels: OrderedDict[int, Vessel] = OrderedDict()  # by MMSI, least recently heard first
        self._pending: dict[tuple, _Fragments] = {}

    def feed(self, line: bytes | str, received: float) -> list[TargetReport]:
        sentence = frame_counted(line, self.stats)
        if sentence is None:
            return []
        self._expire(received)
        text = sentence.text
        kind = text[3:6] if text[:1] == "!" else ""
        if kind not in ("VDM", "VDO"):
            address = text[1:6]  # bounded: a stream of made-up sentence types must not grow the counter
            self.ignored[address if address in self.ignored or len(self.ignored) < 200 else "other"] += 1
            return []
        try:
            message = self._assemble(text, received)
            if message is None:
                return []
            reports = self._decode(message, own=kind == "VDO", received=received)
        except SentenceError as e:
            self.stats.error(str(e))
            return []
        except Exception as e:  # noqa: BLE001 - pyais or a bug here: counted, the feed goes on
            self.stats.error(f"undecodable: {type(e).__name__}")
            return []
        self.stats.reports += len(reports)
        return reports

    # --- fragments

    def _assemble(self, text: str, received: float) -> NMEAMessage | None:
        f = text.split(",")
        if len(f) != 7:
            raise SentenceError("wrong field count")
        count, number, seq, channel = f[1], f[2], f[3], f[4]
        if not (count.isdigit() and number.isdigit() and 1 <= int(number) <= int(count) <= 9):
            raise SentenceError("bad fragment numbers")
        if not f[6].isdigit() or int(f[6]) > 5:
            raise SentenceError("bad fill bits")
        try:
            # pyais wants the sentence with its checksum; framing already checked it
            part = NMEAMessage(f"{text}*{_checksum(text)}".encode("ascii"))
        except Exception:  # noqa: BLE001 - pyais' own refusals: bad payload characters, empty payload
            raise SentenceError("bad payload") from None
        total, n = int(count), int(number)
        if total == 1:
            return part
        key = (text[1:6], channel, seq, total)
        pending = self._pending.get(key)
        if pending is not None and n in pending.parts:  # a new message reuses the id: the old one lost parts
            self.stats.error("fragments missing")
            pending = None
        if pending is None:
            pending = self._pending[key] = _Fragments(received)
        if pending.parts and n < max(pending.parts):
            pending.out_of_order = True
        pending.parts[n] = part
        if len(pending.parts) < total:
            return None
        del self._pending[key]
        if pending.out_of_order:
            self.noted["fragments out of order"] += 1
        return NMEAMessage.assemble_from_iterable([pending.parts[i] for i in range(1, total + 1)])

    def _expire(self, received: float) -> None:
        # insertion order = age order, so only the oldest entries need looking at
        while self._pending:
            key, oldest = next(iter(self._pending.items()))
            if received - oldest.first_received <= self.fragment_timeout_s:
                break
            del self._pending[key]
            self.stats.error("fragments missing")

    # --- payloads

    def _decode(self, message: NMEAMessage, *, own: bool, received: float) -> list[TargetReport]:
        payload = message.payload if isinstance(message.payload, bytes) else bytes(message.payload)
        bits = 6 * len(payload) - int(message.fill_bits or 0)
        if not payload:
            raise SentenceError("empty payload")
        msg_type = _sixbit(payload[0])
        if msg_type < 0:
            raise SentenceError("bad payload")
        if msg_type not in POSITION_TYPES and msg_type not in STATIC_TYPES:
            self.ignored[f"AIS type {msg_type}"] += 1
            return []
        if bits < MIN_BITS[msg_type]:
            raise SentenceError(f"type {msg_type} payload too short")
        m = message.decode().asdict()
        mmsi = int(m["mmsi"])
        if msg_type in STATIC_TYPES:
            self._learn(mmsi, m)
        if msg_type not in POSITION_TYPES:
            return []
        return [self._report(msg_type, mmsi, m, own=own, channel=message.channel, received=received)]

    def _learn(self, mmsi: int, m: dict[str, Any]) -> None:
        v = self.vessels.pop(mmsi, None) or Vessel()
        self.vessels[mmsi] = v
        if len(self.vessels) > self.max_vessels:
            self.vessels.popitem(last=False)
        name = _text(m.get("shipname"))
        if name:
            v.name = name
        callsign = _text(m.get("callsign"))
        if callsign:
            v.callsign = callsign
        ship_type = m.get("ship_type")
        if ship_type is not None and int(ship_type):  # 0 = not available
            v.ship_type = int(ship_type)
        if m.get("imo"):
            v.imo = int(m["imo"])
        if m.get("destination"):
            v.destination = _text(m["destination"]) or v.destination
        if m.get("draught"):
            v.draught_m = float(m["draught"])
        bow, stern, port, stbd = (m.get(k) for k in ("to_bow", "to_stern", "to_port", "to_starboard"))
        if bow is not None and stern is not None and (bow or stern):
            v.length_m = float(bow + stern)
        if port is not None and stbd is not None and (port or stbd):
            v.beam_m = float(port + stbd)

    def _report(self, msg_type: int, mmsi: int, m: dict[str, Any], *, own: bool, channel: str, received: float) -> TargetReport:
        lat, lon = m.get("lat"), m.get("lon")
        if lat is None or lon is None or not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            lat = lon = None  # 91/181 = not available
        speed, course = m.get("speed"), m.get("course")
        # not available: 102.3 kn (class A/B, 0.1 kn), 1023 kn (SAR aircraft), 63 kn (type 27);
        # 360 deg (0.1 deg courses), 511 deg (type 27's whole degrees)
        speed_na = {9: 1023, 27: 63}.get(msg_type, 102.3)
        speed_mps = speed * KNOT if speed is not None and speed < speed_na - 1e-6 else None
        course_deg = float(course) if course is not None and 0.0 <= course < 360.0 else None
        heading = m.get("heading")
        extra: dict[str, Any] = {"msg_type": msg_type, "mmsi": mmsi, "channel": channel or None,
                                 "class": "B" if msg_type in (18, 19) else "A"}
        if heading is not None and 0 <= heading < 360:
            extra["heading_deg"] = float(heading)
        status = None
        if "status" in m and m["status"] is not None:
            code = int(m["status"])
            extra["nav_status"] = code
            status = NAV_STATUS[code] if 0 <= code < 16 else None
        for key in ("accuracy", "raim", "second", "maneuver"):
            if m.get(key) is not None:
                extra[key] = int(m[key]) if key in ("second", "maneuver") else bool(m[key])
        turn = m.get("turn")
        if isinstance(turn, (int, float)) and not isinstance(turn, Enum) and math.isfinite(turn):
            extra["turn_deg_min"] = float(turn)  # pyais gives the special codes (not turning, no info) as enums
        if msg_type == 9:
            extra["sar_aircraft"] = True
            if m.get("alt") is not None and m["alt"] < 4095:
                extra["altitude_m"] = float(m["alt"])
            extra["class"] = "SAR"
        if own:
            extra["own_ship"] = True
        vessel = self.vessels.get(mmsi)
        if vessel is not None:
            self.vessels.move_to_end(mmsi)
            extra.update(vessel.as_extra())
        return TargetReport(
            source=self.source, kind="ais", target=f"{mmsi:09d}", time=_second_time(received, m.get("second")),
            lat=lat, lon=lon, speed_mps=speed_mps, course_deg=course_deg,
            name=vessel.name if vessel else None, status=status, extra=extra,
        )


def _second_time(received: float, second: Any) -> float:
    """The last time up to `received` whose UTC second is the message's (0..59; 60+ = not available).

    A position is stamped when it is fixed, before it is sent, so the stamp lies in the past;
    up to 5 s in the future is taken as the receiver's clock running behind.
    """
    if second is None or not 0 <= int(second) <= 59:
        return received
    whole = math.floor(received)
    offset = (int(second) - whole % 60) % 60
    if offset > 5:
        offset -= 60
    return float(whole + offset)


def _sixbit(c: int) -> int:
    v = c - 48
    if v > 40:
        v -= 8
    return v if 0 <= v < 64 and c in _ARMOR else -1


_ARMOR = set(range(48, 88)) | set(range(96, 120))  # the characters AIS payloads are written in


def _text(value: Any) -> str | None:
    """AIS text: '@' is the padding character; trailing spaces are padding too."""
    if not value:
        return None
    text = str(value).replace("@", "").strip()
    return text or None


def _checksum(text: str) -> str:
    cs = 0
    for b in text[1:].encode("ascii"):
        cs ^= b
    return f"{cs:02X}"
