"""The live feed: what arrived in the store, sent to every open console in batches.

    hub = Hub()
    watcher = FeedWatcher(store, hub, interval_s=0.5, on_new=console.new_alerts)
    watcher.start()        # every 0.5 s: one "alerts" event with everything stored since the last

The watcher follows the store, not this process's ingest, so a console connected to any central
replica sees the alerts every replica stores. A batch per interval keeps a browser responsive at
any arrival rate: at 50 alerts/s and 0.5 s it gets two events a second, not fifty. A console
that cannot keep up (its queue is full) is told to reload ("resync") instead of growing memory.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from central.store import Store

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
# Ingest stamps received_at before its transaction commits, and replicas' clocks differ: look
# back this far each time and skip what was already sent.
OVERLAP = dt.timedelta(seconds=5)
QUEUE_EVENTS = 256


def to_json(value) -> str:
    return json.dumps(value, default=_default, separators=(",", ":"))


def _default(v):
    if isinstance(v, dt.datetime):
        return v.isoformat().replace("+00:00", "Z")
    if hasattr(v, "model_dump"):
        return v.model_dump(mode="json", by_alias=True)
    raise TypeError(f"{type(v).__name__} is not JSON")


class Subscription:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=QUEUE_EVENTS)  # (event type, JSON)
        self.dropped = 0

    def offer(self, event: tuple[str, str]) -> None:  # on the subscriber's loop
        if self.queue.full():
            self.dropped += 1
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(("resync", to_json({"type": "resync"})))
            return
        self.queue.put_nowait(event)


class Hub:
    """Fan-out from any thread to every connected console (each on its asyncio loop)."""

    def __init__(self):
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self.events = 0

    def subscribe(self, loop: asyncio.AbstractEventLoop) -> Subscription:
        sub = Subscription(loop)
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    @property
    def clients(self) -> int:
        return len(self._subs)

    def publish(self, event: dict) -> None:
        text = (event["type"], to_json(event))  # serialised once, whatever the number of consoles
        self.events += 1
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            try:
                sub.loop.call_soon_threadsafe(sub.offer, text)
            except RuntimeError:  # that console's loop is closed: it is going away
                self.unsubscribe(sub)


class FeedWatcher:
    def __init__(self, store: Store, hub: Hub, *, interval_s: float = 0.5,
                 on_new: Callable[[list[dict]], dict | None] = lambda alerts: None,
                 since: dt.datetime | None = None):
        self.store = store
        self.hub = hub
        self.interval_s = interval_s
        self.on_new = on_new
        self.watermark = since or dt.datetime.now(UTC)
        self._sent: OrderedDict[str, dt.datetime] = OrderedDict()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.alerts = 0
        self.hook_failures = 0

    def tick(self) -> list[dict]:
        """One look at the store: the alerts new since the last look, sent as one event. The
        watermark moves only once they are sent: a database away for a while loses nothing."""
        rows = self.store.received_since(self.watermark - OVERLAP)
        new_ids = [i for i, _ in rows if i not in self._sent]
        new = self.store.get_alerts(new_ids)
        extra = {}
        if new:
            try:
                extra = self.on_new(new) or {}
            except Exception:  # a fault in correlation or the outputs queue must not stop the feed
                self.hook_failures += 1
                log.exception("after storing %d alert(s): incidents or outputs failed", len(new))
            self.hub.publish({"type": "alerts", "alerts": new, **extra})
            self.batches += 1
            self.alerts += len(new)
        if rows:
            self.watermark = max(self.watermark, rows[-1][1])
        for i, at in rows:
            self._sent[i] = at
        horizon = self.watermark - 3 * OVERLAP
        while self._sent and next(iter(self._sent.values())) < horizon:
            self._sent.popitem(last=False)
        return new

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:  # the database away for a moment: the next tick catches up
                log.exception("live feed")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="live-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
