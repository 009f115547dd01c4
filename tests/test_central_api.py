"""Central's REST API over real databases (an SQLite file and PostgreSQL), through HTTP.

One store per backend is filled once with alerts from two sites, three nodes, several cameras,
classes, rules and severities; every filter is checked against the same selection done in Python.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
from fastapi.testclient import TestClient

from central.api import create_app
from central.metrics import CentralMetrics
from central.settings import CentralSettings, SettingsError, load_settings
from central.store import Store
from edge.contract import CameraHealth, Heartbeat, Status
from test_central_store import JPEG, T0, make_alert, pg_databases  # noqa: F401  (pg_databases: a fixture)

UTC = dt.timezone.utc
TOKEN = "operator-token-0123456789"
OTHER_TOKEN = "second-operator-token-abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SITES = ("river-post", "coast-post")
NODES = {"river-post": ("node-1", "node-2"), "coast-post": ("node-9",)}
CAMERAS = ("cam-1", "cam-2")
CLASSES = ("person", "boat", "car")
RULES = ("bank-intrusion", "pier-crossing")
SEVERITIES = ("info", "low", "medium", "high", "critical")


def _dataset():
    rng = random.Random(7)
    out = []
    for i in range(90):
        site = SITES[i % 2]
        # every 5th alert shares its event time with the one before: pagination must break the tie by id
        t = T0 + dt.timedelta(seconds=(i - (i % 5 == 4)) * 60)
        a = make_alert(i, t=t, site=site, node=rng.choice(NODES[site]), camera=rng.choice(CAMERAS),
                       cls=rng.choice(CLASSES), rule=rng.choice(RULES), severity=rng.choice(SEVERITIES))
        out.append(a)
    return out


ALERTS = _dataset()
ACKED = {a.id for a in ALERTS[::4]}
WITH_SNAPSHOT = ALERTS[3].id


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def filled_store(request, tmp_path_factory, pg_databases):  # noqa: F811
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'central.db'}"
    else:
        url = pg_databases.new()
    store = Store(url)
    received = T0 + dt.timedelta(hours=3)
    for k in range(0, len(ALERTS), 25):
        store.add_alerts([(a, received) for a in ALERTS[k : k + 25]])
    for alert_id in sorted(ACKED):
        store.acknowledge(alert_id, "ana", "seen", at=received)
    store.add_snapshot(WITH_SNAPSHOT, JPEG, received)
    store.update_status(Status(site="river-post", node="node-1", state="online", time=T0, software="zastava-edge 0.1.0",
                               config_version="v2"), received)
    cam = CameraHealth(camera="cam-1", source_state="connected", fps=9.8, inference_ms=40.5, frames=1000,
                       dropped_frames=3, corrupt_frames=0, alerts=12)
    store.update_heartbeat(Heartbeat(site="river-post", node="node-1", time=received, uptime_s=3600.0, cameras=[cam],
                                     outbox_depth=2, outbox_bytes=4096, outbox_oldest_s=1.5, outbox_evicted=0,
                                     published=40, last_sequence=88, mqtt_reconnects=1, config_version="v2"), received)
    store.add_dead_letter("zastava/v1/river-post/node-1/alert", "alert payload fails the contract: id: bad",
                          b'{"id": "nope"}', received)
    store.add_dead_letter("zastava/v1/river-post/node-1/alert/01ARZ3NDEKTSV4RRFFQ69G5FAV/snapshot",
                          "snapshot payload is not a JPEG", b"\x89PNG" + bytes(5000), received)
    yield store
    store.close()


def app_for(store: Store, tokens=(TOKEN, OTHER_TOKEN), metrics: CentralMetrics | None = None) -> TestClient:
    settings = CentralSettings(api_tokens=list(tokens))
    return TestClient(create_app(store, settings, metrics or CentralMetrics()))


@pytest.fixture(scope="module")
def client(filled_store):
    with app_for(filled_store) as c:
        yield c


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [a["id"] for a in response.json()["alerts"]]


def newest_first(alerts) -> list[str]:
    return [a.id for a in sorted(alerts, key=lambda a: (a.time, a.id), reverse=True)]


# --- auth ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/alerts", "/api/v1/nodes", "/api/v1/dead-letters", "/metrics",
                                  f"/api/v1/alerts/{ALERTS[0].id}"])
def test_no_token_no_data(client, path):
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": "Bearer "}, {"Authorization": f"Bearer {TOKEN}x"}):
        r = client.get(path, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
    assert client.get(path, headers={"Authorization": f"Bearer {OTHER_TOKEN}"}).status_code == 200
    r = client.post(f"/api/v1/alerts/{ALERTS[0].id}/ack", json={"operator": "x"})
    assert r.status_code == 401


def test_without_configured_tokens_everything_is_refused(filled_store, monkeypatch):
    monkeypatch.delenv("ZASTAVA_CENTRAL_TOKENS", raising=False)
    with TestClient(create_app(filled_store, CentralSettings(), CentralMetrics())) as c:
        assert c.get("/api/v1/alerts", headers=AUTH).status_code == 401
        assert c.get("/api/v1/alerts", headers={"Authorization": "Bearer "}).status_code == 401
        assert c.get("/metrics", headers=AUTH).status_code == 401
        assert c.get("/healthz").status_code == 200


# --- alerts --------------------------------------------------------------------------------------

def test_alerts_newest_first_with_central_fields(client):
    r = client.get("/api/v1/alerts", headers=AUTH, params={"limit": 1000})
    assert ids(r) == newest_first(ALERTS)
    body = r.json()
    assert body["next_cursor"] is None
    by_id = {a["id"]: a for a in body["alerts"]}
    one = by_id[WITH_SNAPSHOT]
    assert one["class"] == ALERTS[3].class_name and "class_name" not in one
    assert one["snapshot_url"] == f"/api/v1/alerts/{WITH_SNAPSHOT}/snapshot"
    assert dt.datetime.fromisoformat(one["received_at"]) == T0 + dt.timedelta(hours=3)
    assert one["path"][0]["x"] == 60.0 and one["bbox"] == [10.0, 20.0, 110.5, 220.0]
    acked = by_id[ALERTS[0].id]
    assert (acked["acknowledged"], acked["acknowledged_by"], acked["ack_note"]) == (True, "ana", "seen")
    assert by_id[ALERTS[1].id]["acknowledged"] is False and by_id[ALERTS[1].id]["snapshot_url"] is None


FILTERS = [
    ({"site": "coast-post"}, lambda a: a.site == "coast-post"),
    ({"node": "node-2"}, lambda a: a.node == "node-2"),
    ({"camera": "cam-2"}, lambda a: a.camera == "cam-2"),
    ({"class": "boat"}, lambda a: a.class_name == "boat"),
    ({"rule": "pier-crossing"}, lambda a: a.rule == "pier-crossing"),
    ({"severity": "critical"}, lambda a: a.severity == "critical"),
    ({"severity": "high,critical"}, lambda a: a.severity in ("high", "critical")),
    ({"severity": ["low", "info"]}, lambda a: a.severity in ("low", "info")),
    ({"acknowledged": "true"}, lambda a: a.id in ACKED),
    ({"acknowledged": "false"}, lambda a: a.id not in ACKED),
    ({"since": (T0 + dt.timedelta(minutes=30)).isoformat()}, lambda a: a.time >= T0 + dt.timedelta(minutes=30)),
    ({"until": "2025-03-01T12:30:00Z"}, lambda a: a.time < T0 + dt.timedelta(minutes=30)),
    ({"since": "2025-03-01T14:10:00+02:00", "until": "2025-03-01T12:40:00"},  # an offset, and naive = UTC
     lambda a: T0 + dt.timedelta(minutes=10) <= a.time < T0 + dt.timedelta(minutes=40)),
    ({"site": "river-post", "class": "person", "acknowledged": "false", "severity": "medium,high,critical"},
     lambda a: a.site == "river-post" and a.class_name == "person" and a.id not in ACKED
     and a.severity in ("medium", "high", "critical")),
    ({"node": "no-such-node"}, lambda a: False),
]


@pytest.mark.parametrize("query,keep", FILTERS, ids=[str(q) for q, _ in FILTERS])
def test_every_filter(client, query, keep):
    expected = newest_first([a for a in ALERTS if keep(a)])
    assert ids(client.get("/api/v1/alerts", headers=AUTH, params={**query, "limit": 1000})) == expected
    if query.get("node") != "no-such-node":
        assert expected  # the dataset exercises the filter


@pytest.mark.parametrize("page_size", [1, 7, 45, 89])
def test_cursor_pages_walk_the_whole_set(client, page_size):
    for query, keep in ({}, lambda a: True), ({"site": "river-post", "acknowledged": "false"},
                                                lambda a: a.site == "river-post" and a.id not in ACKED):
        seen, cursor, pages = [], None, 0
        while True:
            r = client.get("/api/v1/alerts", headers=AUTH, params={**query, "limit": page_size, "cursor": cursor})
            seen += ids(r)
            pages += 1
            assert len(r.json()["alerts"]) <= page_size
            cursor = r.json()["next_cursor"]
            if cursor is None:
                break
        expected = newest_first([a for a in ALERTS if keep(a)])
        assert seen == expected  # no gaps, no repeats, same order
        assert pages == max(1, -(-len(expected) // page_size))


@pytest.mark.parametrize("params", [
    {"since": "yesterday"}, {"until": "2025-13-01"}, {"limit": 0}, {"limit": 1001}, {"limit": "many"},
    {"severity": "urgent"}, {"severity": "high,,nope"}, {"acknowledged": "perhaps"}, {"cursor": "not-a-cursor"},
    {"cursor": "x" * 500}, {"site": "river\x00post"}, {"camera": "c" * 65}, {"class": "\x1b[31m"},
    {"since": "0001-01-01T00:00:00+01:00"}, {"until": "9999-12-31T23:59:59-01:00"},
    {"cursor": "MDAwMS0wMS0wMVQwMDowMDowMCswMTowMHwwMUFSWjNOREVLVFNWNFJSRkZRNjlHNUZBVg"},  # year 1, +01:00
])
def test_bad_query_values_are_422(client, params):
    r = client.get("/api/v1/alerts", headers=AUTH, params=params)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][0] == "query"


def test_one_alert_and_404s(client):
    a = ALERTS[10]
    r = client.get(f"/api/v1/alerts/{a.id}", headers=AUTH)
    assert r.status_code == 200
    assert (r.json()["id"], r.json()["sequence"], r.json()["class"]) == (a.id, a.sequence, a.class_name)
    unknown = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    for path in (f"/api/v1/alerts/{unknown}", f"/api/v1/alerts/{unknown}/snapshot", f"/api/v1/alerts/{a.id}/snapshot",
                 "/api/v1/alerts/not-an-id", "/api/v1/alerts/%00", f"/api/v1/alerts/{a.id.lower()}/snapshot"):
        r = client.get(path, headers=AUTH)
        assert r.status_code == 404 and "no " in r.json()["detail"]
    assert client.post(f"/api/v1/alerts/{unknown}/ack", headers=AUTH, json={"operator": "ana"}).status_code == 404
    assert client.post("/api/v1/alerts/x%00/ack", headers=AUTH, json={"operator": "ana"}).status_code == 404


def test_snapshot_bytes(client):
    r = client.get(f"/api/v1/alerts/{WITH_SNAPSHOT}/snapshot", headers=AUTH)
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/jpeg"
    assert r.content == JPEG


@pytest.fixture
def fresh_store(filled_store, tmp_path, pg_databases):  # noqa: F811
    """An empty store on the same backend, for tests that change what they find."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}" if filled_store.dialect == "sqlite" else pg_databases.new()
    store = Store(url)
    yield store
    store.close()
    if filled_store.dialect != "sqlite":
        pg_databases.drop(url)


def test_acknowledge(fresh_store):
    a = ALERTS[1]
    fresh_store.add_alerts([(a, T0)])
    client = app_for(fresh_store)
    r = client.post(f"/api/v1/alerts/{a.id}/ack", headers=AUTH, json={"operator": "  marko ", "note": "patrol sent"})
    assert r.status_code == 200, r.text
    first = r.json()
    assert (first["acknowledged"], first["acknowledged_by"], first["ack_note"]) == (True, "marko", "patrol sent")
    r = client.post(f"/api/v1/alerts/{a.id}/ack", headers=AUTH, json={"operator": "ana"})
    again = r.json()
    assert again["acknowledged_at"] == first["acknowledged_at"]
    assert (again["acknowledged_by"], again["ack_note"]) == ("ana", "patrol sent")
    assert client.get(f"/api/v1/alerts/{a.id}", headers=AUTH).json()["acknowledged_by"] == "ana"
    for bad in ({}, {"operator": ""}, {"operator": "   "}, {"operator": "x" * 101},
                {"operator": "a", "note": "n" * 2001}, {"operator": "a", "priority": 1}, {"operator": "a\x00b"},
                {"operator": "a", "note": "\x00"}):
        assert client.post(f"/api/v1/alerts/{a.id}/ack", headers=AUTH, json=bad).status_code == 422, bad
    assert client.get("/api/v1/alerts", headers=AUTH, params={"acknowledged": "false"}).json()["alerts"] == []


# --- nodes, dead letters, metrics, health, docs --------------------------------------------------

def test_nodes(client):
    r = client.get("/api/v1/nodes", headers=AUTH)
    assert r.status_code == 200
    nodes = {(n["site"], n["node"]): n for n in r.json()["nodes"]}
    assert set(nodes) == {(s, n) for s in SITES for n in NODES[s]}
    n1 = nodes[("river-post", "node-1")]
    assert (n1["state"], n1["software"], n1["config_version"]) == ("online", "zastava-edge 0.1.0", "v2")
    assert n1["heartbeat"]["cameras"][0]["fps"] == 9.8 and n1["heartbeat"]["outbox_depth"] == 2
    assert n1["seconds_since_seen"] > 0
    for key, n in nodes.items():
        mine = [a for a in ALERTS if (a.site, a.node) == key]
        assert n["alerts"] == len(mine)
        assert n["last_sequence"] == max(a.sequence for a in mine)
    assert nodes[("coast-post", "node-9")]["state"] == "unknown"
    assert nodes[("coast-post", "node-9")]["heartbeat"] is None


def test_dead_letters(client):
    r = client.get("/api/v1/dead-letters", headers=AUTH)
    assert r.status_code == 200
    png, bad_json = r.json()["dead_letters"]
    assert (bad_json["reason_key"], bad_json["payload_text"]) == ("schema", '{"id": "nope"}')
    assert bad_json["truncated"] is False
    assert (png["reason_key"], png["size"], png["truncated"]) == ("jpeg", 5004, True)
    assert png["payload_text"] is None and png["payload_base64"].startswith("iVBORw")
    assert len(client.get("/api/v1/dead-letters", headers=AUTH, params={"limit": 1}).json()["dead_letters"]) == 1
    assert client.get("/api/v1/dead-letters", headers=AUTH, params={"limit": 0}).status_code == 422


def test_metrics(filled_store):
    metrics = CentralMetrics()
    metrics.received("alert")
    metrics.received("alert")
    metrics.stored(new=1, duplicates=1)
    metrics.dead_letter("schema")
    metrics.observe_batch(2)
    metrics.observe_lag(0.3)
    metrics.observe_lag(-2)  # a node clock ahead of central's
    metrics.snapshot_stored()
    with app_for(filled_store, metrics=metrics) as c:
        r = c.get("/metrics", headers=AUTH)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    for line in (
        'zastava_central_messages_received_total{kind="alert"} 2.0',
        'zastava_central_messages_received_total{kind="heartbeat"} 0.0',
        "zastava_central_alerts_stored_total 1.0",
        "zastava_central_alerts_duplicate_total 1.0",
        'zastava_central_dead_letters_total{reason="schema"} 1.0',
        "zastava_central_snapshots_stored_total 1.0",
        "zastava_central_ingest_batch_size_count 1.0",
        "zastava_central_ingest_lag_seconds_count 2.0",
        'zastava_central_ingest_lag_seconds_bucket{le="0.01"} 1.0',
        "zastava_central_store_up 1.0",
        f"zastava_central_alerts_in_store {float(len(ALERTS))}",
        'zastava_central_dead_letters_in_store{reason="jpeg"} 1.0',
        'zastava_central_node_online{node="node-1",site="river-post"} 1.0',
        'zastava_central_node_online{node="node-9",site="coast-post"} -1.0',
    ):
        assert line in text, line
    n9 = max(a.sequence for a in ALERTS if a.node == "node-9")
    assert f'zastava_central_node_last_sequence{{node="node-9",site="coast-post"}} {float(n9)}' in text
    assert 'zastava_central_node_seconds_since_seen{node="node-2",site="river-post"}' in text


def test_healthz(client, tmp_path):
    r = client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok", "db": "ok"})
    # A database that stops answering: the file is no longer a database.
    path = tmp_path / "broken.db"
    store = Store(f"sqlite:///{path}")
    store.close()
    for leftover in tmp_path.glob("broken.db-*"):
        leftover.unlink()
    path.write_bytes(b"this is not a database" * 100)
    with app_for(store) as c:
        r = c.get("/healthz")
        assert (r.status_code, r.json()) == (503, {"status": "error", "db": "unavailable"})
        r = c.get("/api/v1/alerts", headers=AUTH)
        assert (r.status_code, r.json()) == (503, {"detail": "the database is unavailable"})
    store.close()


def test_openapi_documents_the_api(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for p in ("/api/v1/alerts", "/api/v1/alerts/{alert_id}", "/api/v1/alerts/{alert_id}/snapshot",
              "/api/v1/alerts/{alert_id}/ack", "/api/v1/nodes", "/api/v1/dead-letters", "/healthz", "/metrics"):
        assert p in paths, p
    params = {q["name"] for q in paths["/api/v1/alerts"]["get"]["parameters"]}
    assert {"since", "until", "site", "node", "camera", "class", "rule", "severity", "acknowledged", "limit",
            "cursor"} <= params
    assert "AlertView" in spec["components"]["schemas"] and "HTTPBearer" in spec["components"]["securitySchemes"]


# --- settings ------------------------------------------------------------------------------------

def test_settings_defaults_and_tokens_from_the_environment(monkeypatch):
    monkeypatch.setenv("ZASTAVA_CENTRAL_TOKENS", f" {TOKEN} ,{OTHER_TOKEN},, ")
    s = load_settings()
    assert s.api_tokens == [TOKEN, OTHER_TOKEN]
    assert (s.db_url, s.http_host, s.http_port, s.broker_url, s.dead_letter_max_bytes) == \
        ("sqlite:///zastava-central.db", "127.0.0.1", 8080, None, 4096)
    assert TOKEN not in repr(s)
    assert load_settings(api_tokens=[OTHER_TOKEN]).api_tokens == [OTHER_TOKEN]  # given beats the environment
    monkeypatch.setenv("ZASTAVA_CENTRAL_TOKENS", "short")
    with pytest.raises(SettingsError, match="api_tokens: a token must have at least 16 characters"):
        load_settings()


def test_settings_file_with_environment_and_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASS_FOR_TEST", "s3cret")
    monkeypatch.delenv("ZASTAVA_CENTRAL_TOKENS", raising=False)
    f = tmp_path / "central.yaml"
    f.write_text("db_url: postgresql://zastava:${PGPASS_FOR_TEST}@db/zastava\nhttp_port: 9000\n"
                 "broker_url: mqtts://broker.hq:8883\nshared_group: central\n")
    s = load_settings(f, http_port=None, http_host="0.0.0.0")
    assert s.db_url == "postgresql://zastava:s3cret@db/zastava"
    assert (s.http_port, s.http_host, s.shared_group, s.api_tokens) == (9000, "0.0.0.0", "central", [])


@pytest.mark.parametrize("text,message", [
    ("db_url: ${NOT_SET_ANYWHERE_42}\n", "db_url: environment variable NOT_SET_ANYWHERE_42 is not set"),
    ("http_port: 99999\n", "http_port: Input should be less than or equal to 65535"),
    ("htp_port: 80\n", "htp_port: unknown setting"),
    ("db_url: mysql://x/y\n", "db_url: expected sqlite:///FILE or postgresql://USER@HOST/DB"),
    ("broker_url: http://broker\n", "broker_url: expected mqtt|mqtts|ws|wss://HOST[:PORT]"),
    ("cert_file: /etc/c.pem\n", "cert_file and key_file go together"),
    ("[1, 2]\n", "settings are a mapping"),
    ("a: [\n", "not valid YAML"),
])
def test_settings_problems_are_one_clear_line(tmp_path, text, message):
    f = tmp_path / "central.yaml"
    f.write_text(text)
    with pytest.raises(SettingsError) as e:
        load_settings(f)
    assert str(e.value).startswith(str(f)) and message in str(e.value)


def test_a_missing_settings_file(tmp_path):
    with pytest.raises(SettingsError, match="no such settings file"):
        load_settings(tmp_path / "nope.yaml")
