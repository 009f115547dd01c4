"""The node's live pictures over HTTP: each camera's overlay (tracks, zones, projected radar and
AIS targets, fusion links) as an MJPEG stream, and the post's plan view.

    GET /                      a page with every stream
    GET /cameras/{id}.mjpg     multipart/x-mixed-replace JPEG stream, at most max_fps
    GET /cameras/{id}.jpg      the next annotated frame
    GET /plan.mjpg, /plan.jpg  the plan view (with radar/AIS feeds or geo rules)
    GET /radar/{id}.mjpg, .jpg the radar picture of a radar video feed (CAT240, display): PPI, plots, tracks, zones

Frames are drawn in the camera's own thread, and only while someone watches: an unwatched
node pays nothing, and drawing never races the tracker that owns the tracks. The standard
library's threading HTTP server is enough for a handful of viewers on one node; anything
wider goes through a TLS reverse proxy, and a token guards any address beyond loopback.
"""

from __future__ import annotations

import hmac
import html
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

from edge.config import LiveViewSettings
from edge.overlay import Overlay
from edge.plan_view import draw_radar_on_frame

log = logging.getLogger(__name__)
BOUNDARY = "zastava-frame"
FRAME_WAIT_S = 5.0


class _Feed:
    """One camera's latest JPEG, drawn on demand."""

    def __init__(self) -> None:
        self.jpeg: bytes | None = None
        self.seq = 0
        self.watchers = 0
        self.wanted = False  # a one-shot request is waiting
        self.drawn_at = 0.0
        self.overlay: Overlay | None = None
        self.cond = threading.Condition()


class LiveView:
    def __init__(self, settings: LiveViewSettings, *, plan: Callable[[float], np.ndarray] | None = None,
                 picture=None, radar=None):
        self.settings = settings
        self.radar = radar  # edge.radar.overlay.RadarVideoView: the radar video feeds' pictures
        self.plan = plan  # t -> plan view image
        self.picture = picture  # the radar picture, for the targets drawn on each camera
        self._feeds: dict[str, _Feed] = {}
        self._lock = threading.Lock()
        self._clients = 0
        self._server: ThreadingHTTPServer | None = None
        self._plan_cache: tuple[float, bytes] | None = None
        self.requests = self.refused = 0

    # -- from the camera threads -----------------------------------------------------------------

    def _feed(self, camera: str) -> _Feed:
        with self._lock:
            return self._feeds.setdefault(camera, _Feed())

    def update(self, camera: str, result, pipeline, alerts=()) -> None:
        """After each frame: note its alerts; draw and encode it only when someone is watching."""
        feed = self._feed(camera)
        if feed.overlay is None or feed.overlay.camera is not pipeline.camera:
            old = feed.overlay
            feed.overlay = Overlay(pipeline.camera)
            if old is not None:
                feed.overlay._alerted = old._alerted
        feed.overlay.note_alerts(alerts, result.frame.timestamp)
        if not (feed.watchers or feed.wanted):
            return
        now = time.monotonic()
        if now - feed.drawn_at < 1.0 / self.settings.max_fps:
            return
        jpeg = self._encode(self._draw(feed, result, pipeline))
        with feed.cond:
            feed.jpeg, feed.seq, feed.drawn_at, feed.wanted = jpeg, feed.seq + 1, now, False
            feed.cond.notify_all()

    def _draw(self, feed: _Feed, result, pipeline) -> np.ndarray:
        frame = result.frame
        geo = pipeline.rules.geometry((frame.width, frame.height))
        img = feed.overlay.draw(frame.image, result.tracks, frame.timestamp, geo.zones, geo.lines,
                                pipeline.wall(frame.timestamp))
        if self.picture is not None and pipeline.model is not None:
            targets = self.picture.store.snapshot(result.wall).targets
            draw_radar_on_frame(img, pipeline.model, targets, result.fusion.links if result.fusion else {}, result.tracks)
        return img

    def _encode(self, img: np.ndarray) -> bytes:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.settings.jpeg_quality])
        if not ok:
            raise ValueError("JPEG encoding failed")
        return buf.tobytes()

    # -- for the HTTP handlers ---------------------------------------------------------------------

    def cameras(self) -> list[str]:
        with self._lock:
            return sorted(self._feeds)

    def next_frame(self, camera: str, after: int, timeout: float = FRAME_WAIT_S) -> tuple[int, bytes] | None:
        """The first picture newer than `after` (None when the camera gives none in time)."""
        feed = self._feed(camera)
        with feed.cond:
            if feed.seq <= after:
                feed.wanted = True
                feed.cond.wait_for(lambda: feed.seq > after, timeout)
            return (feed.seq, feed.jpeg) if feed.seq > after and feed.jpeg else None

    def plan_jpeg(self) -> bytes | None:
        if self.plan is None:
            return None
        now = time.monotonic()
        with self._lock:
            cached = self._plan_cache
        if cached is not None and now - cached[0] < 1.0 / self.settings.max_fps:
            return cached[1]
        jpeg = self._encode(self.plan(time.time()))
        with self._lock:
            self._plan_cache = (now, jpeg)
        return jpeg

    def radar_jpeg(self, feed: str) -> bytes | None:
        img = self.radar.render(feed, time.time()) if self.radar is not None else None
        return None if img is None else self._encode(img)

    def _watch(self, camera: str, delta: int) -> None:
        feed = self._feed(camera)
        with feed.cond:
            feed.watchers += delta

    def _admit(self) -> bool:
        with self._lock:
            if self._clients >= self.settings.max_clients:
                self.refused += 1
                return False
            self._clients += 1
            return True

    def _leave(self) -> None:
        with self._lock:
            self._clients -= 1

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> int:
        view = self

        class Handler(_Handler):
            live = view

        self._server = ThreadingHTTPServer((self.settings.bind, self.settings.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="live-view", daemon=True).start()
        log.info("live view on http://%s:%d/", self.settings.bind, self.port)
        return self.port

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else 0

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _Handler(BaseHTTPRequestHandler):
    live: LiveView
    server_version = "zastava-live"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args) -> None:  # requests are counted, not logged one by one
        log.debug("live view: " + fmt, *args)

    def _authorised(self, query: dict) -> bool:
        token = self.live.settings.token
        if token is None:
            return True
        given = self.headers.get("Authorization", "")
        given = given[7:] if given.startswith("Bearer ") else (query.get("token") or [""])[0]
        return hmac.compare_digest(given.encode(), token.encode())

    def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        self.live.requests += 1
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not self._authorised(query):
            self._send(401, b"a bearer token is needed\n")
            return
        path = url.path
        if path == "/":
            self._send(200, self._index(query).encode(), "text/html; charset=utf-8")
        elif path in ("/plan.jpg", "/plan.mjpg"):
            if self.live.plan is None:
                self._send(404, b"this node has no radar/AIS feeds or geo rules: no plan view\n")
            elif path.endswith(".jpg"):
                self._send(200, self.live.plan_jpeg(), "image/jpeg")
            else:
                self._stream(lambda after: (after + 1, self.live.plan_jpeg()), None)
        elif path.startswith("/radar/") and path.endswith((".jpg", ".mjpg")):
            feed = path[len("/radar/"):].rsplit(".", 1)[0]
            feeds = self.live.radar.feeds() if self.live.radar is not None else []
            if feed not in feeds:
                self._send(404, f"no radar video feed {feed!r} (feeds: {', '.join(feeds) or 'none'})\n".encode())
            elif path.endswith(".jpg"):
                self._send(200, self.live.radar_jpeg(feed), "image/jpeg")
            else:
                self._stream(lambda after: (after + 1, self.live.radar_jpeg(feed)), None)
        elif path.startswith("/cameras/") and path.endswith((".jpg", ".mjpg")):
            camera = path[len("/cameras/"):].rsplit(".", 1)[0]
            if camera not in self.live.cameras():
                self._send(404, f"no camera {camera!r} (cameras: {', '.join(self.live.cameras()) or 'none yet'})\n".encode())
            elif path.endswith(".jpg"):
                got = self.live.next_frame(camera, self.live._feed(camera).seq)
                if got is None:
                    self._send(503, f"camera {camera} gave no frame in {FRAME_WAIT_S:g} s\n".encode())
                else:
                    self._send(200, got[1], "image/jpeg")
            else:
                self._stream(lambda after: self.live.next_frame(camera, after), camera)
        else:
            self._send(404, b"not found\n")

    def _stream(self, get, camera: str | None) -> None:
        if not self.live._admit():
            self._send(503, b"too many viewers\n")
            return
        if camera is not None:
            self.live._watch(camera, +1)
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            seq, interval = 0, 1.0 / self.live.settings.max_fps
            while True:
                started = time.monotonic()
                got = get(seq)
                if got is None:
                    continue  # the camera is between frames (or reconnecting): keep waiting
                seq, jpeg = got
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode())
                self.wfile.write(jpeg)
                self.wfile.write(b"\r\n")
                self.wfile.flush()
                if camera is None:  # the plan view is drawn per request: pace it here
                    time.sleep(max(0.0, interval - (time.monotonic() - started)))
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the viewer went away
        finally:
            if camera is not None:
                self.live._watch(camera, -1)
            self.live._leave()
            self.close_connection = True

    def _index(self, query: dict) -> str:
        suffix = f"?token={html.escape(query['token'][0])}" if "token" in query else ""
        parts = [f'<figure><figcaption>{html.escape(c)}</figcaption><img src="/cameras/{html.escape(c)}.mjpg{suffix}">'
                 f"</figure>" for c in self.live.cameras()]
        for feed in self.live.radar.feeds() if self.live.radar is not None else []:
            parts.append(f'<figure><figcaption>radar {html.escape(feed)}</figcaption>'
                         f'<img src="/radar/{html.escape(feed)}.mjpg{suffix}"></figure>')
        if self.live.plan is not None:
            parts.append(f'<figure><figcaption>plan view</figcaption><img src="/plan.mjpg{suffix}"></figure>')
        return ("<!doctype html><meta charset=utf-8><title>Zastava live</title>"
                "<style>body{background:#181818;color:#ddd;font:14px sans-serif}img{max-width:100%}"
                "figure{display:inline-block;margin:8px;vertical-align:top}</style>" + "".join(parts))
