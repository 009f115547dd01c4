"""NMEA 0183 radar decoding, proven on a real 40-minute ARPA log and on hand-written sentences."""

from __future__ import annotations

import calendar
from collections import Counter
from functools import reduce
from operator import xor
from pathlib import Path

import numpy as np
import pytest

from edge.geo import bearing_distance, destination
from edge.radar.nmea import NmeaDecoder, frame, SentenceError
from edge.radar.reports import KNOT, NAUTICAL_MILE


def nmea(body: str) -> bytes:
    """A sentence with its checksum: nmea('RATTM,...') -> b'$RATTM,...*hh'."""
    lead = "$" if not body.startswith("!") else ""
    text = lead + body
    return f"{text}*{reduce(xor, text[1:].encode(), 0):02X}".encode()


@pytest.fixture(scope="module")
def radar_log(data_dir: Path) -> list[bytes]:
    return (data_dir / "radar" / "nmea" / "arpa" / "RadarLogs.txt").read_bytes().split(b"\n")


@pytest.fixture(scope="module")
def decoded(radar_log):
    dec = NmeaDecoder("arpa")
    reports = []
    for line in radar_log:
        reports += dec.feed(line, received=0.0)
    return dec, reports


# --- the real log -------------------------------------------------------------------------------


def test_every_ttm_and_tll_in_the_real_log_parses(radar_log, decoded):
    dec, reports = decoded
    assert sum(1 for line in radar_log if line.strip()) == 56_579  # 56,578 sentences + the truncated last line
    assert dec.stats.messages == 56_579
    by_sentence = Counter(r.extra["sentence"] for r in reports)
    assert by_sentence == {"TTM": 1466, "TLL": 1466}
    assert sum(1 for line in radar_log if line.startswith((b"$RATTM", b"$RATLL"))) == 2932
    ttm_per_target = Counter(r.target for r in reports if r.extra["sentence"] == "TTM")
    assert ttm_per_target == {"01": 544, "02": 682, "03": 157, "04": 83}
    assert Counter(r.target for r in reports if r.extra["sentence"] == "TLL") == ttm_per_target
    # the only refusal: the log's last line, a $GPGLL cut mid-sentence (no checksum)
    assert radar_log[-1].startswith(b"$GPGLL") and b"*" not in radar_log[-1]
    assert dec.stats.errors == {"missing checksum": 1}
    assert dec.stats.reports == 2932
    assert dec.ignored["GSV"] == 4881  # understood, not used


def test_real_log_reports_carry_utc_time_names_status_and_extras(decoded):
    dec, reports = decoded
    first_ttm = next(r for r in reports if r.extra["sentence"] == "TTM")
    # $RATTM,01,0.48,263.6,T,0.0,2.9,T,0.48,,N,1 (Broadband 4G - 2782 B),T,,134601,M on 27 July 2015 (RMC/ZDA)
    assert first_ttm.time == calendar.timegm((2015, 7, 27, 13, 46, 1))
    assert first_ttm.target == "01" and first_ttm.name == "1 (Broadband 4G - 2782 B)"
    assert first_ttm.range_m == pytest.approx(0.48 * NAUTICAL_MILE)
    assert first_ttm.bearing_deg == 263.6 and first_ttm.course_deg == 2.9 and first_ttm.speed_mps == 0.0
    assert first_ttm.status == "tracking"
    assert first_ttm.extra["acquisition"] == "manual" and first_ttm.extra["cpa_m"] == pytest.approx(0.48 * NAUTICAL_MILE)
    assert first_ttm.kind == "radar" and first_ttm.source == "arpa"
    last = reports[-1]
    assert last.time == pytest.approx(calendar.timegm((2015, 7, 27, 14, 26, 0)), abs=60)
    assert Counter(r.status for r in reports) == {"tracking": 2752, "acquiring": 146, "lost": 34}
    tcpa = next(r for r in reports if r.extra.get("tcpa_s") is not None)
    assert "tcpa_s" in tcpa.extra  # minutes in the sentence, seconds here
    # own ship: RMC/GGA position and HDG + RMC variation = true heading (VHW says 223.2 T at the start)
    assert dec.own.lat == pytest.approx(58.21, abs=0.01) and dec.own.lon == pytest.approx(11.54, abs=0.02)
    assert dec.own.variation == 2.9


def test_ttm_positions_agree_with_the_radars_own_tll(decoded):
    """Each TTM (range, bearing from own ship) placed on the map lands where the radar's TLL says.

    The bound: TTM gives range to 0.01 NM (18.52 m, and this radar truncates: TLL ranges sit up to
    one step either side) and bearing to 0.1 deg (4.4 m at the farthest, 2.5 km); TTM and TLL of
    one second may come from scans up to a second apart, and the fastest target does 15.6 kn
    (8 m/s). So 18.52 + 8 + 0.5 (resolution of TLL and own-ship positions) = 27 m.
    Measured on 1,464 pairs: median 4.1 m, 99th percentile 15.9 m, largest 23.1 m.
    One pair is excluded: at 14:02:14 the radar's TLL for target 02 repeats target 01's position of
    the second before (5812.6381N 01130.3629E) - two tracks on one vessel, the radar's own
    inconsistency; its TTM for 02 is 59.6 m away from that.
    """
    _, reports = decoded
    ttm = {(r.target, r.time): r for r in reports if r.extra["sentence"] == "TTM"}
    tll = {(r.target, r.time): r for r in reports if r.extra["sentence"] == "TLL"}
    pairs = sorted(set(ttm) & set(tll))
    assert len(pairs) == 1465  # target 03's TTM and TLL of 13:58:52/53 straddle a second
    swap = ("02", calendar.timegm((2015, 7, 27, 14, 2, 14)))
    gaps = {}
    for key in pairs:
        a, b = ttm[key], tll[key]
        assert a.lat is not None and b.lat is not None
        gaps[key] = bearing_distance(a.lat, a.lon, b.lat, b.lon)[1]
    assert gaps[swap] == pytest.approx(59.6, abs=0.5)
    rest = np.array([g for k, g in gaps.items() if k != swap])
    assert rest.max() < 27.0, f"largest gap {rest.max():.1f} m"
    assert np.median(rest) < 6.0 and np.percentile(rest, 99) < 20.0
    # the range-truncation signature: TLL ranges within one 0.01-NM step either side of TTM's
    dr = np.array([tll[k].range_m - ttm[k].range_m for k in pairs if k != swap])
    assert dr.min() > -0.01 * NAUTICAL_MILE - 1 and dr.max() < 0.01 * NAUTICAL_MILE + 1


def test_fixed_post_position_places_targets_from_the_post(radar_log):
    post = (58.2, 11.5)
    dec = NmeaDecoder("post", position=post)
    reports = [r for line in radar_log[:2000] for r in dec.feed(line, 0.0) if r.extra["sentence"] == "TTM"]
    r = reports[0]
    assert (r.lat, r.lon) == pytest.approx(destination(*post, r.bearing_deg, r.range_m))


# --- hand-written sentences: what the log does not hold -------------------------------------------


def test_relative_bearing_and_course_become_true_with_own_heading():
    dec = NmeaDecoder("r")
    dec.feed(nmea("GPRMC,120000,A,5812.0000,N,01130.0000,E,5.0,90.0,010224,3.0,E,A"), 100.0)
    dec.feed(nmea("HEHDT,350.0,T"), 100.0)
    [r] = dec.feed(nmea("RATTM,07,2.00,20.0,R,10.0,30.0,R,,,N,,T,,120001,A"), 100.5)
    assert r.bearing_deg == pytest.approx(10.0) and r.course_deg == pytest.approx(20.0)  # 350 + 20, 350 + 30
    assert r.extra["bearing_relative_deg"] == 20.0 and r.extra["acquisition"] == "automatic"
    assert r.speed_mps == pytest.approx(10 * KNOT) and r.range_m == pytest.approx(2 * NAUTICAL_MILE)
    assert (r.lat, r.lon) == pytest.approx(destination(58.2, 11.5, 10.0, 2 * NAUTICAL_MILE))
    assert r.time == calendar.timegm((2024, 2, 1, 12, 0, 1))
    assert r.target == "07"


def test_relative_bearing_without_a_fresh_heading_gives_no_position():
    dec = NmeaDecoder("r")
    dec.feed(nmea("GPRMC,120000,A,5812.0000,N,01130.0000,E,5.0,90.0,010224,3.0,E,A"), 100.0)
    [r] = dec.feed(nmea("RATTM,07,2.00,20.0,R,10.0,30.0,T,,,N,,T,,120001,A"), 100.0)
    assert r.bearing_deg is None and r.lat is None and r.range_m == pytest.approx(2 * NAUTICAL_MILE)
    dec.feed(nmea("HEHDT,350.0,T"), 100.0)
    [r] = dec.feed(nmea("RATTM,07,2.00,20.0,R,10.0,30.0,T,,,N,,T,,120001,A"), 200.0)  # heading 100 s old
    assert r.bearing_deg is None and r.lat is None


def test_magnetic_heading_hdg_with_deviation_and_variation():
    dec = NmeaDecoder("r")
    dec.feed(nmea("IIHDG,100.0,1.5,W,4.0,E"), 0.0)  # 100 - 1.5 + 4.0
    assert dec.own.heading == pytest.approx(102.5)
    dec = NmeaDecoder("r")
    dec.feed(nmea("IIHDG,100.0,,,,"), 0.0)  # no variation known: not good enough for true
    assert dec.own.heading is None and dec.ignored["HDG without variation"] == 1
    dec.feed(nmea("GPRMC,120000,A,5812.0000,N,01130.0000,E,5.0,90.0,010224,2.0,W,A"), 0.0)
    dec.feed(nmea("IIHDG,100.0,,,,"), 0.0)  # RMC's variation (2.0 W) is used
    assert dec.own.heading == pytest.approx(98.0)


def test_osd_and_rsd_from_the_standard():
    dec = NmeaDecoder("r")
    # OSD: heading 45.5 T, valid, course 50.0 (B = bottom track), speed 12.0 (W), set, drift, knots
    assert dec.feed(nmea("RAOSD,45.5,A,50.0,B,12.0,W,,,N"), 10.0) == []
    assert dec.own.heading == 45.5 and dec.own.course_deg == 50.0 and dec.own.speed_mps == pytest.approx(12 * KNOT)
    dec.feed(nmea("RAOSD,99.0,V,50.0,B,12.0,W,,,N"), 11.0)  # V: not valid, not used
    assert dec.own.heading == 45.5 and dec.ignored["OSD not valid"] == 1
    # RSD: origin 1, VRM/EBL 1, origin 2, VRM/EBL 2, cursor, range scale 6, units N, head-up
    dec.feed(nmea("RARSD,0.0,0.0,1.50,45.0,,,,,2.25,120.5,6.0,N,H"), 12.0)
    assert dec.display["range_scale_m"] == pytest.approx(6 * NAUTICAL_MILE)
    assert dec.display["vrm1_m"] == pytest.approx(1.5 * NAUTICAL_MILE) and dec.display["ebl1_deg"] == 45.0
    assert dec.display["cursor_bearing_deg"] == 120.5 and dec.display["rotation"] == "head-up"
    assert dec.stats.errors == {}
    # a relative TTM after OSD uses OSD's heading
    dec.feed(nmea("GPGGA,120000,5812.0000,N,01130.0000,E,1,08,1.0,5.0,M,40.0,M,,"), 12.0)
    [r] = dec.feed(nmea("RATTM,01,1.0,10.0,R,0.0,0.0,T,,,N,,T,,,A"), 12.5)
    assert r.bearing_deg == pytest.approx(55.5)


@pytest.mark.parametrize(("units", "metres", "mps"), [("N", NAUTICAL_MILE, KNOT), ("K", 1000.0, 1000 / 3600),
                                                       ("S", 1609.344, 1609.344 / 3600)])
def test_ttm_units(units, metres, mps):
    dec = NmeaDecoder("u", position=(0.0, 0.0))
    [r] = dec.feed(nmea(f"RATTM,3,2.5,90.0,T,20.0,180.0,T,0.5,-3.0,{units},X,Q,R,101010.50,A"), 0.0)
    assert r.range_m == pytest.approx(2.5 * metres) and r.speed_mps == pytest.approx(20 * mps)
    assert r.extra["cpa_m"] == pytest.approx(0.5 * metres) and r.extra["tcpa_s"] == -180.0
    assert r.status == "acquiring" and r.extra["reference"] is True and r.target == "03" and r.name == "X"


def test_tll_and_ttm_name_the_same_target_and_tll_gets_range_from_the_post():
    dec = NmeaDecoder("p", position=(58.0, 11.0))
    [tll] = dec.feed(nmea("RATLL,1,5801.0000,N,01100.0000,E,BOAT 1,120000.00,L,"), 5.0)
    [ttm] = dec.feed(nmea("RATTM,01,1.0,0.0,T,0,0,T,,,N,BOAT 1,L,,120000.00,A"), 5.0)
    assert tll.target == ttm.target == "01" and tll.status == ttm.status == "lost"
    assert tll.bearing_deg == pytest.approx(0.0, abs=1e-6) and tll.range_m == pytest.approx(1855.0, abs=5)
    assert tll.time == ttm.time == 5.0  # no date seen yet: the receive time


def test_time_rolls_over_midnight_to_the_nearest_day():
    dec = NmeaDecoder("m")
    dec.feed(nmea("GPZDA,235959.00,31,12,2023,00,00"), 0.0)
    [r] = dec.feed(nmea("RATLL,01,5801.0000,N,01100.0000,E,,000001.00,T,"), 0.0)
    assert r.time == calendar.timegm((2024, 1, 1, 0, 0, 1))
    dec.feed(nmea("GPZDA,000002.00,01,01,2024,00,00"), 0.0)
    [r] = dec.feed(nmea("RATLL,01,5801.0000,N,01100.0000,E,,235958.00,T,"), 0.0)
    assert r.time == calendar.timegm((2023, 12, 31, 23, 59, 58))


def test_bad_sentences_are_counted_with_their_reasons_and_skipped():
    dec = NmeaDecoder("bad", position=(0.0, 0.0))
    good = nmea("RATTM,01,0.48,263.6,T,0.0,2.9,T,0.48,,N,NAME,T,,134601,M")
    cases = {
        good[:-2] + b"00": "bad checksum",
        good.split(b"*")[0]: "missing checksum",
        good[:-2] + b"G1": "malformed checksum",
        b"RATTM,01,0.48*12": "not an NMEA sentence",
        nmea("RATTM,01,abc,263.6,T,0.0,2.9,T,0.48,,N,NAME,T,,134601,M"): "TTM: bad distance",  # pynmea2 would hand back 'abc'
        nmea("RATTM,01,0.48,400.0,T,0.0,2.9,T,0.48,,N,NAME,T,,134601,M"): "TTM: bad bearing",
        nmea("RATTM,01,0.48,263.6,T,0.0,2.9,T,0.48,,X,NAME,T,,134601,M"): "TTM: unknown units",
        nmea("RATTM,,0.48,263.6,T,0.0,2.9,T,0.48,,N,NAME,T,,134601,M"): "TTM: no target number",
        nmea("RATTM,01,0.48,263.6,T,0.0,2.9,T,0.48,,N,NAME,T,,256101,M"): "TTM: bad time",
        nmea("RATLL,01,5899.0000,N,01131.9502,E,NAME,134601,T,"): "TLL: bad latitude",
        nmea("RATLL,01,5812.6870,E,01131.9502,E,NAME,134601,T,"): "TLL: bad latitude hemisphere",
        nmea("RATLL,01,,,,,NAME,134601,T,"): "TLL: no position",
        nmea("GPRMC,134601,A,5812.7405,N,01132.8508,E,0.0,67.0,320715,2.9,E,A"): "RMC: bad date",
        "$RATTM,01,0.48,263.6,T,0.0,2.9,T,0.48,,N,NAMÉ,T,,134601,M*51": "non-ASCII bytes",
        b"$RATTM,01,0.48,263.6,T,0.0,2.9,T,0.48,,N,NAM\xff,T,,134601,M*51": "non-ASCII bytes",
        b"$" + b"A" * 2000 + b"*00": "sentence too long",
    }
    for line, reason in cases.items():
        before = dict(dec.stats.errors)
        assert dec.feed(line, 0.0) == [], line
        assert dec.stats.errors.get(reason, 0) == before.get(reason, 0) + 1, (line, reason, dec.stats.errors)
    assert dec.stats.messages == len(cases) and dec.stats.reports == 0
    assert dec.feed(good, 0.0) and dec.feed(good.lower()[:1] + good[1:-2] + good[-2:].lower(), 0.0)  # lower-case hex is fine
    assert dec.feed(b"\r\n", 0.0) == [] and dec.stats.messages == len(cases) + 2  # blank lines are not messages


def test_framing_accepts_tag_blocks_and_receiver_suffixes():
    s = frame(b"\\c:1700000000,s:rx1*0A\\" + nmea("RATTM,01,0.48,263.6,T,0.0,2.9,T,0.48,,N,N,T,,134601,M") + b"\r\n")
    assert s is not None and s.tags == {"c": "1700000000", "s": "rx1"} and s.text.startswith("$RATTM")
    assert frame(nmea("RAHDT,10.0,T") + b",s36310,d-081,T59.01777335,1242958962") is not None
    assert frame(b"   ") is None
    with pytest.raises(SentenceError, match="unterminated tag block"):
        frame(b"\\c:1700000000")


def test_decoder_time_uses_the_date_from_rmc(radar_log):
    dec = NmeaDecoder("t")
    for line in radar_log[:200]:
        dec.feed(line, 0.0)
    assert dec._day == calendar.timegm((2015, 7, 27, 0, 0, 0))
