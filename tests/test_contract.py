"""The wire contract: topics, limits, validation, spoofing, and the published schemas."""

from __future__ import annotations

import json

import pytest

from conftest import REPO
from edge.contract import (
    MAX_BYTES,
    Alert,
    ContractError,
    Kind,
    ParsedTopic,
    decode,
    json_schemas,
    parse_topic,
    subscriptions,
    topic,
)

SAMPLE = json.loads((REPO / "tests" / "data" / "alert.json").read_text())


def test_topics_round_trip():
    assert topic("post-1", "node-a", Kind.ALERT) == "zastava/v1/post-1/node-a/alert"
    assert topic("post-1", "node-a", Kind.CONFIG_STATE) == "zastava/v1/post-1/node-a/config/state"
    snap = topic("post-1", "node-a", Kind.SNAPSHOT, SAMPLE["id"])
    assert parse_topic(snap) == ParsedTopic("post-1", "node-a", Kind.SNAPSHOT, SAMPLE["id"])
    for kind in (Kind.ALERT, Kind.STATUS, Kind.HEARTBEAT, Kind.CONFIG, Kind.CONFIG_STATE):
        assert parse_topic(topic("s", "n", kind)).kind is kind


@pytest.mark.parametrize("bad", ["zastava/v2/s/n/alert", "zastava/v1/S/n/alert", "zastava/v1/s/n/alerts",
                                 "zastava/v1/s/n/alert/not-a-ulid/snapshot", "zastava/v1/s/n", "other/topic"])
def test_foreign_topics_are_refused(bad):
    with pytest.raises(ContractError) as e:
        parse_topic(bad)
    assert e.value.key == "topic"


def test_shared_subscriptions():
    assert subscriptions() == ["zastava/v1/+/+/alert", "zastava/v1/+/+/status", "zastava/v1/+/+/heartbeat",
                               "zastava/v1/+/+/config/state", "zastava/v1/+/+/alert/+/snapshot"]
    assert all(f.startswith("$share/central/zastava/v1/") for f in subscriptions("central"))


def test_decode_accepts_a_valid_alert_and_refuses_breaches():
    parsed = parse_topic("zastava/v1/post-1/node-a/alert")
    alert = decode(parsed, json.dumps(SAMPLE).encode())
    assert isinstance(alert, Alert) and alert.class_name == "person" and alert.sequence == 1
    cases = {
        "schema": json.dumps({**SAMPLE, "severity": "apocalyptic"}).encode(),
        "spoofed": json.dumps({**SAMPLE, "node": "node-b"}).encode(),
        "size": json.dumps(SAMPLE).encode() + b" " * MAX_BYTES[Kind.ALERT],
    }
    for key, payload in cases.items():
        with pytest.raises(ContractError) as e:
            decode(parsed, payload)
        assert e.value.key == key, str(e.value)
    with pytest.raises(ContractError, match="fails the contract"):
        decode(parsed, b"{not json")


def test_snapshots_must_be_jpegs():
    parsed = parse_topic(topic("post-1", "node-a", Kind.SNAPSHOT, SAMPLE["id"]))
    assert decode(parsed, b"\xff\xd8\xff\xe0rest") == b"\xff\xd8\xff\xe0rest"
    with pytest.raises(ContractError) as e:
        decode(parsed, b"GIF89a")
    assert e.value.key == "jpeg"


def test_alert_json_uses_the_class_key():
    alert = Alert.model_validate(SAMPLE)
    assert json.loads(alert.to_json())["class"] == "person"


def test_published_schemas_are_current():
    for name, schema in json_schemas().items():
        published = json.loads((REPO / "configs" / "schemas" / name).read_text())
        assert published == schema, f"configs/schemas/{name} is stale"
