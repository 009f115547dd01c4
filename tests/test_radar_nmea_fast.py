"""The NMEA decoder's fast path for plain TTM/TLL lines gives exactly what its general path
(frame(), then pynmea2's split) gives: the same reports, the same counts, the same refusals.

A str line always takes the general path (the fast one reads bytes), so feeding each line once
as bytes and once as str to two decoders compares the two paths on the same input.
"""

from __future__ import annotations

import random
from functools import reduce
from operator import xor
from pathlib import Path

import pytest

import edge.radar.nmea as nmea_module
from edge.radar.nmea import NmeaDecoder


def resign(line: bytes) -> bytes:
    body = line.split(b"*")[0]
    return body + b"*%02X" % reduce(xor, body[1:], 0) if body[:1] in (b"$", b"!") else line


def variants(line: bytes) -> list[bytes]:
    """A real sentence as devices and broken links also send it."""
    body, _, ck = line.partition(b"*")
    fields = body.split(b",")
    return [
        line, b" " + line, line + b" ", b"\t" + line + b"\r\n", line + b"\x0b", b"\x0c" + line, line + b"\x00",
        body + b"*" + ck.lower(), line + b",s1234,d-081,T1242958962",  # lower-case checksum; a receiver's suffix
        resign(b"$ra" + body[3:]), resign(b"$P" + body[2:]), resign(b"$p" + body[2:]), resign(b"$R_" + body[3:]),
        resign(body + b",,,"), resign(b",".join(fields[:8])), resign(b",".join(fields[:2])),  # extra, missing fields
        resign(body.replace(b",", b"*", 1)), resign(b"!" + body[1:]), b"\\s:rx1*00\\" + line,  # '*' inside; '!'; tag block
        resign(body + b"\x7f"), resign(body[:7] + b" " + body[7:]), resign(body.replace(b"T", b"t")),
        resign(body[:7] + b"-1" + body[9:]), resign(body.replace(b".", b"..", 1)), resign(body + b"1e400"),
        body + b"*00", line[:-1], line[: len(line) // 2],  # a wrong checksum, a truncated one, a cut line
    ]


TRICKY = [b"", b"0", b"-1", b"+1", b"1.", b".5", b"1e3", b"12.5", b"1234567890", b"0.1234567891", b"-0.0", b"361", b"360",
          b"T", b"R", b"N", b"K", b"S", b"X", b"A", b"a", b" 1", b"240000", b"235960.5", b"235961", b"120000.", b"1200",
          b"120000.123456", b"1_0", b"nan"]


def field_variants(line: bytes, rng: random.Random) -> list[bytes]:
    """The sentence with one field at a time replaced by values at the edges of what parses."""
    body = line.split(b"*")[0]
    fields = body.split(b",")
    out = []
    for k in range(1, len(fields)):
        for value in rng.sample(TRICKY, 6):
            out.append(resign(b",".join(fields[:k] + [value] + fields[k + 1:])))
    return out


@pytest.fixture(scope="module")
def lines(data_dir: Path) -> list[bytes]:
    log = [l for l in (data_dir / "radar" / "nmea" / "arpa" / "RadarLogs.txt").read_bytes().split(b"\r\n") if l]
    rng = random.Random(5)
    targets = [l for l in log if l[3:6] in (b"TTM", b"TLL")]
    assert len(targets) > 1000
    out = log[:3000] + [v for l in rng.sample(targets, 300) for v in variants(l)]
    out += [v for l in rng.sample(targets, 60) for v in field_variants(l, rng)]
    return [l for l in out if l.isascii()]


@pytest.mark.parametrize("position", [None, (58.2123, 11.5475)])
def test_fast_and_general_paths_agree_on_real_and_damaged_lines(lines, position, monkeypatch):
    general_calls = []
    frame_counted = nmea_module.frame_counted
    monkeypatch.setattr(nmea_module, "frame_counted", lambda line, stats: general_calls.append(line) or frame_counted(line, stats))
    fast, general = NmeaDecoder("arpa", position=position), NmeaDecoder("arpa", position=position)
    for k, line in enumerate(lines):
        t = 1_300_000_000.0 + 0.05 * k
        assert fast.feed(line, t) == general.feed(line.decode("ascii"), t), line
    assert vars(fast.stats) == vars(general.stats)
    assert fast.ignored == general.ignored and vars(fast.own) == vars(general.own)
    assert general.stats.reports > 1000 and len(general.stats.errors) >= 10, "the lines exercise reports and refusals"
    # The comparison means something only if the fast path ran: most plain TTM/TLL lines never reached frame().
    plain = sum(1 for l in lines if l[:1] == b"$" and l[3:6] in (b"TTM", b"TLL"))
    fast_lines = sum(1 for l in general_calls if isinstance(l, bytes))
    assert fast_lines < len(lines) - plain / 2
