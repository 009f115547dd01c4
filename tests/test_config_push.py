"""Configs pushed from central to a node: applied without a restart, rejected with reasons (the
running one kept), reported on config/state, and still in force after the node restarts."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from brokers import Mosquitto
from conftest import REPO
from edge.config import parse_config
from edge.config_push import STATE_FILE, ConfigPush, load_persisted
from edge.contract import ConfigMessage
from test_console_browser import DEAD_CAMERA
from test_delivery import edge_config, start_edge

UTC = dt.timezone.utc
HALL = (REPO / "configs" / "hall-vtest.yaml").read_text()
SITE, NODE = "demo-hall", "hall-01"


def message(version: str, text: str = HALL, **changes) -> bytes:
    data = yaml.safe_load(text)
    for path, value in changes.items():
        node = data
        *parents, last = path.split(".")
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[last] = value
    return ConfigMessage(version=version, issued_at=dt.datetime.now(UTC), author="olek", config=data
                         ).model_dump_json().encode()


@pytest.fixture
def local(monkeypatch, data_dir):
    monkeypatch.setenv("ZASTAVA_DATA", str(data_dir))
    text = HALL + "mqtt:\n  broker: mqtt://127.0.0.1:1\noutbox:\n  max_alerts: 500\n"
    return parse_config(text)


class Recorder:
    def __init__(self, config):
        self.config = config
        self.applied: list = []
        self.reports: list = []

    def apply(self, new):
        self.applied.append(new)
        self.config = new

    def report(self, state, errors, desired):
        self.reports.append((state, errors, desired))


def test_a_valid_push_is_applied_and_persisted_with_the_nodes_own_link(local, tmp_path):
    rec = Recorder(local)
    push = ConfigPush(tmp_path, lambda: rec.config, rec.apply, rec.report)
    pushed = message("v3", **{"cameras.0.rules.0.dwell_s": 2.0, "mqtt": {"broker": "mqtt://evil:1883"}})
    assert push.handle(pushed) == "applied"
    (new,) = rec.applied
    assert new.version == "v3" and new.cameras[0].rules[0].dwell_s == 2.0
    assert new.mqtt == local.mqtt and new.outbox == local.outbox  # the node's link to central is its own
    assert new.cameras[0].source.endswith("/video/vtest.avi") and "${" not in new.cameras[0].source
    assert json.loads((tmp_path / STATE_FILE).read_text())["version"] == "v3"
    assert push.handle(pushed) == "unchanged"  # the retained copy again, after a reconnect
    restored = load_persisted(tmp_path, local)
    assert restored == new


@pytest.mark.parametrize("payload,reason", [
    (message("v4", **{"cameras.0.rules.0.dwell_s": -1}), "cameras[0].rules[0].dwell_s: Input should be greater"),
    (message("v4", **{"node.id": "another-node"}), "the config is for demo-hall/another-node"),
    (message("v4", **{"cameras.0.source": "${NOT_SET_ANYWHERE}"}), "environment variable NOT_SET_ANYWHERE is not set"),
    (b'{"version": "v4", "config": 5}', "config message from central"),
])
def test_a_bad_push_is_rejected_with_its_reasons_and_the_running_config_kept(local, tmp_path, payload, reason):
    rec = Recorder(local)
    push = ConfigPush(tmp_path, lambda: rec.config, rec.apply, rec.report)
    assert push.handle(payload) == "rejected"
    assert rec.applied == [] and rec.config is local
    ((state, errors, desired),) = rec.reports
    assert state == "rejected" and any(reason in e for e in errors), errors
    assert not (tmp_path / STATE_FILE).exists()
    if desired == "v4":
        assert push.handle(payload) == "unchanged"  # not re-reported on every reconnect


class StateWatcher:
    """Reads the node's retained config/state as central would."""

    def __init__(self, port: int):
        self.states: list[dict] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="push-test", protocol=mqtt.MQTTv5)
        self.client.on_message = lambda c, u, m: self.states.append(json.loads(m.payload)) if m.payload else None
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"zastava/v1/{SITE}/{NODE}/config/state", qos=1)
        self.client.loop_start()

    def push(self, payload: bytes) -> None:  # what central's ConfigService publishes
        self.client.publish(f"zastava/v1/{SITE}/{NODE}/config", payload, qos=1, retain=True).wait_for_publish(5)

    def wait(self, pred, timeout: float = 60) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for s in reversed(self.states):
                if pred(s):
                    return s
            time.sleep(0.1)
        raise AssertionError(f"no such config/state; saw {self.states[-3:]}")

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.slow
def test_a_running_node_applies_rejects_and_keeps_pushed_configs_across_a_restart(tmp_path, data_dir):
    broker = Mosquitto(tmp_path / "broker").start()
    text = edge_config(tmp_path, data_dir, broker.port).read_text().replace("mqtt:\n", DEAD_CAMERA + "mqtt:\n", 1)
    cfg = tmp_path / "node.yaml"
    cfg.write_text(text)
    central_text = text.replace(str(data_dir), "${ZASTAVA_DATA}")
    watcher = StateWatcher(broker.port)
    log = tmp_path / "edge.log"
    edge = start_edge(cfg, tmp_path / "state", log)
    try:
        watcher.wait(lambda s: s["state"] == "applied" and s["applied_version"] is None)  # the file's config
        watcher.push(message("v7", central_text, **{"cameras.0.rules.0.dwell_s": -1}))
        bad = watcher.wait(lambda s: s["state"] == "rejected")
        assert bad["desired_version"] == "v7" and bad["applied_version"] is None
        assert any("cameras[0].rules[0].dwell_s" in e for e in bad["errors"])
        watcher.push(message("v8", central_text, **{"cameras.0.rules.0.dwell_s": 3.0}))
        good = watcher.wait(lambda s: s["state"] == "applied" and s["applied_version"] == "v8")
        assert good["errors"] == [] and edge.poll() is None
        # Central's retained copy goes away; the node restarts and still runs v8 from its state folder.
        watcher.client.publish(f"zastava/v1/{SITE}/{NODE}/config", b"", qos=1, retain=True).wait_for_publish(5)
        edge.terminate()
        edge.wait(60)
        watcher.states.clear()
        edge = start_edge(cfg, tmp_path / "state", log)
        again = watcher.wait(lambda s: s["state"] == "applied")
        assert again["applied_version"] == "v8"
        assert "running config v8 pushed by central" in log.read_text()
    finally:
        edge.terminate()
        try:
            edge.wait(60)
        except Exception:
            edge.kill()
        watcher.close()
        broker.stop()
    assert Path(tmp_path / "state" / STATE_FILE).exists()
