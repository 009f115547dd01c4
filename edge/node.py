"""The edge node: every configured camera through its pipeline, with config hot reload.

Each camera runs on its own thread (decode and inference overlap inside it, see
edge.detect.stream). Alerts go to a sink; this release's sink writes JSON lines and snapshot
files, the durable MQTT outbox plugs in at the same place.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.alerts import AlertRecord
from edge.clock import SYSTEM_CLOCK, Clock
from edge.config import NodeConfig, load_config
from edge.detect.stream import DetectionStream
from edge.errors import ZastavaError
from edge.pipeline import CameraPipeline, FrameResult, cap_fps, needs_restart
from edge.reload import ConfigReloader
from edge.sources import ReconnectPolicy, open_source

log = logging.getLogger(__name__)

AlertSink = Callable[[AlertRecord], None]


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
        self._stop = threading.Event()
        self._source = None
        self.thread = threading.Thread(target=self._run, name=f"camera:{camera_id}", daemon=True)

    def _wall(self, live: bool, started: dt.datetime):
        tz = ZoneInfo(self.config.node.timezone)
        if live:  # live frames are stamped with the epoch time of their capture
            return lambda t: dt.datetime.fromtimestamp(t, tz)
        return lambda t: started + dt.timedelta(seconds=t)  # a recording: seconds from its start

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
            wall = self._wall(src.is_live, dt.datetime.fromtimestamp(self.node.clock.now(), dt.timezone.utc))
            self.pipeline = CameraPipeline(config, self.camera_id, wall)
            if self.config is not config:  # a reload arrived while the model was loading
                self.pipeline.request_config(self.config)
            for frame, det in DetectionStream(self.pipeline.detector, cap_fps(src, camera.fps_cap)):
                if self._stop.is_set():
                    break
                result = self.pipeline.step(frame, det)
                self.frames += 1
                for rec in result.alerts:
                    self.alerts += 1
                    self.node.sink(rec)
                self.node.on_frame(self, result)
        except ZastavaError as e:
            self.error = str(e)
            log.error("camera %s stopped: %s", self.camera_id, e)
        finally:
            if self._source is not None:
                self._source.close()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        # A live source's reader waits for frames and must be woken; a file's reader must not
        # have its decoder released under it, it stops at the next frame.
        if self._source is not None and self._source.is_live:
            self._source.close()


class EdgeNode:
    def __init__(self, config_path: str | Path, sink: AlertSink, *, clock: Clock = SYSTEM_CLOCK,
                 on_frame: Callable[[CameraWorker, FrameResult], None] = lambda w, r: None,
                 reload_interval_s: float = 1.0):
        self.config_path = Path(config_path)
        self.config = load_config(self.config_path)
        self.sink = sink
        self.clock = clock
        self.on_frame = on_frame
        self.workers: dict[str, CameraWorker] = {}
        self.reloader = ConfigReloader(self.config_path, self.config, self.apply, interval_s=reload_interval_s)
        self._lock = threading.Lock()

    def apply(self, new: NodeConfig) -> None:
        """Hand a validated config to the cameras: most changes apply between two frames; a new
        source or model restarts that camera; added and removed cameras start and stop."""
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
            self.config = new

    def _start(self, config: NodeConfig, camera_id: str) -> None:
        worker = CameraWorker(self, config, camera_id)
        self.workers[camera_id] = worker
        worker.start()

    def run(self, stop: threading.Event | None = None) -> None:
        """Run until every camera's source has ended (recordings) or `stop` is set."""
        stop = stop or threading.Event()
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
