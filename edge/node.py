"""The edge node: every configured camera through its pipeline, alerts delivered, config reloaded.

Each camera runs on its own thread (decode and inference overlap inside it, see
edge.detect.stream). With radar/AIS feeds or geo rules, the feeds run on threads of their own
into one radar picture (edge.radar.picture), every camera fuses its tracks with it, and the geo
rules run on the merged picture twice a second. Alerts go to the sink: with an `mqtt` section in the config, the durable
outbox that the publisher drains to the broker; without one, a printer (JSON lines). A heartbeat
reports each camera's figures and the outbox's depth; `config/state` says which config runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.alerts import AlertRecord
from edge.clock import SYSTEM_CLOCK, Clock
from edge.config import NodeConfig, load_config
from edge.contract import CameraHealth, ConfigState, Heartbeat, Kind, RadarHealth
from edge.detect.stream import DetectionStream
from edge.errors import ZastavaError
from edge.fused_picture import FusedPicture, wants_picture
from edge.pipeline import CameraPipeline, FrameResult, cap_fps, needs_restart
from edge.reload import ConfigReloader
from edge.sources import ReconnectPolicy, SourceState, open_source

log = logging.getLogger(__name__)
GEO_RULES_EVERY_S = 0.5

AlertSink = Callable[[AlertRecord], None]
ENV_STATE_DIR = "ZASTAVA_STATE_DIR"


@dataclass
class _Interval:
    frames: int = 0
    latency_s: float = 0.0
    since: float = 0.0


class CameraWorker:
    """One camera's loop: source -> detection stream -> pipeline -> sink."""

    def __init__(self, node: EdgeNode, config: NodeConfig, camera_id: str):
        self.node = node
        self.camera_id = camera_id
        self.config = config
        self.frames = 0
        self.alerts = 0
        self.error: str | None = None
        self.pipeline: CameraPipeline | None = None
        self._interval = _Interval(since=time.monotonic())
        self._interval_lock = threading.Lock()
        self._stop = threading.Event()
        self._source = None
        self.thread = threading.Thread(target=self._run, name=f"camera:{camera_id}", daemon=True)

    def _wall(self, live: bool, started: dt.datetime):
        tz = ZoneInfo(self.config.node.timezone)
        if live:  # live frames are stamped with the epoch time of their capture
            return lambda t: dt.datetime.fromtimestamp(t, tz)
        return lambda t: started + dt.timedelta(seconds=t)  # a recording: seconds from its start

    def _recording_start(self, source) -> dt.datetime:
        """A recording's frames have no wall time; take the file's modification time, which stays
        the same when the node restarts on it, so the same events get the same alert ids."""
        try:
            return dt.datetime.fromtimestamp(Path(source.name).stat().st_mtime, dt.timezone.utc)
        except OSError:
            return dt.datetime.fromtimestamp(self.node.clock.now(), dt.timezone.utc)

    def update_config(self, config: NodeConfig) -> None:
        """A new config for this camera, applied between two frames (or at start-up)."""
        self.config = config
        if self.pipeline is not None:
            self.pipeline.request_config(config)

    def _run(self) -> None:
        config = self.config
        camera = config.camera(self.camera_id)
        try:
            src = open_source(camera.source, fps=camera.source_fps, policy=ReconnectPolicy(), clock=self.node.clock)
            self._source = src
            start = None if src.is_live else self._recording_start(src)
            self.pipeline = CameraPipeline(config, self.camera_id, self._wall(src.is_live, start),
                                           picture=self.node.picture)
            if self.config is not config:  # a reload arrived while the model was loading
                self.pipeline.request_config(self.config)
            stream = DetectionStream(self.pipeline.detector, cap_fps(src, camera.fps_cap))
            for frame, det in stream:
                if self._stop.is_set():
                    break
                result = self.pipeline.step(frame, det)
                self.frames += 1
                with self._interval_lock:
                    self._interval.frames += 1
                    self._interval.latency_s += stream.latencies[-1]
                for rec in result.alerts:
                    self.alerts += 1
                    self.node.sink(rec)
                if self.node.fused is not None:
                    self.node.fused.update(self.camera_id, result, self.pipeline.model)
                if self.node.live is not None:
                    self.node.live.update(self.camera_id, result, self.pipeline, result.alerts)
                self.node.on_frame(self, result)
        except ZastavaError as e:
            self.error = str(e)
            log.error("camera %s stopped: %s", self.camera_id, e)
        finally:
            if self._source is not None:
                self._source.close()

    def health(self) -> CameraHealth:
        """This camera's figures since the last call."""
        now = time.monotonic()
        with self._interval_lock:
            iv, self._interval = self._interval, _Interval(since=now)
        src = self._source
        elapsed = max(1e-6, now - iv.since)
        return CameraHealth(
            camera=self.camera_id,
            source_state=(src.state.value if src else SourceState.CONNECTING.value) if not self.error else "failed",
            fps=round(iv.frames / elapsed, 2),
            inference_ms=round(1000 * iv.latency_s / iv.frames, 2) if iv.frames else 0.0,
            frames=self.frames,
            dropped_frames=src.stats.dropped_frames if src else 0,
            corrupt_frames=src.stats.corrupt_frames if src else 0,
            alerts=self.alerts,
            error=self.error[:500] if self.error else None,
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        # A live source's reader waits for frames and must be woken; a file's reader must not
        # have its decoder released under it, it stops at the next frame.
        if self._source is not None and self._source.is_live:
            self._source.close()


def state_dir(explicit: Path | None = None) -> Path:
    """--state-dir, else $ZASTAVA_STATE_DIR, else systemd's $STATE_DIRECTORY, else ./zastava-state."""
    return Path(explicit or os.environ.get(ENV_STATE_DIR) or os.environ.get("STATE_DIRECTORY") or "zastava-state")


class EdgeNode:
    def __init__(self, config_path: str | Path, sink: AlertSink | None = None, *, clock: Clock = SYSTEM_CLOCK,
                 on_frame: Callable[[CameraWorker, FrameResult], None] = lambda w, r: None,
                 reload_interval_s: float = 1.0, state: Path | None = None, broker: str | None = None):
        from edge.config import MqttSettings

        self.config_path = Path(config_path)
        self.config = load_config(self.config_path)
        self.push = None
        if self.config.mqtt is not None or broker:
            from edge.config_push import load_persisted

            pushed = load_persisted(state_dir(state), self.config)  # what central last pushed wins over the file
            if pushed is not None:
                log.warning("running config %s pushed by central (kept in %s)", pushed.version, state_dir(state))
                self.config = pushed
        if broker:  # a broker named on the command line wins over (or stands in for) the config's
            base = self.config.mqtt.model_dump() if self.config.mqtt else {}
            self.config = self.config.model_copy(update={"mqtt": MqttSettings(**{**base, "broker": broker})})
        self.clock = clock
        self.on_frame = on_frame
        self.started = time.monotonic()
        self.workers: dict[str, CameraWorker] = {}
        self.outbox = self.publisher = None
        self.evicted = 0
        self.printer = sink
        if self.config.mqtt is not None:
            from edge.outbox import Outbox
            from edge.publisher import Publisher

            path = self.config.outbox.path
            path = path if path.is_absolute() else state_dir(state) / path
            self.outbox = Outbox(path, self.config.outbox)
            from edge.config_push import ConfigPush

            self.push = ConfigPush(state_dir(state), lambda: self.config, self._apply_pushed, self._config_state)
            self.publisher = Publisher(self.config.mqtt, self.config.node, self.outbox,
                                       config_version=lambda: self.config.version, on_config=self.push.received)
        self.picture = self.fused = self.live = None
        if wants_picture(self.config):
            from edge.radar.picture import RadarPicture

            self.picture = RadarPicture(self.config, live=True, clock=self.clock)
            self.fused = FusedPicture(self.config, self.picture)
        self.geo_alerts = 0
        if self.config.live_view is not None:
            from edge.live_view import LiveView

            radar = None
            if self.picture is not None:
                from edge.radar.overlay import RadarVideoView

                radar = RadarVideoView(self.config, self.picture)
            self.live = LiveView(self.config.live_view, plan=self.fused.render_plan if self.fused else None,
                                 picture=self.picture, radar=radar if radar is not None and radar.feeds() else None)
        self.reloader = ConfigReloader(self.config_path, self.config, self.apply, interval_s=reload_interval_s,
                                       on_reject=self._rejected)
        self._lock = threading.Lock()
        self._heartbeat_stop = threading.Event()

    # -- alerts ------------------------------------------------------------------------------------

    def sink(self, rec: AlertRecord) -> None:
        if self.outbox is not None:
            self.outbox.put(rec)
        if self.printer is not None:
            self.printer(rec)

    # -- config ------------------------------------------------------------------------------------

    def apply(self, new: NodeConfig) -> None:
        """Hand a validated config to the cameras: most changes apply between two frames; a new
        source or model restarts that camera; added and removed cameras start and stop."""
        if self.config.mqtt is not None and new.mqtt != self.config.mqtt:
            log.warning("mqtt settings changed in the config: they take effect at the next start")
            new = new.model_copy(update={"mqtt": self.config.mqtt})
        with self._lock:
            old_ids, new_ids = set(self.workers), {c.id for c in new.cameras}
            for cam_id in old_ids - new_ids:
                log.warning("camera %s removed from the config: stopping it", cam_id)
                self.workers.pop(cam_id).stop()
            for cam in new.cameras:
                worker = self.workers.get(cam.id)
                if worker is None:
                    self._start(new, cam.id)
                    continue
                reasons = needs_restart(worker.config.camera(cam.id), cam)
                if reasons:
                    log.warning("camera %s: %s changed: restarting it", cam.id, ", ".join(reasons))
                    worker.stop()
                    self._start(new, cam.id)
                else:
                    worker.update_config(new)
            if self.fused is not None:
                if [r.model_dump() for r in new.radars] != [r.model_dump() for r in self.config.radars]:
                    log.warning("radar feeds changed in the config: they take effect at the next start")
                self.fused.reconfigure(new)
            self.config = new
        self._config_state("applied", [])

    def _apply_pushed(self, new: NodeConfig) -> None:
        """A config from central, through the same path as a file reload."""
        self.apply(new)
        self.reloader.current = new  # the file reloader compares against what runs

    def _rejected(self, problems: list[str]) -> None:
        self._config_state("rejected", problems)

    def _config_state(self, state: str, errors: list[str], desired: str | None = None) -> None:
        if self.publisher is None:
            return
        msg = ConfigState(site=self.config.node.site, node=self.config.node.id, time=dt.datetime.now(dt.timezone.utc),
                          state=state, applied_version=self.config.version,
                          desired_version=desired if state == "rejected" else self.config.version,
                          errors=[e[:1000] for e in errors[:50]])  # the message must fit 64 KiB
        self.publisher.publish_message(Kind.CONFIG_STATE, msg.model_dump_json().encode())

    def _start(self, config: NodeConfig, camera_id: str) -> None:
        worker = CameraWorker(self, config, camera_id)
        self.workers[camera_id] = worker
        worker.start()

    # -- heartbeat ---------------------------------------------------------------------------------

    def heartbeat(self) -> Heartbeat:
        with self._lock:
            cameras = [w.health() for w in self.workers.values()]
        depth, size, oldest = self.outbox.depth() if self.outbox else (0, 0, None)
        return Heartbeat(
            site=self.config.node.site,
            node=self.config.node.id,
            time=dt.datetime.now(dt.timezone.utc),
            uptime_s=round(time.monotonic() - self.started, 1),
            cameras=cameras,
            outbox_depth=depth,
            outbox_bytes=size,
            outbox_oldest_s=round(oldest, 1) if oldest is not None else None,
            outbox_evicted=self.outbox.counter("evicted") if self.outbox else 0,
            published=self.publisher.published if self.publisher else 0,
            last_sequence=self.outbox.last_sequence() if self.outbox else None,
            mqtt_reconnects=self.publisher.reconnects if self.publisher else 0,
            config_version=self.config.version,
            radars=self.radar_health(),
        )

    def radar_health(self) -> list[RadarHealth]:
        if self.picture is None:
            return []
        return [RadarHealth(feed=fid, state=s["state"], messages=s["messages"], reports=s["reports"],
                            rejected=s["rejected"], live_targets=s.get("targets", 0),
                            reports_per_s=round(s.get("rate_per_s", 0.0), 2))
                for fid, s in self.picture.stats(time.time()).items()]

    # -- the fused picture -------------------------------------------------------------------------

    def _geo_rules(self, stop: threading.Event) -> None:
        """The geo rules over the merged picture, on the node's clock (radar feeds are live)."""
        while not stop.wait(GEO_RULES_EVERY_S):
            try:
                for rec in self.fused.evaluate(self.clock.now()):
                    self.geo_alerts += 1
                    self.sink(rec)
            except Exception:  # a bad picture must never stop the rules or the node: say so, go on
                log.exception("geo rules failed")

    def _beat(self) -> None:
        interval = self.config.mqtt.heartbeat_s
        while not self._heartbeat_stop.wait(interval):
            try:
                self.publisher.publish_message(Kind.HEARTBEAT, self.heartbeat().model_dump_json().encode())
            except Exception:  # a heartbeat must never take the node down
                log.exception("heartbeat failed")

    # -- lifecycle ---------------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None, flush_timeout_s: float = 20.0) -> None:
        """Run until every camera's source has ended (recordings) or `stop` is set; then deliver
        what can be delivered within `flush_timeout_s`, keeping the rest for the next start."""
        stop = stop or threading.Event()
        if self.publisher is not None:
            self.push.start()
            self.publisher.start()
            self._config_state("applied", [])
            threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()
        geo_stop = threading.Event()
        if self.picture is not None:
            self.picture.start()
            if self.config.geo_rules:
                threading.Thread(target=self._geo_rules, args=(geo_stop,), name="geo-rules", daemon=True).start()
        if self.live is not None:
            self.live.start()
        with self._lock:
            for cam in self.config.cameras:
                self._start(self.config, cam.id)
        self.reloader.install_sighup()
        self.reloader.start()
        try:
            while not stop.is_set():
                with self._lock:
                    alive = [w for w in self.workers.values() if w.thread.is_alive()]
                if not alive:
                    break
                stop.wait(0.2)
        finally:
            self.reloader.stop()
            with self._lock:
                for w in self.workers.values():
                    w.stop()
                for w in self.workers.values():
                    w.thread.join(timeout=10)
            geo_stop.set()
            if self.picture is not None:
                self.picture.stop()
            if self.live is not None:
                self.live.stop()
            self._heartbeat_stop.set()
            if self.push is not None:
                self.push.stop()
            if self.publisher is not None:
                self.publisher.stop(flush_timeout_s)
            if self.outbox is not None:
                self.evicted = self.outbox.counter("evicted")
                self.outbox.close()
