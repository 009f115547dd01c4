"""Alerts that are never lost: a real Mosquitto, a real central and a real edge node, each killed
and restarted mid-stream. Every alert must reach central exactly once, in order.

The edge node replays vtest.avi with configs/hall-vtest.yaml (24 alerts). Its recording starts
at the file's modification time, so a restarted node raises the same events with the same ids.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from brokers import Mosquitto, wait_port
from conftest import REPO, free_port

pytestmark = pytest.mark.slow

TOKEN = "delivery-test-token-0123456789"
EXPECTED = 24  # alerts of configs/hall-vtest.yaml on vtest.avi


class Central:
    """`zastava-central run` as a process, with its API on a free port and a SQLite file."""

    def __init__(self, workdir: Path, broker_url: str, args: tuple[str, ...] = ()):  # "" when the test starts it itself
        self.args = args  # more `run` options, e.g. ("--config", "central.yaml")
        self.db = workdir / "central.db"
        self.port = free_port()
        self.broker_url = broker_url
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "central.log"

    def start(self) -> Central:
        env = {**os.environ, "ZASTAVA_CENTRAL_TOKENS": TOKEN}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "central.cli", "run", "--broker", self.broker_url, "--db", f"sqlite:///{self.db}",
             "--http", f"127.0.0.1:{self.port}", *self.args], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
            stderr=self.log.open("a"))
        wait_port(self.port, 30)
        return self

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def alerts(self) -> list[dict]:
        rows, cursor = [], None
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            while True:
                r = c.get("/api/v1/alerts", params={"limit": 1000, **({"cursor": cursor} if cursor else {})})
                r.raise_for_status()
                body = r.json()
                rows += body["alerts"]
                cursor = body.get("next_cursor")
                if not cursor:
                    return rows

    def wait_for(self, n: int, timeout: float) -> list[dict]:
        end = time.monotonic() + timeout
        rows: list[dict] = []
        while time.monotonic() < end:
            try:
                rows = self.alerts()
            except httpx.HTTPError:
                rows = []
            if len(rows) >= n:
                return rows
            time.sleep(0.25)
        return rows


def edge_config(tmp: Path, data_dir: Path, broker_port: int) -> Path:
    text = (REPO / "configs" / "hall-vtest.yaml").read_text().replace("${ZASTAVA_DATA}", str(data_dir))
    text += (f"mqtt:\n  broker: mqtt://127.0.0.1:{broker_port}\n  reconnect_min_s: 0.2\n  reconnect_max_s: 2\n"
             f"  heartbeat_s: 1\n")
    path = tmp / "node.yaml"
    path.write_text(text)
    return path


def start_edge(config: Path, state: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "-c", str(config), "--state-dir", str(state),
                             "--flush-timeout", "120"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("a"))


def assert_exactly_once_in_order(rows: list[dict]) -> None:
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == EXPECTED, f"{len(ids)} rows, {len(set(ids))} distinct, {EXPECTED} expected"
    by_arrival = sorted(rows, key=lambda r: (r["received_at"], r["sequence"]))
    seqs = [r["sequence"] for r in by_arrival]
    assert seqs == sorted(seqs), f"central received alerts out of order: {seqs}"


@pytest.fixture
def broker(tmp_path: Path):
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


def saved_before_crash(broker: Mosquitto, needles: list[bytes], timeout: float = 10.0) -> None:
    """Wait until the broker's persistence file holds every one of `needles`."""
    db = broker.dir / "mosquitto.db"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        data = db.read_bytes() if db.exists() else b""
        if all(n in data for n in needles):
            return
        time.sleep(0.1)
    raise AssertionError(f"the broker did not save {needles} within {timeout} s")


def test_broker_killed_for_30_s_loses_nothing(tmp_path: Path, broker: Mosquitto, data_dir: Path):
    central = Central(tmp_path, broker.url).start()
    edge = start_edge(edge_config(tmp_path, data_dir, broker.port), tmp_path / "state", tmp_path / "edge.log")
    try:
        assert central.wait_for(1, 60), "no alert reached central before the outage"
        # A crashed broker keeps what its last autosave wrote (every second here, every minute in
        # deploy/mosquitto): the outage this test means comes after central's session was saved,
        # as a long-running central's is. Killed before that, the session is gone and so is what
        # the node sends before central resubscribes (seen once in CI: 1 of 24 alerts).
        saved_before_crash(broker, [b"zastava-central", b"zastava/v1/+/+/alert"])
        broker.kill()
        time.sleep(30)  # the node goes on raising alerts into its outbox
        broker.start()
        assert edge.wait(150) == 0, (tmp_path / "edge.log").read_text()[-3000:]
        rows = central.wait_for(EXPECTED, 60)
    finally:
        edge.kill()
        central.stop()
    assert_exactly_once_in_order(rows)
    assert "delivered" in (tmp_path / "edge.log").read_text()


def test_edge_killed_and_restarted_loses_nothing_and_duplicates_nothing(tmp_path: Path, broker: Mosquitto, data_dir: Path):
    central = Central(tmp_path, broker.url).start()
    config = edge_config(tmp_path, data_dir, broker.port)
    try:
        edge = start_edge(config, tmp_path / "state", tmp_path / "edge.log")
        assert len(central.wait_for(5, 60)) >= 5
        edge.send_signal(signal.SIGKILL)  # mid-stream, with alerts in flight and in the outbox
        edge.wait(10)
        edge = start_edge(config, tmp_path / "state", tmp_path / "edge.log")
        assert edge.wait(150) == 0, (tmp_path / "edge.log").read_text()[-3000:]
        rows = central.wait_for(EXPECTED, 30)
        time.sleep(1.0)  # anything extra would arrive now
        rows = central.alerts()
    finally:
        central.stop()
    # The restarted node raised the first alerts again: same events, same ids, one row each.
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == EXPECTED
    assert sorted(r["sequence"] for r in rows)[0] == 1


def test_central_killed_and_restarted_loses_nothing(tmp_path: Path, broker: Mosquitto, data_dir: Path):
    central = Central(tmp_path, broker.url).start()
    edge = start_edge(edge_config(tmp_path, data_dir, broker.port), tmp_path / "state", tmp_path / "edge.log")
    try:
        assert central.wait_for(3, 60)
        central.kill()  # its persistent session keeps collecting at the broker
        time.sleep(5)
        central.start()
        assert edge.wait(150) == 0
        rows = central.wait_for(EXPECTED, 60)
    finally:
        edge.kill()
        central.stop()
    assert_exactly_once_in_order(rows)


def test_bad_messages_go_to_dead_letters_and_ingest_goes_on(tmp_path: Path, broker: Mosquitto):
    from ulid import ULID

    central = Central(tmp_path, broker.url).start()
    good = json.loads((REPO / "tests" / "data" / "alert.json").read_text())
    spoofed = {**good, "id": str(ULID()), "node": "node-b"}
    wrong_schema = {**good, "id": str(ULID()), "severity": "apocalyptic"}
    oversized = json.dumps({**good, "id": str(ULID())}) + " " * 70_000  # valid JSON, over 64 KiB
    base = f"zastava/v1/{good['site']}/{good['node']}"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="prankster", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        time.sleep(1.0)  # central subscribed
        for topic, payload in [
            (f"{base}/alert", b"{not json"),
            (f"{base}/alert", json.dumps(wrong_schema).encode()),
            (f"{base}/alert", json.dumps(spoofed).encode()),
            (f"{base}/alert", oversized.encode()),
            (f"{base}/alert/{good['id']}/snapshot", b"GIF89a not a jpeg"),
            (f"{base}/heartbeat", b"[]"),
            (f"{base}/alert", json.dumps(good).encode()),
        ]:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
        rows = central.wait_for(1, 20)
        time.sleep(1.0)
        with httpx.Client(base_url=f"http://127.0.0.1:{central.port}", headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            dead = c.get("/api/v1/dead-letters", params={"limit": 100}).json()
            metrics = c.get("/metrics").text
    finally:
        client.loop_stop()
        client.disconnect()
        central.stop()
    assert [r["id"] for r in rows] == [good["id"]], "the valid alert after the bad ones was stored"
    dead = dead if isinstance(dead, list) else dead.get("dead_letters", dead)
    reasons = " | ".join(d["reason"] for d in dead)
    assert len(dead) == 6, reasons
    for needle in ["fails the contract", "names node post-1/node-b but was published on", "over the 65536-byte limit",
                   "not a JPEG"]:
        assert needle in reasons, f"{needle!r} not in {reasons}"
    assert "dead" in metrics


def test_sigterm_keeps_what_it_could_not_deliver_for_the_next_start(tmp_path: Path, data_dir: Path):
    from conftest import run_cli
    from edge.local_broker import free_port as _free

    port = _free()  # no broker yet: nothing can be delivered
    config = edge_config(tmp_path, data_dir, port)
    edge = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "-c", str(config), "--state-dir", str(tmp_path / "state"),
                             "--flush-timeout", "2"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=(tmp_path / "edge.log").open("a"))
    time.sleep(6)  # some alerts raised into the outbox
    edge.send_signal(signal.SIGTERM)
    assert edge.wait(30) == 0, "a clean stop"
    status = run_cli("outbox", "status", "-c", str(config), "--state-dir", str(tmp_path / "state"), "--json")
    waiting = json.loads(status.stdout)["waiting"]
    assert waiting > 0, status.stderr
    broker = Mosquitto(tmp_path / "broker", port=port).start()
    central = Central(tmp_path, broker.url).start()
    try:
        edge = start_edge(config, tmp_path / "state", tmp_path / "edge.log")
        assert edge.wait(150) == 0
        rows = central.wait_for(EXPECTED, 60)
        with httpx.Client(base_url=f"http://127.0.0.1:{central.port}", headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            nodes = c.get("/api/v1/nodes").json()["nodes"]
    finally:
        central.stop()
        broker.stop()
    assert len({r["id"] for r in rows}) == len(rows) == EXPECTED
    node = nodes[0]
    assert (node["site"], node["node"], node["state"], node["last_sequence"]) == ("demo-hall", "hall-01", "offline", EXPECTED + waiting)
    beat = node["heartbeat"]
    assert beat["cameras"][0]["camera"] == "hall" and beat["cameras"][0]["frames"] > 0 and beat["outbox_depth"] >= 0


def test_the_demo_path_through_the_embedded_broker(tmp_path: Path, data_dir: Path):
    """No broker named: central starts amqtt (MQTT 3.1.1 only); both sides fall back from 5."""
    central = Central(tmp_path, broker_url="")
    port = free_port()
    env = {**os.environ, "ZASTAVA_CENTRAL_TOKENS": TOKEN}
    central.proc = subprocess.Popen([sys.executable, "-m", "central.cli", "run", "--embedded-port", str(port),
                                     "--db", f"sqlite:///{central.db}", "--http", f"127.0.0.1:{central.port}", "--print"],
                                    cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=central.log.open("a"), text=True)
    wait_port(central.port, 30)
    try:
        edge = start_edge(edge_config(tmp_path, data_dir, port), tmp_path / "state", tmp_path / "edge.log")
        assert edge.wait(150) == 0, (tmp_path / "edge.log").read_text()[-2000:]
        rows = central.wait_for(EXPECTED, 60)
    finally:
        central.stop()
    printed = [line for line in central.proc.stdout.read().splitlines() if "demo-hall/hall-01/hall" in line]
    assert len({r["id"] for r in rows}) == EXPECTED
    assert len(printed) == EXPECTED, "central printed each alert as it arrived"
    assert "falling back to 3.1.1" in (tmp_path / "edge.log").read_text()
