"""The operator console's services and routes: login, live feed, false alarms, incidents, node
configs, plan view, users, audit log; and the web page itself (central/web/static).

    console = Console(store, settings, publish=ingest.publish_retained)
    app.include_router(console_router(console, auth))
    console.start()   # live feed, correlator, outputs worker; console.stop() at the end

Every route needs a login or an API token; what a role may do is checked per route (guard:
view and acknowledge; operator: also node configs; admin: also users and nodes).
"""

import asyncio
import datetime as dt
import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import delete, select, update

from central.audit import AuditLog
from central.auth import COOKIE, Auth, Principal
from central.configs import ConfigRefused, ConfigService, NoSuchVersion, node_config, validate, with_zones
from central.console_tables import feedback, incidents
from central.correlator import Correlator
from central.feed import FeedWatcher, Hub, to_json
from central.incidents import IncidentRules
from central.outputs import Outputs, SinkFilter
from central.settings import CentralSettings
from central.store import AlertFilters, Store, alerts, nodes, snapshots
from central.users import UserError, Users
from edge.contract import SLUG
from edge.errors import ZastavaError

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
STATIC = Path(__file__).parent / "web" / "static"
SlugPath = Annotated[str, PathParam(pattern=rf"^{SLUG}$")]
Note = Annotated[str, StringConstraints(max_length=2000, pattern=r"^[^\x00]*$")] | None
PLAN_ALERTS = 500
LOGIN_CONCURRENCY = 2  # scrypt takes 128 MiB a check: at most this many at once
SESSION_RECHECK_S = 30.0  # how soon a live feed notices its session ended


# --- request bodies ------------------------------------------------------------------------------

class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Login(_Body):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class NoteBody(_Body):
    note: Note = None


class ConfigText(_Body):
    yaml: Annotated[str, StringConstraints(max_length=1_000_000)]
    comment: Annotated[str, StringConstraints(max_length=500)] | None = None


class Rollback(_Body):
    number: int = Field(ge=1)


class ZoneEdit(_Body):
    yaml: Annotated[str, StringConstraints(max_length=1_000_000)]
    camera: Annotated[str, StringConstraints(max_length=64)]
    zones: list[dict[str, Any]] = Field(max_length=64)
    lines: list[dict[str, Any]] = Field(max_length=64)


class NewUser(_Body):
    username: Annotated[str, StringConstraints(max_length=64)]
    password: Annotated[str, StringConstraints(max_length=1024)]
    role: Literal["guard", "operator", "admin"]


class UserChange(_Body):
    role: Literal["guard", "operator", "admin"] | None = None
    password: Annotated[str, StringConstraints(max_length=1024)] | None = None
    active: bool | None = None


# --- services ------------------------------------------------------------------------------------

class Console:
    def __init__(self, store: Store, settings: CentralSettings, publish=None):
        self.store = store
        self.settings = settings
        self.users = Users(store.engine, scrypt_n=settings.password_scrypt_n)
        self.audit = AuditLog(store.engine)
        self.configs = ConfigService(store.engine, self.audit, publish)
        self.hub = Hub()
        inc = settings.incidents
        self.correlator = (Correlator(store.engine, IncidentRules(inc.distance_m, inc.time_slack_s), inc.lookback_s)
                           if settings.correlate else None)
        self.outputs = Outputs(store.engine, _sinks(settings),
                               {o.name: SinkFilter(tuple(o.kinds), o.min_severity) for o in [*settings.tak, *settings.webhooks]})
        self.watcher = FeedWatcher(store, self.hub, interval_s=settings.feed_interval_s, on_new=self.new_alerts)
        self._posts: dict[tuple[str, str], tuple[str | None, Any]] = {}
        self._login_slots = threading.BoundedSemaphore(LOGIN_CONCURRENCY)
        self.started = False
        self._bootstrapped = False

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        if self.correlator is not None:
            self.outputs.start()
        self.watcher.start()  # its thread loads the correlator's recent alerts first: a database away waits

    def stop(self) -> None:
        if not self.started:
            return
        self.watcher.stop()
        self.outputs.stop()
        self.started = False

    # -- what arrives ----------------------------------------------------------------------------

    def new_alerts(self, new: list[dict]) -> dict:
        """The live feed's hook: correlate, queue outputs; returns what the feed event carries besides."""
        if self.correlator is None:
            return {}
        if not self._bootstrapped:
            self.correlator.bootstrap(exclude={a["id"] for a in new})
            self._bootstrapped = True
        changed = self.correlator.process(new)
        if self.outputs.sinks:
            posts = {(a["site"], a["node"]) for a in new}
            where = {p: self.post_position(*p) for p in posts}  # one config lookup per post, not per alert
            for a in new:
                lat, lon = where[(a["site"], a["node"])]
                self.outputs.enqueue("alert", a["id"], 1, {"kind": "alert", "alert": a, "post_lat": lat, "post_lon": lon},
                                     a["severity"])
        views = self.incident_views(changed)
        if self.outputs.sinks:
            for inc in views:
                self.outputs.enqueue("incident", inc["id"], inc["revision"], {"kind": "incident", "incident": inc},
                                     inc["severity"])
        if changed:
            # The alerts now in each changed incident (older ones too, after a merge) for the consoles.
            return {"incidents": views, "incident_alerts": self._incident_members(changed)}
        return {}

    def _incident_members(self, incident_ids: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        with self.store.engine.connect() as conn:
            for alert_id, inc in conn.execute(select(alerts.c.id, alerts.c.incident_id)
                                              .where(alerts.c.incident_id.in_(incident_ids))):
                out.setdefault(inc, []).append(alert_id)
        return out

    def post_position(self, site: str, node: str) -> tuple[float | None, float | None]:
        cfg = self.node_config(site, node)
        return (cfg.node.lat, cfg.node.lon) if cfg is not None else (None, None)

    def node_config(self, site: str, node: str):
        """The node's desired config, parsed (cached per version)."""
        row = self.configs.get(site, node)
        version = row["version"] if row else None
        cached = self._posts.get((site, node))
        if cached and cached[0] == version:
            return cached[1]
        cfg = node_config(row)
        self._posts[(site, node)] = (version, cfg)
        return cfg

    # -- incidents -------------------------------------------------------------------------------

    def incident_views(self, ids: list[str] | None = None, *, state: str | None = None, limit: int = 200) -> list[dict]:
        q = select(incidents)
        if ids is not None:
            if not ids:
                return []
            q = q.where(incidents.c.id.in_(ids))
        if state == "open":
            q = q.where(incidents.c.acknowledged_at.is_(None))
        elif state == "acknowledged":
            q = q.where(incidents.c.acknowledged_at.is_not(None))
        q = q.order_by(incidents.c.last_time.desc(), incidents.c.id.desc()).limit(limit)
        with self.store.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [{**r, "summary": json.loads(r["summary"]), "acknowledged": r["acknowledged_at"] is not None}
                for r in rows]

    def ack_incident(self, incident_id: str, who: Principal, note: str | None) -> dict | None:
        now = dt.datetime.now(UTC)
        with self.store.engine.begin() as conn:
            done = conn.execute(update(incidents).where(incidents.c.id == incident_id).values(
                acknowledged_at=now, acknowledged_by=who.name, ack_note=note)).rowcount
            if not done:
                return None
            ids = list(conn.execute(select(alerts.c.id).where(alerts.c.incident_id == incident_id,
                                                              alerts.c.acknowledged_at.is_(None))).scalars())
            conn.execute(update(alerts).where(alerts.c.incident_id == incident_id, alerts.c.acknowledged_at.is_(None))
                         .values(acknowledged_at=now, acknowledged_by=who.name, ack_note=note))
            self.audit.record(who.name, "incident_ack", f"incident:{incident_id}", {"note": note, "alerts": ids}, conn=conn)
        views = self.incident_views([incident_id])
        self.hub.publish({"type": "update", "alerts": self.store.get_alerts(ids), "incidents": views})
        return views[0] if views else None

    # -- alerts ----------------------------------------------------------------------------------

    def acknowledge(self, alert_id: str, who: Principal, operator: str | None, note: str | None) -> dict | None:
        name = operator if who.kind == "token" and operator else who.name
        alert = self.store.acknowledge(alert_id, name, note)
        if alert is not None:
            self.audit.record(who.name, "ack", f"alert:{alert_id}", {"note": note, "operator": name})
            self.hub.publish({"type": "update", "alerts": [alert]})
        return alert

    def false_alarm(self, alert_id: str, who: Principal, note: str | None) -> dict | None:
        alert = self.store.get_alert(alert_id)
        if alert is None:
            return None
        now = dt.datetime.now(UTC)
        with self.store.engine.begin() as conn:
            conn.execute(update(alerts).where(alerts.c.id == alert_id).values(verdict="false_alarm"))
            conn.execute(feedback.insert().values(
                alert_id=alert_id, verdict="false_alarm", note=note, by=who.name, at=now, site=alert["site"],
                node=alert["node"], camera=alert["camera"], rule=alert["rule"], zone=alert.get("zone"),
                class_name=alert["class"], bbox=json.dumps(alert.get("bbox"))))
            self.audit.record(who.name, "false_alarm", f"alert:{alert_id}", {"note": note}, conn=conn)
        alert = self.store.acknowledge(alert_id, who.name, note)
        self.hub.publish({"type": "update", "alerts": [alert]})
        return alert

    # -- plan ------------------------------------------------------------------------------------

    def plan(self) -> dict:
        posts = []
        for n in self.store.nodes():
            cfg = self.node_config(n["site"], n["node"])
            post = {"site": n["site"], "node": n["node"], "state": n["state"], "name": None, "lat": None, "lon": None,
                    "cameras": [], "geo_zones": []}
            if cfg is not None:
                post.update(name=cfg.node.name, lat=cfg.node.lat, lon=cfg.node.lon,
                            geo_zones=[{"id": z.id, "name": z.name, "kind": z.kind, "points": z.points, "color": z.color}
                                       for z in cfg.geo_zones],
                            cameras=[_camera_wedge(c, cfg) for c in cfg.cameras])
            posts.append(post)
        recent, _ = self.store.list_alerts(AlertFilters(), None, PLAN_ALERTS)
        placed = [{"id": a["id"], "lat": a["position"]["lat"], "lon": a["position"]["lon"],
                   "sigma_m": a["position"].get("sigma_m"), "severity": a["severity"], "class": a["class"],
                   "time": a["time"], "acknowledged": a["acknowledged"], "incident_id": a.get("incident_id")}
                  for a in recent if a.get("position")]
        return {"posts": posts, "alerts": placed, "incidents": [i for i in self.incident_views(limit=100) if i["lat"]],
                "tiles_url": self.settings.map_tiles_url}


def _camera_wedge(cam, cfg) -> dict:
    """A camera's field of view on the plan: where it stands, where it looks, how wide."""
    g = cam.geometry
    out = {"id": cam.id, "name": cam.name, "lat": cfg.node.lat, "lon": cfg.node.lon, "heading_deg": None,
           "hfov_deg": None, "range_m": None}
    if g is None:
        return out
    if g.position:
        out["lat"], out["lon"] = g.position
    out["heading_deg"] = g.heading_deg
    hfov = g.hfov_deg
    if hfov is None and g.fx and g.image_size:
        hfov = math.degrees(2 * math.atan(g.image_size[0] / (2 * g.fx)))
    out["hfov_deg"] = hfov
    if g.height_m and g.pitch_deg < 0:
        # Where the optical axis meets the ground, twice over (the far edge of the useful view), capped.
        out["range_m"] = min(2000.0, 2 * g.height_m / math.tan(math.radians(-g.pitch_deg)))
    return out


def _sinks(settings: CentralSettings) -> list:
    sinks: list = []
    if settings.tak:
        from central.tak import TakSink

        sinks += [TakSink(o) for o in settings.tak]
    if settings.webhooks:
        from central.webhooks import WebhookSink

        sinks += [WebhookSink(o) for o in settings.webhooks]
    return sinks


# --- routes --------------------------------------------------------------------------------------

def console_router(console: Console, auth: Auth) -> APIRouter:
    guard, operator, admin = auth.require("guard"), auth.require("operator"), auth.require("admin")
    Guard = Annotated[Principal, Depends(guard)]
    Operator = Annotated[Principal, Depends(operator)]
    Admin = Annotated[Principal, Depends(admin)]
    settings = console.settings
    r = APIRouter()

    # -- the page --------------------------------------------------------------------------------
    @r.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=_page_headers(settings))

    # -- sessions --------------------------------------------------------------------------------
    @r.post("/api/v1/login", tags=["console"])
    def login(body: Login, request: Request, response: Response):
        with console._login_slots:
            user = console.users.authenticate(body.username, body.password)
        client = request.client.host if request.client else None
        if user is None:
            console.audit.record(body.username[:64], "login_failed", f"user:{body.username[:64]}", {"client": client})
            raise HTTPException(401, "wrong username or password")
        token, expires = console.users.open_session(user, settings.session_ttl_s)
        response.set_cookie(COOKIE, token, max_age=int(settings.session_ttl_s), httponly=True, samesite="strict",
                            secure=settings.cookie_secure, path="/")
        console.audit.record(user.username, "login", f"user:{user.username}", {"client": client})
        return {"username": user.username, "role": user.role, "expires_at": expires}

    @r.post("/api/v1/logout", tags=["console"])
    def logout(request: Request, response: Response, who: Guard):
        token = request.cookies.get(COOKIE)
        if token:
            console.users.close_session(token)
        response.delete_cookie(COOKIE, path="/")
        console.audit.record(who.name, "logout", f"user:{who.name}")
        return {"ok": True}

    @r.get("/api/v1/me", tags=["console"])
    def me(who: Guard):
        return {"username": who.name, "role": who.role, "kind": who.kind,
                "tiles_url": settings.map_tiles_url}

    # -- live feed -------------------------------------------------------------------------------
    @r.get("/api/v1/stream", response_class=EventSourceResponse, tags=["console"])
    async def stream(request: Request, who: Guard):
        """Server-sent events: `alerts` (new, batched), `update` (acknowledged, false alarm, incident),
        `resync` (reload the page of alerts: this console fell behind)."""
        sub = console.hub.subscribe(asyncio.get_running_loop())
        cookie = request.cookies.get(COOKIE)
        checked = time.monotonic()
        try:
            yield ServerSentEvent(event="hello", raw_data=to_json({"type": "hello", "user": who.name}), retry=2000)
            while True:
                if cookie and time.monotonic() - checked > SESSION_RECHECK_S:
                    checked = time.monotonic()
                    # A session that expired (or was ended) ends its stream too.
                    if await asyncio.to_thread(console.users.session_user, cookie) is None:
                        return
                try:
                    item = await asyncio.wait_for(sub.queue.get(), 15)
                except TimeoutError:
                    yield ServerSentEvent(comment="keep-alive")
                    continue
                kind, text = item
                yield ServerSentEvent(event=kind, raw_data=text)
        finally:
            console.hub.unsubscribe(sub)

    # -- alerts ----------------------------------------------------------------------------------
    @r.post("/api/v1/alerts/{alert_id}/false-alarm", tags=["alerts"])
    def false_alarm(alert_id: Annotated[str, PathParam(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")], body: NoteBody, who: Guard):
        """Mark an alert as a false alarm: acknowledged, and kept as feedback (rule, camera, zone,
        class, box) for a later suppression rule."""
        alert = console.false_alarm(alert_id, who, body.note)
        if alert is None:
            raise HTTPException(404, f"no alert {alert_id!r}")
        return alert

    @r.get("/api/v1/alerts/{alert_id}/history", tags=["alerts"])
    def alert_history(alert_id: Annotated[str, PathParam(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")], who: Guard):
        return {"entries": console.audit.entries(target=f"alert:{alert_id}", limit=100)}

    @r.get("/api/v1/feedback", tags=["alerts"])
    def list_feedback(who: Guard, limit: Annotated[int, Query(ge=1, le=1000)] = 100):
        with console.store.engine.connect() as conn:
            rows = conn.execute(select(feedback).order_by(feedback.c.id.desc()).limit(limit)).mappings().all()
        return {"feedback": [{**r, "bbox": json.loads(r["bbox"]) if r["bbox"] else None} for r in rows]}

    # -- incidents -------------------------------------------------------------------------------
    @r.get("/api/v1/incidents", tags=["incidents"])
    def list_incidents(who: Guard, state: Literal["open", "acknowledged"] | None = None,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 200):
        return {"incidents": console.incident_views(state=state, limit=limit)}

    @r.get("/api/v1/incidents/{incident_id}", tags=["incidents"])
    def get_incident(incident_id: Annotated[str, PathParam(max_length=26)], who: Guard):
        views = console.incident_views([incident_id])
        if not views:
            raise HTTPException(404, f"no incident {incident_id!r}")
        members, _ = console.store.list_alerts(AlertFilters(incident_id=incident_id), None, 1000)
        return {**views[0], "alerts": members}

    @r.post("/api/v1/incidents/{incident_id}/ack", tags=["incidents"])
    def ack_incident(incident_id: Annotated[str, PathParam(max_length=26)], body: NoteBody, who: Guard):
        """Acknowledge the incident and every alert in it that is still open."""
        view = console.ack_incident(incident_id, who, body.note)
        if view is None:
            raise HTTPException(404, f"no incident {incident_id!r}")
        return view

    # -- node configs ----------------------------------------------------------------------------
    @r.get("/api/v1/nodes/{site}/{node}/config", tags=["configs"])
    def get_config(site: SlugPath, node: SlugPath, who: Guard):
        """The desired config (newest version) with the list of versions."""
        current = console.configs.get(site, node)
        return {"site": site, "node": node, "current": current, "versions": console.configs.versions(site, node),
                "state": _config_state(console, site, node)}

    @r.get("/api/v1/nodes/{site}/{node}/config/versions/{number}", tags=["configs"])
    def get_version(site: SlugPath, node: SlugPath, number: int, who: Guard):
        row = console.configs.get(site, node, number)
        if row is None:
            raise HTTPException(404, f"{site}/{node} has no config version {number}")
        return {**row, "diff": console.configs.diff(site, node, number)}

    @r.post("/api/v1/nodes/{site}/{node}/config/validate", tags=["configs"])
    def validate_config(site: SlugPath, node: SlugPath, body: ConfigText, who: Guard):
        check = validate(body.yaml, site, node)
        return {"ok": check.ok, "errors": [_err(e) for e in check.errors], "config": check.config}

    @r.put("/api/v1/nodes/{site}/{node}/config", tags=["configs"],
           responses={422: {"description": "The config did not pass: errors located at their fields."}})
    def save_config(site: SlugPath, node: SlugPath, body: ConfigText, who: Operator):
        """Validate, store as the next version, publish it as the node's retained config."""
        try:
            row = console.configs.save(site, node, body.yaml, author=who.name, comment=body.comment)
        except ConfigRefused as e:
            return JSONResponse({"detail": "the config did not pass validation",
                                 "errors": [_err(x) for x in e.check.errors]}, status_code=422)
        return {"version": row["version"], "number": row["number"], "published": row["published_at"] is not None}

    @r.post("/api/v1/nodes/{site}/{node}/config/rollback", tags=["configs"])
    def rollback(site: SlugPath, node: SlugPath, body: Rollback, who: Operator):
        """A new version with an earlier version's content, published like any other."""
        try:
            row = console.configs.rollback(site, node, body.number, author=who.name)
        except NoSuchVersion as e:
            raise HTTPException(404, str(e)) from None
        except ConfigRefused as e:  # an old version the schema no longer accepts
            return JSONResponse({"detail": str(e), "errors": [_err(x) for x in e.check.errors]}, status_code=422)
        return {"version": row["version"], "number": row["number"], "published": row["published_at"] is not None}

    @r.post("/api/v1/configs/zones", tags=["configs"])
    def edit_zones(body: ZoneEdit, who: Operator):
        """The config text with one camera's zones and lines replaced (the zone editor's drawing)."""
        try:
            return {"yaml": with_zones(body.yaml, body.camera, body.zones, body.lines)}
        except ConfigRefused as e:
            return JSONResponse({"detail": str(e), "errors": [_err(x) for x in e.check.errors]}, status_code=422)
        except ZastavaError as e:
            raise HTTPException(422, str(e)) from None

    @r.get("/api/v1/nodes/{site}/{node}/cameras/{camera}/snapshot", tags=["configs"], response_class=Response,
           responses={200: {"content": {"image/jpeg": {}}}})
    def camera_snapshot(site: SlugPath, node: SlugPath, camera: Annotated[str, PathParam(max_length=64)], who: Guard):
        """The camera's latest evidence picture (for drawing zones), with the picture's size in
        X-Frame-Width / X-Frame-Height (zones are in the camera's full-size pixels)."""
        with console.store.engine.connect() as conn:
            row = conn.execute(
                select(alerts.c.payload, snapshots.c.data).join(snapshots, snapshots.c.alert_id == alerts.c.id)
                .where(alerts.c.site == site, alerts.c.node == node, alerts.c.camera == camera)
                .order_by(alerts.c.event_time.desc()).limit(1)).first()
        if row is None:
            raise HTTPException(404, f"no picture from {site}/{node}/{camera} yet")
        size = json.loads(row.payload).get("frame_size") or [0, 0]
        return Response(row.data, media_type="image/jpeg",
                        headers={"X-Frame-Width": str(size[0]), "X-Frame-Height": str(size[1]), "Cache-Control": "no-store"})

    # -- nodes -----------------------------------------------------------------------------------
    @r.delete("/api/v1/nodes/{site}/{node}", tags=["nodes"])
    def forget_node(site: SlugPath, node: SlugPath, who: Admin):
        """Take a decommissioned node off the console (its alerts and config versions stay)."""
        with console.store.engine.begin() as conn:
            done = conn.execute(delete(nodes).where(nodes.c.site == site, nodes.c.node == node)).rowcount
            console.audit.record(who.name, "node_forget", f"node:{site}/{node}", None, conn=conn)
        if not done:
            raise HTTPException(404, f"no node {site}/{node}")
        return {"ok": True}

    # -- plan ------------------------------------------------------------------------------------
    @r.get("/api/v1/plan", tags=["console"])
    def plan(who: Guard):
        return console.plan()

    # -- users and audit -------------------------------------------------------------------------
    @r.get("/api/v1/users", tags=["users"])
    def list_users(who: Admin):
        return {"users": [_user_view(u) for u in console.users.list()]}

    @r.post("/api/v1/users", tags=["users"], status_code=201)
    def create_user(body: NewUser, who: Admin):
        try:
            user = console.users.create(body.username, body.password, body.role)
        except UserError as e:
            raise HTTPException(422, str(e)) from None
        console.audit.record(who.name, "user_create", f"user:{user.username}", {"role": user.role})
        return _user_view(user)

    @r.patch("/api/v1/users/{username}", tags=["users"])
    def change_user(username: Annotated[str, PathParam(max_length=64)], body: UserChange, who: Admin):
        try:
            user = console.users.update(username, role=body.role, password=body.password, active=body.active)
        except UserError as e:
            raise HTTPException(404 if str(e).startswith("no user") else 422, str(e)) from None
        console.audit.record(who.name, "user_update", f"user:{username}",
                             {"role": body.role, "active": body.active, "password_changed": body.password is not None})
        return _user_view(user)

    @r.get("/api/v1/audit", tags=["users"])
    def audit(who: Operator, target: Annotated[str | None, Query(max_length=200)] = None,
              before: int | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100):
        return {"entries": console.audit.entries(limit=limit, target=target, before=before)}

    @r.get("/api/v1/outputs", tags=["console"])
    def list_outputs(who: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 100):
        items = console.outputs.items(limit)
        return {"pending": console.outputs.pending(),
                "items": [{k: v for k, v in i.items() if k != "payload"} for i in items]}

    return r


def _err(e) -> dict:
    return {"path": e.path, "message": e.message, "line": e.line}


def _user_view(u) -> dict:
    return {"username": u.username, "role": u.role, "active": u.active, "created_at": u.created_at,
            "updated_at": u.updated_at}


def _config_state(console: Console, site: str, node: str) -> dict:
    """Desired vs applied: the newest version, and what the node last said about its config."""
    desired = console.configs.get(site, node)
    reported = next((n for n in console.store.nodes() if n["site"] == site and n["node"] == node), None)
    cs = reported["config_state"] if reported else None
    return {"desired_version": desired["version"] if desired else None,
            "published": bool(desired and desired["published_at"]),
            "applied_version": cs.get("applied_version") if cs else None,
            "state": cs.get("state") if cs else None,
            "errors": cs.get("errors") if cs else [],
            "reported_at": reported["config_state_time"] if reported else None}


def _page_headers(settings: CentralSettings) -> dict[str, str]:
    img = "'self' data: blob:"
    if settings.map_tiles_url and settings.map_tiles_url.startswith("http"):
        from urllib.parse import urlsplit

        parts = urlsplit(settings.map_tiles_url)
        img += f" {parts.scheme}://{parts.netloc}"
    return {
        "Content-Security-Policy": f"default-src 'self'; img-src {img}; style-src 'self'; script-src 'self'; "
                                   "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
