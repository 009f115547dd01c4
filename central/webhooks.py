"""Alerts and incidents POSTed as JSON to other systems, signed with HMAC-SHA256.

Each request carries
    X-Zastava-Event: alert | incident
    X-Zastava-Delivery: the queue item's id (the same on every retry: receivers can deduplicate)
    X-Zastava-Timestamp: Unix seconds when it was signed
    X-Zastava-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}" under the webhook's secret>
Signing the timestamp with the body lets a receiver refuse replays of old requests.

    >>> sign(b"secret-secret-secret", "1700000000", b'{"a":1}')
    'sha256=fa345d5b654e6667128855e14a4938c54b5b813699e6b72c5c4f501aa493ba92'
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, signature: str, *, max_age_s: float = 300,
           now: float | None = None) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    try:
        age = (now if now is not None else time.time()) - int(timestamp)
    except ValueError:
        return False
    return abs(age) <= max_age_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookSink:
    def __init__(self, output):
        self.output = output
        self.name = output.name
        self._client = httpx.Client(timeout=output.timeout_s, follow_redirects=False)

    def send(self, item: dict, delivery: int | str = "") -> None:
        body = json.dumps(item, separators=(",", ":"), default=str).encode()
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "zastava-central",
            "X-Zastava-Event": item["kind"],
            "X-Zastava-Delivery": str(delivery),
            "X-Zastava-Timestamp": ts,
            "X-Zastava-Signature": sign(self.output.secret.encode(), ts, body),
        }
        r = self._client.post(self.output.url, content=body, headers=headers)
        if not 200 <= r.status_code < 300:
            raise RuntimeError(f"HTTP {r.status_code} from {self.output.url}")

    def close(self) -> None:
        self._client.close()
