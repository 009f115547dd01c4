"""The post's radar and AIS picture: every configured feed, decoded into one track store.

Live (`start`): a thread per feed reads it (edge.radar.feeds), decodes it and updates the
store; bad messages are counted by the decoders, never raised. Replay (`advance_to`): file
feeds are decoded up front and handed to the store in time order as the video's clock passes
their times, so a recording and its radar log stay in step.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import threading
import time

from edge.clock import SYSTEM_CLOCK, Clock
from edge.config import NodeConfig
from edge.geo import LocalFrame
from edge.radar.config import RadarFeedConfig
from edge.radar.feeds import make_decoder, open_feed
from edge.radar.nmea import plain_ttm_candidate
from edge.radar.reports import TargetReport
from edge.radar.store import SensorAccuracy, TrackStore
from edge.sources import STREAM_SCHEMES

log = logging.getLogger(__name__)
EXPIRE_EVERY_S = 1.0


def is_recording(feed: RadarFeedConfig) -> bool:
    """A feed read from a recording (a file; a display's video file or image folder), not a live one."""
    if feed.transport == "frames":
        source = str(feed.source or "")
        return not (source.isdigit() or source.lower().startswith(STREAM_SCHEMES))
    return feed.transport == "file"


def sensor_accuracy(feed: RadarFeedConfig, frame: LocalFrame) -> SensorAccuracy:
    origin = None
    if feed.position is not None:
        origin = tuple(float(v) for v in frame.to_local(*feed.position))
    elif feed.format != "ais":
        origin = (0.0, 0.0)  # a radar without a position of its own stands at the post
    return SensorAccuracy(range_sigma_m=feed.range_sigma_m, bearing_sigma_deg=feed.bearing_sigma_deg,
                          position_sigma_m=feed.range_sigma_m, stale_s=feed.stale_s, origin=origin)


class RadarPicture:
    def __init__(self, config: NodeConfig, *, live: bool = False, clock: Clock = SYSTEM_CLOCK):
        """live: a running node. Its file feeds play as if live: their reports' times move to now,
        keeping the recording's pace, so the picture is on the node's clock. clock: the node's
        (edge.clock), whose now() stamps the live feeds' messages and is the expiry thread's now."""
        self.live = live
        self.clock = clock
        node = config.node
        self.frame = LocalFrame(node.lat, node.lon, node.altitude_m or 0.0)
        self.feeds = {f.id: f for f in config.radars}
        self.store = TrackStore(self.frame, {f.id: sensor_accuracy(f, self.frame) for f in config.radars})
        self.decoders = {f.id: make_decoder(f) for f in config.radars}
        # NMEA radars standing at the post: their plain TTMs take the store's fast path (the store
        # places them by range and bearing, as it does the decoder's reports from there).
        self._scanning = {f.id for f in config.radars if f.format == "nmea" and f.position is not None
                          and tuple(float(v) for v in f.position) == (self.frame.lat, self.frame.lon)}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._opened: dict = {}
        self._replay: list[TargetReport] | None = None
        self._replay_at = 0
        self.replayed = 0
        self.scanned = 0  # messages that took the store's fast path
        self._last_expiry = 0.0
        self.lock = threading.Lock()

    def ingest(self, feed_id: str, message: bytes, received: float, shift: float = 0.0) -> int:
        """Decode one message of a feed into the store; returns the reports it gave."""
        decoder = self.decoders[feed_id]
        # a radar's usual TTM straight into its target's row
        if feed_id in self._scanning and plain_ttm_candidate(message) \
                and self.store.add_ttm(feed_id, message, received, shift, decoder):
            decoder.stats.messages += 1
            decoder.stats.reports += 1
            self.scanned += 1
            return 1
        reports = decoder.feed(message, received)
        for rep in reports:
            self.store.add(dataclasses.replace(rep, time=rep.time + shift) if shift else rep)
        return len(reports)

    # -- live ----------------------------------------------------------------------------------

    def start(self) -> None:
        for dec in self.decoders.values():
            if hasattr(dec, "start_worker"):  # radar video: sweeps processed beside the socket's reader
                dec.start_worker(self._stop)
        for feed in self.feeds.values():
            t = threading.Thread(target=self._run_feed, args=(feed,), name=f"radar:{feed.id}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._expire_loop, name="radar-expiry", daemon=True)
        t.start()
        self._threads.append(t)

    def _run_feed(self, feed: RadarFeedConfig) -> None:
        try:
            source = open_feed(feed, self._stop, clock=self.clock.now)
            self._opened[feed.id] = source
            shift = None
            for message, received in source:
                if shift is None:
                    shift = self.clock.now() - received if self.live and is_recording(feed) else 0.0
                self.ingest(feed.id, message, received, shift)
        except Exception:  # a feed must never take the node down: say so, the others go on
            log.exception("radar feed %s stopped", feed.id)

    def _expire_loop(self) -> None:
        while not self._stop.wait(EXPIRE_EVERY_S):
            self.store.expire(self.clock.now())

    def thread_ids(self) -> dict[str, int | None]:
        """The live threads' native ids by name (radar:<feed id>, radar-expiry): for their CPU time."""
        return {t.name: t.native_id for t in self._threads}

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)

    # -- replay --------------------------------------------------------------------------------

    def load_recordings(self) -> int:
        """Decode every file feed now (its own message times), for `advance_to`."""
        reports: list[TargetReport] = []
        for feed in self.feeds.values():
            if not is_recording(feed):
                log.warning("radar feed %s is %s, not a recording: replay leaves it out", feed.id, feed.transport)
                continue
            decoder = self.decoders[feed.id]
            if hasattr(decoder, "keep_timeline"):  # radar video: a picture per sweep for the overlay
                decoder.keep_timeline()
            for message, received in open_feed(feed.model_copy(update={"pace": "fast"}), self._stop):
                reports += decoder.feed(message, received)
            if hasattr(decoder, "flush"):  # the last sweep of a recording ends with the file
                reports += decoder.flush()
        reports.sort(key=lambda r: r.time)
        self._replay, self._replay_at = reports, 0
        self._replay_times = [r.time for r in reports]
        return len(reports)

    def advance_to(self, t: float) -> None:
        """Hand the store every recorded report up to time `t` (epoch seconds)."""
        if self._replay is None:
            return
        end = bisect.bisect_right(self._replay_times, t, lo=self._replay_at)
        for rep in self._replay[self._replay_at:end]:
            self.store.add(rep)
        self.replayed += end - self._replay_at
        self._replay_at = end
        if t - self._last_expiry >= EXPIRE_EVERY_S:
            self.store.expire(t)
            self._last_expiry = t

    # -- figures -------------------------------------------------------------------------------

    def stats(self, now: float) -> dict[str, dict]:
        quality = self.store.quality(now)
        out = {}
        for fid in self.feeds:
            dec = self.decoders[fid].stats
            src = self._opened.get(fid)
            out[fid] = {"messages": dec.messages, "reports": dec.reports, "rejected": dec.rejected,
                        "errors": dict(dec.errors), "state": src.stats.state if src else "replay",
                        **quality.get(fid, {})}
        return out
