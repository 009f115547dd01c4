"""When to retry a broker with MQTT 3.1.1: both edge and central speak MQTT 5 first.

A broker may refuse MQTT 5 in its CONNACK (reason "unsupported protocol version"); an older
one may fail to parse an MQTT 5 CONNECT and hang up, or sit silent waiting for bytes it
mis-counted (amqtt does). After the refusal, after two unanswered hang-ups, or after an open
connection stays without CONNACK for CONNACK_TIMEOUT_S, the client reconnects with 3.1.1.
"""

from __future__ import annotations

import time

UNSUPPORTED_PROTOCOL = {1, 132}  # 3.1.1 "unacceptable protocol version", MQTT 5 "unsupported protocol version"
UNANSWERED_LIMIT = 2
CONNACK_TIMEOUT_S = 5.0


class Mqtt5Fallback:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._answered = True
        self._since: float | None = None
        self._unanswered = 0

    def attempt(self) -> None:
        """A connection attempt starts (paho's on_pre_connect)."""
        self._answered, self._since = False, time.monotonic()

    def connect_failed(self) -> None:
        """No TCP connection at all (paho's on_connect_fail): the broker is away, not old."""
        self._answered = True

    def connack(self, reason_code) -> bool:
        """The broker answered; True when the answer means "not MQTT 5"."""
        self._answered = True
        self._unanswered = 0
        return self.enabled and getattr(reason_code, "value", None) in UNSUPPORTED_PROTOCOL

    def hung_up(self) -> bool:
        """The connection closed; True when MQTT 5 went unanswered too often."""
        if not self.enabled or self._answered:
            return False
        self._answered = True
        self._unanswered += 1
        return self._unanswered >= UNANSWERED_LIMIT

    def overdue(self) -> bool:
        """True once when an attempt has waited too long for its CONNACK (poll it)."""
        if not self.enabled or self._answered or self._since is None:
            return False
        if time.monotonic() - self._since < CONNACK_TIMEOUT_S:
            return False
        self.enabled = False
        return True
