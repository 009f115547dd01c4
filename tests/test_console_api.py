"""The console's API on real databases (an SQLite file and PostgreSQL): logins and sessions, roles,
the audit log, false alarms, incidents acknowledged together, config versions and rollback."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from central.api import create_app
from central.console_tables import feedback, users as users_table
from central.metrics import CentralMetrics
from central.settings import CentralSettings
from central.store import Store
from central.users import hash_password, verify_password
from edge.contract import Position
from test_central_store import BACKENDS, make_alert, pg_databases, store, store_url  # noqa: F401  (fixtures)

UTC = dt.timezone.utc
TOKEN = "console-api-token-0123456789"
HALL = (Path(__file__).parents[1] / "configs" / "hall-vtest.yaml").read_text()
CSRF = {"X-Requested-With": "zastava"}
PASSWORDS = {"gina": "guard-passphrase-1", "olek": "operator-passphrase-1", "ada": "admin-passphrase-1"}


class Sent:
    def __init__(self):
        self.messages: list[tuple[str, bytes]] = []

    def __call__(self, topic: str, payload: bytes) -> bool:
        self.messages.append((topic, payload))
        return True


@pytest.fixture
def app(store):  # noqa: F811
    settings = CentralSettings(api_tokens=[TOKEN], password_scrypt_n=2**14, session_ttl_s=3600)
    sent = Sent()
    client = TestClient(create_app(store, settings, CentralMetrics(), publish=sent))
    with client:
        for name, role in (("gina", "guard"), ("olek", "operator"), ("ada", "admin")):
            r = client.post("/api/v1/users", json={"username": name, "password": PASSWORDS[name], "role": role},
                            headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 201, r.text
        client.sent = sent
        yield client


def session(app, name: str) -> TestClient:
    c = TestClient(app.app)
    r = c.post("/api/v1/login", json={"username": name, "password": PASSWORDS[name]})
    assert r.status_code == 200, r.text
    c.headers.update(CSRF)
    return c


def audit(app) -> list[tuple[str, str, str]]:
    rows = app.get("/api/v1/audit", params={"limit": 1000}, headers={"Authorization": f"Bearer {TOKEN}"}).json()
    return [(e["actor"], e["action"], e["target"]) for e in reversed(rows["entries"])]


@BACKENDS
def test_no_data_without_login(app):
    for path in ("/api/v1/alerts", "/api/v1/nodes", "/api/v1/plan", "/api/v1/incidents", "/api/v1/stream",
                 "/api/v1/me", "/api/v1/audit", "/api/v1/nodes/demo-hall/hall-01/config", "/metrics"):
        assert app.get(path).status_code == 401, path
    page = app.get("/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert app.get("/static/app.js").status_code == 200


@BACKENDS
def test_login_sessions_expire_and_are_audited(app, store):  # noqa: F811
    assert app.post("/api/v1/login", json={"username": "gina", "password": "wrong-password-x"}).status_code == 401
    assert app.post("/api/v1/login", json={"username": "nobody", "password": "wrong-password-x"}).status_code == 401
    c = TestClient(app.app)
    r = c.post("/api/v1/login", json={"username": "gina", "password": PASSWORDS["gina"]})
    assert r.status_code == 200 and r.json()["role"] == "guard"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=3600" in cookie
    assert c.get("/api/v1/me").json()["username"] == "gina"
    # The password is stored as an scrypt hash only.
    with store.engine.connect() as conn:
        stored = conn.execute(select(users_table.c.password_hash).where(users_table.c.username == "gina")).scalar()
    assert stored.startswith("scrypt$16384$8$1$") and PASSWORDS["gina"] not in stored
    assert verify_password(PASSWORDS["gina"], stored) and not verify_password("guard-passphrase-2", stored)
    # A session that has expired opens nothing.
    console = app.app.state.console
    user = console.users.get("gina")
    old, _ = console.users.open_session(user, ttl_s=60, now=dt.datetime.now(UTC) - dt.timedelta(minutes=2))
    expired = TestClient(app.app, cookies={"zastava_session": old})
    assert expired.get("/api/v1/me").status_code == 401
    # Logging out ends the session.
    c.headers.update(CSRF)
    assert c.post("/api/v1/logout").status_code == 200
    assert TestClient(app.app, cookies={"zastava_session": r.cookies["zastava_session"]}).get("/api/v1/me").status_code == 401
    actions = [(actor, action) for actor, action, _ in audit(app)]
    assert ("gina", "login_failed") in actions and ("nobody", "login_failed") in actions
    assert actions[-2:] == [("gina", "login"), ("gina", "logout")]


@BACKENDS
def test_a_cookie_request_that_changes_something_needs_the_csrf_header(app, store):  # noqa: F811
    a = make_alert(1)
    store.add_alerts([(a, dt.datetime.now(UTC))])
    c = session(app, "gina")
    del c.headers["X-Requested-With"]
    r = c.post(f"/api/v1/alerts/{a.id}/ack", json={"note": "x"})
    assert r.status_code == 403 and "x-requested-with" in r.json()["detail"]
    assert c.get("/api/v1/alerts").status_code == 200  # reading needs no header


@BACKENDS
def test_roles(app, store):  # noqa: F811
    a = make_alert(1)
    store.add_alerts([(a, dt.datetime.now(UTC))])
    guard, operator, admin = session(app, "gina"), session(app, "olek"), session(app, "ada")
    r = guard.post(f"/api/v1/alerts/{a.id}/ack", json={"note": "seen"})
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "gina"
    config = {"yaml": HALL}
    assert guard.put("/api/v1/nodes/demo-hall/hall-01/config", json=config).status_code == 403
    assert guard.get("/api/v1/users").status_code == 403
    assert guard.get("/api/v1/audit").status_code == 403
    assert operator.put("/api/v1/nodes/demo-hall/hall-01/config", json=config).status_code == 200
    assert operator.get("/api/v1/users").status_code == 403
    assert operator.post("/api/v1/users", json={"username": "x", "password": "x" * 12, "role": "admin"}).status_code == 403
    assert admin.post("/api/v1/users", json={"username": "ivo", "password": "x" * 12, "role": "guard"}).status_code == 201
    assert guard.get("/api/v1/nodes/demo-hall/hall-01/config").json()["current"]["version"] == "v1"  # guards view
    # Lowering a role ends the user's sessions.
    assert admin.patch("/api/v1/users/olek", json={"role": "guard"}).json()["role"] == "guard"
    assert operator.get("/api/v1/me").status_code == 401
    # A disabled user cannot log in.
    admin.patch("/api/v1/users/ivo", json={"active": False})
    assert app.post("/api/v1/login", json={"username": "ivo", "password": "x" * 12}).status_code == 401
    # The API token is an admin; acknowledging with it must name the operator.
    tok = {"Authorization": f"Bearer {TOKEN}"}
    assert app.post(f"/api/v1/alerts/{a.id}/ack", json={}, headers=tok).status_code == 422
    assert app.post(f"/api/v1/alerts/{a.id}/ack", json={"operator": "desk"}, headers=tok).json()["acknowledged_by"] == "desk"
    trail = audit(app)
    assert ("gina", "ack", f"alert:{a.id}") in trail and ("olek", "config_change", "node:demo-hall/hall-01") in trail
    assert ("ada", "user_create", "user:ivo") in trail and ("ada", "user_update", "user:olek") in trail


@BACKENDS
def test_false_alarm_is_kept_as_feedback_and_filters_by_state(app, store):  # noqa: F811
    t = dt.datetime.now(UTC)
    alerts = [make_alert(i, t=t + dt.timedelta(seconds=i)) for i in range(3)]
    store.add_alerts([(a, t) for a in alerts])
    c = session(app, "gina")
    r = c.post(f"/api/v1/alerts/{alerts[0].id}/false-alarm", json={"note": "a shadow"})
    assert r.status_code == 200 and r.json()["verdict"] == "false_alarm" and r.json()["acknowledged"]
    c.post(f"/api/v1/alerts/{alerts[1].id}/ack", json={"note": "real"})
    ids = lambda q: [a["id"] for a in c.get("/api/v1/alerts", params=q).json()["alerts"]]  # noqa: E731
    assert ids({"state": "false_alarm"}) == [alerts[0].id]
    assert ids({"state": "acknowledged"}) == [alerts[1].id]
    assert ids({"state": "open"}) == [alerts[2].id]
    assert ids({"state": "open,false_alarm"}) == [alerts[2].id, alerts[0].id]
    assert c.get("/api/v1/alerts", params={"state": "closed"}).status_code == 422
    with store.engine.connect() as conn:
        fb = conn.execute(select(feedback)).mappings().all()
    assert [(f["alert_id"], f["verdict"], f["note"], f["by"], f["rule"], f["camera"]) for f in fb] == [
        (alerts[0].id, "false_alarm", "a shadow", "gina", "bank-intrusion", "cam-1")]
    assert c.get("/api/v1/feedback").json()["feedback"][0]["bbox"] == [10.0, 20.0, 110.5, 220.0]


@BACKENDS
def test_an_incident_is_acknowledged_with_its_alerts(app, store):  # noqa: F811
    t = dt.datetime.now(UTC)
    pair = [make_alert(i, t=t + dt.timedelta(seconds=i), node=f"node-{i}", camera=f"cam-{i}").model_copy(
        update={"position": Position(lat=45.0 + i * 1e-4, lon=15.0)}) for i in (1, 2)]
    store.add_alerts([(a, t) for a in pair])
    console = app.app.state.console
    console.watcher.watermark = t - dt.timedelta(days=1)
    console.watcher.tick()
    c = session(app, "gina")
    (inc,) = c.get("/api/v1/incidents", params={"state": "open"}).json()["incidents"]
    assert inc["alert_count"] == 2 and inc["summary"]["nodes"] == ["river-post/node-1", "river-post/node-2"]
    detail = c.get(f"/api/v1/incidents/{inc['id']}").json()
    assert sorted(a["id"] for a in detail["alerts"]) == sorted(a.id for a in pair)
    r = c.post(f"/api/v1/incidents/{inc['id']}/ack", json={"note": "one person, two posts"})
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "gina"
    for a in pair:
        got = c.get(f"/api/v1/alerts/{a.id}").json()
        assert (got["acknowledged"], got["acknowledged_by"], got["ack_note"]) == (True, "gina", "one person, two posts")
    assert c.get("/api/v1/incidents", params={"state": "open"}).json()["incidents"] == []
    assert ("gina", "incident_ack", f"incident:{inc['id']}") in audit(app)


@BACKENDS
def test_config_versions_validation_publication_and_rollback(app):
    op = session(app, "olek")
    base = "/api/v1/nodes/demo-hall/hall-01/config"
    bad = HALL.replace("max_count: 4", "max_count: -4")
    line = next(i for i, t in enumerate(bad.splitlines(), 1) if "max_count: -4" in t)
    r = op.put(base, json={"yaml": bad})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"path": "cameras[0].rules[3].max_count",
                                   "message": "Input should be greater than or equal to 0", "line": line}]
    assert app.sent.messages == []  # refused: nothing stored, nothing published
    wrong_node = op.post("/api/v1/nodes/demo-hall/other-node/config/validate", json={"yaml": HALL}).json()
    assert not wrong_node["ok"] and wrong_node["errors"][0]["path"] == "node.id"
    syntax = op.post(f"{base}/validate", json={"yaml": HALL.replace("lines:", "lines: [")}).json()
    assert not syntax["ok"] and syntax["errors"][0]["line"] is not None
    assert op.put(base, json={"yaml": HALL, "comment": "first"}).json() == {"version": "v1", "number": 1, "published": True}
    v2 = HALL.replace("dwell_s: 1.0", "dwell_s: 2.5")
    assert op.put(base, json={"yaml": v2, "comment": "longer dwell"}).json()["version"] == "v2"
    topic, payload = app.sent.messages[-1]
    assert topic == "zastava/v1/demo-hall/hall-01/config"
    import json

    message = json.loads(payload)
    assert message["version"] == "v2" and message["author"] == "olek"
    assert message["config"]["version"] == "v2" and message["config"]["cameras"][0]["rules"][0]["dwell_s"] == 2.5
    # ${VAR}s travel as written: the node expands them from its own environment.
    assert message["config"]["cameras"][0]["source"] == "${ZASTAVA_DATA}/video/vtest.avi"
    diff = op.get(f"{base}/versions/2").json()["diff"]
    assert "-        dwell_s: 1.0\n+        dwell_s: 2.5\n" in diff
    r = op.post(f"{base}/rollback", json={"number": 1})
    assert r.json()["version"] == "v3"
    cfg = op.get(base).json()
    assert cfg["current"]["yaml"] == HALL and cfg["current"]["rollback_of"] == 1
    assert [v["version"] for v in cfg["versions"]] == ["v3", "v2", "v1"]
    assert json.loads(app.sent.messages[-1][1])["version"] == "v3"
    assert op.post(f"{base}/rollback", json={"number": 9}).status_code == 404
    trail = [a for a in audit(app) if a[2] == "node:demo-hall/hall-01"]
    assert [a[1] for a in trail] == ["config_change", "config_change", "config_rollback"]
    nodes = app.get("/api/v1/nodes", headers={"Authorization": f"Bearer {TOKEN}"}).json()["nodes"]
    assert nodes == []  # no node has reported yet; the desired version shows once it does


@BACKENDS
def test_zone_editor_writes_the_drawn_zones_into_the_yaml(app):
    op = session(app, "olek")
    zones = [{"id": "gate", "points": [[10, 10], [200, 10], [200, 150]], "coordinates": "pixels"}]
    lines = [{"id": "fence", "points": [[0, 300], [600, 300]], "coordinates": "pixels"}]
    r = op.post("/api/v1/configs/zones", json={"yaml": HALL, "camera": "hall", "zones": zones, "lines": lines})
    text = r.json()["yaml"]
    check = op.post("/api/v1/nodes/demo-hall/hall-01/config/validate", json={"yaml": text}).json()
    # The hall's rules name the zones and line that were replaced: the check says so, at the field.
    assert {e["path"] for e in check["errors"]} == {"cameras[0].rules[0].zone", "cameras[0].rules[1].line",
                                                    "cameras[0].rules[2].zone", "cameras[0].rules[3].zone"}
    assert check["config"]["cameras"][0]["zones"][0]["points"] == [[10, 10], [200, 10], [200, 150]]
    assert op.post("/api/v1/configs/zones", json={"yaml": HALL, "camera": "nope", "zones": [], "lines": []}).status_code == 422


def test_password_hashes_carry_their_parameters():
    h = hash_password("a long passphrase", n=2**14)
    assert h.split("$")[:4] == ["scrypt", "16384", "8", "1"]
    assert verify_password("a long passphrase", h) and not verify_password("a long passphrase!", h)
    assert not verify_password("a long passphrase", "md5$abc")


def test_users_command(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    db = f"sqlite:///{tmp_path / 'c.db'}"

    def users(*args, stdin=""):
        return subprocess.run([sys.executable, "-m", "central.cli", "users", "--db", db, *args], input=stdin,
                              capture_output=True, text=True, cwd=REPO, timeout=120)

    r = users("add", "ana", "--role", "admin", stdin="a long passphrase\n")
    assert r.returncode == 0 and r.stdout.strip() == "added ana (admin)"
    r = users("add", "bob", "--role", "guard", stdin="short\n")
    assert r.returncode == 2 and r.stderr.strip() == "zastava-central: error: password: 10 to 1024 characters"
    r = users("add", "ana", "--role", "guard", stdin="another long passphrase\n")
    assert r.returncode == 2 and "taken" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert users("set", "ana", "--disable").stdout.strip() == "ana: admin, disabled"
    assert users("list").stdout.split("\t")[:3] == ["ana", "admin", "disabled"]
    st = Store(db)
    try:
        from central.audit import AuditLog

        assert [(e["actor"], e["action"]) for e in AuditLog(st.engine).entries()] == [
            ("cli", "user_update"), ("cli", "user_create")]
    finally:
        st.close()
