"""Multi-object tracking: stable ids for detections across frames (ByteTrack-style)."""

from edge.track.tracker import Track, Tracker, TrackerConfig, TrackState

__all__ = ["Track", "TrackState", "Tracker", "TrackerConfig"]
