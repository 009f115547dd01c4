"""Node configs managed from central: validated with the edge's own schema, every version kept,
the newest published as the node's retained `config` message.

    configs = ConfigService(store.engine, audit, publish=ingest.publish_retained)
    check = configs.validate(text, "river-post", "node-01")   # errors located at their field and line
    version = configs.save("river-post", "node-01", text, author="ana", comment="wider riverbank zone")
    configs.rollback("river-post", "node-01", 2, author="ana")  # a new version with v2's content

A config is stored as the operator wrote it, ${VAR}s included: the node expands them from its
own environment, so secrets never pass through central. The version central gives it ("v7")
travels in the message and comes back in the node's `config/state`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from central.audit import AuditLog
from central.console_tables import config_versions
from edge.config import MAX_CONFIG_BYTES, ConfigError, NodeConfig, parse_config
from edge.contract import ConfigMessage, Kind, topic
from edge.errors import ZastavaError

UTC = dt.timezone.utc
ORIGIN = "config"
_YAML_AT = re.compile(rf"^{ORIGIN}:(\d+):(\d+): (.*)$")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

Publish = Callable[[str, bytes], bool]  # (topic, payload) -> acknowledged by the broker


class ConfigRefused(ZastavaError):
    """A config that did not pass validation; `check` holds the located errors."""

    def __init__(self, check: ConfigCheck):
        self.check = check
        super().__init__("; ".join(f"{e.path}: {e.message}" if e.path else e.message for e in check.errors[:5]))


class NoSuchVersion(ZastavaError):
    exit_code = 2


@dataclass(frozen=True, slots=True)
class FieldError:
    path: str  # "cameras[0].rules[1].dwell_s"; "" when the problem is the whole document
    message: str
    line: int | None  # 1-based line of the field in the YAML text (its parent's, when the field is missing)


@dataclass
class ConfigCheck:
    ok: bool
    errors: list[FieldError] = field(default_factory=list)
    config: dict[str, Any] | None = None  # the YAML as data, ${VAR}s unexpanded


def locate(text: str, path: str) -> int | None:
    """The 1-based line where `path` ("cameras[0].zones[1].points") is written in the YAML
    text; the nearest enclosing field's line when the path's last part is not written."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line = node.start_mark.line + 1
    for name, index in _PATH_PART.findall(path):
        child = None
        if index and isinstance(node, yaml.SequenceNode):
            i = int(index)
            child = node.value[i] if i < len(node.value) else None
        elif name and isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == name:
                    line = key.start_mark.line + 1
                    child = value
                    break
        if child is None:
            break
        node = child
        if not isinstance(node, yaml.MappingNode):
            line = node.start_mark.line + 1
    return line


def validate(text: str, site: str | None = None, node: str | None = None) -> ConfigCheck:
    """The edge's own validation (edge.config.parse_config, ${VAR}s left for the node), every
    problem located at its field, plus: the config must be for this node."""
    if len(text.encode()) > MAX_CONFIG_BYTES:
        return ConfigCheck(False, [FieldError("", f"{len(text.encode())} bytes is over the {MAX_CONFIG_BYTES}-byte "
                                                 f"limit for a config", None)])
    try:
        config = parse_config(text, ORIGIN, expand=False)
    except ConfigError as e:
        return ConfigCheck(False, [_field_error(text, p) for p in e.problems], _data(text))
    errors = []
    if site is not None and config.node.site != site:
        errors.append(FieldError("node.site", f"this config is for site {config.node.site!r}, not {site!r}",
                                 locate(text, "node.site")))
    if node is not None and config.node.id != node:
        errors.append(FieldError("node.id", f"this config is for node {config.node.id!r}, not {node!r}",
                                 locate(text, "node.id")))
    return ConfigCheck(not errors, errors, _data(text))


def _data(text: str) -> dict | None:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _field_error(text: str, problem: str) -> FieldError:
    problem = problem.removeprefix(f"{ORIGIN}: ")
    m = _YAML_AT.match(problem)
    if m:  # YAML syntax: the parser names line and column
        return FieldError("", f"column {m.group(2)}: {m.group(3)}", int(m.group(1)))
    where, sep, message = problem.partition(": ")
    if not sep or " " in where:  # a problem of the whole document
        return FieldError("", problem, None)
    return FieldError(where, message, locate(text, where))


def with_zones(text: str, camera: str, zones: list[dict], lines: list[dict]) -> str:
    """The config with one camera's zones and lines replaced (what the zone editor draws).
    Written back through PyYAML: the other fields stay, comments do not."""
    data = _data(text)
    if data is None:
        raise ConfigRefused(validate(text))
    cams = data.get("cameras") or []
    for cam in cams:
        if isinstance(cam, dict) and cam.get("id") == camera:
            cam["zones"], cam["lines"] = zones, lines
            break
    else:
        raise ZastavaError(f"no camera {camera!r} in the config")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


class ConfigService:
    def __init__(self, engine: Engine, audit: AuditLog, publish: Publish | None = None):
        self.engine = engine
        self.audit = audit
        self.publish = publish

    def versions(self, site: str, node: str) -> list[dict]:
        """Newest first, without the text."""
        c = config_versions.c
        q = (select(c.number, c.version, c.author, c.created_at, c.comment, c.rollback_of, c.published_at)
             .where(c.site == site, c.node == node).order_by(c.number.desc()))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def get(self, site: str, node: str, number: int | None = None) -> dict | None:
        """One version with its text; the newest (the desired one) without `number`."""
        c = config_versions.c
        q = select(config_versions).where(c.site == site, c.node == node)
        q = q.where(c.number == number) if number is not None else q.order_by(c.number.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return dict(row) if row else None

    def desired(self) -> dict[tuple[str, str], dict]:
        """(site, node) -> the newest version's number, version and publication, for every node."""
        c = config_versions.c
        newest = select(c.site, c.node, func.max(c.number).label("number")).group_by(c.site, c.node).subquery()
        q = select(c.site, c.node, c.number, c.version, c.published_at, c.author, c.created_at).join(
            newest, (c.site == newest.c.site) & (c.node == newest.c.node) & (c.number == newest.c.number))
        with self.engine.connect() as conn:
            return {(r.site, r.node): dict(r._mapping) for r in conn.execute(q)}

    def diff(self, site: str, node: str, number: int) -> str:
        """Unified diff from the version before `number` to it."""
        new = self.get(site, node, number)
        if new is None:
            raise NoSuchVersion(f"{site}/{node} has no config version {number}")
        old = self.get(site, node, number - 1) if number > 1 else None
        old_text = old["yaml"] if old else ""
        return "".join(difflib.unified_diff(old_text.splitlines(keepends=True), new["yaml"].splitlines(keepends=True),
                                            fromfile=old["version"] if old else "(none)", tofile=new["version"]))

    def save(self, site: str, node: str, text: str, *, author: str, comment: str | None = None,
             rollback_of: int | None = None) -> dict:
        """Validate, store as the next version, publish it. ConfigRefused (nothing stored,
        nothing published) when the config does not pass."""
        check = validate(text, site, node)
        if not check.ok:
            raise ConfigRefused(check)
        now = dt.datetime.now(UTC)
        for _ in range(5):  # two operators saving at once: the second takes the next number
            try:
                with self.engine.begin() as conn:
                    last = conn.execute(select(func.max(config_versions.c.number)).where(
                        config_versions.c.site == site, config_versions.c.node == node)).scalar() or 0
                    number = last + 1
                    values = dict(site=site, node=node, number=number, version=f"v{number}", yaml=text, author=author,
                                  created_at=now, comment=comment, rollback_of=rollback_of)
                    conn.execute(insert(config_versions).values(**values))
                    previous = conn.execute(select(config_versions.c.yaml).where(
                        config_versions.c.site == site, config_versions.c.node == node,
                        config_versions.c.number == last)).scalar()
                    diff = "".join(difflib.unified_diff((previous or "").splitlines(keepends=True),
                                                        text.splitlines(keepends=True), n=1))
                    self.audit.record(author, "config_rollback" if rollback_of else "config_change",
                                      f"node:{site}/{node}", {"version": f"v{number}", "comment": comment,
                                                              "rollback_of": rollback_of, "diff": diff}, conn=conn)
                break
            except IntegrityError:
                continue
        else:
            raise ZastavaError(f"could not store a new config version for {site}/{node}: too many concurrent saves")
        self.push(site, node, number)
        return self.get(site, node, number)

    def rollback(self, site: str, node: str, number: int, *, author: str) -> dict:
        old = self.get(site, node, number)
        if old is None:
            raise NoSuchVersion(f"{site}/{node} has no config version {number}")
        return self.save(site, node, old["yaml"], author=author, comment=f"rollback to {old['version']}",
                         rollback_of=number)

    def message(self, row: dict) -> ConfigMessage:
        data = yaml.safe_load(row["yaml"])
        data["version"] = row["version"]  # the node reports this back in config/state
        return ConfigMessage(version=row["version"], issued_at=row["created_at"], author=row["author"], config=data)

    def push(self, site: str, node: str, number: int | None = None) -> bool:
        """Publish a version (the newest by default) as the node's retained config; True when
        the broker acknowledged it. One that was not is published again at the next connect."""
        row = self.get(site, node, number)
        if row is None or self.publish is None:
            return False
        payload = self.message(row).model_dump_json().encode()
        if not self.publish(topic(site, node, Kind.CONFIG), payload):
            return False
        with self.engine.begin() as conn:
            conn.execute(update(config_versions).where(config_versions.c.id == row["id"])
                         .values(published_at=dt.datetime.now(UTC)))
        return True

    def push_all(self) -> int:
        """Publish every node's newest version again (after central reconnects to the broker):
        retained messages make this harmless, and a push the broker never acknowledged goes out."""
        return sum(self.push(site, node) for site, node in self.desired())


def node_config(row: dict | None) -> NodeConfig | None:
    """A stored version as a NodeConfig (for the plan view: post position, camera geometry)."""
    if row is None:
        return None
    try:
        return parse_config(row["yaml"], ORIGIN, expand=False)
    except ConfigError:
        return None
