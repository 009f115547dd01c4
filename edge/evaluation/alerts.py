"""Alert accuracy on a MOTChallenge sequence: do a config's alerts match the events its own rules
raise on the ground truth?

Ground-truth events: the config's rules, run by the same RuleEngine, over the ground-truth
tracks (gt/gt.txt boxes, score 1) — for an intrusion, the first frame at which a track's anchor
has been in the zone without a break for the dwell time, once per visit.
Matching: each alert pairs with at most one event of the same rule and zone (or line), when the
alert comes between 1 s before and 2 s after the event and its box overlaps the event track's
ground-truth box in the alert's frame with IoU >= 0.3. Pairs are chosen by an optimal
assignment on the time difference, so one early alert cannot steal another's event.
Crowding rules are left out: their events are about no single track.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from edge.config import NodeConfig
from edge.errors import DatasetError
from edge.evaluation.tracking import MotSequence, frame_number
from edge.rules import RuleEngine
from edge.sources import IMAGE_EXTENSIONS
from edge.track import Track

EARLY_S, LATE_S, MIN_IOU = 1.0, 2.0, 0.3
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class GtEvent:
    rule: str
    where: str | None  # zone or line id
    time: float
    frame: int  # 0-based index
    track_id: int


@dataclass(frozen=True)
class AlertScore:
    precision: float
    recall: float
    events: int
    alerts: int
    matched: int
    unmatched_alerts: list[dict]
    missed_events: list[GtEvent]

    def as_dict(self) -> dict:
        return {"precision": round(self.precision, 4), "recall": round(self.recall, 4), "events": self.events,
                "alerts": self.alerts, "matched": self.matched}


def gt_by_index(seq: MotSequence) -> dict[int, dict[int, np.ndarray]]:
    """Ground truth keyed the way frame sources count: 0-based index in file order -> {id: xyxy}."""
    files = sorted(p for p in seq.frames.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    out: dict[int, dict[int, np.ndarray]] = {}
    for index, path in enumerate(files):
        boxes = seq.gt.get(frame_number(path, index), [])
        out[index] = {oid: np.array([x, y, x + w, y + h], np.float32) for oid, (x, y, w, h) in boxes}
    return out


def gt_events(config: NodeConfig, camera_id: str, gt: dict[int, dict[int, np.ndarray]], fps: float,
              frame_size: tuple[int, int]) -> list[GtEvent]:
    camera = config.camera(camera_id)
    engine = RuleEngine(camera)
    tracks: dict[int, Track] = {}
    cls = next((r.classes[0] for r in camera.rules if r.classes), "person")
    events = []
    for index in range(max(gt) + 1 if gt else 0):
        t = index / fps
        present = []
        for tid, box in sorted(gt.get(index, {}).items()):
            tr = tracks.get(tid)
            if tr is None:
                tr = tracks[tid] = Track(tid, 0, cls, box, 1.0, t, 256)
            else:
                tr.box, tr.last_seen = box, t
                tr.history.append((t, tuple(box.tolist()), 1.0))
            present.append(tr)
        for e in engine.evaluate(present, t, EPOCH + dt.timedelta(seconds=t), frame_size):
            if e.rule_type != "crowding":  # a crowd is no single track to match boxes with
                events.append(GtEvent(e.rule.id, e.zone or e.line, t, index, e.tracks[0].id))
    return events


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_alerts(alerts: list[dict], events: list[GtEvent], gt: dict[int, dict[int, np.ndarray]]) -> AlertScore:
    """alerts: dicts with rule, zone/line, media_time, frame, bbox (the Alert JSON)."""
    big = 1e9
    cost = np.full((len(alerts), len(events)), big)
    for i, a in enumerate(alerts):
        where = a.get("zone") or a.get("line")
        for j, ev in enumerate(events):
            if a["rule"] != ev.rule or where != ev.where:
                continue
            lag = a["media_time"] - ev.time
            if not -EARLY_S - 1e-6 <= lag <= LATE_S + 1e-6:
                continue
            truth = gt.get(a["frame"], {}).get(ev.track_id)
            if truth is None or _iou(a["bbox"], truth) < MIN_IOU:
                continue
            cost[i, j] = abs(lag)
    matched_pairs = []
    if len(alerts) and len(events):
        rows, cols = linear_sum_assignment(cost)
        matched_pairs = [(r, c) for r, c in zip(rows, cols) if cost[r, c] < big]
    used_a = {r for r, _ in matched_pairs}
    used_e = {c for _, c in matched_pairs}
    n = len(matched_pairs)
    return AlertScore(
        precision=n / len(alerts) if alerts else 1.0,
        recall=n / len(events) if events else 1.0,
        events=len(events),
        alerts=len(alerts),
        matched=n,
        unmatched_alerts=[a for i, a in enumerate(alerts) if i not in used_a],
        missed_events=[e for j, e in enumerate(events) if j not in used_e],
    )


def evaluate_alerts(config: NodeConfig, camera_id: str, seq: MotSequence, fps: float, progress=None) -> AlertScore:
    """Replay the camera's pipeline on the sequence's frames and score its alerts."""
    import json

    from edge.replay import replay

    gt = gt_by_index(seq)
    alerts: list[dict] = []
    summary = replay(config, camera_id, str(seq.frames), fps=fps, start=EPOCH,
                     on_alert=lambda rec: alerts.append(json.loads(rec.alert.to_json())),
                     **({"progress": progress} if progress else {}))
    if summary.frames == 0:
        raise DatasetError(f"{seq.frames}: no frame could be read")
    size = tuple(alerts[0]["frame_size"]) if alerts else _frame_size(seq)
    return match_alerts(alerts, gt_events(config, camera_id, gt, fps, size), gt)


def _frame_size(seq: MotSequence) -> tuple[int, int]:
    from edge.sources import ImageFolderSource

    first = next(iter(ImageFolderSource(seq.frames)))
    return first.width, first.height
