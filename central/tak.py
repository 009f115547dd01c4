"""Alerts and incidents as Cursor on Target events for a TAK server (ATAK, WinTAK, iTAK maps).

    xml = cot_event({"kind": "alert", "alert": {...}})     # bytes: <?xml ...?><event ...>
    sink = TakSink(TakOutput(name="tak", url="tcp://tak.hq:8087"))
    sink.send(item)                                        # raises on failure; the outputs queue retries

pytak writes the event (its `cot_event`, `cot_point`, `cot_detail`) and opens the connection
(its `protocol_factory`: tcp://, udp://, tls:// with a client certificate); Zastava sets the
times from the alert rather than from the moment of sending:
- `time`: when the event was written; `start`: when the object was seen (the alert's time);
  `stale`: `stale_s` after the later of the two, so a backlog delivered late still shows;
- `type`: a-{affiliation}-{dimension}[-function] from the object's class family (person:
  a-u-G-U-C-I, vehicle: a-u-G-E-V, vessel: a-u-S, aircraft: a-u-A, anything else: a-u-G);
- `how`: m-f (machine, fused) when two sensors confirmed the object, else m-p (machine, from
  a camera or a radar: the position is computed, not a device's own GPS, which m-g would claim);
- `point`: the alert's position with `ce` = its 1-sigma radius (9999999 = unknown, as CoT
  says); an alert without a position is placed at its post, with ce unknown.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import warnings
import xml.etree.ElementTree as ET
from configparser import ConfigParser

from central.incidents import family

with warnings.catch_warnings():  # pytak warns about optional extras (enrolment, websockets) we do not use
    warnings.simplefilter("ignore")
    import pytak

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
UNKNOWN = "9999999.0"  # CoT's value for an unknown hae, ce or le
TYPES = {"person": "G-U-C-I", "vehicle": "G-E-V", "vessel": "S", "aircraft": "A"}
CONNECT_TIMEOUT_S = 10.0
SEND_TIMEOUT_S = 10.0


def _w3c(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse(t) -> dt.datetime:
    if isinstance(t, dt.datetime):
        return t if t.tzinfo else t.replace(tzinfo=UTC)
    return dt.datetime.fromisoformat(str(t).replace("Z", "+00:00"))


def cot_type(class_family: str, affiliation: str = "u") -> str:
    return f"a-{affiliation}-{TYPES.get(class_family, 'G')}"


def cot_event(item: dict, *, stale_s: float = 600.0, affiliation: str = "u", now: dt.datetime | None = None) -> bytes:
    """One queued output item ({"kind": "alert", "alert": ...} or {"kind": "incident", "incident": ...})
    as a CoT event."""
    now = now or dt.datetime.now(UTC)
    if item["kind"] == "alert":
        a = item["alert"]
        uid = f"zastava-alert-{a['id']}"
        seen = _parse(a["time"])
        pos = a.get("position") or {}
        lat, lon, ce = pos.get("lat"), pos.get("lon"), pos.get("sigma_m")
        if lat is None:
            lat, lon, ce = item.get("post_lat"), item.get("post_lon"), None
        fam = family(a.get("class") or "")
        sensors = a.get("sensors") or ["camera"]
        callsign = f"{a['rule']} {a.get('class') or 'object'}"
        remarks = (f"Zastava {a['severity']} alert: {a['rule_type']} {a.get('class') or ''} at "
                   f"{a['site']}/{a['node']}/{a['camera']}; sensors {', '.join(sensors)}; score {a['score']:.2f}")
    else:
        inc = item["incident"]
        uid = f"zastava-incident-{inc['id']}"
        seen = _parse(inc["last_time"])
        lat, lon, ce = inc.get("lat"), inc.get("lon"), inc.get("spread_m")
        fam = inc["family"]
        sensors = inc["summary"]["sensors"]
        callsign = f"incident {fam} x{inc['alert_count']}"
        remarks = (f"Zastava {inc['severity']} incident: {inc['alert_count']} alerts from "
                   f"{', '.join(inc['summary']['cameras'])}; sensors {', '.join(sensors)}")
    if lat is None or lon is None:
        raise ValueError(f"{uid} has no position and its post's position is not known")
    detail = pytak.cot_detail(flow_tag=False)
    pytak.add_remarks(detail, [remarks])
    event = pytak.cot_event(
        uid=uid, cot_type=cot_type(fam, affiliation), how="m-f" if len(set(sensors)) > 1 else "m-p",
        point=pytak.cot_point(lat=lat, lon=lon, ce=round(ce, 1) if ce is not None else UNKNOWN, hae=UNKNOWN,
                              le=UNKNOWN, precision=7),
        detail=detail, callsign=callsign[:64],
    )
    event.set("time", _w3c(now))
    event.set("start", _w3c(seen))
    event.set("stale", _w3c(max(now, seen) + dt.timedelta(seconds=stale_s)))
    return pytak.serialize_cot(event, trailing_newline=False)


class TakSink:
    """One TAK server connection, opened when needed and again after a failure. Called from the
    outputs worker's thread only; runs its own asyncio loop for pytak."""

    def __init__(self, output):
        self.output = output
        self.name = output.name
        self._loop = asyncio.new_event_loop()
        self._writer = None

    def _config(self):
        o = self.output
        # udp+wo: write only; plain udp:// would also bind a reader on the server's own port.
        values = {"COT_URL": o.url.replace("udp://", "udp+wo://", 1)}
        if o.cert_file:
            values["PYTAK_TLS_CLIENT_CERT"] = str(o.cert_file)
        if o.key_file:
            values["PYTAK_TLS_CLIENT_KEY"] = str(o.key_file)
        if o.ca_file:
            values["PYTAK_TLS_CLIENT_CAFILE"] = str(o.ca_file)
        if o.tls_server_hostname:
            values["PYTAK_TLS_SERVER_EXPECTED_HOSTNAME"] = o.tls_server_hostname
        parser = ConfigParser(interpolation=None)
        parser.read_dict({"zastava": values})
        return parser["zastava"]

    async def _send(self, data: bytes) -> None:
        if self._writer is None:
            _, self._writer = await asyncio.wait_for(pytak.protocol_factory(self._config()), CONNECT_TIMEOUT_S)
        w = self._writer
        if hasattr(w, "drain"):  # TCP or TLS stream
            w.write(data)
            await asyncio.wait_for(w.drain(), SEND_TIMEOUT_S)
        else:  # pytak's datagram client (UDP)
            await w.send(data)

    def send(self, item: dict, delivery: int | str = "") -> None:
        data = cot_event(item, stale_s=self.output.stale_s, affiliation=self.output.affiliation)
        try:
            self._loop.run_until_complete(self._send(data))
        except BaseException:
            self._drop()
            raise

    def _drop(self) -> None:
        w, self._writer = self._writer, None
        if w is not None:
            try:
                w.close()
            except Exception:  # already broken: nothing to tidy
                pass

    def close(self) -> None:
        self._drop()
        self._loop.close()


def parse_events(data: bytes) -> list[ET.Element]:
    """CoT events as a TAK server receives them over TCP: XML documents one after the other."""
    text = data.decode()
    out = []
    for chunk in text.split("<?xml")[1:]:
        out.append(ET.fromstring(("<?xml" + chunk).rstrip().encode()))
    return out
