"""Node config validation: every problem found, each named by file, field path and reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO, run_cli
from edge.config import ConfigError, json_schema, load_config, parse_config

BASE = """
node: {site: river-post, id: node-01}
cameras:
  - id: cam1
    source: clip.mp4
    zones:
      - {id: bank, points: [[0, 0], [100, 0], [100, 100], [0, 100]]}
    lines:
      - {id: road, points: [[0, 50], [100, 50]]}
    rules:
      - {id: r1, type: intrusion, zone: bank, dwell_s: 2}
      - {id: r2, type: line_crossing, line: road}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse_config(text, "post.yaml")
    return e.value.problems


def test_valid_config_loads():
    cfg = parse_config(BASE)
    cam = cfg.cameras[0]
    assert cfg.node.site == "river-post" and cam.rules[0].dwell_s == 2 and cam.rules[1].type == "line_crossing"
    assert cam.detector.model == "yolox-nano" and cam.rules[0].anchor == "bottom_center"


def test_polygon_needs_three_points_with_the_path():
    text = BASE.replace("[[0, 0], [100, 0], [100, 100], [0, 100]]", "[[0, 0], [100, 0]]")
    assert problems(text) == ["post.yaml: cameras[0].zones[0].points: a polygon needs at least 3 points"]


def test_every_problem_is_listed():
    text = """
node: {site: River Post, id: node-01, lat: 123}
cameras:
  - id: cam1
    source: clip.mp4
    zones:
      - {id: a, points: [[0, 0], [10, 0], [0, 10], [10, 10]]}
      - {id: b, points: [[0, 0], [2, 0], [1.5, 3]], coordinates: normalized}
    lines:
      - {id: l, points: [[5, 5], [5, 5]]}
    rules:
      - {id: r1, type: intrusion, zone: nowhere}
      - {id: r2, type: teleport, zone: a}
      - {id: r3, type: crowding, zone: a}
      - {id: r4, type: intrusion, zone: a, dwell_s: -1, severity: apocalyptic}
"""
    found = problems(text)
    expected = [
        "post.yaml: node.site: String should match pattern",
        "post.yaml: node.lat: Input should be less than or equal to 90",
        "post.yaml: cameras[0].zones[0].points: the polygon's edges 1 and 3 cross each other",
        "post.yaml: cameras[0].zones[1].points[1]: (2.0, 0.0) is outside 0..1 for normalized coordinates",
        "post.yaml: cameras[0].lines[0].points: the line's two points are the same",
        "post.yaml: cameras[0].rules[1]: Input tag 'teleport' found using 'type' does not match any of the expected tags",
        "post.yaml: cameras[0].rules[2].max_count: Field required",
        "post.yaml: cameras[0].rules[3].dwell_s: Input should be greater than or equal to 0",
        "post.yaml: cameras[0].rules[3].severity: Input should be 'info', 'low', 'medium', 'high' or 'critical'",
    ]
    for e in expected:
        assert any(p.startswith(e) for p in found), f"missing {e!r} in {found}"
    assert len(found) == len(expected)


def test_references_and_duplicates_are_checked():
    text = BASE.replace("zone: bank, dwell_s: 2", "zone: river, dwell_s: 2").replace("{id: r2,", "{id: r1,")
    assert problems(text) == [
        "post.yaml: cameras[0].rules[1].id: 'r1' is already used by rules[0]",
        "post.yaml: cameras[0].rules[0].zone: no zone 'river' on this camera (defined: bank)",
    ]


def test_unknown_fields_are_refused():
    assert problems(BASE.replace("dwell_s: 2}", "dwell_s: 2, dwel: 3}")) == [
        "post.yaml: cameras[0].rules[0].dwel: Extra inputs are not permitted"
    ]


def test_yaml_syntax_error_has_line_and_column():
    found = problems("node: {site: a\ncameras: [")
    assert len(found) == 1 and found[0].startswith("post.yaml:") and "not valid YAML" in found[0]


def test_secrets_come_from_the_environment(monkeypatch):
    text = BASE.replace("source: clip.mp4", "source: rtsp://${CAM_USER}:${CAM_PASS}@10.0.0.5/s")
    assert problems(text) == [
        "post.yaml: cameras[0].source: environment variable CAM_USER is not set",
        "post.yaml: cameras[0].source: environment variable CAM_PASS is not set",
    ]
    monkeypatch.setenv("CAM_USER", "op")
    monkeypatch.setenv("CAM_PASS", "s3cret")
    assert parse_config(text).cameras[0].source == "rtsp://op:s3cret@10.0.0.5/s"


def test_environment_defaults_as_in_the_shell(monkeypatch):
    text = BASE.replace("source: clip.mp4", "source: ${CLIP_DIR:-/srv/clips}/a.mp4")
    monkeypatch.delenv("CLIP_DIR", raising=False)
    assert parse_config(text).cameras[0].source == "/srv/clips/a.mp4"
    monkeypatch.setenv("CLIP_DIR", "/data")
    assert parse_config(text).cameras[0].source == "/data/a.mp4"


def test_oversized_config_is_refused(tmp_path: Path):
    path = tmp_path / "huge.yaml"
    path.write_text(BASE + "#" * 1_100_000)
    with pytest.raises(ConfigError, match="over the 1000000-byte limit"):
        load_config(path)


def test_unknown_time_zone_and_bad_schedule():
    text = BASE.replace("node: {site: river-post, id: node-01}", "node: {site: river-post, id: node-01, timezone: Mars/Olympus}")
    text = text.replace("dwell_s: 2}", "dwell_s: 2, schedule: {days: [mon, funday], start: '25:00'}}")
    found = problems(text)
    assert any("node.timezone: unknown time zone 'Mars/Olympus'" in p for p in found)
    assert any("rules[0].schedule.days[1]" in p for p in found)
    assert any("rules[0].schedule.start" in p for p in found)


def test_config_validate_command(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE.replace("[[0, 0], [100, 0], [100, 100], [0, 100]]", "[[0, 0], [100, 0]]").replace("dwell_s: 2", "dwell_s: x"))
    r = run_cli("config", "validate", str(bad))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"{bad}: cameras[0].zones[0].points: a polygon needs at least 3 points",
        f"{bad}: cameras[0].rules[0].dwell_s: Input should be a valid number, unable to parse string as a number",
    ]
    good = tmp_path / "good.yaml"
    good.write_text(BASE)
    r = run_cli("config", "validate", str(good))
    assert r.returncode == 0 and "ok" in r.stdout


def test_example_configs_are_valid_and_their_models_know_the_classes(data_dir):
    files = sorted((REPO / "configs").glob("*.yaml"))
    assert len(files) >= 2
    r = run_cli("config", "validate", "--check-models", *map(str, files))
    assert r.returncode == 0, r.stderr


def test_published_schema_is_current():
    published = json.loads((REPO / "configs" / "schemas" / "node-config.schema.json").read_text())
    assert published == json_schema(), "regenerate with: zastava-edge config schema > configs/schemas/node-config.schema.json"
