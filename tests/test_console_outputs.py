"""Outputs to other systems: Cursor on Target events to a TAK server (received here on a local TCP
and UDP listener, checked against the CoT event schema) and signed webhooks, both from the
durable queue: retried while the receiver is away, and still sent after central restarts."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import socket
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from central.console import Console
from central.outputs import Outputs
from central.settings import CentralSettings
from central.store import Store
from central.tak import TakSink, parse_events
from central.webhooks import verify
from conftest import free_port
from edge.contract import Position
from test_broker_security import pki  # noqa: F401  (a fixture: test CA and server certificate)
from test_central_store import make_alert

UTC = dt.timezone.utc
SCHEMA = xmlschema.XMLSchema(str(Path(__file__).parent / "data" / "cot-event.xsd"))
SECRET = "webhook-secret-0123456789"


class TcpListener:
    """What a TAK server's TCP input does with CoT: read the stream of XML events."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.data = bytearray()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        conns = []
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                conn.settimeout(0.05)
                conns.append(conn)
            except TimeoutError:
                pass
            for c in conns:
                try:
                    chunk = c.recv(65536)
                    if chunk:
                        self.data += chunk
                except TimeoutError:
                    pass
        for c in conns:
            c.close()

    def events(self, n: int, timeout: float = 10) -> list[ET.Element]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.data.count(b"<?xml") >= n and self.data.rstrip().endswith(b"</event>"):
                break
            time.sleep(0.05)
        return parse_events(bytes(self.data))

    def close(self):
        self._stop.set()
        self.thread.join(5)
        self.sock.close()


def placed(i: int, lat: float, lon: float, *, camera="cam-1", node="node-1", cls="person", sensors=("camera",),
           t: dt.datetime | None = None, sigma=2.5):
    a = make_alert(i, camera=camera, node=node, cls=cls, t=t)
    return a.model_copy(update={"position": Position(lat=lat, lon=lon, sigma_m=sigma), "sensors": list(sensors),
                                "track_id": 100 + i})


def w3c(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'central.db'}")
    yield s
    s.close()


def console_for(store, **settings) -> Console:
    c = Console(store, CentralSettings(api_tokens=[], **settings))
    c.watcher.watermark = dt.datetime(2000, 1, 1, tzinfo=UTC)  # the test's alerts are "new"
    return c


def test_alerts_and_incidents_reach_a_tak_server_as_valid_cot(store):
    tak = TcpListener()
    console = console_for(store, tak=[{"name": "tak", "url": f"tcp://127.0.0.1:{tak.port}", "stale_s": 300}])
    t = dt.datetime.now(UTC).replace(microsecond=0)
    # Two cameras of two posts see one person 8 m apart (one incident); a boat far away on its own.
    a1 = placed(1, 45.81500, 15.98190, t=t, sensors=("camera", "radar"))
    a2 = placed(2, 45.81507, 15.98190, camera="cam-9", node="node-2", t=t + dt.timedelta(seconds=3))
    boat = placed(3, 45.90000, 15.90000, cls="boat", t=t, sigma=12.0)
    store.add_alerts([(a, t) for a in (a1, a2, boat)])
    console.watcher.tick()
    assert console.outputs.pending() == {"tak": 4}  # three alerts, one incident
    sent_from = dt.datetime.now(UTC)
    assert console.outputs.run_once() == 4
    events = tak.events(4)
    tak.close()
    console.outputs.stop()
    assert len(events) == 4
    for e in events:
        SCHEMA.validate(ET.tostring(e))  # raises on any breach of the CoT event schema
    by_uid = {e.get("uid"): e for e in events}
    for a, cot_type, how in ((a1, "a-u-G-U-C-I", "m-f"), (a2, "a-u-G-U-C-I", "m-p"), (boat, "a-u-S", "m-p")):
        e = by_uid[f"zastava-alert-{a.id}"]
        assert (e.get("type"), e.get("how"), e.get("version")) == (cot_type, how, "2.0")
        p = e.find("point")
        assert abs(float(p.get("lat")) - a.position.lat) < 1e-6 and abs(float(p.get("lon")) - a.position.lon) < 1e-6
        assert float(p.get("ce")) == a.position.sigma_m and p.get("hae") == p.get("le") == "9999999.0"
        start, stale, sent = w3c(e.get("start")), w3c(e.get("stale")), w3c(e.get("time"))
        assert start == a.time
        assert sent_from - dt.timedelta(seconds=1) <= sent <= dt.datetime.now(UTC)
        assert stale == max(sent, start) + dt.timedelta(seconds=300)
        assert a.rule in e.find("detail/contact").get("callsign")
    inc = [e for uid, e in by_uid.items() if uid.startswith("zastava-incident-")]
    assert len(inc) == 1
    p = inc[0].find("point")
    assert abs(float(p.get("lat")) - (a1.position.lat + a2.position.lat) / 2) < 1e-6
    assert inc[0].get("how") == "m-f" and "2 alerts" in inc[0].find("detail/remarks").text


def test_an_alert_without_a_position_is_placed_at_its_post(store):
    tak = TcpListener()
    console = console_for(store, tak=[{"name": "tak", "url": f"tcp://127.0.0.1:{tak.port}"}])
    text = (Path(__file__).parents[1] / "configs" / "hall-vtest.yaml").read_text()
    console.configs.save("demo-hall", "hall-01", text, author="test")
    a = make_alert(1, site="demo-hall", node="hall-01", camera="hall")
    store.add_alerts([(a, dt.datetime.now(UTC))])
    console.watcher.tick()
    console.outputs.run_once()
    (e,) = tak.events(1)
    tak.close()
    SCHEMA.validate(ET.tostring(e))
    p = e.find("point")
    assert (float(p.get("lat")), float(p.get("lon")), p.get("ce")) == (45.815, 15.9819, "9999999.0")


def test_udp_tak_output(store):
    port = free_port()
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", port))
    rx.settimeout(10)
    sink = TakSink(CentralSettings(tak=[{"name": "u", "url": f"udp://127.0.0.1:{port}"}]).tak[0])
    a = placed(1, 45.8, 15.9).model_dump(mode="json", by_alias=True)
    sink.send({"kind": "alert", "alert": a})
    data, _ = rx.recvfrom(65536)
    rx.close()
    sink.close()
    (e,) = parse_events(data)
    SCHEMA.validate(ET.tostring(e))
    assert e.get("uid") == f"zastava-alert-{a['id']}"


def test_a_tak_server_that_is_away_gets_the_events_later_and_after_a_central_restart(store):
    port = free_port()
    settings = {"tak": [{"name": "tak", "url": f"tcp://127.0.0.1:{port}"}]}
    console = console_for(store, **settings)
    t = dt.datetime.now(UTC)
    alerts = [placed(i, 45.8 + i * 0.01, 15.9, t=t + dt.timedelta(seconds=i)) for i in range(3)]
    store.add_alerts([(a, t) for a in alerts])
    console.watcher.tick()  # what ingest's side does: queue, never send
    assert console.outputs.run_once() == 0  # nobody listens: refused, kept
    (item,) = [i for i in console.outputs.items() if i["ref"] == alerts[0].id]
    assert item["attempts"] == 1 and "refused" in item["last_error"].lower(), item["last_error"]
    assert item["next_at"] > dt.datetime.now(UTC)  # backing off
    console.outputs.stop()
    # Central restarts (a new process: new queue object, same database) and the server is back.
    tak = TcpListener(port)
    later = Outputs(store.engine, [TakSink(CentralSettings(**settings).tak[0])])
    assert later.pending() == {"tak": 3}
    assert later.run_once(now=dt.datetime.now(UTC) + dt.timedelta(seconds=5)) == 3
    events = tak.events(3)
    tak.close()
    later.stop()
    assert [e.get("uid") for e in events] == [f"zastava-alert-{a.id}" for a in alerts]  # in order
    assert later.pending() == {}
    # Queued again (a second replica, a replay of the feed): nothing is sent twice.
    console2 = console_for(store, **settings)
    console2.watcher.tick()
    assert console2.outputs.pending() == {}


class Receiver(http.server.BaseHTTPRequestHandler):
    answers: list[int] = []
    got: list[tuple[dict, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.got.append((dict(self.headers), body))
        self.send_response(Receiver.answers.pop(0) if Receiver.answers else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhooks_are_signed_and_retried(store):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.answers, Receiver.got = [500], []
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    console = console_for(store, webhooks=[{"name": "soc", "url": url, "secret": SECRET, "min_severity": "high"}])
    t = dt.datetime.now(UTC)
    high = make_alert(1, severity="high", t=t)
    low = make_alert(2, severity="low", t=t + dt.timedelta(seconds=1))
    store.add_alerts([(high, t), (low, t)])
    console.watcher.tick()
    assert console.outputs.pending() == {"soc": 1}  # below min_severity: not queued
    assert console.outputs.run_once() == 0  # the receiver answered 500
    assert console.outputs.run_once(now=dt.datetime.now(UTC) + dt.timedelta(seconds=2)) == 1
    server.shutdown()
    console.outputs.stop()
    assert len(Receiver.got) == 2
    (h1, b1), (h2, b2) = Receiver.got
    assert b1 == b2 and h1["X-Zastava-Delivery"] == h2["X-Zastava-Delivery"]  # the same delivery, retried
    for headers, body in Receiver.got:
        assert headers["X-Zastava-Event"] == "alert"
        assert verify(SECRET.encode(), headers["X-Zastava-Timestamp"], body, headers["X-Zastava-Signature"])
        assert not verify(b"another-secret-entirely", headers["X-Zastava-Timestamp"], body, headers["X-Zastava-Signature"])
        assert not verify(SECRET.encode(), headers["X-Zastava-Timestamp"], body + b" ", headers["X-Zastava-Signature"])
    assert json.loads(b1)["alert"]["id"] == high.id


def test_tls_tak_output_with_a_client_certificate(store, pki, tmp_path):
    """A TAK server's TLS input: server certificate from a CA, client authenticated by its own."""
    import ssl

    from test_broker_security import _openssl

    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "client.key",
             "-out", "client.csr", "-subj", "/CN=zastava-central", cwd=tmp_path)
    (tmp_path / "client.ext").write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                                         "extendedKeyUsage=clientAuth\n")
    _openssl("x509", "-req", "-in", "client.csr", "-CA", str(pki.ca), "-CAkey", str(pki.ca.with_suffix(".key")),
             "-CAcreateserial", "-out", "client.crt", "-days", "2", "-extfile", "client.ext", cwd=tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    ctx.load_cert_chain(str(pki.cert), str(pki.key))
    ctx.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no connection
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(15)
    got: dict = {}

    def serve():
        conn, _ = server.accept()
        with ctx.wrap_socket(conn, server_side=True) as tls:
            got["peer"] = tls.getpeercert()["subject"]
            data = b""
            while not data.rstrip().endswith(b"</event>"):
                data += tls.recv(65536)
            got["data"] = data

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    port = server.getsockname()[1]
    out = CentralSettings(tak=[{"name": "tak", "url": f"tls://localhost:{port}", "ca_file": pki.ca,
                                "cert_file": tmp_path / "client.crt", "key_file": tmp_path / "client.key"}]).tak[0]
    sink = TakSink(out)
    a = placed(1, 45.8, 15.9).model_dump(mode="json", by_alias=True)
    sink.send({"kind": "alert", "alert": a})
    th.join(15)
    sink.close()
    server.close()
    assert ((("commonName", "zastava-central"),),) == got["peer"]
    (e,) = parse_events(got["data"])
    SCHEMA.validate(ET.tostring(e))
    assert e.get("uid") == f"zastava-alert-{a['id']}"
