"""ASTERIX CAT240: every resolution, both headers, every block size, compression; broken input
counted, never raised; radials assembled into sweeps across north."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from edge.radar.cat240 import (RESOLUTION_BITS, Cat240Error, VideoRadial, VideoSummary, decode_block, encode_summary,
                               encode_video, pack_cells, unpack_cells)
from edge.radar.config import RadarFeedConfig
from edge.radar.sweep import SweepAssembler
from edge.radar.video import RadarVideoDecoder


@pytest.mark.parametrize("bits", sorted(RESOLUTION_BITS.values()))
@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("femto", [False, True])
def test_every_resolution_header_and_compression_round_trips(bits, compressed, femto):
    rng = np.random.default_rng(bits)
    cells = rng.integers(0, 1 << bits, size=777, dtype=np.uint64).astype(np.uint32 if bits == 32 else np.uint16)
    r = VideoRadial(7, 9, 123456, 359.9, 0.2, 40, 100e-9, cells, bits, compressed, femto, 86399.5)
    [d] = decode_block(encode_video(r))
    assert d.cells.tolist() == cells.tolist()
    assert (d.sac, d.sic, d.index, d.start_cell, d.bits, d.compressed, d.femto) == (7, 9, 123456, 40, bits, compressed, femto)
    assert d.cell_m == pytest.approx(14.9896, abs=1e-3) and d.time_of_day == 86399.5
    assert d.start_az_deg == pytest.approx(359.9, abs=0.006) and d.mid_az_deg == pytest.approx(0.05, abs=0.006)


@pytest.mark.parametrize("block,n", [("050", 200), ("051", 3000), ("052", 60000)])
def test_each_video_block_size(block, n):
    cells = (np.arange(n) % 251).astype(np.uint8)
    data = encode_video(VideoRadial(0, 0, 1, 0.0, 0.1, 0, 1e-7, cells, 8, block=block))
    [d] = decode_block(data)
    assert d.block == block and d.cells.tolist() == cells.tolist()


def test_known_bytes_decode_to_the_spec_values():
    # hand-written per the spec: FSPEC (010, 000, 020, 041, 048 | 049, 050, 140), SAC 1 SIC 2, type 2,
    # index 5, start az 0x4000 (90 deg), end 0x4040, start cell 3, 100 ns in fs, 4-bit cells, 3 cells
    body = bytes.fromhex("E7 C8 0102 02 00000005 4000 4040 00000003 05F5E100 0003 0002 000003 01 12300000 000080")
    block = bytes([240]) + (len(body) + 3).to_bytes(2, "big") + body
    [r] = decode_block(block)
    assert (r.sac, r.sic, r.index, r.start_cell, r.bits) == (1, 2, 5, 3, 4)
    assert r.start_az_deg == 90.0 and r.cells.tolist() == [1, 2, 3] and r.time_of_day == 1.0
    assert r.cell_duration_s == pytest.approx(1e-7)


def test_summary_message():
    [s] = decode_block(encode_summary(VideoSummary(3, 4, "radar 1 long range", 12.5)))
    assert (s.sac, s.sic, s.text, s.time_of_day) == (3, 4, "radar 1 long range", 12.5)


def test_packing_puts_the_first_cell_in_the_high_bits():
    assert pack_cells(np.array([1, 0, 1, 1, 0, 0, 0, 0, 1]), 1) == b"\xb0\x80"
    assert pack_cells(np.array([3, 0, 2]), 2) == b"\xc8"
    assert unpack_cells(b"\xab", 4, 2).tolist() == [10, 11]
    with pytest.raises(ValueError):
        pack_cells(np.array([16]), 4)


@pytest.mark.parametrize("mutate,reason", [
    (lambda b: b[:-5], "block length past the datagram"),
    (lambda b: b[:3] + bytes([b[3] | 0x08]) + b[4:], "truncated"),
    (lambda b: b[:-200] + bytes(200), "not zlib"),
])
def test_broken_blocks_are_counted_by_reason(mutate, reason):
    cfg = RadarFeedConfig(id="v", format="cat240", transport="udp", port=4000, position=(58.2, 11.5))
    dec = RadarVideoDecoder(cfg)
    good = encode_video(VideoRadial(0, 0, 1, 0.0, 0.35, 0, 1e-7, np.random.default_rng(0).integers(0, 255, 2000).astype(np.uint8),
                                    8, True))
    assert dec.feed(mutate(good), 0.0) == []
    assert dec.stats.messages == 1 and any(reason in r for r in dec.stats.errors), dec.stats.errors


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_out_of_the_decoder(data):
    dec = RadarVideoDecoder(RadarFeedConfig(id="v", format="cat240", transport="udp", port=4000, position=(58.2, 11.5)))
    dec.feed(bytes([240]) + data, 0.0)
    dec.feed(data, 0.0)
    assert dec.stats.messages == 2


def test_decode_block_refuses_what_it_cannot_trust():
    with pytest.raises(Cat240Error, match="category"):
        decode_block(bytes([48, 0, 4, 0]))


def test_sweeps_end_at_north_and_count_lost_radials():
    asm = SweepAssembler(azimuths=360, max_cells=50)
    sweeps = []
    index = 0
    for turn in range(3):
        for a in range(360):
            index += 1
            if turn == 1 and a in (10, 11):
                continue  # two radials lost on the network
            cells = np.full(30, turn, np.uint8)
            s = asm.add(VideoRadial(0, 0, index, float(a), a + 1.0, 10, 1e-7, cells), time=100.0 * turn + a / 360)
            if s is not None:
                sweeps.append(s)
    sweeps.append(asm.flush())
    assert [s.index for s in sweeps] == [0, 1, 2]
    s1 = sweeps[1]
    assert s1.power.shape == (360, 30) and s1.first_cell == 10 and s1.lost == 2
    assert not s1.filled[10] and not s1.filled[11] and s1.filled.sum() == 358
    assert s1.power[5, 0] == 1 and s1.times[180] == pytest.approx(100.5)
    assert s1.max_range_m == pytest.approx(40 * 14.9896, abs=0.01)
