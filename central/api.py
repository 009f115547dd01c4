"""Central's REST API: alerts, snapshots, acknowledgements, node state, dead letters, metrics.

    app = create_app(store, settings, metrics)     # uvicorn.run(app, host=..., port=...)

Everything but /healthz needs a console login (session cookie) or `Authorization: Bearer <token>` with one of the
tokens; with no tokens configured nothing is served ("no token, no data"). OpenAPI at /docs.
Alerts come back as the contract's JSON (`class` key) plus what central adds: received_at,
acknowledgement and the snapshot's URL.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import logging
import re
import time
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.exc import SQLAlchemyError

from central import __version__
from central.auth import Auth, Principal
from central.console import STATIC, Console, console_router
from central.metrics import CentralMetrics
from central.settings import CentralSettings
from central.store import ALERT_STATES, AlertFilters, InvalidCursor, Store, utc
from edge.contract import ULID_PATTERN, Alert, ConfigState, Heartbeat

log = logging.getLogger(__name__)

Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
ULID = re.compile(ULID_PATTERN)
AlertId = Annotated[str, Path(max_length=100, description="The alert's ULID.")]
MAX_BODY_BYTES = 2 * 1024 * 1024
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"  # names are matched as given; control characters never are
Name = Annotated[str | None, Query(max_length=64, pattern=_PRINTABLE)]


# --- response and request models --------------------------------------------------------------

class Health(BaseModel):
    status: Literal["ok", "error"]
    db: Literal["ok", "unavailable"] = Field(description="Whether the database answered a query.")


class AlertView(Alert):
    """An alert as the node sent it, plus central's record of it."""

    received_at: dt.datetime = Field(description="When central received the alert (UTC).")
    acknowledged: bool
    acknowledged_by: str | None = Field(None, description="The operator who acknowledged it last.")
    acknowledged_at: dt.datetime | None = Field(None, description="When it was first acknowledged.")
    ack_note: str | None = None
    snapshot_url: str | None = Field(None, description="Where the evidence JPEG is, once central has it.")
    verdict: Literal["false_alarm"] | None = Field(None, description="false_alarm once someone marked it so.")
    incident_id: str | None = Field(None, description="The incident the alert is part of, if any.")


class AlertPage(BaseModel):
    alerts: list[AlertView] = Field(description="Newest first (event time, then id).")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operator: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100,
                                               pattern=_PRINTABLE)] | None = Field(
        None, description="Who handled the alert; with an API token it is required, a logged-in user is themself.")
    note: Annotated[str, StringConstraints(max_length=2000, pattern=r"^[^\x00]*$")] | None = Field(
        None, description="What was done; replaces an earlier note, none keeps it.")


class NodeView(BaseModel):
    site: str
    node: str
    state: Literal["online", "offline", "unknown"] = Field(
        description="From the node's retained status; offline is its Last Will; unknown before any status.")
    status_time: dt.datetime | None
    last_seen: dt.datetime = Field(description="When any message from the node last reached central.")
    seconds_since_seen: float
    software: str | None
    config_version: str | None
    last_sequence: int | None = Field(description="The newest alert sequence number stored.")
    alerts: int = Field(description="Alerts of this node in the store.")
    last_event_time: dt.datetime | None
    heartbeat: Heartbeat | None = Field(description="The latest heartbeat: per-camera fps, inference, outbox.")
    heartbeat_time: dt.datetime | None
    config_state: ConfigState | None = Field(description="What the node did with its desired config.")
    config_state_time: dt.datetime | None
    desired_version: str | None = Field(None, description="The newest config version central holds for the node.")
    desired_published: bool = Field(False, description="Whether the broker acknowledged that version's publication.")


class NodeList(BaseModel):
    nodes: list[NodeView]


class DeadLetterView(BaseModel):
    id: int
    received_at: dt.datetime
    topic: str
    reason: str
    reason_key: str
    size: int = Field(description="The payload's original size in bytes.")
    truncated: bool = Field(description="True when only the payload's first bytes were kept.")
    payload_text: str | None = Field(description="The kept payload as text, when it is UTF-8.")
    payload_base64: str = Field(description="The kept payload, base64.")


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetterView] = Field(description="Newest first.")


# --- the app ----------------------------------------------------------------------------------

def create_app(store: Store, settings: CentralSettings, metrics: CentralMetrics, *, publish=None,
               console: Console | None = None) -> FastAPI:
    """The API and the console. `publish(topic, payload) -> acknowledged` sends node configs
    (the ingest's MQTT link); without it configs are stored and published at the next connect."""
    console = console or Console(store, settings, publish)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        console.start()
        try:
            yield
        finally:
            console.stop()

    app = FastAPI(
        title="Zastava central",
        version=__version__,
        description="Alerts from every observation post, their evidence, and the posts' state; the operator console.",
        lifespan=lifespan,
    )
    app.state.console = console
    auth = Auth(settings.api_tokens, console.users)
    require_token = auth.require("guard")

    @app.middleware("http")
    async def server_timing(request: Request, call_next):
        # Bodies over the limit are refused before anyone reads them (a config is at most 1 MB).
        size = request.headers.get("content-length")
        if size and (not size.isdigit() or int(size) > MAX_BODY_BYTES):
            return JSONResponse({"detail": f"request body over {MAX_BODY_BYTES} bytes"}, status_code=413)
        if request.method in ("POST", "PUT", "PATCH") and size is None:
            return JSONResponse({"detail": "a request body needs a Content-Length"}, status_code=411)
        # The handler's own time, for `bench console` and browsers' dev tools.
        t0 = time.perf_counter()
        response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - t0) * 1000:.2f}"
        return response

    @app.exception_handler(SQLAlchemyError)
    def database_down(_request: Request, e: SQLAlchemyError) -> JSONResponse:
        log.error("database error: %s", e)
        return JSONResponse({"detail": "the database is unavailable"}, status_code=503)

    @app.get("/healthz", response_model=Health, tags=["service"], responses={503: {"model": Health}})
    def healthz():
        try:
            store.ping()
        except SQLAlchemyError as e:
            # Unauthenticated: the reason goes to the log, not to whoever asks.
            log.error("health check: the database did not answer: %s", e)
            return JSONResponse(Health(status="error", db="unavailable").model_dump(), status_code=503)
        return Health(status="ok", db="ok")

    @app.get("/metrics", tags=["service"], dependencies=[Depends(require_token)],
             response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    def prometheus_metrics() -> Response:
        return Response(metrics.render(store), media_type=CONTENT_TYPE_LATEST)

    api = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)],
                    responses={401: {"description": "Missing or wrong bearer token."}})

    @api.get("/alerts", response_model=AlertPage, tags=["alerts"])
    def list_alerts(
        since: Annotated[dt.datetime | None, Query(description="Event time from (inclusive), ISO 8601.")] = None,
        until: Annotated[dt.datetime | None, Query(description="Event time before (exclusive), ISO 8601.")] = None,
        site: Name = None,
        node: Name = None,
        camera: Name = None,
        class_name: Annotated[str | None, Query(alias="class", max_length=64, pattern=_PRINTABLE,
                                                description="Object class, e.g. person.")] = None,
        rule: Name = None,
        severity: Annotated[list[str] | None, Query(
            description=f"One or more of {', '.join(SEVERITIES)}; comma-separated or repeated.")] = None,
        acknowledged: bool | None = None,
        state: Annotated[list[str] | None, Query(
            description=f"One or more of {', '.join(ALERT_STATES)}; comma-separated or repeated.")] = None,
        incident: Annotated[str | None, Query(max_length=26, description="Alerts of this incident.")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page.")] = None,
    ):
        severities = tuple(s.strip() for item in severity or () for s in item.split(",") if s.strip())
        unknown = [s for s in severities if s not in SEVERITIES]
        if unknown:
            _bad_query("severity", f"unknown severity {unknown[0]!r}; expected {', '.join(SEVERITIES)}", severity)
        states = tuple(s.strip() for item in state or () for s in item.split(",") if s.strip())
        bad = [s for s in states if s not in ALERT_STATES]
        if bad:
            _bad_query("state", f"unknown state {bad[0]!r}; expected {', '.join(ALERT_STATES)}", state)
        filters = AlertFilters(since=_utc_query("since", since), until=_utc_query("until", until), site=site,
                               node=node, camera=camera, class_name=class_name, rule=rule, severity=severities,
                               acknowledged=acknowledged, states=states, incident_id=incident)
        try:
            rows, next_cursor = store.list_alerts(filters, cursor, limit)
        except InvalidCursor as e:
            _bad_query("cursor", str(e), cursor)
        return {"alerts": rows, "next_cursor": next_cursor}

    @api.get("/alerts/{alert_id}", response_model=AlertView, tags=["alerts"],
             responses={404: {"description": "No such alert."}})
    def get_alert(alert_id: AlertId):
        alert = store.get_alert(alert_id) if _known(alert_id) else None
        return alert or _not_found("alert", alert_id)

    @api.get("/alerts/{alert_id}/snapshot", tags=["alerts"], response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}},
                        404: {"description": "No snapshot (yet) for this alert."}})
    def get_snapshot(alert_id: AlertId) -> Response:
        data = store.get_snapshot(alert_id) if _known(alert_id) else None
        if data is None:
            _not_found("snapshot of alert", alert_id)
        # A snapshot never changes once stored (the first copy wins), so caches may keep it.
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400, immutable"})

    @api.post("/alerts/{alert_id}/ack", response_model=AlertView, tags=["alerts"],
              responses={404: {"description": "No such alert."}})
    def acknowledge(alert_id: AlertId, body: Acknowledgement, who: Principal = Depends(require_token)):
        if who.kind == "token" and not body.operator:
            _bad_body("operator", "an API token must say which operator handled the alert")
        alert = console.acknowledge(alert_id, who, body.operator, body.note) if _known(alert_id) else None
        return alert or _not_found("alert", alert_id)

    @api.get("/nodes", response_model=NodeList, tags=["nodes"])
    def list_nodes():
        now = dt.datetime.now(dt.timezone.utc)
        desired = console.configs.desired()
        out = []
        for n in store.nodes():
            d = desired.get((n["site"], n["node"]))
            out.append({**n, "seconds_since_seen": round(max(0.0, (now - n["last_seen"]).total_seconds()), 3),
                        "desired_version": d["version"] if d else None,
                        "desired_published": bool(d and d["published_at"])})
        return {"nodes": out}

    @api.get("/dead-letters", response_model=DeadLetterList, tags=["ingest"])
    def list_dead_letters(limit: Annotated[int, Query(ge=1, le=1000)] = 100):
        return {"dead_letters": [_dead_letter_view(d) for d in store.dead_letters(limit)]}

    app.include_router(api)
    app.include_router(console_router(console, auth))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _bad_body(name: str, message: str) -> None:
    raise RequestValidationError([{"type": "value_error", "loc": ("body", name), "msg": message, "input": None}])


def _bad_query(name: str, message: str, value) -> None:
    # The same 422 shape FastAPI gives for any other bad query value.
    raise RequestValidationError([{"type": "value_error", "loc": ("query", name), "msg": message, "input": value}])


def _known(alert_id: str) -> bool:
    """Only a ULID can name an alert; anything else is unknown without asking the database."""
    return ULID.fullmatch(alert_id) is not None


def _not_found(what: str, alert_id: str):
    raise HTTPException(404, f"no {what} {alert_id[:26]!r}")


def _utc_query(name: str, value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return utc(value)
    except OverflowError:
        _bad_query(name, "the time is out of range once converted to UTC", value.isoformat())


def _dead_letter_view(d: dict) -> dict:
    payload: bytes = d["payload"]
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        text = None
    return {**{k: d[k] for k in ("id", "received_at", "topic", "reason", "reason_key", "size")},
            "truncated": len(payload) < d["size"], "payload_text": text,
            "payload_base64": base64.b64encode(payload).decode()}
