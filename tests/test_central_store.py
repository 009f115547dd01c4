"""Central's store on real databases: an SQLite file, and the PostgreSQL that CI runs.

Every PostgreSQL test gets a database of its own (created, then dropped), so tests never see
each other's rows, nor those of a test run beside them. $ZASTAVA_TEST_PG_URL names the server
(default postgresql://postgres@127.0.0.1:5432/postgres); these tests never skip.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import uuid

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from ulid import ULID

from central.store import AlertFilters, InvalidCursor, Store, StoreError, alerts, reason_key
from edge.contract import Alert, CameraHealth, ConfigState, Heartbeat, SnapshotInfo, Status

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PG_URL = os.environ.get("ZASTAVA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4


# --- helpers the API tests share ----------------------------------------------------------------

def make_alert(i: int = 0, *, t: dt.datetime | None = None, site: str = "river-post", node: str = "node-1",
               camera: str = "cam-1", rule: str = "bank-intrusion", severity: str = "high", cls: str = "person",
               sequence: int | None = None, alert_id: str | None = None) -> Alert:
    when = t or T0 + dt.timedelta(seconds=i)
    return Alert.model_validate({
        "id": alert_id or str(ULID.from_datetime(when)),
        "site": site, "node": node, "camera": camera, "rule": rule, "rule_type": "intrusion", "severity": severity,
        "zone": "riverbank", "class": cls, "score": 0.71, "best_score": 0.88, "track_id": i, "track_ids": [i],
        "time": when, "started": when - dt.timedelta(seconds=2), "first_seen": when - dt.timedelta(seconds=5),
        "last_seen": when, "frame": i, "media_time": i / 10, "bbox": (10.0, 20.0, 110.5, 220.0),
        "frame_size": (1280, 720), "path": [{"t": when, "x": 60.0, "y": 220.0}],
        "snapshot": SnapshotInfo(width=640, height=360, bytes=len(JPEG), sha256="0" * 64),
        "sequence": sequence if sequence is not None else i + 1,
    })


class PostgresDatabases:
    """Creates uniquely named databases on the test server and drops them again."""

    def __init__(self, base_url: str, prefix: str):
        self.base = make_url(base_url)
        self.prefix = prefix
        self.created: list[str] = []

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(self.base.set(drivername="postgresql").render_as_string(hide_password=False),
                               autocommit=True)

    def new(self) -> str:
        name = f"{self.prefix}_{uuid.uuid4().hex[:10]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.base.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(self.base.set(database=name).render_as_string(hide_password=False))


@pytest.fixture(scope="module")
def pg_databases(request):
    dbs = PostgresDatabases(PG_URL, f"zastava_test_{request.module.__name__.removeprefix('test_')[:20]}")
    try:
        dbs._admin().close()
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL at {PG_URL} does not answer ({e}); set $ZASTAVA_TEST_PG_URL")
    yield dbs
    dbs.drop_all()


@pytest.fixture
def store_url(request, tmp_path, pg_databases):
    """A fresh, empty database URL for the backend the test is parametrized with."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'central.db'}"
        return
    url = pg_databases.new()
    yield url
    pg_databases.drop(url)


BACKENDS = pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def store(store_url):
    s = Store(store_url)
    yield s
    s.close()


def count_rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(alerts)).scalar_one()


def node_row(store: Store, site: str = "river-post", node: str = "node-1") -> dict:
    return next(n for n in store.nodes() if (n["site"], n["node"]) == (site, node))


# --- idempotent ingest ---------------------------------------------------------------------------

@BACKENDS
def test_the_same_alert_twice_is_one_row(store):
    a = make_alert(1)
    got = dt.datetime.now(UTC)
    assert store.add_alerts([(a, got)]) == 1
    assert store.add_alerts([(a, got + dt.timedelta(seconds=3))]) == 0  # redelivered (QoS 1)
    assert count_rows(store) == 1
    assert node_row(store)["alerts"] == 1
    stored = store.get_alert(a.id)
    assert stored["received_at"] == got  # the first receipt is kept
    wire = {k: v for k, v in stored.items() if k in Alert.model_fields or k == "class"}
    assert Alert.model_validate(wire) == a  # the contract's JSON, as sent
    assert {k: stored[k] for k in ("id", "class", "severity", "sequence")} == \
        {"id": a.id, "class": "person", "severity": "high", "sequence": 2}


@BACKENDS
def test_a_batch_with_internal_and_earlier_duplicates(store):
    got = dt.datetime.now(UTC)
    a, b, c, d = (make_alert(i, node="node-1" if i % 2 else "node-2") for i in range(4))
    assert store.add_alerts([(a, got), (b, got), (a, got)]) == 2
    # b is a redelivery; c and d are new and belong to two nodes: the counts must stay exact
    assert store.add_alerts([(c, got), (b, got), (d, got), (c, got)]) == 2
    assert count_rows(store) == 4
    assert node_row(store, node="node-1")["alerts"] == 2
    assert node_row(store, node="node-2")["alerts"] == 2
    assert store.add_alerts([]) == 0


@BACKENDS
@pytest.mark.parametrize("how", ["skip_known", "returning"])
def test_each_way_in_counts_the_same(store, how):
    """The store falls back from its fast path when a batch holds stored alerts; every way in
    must store the same rows and count the same new ones."""
    from central.store import _alert_row

    items = [make_alert(i, node=f"node-{i % 2}") for i in range(6)]
    store.add_alerts([(a, T0) for a in items[:3]])
    assert store._store_alerts([_alert_row(a, T0) for a in items], how) == 3
    assert count_rows(store) == 6
    assert [n["alerts"] for n in store.nodes()] == [3, 3]


@BACKENDS
def test_a_nul_character_does_not_sink_the_batch(store):
    """The contract lets NUL through in free-text names; PostgreSQL text cannot hold it."""
    odd = make_alert(1).model_copy(update={"camera": "cam\x00-1"})
    assert store.add_alerts([(make_alert(0), T0), (odd, T0)]) == 2
    stored = store.get_alert(odd.id)
    assert stored["camera"] == "cam\x00-1"  # the payload keeps what the node sent
    page, _ = store.list_alerts(AlertFilters(camera="cam\ufffd-1"), None, 10)
    assert [r["id"] for r in page] == [odd.id]
    store.add_dead_letter("zastava/v1/a/b/alert", "bad \x00 reason", b"\x00", T0)
    store.update_status(Status(site="river-post", node="node-1", state="online", time=T0, software="x\x00"), T0)
    store.acknowledge(odd.id, "ana\x00", "note\x00")


@BACKENDS
def test_node_rows_follow_the_alerts(store):
    got = T0 + dt.timedelta(minutes=5)
    batch = [(make_alert(i, sequence=s), got) for i, s in enumerate([7, 3, 9, 8])]
    store.add_alerts(batch)
    store.add_alerts([(make_alert(10, sequence=4), got - dt.timedelta(minutes=1))])  # late and out of order
    n = node_row(store)
    assert (n["alerts"], n["last_sequence"], n["state"]) == (5, 9, "unknown")
    assert n["last_seen"] == got  # never goes back
    assert n["last_event_time"] == T0 + dt.timedelta(seconds=10)


@BACKENDS
def test_concurrent_writers_store_each_alert_once(store):
    """Two replicas (threads) receive the same alerts: one row each, counts exact."""
    items = [(make_alert(i, node=f"node-{i % 3}"), T0) for i in range(1200)]
    errors = []

    def write(order):
        try:
            for k in range(0, len(order), 200):
                store.add_alerts(order[k : k + 200])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(items,)), threading.Thread(target=write, args=(items[::-1],))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert count_rows(store) == 1200
    assert sum(n["alerts"] for n in store.nodes()) == 1200


# --- snapshots -----------------------------------------------------------------------------------

@BACKENDS
def test_snapshot_after_its_alert(store):
    a = make_alert(1)
    store.add_alerts([(a, T0)])
    assert store.get_alert(a.id)["snapshot_url"] is None
    assert store.add_snapshot(a.id, JPEG, T0) is True
    assert store.add_snapshot(a.id, JPEG, T0) is False  # redelivered
    assert store.get_alert(a.id)["snapshot_url"] == f"/api/v1/alerts/{a.id}/snapshot"
    assert store.get_snapshot(a.id) == JPEG
    with store.engine.connect() as conn:
        assert conn.execute(select(alerts.c.has_snapshot).where(alerts.c.id == a.id)).scalar_one() is True


@BACKENDS
def test_snapshot_before_its_alert(store):
    a, other = make_alert(1), make_alert(2)
    assert store.add_snapshot(a.id, JPEG, T0) is True
    assert store.get_snapshot(a.id) == JPEG
    assert store.get_alert(a.id) is None
    store.add_alerts([(a, T0), (other, T0)])
    with store.engine.connect() as conn:
        flags = dict(conn.execute(select(alerts.c.id, alerts.c.has_snapshot)).all())
    assert flags == {a.id: True, other.id: False}
    assert store.get_alert(other.id)["snapshot_url"] is None
    assert store.get_snapshot(other.id) is None


# --- dead letters ----------------------------------------------------------------------------

@BACKENDS
def test_dead_letters_keep_the_start_of_the_payload(store_url):
    store = Store(store_url, dead_letter_max_bytes=16)
    try:
        store.add_dead_letter("zastava/v1/x/y/alert", "alert payload fails the contract: id: pattern", b"{" * 100, T0)
        store.add_dead_letter("t" * 1000, "topic 'tttt' is not a zastava/v1 topic", b"\x00\xff", T0)
        store.add_dead_letter("zastava/v1/x/y/alert/01J/snapshot", "snapshot payload is not a JPEG", b"GIF89a", T0)
        newest, middle, oldest = store.dead_letters(10)
        assert (oldest["reason_key"], oldest["payload"], oldest["size"]) == ("schema", b"{" * 16, 100)
        assert (middle["reason_key"], len(middle["topic"]), middle["payload"]) == ("topic", 300, b"\x00\xff")
        assert newest["reason_key"] == "jpeg"
        assert [d["id"] for d in store.dead_letters(2)] == [newest["id"], middle["id"]]
        stats = store.stats()
        assert stats["dead_letters"] == 3
        assert stats["dead_letters_by_reason"] == {"schema": 1, "topic": 1, "jpeg": 1}
    finally:
        store.close()


def test_reason_keys_name_the_contract_errors():
    assert reason_key("alert payload of 70000 bytes is over the 65536-byte limit") == "size"
    assert reason_key("payload names node a/b but was published on c/d's topic") == "spoofed"
    assert reason_key("heartbeat payload fails the contract: 1 validation error") == "schema"
    assert reason_key("something else broke") == "other"


# --- node state ------------------------------------------------------------------------------

@BACKENDS
def test_status_heartbeat_and_config_state(store):
    online = Status(site="river-post", node="node-1", state="online", time=T0, software="zastava-edge 0.1.0",
                    config_version="v3")
    store.update_status(online, T0 + dt.timedelta(seconds=1))
    n = node_row(store)
    assert (n["state"], n["software"], n["config_version"], n["alerts"]) == ("online", "zastava-edge 0.1.0", "v3", 0)

    # The Last Will carries the time the node wrote it at connect, older than its "online": it still wins.
    will = Status(site="river-post", node="node-1", state="offline", time=T0 - dt.timedelta(seconds=5),
                  software="zastava-edge 0.1.0", reason="connection lost")
    store.update_status(will, T0 + dt.timedelta(minutes=10))
    n = node_row(store)
    assert (n["state"], n["config_version"], n["last_seen"]) == ("offline", "v3", T0 + dt.timedelta(minutes=10))

    def heartbeat(at: dt.datetime, depth: int) -> Heartbeat:
        cam = CameraHealth(camera="cam-1", source_state="connected", fps=9.5, inference_ms=41.0, frames=100,
                           dropped_frames=0, corrupt_frames=0, alerts=2)
        return Heartbeat(site="river-post", node="node-1", time=at, uptime_s=60, cameras=[cam], outbox_depth=depth,
                         outbox_bytes=depth * 1000, outbox_evicted=0, published=5, last_sequence=5, mqtt_reconnects=1,
                         config_version="v4")

    store.update_heartbeat(heartbeat(T0 + dt.timedelta(seconds=30), 7), T0 + dt.timedelta(seconds=31))
    store.update_heartbeat(heartbeat(T0 + dt.timedelta(seconds=20), 99), T0 + dt.timedelta(seconds=32))  # stale
    n = node_row(store)
    assert n["heartbeat"]["outbox_depth"] == 7
    assert n["heartbeat"]["cameras"][0]["fps"] == 9.5
    assert n["heartbeat_time"] == T0 + dt.timedelta(seconds=30)
    assert n["config_version"] == "v4"
    assert n["last_seen"] == T0 + dt.timedelta(minutes=10)  # an earlier receipt does not move it back

    cs = ConfigState(site="river-post", node="node-1", time=T0, state="rejected", desired_version="v5",
                     applied_version="v4", errors=["cameras[0].zones[0].points: a polygon needs at least 3 points"])
    store.update_config_state(cs, T0 + dt.timedelta(hours=1))
    n = node_row(store)
    assert n["config_state"]["state"] == "rejected"
    assert n["config_state_time"] == T0
    assert n["last_seen"] == T0 + dt.timedelta(hours=1)

    store.touch_node("river-post", "node-2", T0)
    assert node_row(store, node="node-2")["state"] == "unknown"
    store.touch_node("river-post", "node-1", T0 + dt.timedelta(hours=2))
    assert node_row(store)["last_seen"] == T0 + dt.timedelta(hours=2)
    assert [n["node"] for n in store.nodes()] == ["node-1", "node-2"]


# --- queries ---------------------------------------------------------------------------------

@BACKENDS
def test_cursor_pages_walk_every_alert_once(store):
    # Several alerts share one event time: the id breaks the tie, so no page boundary drops one.
    items = [make_alert(i, t=T0 + dt.timedelta(seconds=i // 3)) for i in range(50)]
    store.add_alerts([(a, T0) for a in items])
    expected = [a.id for a in sorted(items, key=lambda a: (a.time, a.id), reverse=True)]
    seen, cursor = [], None
    while True:
        page, cursor = store.list_alerts(AlertFilters(), cursor, 7)
        seen += [r["id"] for r in page]
        if cursor is None:
            break
        # an alert arriving meanwhile (newer than everything) does not shift later pages
        store.add_alerts([(make_alert(1000 + len(seen)), T0)])
    assert seen[:50] == expected
    page, cursor = store.list_alerts(AlertFilters(until=T0 + dt.timedelta(seconds=100)), None, 50)
    assert [r["id"] for r in page] == expected and cursor is None


@BACKENDS
def test_filters_in_the_store(store):
    store.add_alerts([(make_alert(i, severity=("low", "high", "critical")[i % 3], node=f"node-{i % 2}"), T0)
                      for i in range(30)])
    f = AlertFilters(since=T0 + dt.timedelta(seconds=10), until=T0 + dt.timedelta(seconds=20),
                     severity=("high", "critical"), node="node-1")
    page, _ = store.list_alerts(f, None, 100)
    expected = [i for i in range(10, 20) if i % 3 and i % 2]
    assert sorted(r["track_id"] for r in page) == expected
    naive = AlertFilters(since=(T0 + dt.timedelta(seconds=28)).replace(tzinfo=None))  # taken as UTC
    assert len(store.list_alerts(naive, None, 100)[0]) == 2


@BACKENDS
def test_a_cursor_we_did_not_hand_out_is_refused(store):
    for bad in ("nonsense!", "bm9wZQ", "MjAyNXxub3RhdWxpZA"):
        with pytest.raises(InvalidCursor):
            store.list_alerts(AlertFilters(), bad, 10)


@BACKENDS
def test_acknowledge_keeps_the_first_time_and_the_latest_word(store):
    a = make_alert(1)
    store.add_alerts([(a, T0)])
    assert store.acknowledge("01ARZ3NDEKTSV4RRFFQ69G5FAV", "ana", None) is None
    first = store.acknowledge(a.id, "ana", "boat checked", at=T0 + dt.timedelta(minutes=1))
    assert (first["acknowledged"], first["acknowledged_by"], first["ack_note"]) == (True, "ana", "boat checked")
    again = store.acknowledge(a.id, "marko", None, at=T0 + dt.timedelta(minutes=9))
    assert again["acknowledged_at"] == T0 + dt.timedelta(minutes=1)
    assert (again["acknowledged_by"], again["ack_note"]) == ("marko", "boat checked")
    third = store.acknowledge(a.id, "marko", "patrol sent")
    assert third["ack_note"] == "patrol sent"
    assert len(store.list_alerts(AlertFilters(acknowledged=False), None, 10)[0]) == 0
    assert len(store.list_alerts(AlertFilters(acknowledged=True), None, 10)[0]) == 1


@BACKENDS
def test_stats_for_metrics(store):
    store.add_alerts([(make_alert(i, node=f"node-{i % 2}"), T0) for i in range(9)])
    store.add_dead_letter("x", "alert payload fails the contract", b"{}", T0)
    store.add_dead_letter("y", "payload names node a/b but was published on c/d's topic", b"{}", T0, key="spoofed")
    s = store.stats()
    assert (s["alerts"], s["dead_letters"], s["dead_letters_by_reason"]) == (9, 2, {"schema": 1, "spoofed": 1})
    assert [(n["node"], n["alerts"], n["last_sequence"]) for n in s["nodes"]] == [("node-0", 5, 9), ("node-1", 4, 8)]
    assert s["nodes"][0]["last_event_time"] == T0 + dt.timedelta(seconds=8)
    store.ping()


# --- opening ---------------------------------------------------------------------------------

def test_urls_that_cannot_be_a_store(tmp_path):
    with pytest.raises(StoreError, match="not supported"):
        Store("mysql://root@localhost/db")
    with pytest.raises(StoreError, match="not a database URL"):
        Store("zastava.db")
    with pytest.raises(StoreError, match="cannot open the database") as e:
        Store("postgresql://nobody:s3cret@127.0.0.1:1/none")
    assert "s3cret" not in str(e.value)
    with pytest.raises(StoreError, match="cannot open the database"):
        Store(f"sqlite:///{tmp_path}/no/such/folder/central.db")


def test_a_plain_postgresql_url_uses_psycopg3(pg_databases):
    url = pg_databases.new()
    store = Store(url)
    try:
        assert store.url.drivername == "postgresql+psycopg"
        store.ping()
    finally:
        store.close()
        pg_databases.drop(url)


def test_sqlite_runs_in_wal_mode(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    finally:
        store.close()


# --- throughput ------------------------------------------------------------------------------

@BACKENDS
def test_ingest_throughput(store, store_url):
    """20,000 alerts in batches of 500 all land once; the rate is printed (the measured figure is
    `zastava-central bench ingest`'s, not a timed test's)."""
    items = [make_alert(i, node=f"node-{i % 4}") for i in range(20_000)]
    got = dt.datetime.now(UTC)
    start = time.perf_counter()
    new = sum(store.add_alerts([(a, got) for a in items[k : k + 500]]) for k in range(0, len(items), 500))
    elapsed = time.perf_counter() - start
    backend = make_url(store_url).get_backend_name()
    print(f"\n{backend}: {new} alerts in {elapsed:.2f} s = {new / elapsed:,.0f} alerts/s "
          f"({elapsed / 40 * 1000:.1f} ms per batch of 500)")
    assert new == 20_000
