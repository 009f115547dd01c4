"""Tracking accuracy: the motmetrics wrapper by hand, then detector + tracker on PETS09."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from edge.errors import DatasetError
from edge.evaluation.tracking import load_sequence, read_mot_file, score_tracks

# The anchors: roboflow `trackers` 2.6.1 with default settings on the same YOLOX-Nano
# detections of PETS09-S3-MF1 at 7 fps.
ROBOFLOW_BYTETRACK = (0.874, 0.926)
ROBOFLOW_OCSORT = (0.823, 0.905)


@pytest.fixture(scope="session")
def pets09(data_dir: Path) -> Path:
    return data_dir / "mot" / "PETS09-S3-MF1"


A, B = (0.0, 0.0, 10.0, 20.0), (50.0, 0.0, 10.0, 20.0)


def test_scores_a_hand_made_sequence():
    gt = {1: [(1, A), (2, B)], 2: [(1, A), (2, B)], 3: [(1, A), (2, B)]}
    hyp = {
        1: [(7, A), (8, B)],
        2: [(7, A), (9, (200.0, 200.0, 10.0, 20.0))],  # B missed, a false positive far away
        3: [(7, A), (10, B)],  # B comes back under another id: one switch
    }
    s = score_tracks(gt, hyp)
    # 6 gt boxes; 1 miss + 1 false positive + 1 switch: MOTA = 1 - 3/6.
    assert (s.gt_boxes, s.misses, s.false_positives, s.id_switches) == (6, 1, 1, 1)
    assert s.mota == pytest.approx(0.5)
    assert s.precision == pytest.approx(5 / 6) and s.recall == pytest.approx(5 / 6)
    # Best one-to-one id pairing: 1-7 (3 boxes) and 2-8 or 2-10 (1 box): IDF1 = 2*4 / (6 + 6).
    assert s.idf1 == pytest.approx(2 / 3)
    assert s.motp_iou == pytest.approx(1.0)


def test_matches_need_iou_of_one_half_and_untracked_frames_count_as_misses():
    gt = {1: [(1, A)], 2: [(1, A)], 3: [(1, A)]}
    x, y, w, h = A
    hyp = {1: [(5, (x, y + 6.0, w, h))], 2: [(5, (x, y + 8.0, w, h))]}  # IoU 0.54, then 0.43
    s = score_tracks(gt, hyp, frames=[1, 2, 3])
    assert (s.misses, s.false_positives, s.frames) == (2, 1, 3)
    assert s.mota == pytest.approx(1 - 3 / 3)


def test_reads_motchallenge_files(tmp_path: Path):
    pets = tmp_path / "pets.txt"
    pets.write_text("1,1,682.07,285.96,34.32,102.25,-1,-11773,-14337,0\n2,1,678,284.34,34.215,101.83,-1,-11259,-13537,0\n")
    assert read_mot_file(pets) == {1: [(1, (682.07, 285.96, 34.32, 102.25))], 2: [(1, (678.0, 284.34, 34.215, 101.83))]}
    mot17 = tmp_path / "mot17.txt"
    mot17.write_text("1,1,10,10,5,5,1,1,1.0\n1,2,10,10,5,5,0,1,1.0\n1,3,10,10,5,5,1,7,1.0\n")
    assert read_mot_file(mot17) == {1: [(1, (10.0, 10.0, 5.0, 5.0))]}, "ignored and non-pedestrian boxes are dropped"
    bad = tmp_path / "bad.txt"
    bad.write_text("1,1,10,10,5,5\nframe,id,x\n")
    with pytest.raises(DatasetError, match=r"bad.txt:2: expected `frame,id,x,y,w,h,...`"):
        read_mot_file(bad)


def test_refuses_sequences_without_the_motchallenge_layout(tmp_path: Path, pets09: Path):
    with pytest.raises(DatasetError, match="no such sequence folder"):
        load_sequence(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no img1/ folder"):
        load_sequence(tmp_path)
    (tmp_path / "img1").mkdir()
    shutil.copy(pets09 / "img1" / "000001.jpg", tmp_path / "img1")
    with pytest.raises(DatasetError, match="no ground truth at gt/gt.txt"):
        load_sequence(tmp_path)
    seq = load_sequence(pets09)
    assert seq.gt_boxes == 620 and len(seq.gt) == 107 and seq.fps is None


@pytest.mark.parametrize("what", ["missing", "no-gt"])
def test_cli_reports_bad_sequences_in_one_line(tmp_path: Path, what: str):
    seq = tmp_path / "seq"
    if what == "no-gt":
        (seq / "img1").mkdir(parents=True)
    r = run_cli("eval", "track", str(seq), "--fps", "7")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zastava-edge: error: ") and str(seq) in lines[0]
    assert ("no such sequence folder" if what == "missing" else "no ground truth") in lines[0]


@pytest.mark.slow
def test_detector_and_tracker_on_pets09(pets09: Path, yolox_path: Path):
    r = run_cli("eval", "track", str(pets09), "--fps", "7", "--model", str(yolox_path), "--json")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("PETS09-S3-MF1: 107 frames at 7 fps, 620 gt boxes of 7 objects")
    assert lines[1].startswith("MOTA ")
    result = json.loads(lines[-1])
    assert result["frames"] == 107 and result["tracker"] == "zastava"
    # At least as good as the best anchor (roboflow ByteTrack) on both figures.
    assert result["mota"] >= ROBOFLOW_BYTETRACK[0] and result["idf1"] >= ROBOFLOW_BYTETRACK[1], result
    assert result["id_switches"] <= 2 and result["precision"] > 0.95 and result["recall"] > 0.9


@pytest.mark.slow
def test_side_by_side_with_roboflow_trackers_on_the_same_detections(pets09: Path, yolox_path: Path):
    r = run_cli("eval", "track", str(pets09), "--fps", "7", "--model", str(yolox_path), "--compare", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["tracker"]: row for row in json.loads(r.stdout.strip().splitlines()[-1])["rows"]}
    assert set(rows) == {"zastava", "trackers ByteTrack", "trackers OC-SORT"}
    assert "trackers ByteTrack" in r.stdout and "ms/frame" in r.stdout
    # The baselines reproduce the figures: same detections, same scoring.
    for name, (mota, idf1) in (("trackers ByteTrack", ROBOFLOW_BYTETRACK), ("trackers OC-SORT", ROBOFLOW_OCSORT)):
        assert (rows[name]["mota"], rows[name]["idf1"]) == pytest.approx((mota, idf1), abs=0.001), rows[name]
    ours = rows.pop("zastava")
    assert ours["mota"] >= max(row["mota"] for row in rows.values()), (ours, rows)
    assert ours["idf1"] >= max(row["idf1"] for row in rows.values()), (ours, rows)
