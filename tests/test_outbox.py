"""The outbox: sequence numbers, bounds and eviction order, a stalled disk, refused publishes."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest

import edge.outbox as outbox_module
import edge.publisher as publisher_module
from brokers import Mosquitto
from edge.alerts import AlertRecord, fit_on_the_wire
from edge.config import MqttSettings, NodeIdentity, OutboxSettings
from edge.contract import MAX_BYTES, Kind
from edge.delivery_bench import sample_alert
from edge.outbox import Outbox
from edge.publisher import Publisher


def record(i: int, severity: str = "medium") -> AlertRecord:
    alert = sample_alert(i, when=dt.datetime(2026, 11, 22, 12, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=i))
    return AlertRecord(alert.model_copy(update={"severity": severity}), b"\xff\xd8\xff\xe0 jpeg bytes")


def test_sequence_numbers_only_grow_across_restarts(tmp_path: Path):
    ob = Outbox(tmp_path / "o.db", OutboxSettings())
    assert ob.store([record(i) for i in range(3)]) == [1, 2, 3]
    ob.delete([1, 2, 3])
    ob.close()
    ob = Outbox(tmp_path / "o.db", OutboxSettings())
    assert ob.store([record(10)]) == [4], "a number is never given twice, even after the rows are gone"
    pending = ob.pending(0, 10)
    assert [p.seq for p in pending] == [4] and b'"sequence":4' in pending[0].alert
    assert ob.counter("published") == 3 and ob.last_sequence() == 4
    ob.close()


def test_the_same_alert_is_stored_once(tmp_path: Path):
    ob = Outbox(tmp_path / "o.db", OutboxSettings())
    again = record(1)
    assert ob.store([again, again]) == [1, 0]
    assert ob.depth()[0] == 1
    ob.close()


def test_a_full_outbox_drops_the_oldest_least_severe_first(tmp_path: Path):
    ob = Outbox(tmp_path / "o.db", OutboxSettings(max_alerts=10))
    severities = ["high", "low", "critical", "low", "medium", "info", "high", "medium", "low", "high"]
    first = [record(i, s) for i, s in enumerate(severities)]
    later = [record(100, "high"), record(101, "high"), record(102, "critical")]
    ob.store(first)
    ob.store(later)
    kept = {p.id for p in ob.pending(0, 100)}
    # The info alert first, then the two oldest lows; the newest low (8) and everything else stay.
    expected = {r.alert.id for r in first + later} - {first[i].alert.id for i in (5, 1, 3)}
    assert kept == expected
    assert ob.counter("evicted") == 3
    ob.close()
    assert Outbox(tmp_path / "o.db", OutboxSettings(max_alerts=10)).counter("evicted") == 3, "the count survives restarts"


def test_alerts_older_than_the_limit_are_dropped_and_counted(tmp_path: Path):
    now = [1000.0]
    ob = Outbox(tmp_path / "o.db", OutboxSettings(max_age_s=60), clock=lambda: now[0])
    old, new = record(1), record(2)
    ob.store([old])
    now[0] += 61
    ob.store([new])
    assert [p.id for p in ob.pending(0, 10)] == [new.alert.id]
    assert ob.counter("evicted") == 1
    assert ob.depth()[2] == pytest.approx(0.0)
    ob.close()


def test_a_stalled_disk_never_blocks_the_cameras(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(outbox_module, "MEMORY_QUEUE", 5)
    ob = Outbox(tmp_path / "o.db", OutboxSettings())
    records = [record(i, sev) for i, sev in enumerate(["critical", "low", "high", "info", "medium", "high", "critical",
                                                         "high"])]
    ob._lock.acquire()  # the disk stalls: the writer thread waits on its first write
    try:
        start = time.perf_counter()
        ob.put(records[0])
        time.sleep(0.3)  # the writer has taken that one and is stuck with it
        for rec in records[1:]:
            ob.put(rec)
        assert time.perf_counter() - start < 1.0, "put() returned at once although nothing could be written"
    finally:
        ob._lock.release()
    assert ob.flush(10)
    ids = {p.id for p in ob.pending(0, 100)}
    # 7 waited in a queue of 5: the info one and then the low one were dropped.
    assert ids == {r.alert.id for r in records} - {records[3].alert.id, records[1].alert.id}
    assert ob.counter("evicted") == 2
    ob.close()


def test_an_alert_too_big_for_the_wire_loses_path_points_not_itself():
    alert = sample_alert(1)
    huge = alert.model_copy(update={"path": alert.path * 200, "track_ids": list(range(3000))})
    assert len(huge.to_json()) > MAX_BYTES[Kind.ALERT]
    fitted = fit_on_the_wire(huge)
    assert len(fitted.to_json()) <= MAX_BYTES[Kind.ALERT] and fitted.id == alert.id and fitted.path


def test_an_alert_the_broker_refuses_stays_in_the_outbox(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(publisher_module, "RETRY_REJECTED_S", 0.3)
    acl = tmp_path / "acl"
    # The node may say it is online, but not publish alerts.
    acl.write_text("user node-1\ntopic write zastava/v1/+/+/status\ntopic write zastava/v1/+/+/config/state\n")
    with Mosquitto(tmp_path / "broker", extra=f"acl_file {acl}") as broker:
        ob = Outbox(tmp_path / "o.db", OutboxSettings())
        pub = Publisher(MqttSettings(broker=broker.url), NodeIdentity(site="bench", id="node-1"), ob)
        pub.start()
        ob.put(record(1))
        end = time.monotonic() + 15
        while pub.rejected < 2 and time.monotonic() < end:
            time.sleep(0.05)
        depth = ob.depth()[0]
        pub.stop(1)
        ob.close()
    assert pub.rejected >= 2, "refused, then tried again"
    assert depth == 1 and pub.published == 0, "a refused alert is kept, not counted as delivered"
