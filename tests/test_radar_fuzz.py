"""Decoders never crash on bad bytes: random input, mutated real messages, truncated and oversized blocks.

Hypothesis runs derandomized (the same examples every run, so CI is reproducible). Mutated
sentences are re-checksummed half of the time, so the mutations reach the field parsers and do
not all stop at the checksum. Every refusal must be counted under a named reason; an "internal"
reason (an exception a decoder did not expect) fails the test: it is a bug to fix, not a count.
"""

from __future__ import annotations

import math
from functools import reduce
from operator import xor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.radar.ais import AisDecoder
from edge.radar.asterix import AsterixDecoder
from edge.radar.feeds import AsterixStreamFramer, FeedStats, LineSplitter
from edge.radar.nmea import NmeaDecoder
from edge.errors import SourceError
from edge.radar.pcap import read_pcap

FUZZ = settings(max_examples=300, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


class Samples(dict):
    def __repr__(self) -> str:  # hypothesis prints its arguments on failure; the drawn values say enough
        return "<real messages>"


@pytest.fixture(scope="module")
def samples(data_dir: Path) -> dict[str, list[bytes]]:
    """Real messages of every kind the decoders meet, to mutate."""
    radar = (data_dir / "radar" / "nmea" / "arpa" / "RadarLogs.txt").read_bytes().split(b"\r\n")
    by_type: dict[bytes, bytes] = {}
    for line in radar[:3000]:
        by_type.setdefault(line[3:6], line)
    nmea = list(by_type.values()) + [l for l in radar[:400] if l.startswith((b"$RATTM", b"$RATLL"))][:20]
    ais = [l for l in (data_dir / "radar" / "nmea" / "ais" / "signalk" / "nais400-merrimac.log").read_bytes().splitlines()
           if l.startswith(b"!")][:200]
    asterix = [p for _, p in read_pcap(data_dir / "radar" / "asterix" / "cat_034_048.pcap")]
    asterix += [p.read_bytes() for p in sorted((data_dir / "radar" / "asterix" / "jasterix_records").glob("cat0[13]*.bin"))]
    return Samples(nmea=nmea, ais=ais, asterix=asterix)


def resign(line: bytes) -> bytes:
    """The line with a correct checksum for whatever is now before its '*'."""
    body = line.split(b"*")[0]
    if not body[:1] in (b"$", b"!"):
        return line
    return body + b"*%02X" % reduce(xor, body[1:], 0)


@st.composite
def mutated(draw, pool: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(pool)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "field", "comma"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[i : i + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[i:]
        elif op == "field":  # a field replaced by text that looks like a value, or nearly
            fields = bytes(data).split(b",")
            j = draw(st.integers(0, len(fields) - 1))
            fields[j] = draw(st.sampled_from([b"", b"-1", b"1e400", b"nan", b"inf", b"999999", b"-0.0", b"12.3.4",
                                              b"99", b"A", b"R", b"T", b"\x00", b"5999.99", b"235960", b"0" * 40]))
            data = bytearray(b",".join(fields))
        elif op == "comma":
            data[i:i] = b","
    line = bytes(data)
    return resign(line) if draw(st.booleans()) else line


def check_reports(reports) -> None:
    for r in reports:
        assert isinstance(r.target, str) and r.target
        assert math.isfinite(r.time)
        if r.lat is not None:
            assert -90 <= r.lat <= 90 and -180 <= r.lon <= 180
        for v in (r.range_m, r.speed_mps):
            assert v is None or (math.isfinite(v) and v >= 0)
        for v in (r.bearing_deg, r.course_deg):
            assert v is None or 0 <= v < 360


def no_internal_errors(stats) -> None:
    assert not [reason for reason in stats.errors if "internal" in reason or "undecodable" in reason], stats.errors


# --- NMEA ---------------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=300))
def test_nmea_random_bytes(data):
    dec = NmeaDecoder("f", position=(58.0, 11.0))
    for line in data.split(b"\n") or [data]:
        check_reports(dec.feed(line, 0.0))
    no_internal_errors(dec.stats)


@FUZZ
@given(st.data())
def test_nmea_mutated_real_sentences(samples, data):
    dec = NmeaDecoder("f")
    lines = data.draw(st.lists(mutated(samples["nmea"]), min_size=1, max_size=12))
    for line in samples["nmea"][:5] + lines:  # with own ship known first, so TTMs get placed
        check_reports(dec.feed(line, 0.0))
        check_reports(dec.feed(line.decode("latin-1"), 0.0))  # str input too
    assert dec.stats.messages >= len(lines)
    no_internal_errors(dec.stats)


# --- AIS ----------------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=300))
def test_ais_random_bytes(data):
    dec = AisDecoder("f")
    for line in data.split(b"\n"):
        check_reports(dec.feed(line, 0.0))
    no_internal_errors(dec.stats)


@FUZZ
@given(st.data())
def test_ais_mutated_real_sentences_and_fragment_orders(samples, data):
    dec = AisDecoder("f", fragment_timeout_s=1.0)
    lines = data.draw(st.lists(mutated(samples["ais"]), min_size=1, max_size=12))
    payload = data.draw(st.text(alphabet="0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVW`abcdefghijklmnopqrstuvw", max_size=90))
    count = data.draw(st.integers(1, 3))
    for n in data.draw(st.permutations(list(range(1, count + 1)))):  # fragments of a message, any order
        lines.append(resign(b"!AIVDM,%d,%d,7,A,%s,%d*" % (count, n, payload.encode(), data.draw(st.integers(0, 5)))))
    for t, line in enumerate(lines):
        check_reports(dec.feed(line, float(t)))
    no_internal_errors(dec.stats)


# --- ASTERIX ------------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=600))
def test_asterix_random_bytes(data):
    dec = AsterixDecoder("f", sensor_position=(45.0, 16.0))
    check_reports(dec.feed(data, 1462433756.0))
    assert dec.stats.messages == 1
    no_internal_errors(dec.stats)


@FUZZ
@given(st.data())
def test_asterix_mutated_real_datagrams(samples, data):
    dec = AsterixDecoder("f", sensor_position=(45.0, 16.0))
    datagram = bytearray(data.draw(st.sampled_from(samples["asterix"])))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(datagram) - 1)) if datagram else 0
        op = data.draw(st.sampled_from(["flip", "truncate", "huge length", "zero length", "append"]))
        if op == "flip" and datagram:
            datagram[i] = data.draw(st.integers(0, 255))
        elif op == "truncate":
            del datagram[i:]
        elif op in ("huge length", "zero length") and len(datagram) >= 3:
            datagram[1:3] = b"\xff\xff" if op == "huge length" else b"\x00\x00"
        elif op == "append":
            datagram += data.draw(st.binary(max_size=40))
    reports = dec.feed(bytes(datagram), 1462433756.0)
    check_reports(reports)
    no_internal_errors(dec.stats)
    if not reports:
        assert dec.stats.rejected or dec.ignored  # nothing came out: something says why


@FUZZ
@given(cat=st.sampled_from([10, 34, 48]), body=st.binary(min_size=1, max_size=200))
def test_asterix_well_framed_blocks_with_random_records(cat, body):
    """A correct block header around random records: exercises every item layout's length rules."""
    dec = AsterixDecoder("f", sensor_position=(45.0, 16.0), cat010_edition="1.1")
    check_reports(dec.feed(bytes([cat]) + (len(body) + 3).to_bytes(2, "big") + body, 0.0))
    no_internal_errors(dec.stats)


# --- framing --------------------------------------------------------------------------------------


@FUZZ
@given(chunks=st.lists(st.binary(max_size=120), max_size=20))
def test_stream_framers_never_raise_unexpectedly(chunks):
    lines = LineSplitter(64, FeedStats())
    framer = AsterixStreamFramer(256)
    for chunk in chunks:
        assert all(len(l) <= 64 and b"\n" not in l for l in lines.feed(chunk))
        try:
            assert all(3 <= len(b) <= 256 for b in framer.feed(chunk))
        except ValueError:
            framer = AsterixStreamFramer(256)  # out of step: the feed reconnects


@settings(max_examples=150, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data())
def test_damaged_captures_yield_what_they_can(data_dir, tmp_path_factory, data):
    """A capture with bytes flipped or cut short: read_pcap yields or skips frames, or refuses the
    file up front (SourceError, for a broken file header); nothing else escapes."""
    capture = bytearray((data_dir / "radar" / "asterix" / "cat_034_048.pcap").read_bytes())
    for _ in range(data.draw(st.integers(1, 12))):
        capture[data.draw(st.integers(0, len(capture) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del capture[data.draw(st.integers(0, len(capture) - 1)):]
    path = tmp_path_factory.mktemp("pcap", numbered=True) / "damaged.pcap"
    path.write_bytes(bytes(capture))
    skipped: dict[str, int] = {}
    try:
        for t, payload in read_pcap(path, skipped=skipped):
            assert isinstance(payload, bytes) and math.isfinite(t)
    except SourceError:
        pass
