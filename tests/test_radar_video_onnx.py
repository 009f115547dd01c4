"""The radar-picture detector path (`video.detector: onnx`) with a real model trained here
(tests/radar_picture_model.py): it finds blips on rendered PPIs, and on generated CAT240 video its
boxes become plots in range and azimuth that the tracker turns into the log's real trajectories."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import require_module
from edge.evaluation.radar_video import Scenario, evaluate, generate, target_picture
from radar_picture_model import SIZE_PX, train_blip_model

pytestmark = [pytest.mark.export, pytest.mark.slow]  # about a minute of training


@pytest.fixture(scope="module")
def blip_model(tmp_path_factory) -> Path:
    require_module("ultralytics")
    return train_blip_model(tmp_path_factory.mktemp("blip-model"))


def test_the_trained_model_finds_blips_on_radar_pictures(blip_model: Path):
    from edge.detect import Detector, DetectorConfig
    from edge.radar.ppi import PpiRenderer

    det = Detector(DetectorConfig(model=str(blip_model), conf=0.25))
    assert det.layout.value == "ultralytics" and det.names == ("blip",)
    sc = Scenario(fixed_returns=False)
    rng = np.random.default_rng(99)  # pictures it never saw: Swerling 1 (fluctuating) targets at 20 dB
    renderer = PpiRenderer(SIZE_PX)
    found = missed = false = 0
    errors = []
    for _ in range(6):
        img, uv = target_picture(sc, renderer, rng, targets=30, snr_db=(20.0, 20.0), swerling=1)
        d = det.detect(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
        centres = np.column_stack([(d.xyxy[:, 0] + d.xyxy[:, 2]) / 2, (d.xyxy[:, 1] + d.xyxy[:, 3]) / 2])
        dist = np.hypot(centres[:, None, 0] - uv[None, :, 0], centres[:, None, 1] - uv[None, :, 1])
        hit = (dist < 3.0).any(axis=0)
        found, missed = found + int(hit.sum()), missed + int((~hit).sum())
        false += int(((dist < 3.0).sum(axis=1) == 0).sum())
        errors += dist.min(axis=0)[hit].tolist()
    # CA-CFAR at Pfa 1e-6 sees 84% of these (Swerling 1, 20 dB); the model, trained a minute, most of them
    assert found / (found + missed) > 0.6, (found, missed)
    assert false / 6 < 1.5  # false blips per picture of 200,000 pixels
    assert np.median(errors) < 1.0  # pixels of 15 m: its box centres are on the blips


def test_onnx_plots_track_the_real_trajectories(blip_model: Path, data_dir: Path, tmp_path: Path):
    # a picture model has no clutter map: the scenario has no coast or buildings (they would be blips)
    sc = Scenario(duration_s=100, preroll_s=10, fixed_returns=False)
    pcap, truth_path = tmp_path / "tracks.pcap", tmp_path / "tracks.json"
    truth = generate(sc, pcap, truth_path, log=data_dir / "radar" / "nmea" / "arpa" / "RadarLogs.txt")
    r = evaluate(pcap, truth, overrides={"detector": "onnx",
                                         "onnx": {"model": {"model": str(blip_model), "conf": 0.25}, "size_px": SIZE_PX}})
    assert r.sweeps == truth["sweeps"] and r.pd == [] and math.isnan(r.pfa_measured)  # no CFAR, no Pfa
    assert r.targets_confirmed == r.targets == ["01", "02"]
    assert r.position_rms_m < r.cell_m  # within one range cell, as the CFAR path
    assert all(t["coverage"] > 0.5 for t in r.per_track), r.per_track
    assert r.false_tracks == 0
