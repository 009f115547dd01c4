"""ASTERIX decoding, value by value against a reference decoder's output for a real capture."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge.geo import destination
from edge.radar.asterix import AsterixDecoder, parse_datagram
from edge.radar.pcap import read_pcap
from edge.radar.reports import KNOT, NAUTICAL_MILE


@pytest.fixture(scope="module")
def asterix_dir(data_dir: Path) -> Path:
    return data_dir / "radar" / "asterix"


# --- the reference decoder's text output ------------------------------------------------------------


def parse_reference(path: Path) -> list[dict]:
    """CroatiaControl asterix's text output as records: category, block timestamp, items in order,
    each with its raw bytes and its "label: value (scaled value unit)" lines."""
    records: list[dict] = []
    category = stamp = None
    item = None
    for line in path.read_text().splitlines():
        if line.startswith("Category:"):
            category = int(line.split(":")[1])
        elif line.startswith("Timestamp:"):
            stamp = float(line.split(":")[1])
        elif line.startswith("Data Record"):
            records.append({"category": category, "stamp_ms": stamp, "items": []})
        elif line.startswith("Item "):
            item = {"id": line.split()[1], "fields": []}
            records[-1]["items"].append(item)
        elif line.startswith("[ ") and item is not None:
            item["hex"] = line.strip("[] ").replace(" ", "")
        elif line.startswith("\t") and item is not None:
            label, _, value = line[1:].partition(": ")
            m = re.match(r"^(\S+)(?: \((-?[\d.]+) ?[^)]*\))?", value)
            item["fields"].append((label, value, m.group(1) if m else value, float(m.group(2)) if m and m.group(2) else None))
    return records


def _int(v: str) -> int:
    return int(v)


# reference label -> (our item key path, how to read the reference value, tolerance or None for exact)
CAT048_FIELDS = {
    "010": {"System Area Code": ("sac", "int"), "System Identification Code": ("sic", "int")},
    "140": {"Time Of Day": ("tod_s", "scaled")},
    "020": {k: (k, "int") for k in ("TYP", "SIM", "RDP", "SPI", "RAB")},
    "040": {"RHO": ("rho_nm", "scaled"), "THETA": ("theta_deg", "scaled")},
    "070": {"V": ("V", "int"), "G": ("G", "int"), "L": ("L", "int"), "Mode-3/A reply code": ("code", "text")},
    "090": {"V": ("V", "int"), "G": ("G", "int"), "FlightLevel": ("fl", "scaled")},
    "130": {"SSR Plot Runlength": ("srl_deg", "scaled"), "SSR-Number of received reply": ("srr", "int"),
            "SSR-Reply amplitude": ("sam_dbm", "scaled"), "Primary Plot Runlength": ("prl_deg", "scaled")},
    "220": {"AircraftAddress": ("address", "text")},
    "240": {"Characters 1-8 (coded on 6 bits each) defining target identification": ("ident", "ident")},
    "161": {"Track Number": ("track_number", "int")},
    "042": {"X component": ("x_nm", "scaled"), "Y component": ("y_nm", "scaled")},
    "200": {"Calculated groundspeed": ("groundspeed_kt", "scaled"), "Calculated heading": ("heading_deg", "scaled")},
    "170": {k: (k, "int") for k in ("CNF", "RAD", "DOU", "MAH", "CDM", "TRE", "GHO", "SUP", "TCC")},
    "110": {"3D_Height": ("height_ft", "scaled")},
    "230": {"COM": ("COM", "int"), "STAT": ("STAT", "int"), "SI/II Transponder Capability": ("SI", "int"),
            "ModeS Specific Service Capability": ("MSSC", "int"), "Altitude reporting capability": ("ARC", "int"),
            "Aircraft identification capability": ("AIC", "int"), "BDS 1,0 bit 16": ("B1A", "int"),
            "BDS 1,0 bits 37/40": ("B1B", "int")},
}
CAT034_FIELDS = {
    "010": CAT048_FIELDS["010"],
    "000": {"Message Type": ("message_type", "int")},
    "030": {"Time of day": ("tod_s", "scaled")},
    "020": {"Antenna azimuth": ("azimuth_deg", "scaled")},
    "041": {"Antenna rotation speed": ("rotation_period_s", "scaled")},
    "120": {"Signed Height of the Data Source, expressed in meters above WGS 84 reference ellipsoid.": ("height_m", "scaled"),
            "Latitude in WGS-84": ("lat", "wgs84"), "Longitude in WGS-84": ("lon", "wgs84")},
}
# What the reference prints and these decoders leave as bytes: FX and spare bits; the contents
# of Mode S registers (BDS 4,0 selected altitude, 5,0/6,0 air data: aircraft intent, not needed to
# place a target; the registers themselves are compared); CAT034's status subfields (raw bytes compared).
NOT_DECODED = re.compile(r"^(FX|spare bit|Reserved)|^(050|060)/|^250/(?!BDS register|BDS value)")


def test_every_cat048_and_cat034_record_matches_the_reference_decoder(asterix_dir: Path):
    reference = parse_reference(asterix_dir / "expected_output" / "cat_034_048.txt")
    assert len(reference) == 162
    ours = []
    for t, payload in read_pcap(asterix_dir / "cat_034_048.pcap"):
        parsed = parse_datagram(payload)
        assert parsed.errors == [] and parsed.unsupported == []
        assert sum(b.length for b in parsed.blocks) == len(payload)  # payload cut at the UDP length, not the padded frame
        ours += [(t, rec) for block in parsed.blocks for rec in block.records]
    assert len(ours) == 162
    assert sum(1 for _, r in ours if r.category == 48) == 128 and sum(1 for _, r in ours if r.category == 34) == 34

    compared = {"records": 0, "items": 0, "values": 0}
    not_compared: set[str] = set()
    for (t, rec), ref in zip(ours, reference, strict=True):
        assert rec.category == ref["category"]
        assert int((t % 86400) * 1000) == ref["stamp_ms"]  # the reference stamps blocks with the capture time
        assert list(rec.raw) == [it["id"] for it in ref["items"]]  # same items, in FSPEC order
        table = CAT048_FIELDS if rec.category == 48 else CAT034_FIELDS
        compared["records"] += 1
        for it in ref["items"]:
            raw, decoded = rec.raw[it["id"]], rec.items[it["id"]]
            assert raw.hex().upper() == it["hex"], (it["id"], raw.hex(), it["hex"])  # stepped over by the right length
            compared["items"] += 1
            bds = [f for f in it["fields"] if f[0] == "BDS register"]
            if it["id"] == "250":  # Mode S registers: their numbers, and the bytes of those the reference shows raw
                assert [e["bds"] for e in decoded["mb"]] == [f[1] for f in bds]
                for f in it["fields"]:
                    if f[0] == "BDS value":
                        assert f[1] in [e["data"] for e in decoded["mb"]]
                compared["values"] += len(bds)
            for label, text, head, scaled in it["fields"]:
                spec = table.get(it["id"], {}).get(label)
                if it["id"] == "250" and label in ("BDS register", "BDS value"):
                    continue  # compared above
                if spec is None:
                    if not NOT_DECODED.search(label) and not NOT_DECODED.search(f"{it['id']}/{label}"):
                        not_compared.add(f"{rec.category}/{it['id']}/{label}")
                    continue
                key, how = spec
                got = decoded[key]
                if how == "int":
                    assert got == int(head), (it["id"], label, got, text)
                elif how == "text":
                    assert got == head, (it["id"], label, got, text)
                elif how == "ident":
                    assert got.rstrip() == text.rstrip(), (got, text)
                elif how == "wgs84":
                    # I034/120's LSB is 180/2^23 degree (spec); the reference scales by a constant 1e-6
                    # smaller (43.5710220 for 2030557 where 180/2^23 gives 43.5710263: 0.5 m). The raw
                    # value is compared exactly, the degrees within that relative difference.
                    assert round(got / (180 / 2**23)) == int(head)
                    assert got == pytest.approx(scaled, rel=1.5e-6)
                else:  # the reference prints 7 decimals
                    assert got == pytest.approx(scaled, abs=6e-7), (it["id"], label, got, text)
                compared["values"] += 1
    assert not_compared == set(), f"reference fields neither compared nor listed as not decoded: {sorted(not_compared)}"
    assert compared == {"records": 162, "items": 1940, "values": 5360}


def test_cat048_raw_block(asterix_dir: Path):
    dec = AsterixDecoder("psr")
    [r] = dec.feed((asterix_dir / "cat048.raw").read_bytes(), received=1462433756.5)
    it = r.extra["items"]
    assert (r.extra["sac"], r.extra["sic"]) == (25, 201) and r.extra["aircraft_address"] == "3C660C"
    assert it["200"]["groundspeed_kt"] == pytest.approx(434.399, abs=5e-4)
    assert it["200"]["heading_deg"] == pytest.approx(124.003, abs=5e-4)
    assert r.speed_mps == pytest.approx(434.399 * KNOT, abs=1e-3) and r.course_deg == pytest.approx(124.003, abs=5e-4)
    assert r.target == "25/201/3563" and r.name == "DLH65A" and r.extra["mode3a"] == "1000" and r.extra["flight_level"] == 330
    assert r.range_m == pytest.approx(197.6835938 * NAUTICAL_MILE) and r.bearing_deg == pytest.approx(340.1367188)
    assert r.time == pytest.approx(1462406400 + 27354.6015625) and r.status == "tracking"
    assert r.lat is None  # no sensor position given or announced
    assert dec.stats.errors == {}


def test_cat048_ed123_record_with_extended_range(asterix_dir: Path):
    """Values asserted by jASTERIX's test_cat048_1.23.cpp for the same bytes."""
    dec = AsterixDecoder("x", sensor_position=(48.0, 16.0))
    [r] = dec.feed((asterix_dir / "jasterix_records" / "cat048ed1.23.bin").read_bytes(), 33500.0)
    it = r.extra["items"]
    assert it["010"] == {"sac": 0, "sic": 1} and it["140"]["tod_s"] == pytest.approx(33499.835938, abs=1e-5)
    assert (it["020"]["TYP"], it["020"]["RDP"], it["020"]["ERR"], it["020"]["MI"]) == (5, 1, 1, 1)
    assert it["040"]["rho_nm"] == pytest.approx(255.99609375) and it["040"]["theta_deg"] == pytest.approx(89.670, abs=1e-3)
    assert it["070"] == {"V": 0, "G": 0, "L": 1, "code": "0470"} and it["090"]["fl"] == 370.0
    assert it["130"] == {"sam_dbm": -63} and it["220"]["address"] == "AB4CBD" and it["240"]["ident"] == "RYR5XW  "
    assert [(e["bds"], e["data"]) for e in it["250"]["mb"]] == [
        ("60", "8BD9EB2FBFE400"), ("50", "80919F39A004DD"), ("40", "C8480030A80000")]
    assert it["161"]["track_number"] == 919
    assert it["200"]["groundspeed_kt"] == pytest.approx(463.184, abs=1e-3) and it["200"]["heading_deg"] == pytest.approx(32.607, abs=1e-3)
    assert (it["230"]["COM"], it["230"]["MSSC"], it["230"]["ARC"], it["230"]["AIC"], it["230"]["B1A"], it["230"]["B1B"]) == (1, 1, 1, 1, 1, 13)
    assert it["RE"]["err_rho_nm"] == 257.0  # past 256 NM: the extended range replaces RHO
    assert r.range_m == pytest.approx(257.0 * NAUTICAL_MILE)
    assert (r.lat, r.lon) == pytest.approx(destination(48.0, 16.0, r.bearing_deg, 257.0 * NAUTICAL_MILE))
    [r115] = AsterixDecoder("x").feed((asterix_dir / "jasterix_records" / "cat048ed1.15.bin").read_bytes(), 33500.0)
    assert r115.target == r.target == "0/1/919"


def test_cat010_records(asterix_dir: Path):
    """Values asserted by jASTERIX's test_cat010_0.31.cpp and test_cat010_0.24_sensis.cpp."""
    dec = AsterixDecoder("smr", sensor_position=(47.0, 11.0))
    [r] = dec.feed((asterix_dir / "jasterix_records" / "cat010ed0.31.bin").read_bytes(), 24700.0)
    it = r.extra["items"]
    assert it["010"] == {"sac": 0, "sic": 1} and it["000"]["message_type"] == 1
    assert (it["020"]["TYP"], it["020"]["DCR"], it["020"]["CHN"], it["020"]["GBS"], it["020"]["CRT"]) == (3, 0, 0, 0, 0)
    assert (it["020"]["SIM"], it["020"]["TST"], it["020"]["RAB"], it["020"]["LOP"], it["020"]["TOT"]) == (0, 0, 0, 0, 0)
    # jASTERIX's 189.50866690594 comes from a rounded LSB; 34499 * 360/2^16 = 189.5086669921875
    assert it["040"]["rho_m"] == 1588.0 and it["040"]["theta_deg"] == pytest.approx(189.50866690594, abs=1e-7)
    assert it["042"] == {"x_m": -267.0, "y_m": -1566.0}
    assert it["140"]["tod_s"] == pytest.approx(24693.140625)
    assert it["161"]["track_number"] == 4
    assert it["170"] == {"CNF": 0, "TRE": 0, "CST": 0, "MAH": 0, "TCC": 0, "STH": 1, "TOM": 3, "DOU": 0, "MRS": 0, "GHO": 0}
    assert it["200"]["groundspeed_kt"] / 3600 == pytest.approx(0.0002441406, abs=1e-9)  # jASTERIX gives NM/s
    assert it["200"]["heading_deg"] == pytest.approx(267.27539050336, abs=5e-7)  # rounded LSB there too
    assert it["202"] == {"vx_mps": -0.5, "vy_mps": 0.0} and it["210"] == {"ax_mps2": -1.0, "ay_mps2": -0.25}
    assert it["270"] == {"length_m": 27.0, "orientation_deg": pytest.approx(267.1875), "width_m": 40.0}
    assert r.target == "0/1/4" and r.range_m == 1588.0 and r.speed_mps == pytest.approx(0.0002441406 * NAUTICAL_MILE)
    assert (r.lat, r.lon) == pytest.approx(destination(47.0, 11.0, r.bearing_deg, 1588.0))

    sensis = AsterixDecoder("mlat", cat010_edition="sensis-0.24")
    [r] = sensis.feed((asterix_dir / "jasterix_records" / "cat010ed0.24_sensis.bin").read_bytes(), 84000.0)
    it = r.extra["items"]
    assert it["010"] == {"sac": 0, "sic": 0} and it["000"]["message_type"] == 1
    assert (it["020"]["TYP"], it["020"]["CRT"], it["020"]["SPI"]) == (1, 1, 0)
    assert it["140"]["tod_s"] == pytest.approx(84080.484375)
    assert it["041"]["lat"] == pytest.approx(25.6226482708, abs=1e-8) and it["041"]["lon"] == pytest.approx(22.1754983068, abs=1e-8)
    assert it["042"] == {"x_m": -1423.0, "y_m": 1368.0} and it["202"] == {"vx_mps": -8.0, "vy_mps": 1.0}
    assert it["161"]["track_number"] == 922 and it["170"]["STH"] == 1 and it["220"]["address"] == "474CA1"
    assert it["091"]["height_ft"] == 0.0 and it["500"] == {"sigma_x_m": 2.5, "sigma_y_m": 3.25, "cov_xy_m2": -1.0}
    assert (r.lat, r.lon) == (it["041"]["lat"], it["041"]["lon"])  # WGS-84 in the record itself
    # the same bytes read as edition 1.1 do not fit (I010/202 is a byte longer there): refused, counted
    std = AsterixDecoder("mlat")
    assert std.feed((asterix_dir / "jasterix_records" / "cat010ed0.24_sensis.bin").read_bytes(), 0.0) == []
    assert std.stats.rejected == 1


def test_cat034_announces_the_sensor_position_for_cat048(asterix_dir: Path):
    dec = AsterixDecoder("psr")
    reports = [r for t, p in read_pcap(asterix_dir / "cat_034_048.pcap") for r in dec.feed(p, t)]
    assert len(reports) == 128 and dec.stats.errors == {}
    assert dec.ignored["CAT034 service message"] == 34
    assert list(dec.sensors) == [(25, 12)]
    assert dec.sensors[(25, 12)] == pytest.approx((43.5710220, 16.4060624), abs=1e-5)
    placed = [r for r in reports if r.lat is not None]
    assert placed and {r.extra["sic"] for r in placed} <= {sic for _, sic in dec.sensors}
    for r in placed:
        origin = dec.sensors[(r.extra["sac"], r.extra["sic"])]
        assert (r.lat, r.lon) == pytest.approx(destination(*origin, r.bearing_deg, r.range_m))
    assert {r.status for r in reports} <= {"tracking", "lost", "acquiring"}
    assert all(r.target.count("/") == 2 for r in reports)


def test_unsupported_truncated_and_inconsistent_blocks_are_counted(asterix_dir: Path):
    dec = AsterixDecoder("x")
    cat062 = [p for _, p in read_pcap(asterix_dir / "asterix.pcap")]
    for p in cat062:
        assert dec.feed(p, 0.0) == []
    assert dec.stats.errors == {"unsupported category 62": 100}

    block = (asterix_dir / "cat048.raw").read_bytes()
    cases = {
        block[:20]: "block length past the datagram",
        block[:2]: "truncated block header",
        block[:1] + b"\x00\x02" + block[3:]: "block length below 3",
        block[:1] + b"\x00\x03": "CAT048: block without records",
        block[:1] + (len(block) - 4).to_bytes(2, "big") + block[3:-4]: "CAT048: item 170 truncated",  # LEN says less
        block[:3] + b"\x00" + block[4:]: "CAT048: empty FSPEC",
        bytes.fromhex("0a00070101010800"): "CAT010: undefined item FRN 26",  # CAT010's spare FRN
        bytes.fromhex("300006010101"): "CAT048: item FSPEC truncated",  # FX bits run off the block
        bytes.fromhex("30000801010101"): "block length past the datagram",
        bytes.fromhex("300006020140"): "CAT048: item 130 has an undefined subfield",  # an 8th subfield
    }
    for data, reason in cases.items():
        d = AsterixDecoder("x")
        assert d.feed(data, 0.0) == [] and d.stats.errors == {reason: 1}, (data.hex(), d.stats.errors)
    # a good block, then an inconsistent one, then a good one: the first stands, the rest is not trusted
    d = AsterixDecoder("x")
    bad = block[:1] + (len(block) + 1).to_bytes(2, "big") + block[3:] + b"\xff"
    assert len(d.feed(block + bad + block, 0.0)) == 1
    assert d.stats.errors == {"CAT048: item FSPEC truncated": 1}
