"""The compiled TTM scan (edge.radar.ttm_scan) accepts a line only where the decoder's pattern
path (_PLAIN_TARGET, then _TTM_PLAIN) accepts it, and converts it to the very same report;
and it does accept the lines radars send, so the fast path is the one that runs.
"""

from __future__ import annotations

from functools import reduce
from operator import xor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.radar import ttm_scan
from edge.radar.nmea import _PLAIN_TARGET, NmeaDecoder, SentenceError


def signed(body: bytes) -> bytes:
    return b"$" + body + b"*%02X" % reduce(xor, body, 0)


def pattern_path(dec: NmeaDecoder, line: bytes, received: float):
    """What the decoder's pattern path makes of a line: None when it is not a plain TTM with a
    correct checksum, else the handler's reports (or [] and a counted refusal)."""
    plain = _PLAIN_TARGET.fullmatch(line)
    if plain is None or plain[2] != b"TTM" or reduce(xor, plain[1], 0) != int(plain[4], 16):
        return None
    reports = dec._ttm_plain(plain[3].decode("ascii"), received)
    return reports


def scanned(dec: NmeaDecoder, line: bytes, received: float):
    if ttm_scan.scan(np.frombuffer(line, np.uint8), dec._floats, dec._ints) != ttm_scan.TTM:
        return None
    return dec._ttm_scanned(line, received)


def check(line: bytes, position=(58.2123, 11.5475)):
    a, b = NmeaDecoder("arpa", position=position), NmeaDecoder("arpa", position=position)
    try:
        expected = pattern_path(a, line, 1_300_000_000.0)
    except Exception as e:  # noqa: BLE001 - a refusal (SentenceError): the scan's build must refuse it alike
        expected = type(e)
    try:
        got = scanned(b, line, 1_300_000_000.0)
    except Exception as e:  # noqa: BLE001
        got = type(e)
    if got is None:
        return expected  # declined: the pattern path judges it (the decoder falls back to it)
    assert got == expected, line
    return got


def test_real_arpa_log_lines_are_all_scanned_and_agree(data_dir: Path):
    log = [l for l in (data_dir / "radar" / "nmea" / "arpa" / "RadarLogs.txt").read_bytes().split(b"\r\n") if l]
    ttm = [l for l in log if l[3:7] == b"TTM,"]
    assert len(ttm) > 1400
    dec = NmeaDecoder("arpa", position=(58.2123, 11.5475))
    taken = 0
    for line in ttm:
        if scanned(NmeaDecoder("arpa", position=(58.2123, 11.5475)), line, 0.0) is not None:
            taken += 1
        check(line)
    # Every well-formed TTM of the log takes the compiled path (the truncated last line does not).
    plain = sum(1 for l in ttm if pattern_path(dec, l, 0.0) is not None)
    assert taken == plain and plain > 1400


def test_scan_declines_damage_and_keeps_the_general_refusals():
    good = signed(b"RATTM,01,0.48,263.6,T,0.0,2.9,T,0.48,,N,1 (B4G),T,,134601,M")
    assert check(good)[0].range_m == pytest.approx(0.48 * 1852)
    body = good[1:-3]
    damaged = [good[:-1], good[:-2] + b"00", b"$" + body + b"*", good + b"\x00",  # cut, wrong, missing checksum; NUL
               signed(body.replace(b"RA", b"PA", 1)), signed(body.replace(b"134601", b"250000")),  # talker P; 25 h
               signed(body.replace(b"0.48", b"0.", 1)), signed(body.replace(b"0.48", b".48", 1)),  # not plain decimals
               signed(body + b",M"), signed(body.replace(b",T,", b",R,", 1))]  # a 16th field; a relative bearing
    for bad in damaged:
        assert scanned(NmeaDecoder("arpa", position=(58.2123, 11.5475)), bad, 0.0) is None, bad
        check(bad)  # and the decoder's own path judges it
    # Whitespace around a line is the pattern's too: scanned, the same report.
    assert check(b" \t" + good + b"\r\n") == check(good)
    # A bearing past 360 parses as a plain decimal; the build they share refuses it for both.
    with pytest.raises(SentenceError, match="bad bearing"):
        scanned(NmeaDecoder("arpa"), signed(body.replace(b"263.6", b"400")), 0.0)
    assert check(signed(body.replace(b"263.6", b"400"))) is SentenceError


# Valid field values, and values at and around the edges of what the pattern takes.
def _decimal(sign: str) -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), st.from_regex(rf"{sign}[0-9]{{1,9}}(\.[0-9]{{1,9}})?", fullmatch=True))


def _time() -> st.SearchStrategy[str]:
    return st.builds(lambda h, m, s, frac: f"{h:02d}{m:02d}{s:02d}{frac}", st.integers(0, 23), st.integers(0, 59),
                     st.integers(0, 60), st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,6}", fullmatch=True)))


LETTER = st.one_of(st.just(""), st.from_regex(r"[A-Z]", fullmatch=True))
VALID = [st.from_regex(r"[0-9]{1,9}", fullmatch=True), _decimal(""), _decimal(""), st.sampled_from(["", "T"]),
         _decimal("-?"), _decimal(""), st.sampled_from(["", "T"]), _decimal("-?"), _decimal("-?"),
         st.sampled_from(["", "N", "K", "S"]),
         st.text(st.characters(min_codepoint=32, max_codepoint=126, exclude_characters=",*"), max_size=8),
         LETTER, LETTER, st.one_of(st.just(""), _time())]
EDGE = st.one_of(
    st.from_regex(r"-?[0-9]{1,10}(\.[0-9]{0,10})?", fullmatch=True),
    st.sampled_from(["", "0", "-0", "-0.0", "360", "360.0", "359.99", "400", "1e3", "nan", "+1", ".5", "1.", " 1", "a1",
                     "999999999.999999999", "123456789.123456", "0.000000001", "T", "R", "t", "X", "TT", "NK", "a",
                     "235960.5", "240000", "236000", "235961", "120000.", "1200", "120000.1234567", "1200001"]),
    st.from_regex(r"[0-9]{6}(\.[0-9]{0,7})?", fullmatch=True),
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=st.tuples(*VALID), edge=st.one_of(st.none(), st.tuples(st.integers(0, 13), EDGE)),
       acq=st.one_of(st.none(), LETTER, st.just("AA")), talker=st.sampled_from(["RA", "RA", "II", "P1", "1A", "Ra"]))
def test_scan_agrees_with_the_pattern_path_on_generated_fields(fields, edge, acq, talker):
    """All fields valid, or one at the edge of what parses (the acquisition field may be absent)."""
    fields = list(fields)
    if edge is not None:
        fields[edge[0]] = edge[1]
    if acq is not None:
        fields.append(acq)
    SEEN[check(signed(f"{talker}TTM,{','.join(fields)}".encode())) is not None] += 1


SEEN = {True: 0, False: 0}  # lines the scan took (and compared) or declined, over the test above


def test_the_generated_lines_were_mostly_scanned_and_compared():
    if not SEEN[True] + SEEN[False]:
        test_scan_agrees_with_the_pattern_path_on_generated_fields()
    assert SEEN[True] > 0.3 * (SEEN[True] + SEEN[False]), SEEN
    assert SEEN[False] > 0.05 * (SEEN[True] + SEEN[False]), SEEN


def test_generated_plain_lines_are_scanned_not_declined():
    """The fast path is not an empty promise: plain lines as radars send them are all taken."""
    for k in range(200):
        line = signed(f"RATTM,{k:03d},{k * 0.013:.4f},{k * 1.7 % 360:.1f},T,{k % 30:.1f},{k * 3.1 % 360:.1f},T,,,N,,T,,"
                      f"12{k % 60:02d}{k % 60:02d}.00,A".encode())
        dec = NmeaDecoder("arpa", position=(45.8, 15.9))
        assert scanned(dec, line, 0.0) is not None, line
        check(line, (45.8, 15.9))
