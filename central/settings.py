"""Central's settings: one optional YAML file, the environment for secrets, CLI flags on top.

    db_url: postgresql://zastava:${PGPASSWORD}@db.hq/zastava   # ${VAR} from the environment
    http_host: 0.0.0.0
    broker_url: mqtts://broker.hq:8883
    shared_group: central                                     # N replicas split the messages
    ca_file: /etc/zastava/ca.pem

`load_settings(path, **overrides)` returns CentralSettings or raises SettingsError listing every
problem as "FILE: field: why". Operator tokens come from $ZASTAVA_CENTRAL_TOKENS
(comma-separated) unless given; they never belong in a committed file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge.settings_files import FileProblem, expand_env, parse_yaml, read_text  # the node configs' rules
from edge.errors import ZastavaError

TOKENS_ENV = "ZASTAVA_CENTRAL_TOKENS"
MIN_TOKEN_CHARS = 16  # a bearer token is the only thing between the network and the alerts
MAX_SETTINGS_BYTES = 100_000
BROKER_SCHEMES = ("mqtt", "mqtts", "ws", "wss")


class SettingsError(ZastavaError):
    """Settings that cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(problems[0] if len(problems) == 1 else f"{len(problems)} problems:\n" + "\n".join(problems))


def tokens_from_env() -> list[str]:
    return [t.strip() for t in os.environ.get(TOKENS_ENV, "").split(",") if t.strip()]


SEVERITY = r"^(info|low|medium|high|critical)$"


class OutputFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Names the output in the queue and the logs.")
    kinds: list[str] = Field(["alert", "incident"], description="What to send: alert, incident or both.")
    min_severity: str = Field("info", pattern=SEVERITY, description="Leave out alerts and incidents below this.")

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, kinds: list[str]) -> list[str]:
        if not kinds or any(k not in ("alert", "incident") for k in kinds):
            raise ValueError("kinds are alert and/or incident")
        return kinds


class TakOutput(OutputFilter):
    """A TAK server that receives alerts and incidents as Cursor on Target events."""

    url: str = Field(pattern=r"^(tcp|udp|tls)://[^/\s:]+:\d{1,5}$", description="tcp://HOST:PORT, udp://... or tls://...")
    ca_file: Path | None = Field(None, description="CA that signed the TAK server's certificate (tls://).")
    cert_file: Path | None = Field(None, description="Client certificate (PEM) the TAK server knows (tls://).")
    key_file: Path | None = Field(None, description="The client certificate's key.")
    tls_server_hostname: str | None = Field(None, description="Name in the server's certificate, when not the URL's host.")
    stale_s: float = Field(600.0, gt=0, le=86_400, description="How long a map keeps showing an event.")
    affiliation: str = Field("u", pattern=r"^[pufnsahjk]$", description="CoT affiliation: u unknown, s suspect, h hostile...")

    @model_validator(mode="after")
    def _tls_needs_cert(self):
        if self.url.startswith("tls://") and self.cert_file is None:
            raise ValueError("a tls:// TAK output needs cert_file (TAK servers authenticate clients by certificate)")
        return self


class WebhookOutput(OutputFilter):
    """An HTTP endpoint that receives alerts and incidents as signed JSON."""

    url: str = Field(pattern=r"^https?://\S+$")
    secret: str = Field(min_length=16, repr=False, description="HMAC-SHA256 key; use ${VAR} to keep it out of the file.")
    timeout_s: float = Field(5.0, gt=0, le=60)


class IncidentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    distance_m: float = Field(100.0, gt=0, le=100_000, description="Alerts this close (and overlapping in time) join.")
    time_slack_s: float = Field(30.0, ge=0, le=3600, description="Each alert's time span is widened by this.")
    lookback_s: float = Field(600.0, gt=0, le=86_400, description="How far back a new alert looks for its incident.")


class CentralSettings(BaseModel):
    """Everything `zastava-central run` needs; every field has a default that runs the demo."""

    model_config = ConfigDict(extra="forbid")

    db_url: str = Field(
        "sqlite:///zastava-central.db",
        description="SQLAlchemy URL of the store: sqlite:///FILE (one replica) or postgresql://user@host/db "
        "(several replicas); both run the same code.",
    )
    http_host: str = Field("127.0.0.1", description="Address the REST API listens on.")
    http_port: int = Field(8080, ge=0, le=65535, description="Port the REST API listens on (0: any free port).")
    api_tokens: list[str] = Field(
        default_factory=list,
        repr=False,
        description=f"Bearer tokens of operators. Read from ${TOKENS_ENV} (comma-separated) when not given; "
        "with none, the API refuses every request.",
    )
    broker_url: str | None = Field(
        None, description="MQTT broker, e.g. mqtts://broker.hq:8883; none starts the embedded broker (demo only)."
    )
    shared_group: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="MQTT 5 shared-subscription group: replicas in one group split the messages between them.",
    )
    client_id: str = Field("zastava-central", min_length=1, max_length=128,
                           description="MQTT client id (unique per replica).")
    username: str | None = Field(None, description="MQTT user name.")
    password: str | None = Field(None, repr=False, description="MQTT password; use ${VAR} to keep it out of the file.")
    ca_file: Path | None = Field(None, description="CA bundle that signs the broker's certificate (TLS).")
    cert_file: Path | None = Field(None, description="Client certificate for mutual TLS.")
    key_file: Path | None = Field(None, description="Private key of the client certificate.")
    dead_letter_max_bytes: int = Field(
        4096, ge=0, le=2 * 1024 * 1024, description="How many bytes of a refused message's payload are kept."
    )
    # --- the operator console -----------------------------------------------------------------
    session_ttl_s: float = Field(8 * 3600, ge=60, le=30 * 86_400, description="A console login lasts this long.")
    cookie_secure: bool = Field(False, description="Mark the session cookie Secure: set it when users reach central "
                                "over HTTPS (a TLS reverse proxy), as they should beyond a closed network.")
    password_scrypt_n: int = Field(2**17, ge=2**14, le=2**20, description="scrypt cost N for new password hashes.")
    correlate: bool = Field(True, description="Group alerts into incidents and queue outputs here (one replica).")
    incidents: IncidentSettings = Field(default_factory=IncidentSettings)
    feed_interval_s: float = Field(0.5, ge=0.05, le=10, description="The live feed sends what arrived, this often.")
    tak: list[TakOutput] = Field(default_factory=list, max_length=16, description="TAK servers (Cursor on Target).")
    webhooks: list[WebhookOutput] = Field(default_factory=list, max_length=16, description="Signed JSON webhooks.")
    map_tiles_url: str | None = Field(
        None, pattern=r"^(https?://|/)\S*\{z\}\S*\{x\}\S*\{y\}\S*$",
        description="Optional offline tile server for the plan view's basemap, e.g. http://tiles.hq/{z}/{x}/{y}.png.")

    @model_validator(mode="before")
    @classmethod
    def _tokens_default_from_env(cls, data: Any) -> Any:
        # Not a default_factory: tokens read from the environment must pass the same checks.
        if isinstance(data, dict) and data.get("api_tokens") is None:
            data = {**data, "api_tokens": tokens_from_env()}
        return data

    @field_validator("api_tokens")
    @classmethod
    def _strong_tokens(cls, tokens: list[str]) -> list[str]:
        tokens = [t.strip() for t in tokens if t.strip()]
        for t in tokens:
            if len(t) < MIN_TOKEN_CHARS:
                raise ValueError(f"a token must have at least {MIN_TOKEN_CHARS} characters (one has {len(t)})")
            if not t.isascii() or any(c.isspace() for c in t):
                raise ValueError("a token must be printable ASCII without spaces")
        return tokens

    @field_validator("db_url")
    @classmethod
    def _known_database(cls, url: str) -> str:
        scheme = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError("expected sqlite:///FILE or postgresql://USER@HOST/DB")
        return url

    @field_validator("broker_url")
    @classmethod
    def _broker(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in BROKER_SCHEMES or not parts.hostname:
            raise ValueError(f"expected {'|'.join(BROKER_SCHEMES)}://HOST[:PORT], got {url!r}")
        return url

    @model_validator(mode="after")
    def _tls_pairs(self) -> CentralSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (mutual TLS)")
        names = [o.name for o in [*self.tak, *self.webhooks]]
        if len(names) != len(set(names)):
            raise ValueError("tak and webhooks: every output needs a name of its own")
        return self


def load_settings(path: Path | str | None = None, **overrides: Any) -> CentralSettings:
    """Read the optional YAML file, expand ${VAR}s, apply `overrides` (CLI flags; None = not given)."""
    origin = str(path) if path is not None else "settings"
    raw: dict[str, Any] = {}
    problems: list[str] = []
    if path is not None:
        raw = _read_yaml(Path(path))

        raw = expand_env(raw, "", problems)
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = CentralSettings.model_validate(raw)
    except ValidationError as e:
        # A field whose ${VAR} is unset was already reported; its empty value would only repeat it.
        unset = {p.split(":", 1)[0] for p in problems}
        problems += [line for line in map(_one_line, e.errors()) if line.split(":", 1)[0] not in unset]
        settings = None
    if problems:
        raise SettingsError([f"{origin}: {p}" for p in problems])
    return settings


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = parse_yaml(read_text(path, MAX_SETTINGS_BYTES, "settings"), str(path))
    except FileProblem as e:
        raise SettingsError([str(e)]) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SettingsError([f"{path}: settings are a mapping of field: value, got {type(raw).__name__}"])
    return raw


def _one_line(err: dict) -> str:
    where = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = f"unknown setting (known: {', '.join(CentralSettings.model_fields)})"
    return f"{where}: {msg}" if where else msg
