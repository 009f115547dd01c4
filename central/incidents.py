"""Incidents: alerts from several cameras, sensors or posts that describe one object.

Two alerts describe one object when
- they come from the same track of the same camera (an intrusion, then loitering, of one person), or
- their classes are of one family (person; vehicle; vessel; ...; "unknown", a radar-only track,
  goes with any), their time spans (first seen .. last seen) overlap once each is widened by
  `time_slack_s`, and their positions are within `distance_m` of each other.
Alerts without a position only group through their track. An incident is a connected group of
such pairs (single linkage: A~B and B~C put A, B and C in one incident).

    >>> import datetime as dt
    >>> t = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)
    >>> a = Sighting("A", "person", t, t + dt.timedelta(seconds=10), 45.8150, 15.9819)
    >>> b = Sighting("B", "person", t + dt.timedelta(seconds=5), t + dt.timedelta(seconds=20), 45.8151, 15.9819)
    >>> group([a, b], IncidentRules(distance_m=50))     # 11 m apart, overlapping in time
    [['A', 'B']]

Pure functions of their inputs: central.correlator keeps them fed from the store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EARTH_RADIUS_M = 6_371_008.8  # mean radius: haversine is within 0.5% of the geodesic, plenty at 100 m
UNKNOWN = "unknown"
FAMILIES = {
    "person": "person",
    "car": "vehicle", "truck": "vehicle", "bus": "vehicle", "motorcycle": "vehicle", "bicycle": "vehicle",
    "train": "vehicle",
    "boat": "vessel", "ship": "vessel", "vessel": "vessel",
    "airplane": "aircraft", "drone": "aircraft", "helicopter": "aircraft",
    "bird": "animal", "cat": "animal", "dog": "animal", "horse": "animal", "sheep": "animal", "cow": "animal",
    "elephant": "animal", "bear": "animal", "zebra": "animal", "giraffe": "animal",
    "unknown": UNKNOWN, "": UNKNOWN, "object": UNKNOWN,
}


def family(class_name: str) -> str:
    """'truck' -> 'vehicle'; a class outside the table is a family of its own."""
    return FAMILIES.get(class_name.lower(), class_name.lower())


@dataclass(frozen=True, slots=True)
class IncidentRules:
    distance_m: float = 100.0
    time_slack_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Sighting:
    """What grouping needs to know of one alert."""

    id: str
    family: str
    start: dt.datetime  # the object first seen
    end: dt.datetime  # the object last seen
    lat: float | None = None
    lon: float | None = None
    track: tuple | None = None  # (site, node, camera, track id): one track is one object


def families_match(a: str, b: str) -> bool:
    return a == b or UNKNOWN in (a, b)


def distance_m(lat1, lon1, lat2, lon2):
    """Haversine distance in metres; arrays broadcast."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0, 1)))


def same_object(a: Sighting, b: Sighting, rules: IncidentRules) -> bool:
    if a.track is not None and a.track == b.track:
        return True
    if not families_match(a.family, b.family):
        return False
    slack = dt.timedelta(seconds=rules.time_slack_s)
    if a.start - slack > b.end + slack or b.start - slack > a.end + slack:
        return False
    if a.lat is None or b.lat is None:
        return False
    return float(distance_m(a.lat, a.lon, b.lat, b.lon)) <= rules.distance_m


class _Sets:
    """Union-find over ids."""

    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def links(new: Sequence[Sighting], known: Sequence[Sighting], rules: IncidentRules) -> list[tuple[str, str]]:
    """Every (new, other) pair that describes one object, `other` from `known` or from `new`
    itself. Vectorised over `known`: the correlator holds minutes of alerts."""
    out: list[tuple[str, str]] = []
    pool = list(known) + list(new)
    if not pool:
        return out
    t0 = min(s.start for s in pool)
    start = np.array([(s.start - t0).total_seconds() for s in pool])
    end = np.array([(s.end - t0).total_seconds() for s in pool])
    lat = np.array([np.nan if s.lat is None else s.lat for s in pool])
    lon = np.array([np.nan if s.lon is None else s.lon for s in pool])
    fam = np.array([s.family for s in pool], dtype=object)
    tracks = {}
    for s in pool:
        if s.track is not None:
            tracks.setdefault(s.track, []).append(s.id)
    ids = [s.id for s in pool]
    slack = 2 * rules.time_slack_s
    for k, s in enumerate(new):
        i = len(known) + k
        ok = (fam == s.family) | (fam == UNKNOWN) | (s.family == UNKNOWN)
        ok &= (start[i] <= end + slack) & (start <= end[i] + slack)
        if s.lat is not None:
            with np.errstate(invalid="ignore"):
                ok &= distance_m(s.lat, s.lon, lat, lon) <= rules.distance_m
        else:
            ok[:] = False
        ok[i] = False
        out += [(s.id, ids[j]) for j in np.flatnonzero(ok)]
        if s.track is not None:
            out += [(s.id, other) for other in tracks[s.track] if other != s.id]
    return out


def group(sightings: Sequence[Sighting], rules: IncidentRules) -> list[list[str]]:
    """Groups of two or more alerts that describe one object, each sorted, in order of their first id."""
    sets = _Sets()
    for a, b in links(sightings, [], rules):
        sets.union(a, b)
    groups: dict[str, list[str]] = {}
    for s in sightings:
        groups.setdefault(sets.find(s.id), []).append(s.id)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def sighting(alert: dict) -> Sighting:
    """From an alert as the API returns it (the contract's JSON)."""
    pos = alert.get("position") or {}
    track = alert.get("track_id")
    return Sighting(
        id=alert["id"], family=family(alert.get("class") or ""),
        start=_time(alert.get("first_seen") or alert["time"]), end=_time(alert.get("last_seen") or alert["time"]),
        lat=pos.get("lat"), lon=pos.get("lon"),
        track=(alert["site"], alert["node"], alert["camera"], track) if track is not None else None,
    )


def _time(v) -> dt.datetime:
    if isinstance(v, dt.datetime):
        return v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromisoformat(str(v).replace("Z", "+00:00"))


SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def summarise(alerts: Sequence[dict]) -> dict:
    """An incident's figures from its alerts: time span, mean position, highest severity, who saw it."""
    pos = [a["position"] for a in alerts if a.get("position")]
    return {
        "first_time": min(_time(a.get("first_seen") or a["time"]) for a in alerts),
        "last_time": max(_time(a.get("last_seen") or a["time"]) for a in alerts),
        "lat": float(np.mean([p["lat"] for p in pos])) if pos else None,
        "lon": float(np.mean([p["lon"] for p in pos])) if pos else None,
        "alert_count": len(alerts),
        "severity": max((a["severity"] for a in alerts), key=SEVERITY_RANK.__getitem__),
        "family": _family_of(alerts),
        "summary": {
            "sites": sorted({a["site"] for a in alerts}),
            "nodes": sorted({f"{a['site']}/{a['node']}" for a in alerts}),
            "cameras": sorted({f"{a['node']}/{a['camera']}" for a in alerts}),
            "sensors": sorted({s for a in alerts for s in a.get("sensors") or ["camera"]}),
            "classes": sorted({a.get("class") or "" for a in alerts}),
            "rules": sorted({a["rule"] for a in alerts}),
        },
    }


def _family_of(alerts: Sequence[dict]) -> str:
    fams = {family(a.get("class") or "") for a in alerts} - {UNKNOWN}
    return sorted(fams)[0] if fams else UNKNOWN
