"""AIS decoding against gpsd's reference decodes of real receiver logs, and its edge cases."""

from __future__ import annotations

import json
from collections import Counter
from functools import reduce
from operator import xor
from pathlib import Path

import pytest
from pyais import encode_dict

from edge.radar.ais import AisDecoder
from edge.radar.reports import KNOT

POSITION_TYPES = (1, 2, 3, 9, 18, 19, 27)


@pytest.fixture(scope="module")
def ais_dir(data_dir: Path) -> Path:
    return data_dir / "radar" / "nmea" / "ais"


def _gpsd_values(j: dict) -> dict:
    """gpsd's unscaled JSON ("scaled": false) in SI units, None where AIS says "not available".

    gpsd writes raw AIS fields: lat/lon in 1/10000 minute (1/600000 degree; 91/181 degrees =
    none), speed in 0.1 knot (1023 = none), course in 0.1 degree (3600 = none), heading in
    degrees (511 = none)."""
    assert j["scaled"] is False
    return {
        "lat": None if j["lat"] == 91 * 600000 else j["lat"] / 600000,
        "lon": None if j["lon"] == 181 * 600000 else j["lon"] / 600000,
        "speed": None if j["speed"] == 1023 else j["speed"] / 10 * KNOT,
        "course": None if j["course"] == 3600 else j["course"] / 10,
        "heading": None if j["heading"] == 511 else j["heading"],
        "status": j.get("status"),
        "second": j["second"],
        "accuracy": j["accuracy"],
    }


def _compare_with_gpsd(chk: Path) -> tuple[Counter, list]:
    """Feed every AIVDM line of gpsd's .chk file; compare each of gpsd's AIS decodes that follows."""
    dec = AisDecoder("gpsd")
    last = None  # the report from the last AIS line fed
    counts: Counter = Counter()
    disagreements = []
    for raw in chk.read_bytes().splitlines():
        if raw.startswith((b"!", b"$")):
            reports = dec.feed(raw, 1586295590.0)
            if raw.startswith(b"!"):
                last = reports[-1] if reports else None
            continue
        if not raw.startswith(b"{"):
            continue
        j = json.loads(raw)
        if j.get("class") != "AIS":
            continue
        counts["gpsd decodes", j["type"]] += 1
        if j["type"] in POSITION_TYPES:
            assert last is not None and last.extra["mmsi"] == j["mmsi"], j
            assert last.target == f"{j['mmsi']:09d}"
            ours = {"lat": last.lat, "lon": last.lon, "speed": last.speed_mps, "course": last.course_deg,
                    "heading": last.extra.get("heading_deg"), "status": last.extra.get("nav_status"),
                    "second": last.extra.get("second"), "accuracy": last.extra.get("accuracy")}
            for key, want in _gpsd_values(j).items():
                got = ours[key]
                counts["values"] += 1
                # pyais rounds lat/lon to 1e-6 degree (0.1 m); gpsd's raw value is exact
                tol = 1e-6 if key in ("lat", "lon") else 1e-9
                if (got is None) != (want is None) or (got is not None and abs(got - want) > tol):
                    disagreements.append((j["type"], j["mmsi"], key, got, want))
        elif j["type"] in (5, 24):
            vessel = dec.vessels.get(j["mmsi"])
            for theirs, ours_name in (("shipname", "name"), ("callsign", "callsign"), ("shiptype", "ship_type")):
                if theirs not in j:
                    continue
                want = j[theirs].strip() or None if isinstance(j[theirs], str) else (j[theirs] or None)
                got = getattr(vessel, ours_name) if vessel else None
                counts["values"] += 1
                if got != want:
                    disagreements.append((j["type"], j["mmsi"], theirs, got, want))
        else:
            counts["types not decoded", j["type"]] += 1
    assert dec.stats.errors == {}, dec.stats.errors
    return counts, disagreements


def test_agrees_with_gpsd_on_a_real_receiver_log(ais_dir: Path):
    counts, disagreements = _compare_with_gpsd(ais_dir / "gpsd" / "ais-nmea.log.chk")
    assert disagreements == []
    # gpsd repeats some decodes in its .chk; each repeat is compared again
    assert counts["gpsd decodes", 1] == 197 and counts["gpsd decodes", 3] == 33 and counts["gpsd decodes", 18] == 10
    assert counts["gpsd decodes", 5] == 18 and counts["gpsd decodes", 24] == 7  # multi-part type 5 assembled
    assert counts["values"] == 1995


def test_agrees_with_gpsd_on_live_captured_messages(ais_dir: Path):
    counts, disagreements = _compare_with_gpsd(ais_dir / "gpsd" / "ais-raw-messages.log.chk")
    assert disagreements == []
    assert counts["gpsd decodes", 1] == 75 and counts["gpsd decodes", 3] == 12 and counts["gpsd decodes", 18] == 4
    assert counts["gpsd decodes", 5] == 5 and counts["gpsd decodes", 24] == 1
    assert counts["values"] == 746
    assert counts["types not decoded", 4] == 5 and counts["types not decoded", 21] == 6  # base stations, aids to navigation


def test_signalk_nais400_log_decodes_without_errors(ais_dir: Path):
    dec = AisDecoder("nais")
    reports = []
    for line in (ais_dir / "signalk" / "nais400-merrimac.log").read_bytes().splitlines():
        reports += dec.feed(line, 1397678575.0)
    assert dec.stats.errors == {}
    assert dec.stats.messages == 765 and len(reports) == 555
    own = [r for r in reports if r.extra.get("own_ship")]
    assert len(own) == 7 and {r.target for r in own} == {own[0].target}  # !AIVDO: our own vessel
    assert dec.ignored["GPRMC"] == 15 and dec.ignored["AIS type 21"] == 26
    named = [r for r in reports if r.name]
    assert named and all(r.extra.get("callsign") or r.extra.get("ship_type") or r.name for r in named)
    assert all(r.lat is None or (-90 <= r.lat <= 90 and -180 <= r.lon <= 180) for r in reports)
    assert all(r.speed_mps is None or r.speed_mps < 102.3 * KNOT for r in reports)


def _sentences(fields: dict, *, sentence: str = "VDM", seq: int = 0) -> list[bytes]:
    """Valid AIS sentences for `fields`, written by pyais' encoder."""
    return [s.encode() for s in encode_dict(fields, talker_id="AI", sentence_type=sentence, radio_channel="A", seq_id=seq)]


def test_unavailable_values_become_none():
    [line] = _sentences({"type": 1, "mmsi": 211000001, "lat": 91.0, "lon": 181.0, "speed": 102.3, "course": 360.0,
                         "heading": 511, "second": 60, "status": 15})
    dec = AisDecoder("a")
    [r] = dec.feed(line, 1000.0)
    assert (r.lat, r.lon, r.speed_mps, r.course_deg) == (None, None, None, None)
    assert "heading_deg" not in r.extra and r.time == 1000.0  # second 60: no time stamp
    assert r.status == "not defined" and r.target == "211000001"


def test_class_b_and_own_ship_and_second_time_stamp():
    [line] = _sentences({"type": 18, "mmsi": 2393200, "lat": 53.5, "lon": 5.25, "speed": 12.5, "course": 271.3,
                         "heading": 270, "second": 58}, sentence="VDO")
    dec = AisDecoder("a")
    [r] = dec.feed(line, 1_000_000_001.4)  # hh:mm:41.4 UTC; stamped second 58: of the minute before
    assert r.target == "002393200" and r.extra["own_ship"] is True and r.extra["class"] == "B"
    assert r.lat == pytest.approx(53.5) and r.lon == pytest.approx(5.25)
    assert r.speed_mps == pytest.approx(12.5 * KNOT) and r.course_deg == pytest.approx(271.3)
    assert r.extra["heading_deg"] == 270.0
    assert r.time == 1_000_000_001 - 1_000_000_001 % 60 - 60 + 58


def test_static_data_is_merged_into_later_reports_by_mmsi():
    dec = AisDecoder("a")
    static = _sentences({"type": 5, "mmsi": 244660274, "shipname": "ZEEHOND", "callsign": "PD1234", "ship_type": 52,
                         "to_bow": 20, "to_stern": 10, "to_port": 4, "to_starboard": 5, "destination": "DEN HELDER"}, seq=3)
    assert len(static) == 2  # type 5 takes two sentences
    assert dec.feed(static[0], 0.0) == [] and dec.feed(static[1], 0.0) == []
    [pos] = _sentences({"type": 1, "mmsi": 244660274, "lat": 52.9, "lon": 4.7, "speed": 3.0, "course": 10.0, "second": 0})
    [r] = dec.feed(pos, 0.0)
    assert r.name == "ZEEHOND" and r.extra["callsign"] == "PD1234" and r.extra["ship_type"] == 52
    assert r.extra["length_m"] == 30.0 and r.extra["beam_m"] == 9.0 and r.extra["destination"] == "DEN HELDER"
    # class B static data comes in two halves (type 24 A: name; B: callsign, type)
    [a] = _sentences({"type": 24, "mmsi": 244000002, "partno": 0, "shipname": "KLEIN"})
    [b] = _sentences({"type": 24, "mmsi": 244000002, "partno": 1, "callsign": "PB5678", "ship_type": 37})
    dec.feed(a, 0.0)
    dec.feed(b, 0.0)
    v = dec.vessels[244000002]
    assert (v.name, v.callsign, v.ship_type) == ("KLEIN", "PB5678", 37)


def test_fragments_out_of_order_missing_and_reused_ids():
    dec = AisDecoder("a", fragment_timeout_s=5.0)
    one, two = _sentences({"type": 5, "mmsi": 211000003, "shipname": "REVERSED"}, seq=4)
    assert dec.feed(two, 0.0) == [] and dec.feed(one, 0.0) == []
    assert dec.vessels[211000003].name == "REVERSED" and dec.noted["fragments out of order"] == 1
    # first fragment only, then the same sequence id starts again: the first message lost a part
    one, two = _sentences({"type": 5, "mmsi": 211000004, "shipname": "HALF"}, seq=5)
    dec.feed(one, 1.0)
    dec.feed(one, 2.0)
    assert dec.stats.errors == {"fragments missing": 1}
    dec.feed(two, 2.5)
    assert dec.vessels[211000004].name == "HALF"
    # a lone fragment expires after the timeout
    one, _ = _sentences({"type": 5, "mmsi": 211000005, "shipname": "LOST"}, seq=6)
    dec.feed(one, 10.0)
    dec.feed(b"$GPGGA,,,,,,0,,,,,,,,*66", 16.0)  # any line moves time on
    assert dec.stats.errors == {"fragments missing": 2} and 211000005 not in dec.vessels


def test_bad_ais_lines_are_counted():
    dec = AisDecoder("a")
    [good] = _sentences({"type": 1, "mmsi": 211000006, "lat": 1.0, "lon": 2.0})
    body = good.split(b"*")[0]

    def signed(text: bytes) -> bytes:
        return text + b"*%02X" % reduce(xor, text[1:], 0)

    cases = {
        good[:-2] + b"00": "bad checksum",
        signed(b"!AIVDM,1,1,,A,13U79k?P00Q,0"): "type 1 payload too short",
        signed(b"!AIVDM,x,1,,A,13U79k?P00Qah;tEdTH>4?vV2<0I,0"): "bad fragment numbers",
        signed(b"!AIVDM,1,1,,A,13U79k?P00Qah;tEdTH>4?vV2<0I,9"): "bad fill bits",
        signed(b"!AIVDM,1,1,,A,13U79k?P00Qah;tEdTH>4?vV2<0I"): "wrong field count",
        signed(b"!AIVDM,1,1,,A,,0"): "empty payload",
        signed(b"!AIVDM,1,1,,A,\x7f\x7f\x7f,0"): "control characters",
    }
    for line, reason in cases.items():
        assert dec.feed(line, 0.0) == [], line
        assert dec.stats.errors.get(reason) == 1, (line, dec.stats.errors)
    assert dec.feed(body + good[len(body):], 0.0)


@pytest.mark.parametrize(("line", "want"), [
    # gpsd's sample.aivdm, with the values its annotations give (checked there with noaadata / Maritec)
    (b"!AIVDM,1,1,,B,25Cjtd0Oj;Jp7ilG7=UkKBoB0<06,0*60",
     dict(mmsi=356302000, lat=40.39235833, lon=-71.62614333, sog=13.9, cog=87.7, heading=91.0, status=0)),
    (b"!AIVDM,1,1,,B,91b55wi;hbOS@OdQAC062Ch2089h,0*30",
     dict(mmsi=111232511, lat=58.144, lon=-6.27884, sog=42.0, cog=154.5, altitude_m=303.0)),
    (b"!AIVDM,1,1,,B,C5N3SRgPEnJGEBT>NhWAwwo862PaLELTBJ:V00000000S0D:R220,0*0B",
     dict(mmsi=367059850, lat=29.543695, lon=-88.8103916667, sog=8.7, cog=335.9, name="CAPT.J.RIMES", ship_type=70,
          length_m=26.0, beam_m=8.0)),
    # 163 bits: the radio status is cut short, the position is whole (the same as the 168-bit copy's)
    (b"!AIVDM,1,1,,A,13aIkM@P00PJ@qPNL=e@0?wJ28JO,5*63", dict(mmsi=244740981, lat=53.199235, lon=5.737467, sog=0, cog=0)),
    (b"!AIVDM,1,1,,A,13aIkM@P00PJ@qPNL=e@0?wJ28JO,0*66", dict(mmsi=244740981, lat=53.199235, lon=5.737467, sog=0, cog=0)),
])
def test_types_2_9_19_and_a_short_type_1_from_gpsds_annotated_sample(line, want):
    dec = AisDecoder("sample")
    [r] = dec.feed(line, 0.0)
    assert r.extra["mmsi"] == want["mmsi"]
    if "lat" in want:
        assert r.lat == pytest.approx(want["lat"], abs=1e-5) and r.lon == pytest.approx(want["lon"], abs=1e-5)
        assert r.speed_mps == pytest.approx(want["sog"] * KNOT) and r.course_deg == pytest.approx(want["cog"])
    for key in ("heading", "altitude_m", "ship_type", "length_m", "beam_m"):
        if key in want:
            assert r.extra["heading_deg" if key == "heading" else key] == want[key]
    if "name" in want:
        assert r.name == want["name"]
    if "status" in want:
        assert r.extra["nav_status"] == want["status"]
