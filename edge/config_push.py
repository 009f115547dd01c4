"""A node's config pushed from central: the retained `config` message, applied without a restart.

The node subscribes to its own `zastava/v1/{site}/{node}/config` topic (the broker's ACL lets
it read nothing else). A message whose version differs from the running one is validated
exactly as a config file is (edge.config.parse_config, with ${VAR}s from this node's
environment), then applied through the same path as a file reload. A config that does not pass
is rejected with its reasons and the running one is kept; either way `config/state` says so.

An applied config is written to the state folder (`central-config.json`), so a restart keeps
it. The node's `mqtt` and `outbox` sections are its own link to central and never come from a
pushed config (one that got them wrong could cut the node off for good).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path

import yaml

from edge.config import ConfigError, NodeConfig, parse_config
from edge.contract import ConfigMessage, ContractError, Kind, ParsedTopic, decode

log = logging.getLogger(__name__)
STATE_FILE = "central-config.json"


def _local(config: NodeConfig, local: NodeConfig) -> NodeConfig:
    return config.model_copy(update={"mqtt": local.mqtt, "outbox": local.outbox})


def parse_pushed(message: ConfigMessage, local: NodeConfig) -> NodeConfig:
    """The pushed config as this node would run it; ConfigError with every reason otherwise."""
    origin = f"config {message.version} from central"
    data = {**message.config, "version": message.version}
    config = parse_config(yaml.safe_dump(data, sort_keys=False), origin)
    ident = (config.node.site, config.node.id)
    if ident != (local.node.site, local.node.id):
        raise ConfigError([f"{origin}: node: the config is for {ident[0]}/{ident[1]}, "
                           f"this node is {local.node.site}/{local.node.id}"])
    return _local(config, local)


def load_persisted(state: Path, local: NodeConfig) -> NodeConfig | None:
    """The config central pushed before the node last stopped, or None (none, or unusable)."""
    path = state / STATE_FILE
    try:
        message = ConfigMessage.model_validate_json(path.read_bytes())
        return parse_pushed(message, local)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, ConfigError) as e:  # pydantic's ValidationError is a ValueError
        log.error("ignoring the persisted central config %s: %s", path, str(e).splitlines()[0])
        return None


class ConfigPush:
    """Takes raw `config` payloads from the MQTT thread and applies them on its own thread (a
    camera restart must not hold up the MQTT client)."""

    def __init__(self, state: Path, current: Callable[[], NodeConfig], apply: Callable[[NodeConfig], None],
                 report: Callable[[str, list[str], str | None], None]):
        self.state = state
        self.current = current
        self.apply = apply
        self.report = report
        self.applied = 0
        self.rejected = 0
        self._last_rejected: str | None = None
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._run, name="config-push", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout=10)

    def received(self, payload: bytes) -> None:
        """Called by the MQTT client's thread with the message's bytes."""
        try:
            self._queue.put_nowait(payload)
        except queue.Full:  # a burst of pushes: the broker's retained copy is the newest anyway
            log.warning("config push queue full: dropping a config message")

    def _run(self) -> None:
        while True:
            payload = self._queue.get()
            if payload is None:
                return
            try:
                self.handle(payload)
            except Exception:  # a bad push must never take the node down: say so, keep the running config
                log.exception("applying a pushed config failed")

    def handle(self, payload: bytes) -> str:
        """'applied', 'rejected' or 'unchanged'."""
        if not payload:  # the retained config was cleared: central no longer manages this node
            return "unchanged"
        local = self.current()
        try:
            message = decode(ParsedTopic(local.node.site, local.node.id, Kind.CONFIG), payload)
        except ContractError as e:
            return self._reject(None, [f"config message from central: {e}"])
        if message.version == local.version or message.version == self._last_rejected:
            return "unchanged"
        try:
            new = parse_pushed(message, local)
        except ConfigError as e:
            return self._reject(message.version, e.problems)
        self.apply(new)
        self._persist(message)
        self.applied += 1
        self._last_rejected = None
        log.warning("config %s from central applied (by %s)", message.version, message.author or "unknown")
        return "applied"

    def _reject(self, version: str | None, problems: list[str]) -> str:
        self.rejected += 1
        self._last_rejected = version
        for p in problems:
            log.error("pushed config rejected: %s", p)
        log.error("keeping the running config (version %s)", self.current().version or "unversioned")
        self.report("rejected", problems, version)
        return "rejected"

    def _persist(self, message: ConfigMessage) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        path = self.state / STATE_FILE
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as f:  # written whole, then renamed: a crash leaves the old file or the new one
            f.write(json.dumps(json.loads(message.model_dump_json())))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
