"""NMEA 0183 radar (ARPA) decoder: TTM and TLL target reports, placed on the map from own ship.

A radar's TTM gives a target's range and bearing from the antenna; TLL gives its lat/lon. Both
name the target by the radar's target number, so a TTM and a TLL with the same number are the
same target (`target` "01" for both). Own ship's position comes from GGA/RMC/GLL, its heading
from HDT, HDG (+ variation) or OSD, and the date from RMC/ZDA, so a TTM's hhmmss becomes a full
UTC time and a bearing relative to the bow becomes a true bearing.

    >>> dec = NmeaDecoder("arpa", position=(58.2123, 11.5475))
    >>> [r] = dec.feed(b"$RATTM,01,0.48,263.6,T,0.0,2.9,T,0.48,,N,1 (B4G),T,,134601,M*20", received=0.0)
    >>> r.target, round(r.range_m), r.bearing_deg, r.status
    ('01', 889, 263.6, 'tracking')

pynmea2 gives the field layout of each sentence; numbers, coordinates and times are converted
here, strictly, because pynmea2 hands back the raw text when a number does not parse and refuses
lower-case checksums. RSD is not in pynmea2 and is split by hand. A plain talker sentence
("$RATTM,..." with no '*' left in it) is split here the way pynmea2's parser would split it, at
a fraction of its cost (a radar sends thousands a second); anything else goes through pynmea2.
A plain TTM or TLL line is also framed by one pattern match instead of frame()'s steps; the
checksum is verified all the same, and every other line (or one whose checksum fails) takes the
general path, so the refusals and their counts are the general path's
(tests/test_radar_nmea_fast.py holds the two paths to each other). A plain TTM line, what a
radar sends most, is first offered to a compiled scan that frames, checks and converts it in one
pass (edge.radar.ttm_scan, held to the pattern path by tests/test_radar_ttm_scan.py). For a
radar at the post, the track store runs that scan itself and writes the target's row without a
report (edge.radar.store.TrackStore.add_ttm, with this decoder's scan buffers, `ttm_clock`,
`ttm_fields` and unit tables; tests/test_radar_store_fast.py).
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import reduce
from operator import xor

import numpy as np
import pynmea2

from edge.geo import bearing_distance, destination
from edge.radar import ttm_scan
from edge.radar.reports import KNOT, NAUTICAL_MILE, DecoderStats, TargetReport

MAX_SENTENCE = 1024  # NMEA says 82 characters; real devices run longer, nothing sane runs this long

# TTM/OSD/RSD unit letter -> (metres per distance unit, metres per second per speed unit)
UNITS = {"N": (NAUTICAL_MILE, KNOT), "K": (1000.0, 1000.0 / 3600.0), "S": (1609.344, 1609.344 / 3600.0)}
STATUS = {"T": "tracking", "L": "lost", "Q": "acquiring"}
ACQUISITION = {"A": "automatic", "M": "manual", "R": "reported"}

_HEX = re.compile(rb"[0-9A-Fa-f]{2}")


class SentenceError(ValueError):
    """A sentence that cannot be used; its message is the reason counted in the stats."""


# --- framing: shared with the AIS decoder -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sentence:
    text: str  # the sentence from its '$' or '!' up to (not including) the '*'
    tags: dict[str, str]  # NMEA 4 tag block fields (c: unix time, s: source...), usually empty


def frame(line: bytes | str) -> Sentence | None:
    """Check one line's framing and checksum; None for a blank line, SentenceError otherwise."""
    if isinstance(line, str):
        try:
            line = line.encode("ascii")
        except UnicodeEncodeError:
            raise SentenceError("non-ASCII bytes") from None
    line = line.strip()
    if not line:
        return None
    if len(line) > MAX_SENTENCE:
        raise SentenceError("sentence too long")
    if not line.isascii():
        raise SentenceError("non-ASCII bytes")
    tags: dict[str, str] = {}
    if line[:1] == b"\\":  # NMEA 4 tag block: \c:1700000000,s:rx1*hh\!AIVDM,...
        end = line.find(b"\\", 1)
        if end < 0:
            raise SentenceError("unterminated tag block")
        tags = _tag_block(line[1:end])
        line = line[end + 1 :]
    if line[:1] not in (b"$", b"!"):
        raise SentenceError("not an NMEA sentence")
    star = line.rfind(b"*")
    if star < 0:
        raise SentenceError("missing checksum")
    given, rest = line[star + 1 : star + 3], line[star + 3 :]
    # after the checksum only a USCG/NAIS receiver suffix may follow (",s36310,d-081,...,1242958962")
    if not _HEX.fullmatch(given) or (rest and rest[:1] != b","):
        raise SentenceError("malformed checksum")
    body = line[1:star]
    if reduce(xor, body, 0) != int(given, 16):
        raise SentenceError("bad checksum")
    text = line[:star].decode("ascii")
    if not text.isprintable():
        raise SentenceError("control characters")
    return Sentence(text, tags)


def _tag_block(raw: bytes) -> dict[str, str]:
    tags: dict[str, str] = {}
    body = raw.split(b"*", 1)[0]
    for part in body.split(b","):
        key, sep, value = part.partition(b":")
        if sep:
            tags[key.decode("ascii", "replace")] = value.decode("ascii", "replace")
    return tags


def frame_counted(line: bytes | str, stats: DecoderStats):
    """frame(), with the message and any refusal counted in `stats`; None for a refused or blank line."""
    try:
        sentence = frame(line)
    except SentenceError as e:
        stats.messages += 1
        stats.error(str(e))
        return None
    if sentence is not None:
        stats.messages += 1
    return sentence


def sentence_type(text: str) -> str:
    """'TTM' for '$RATTM,...'; proprietary sentences ('$PGRME') give their whole address."""
    address = text[1 : text.find(",")] if "," in text else text[1:]
    return address if address[:1] == "P" else address[2:]


# --- strict field conversion -------------------------------------------------------------------


def number(text: str, what: str) -> float | None:
    """A decimal field; '' -> None. Raises SentenceError naming the field on junk."""
    if not text:
        return None
    try:
        v = float(text)
    except ValueError:
        raise SentenceError(f"bad {what}") from None
    if not math.isfinite(v):
        raise SentenceError(f"bad {what}")
    return v


def coordinate(value: str, hemisphere: str, what: str) -> float | None:
    """ddmm.mmmm / dddmm.mmmm + N/S/E/W -> signed degrees; '' -> None."""
    if not value and not hemisphere:
        return None
    dot = value.find(".")
    head = len(value) if dot < 0 else dot
    if head < 3 or not value[:head].isdigit():
        raise SentenceError(f"bad {what}")
    try:
        deg, minutes = int(value[: head - 2]), float(value[head - 2 :])
    except ValueError:
        raise SentenceError(f"bad {what}") from None
    limit = 90 if what == "latitude" else 180
    if minutes >= 60 or deg + minutes / 60 > limit:
        raise SentenceError(f"bad {what}")
    sign = {"N": 1, "E": 1, "S": -1, "W": -1}.get(hemisphere)
    if sign is None or (what == "latitude") != (hemisphere in "NS"):
        raise SentenceError(f"bad {what} hemisphere")
    return sign * (deg + minutes / 60.0)


def time_of_day(text: str) -> float | None:
    """hhmmss[.ss] -> seconds after midnight; '' -> None."""
    if not text:
        return None
    if len(text) < 6 or not text[:6].isdigit() or (len(text) > 6 and (text[6] != "." or not text[7:].isdigit())):
        raise SentenceError("bad time")
    h, m, s = int(text[:2]), int(text[2:4]), float(text[4:])
    if h > 23 or m > 59 or s >= 61:  # 60.x: a leap second
        raise SentenceError("bad time")
    return h * 3600 + m * 60 + s


def target_id(text: str) -> str:
    """Radar target numbers are two digits ('01'); '1' and '01' name the same target."""
    text = text.strip()
    if not text:
        raise SentenceError("no target number")
    return f"{int(text):02d}" if text.isdigit() else text


def _field(s: pynmea2.NMEASentence | _Plain, name: str) -> str:
    i = s.name_to_idx[name]
    return s.data[i].strip() if i < len(s.data) else ""


def _fields(text: str, names: tuple[str, ...]) -> list[str]:
    """The fields `names` of a sentence, as _field gives them, in one pass."""
    s = _parse(text)
    if type(s) is not _Plain:
        return [_field(s, name) for name in names]
    return _layout_fields(s.data, s.name_to_idx, names)


def _layout_fields(data: list[str], name_to_idx: dict[str, int], names: tuple[str, ...]) -> list[str]:
    n = len(data)
    return [data[i].strip() if (i := name_to_idx[name]) < n else "" for name in names]


# --- the decoder -------------------------------------------------------------------------------


@dataclass
class OwnShip:
    """What the radar's platform last said about itself, each value with its receive time."""

    lat: float | None = None
    lon: float | None = None
    position_at: float | None = None
    heading: float | None = None  # true
    heading_at: float | None = None
    variation: float | None = None  # magnetic variation, east positive (from RMC/HDG)
    speed_mps: float | None = None
    course_deg: float | None = None


class NmeaDecoder:
    """NMEA 0183 lines in, TargetReports out; `.stats` says what was used and what refused.

    `position` fixes the radar at a post; without it, own ship's GGA/RMC/GLL position is used.
    Own-ship position and heading older than `own_max_age_s` (receive time) are not used to
    place targets: a moving ship's old fix would put them in the wrong place.
    """

    def __init__(self, source: str, position: tuple[float, float] | None = None, *, own_max_age_s: float = 30.0):
        self.source = source
        self.position = (float(position[0]), float(position[1])) if position else None
        self.own_max_age_s = own_max_age_s
        self.stats = DecoderStats()
        self.ignored: Counter[str] = Counter()  # valid sentences this decoder has no use for, by type
        self.own = OwnShip()
        self.display: dict[str, object] = {}  # the radar's display state from RSD
        self._day: int | None = None  # UTC midnight (epoch s) of the date last seen in RMC/ZDA
        self._utc: float | None = None  # the UTC time (epoch s) that came with that date
        self._floats, self._ints = np.empty(ttm_scan.N_FLOATS), np.empty(ttm_scan.N_INTS, np.int64)  # ttm_scan's out
        # For the track store's fast path (TrackStore.add_ttm), which runs the scan on this feed's thread.
        self.scan_buffers = (self._floats, self._ints)
        self.unit_tables = (PER_UNIT, PER_SPEED_UNIT)
        self._ttm_tails: dict[tuple[bytes, int], tuple] = {}  # ttm_fields' results by the line's tail
        self._handlers = {
            "TTM": self._ttm, "TLL": self._tll, "GGA": self._gga, "RMC": self._rmc, "GLL": self._gll,
            "ZDA": self._zda, "HDT": self._hdt, "HDG": self._hdg, "OSD": self._osd, "RSD": self._rsd,
        }

    def feed(self, line: bytes | str, received: float) -> list[TargetReport]:
        # A radar's usual line, a plain TTM, is framed, checked and converted in one compiled
        # scan (edge.radar.ttm_scan); what it declines takes the pattern path below.
        if plain_ttm_candidate(line) \
                and ttm_scan.scan(np.frombuffer(line, np.uint8), self._floats, self._ints) == ttm_scan.TTM:
            self.stats.messages += 1
            return self._run("TTM", self._ttm_scanned, line, received)
        # A TTM or TLL with a correct checksum and nothing around it but whitespace is framed by
        # one pattern match; it gives what frame() and _parse() would.
        plain = _PLAIN_TARGET.fullmatch(line) if type(line) is bytes and len(line) <= MAX_SENTENCE else None
        if plain is not None and reduce(xor, plain[1], 0) == int(plain[4], 16):
            self.stats.messages += 1
            kind = plain[2].decode("ascii")
            if kind == "TTM":
                return self._run(kind, self._ttm_fast, plain[3].decode("ascii"), received)
            data = plain[3].decode("ascii").split(",")
            return self._run(kind, self._tll_report, _layout_fields(data, _TLL_INDEX, TLL_FIELDS), received)
        sentence = frame_counted(line, self.stats)
        if sentence is None:
            return []
        kind = sentence_type(sentence.text)
        handler = self._handlers.get(kind)
        if handler is None:
            # a checksum-valid stream of made-up types must not grow this without bound
            self.ignored[kind if kind in self.ignored or len(self.ignored) < 200 else "other"] += 1
            return []
        return self._run(kind, handler, sentence.text, received)

    def _run(self, kind: str, handler, arg, received: float) -> list[TargetReport]:
        """A sentence's handler, its refusal counted by reason."""
        try:
            reports = handler(arg, received)
        except SentenceError as e:
            self.stats.error(f"{kind}: {e}")
            return []
        except Exception as e:  # noqa: BLE001 - a parser bug must not take the feed down; it is counted
            self.stats.error(f"{kind}: internal {type(e).__name__}")
            return []
        self.stats.reports += len(reports)
        return reports

    # --- target sentences

    def _ttm(self, text: str, received: float) -> list[TargetReport]:
        return self._ttm_report(_fields(text, TTM_FIELDS), received)

    def _ttm_report(self, fields: list[str], received: float) -> list[TargetReport]:
        (number_text, distance_text, bearing_text, brg_ref, speed_text, cog_text, cog_unit, cpa_text, tcpa_text,
         dist_unit, name, status_code, ref, timestamp, acq) = fields
        target = target_id(number_text)
        unit = dist_unit or "N"  # N is what every set we know sends; an empty field says nothing else
        if unit not in UNITS:
            raise SentenceError("unknown units")
        per_unit, per_speed_unit = UNITS[unit]
        distance = number(distance_text, "distance")
        bearing = number(bearing_text, "bearing")
        speed = number(speed_text, "speed")
        course = number(cog_text, "course")
        cpa = number(cpa_text, "CPA")
        tcpa = number(tcpa_text, "TCPA")
        tod = time_of_day(timestamp)
        if distance is not None and distance < 0:
            raise SentenceError("bad distance")
        return self._ttm_build(target, unit, distance, bearing, brg_ref, speed, course, cog_unit, cpa, tcpa, tod, name,
                               status_code, ref, acq, received)

    def _ttm_plain(self, data: str, received: float) -> list[TargetReport] | None:
        """A TTM in its plainest form — unsigned decimals, T bearings, one-letter codes, hhmmss —
        passes every conversion check of _ttm_report, so it converts here without them (a radar
        sends thousands a second). None for any other: the general path judges it."""
        m = _TTM_PLAIN.fullmatch(data)
        if m is None:
            return None
        (number_text, distance, bearing, brg_ref, speed, course, cog_unit, cpa, tcpa, unit, name, status_code, ref,
         timestamp, acq) = m.groups()
        tod = None
        if timestamp is not None:
            h, mi, sec = int(timestamp[:2]), int(timestamp[2:4]), float(timestamp[4:])
            if h > 23 or mi > 59 or sec >= 61:
                return None  # time_of_day's refusal
            tod = h * 3600 + mi * 60 + sec
        return self._ttm_build(
            f"{int(number_text):02d}", unit or "N", None if distance is None else float(distance),
            None if bearing is None else float(bearing), brg_ref, None if speed is None else float(speed),
            None if course is None else float(course), cog_unit, None if cpa is None else float(cpa),
            None if tcpa is None else float(tcpa), tod, name.strip(), status_code, ref, acq or "", received)

    def _ttm_scanned(self, line: bytes, received: float) -> list[TargetReport]:
        """A TTM line that ttm_scan converted (into self._floats, self._ints) as _ttm_plain would."""
        distance, bearing, speed, course, cpa, tcpa, tod = _scanned_numbers(self._floats)
        target, unit, brg_ref, cog_unit, name, status_code, ref, acq = _scanned_codes(self._ints, line)
        return self._ttm_build(target, unit, distance, bearing, brg_ref, speed, course, cog_unit, cpa, tcpa, tod, name,
                               status_code, ref, acq, received)

    def _ttm_fast(self, data: str, received: float) -> list[TargetReport]:
        reports = self._ttm_plain(data, received)
        if reports is None:
            reports = self._ttm_report(_layout_fields(data.split(","), _TTM_INDEX, TTM_FIELDS), received)
        return reports

    def ttm_clock(self) -> tuple[float, float]:
        """(UTC midnight, UTC time) of the date last seen in RMC/ZDA, NaN before one: what the track
        store's fast path (edge.radar.store.TrackStore.add_ttm) needs to date a TTM's hhmmss as
        _utc_of does."""
        if self._day is None or self._utc is None:
            return math.nan, math.nan
        return float(self._day), float(self._utc)

    def ttm_fields(self, line: bytes, tail_start: int, tail_end: int, acq: int) -> tuple[str | None, str | None, dict]:
        """The name, status and extra of a plain TTM line this decoder's scan buffers hold (the
        track store's fast path, TrackStore.add_ttm, has just scanned it on this feed's thread),
        as its report would carry them. They follow from the line's span from CPA to reference
        and its acquisition code alone, and a radar repeats those from scan to scan: looked up by
        them, decoded only when new. The extra dict is shared: readers copy it (Target.extra)."""
        key = (line[tail_start:tail_end], acq)
        fields = self._ttm_tails.get(key)
        if fields is None:
            _target, unit, _brg_ref, _cog_unit, name, code, ref, acq_text = _scanned_codes(self._ints, line)
            *_, cpa, tcpa, _tod = _scanned_numbers(self._floats)
            fields = (name or None, STATUS.get(code, code or None),
                      _ttm_extra(code, cpa, tcpa, acq_text, ref, UNITS[unit][0]))
            if len(self._ttm_tails) >= 4096:
                self._ttm_tails.clear()  # CPAs that change every scan: a cache that must not grow
            self._ttm_tails[key] = fields
        return fields

    def _ttm_build(self, target: str, unit: str, distance, bearing, brg_ref: str, speed, course, cog_unit: str, cpa,
                   tcpa, tod, name: str, status_code: str, ref: str, acq: str, received: float) -> list[TargetReport]:
        """A TTM's converted fields as a report: true angles, metres, the full UTC time."""
        per_unit, per_speed_unit = UNITS[unit]
        extra = _ttm_extra(status_code, cpa, tcpa, acq, ref, per_unit)
        true_bearing = self._true_angle(bearing, brg_ref, received, extra, "bearing")
        true_course = self._true_angle(course, cog_unit, received, extra, "course")
        range_m = distance * per_unit if distance is not None else None
        lat = lon = None
        origin = self._origin(received)
        if origin and range_m is not None and true_bearing is not None:
            lat, lon = destination(origin[0], origin[1], true_bearing, range_m)
        else:
            origin = None
        return [TargetReport(
            source=self.source, kind="radar", target=target, time=self._utc_of(tod, received),
            lat=lat, lon=lon, range_m=range_m, bearing_deg=true_bearing,
            speed_mps=speed * per_speed_unit if speed is not None else None, course_deg=true_course,
            name=name or None, status=STATUS.get(status_code, status_code or None), extra=extra, origin=origin,
        )]

    def _tll(self, text: str, received: float) -> list[TargetReport]:
        return self._tll_report(_fields(text, TLL_FIELDS), received)

    def _tll_report(self, fields: list[str], received: float) -> list[TargetReport]:
        number_text, lat_text, lat_dir, lon_text, lon_dir, name, timestamp, status_code, ref = fields
        target = target_id(number_text)
        lat = coordinate(lat_text, lat_dir, "latitude")
        lon = coordinate(lon_text, lon_dir, "longitude")
        if lat is None or lon is None:
            raise SentenceError("no position")
        tod = time_of_day(timestamp)
        extra: dict[str, object] = {"sentence": "TLL", "status_code": status_code or None}
        if ref:
            extra["reference"] = ref == "R"
        range_m = bearing = None
        origin = self._origin(received)
        if origin:
            bearing, range_m = bearing_distance(origin[0], origin[1], lat, lon)
        return [TargetReport(
            source=self.source, kind="radar", target=target, time=self._utc_of(tod, received),
            lat=lat, lon=lon, range_m=range_m, bearing_deg=bearing,
            name=name or None, status=STATUS.get(status_code, status_code or None), extra=extra,
        )]

    # --- own ship

    def _gga(self, text: str, received: float) -> list[TargetReport]:
        s = _parse(text)
        if _field(s, "gps_qual") in ("", "0"):  # 0 = no fix
            self.ignored["GGA without fix"] += 1
            return []
        self._set_position(_field(s, "lat"), _field(s, "lat_dir"), _field(s, "lon"), _field(s, "lon_dir"), received)
        return []

    def _gll(self, text: str, received: float) -> list[TargetReport]:
        s = _parse(text)
        if _field(s, "status") != "A":
            self.ignored["GLL not valid"] += 1
            return []
        self._set_position(_field(s, "lat"), _field(s, "lat_dir"), _field(s, "lon"), _field(s, "lon_dir"), received)
        return []

    def _rmc(self, text: str, received: float) -> list[TargetReport]:
        s = _parse(text)
        tod = time_of_day(_field(s, "timestamp"))
        date = _field(s, "datestamp")
        if date:
            if len(date) != 6 or not date.isdigit():
                raise SentenceError("bad date")
            day, month, yy = int(date[:2]), int(date[2:4]), int(date[4:])
            # two-digit years: NMEA devices date from 1980 on (GPS epoch), so 80-99 are the 1900s
            self._set_date(yy + (1900 if yy >= 80 else 2000), month, day, tod)
        var = number(_field(s, "mag_variation"), "variation")
        if var is not None:
            self.own.variation = -var if _field(s, "mag_var_dir") == "W" else var
        if _field(s, "status") != "A":  # V: the receiver says the fix is not valid
            self.ignored["RMC not valid"] += 1
            return []
        self._set_position(_field(s, "lat"), _field(s, "lat_dir"), _field(s, "lon"), _field(s, "lon_dir"), received)
        sog = number(_field(s, "spd_over_grnd"), "speed")
        cog = number(_field(s, "true_course"), "course")
        self.own.speed_mps = sog * KNOT if sog is not None else None
        self.own.course_deg = cog % 360.0 if cog is not None else None
        return []

    def _zda(self, text: str, received: float) -> list[TargetReport]:
        s = _parse(text)
        tod = time_of_day(_field(s, "timestamp"))
        try:
            day, month, year = int(_field(s, "day")), int(_field(s, "month")), int(_field(s, "year"))
        except ValueError:
            raise SentenceError("bad date") from None
        self._set_date(year, month, day, tod)
        return []

    def _hdt(self, text: str, received: float) -> list[TargetReport]:
        s = _parse(text)
        heading = number(_field(s, "heading"), "heading")
        if heading is not None:
            self._set_heading(heading, received)
        return []

    def _hdg(self, text: str, received: float) -> list[TargetReport]:
        # magnetic sensor heading + deviation = magnetic heading; + variation = true heading
        s = _parse(text)
        heading = number(_field(s, "heading"), "heading")
        dev = number(_field(s, "deviation"), "deviation") or 0.0
        var = number(_field(s, "variation"), "variation")
        if _field(s, "dev_dir") == "W":
            dev = -dev
        if var is not None:
            self.own.variation = -var if _field(s, "var_dir") == "W" else var
        if heading is None:
            return []
        if self.own.variation is None:  # a magnetic heading is 3..20 degrees off true here; not good enough
            self.ignored["HDG without variation"] += 1
            return []
        self._set_heading(heading + dev + self.own.variation, received)
        return []

    def _osd(self, text: str, received: float) -> list[TargetReport]:
        # OSD: heading (T), status A/V, course (T), course ref, speed, speed ref, set, drift, speed units
        s = _parse(text)
        if _field(s, "status") != "A":
            self.ignored["OSD not valid"] += 1
            return []
        heading = number(_field(s, "heading"), "heading")
        course = number(_field(s, "course"), "course")
        speed = number(_field(s, "speed"), "speed")
        unit = _field(s, "speed_unit") or "N"
        if unit not in UNITS:
            raise SentenceError("unknown units")
        if heading is not None:
            self._set_heading(heading, received)
        if course is not None:
            self.own.course_deg = course % 360.0
        if speed is not None:
            self.own.speed_mps = speed * UNITS[unit][1]
        return []

    def _rsd(self, text: str, received: float) -> list[TargetReport]:
        # RSD (radar system data), not in pynmea2: origin 1 range/bearing, VRM 1, EBL 1, origin 2
        # range/bearing, VRM 2, EBL 2, cursor range/bearing, range scale, range units, display rotation
        f = text.split(",")[1:]
        if len(f) < 13:
            raise SentenceError("too few fields")
        unit = f[11] or "N"
        if unit not in UNITS:
            raise SentenceError("unknown units")
        per_unit = UNITS[unit][0]
        values = [number(v, "value") for v in f[:11]]
        names = ["origin1_range", "origin1_bearing", "vrm1", "ebl1", "origin2_range", "origin2_bearing",
                 "vrm2", "ebl2", "cursor_range", "cursor_bearing", "range_scale"]
        display: dict[str, object] = {}
        for name, v in zip(names, values, strict=True):
            if v is None:
                continue
            display[name + ("_deg" if name.endswith(("bearing", "ebl1", "ebl2")) else "_m")] = (
                v if name.endswith(("bearing", "ebl1", "ebl2")) else v * per_unit)
        display["rotation"] = {"C": "course-up", "H": "head-up", "N": "north-up"}.get(f[12], f[12] or None)
        self.display = display
        return []

    # --- helpers

    def _set_position(self, lat: str, lat_dir: str, lon: str, lon_dir: str, received: float) -> None:
        la, lo = coordinate(lat, lat_dir, "latitude"), coordinate(lon, lon_dir, "longitude")
        if la is None or lo is None:
            return
        self.own.lat, self.own.lon, self.own.position_at = la, lo, received

    def _set_heading(self, heading: float, received: float) -> None:
        if not 0.0 <= heading <= 360.0 + 45.0:  # deviation + variation may carry 359 past 360
            raise SentenceError("bad heading")
        self.own.heading, self.own.heading_at = heading % 360.0, received

    def _set_date(self, year: int, month: int, day: int, tod: float | None) -> None:
        try:
            midnight = calendar.timegm(dt.date(year, month, day).timetuple())
        except ValueError:
            raise SentenceError("bad date") from None
        self._day = midnight
        self._utc = midnight + (tod or 0.0)

    def _fresh(self, at: float | None, received: float) -> bool:
        return at is not None and abs(received - at) <= self.own_max_age_s

    def _origin(self, received: float) -> tuple[float, float] | None:
        if self.position:
            return self.position
        if self.own.lat is not None and self._fresh(self.own.position_at, received):
            return self.own.lat, self.own.lon  # type: ignore[return-value]
        return None

    def _true_angle(self, angle: float | None, ref: str, received: float, extra: dict, what: str) -> float | None:
        """T: already true; R: relative to own heading -> true (needs a fresh heading)."""
        if angle is None:
            return None
        if not 0.0 <= angle <= 360.0:
            raise SentenceError(f"bad {what}")
        if ref == "R":
            extra[f"{what}_relative_deg"] = angle
            if self.own.heading is None or not self._fresh(self.own.heading_at, received):
                return None  # reported without a true angle rather than with a wrong one
            return (angle + self.own.heading) % 360.0
        if ref not in ("T", ""):
            raise SentenceError(f"bad {what} reference")
        return angle % 360.0

    def _utc_of(self, tod: float | None, received: float) -> float:
        """A sentence's hhmmss on the date last seen (RMC/ZDA); the receive time without either."""
        if tod is None or self._day is None or self._utc is None:
            return received
        return ttm_scan.dated(float(tod), float(self._day), float(self._utc))


def plain_ttm_candidate(line) -> bool:
    """Whether a line may be a plain TTM for the compiled scan (bytes, a TTM, not too long)."""
    return type(line) is bytes and line[3:7] == b"TTM," and len(line) <= MAX_SENTENCE


def _unit_table(which: int) -> np.ndarray:
    """UNITS by ttm_scan's unit code (0: an empty field, nautical miles), for compiled code."""
    out = np.full(256, np.nan)
    for code, letter in ((0, "N"), (78, "N"), (75, "K"), (83, "S")):
        out[code] = UNITS[letter][which]
    return out


PER_UNIT, PER_SPEED_UNIT = _unit_table(0), _unit_table(1)  # metres, metres per second per unit


def _scanned_numbers(floats: np.ndarray) -> list:
    """ttm_scan's float outputs as the pattern path's numbers (None for an empty field)."""
    return [None if v != v else v for v in floats.tolist()]


def _scanned_codes(ints: np.ndarray, line: bytes) -> tuple[str, ...]:
    """ttm_scan's integer outputs as the pattern path's texts: (target, distance unit, bearing and
    course references, name, status, reference and acquisition codes)."""
    number, brg_ref, cog_unit, unit, status_code, ref, acq, name_start, name_end = ints.tolist()[:9]
    name = line[name_start:name_end].decode("ascii").strip() if name_end > name_start else ""
    return (f"{number:02d}", _LETTER[unit] or "N", _LETTER[brg_ref], _LETTER[cog_unit], name, _LETTER[status_code],
            _LETTER[ref], _LETTER[acq])


def _ttm_extra(status_code: str, cpa, tcpa, acq: str, ref: str, per_unit: float) -> dict[str, object]:
    """A TTM's source-specific fields (a report's `extra`)."""
    extra: dict[str, object] = {"sentence": "TTM", "status_code": status_code or None}
    if cpa is not None:
        extra["cpa_m"] = cpa * per_unit
    if tcpa is not None:
        extra["tcpa_s"] = tcpa * 60.0  # minutes in the sentence; negative = CPA already passed
    if acq:
        extra["acquisition"] = ACQUISITION.get(acq, acq)
    if ref:
        extra["reference"] = ref == "R"  # the radar's reference target (for speed through water)
    return extra


class _Plain:
    """A talker sentence split as pynmea2 splits it: its type's field layout and the fields."""

    __slots__ = ("name_to_idx", "data")

    def __init__(self, name_to_idx: dict[str, int], data: list[str]):
        self.name_to_idx, self.data = name_to_idx, data


_TALKER_TYPES = pynmea2.TalkerSentence.sentence_types
TTM_FIELDS = ("target_number", "distance", "bearing", "brg_ref", "speed", "cog", "cog_unit", "dist_cpa", "time_cpa",
              "dist_unit", "name", "status", "reference", "timestamp", "acquisition")
TLL_FIELDS = ("target_number", "lat", "lat_dir", "lon", "lon_dir", "target_name", "timestamp", "target_status",
              "reference")
_TTM_INDEX, _TLL_INDEX = _TALKER_TYPES["TTM"].name_to_idx, _TALKER_TYPES["TLL"].name_to_idx
# What frame() accepts and _parse() splits as a talker sentence, for TTM and TLL only: ASCII
# whitespace around, "$", a talker of capitals or digits not starting with P, the type, printable
# fields without "*", and the two-digit checksum last (the checksum itself is checked in feed).
# A TTM's fields in their plainest form (see NmeaDecoder._ttm_plain): at most 9 digits either
# side of the point, so that every number is finite.
_D = r"\d{1,9}(?:\.\d{1,9})?"
_TTM_PLAIN = re.compile(rf"(\d{{1,9}}),({_D})?,({_D})?,(T?),(-?{_D})?,({_D})?,(T?),(-?{_D})?,(-?{_D})?,([NKS]?),([^,]*),"
                        rf"([A-Z]?),([A-Z]?),(\d{{6}}(?:\.\d{{1,6}})?)?(?:,([A-Z]?))?")
_LETTER = {c: chr(c) for c in range(65, 91)} | {0: "", -1: ""}  # ttm_scan's one-letter codes (-1: no field)
_PLAIN_TARGET = re.compile(rb"[ \t\n\r\x0b\x0c]*\$([A-OQ-Z0-9][A-Z0-9](TTM|TLL),([ -)+-~]*))\*([0-9A-Fa-f]{2})[ \t\n\r\x0b\x0c]*")


def _parse(text: str) -> pynmea2.NMEASentence | _Plain:
    # "$" + a 5-character address of letters and digits not starting with P + "," and no "*"
    # after it: pynmea2's sentence pattern takes this as a talker sentence (talker, type, the
    # rest split at commas) and nothing else; every other text is pynmea2's to judge.
    if text[:1] == "$" and text[6:7] == "," and text[1:2] not in ("P", "p") and text[1:6].isalnum() and "*" not in text:
        cls = _TALKER_TYPES.get(text[3:6].upper())
        if cls is not None:
            return _Plain(cls.name_to_idx, text[7:].split(","))
    try:
        return pynmea2.parse(text, check=False)
    except pynmea2.ParseError as e:
        raise SentenceError("unparsable") from e

