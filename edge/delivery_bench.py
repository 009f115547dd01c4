"""Outbox drain benchmark: how fast a backlog of alerts reaches the broker, in order.

A node that was cut off for hours comes back with a full outbox. This fills an outbox with N
alerts while no broker is reachable, then starts the publisher against a real Mosquitto and
times the drain; a subscriber in another process (so it does not share the publisher's
interpreter) checks that every alert arrives and that their sequence numbers only grow.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from edge.alerts import AlertRecord
from edge.config import MqttSettings, NodeIdentity, OutboxSettings
from edge.contract import Alert, Kind, topic
from edge.local_broker import LocalMosquitto


def sample_alert(i: int, site: str = "bench", node: str = "node-1", when: dt.datetime | None = None) -> Alert:
    """A realistic alert (the fields a person-intrusion alert carries), numbered i."""
    from ulid import ULID

    when = when or dt.datetime.now(dt.timezone.utc)
    return Alert.model_validate({
        "id": str(ULID.from_datetime(when)), "site": site, "node": node, "camera": "cam1", "rule": "bank-intrusion",
        "rule_type": "intrusion", "severity": ("low", "medium", "high")[i % 3], "zone": "bank", "class": "person",
        "score": 0.71, "best_score": 0.83, "track_id": i, "track_ids": [i], "time": when, "started": when,
        "first_seen": when, "last_seen": when, "frame": i, "media_time": i / 25, "bbox": [410.0, 220.5, 470.2, 380.9],
        "frame_size": [1280, 720], "path": [{"t": when, "x": 440.0 + k, "y": 380.0 - k} for k in range(10)],
    })


def _subscribe(port: int, expected: int, site: str, node: str, ready, result) -> None:
    """Runs in its own process: counts alerts and checks their sequence numbers only grow."""
    import json

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    state = {"n": 0, "last": 0, "out_of_order": 0, "first": None, "done": None}

    def on_message(client, userdata, msg) -> None:
        seq = json.loads(msg.payload)["sequence"]
        if state["first"] is None:
            state["first"] = time.time()
        if seq <= state["last"]:
            state["out_of_order"] += 1
        state["last"] = max(state["last"], seq)
        state["n"] += 1
        if state["n"] >= expected:
            state["done"] = time.time()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub", protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: (c.subscribe(topic(site, node, Kind.ALERT), qos=1), ready.set())
    client.connect("127.0.0.1", port)
    client.loop_start()
    end = time.time() + 600
    while state["done"] is None and time.time() < end:
        time.sleep(0.05)
    client.loop_stop()
    result.put(state)


@dataclass(frozen=True)
class DrainResult:
    alerts: int
    fill_s: float
    drain_s: float
    rate: float  # alerts per second out of the outbox
    received: int
    out_of_order: int
    inflight: int

    def as_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def run_drain_bench(alerts: int = 100_000, *, inflight: int = 64, broker_url: str | None = None,
                    progress: Callable[[str], None] = lambda msg: None) -> DrainResult:
    from edge.outbox import Outbox
    from edge.publisher import Publisher

    work = Path(tempfile.mkdtemp(prefix="zastava-drain-"))
    outbox = Outbox(work / "outbox.db", OutboxSettings(max_alerts=alerts * 2, max_bytes=10**10))
    started = time.perf_counter()
    base = dt.datetime.now(dt.timezone.utc)
    batch = 5_000
    for start in range(0, alerts, batch):
        outbox.store([AlertRecord(sample_alert(i, when=base + dt.timedelta(milliseconds=i)), None)
                      for i in range(start, min(alerts, start + batch))])
        progress(f"filled {min(alerts, start + batch)}/{alerts}")
    fill_s = time.perf_counter() - started

    broker = None if broker_url else LocalMosquitto(work / "broker").start()
    port = int((broker_url or broker.url).rsplit(":", 1)[1])
    ctx = mp.get_context("spawn")
    ready, result = ctx.Event(), ctx.Queue()
    sub = ctx.Process(target=_subscribe, args=(port, alerts, "bench", "node-1", ready, result), daemon=True)
    sub.start()
    ready.wait(30)
    publisher = Publisher(MqttSettings(broker=f"mqtt://127.0.0.1:{port}", max_inflight=inflight),
                          NodeIdentity(site="bench", id="node-1"), outbox)
    t0 = time.perf_counter()
    publisher.start()
    while outbox.depth()[0]:
        time.sleep(0.05)
    drain_s = time.perf_counter() - t0
    progress(f"drained {alerts} alerts in {drain_s:.1f} s")
    state = result.get(timeout=120)
    sub.join(10)
    publisher.stop(5)
    outbox.close()
    if broker:
        broker.stop()
    return DrainResult(alerts, fill_s, drain_s, alerts / drain_s, state["n"], state["out_of_order"], inflight)
