"""The live feed on a real store: what arrives between two looks is one event; an alert committed
late (its received_at older than the last look) is still sent, once; a console that cannot keep
up is told to resync instead of queueing without bound."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest

from central.feed import QUEUE_EVENTS, FeedWatcher, Hub
from central.store import Store
from test_central_store import make_alert

UTC = dt.timezone.utc


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'c.db'}")
    yield s
    s.close()


class Console:
    """A real subscription on a real asyncio loop, read from the test."""

    def __init__(self, hub: Hub):
        self.loop = asyncio.new_event_loop()
        self.sub = hub.subscribe(self.loop)

    def events(self) -> list[tuple[str, dict]]:
        self.loop.run_until_complete(asyncio.sleep(0))  # run the hub's call_soon_threadsafe callbacks
        out = []
        while not self.sub.queue.empty():
            kind, text = self.sub.queue.get_nowait()
            out.append((kind, json.loads(text)))
        return out


def test_arrivals_between_two_looks_are_one_event_and_never_repeat(store):
    hub = Hub()
    console = Console(hub)
    now = dt.datetime.now(UTC)
    watcher = FeedWatcher(store, hub, since=now - dt.timedelta(seconds=1))
    first = [make_alert(i, t=now + dt.timedelta(seconds=i)) for i in range(7)]
    store.add_alerts([(a, now) for a in first[:4]])
    store.add_alerts([(a, now) for a in first[4:]])
    watcher.tick()
    ((kind, event),) = console.events()
    assert kind == "alerts" and sorted(a["id"] for a in event["alerts"]) == sorted(a.id for a in first)
    watcher.tick()
    assert console.events() == []  # nothing new: nothing sent
    # Stored by a transaction that committed late: received before the watermark, within the overlap.
    late = make_alert(50)
    store.add_alerts([(late, now - dt.timedelta(seconds=2))])
    watcher.tick()
    ((_, event),) = console.events()
    assert [a["id"] for a in event["alerts"]] == [late.id]
    assert event["alerts"][0]["acknowledged"] is False and "received_at" in event["alerts"][0]


def test_a_failing_hook_does_not_stop_the_feed(store):
    hub = Hub()
    console = Console(hub)
    now = dt.datetime.now(UTC)

    def broken(alerts):
        raise RuntimeError("correlator bug")

    watcher = FeedWatcher(store, hub, since=now - dt.timedelta(seconds=1), on_new=broken)
    a = make_alert(1)
    store.add_alerts([(a, now)])
    watcher.tick()
    ((kind, event),) = console.events()
    assert [x["id"] for x in event["alerts"]] == [a.id] and watcher.hook_failures == 1


def test_a_console_that_falls_behind_is_told_to_resync():
    hub = Hub()
    console = Console(hub)
    for i in range(QUEUE_EVENTS + 5):
        hub.publish({"type": "alerts", "alerts": [], "n": i})
    events = console.events()
    assert events[0][0] == "resync" and len(events) < QUEUE_EVENTS and console.sub.dropped == 1
