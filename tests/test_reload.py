"""Config hot reload: a running node takes a valid new config between two frames and keeps
its config when the new one is invalid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO
from edge.config import load_config
from edge.node import EdgeNode
from edge.reload import ConfigReloader

EXTRA_RULE = """
      - id: midline-down
        type: line_crossing
        line: midline
        direction: in
        cooldown_s: 0
"""
BROKEN_ZONE = ("[[560, 440], [880, 440], [880, 700], [560, 700]]", "[[560, 440], [880, 440]]")


@pytest.fixture
def hall_config(tmp_path: Path, data_dir: Path) -> Path:
    text = (REPO / "configs" / "hall-vtest.yaml").read_text().replace("${ZASTAVA_DATA}", str(data_dir))
    path = tmp_path / "node.yaml"
    path.write_text(text)
    return path


def test_reloader_keeps_the_old_config_when_the_new_one_is_invalid(hall_config: Path):
    applied = []
    current = load_config(hall_config)
    reloader = ConfigReloader(hall_config, current, applied.append)
    assert reloader.check() == "unchanged"
    hall_config.write_text(hall_config.read_text().replace(*BROKEN_ZONE))
    assert reloader.check(force=True) == "rejected"
    assert reloader.current is current and applied == []
    assert reloader.last_error == [f"{hall_config}: cameras[0].zones[0].points: a polygon needs at least 3 points"]
    hall_config.write_text(hall_config.read_text().replace(*reversed(BROKEN_ZONE)) + EXTRA_RULE)
    assert reloader.check(force=True) == "applied"
    assert [r.id for r in applied[0].cameras[0].rules][-1] == "midline-down" and reloader.current is applied[0]


@pytest.mark.slow
def test_node_applies_a_new_config_between_frames_without_dropping_any(hall_config: Path):
    events: list[tuple[int, str]] = []
    reload_at = 120
    state = {}

    def on_frame(worker, result) -> None:
        events.extend((result.frame.index, e.rule.id) for e in result.events)
        if result.frame.index == reload_at:
            # An invalid edit first: rejected, nothing changes.
            hall_config.write_text(hall_config.read_text().replace(*BROKEN_ZONE))
            state["invalid"] = node.reloader.check(force=True)
            hall_config.write_text(hall_config.read_text().replace(*reversed(BROKEN_ZONE)) + EXTRA_RULE)
            state["valid"] = node.reloader.check(force=True)

    node = EdgeNode(hall_config, sink=lambda rec: None, on_frame=on_frame, reload_interval_s=3600)
    node.run()
    worker = node.workers["hall"]
    assert worker.error is None and worker.frames == 341, "every frame of the recording was processed"
    assert state == {"invalid": "rejected", "valid": "applied"}
    new_rule_frames = [i for i, rule in events if rule == "midline-down"]
    assert new_rule_frames and min(new_rule_frames) > reload_at, "the new rule took effect after the reload"
    assert any(rule == "plaza-intrusion" and i > reload_at for i, rule in events), "the old rules kept working"
    assert worker.pipeline.reloads == 1


@pytest.mark.slow
def test_run_reloads_on_sighup_and_rejects_an_invalid_config(hall_config: Path, data_dir: Path):
    env = {**os.environ, "ZASTAVA_DATA": str(data_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "-c", str(hall_config)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    alerts: list[dict] = []
    reader = threading.Thread(target=lambda: alerts.extend(json.loads(line) for line in proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not alerts and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alerts, "the node raised no alert"
        hall_config.write_text(hall_config.read_text().replace(*BROKEN_ZONE))
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        hall_config.write_text(hall_config.read_text().replace(*reversed(BROKEN_ZONE)) + EXTRA_RULE)
        proc.send_signal(signal.SIGHUP)
        stderr = proc.communicate(timeout=120)[1]
    finally:
        proc.kill()
    reader.join(5)
    assert proc.returncode == 0, stderr
    assert f"config rejected: {hall_config}: cameras[0].zones[0].points: a polygon needs at least 3 points" in stderr
    assert "keeping the running config" in stderr
    assert "341 frame(s)" in stderr and "1 config reload(s), 1 rejected" in stderr
    assert any(a["rule"] == "midline-down" for a in alerts), "the reloaded rule raised alerts"
