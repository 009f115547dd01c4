"""The track store's fast path for a radar's usual sentence (a plain TTM from a radar standing at
the post: RadarPicture.ingest -> TrackStore.add_ttm, the line scanned and its target's row written in
one compiled call, its name, status and extra from NmeaDecoder.ttm_fields) leaves the
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


def reference_ingest(pic: RadarPicture, line: bytes, t: float, shift: float = 0.0) -> None:
    for rep in pic.decoders["arpa"].feed(line, t):
        pic.store.add(dataclasses.replace(rep, time=rep.time + shift) if shift else rep)


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
# Fields the fast path takes, at their edges: most generated TTMs must reach it.
DISTANCE = st.one_of(st.floats(0, 12, allow_nan=False).map(lambda v: f"{v:.3f}"), st.sampled_from(["0", "0.0"]))
ANGLE = st.one_of(st.floats(0, 360, allow_nan=False).map(lambda v: f"{v:.1f}"), st.sampled_from(["0", "360", "359.99"]))
SPEED = st.one_of(st.floats(-2, 40, allow_nan=False).map(lambda v: f"{v:.1f}"), st.just("0"))
OPTIONAL = st.one_of(st.just(""), st.floats(-9, 9, allow_nan=False).map(lambda v: f"{v:.2f}"))
# Times around noon and around midnight: a TTM is dated on the day of the last ZDA, the nearest
# such day (00:00:01 after 23:59:59 is the next day's).
HHMMSS = st.sampled_from(["", "120000", "120001.5", "115959", "120003", "250000", "235959", "000001.5"])


@st.composite
def ttm_lines(draw) -> tuple[bytes, float]:
    """A TTM the fast path takes (its fields at their edges), one with fields past the edges, or
    another sentence (TLL, ZDA, junk)."""
    kind = draw(st.sampled_from(["plain", "plain", "plain", "plain", "plain", "ttm", "tll", "zda", "junk"]))
    n = draw(st.integers(0, 5))
    hhmmss = draw(HHMMSS)
    if kind == "plain":
        fields = [draw(st.sampled_from([f"{n:02d}", f"{n}"])), draw(DISTANCE), draw(ANGLE), draw(st.sampled_from(["T", ""])),
                  draw(SPEED), draw(ANGLE), draw(st.sampled_from(["T", ""])), draw(OPTIONAL), draw(OPTIONAL),
                  draw(st.sampled_from(["", "N", "K", "S"])), draw(st.sampled_from(["", "boat", " 1 (B4G) "])),
                  draw(st.sampled_from(["", "T", "L", "Q", "X"])), draw(st.sampled_from(["", "R"])), hhmmss]
        if draw(st.booleans()):
            fields.append(draw(st.sampled_from(["", "A", "M", "X"])))
        line = sentence("RATTM," + ",".join(fields)).encode()
    elif kind == "ttm":
        fields = [f"{n:02d}", draw(NUMBER), draw(NUMBER), draw(LETTERS), draw(NUMBER), draw(NUMBER), draw(LETTERS),
                  draw(NUMBER), draw(NUMBER), draw(LETTERS), draw(st.sampled_from(["", "boat", " 1 (B4G) "])),
                  draw(LETTERS), draw(LETTERS), hhmmss]
        if draw(st.booleans()):
            fields.append(draw(LETTERS))
        line = sentence("RATTM," + ",".join(fields)).encode()
    elif kind == "tll":
        line = sentence(f"RATLL,{n:02d},5812.7405,N,01132.8508,E,boat,{hhmmss},T,").encode()
    elif kind == "zda":
        line = sentence(f"GPZDA,{hhmmss or '235958'},{draw(st.sampled_from(['06', '07']))},12,2026,,").encode()
    else:
        line = draw(st.binary(max_size=60))
    if draw(st.integers(0, 9)) == 0:
        line = resign(line[:-1]) if line[:1] == b"$" else line
    return line, draw(st.floats(0, 30))


@settings(max_examples=200, deadline=None)
@given(st.lists(ttm_lines(), min_size=8, max_size=60), st.booleans(), st.sampled_from([0.0, 0.0, 3600.25]))
def test_fast_path_matches_on_generated_lines(items, expire, shift):
    """`shift`: a recording replayed live moves its reports' times by the replay's offset. The
    strategy's lines reach the fast path (test_generated_lines_reach_the_fast_path)."""
    fast, general = picture(), picture()
    t0 = 1_796_601_600.0  # 2026-12-07 00:00 UTC
    for k, (line, jitter) in enumerate(items):
        t = t0 + k + jitter  # the receive time; the sentences' own times go back and forth
        fast.ingest("arpa", line, t, shift)
        reference_ingest(general, line, t, shift)
        if expire and k % 7 == 6:
            assert fast.store.expire(t) == general.store.expire(t)
    assert_same(fast, general, t0 + len(items) + 31)


def test_fast_path_around_midnight_with_a_shift():
    """Plain TTMs dated across midnight by the last ZDA (23:59:50 on the 6th: 00:00:05 is the
    7th's), replayed with a shift: hundreds take the fast path, and the store ends as the
    general path leaves it."""
    fast, general = picture(), picture()
    t0 = 1_796_601_600.0 - 10  # 2026-12-06 23:59:50 UTC
    rng = random.Random(7)
    lines = [sentence("GPZDA,235950.00,06,12,2026,,").encode()]
    for k in range(600):
        sec = (86390 + k * 0.05) % 86400
        hhmmss = f"{int(sec // 3600):02d}{int(sec % 3600 // 60):02d}{sec % 60:05.2f}"
        lines.append(sentence(f"RATTM,{k % 7:02d},{rng.uniform(0.1, 3):.3f},{rng.uniform(0, 360):.1f},T,"
                              f"{rng.uniform(0, 20):.1f},{rng.uniform(0, 360):.1f},T,{rng.uniform(-1, 1):.2f},"
                              f"{rng.uniform(-5, 5):.2f},N,boat{k % 7},{rng.choice('TLQ')},,{hhmmss},A").encode())
    # then a ZDA just after midnight and reports stamped just before it: the 6th's, late
    lines.append(sentence("GPZDA,000031.00,07,12,2026,,").encode())
    lines += [sentence(f"RATTM,{k % 7:02d},1.000,10.0,T,5.0,20.0,T,,,N,,T,,2359{50 + k % 9:02d},A").encode()
              for k in range(40)]
    for k, line in enumerate(lines):
        t = t0 + k * 0.05 + rng.random() * 0.01
        fast.ingest("arpa", line, t, 3600.25)
        reference_ingest(general, line, t, 3600.25)
    assert fast.scanned > 500, fast.scanned
    updated = sorted(tg.updated for tg in fast.store.targets())
    assert updated[0] > t0 + 3600.25 + 10, "dated on the next day, after midnight, and shifted"
    assert_same(fast, general, t0 + 3600.25 + 60)


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


def test_ttm_fields_are_each_lines_own():
    """The fast path's name, status and extra (NmeaDecoder.ttm_fields, looked up by the line's
    span from CPA to reference and its acquisition code) are, line by line, what the decoder's
    report of that line carries, over every combination of those fields, in a shuffled order
    that repeats each line: a field missing from the lookup's key would hand a line another's."""
    import itertools

    from edge.radar import ttm_scan
    from edge.radar.nmea import NmeaDecoder

    lines = []
    for cpa, tcpa, unit, name, status, ref, acq in itertools.product(
            ["", "0.50", "1.5"], ["", "-2.0"], ["", "N", "K", "S"], ["", "boat"], ["", "T", "L", "X"], ["", "R"],
            [None, "", "A", "M"]):
        fields = ["07", "1.20", "45.0", "T", "5.0", "90.0", "T", cpa, tcpa, unit, name, status, ref, "120000.00"]
        if acq is not None:
            fields.append(acq)
        lines.append(sentence("RATTM," + ",".join(fields)).encode())
    order = lines * 2
    random.Random(3).shuffle(order)
    fast, general = NmeaDecoder("arpa", POST), NmeaDecoder("arpa", POST)
    floats, ints = fast.scan_buffers
    for line in order:
        assert ttm_scan.scan(np.frombuffer(line, np.uint8), floats, ints) == ttm_scan.TTM
        got = fast.ttm_fields(line, ints[ttm_scan.I_TAIL_START], ints[ttm_scan.I_TAIL_END], ints[ttm_scan.I_ACQ])
        (report,) = general.feed(line, 1_700_000_000.0)
        assert got == (report.name, report.status, report.extra), line


def test_expiry_leaves_waiting_reports_waiting_until_it_frees_a_row():
    """Expiry that frees no row leaves the fast path's reports waiting (they are brought in when a
    target is read); one that frees rows brings them in first, so the expired target holds all
    of its reports and a target that takes its row next gets none of them."""
    fast, general = picture(), picture()
    t0 = 1_700_000_000.0

    def both(number: int, k: int) -> None:
        line = sentence(f"RATTM,{number:02d},{1 + k / 1000:.3f},{(40 * number + k) % 360}.0,T,5.0,10.0,T,,,N,,T,,,A").encode()
        fast.ingest("arpa", line, t0 + k)
        reference_ingest(general, line, t0 + k)

    both(1, 0)
    both(2, 0)
    leaving = fast.store.get(("arpa", "02"))
    for k in range(1, 30):
        both(1, k)
        if k < 5:
            both(2, k)
        if k == 10:
            waiting = len(fast.store._pending)
            assert fast.store.expire(t0 + k) == general.store.expire(t0 + k) == 0
            assert len(fast.store._pending) == waiting > 0, "nothing freed: the reports wait"
        if k == 26:  # target 02 last reported at 4 s: stale (20 s)
            assert fast.store.expire(t0 + k) == general.store.expire(t0 + k) == 1
            assert not fast.store._pending
            assert leaving.reports == 5 and leaving.updated == t0 + 4, "its reports came in before its row was freed"
        if k >= 27:
            both(3, k)  # a new target, perhaps in the freed row
    assert fast.scanned > 30
    assert_same(fast, general, t0 + 30)
