"""The track store's fast path for a radar's usual sentence (a plain TTM from a radar standing at
the post: RadarPicture.ingest -> NmeaDecoder.scan_ttm -> TrackStore.add_scanned) leaves the
store exactly as the decoder's report through TrackStore.add does: every target field, the
history, the rows the fusion reads (the covariance within 1e-12 relative: numba's hypot), the
per-source quality and the decoder's counts and refusals.

The reference is the general path itself, on a second picture: decoder.feed, then store.add.
"""

from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_radar_nmea_fast import field_variants, resign, variants

from edge.config import parse_config
from edge.evaluation.radar_scenario import sentence
from edge.radar.picture import RadarPicture

POST = (58.2123, 11.5475)  # the real ARPA log's own-ship position, here a fixed radar at the post


def picture(position=POST) -> RadarPicture:
    lat, lon = POST
    radar = f", position: [{position[0]}, {position[1]}]" if position else ""
    return RadarPicture(parse_config(f"""
node: {{site: s, id: n, lat: {lat}, lon: {lon}}}
cameras: [{{id: c, source: x.mp4, detector: {{model: m.onnx}}}}]
radars: [{{id: arpa, format: nmea, transport: udp, port: 10110, stale_s: 20{radar}}}]
""", "test"))


def reference_ingest(pic: RadarPicture, line: bytes, t: float) -> None:
    for rep in pic.decoders["arpa"].feed(line, t):
        pic.store.add(rep)


def assert_same(fast: RadarPicture, general: RadarPicture, now: float) -> None:
    a = {t.key: dataclasses.asdict(t) for t in fast.store.targets()}
    b = {t.key: dataclasses.asdict(t) for t in general.store.targets()}
    assert a == b
    assert fast.store.quality(now) == general.store.quality(now)
    assert vars(fast.decoders["arpa"].stats) == vars(general.decoders["arpa"].stats)
    sa, sb = fast.store.snapshot(now), general.store.snapshot(now)
    assert sa.key_list() == sb.key_list()
    for x, y in ((sa.east, sb.east), (sa.north, sb.north), (sa.velocity, sb.velocity)):
        assert np.array_equal(x, y)
    np.testing.assert_allclose(sa.cov, sb.cov, rtol=1e-12, atol=1e-9)


def test_fast_path_matches_the_decoders_reports_on_the_real_arpa_log(data_dir: Path):
    log = [l for l in (data_dir / "radar" / "nmea" / "arpa" / "RadarLogs.txt").read_bytes().split(b"\r\n") if l]
    rng = random.Random(11)
    targets = [l for l in log if l[3:6] == b"TTM"]
    lines = log + [v for l in rng.sample(targets, 200) for v in variants(l) + field_variants(l, rng)]
    fast, general = picture(), picture()
    t0 = 1_300_000_000.0
    for k, line in enumerate(l for l in lines if l.isascii()):
        t = t0 + 0.02 * k
        fast.ingest("arpa", line, t)
        reference_ingest(general, line, t)
        if k % 5000 == 0:  # the expiry thread, now and then (it syncs the pending reports first)
            assert fast.store.expire(t) == general.store.expire(t)
    end = t0 + 0.02 * len(lines)
    assert_same(fast, general, end)
    stats = fast.decoders["arpa"].stats
    assert fast.scanned > 1000, "the real radar's TTMs took the fast path"
    assert stats.reports > fast.scanned and stats.rejected > 100, "and the rest, refusals included, the general one"


def test_fast_path_matches_on_the_fusion_benchs_scene(videos: Path):
    from edge.fusion_bench import FusionScene
    from edge.sources import open_source

    scene = FusionScene(next(iter(open_source(str(videos / "vtest.avi")))), ["person"], frames=600)
    fast, general = RadarPicture(scene.config), RadarPicture(scene.config)
    for k, lines in enumerate(scene.sentences):  # 200 targets at 1 Hz, 8 lines a frame
        t = scene.t0 + k * scene.dt_frame
        for line in lines:
            fast.ingest("arpa", line, t)
            reference_ingest(general, line, t)
        if k % 25 == 0:
            assert fast.store.expire(t) == general.store.expire(t)
    assert fast.scanned == 600 * 8 - 200  # each target's first report makes it, on the general path
    assert_same(fast, general, scene.t0 + 24)


LETTERS = st.sampled_from(["", "T", "R", "A", "M", "Q", "L", "N", "K", "S", "X"])
NUMBER = st.one_of(st.just(""), st.floats(-5, 400, allow_nan=False).map(lambda v: f"{v:.1f}"), st.sampled_from(["0", "360", "360.0", "361", "-0.0", "1e3", "x"]))


@st.composite
def ttm_lines(draw) -> tuple[bytes, float]:
    """A TTM with fields at and past the edges of what the fast path takes, or another sentence."""
    kind = draw(st.sampled_from(["ttm", "ttm", "ttm", "ttm", "tll", "junk"]))
    n = draw(st.integers(0, 5))
    hhmmss = draw(st.sampled_from(["", "120000", "120001.5", "115959", "120003", "250000"]))
    if kind == "ttm":
        fields = [f"{n:02d}", draw(NUMBER), draw(NUMBER), draw(LETTERS), draw(NUMBER), draw(NUMBER), draw(LETTERS),
                  draw(NUMBER), draw(NUMBER), draw(LETTERS), draw(st.sampled_from(["", "boat", " 1 (B4G) "])),
                  draw(LETTERS), draw(LETTERS), hhmmss]
        if draw(st.booleans()):
            fields.append(draw(LETTERS))
        line = sentence("RATTM," + ",".join(fields)).encode()
    elif kind == "tll":
        line = sentence(f"RATLL,{n:02d},5812.7405,N,01132.8508,E,boat,{hhmmss},T,").encode()
    else:
        line = draw(st.binary(max_size=60))
    if draw(st.integers(0, 9)) == 0:
        line = resign(line[:-1]) if line[:1] == b"$" else line
    return line, draw(st.floats(0, 30))


@settings(max_examples=150, deadline=None)
@given(st.lists(ttm_lines(), min_size=1, max_size=60), st.booleans())
def test_fast_path_matches_on_generated_lines(items, expire):
    fast, general = picture(), picture()
    t0 = 1_700_000_000.0
    for k, (line, jitter) in enumerate(items):
        t = t0 + k + jitter  # the receive time; the sentences' own times go back and forth
        fast.ingest("arpa", line, t)
        reference_ingest(general, line, t)
        if expire and k % 7 == 6:
            assert fast.store.expire(t) == general.store.expire(t)
    assert_same(fast, general, t0 + len(items) + 31)


def test_a_snapshots_targets_show_what_came_in_after_it():
    pic = picture()
    t0 = 1_700_000_000.0
    line = lambda rng, sec: sentence(f"RATTM,07,{rng:.2f},45.0,T,10.0,90.0,T,,,N,,T,,1200{sec:02d},A").encode()  # noqa: E731
    pic.ingest("arpa", line(1.0, 0), t0)
    pic.ingest("arpa", line(1.1, 1), t0 + 1)
    assert pic.scanned == 1
    snap = pic.store.snapshot(t0 + 1)
    assert len(snap) == 1 and snap.east[0] == 1.1 * 1852 * math.sin(math.radians(45.0))
    pic.ingest("arpa", line(1.2, 2), t0 + 2)
    [target] = snap.targets  # read now: the target's fields as of now, as the store's objects always were
    assert target.reports == 3 and target.east == 1.2 * 1852 * math.sin(math.radians(45.0))
    assert [round(h[1], 6) for h in target.history] == [round(r * 1852 * math.sin(math.radians(45.0)), 6) for r in (1.0, 1.1, 1.2)]
    assert target.speed_mps == 10.0 * 1852 / 3600 and target.course_deg == 90.0 and target.status == "tracking"


def test_radars_elsewhere_and_moving_ones_take_the_general_path():
    t0 = 1_700_000_000.0
    line = sentence("RATTM,07,1.00,45.0,T,10.0,90.0,T,,,N,,T,,120000,A").encode()
    for position in ((58.3, 11.6), None):  # not at the post; own ship's position from GGA
        pic = picture(position)
        for k in range(3):
            pic.ingest("arpa", line, t0 + k)
        assert pic.scanned == 0


def test_a_late_report_changes_nothing_but_the_counts():
    fast, general = picture(), picture()
    t0 = 1_700_000_000.0
    for k, (rng, dt) in enumerate([(1.0, 0.0), (1.1, 2.0), (1.2, 1.5), (1.3, 1.99), (1.4, 2.0), (1.5, 3.0)]):
        line = sentence(f"RATTM,07,{rng:.2f},45.0,T,10.0,90.0,T,,,N,,T,,,A").encode()  # no time: the receive time
        fast.ingest("arpa", line, t0 + dt)
        reference_ingest(general, line, t0 + dt)
    assert fast.scanned == 5
    [target] = fast.store.targets()
    assert target.reports == 4 and [h[0] - t0 for h in target.history] == [0.0, 2.0, 2.0, 3.0]
    assert_same(fast, general, t0 + 4)


def test_reports_nobody_reads_are_applied_in_bounded_batches(monkeypatch):
    import edge.radar.store as store_module

    monkeypatch.setattr(store_module, "MAX_PENDING", 50)
    fast, general = picture(), picture()
    t0 = 1_700_000_000.0
    for k in range(400):  # three targets, no reads, no expiry
        line = sentence(f"RATTM,{k % 3:02d},{1 + k / 1000:.3f},{k % 360}.0,T,5.0,10.0,T,,,N,,T,,,A").encode()
        fast.ingest("arpa", line, t0 + k / 10)
        reference_ingest(general, line, t0 + k / 10)
        assert len(fast.store._pending) < 50
    assert fast.scanned == 397
    assert_same(fast, general, t0 + 41)
