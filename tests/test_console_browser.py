"""The operator console in a real browser (Debian's chromium, headless, driven by Playwright)
against a real central process, a real Mosquitto and a real edge node replaying vtest.avi.

The node runs configs/hall-vtest.yaml plus a second camera whose RTSP source is down (a post
with a broken camera, as posts have): the recording ends after a few seconds, the dead camera
keeps the node running and reconnecting, so configs pushed later still reach a live node.

Set $ZASTAVA_SCREENSHOTS to a folder to keep the console's screenshots (docs/ has them).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from brokers import Mosquitto
from test_delivery import TOKEN, Central, edge_config, start_edge

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SITE, NODE = "demo-hall", "hall-01"
USERS = {"gina": ("guard", "guard-passphrase-1"), "olek": ("operator", "operator-passphrase-1")}
DEAD_CAMERA = """  - id: gate
    name: Gate camera (down)
    source: rtsp://127.0.0.1:9/gate
    detector: {model: yolox-nano, conf: 0.3, classes: [person]}
"""


class World:
    def __init__(self, tmp: Path, broker: Mosquitto, data_dir: Path):
        self.tmp = tmp
        self.broker = broker
        settings = tmp / "central.yaml"
        settings.write_text("password_scrypt_n: 16384\nfeed_interval_s: 0.3\n")  # quick logins in tests
        self.central = Central(tmp, broker.url, ("--config", str(settings))).start()
        self.base = f"http://127.0.0.1:{self.central.port}"
        self.api = httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        for name, (role, password) in USERS.items():
            r = self.api.post("/api/v1/users", json={"username": name, "password": password, "role": role})
            assert r.status_code == 201, r.text
        text = edge_config(tmp, data_dir, broker.port).read_text().replace("mqtt:\n", DEAD_CAMERA + "mqtt:\n", 1)
        # What an operator keeps in central: ${VAR}s as written, expanded by the node from its environment.
        self.node_yaml = text.replace(str(data_dir), "${ZASTAVA_DATA}")
        self.config = tmp / "node.yaml"
        self.config.write_text(text)
        self.state = tmp / "state"
        self.edge_log = tmp / "edge.log"
        self.edge = None

    def start_edge(self):
        self.edge = start_edge(self.config, self.state, self.edge_log)

    def stop(self):
        if self.edge is not None:
            self.edge.terminate()
            try:
                self.edge.wait(30)
            except Exception:
                self.edge.kill()
        self.central.stop()
        self.api.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory, data_dir):
    tmp = tmp_path_factory.mktemp("console")
    broker = Mosquitto(tmp / "broker").start()
    w = World(tmp, broker, data_dir)
    yield w
    w.stop()
    broker.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: apt-get install chromium (.ci/run does)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def login(browser, world: World, name: str, init_script: str | None = None):
    context = browser.new_context(viewport={"width": 1500, "height": 900})
    page = context.new_page()
    if init_script:
        page.add_init_script(init_script)
    page.errors = []  # the page's uncaught exceptions: any is a bug, shown when a wait fails
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(world.base + "/")
    page.fill("#login-user", name)
    page.fill("#login-pass", USERS[name][1])
    page.click("#login-submit")
    page.wait_for_selector("#app:not([hidden])")
    return page


def shot(page, name: str) -> None:
    folder = os.environ.get("ZASTAVA_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name))


@pytest.fixture(scope="module")
def guard(browser, world):
    page = login(browser, world, "gina")
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def operator(browser, world):
    page = login(browser, world, "olek")
    yield page
    page.context.close()


def wait_until(check, timeout_s: float = 60.0, what: str = "condition"):
    """Poll from Python: the console's CSP (script-src 'self') refuses Playwright's string predicates."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def retained_config(port: int) -> dict | None:
    got = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="console-test-reader", protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: got.append(m.payload)
    client.connect("127.0.0.1", port)
    client.subscribe(f"zastava/v1/{SITE}/{NODE}/config", qos=1)
    client.loop_start()
    end = time.monotonic() + 3
    while not got and time.monotonic() < end:
        time.sleep(0.05)
    client.loop_stop()
    client.disconnect()
    return json.loads(got[0]) if got else None


def test_a_new_alert_appears_in_the_feed_without_a_reload(world, guard):
    assert guard.locator("#feed tbody tr").count() == 0
    guard.evaluate("window.__loadedOnce = true")  # gone if the page reloads
    guard.wait_for_selector("#live-state.on")
    world.start_edge()
    guard.wait_for_selector("#feed tbody tr.alert", timeout=120_000)
    assert guard.evaluate("window.__loadedOnce === true"), "the page reloaded"
    # More arrive while we watch, newest first, each with its severity colour.
    wait_until(lambda: guard.locator("#feed tbody tr.alert").count() >= 5, 120, "five alerts in the feed")
    assert guard.evaluate("window.__loadedOnce === true")
    # One read of the whole list (the feed re-renders as alerts arrive).
    rows = guard.locator("#feed tbody tr.alert").evaluate_all(
        "rows => rows.map(r => [r.dataset.id, r.className.split('sev-')[1].split(' ')[0]])")
    api_ids = [a["id"] for a in world.api.get("/api/v1/alerts", params={"limit": 1000}).json()["alerts"]]
    page_ids = [i for i, _ in rows]
    assert len(set(page_ids)) == len(page_ids) and set(page_ids) <= set(api_ids)
    assert page_ids == [i for i in api_ids if i in set(page_ids)], "the feed is not newest first"
    severities = {sev for _, sev in rows}
    assert severities <= {"low", "medium", "high"} and len(severities) >= 2


def test_acknowledging_in_the_console_updates_the_api(world, guard):
    alert_id = guard.locator("#feed tbody tr.alert[data-state=open]").first.get_attribute("data-id")
    guard.locator(f"#feed tbody tr[data-id='{alert_id}']").click()  # by id: rows move as alerts arrive
    try:
        guard.wait_for_selector(f"#detail[data-id='{alert_id}'] #ack-btn")
    except Exception:
        raise AssertionError(f"no alert detail; page errors: {guard.errors}") from None
    wait_until(lambda: guard.locator("#detail-canvas").evaluate("c => c.height") > 0, 10, "the snapshot")
    shot(guard, "console-alert.png")
    guard.fill("#ack-note", "patrol sent to the plaza")
    guard.click("#ack-btn")
    guard.wait_for_selector(f"#feed tbody tr[data-id='{alert_id}'][data-state=acknowledged]")
    a = world.api.get(f"/api/v1/alerts/{alert_id}").json()
    assert a["acknowledged"] is True and a["acknowledged_by"] == "gina" and a["ack_note"] == "patrol sent to the plaza"
    audit = world.api.get("/api/v1/audit", params={"target": f"alert:{alert_id}"}).json()["entries"]
    assert [(e["actor"], e["action"]) for e in audit] == [("gina", "ack")]


def test_a_guard_cannot_edit_configs(world, guard):
    guard.click("#tabs button[data-view=nodes]")
    guard.wait_for_selector(f"#nodes tr[data-node='{SITE}/{NODE}']")
    guard.click(f"#nodes tr[data-node='{SITE}/{NODE}'] .config-btn")
    guard.wait_for_selector("#config-view:not([hidden])")
    assert guard.locator("#config-save").is_hidden()
    assert guard.locator("#config-yaml").evaluate("t => t.readOnly")
    # Nor through the API with the guard's own session.
    r = guard.request.put(f"{world.base}/api/v1/nodes/{SITE}/{NODE}/config", data={"yaml": world.node_yaml},
                          headers={"X-Requested-With": "zastava"})
    assert r.status == 403 and "operator" in r.json()["detail"]
    assert world.api.get(f"/api/v1/nodes/{SITE}/{NODE}/config").json()["versions"] == []
    guard.click("#tabs button[data-view=alerts]")


def wait_applied(page, version: str, timeout_ms: int = 60_000) -> None:
    page.wait_for_selector(f"#config-applied[data-version='{version}'].applied", timeout=timeout_ms)


def test_a_config_edited_in_the_console_reaches_the_node_and_is_applied(world, operator):
    operator.click("#tabs button[data-view=nodes]")
    operator.wait_for_selector(f"#nodes tr[data-node='{SITE}/{NODE}']")
    operator.click(f"#nodes tr[data-node='{SITE}/{NODE}'] .config-btn")
    operator.wait_for_selector("#config-view:not([hidden])")
    # Central holds no config for the node yet: the operator pastes the node's file and saves it.
    operator.fill("#config-yaml", world.node_yaml)
    operator.fill("#config-comment", "take the post under central management")
    operator.click("#config-save")
    wait_applied(operator, "v1")
    # Then edits it: a stricter score for the plaza intrusions.
    edited = world.node_yaml.replace("min_score: 0.4\n        severity: high", "min_score: 0.55\n        severity: high", 1)
    assert edited != world.node_yaml
    operator.fill("#config-yaml", edited)
    operator.fill("#config-comment", "plaza: fewer weak detections")
    operator.click("#config-save")
    wait_applied(operator, "v2")
    node = next(n for n in world.api.get("/api/v1/nodes").json()["nodes"] if n["node"] == NODE)
    assert node["config_state"]["state"] == "applied" and node["config_state"]["applied_version"] == "v2"
    assert node["desired_version"] == "v2"
    log = world.edge_log.read_text()
    assert "config v2 from central applied (by olek)" in log
    assert world.edge.poll() is None, "the node restarted or died: it must apply without a restart"
    persisted = json.loads((world.state / "central-config.json").read_text())
    assert persisted["version"] == "v2"
    assert persisted["config"]["cameras"][0]["rules"][0]["min_score"] == 0.55
    operator.click("#config-versions tr[data-number='2']")
    wait_until(lambda: "+        min_score: 0.55" in operator.text_content("#config-diff"), 10, "the diff")
    shot(operator, "console-config.png")


def test_an_invalid_config_shows_its_field_error_and_is_not_pushed(world, operator):
    bad = world.node_yaml.replace("dwell_s: 1.0", "dwell_s: -1", 1)
    line = next(i for i, text in enumerate(bad.splitlines(), 1) if "dwell_s: -1" in text)
    operator.fill("#config-yaml", bad)
    operator.click("#config-save")
    item = operator.wait_for_selector("#config-errors li[data-path='cameras[0].rules[0].dwell_s']")
    assert item.get_attribute("data-line") == str(line)
    assert "greater than or equal to 0" in item.text_content()
    assert operator.locator(f"#config-gutter span[data-line='{line}'].err").count() == 1
    assert "not saved" in operator.text_content("#config-message")
    shot(operator, "console-config-error.png")
    versions = world.api.get(f"/api/v1/nodes/{SITE}/{NODE}/config").json()["versions"]
    assert [v["version"] for v in versions] == ["v2", "v1"]
    retained = retained_config(world.broker.port)
    assert retained is not None and retained["version"] == "v2"
    # The node still runs v2.
    node = next(n for n in world.api.get("/api/v1/nodes").json()["nodes"] if n["node"] == NODE)
    assert node["config_state"]["applied_version"] == "v2"


def test_screens_of_posts_and_incidents(world, guard):
    guard.click("#tabs button[data-view=alerts]")
    shot(guard, "console-feed.png")
    guard.click("#tabs button[data-view=nodes]")
    guard.wait_for_selector(f"#nodes tr[data-node='{SITE}/{NODE}'] td:nth-child(2) .online")
    # The table refreshes every 3 s.
    text = wait_until(lambda: (t := guard.text_content(f"#nodes tr[data-node='{SITE}/{NODE}']")) and "v2 / v2" in t
                      and t, 20, "desired and applied v2 on the posts page")
    assert "gate" in text and "reconnecting" in text
    # The guard's open config view caught up with the operator's v2 by itself (read-only).
    wait_until(lambda: "min_score: 0.55" in guard.locator("#config-yaml").input_value(), 20, "v2 in the guard's view")
    guard.wait_for_selector("#zone-camera option[value=hall]", state="attached")
    shot(guard, "console-posts.png")
    guard.click("#tabs button[data-view=incidents]")
    guard.select_option("#incident-state", "")
    guard.wait_for_selector("#incidents tbody tr")
    guard.locator("#incidents tbody tr").first.click()
    guard.wait_for_selector("#incident-ack")
    shot(guard, "console-incidents.png")


def test_the_plan_view_draws_posts_fields_of_view_zones_and_alert_positions(world, guard, data_dir, tmp_path):
    """A second post: PETS09 with the radar a camera mast would have (edge/evaluation/radar_scenario.py),
    replayed by the edge; its real alerts, with positions, published as the node publishes them."""
    import subprocess
    import sys

    from conftest import REPO, run_cli

    feed = tmp_path / "pets-radar.nmea"
    r = run_cli("eval", "radar-scenario", str(data_dir / "mot" / "PETS09-S3-MF1"), "--out", str(feed))
    assert r.returncode == 0, r.stderr
    snaps = tmp_path / "snaps"
    r = subprocess.run([sys.executable, "-m", "edge.cli", "replay", "-c", "configs/pets09-fusion.yaml",
                        "--start-time", "2026-01-01T12:00:00Z", "--snapshots", str(snaps)], cwd=REPO,
                       capture_output=True, text=True, timeout=600,
                       env={**os.environ, "ZASTAVA_RADAR_FEED": str(feed)})
    assert r.returncode == 0, r.stderr
    alerts = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    placed = [a for a in alerts if a.get("position")]
    assert len(placed) >= 5
    text = (REPO / "configs" / "pets09-fusion.yaml").read_text()
    assert world.api.put("/api/v1/nodes/demo-pets/pets-fusion/config", json={"yaml": text}).status_code == 200
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pets-fusion-replay", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", world.broker.port)
    client.loop_start()
    for seq, a in enumerate(alerts, 1):
        base = f"zastava/v1/{a['site']}/{a['node']}/alert"
        jpg = snaps / f"{a['id']}.jpg"
        if jpg.exists():
            client.publish(f"{base}/{a['id']}/snapshot", jpg.read_bytes(), qos=1).wait_for_publish(5)
        client.publish(base, json.dumps({**a, "sequence": seq}), qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    wait_until(lambda: len(world.api.get("/api/v1/alerts", params={"node": "pets-fusion", "limit": 1000}
                                         ).json()["alerts"]) == len(alerts), 30, "the PETS alerts in central")
    guard.click("#tabs button[data-view=plan]")
    wait_until(lambda: guard.locator("#plan circle.plan-alert").count() == len(placed), 30, "alerts on the plan")
    assert guard.locator("#plan polygon.geo-zone").count() == 2  # road and approach
    assert guard.locator("#plan polygon.fov").count() == 1  # the PETS camera's wedge (the hall has no geometry)
    assert guard.locator("#plan rect.post").count() == 2  # both posts have a position
    shot(guard, "console-plan.png")
    # An alert on the plan opens its detail.
    guard.locator("#plan circle.plan-alert").first.click(force=True)
    guard.wait_for_selector("#detail #ack-btn")
    assert "position" in guard.text_content("#detail") and "±" in guard.text_content("#detail-position")
    shot(guard, "console-radar-alert.png")


def test_no_script_errors_on_any_page(guard, operator):
    for name in ("alerts", "incidents", "nodes", "plan"):
        guard.click(f"#tabs button[data-view={name}]")
        operator.click(f"#tabs button[data-view={name}]")
    operator.click("#tabs button[data-view=audit]")
    operator.wait_for_selector("#audit tbody tr")
    assert operator.locator("#tabs button[data-view=users]").is_hidden()  # admins only
    time.sleep(1)
    assert guard.errors == [] and operator.errors == [], (guard.errors, operator.errors)


def test_a_config_the_node_refuses_shows_its_error_and_a_rollback_restores_it(world, operator):
    """Central cannot know the node's environment: a ${VAR} the node lacks passes central's
    check, the node refuses the config and keeps v2, and the console shows why."""
    operator.click("#tabs button[data-view=nodes]")
    operator.click(f"#nodes tr[data-node='{SITE}/{NODE}'] .config-btn")
    operator.wait_for_selector("#config-view:not([hidden])")
    wait_until(lambda: "min_score: 0.55" in operator.locator("#config-yaml").input_value(), 20, "v2 in the editor")
    text = world.node_yaml.replace("rtsp://127.0.0.1:9/gate", "${GATE_CAMERA_URL}", 1)
    operator.fill("#config-yaml", text)
    operator.fill("#config-comment", "gate camera address from the post's environment")
    operator.click("#config-save")
    error = operator.wait_for_selector("#config-node-error", timeout=60_000)
    assert "cameras[1].source: environment variable GATE_CAMERA_URL is not set" in error.text_content()
    assert "at least 1 character" not in error.text_content()  # the unset variable, said once
    assert operator.get_attribute("#config-applied", "data-version") == "v2"
    node = next(n for n in world.api.get("/api/v1/nodes").json()["nodes"] if n["node"] == NODE)
    assert node["desired_version"] == "v3" and node["config_state"]["state"] == "rejected"
    assert node["config_state"]["applied_version"] == "v2" and node["config_state"]["desired_version"] == "v3"
    assert world.edge.poll() is None
    shot(operator, "console-config-rejected.png")
    # Roll back to v2: a new version, v4, with v2's content, which the node applies.
    operator.click("#config-versions tr[data-number='2'] .rollback")
    wait_applied(operator, "v4")
    versions = world.api.get(f"/api/v1/nodes/{SITE}/{NODE}/config").json()["versions"]
    assert [(v["version"], v["rollback_of"]) for v in versions][:2] == [("v4", 2), ("v3", None)]
    assert operator.locator("#config-node-error").count() == 0


# A slow link to central: the page's reads of a node's config arrive 2 s late.
SLOW_CONFIG_READS = """{const f = window.fetch; window.fetch = async (path, opts) => { const r = await f(path, opts);
  if (/\\/config$/.test(path) && (opts?.method ?? "GET") === "GET") await new Promise(ok => setTimeout(ok, 2000));
  return r; };}"""


def test_text_typed_while_the_stored_config_loads_is_not_lost(browser, world):
    """The editor waits for the stored version before it takes input: typing into it earlier was
    overwritten when the version arrived, and a quick save then sent an empty config (the CI
    failure this test was written for)."""
    page = login(browser, world, "olek", SLOW_CONFIG_READS)
    try:
        page.click("#tabs button[data-view=nodes]")
        page.click(f"#nodes tr[data-node='{SITE}/{NODE}'] .config-btn")
        page.wait_for_selector("#config-view:not([hidden])")
        assert page.locator("#config-yaml").evaluate("t => t.readOnly"), "editable before the stored config arrived"
        assert page.locator("#config-save").is_disabled()
        stored = world.api.get(f"/api/v1/nodes/{SITE}/{NODE}/config").json()["current"]
        edited = stored["yaml"].replace("dwell_s: 1.0", "dwell_s: 1.5", 1)
        assert edited != stored["yaml"]
        page.fill("#config-yaml", edited)  # Playwright waits until the textarea is editable
        page.click("#config-save")
        wait_until(lambda: (current := world.api.get(f"/api/v1/nodes/{SITE}/{NODE}/config").json()["current"])
                   and current["number"] == stored["number"] + 1 and current, 30, "the edited version stored")
        assert page.locator("#config-yaml").input_value() == edited
        assert world.api.get(f"/api/v1/nodes/{SITE}/{NODE}/config").json()["current"]["yaml"] == edited
        assert page.errors == []
    finally:
        page.context.close()
