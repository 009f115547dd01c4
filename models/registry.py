"""The model registry: known models, where their files are, and verified downloads.

Lookup order for a model reference: an explicit path, then $ZASTAVA_MODELS, then this
project's models directory (the folder holding this file).

    >>> reg = load_registry()
    >>> reg.get("yolox-nano").layout
    'yolox'
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from edge.errors import ModelError, RegistryError

MODELS_DIR = Path(__file__).resolve().parent
REGISTRY_FILE = MODELS_DIR / "registry.yaml"
LABELS_DIR = MODELS_DIR / "labels"
ENV_MODELS = "ZASTAVA_MODELS"
LAYOUTS = ("yolox", "ultralytics", "yolov5", "end2end")
# Bounds what a pull will write: a registry entry larger than this is refused, not filled.
MAX_DOWNLOAD_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class ModelEntry:
    name: str
    file: str
    layout: str
    input_size: tuple[int, int]
    license: str
    url: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    labels: str = "metadata"
    export: str | None = None
    description: str = ""

    def class_names(self) -> list[str] | None:
        """Names from the entry's label file; None when they live in the ONNX metadata."""
        if self.labels == "metadata":
            return None
        path = LABELS_DIR / self.labels
        return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


@dataclass(frozen=True)
class Registry:
    default: str
    entries: dict[str, ModelEntry] = field(default_factory=dict)

    def get(self, name: str) -> ModelEntry:
        try:
            return self.entries[name]
        except KeyError:
            known = ", ".join(sorted(self.entries))
            raise RegistryError(f"unknown model {name!r}; known models: {known}") from None

    def by_file(self, file_name: str) -> ModelEntry | None:
        return next((e for e in self.entries.values() if e.file == file_name), None)


def load_registry(path: Path = REGISTRY_FILE) -> Registry:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise RegistryError(f"{path}: cannot read model registry: {e}") from None
    entries: dict[str, ModelEntry] = {}
    for name, item in (raw.get("models") or {}).items():
        try:
            entry = ModelEntry(name=name, input_size=tuple(item.pop("input_size")), **item)
        except (TypeError, KeyError) as e:
            raise RegistryError(f"{path}: models.{name}: {e}") from None
        if entry.layout not in LAYOUTS:
            raise RegistryError(f"{path}: models.{name}.layout: {entry.layout!r} is not one of {', '.join(LAYOUTS)}")
        if entry.url and not entry.sha256:
            raise RegistryError(f"{path}: models.{name}: a url needs a sha256 to verify the download")
        entries[name] = entry
    default = raw.get("default", "")
    if default not in entries:
        raise RegistryError(f"{path}: default model {default!r} is not listed")
    return Registry(default=default, entries=entries)


def search_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get(ENV_MODELS)
    if env:
        dirs.append(Path(env))
    dirs.append(MODELS_DIR)
    return dirs


def download_dir() -> Path:
    """Where `models pull` writes: $ZASTAVA_MODELS when set, else the project's models dir."""
    env = os.environ.get(ENV_MODELS)
    return Path(env) if env else MODELS_DIR


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    entry: ModelEntry | None


def resolve_model(ref: str | os.PathLike[str], registry: Registry | None = None) -> ResolvedModel:
    """Find a model file from a path, a registry name or a bare file name."""
    registry = registry or load_registry()
    text = os.fspath(ref)
    p = Path(text).expanduser()
    looks_like_path = p.suffix == ".onnx" or os.sep in text or text.startswith(".")
    if p.is_file():
        return ResolvedModel(p, registry.by_file(p.name))
    entry = registry.entries.get(text)
    if entry is None and not looks_like_path:
        registry.get(text)  # raises "unknown model ..., known models: ..."
    if entry is None and (p.parent != Path(".") or text.startswith(".")):
        raise ModelError(f"{p}: no such model file")
    file_name = entry.file if entry else p.name
    tried = []
    for d in search_dirs():
        candidate = d / file_name
        if candidate.is_file():
            return ResolvedModel(candidate, entry or registry.by_file(file_name))
        tried.append(str(d))
    hint = ""
    if entry is not None:
        hint = (
            f"; run `zastava-edge models pull {entry.name}`"
            if entry.url
            else f"; run `zastava-edge models export {entry.export}`"
            if entry.export
            else ""
        )
    raise ModelError(f"model {text!r} ({file_name}) not found in {' or '.join(tried)}{hint}")


Progress = Callable[[int, int | None], None]


def pull(
    entry: ModelEntry,
    dest_dir: Path | None = None,
    *,
    timeout_s: float = 30.0,
    progress: Progress | None = None,
    url: str | None = None,
) -> Path:
    """Download a registry entry, verify its sha256, and rename into place only on success.

    Nothing is left behind on failure: the partial file lives under a temporary name in the
    destination folder (so the final rename is atomic) and is removed on any error.
    """
    url = url or entry.url
    if not url:
        how = f"produce it with `zastava-edge models export {entry.export}`" if entry.export else "no download is known"
        raise RegistryError(f"{entry.name}: no verified download; {how}")
    dest_dir = dest_dir or download_dir()
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RegistryError(f"{entry.name}: cannot create {dest_dir}: {e.strerror or e}") from None
    final = dest_dir / entry.file
    fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.file}.", suffix=".part", dir=dest_dir)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    received = 0
    try:
        with os.fdopen(fd, "wb") as out:
            req = urllib.request.Request(url, headers={"User-Agent": "zastava-edge"})
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else entry.size_bytes
                if total and total > MAX_DOWNLOAD_BYTES:
                    raise RegistryError(f"{entry.name}: server announces {total} bytes, over the {MAX_DOWNLOAD_BYTES} limit")
                while chunk := resp.read(1 << 16):
                    received += len(chunk)
                    if received > MAX_DOWNLOAD_BYTES:
                        raise RegistryError(f"{entry.name}: download exceeds {MAX_DOWNLOAD_BYTES} bytes; aborted")
                    digest.update(chunk)
                    out.write(chunk)
                    if progress:
                        progress(received, total)
                if length and length.isdigit() and received != int(length):
                    raise RegistryError(
                        f"{entry.name}: connection dropped after {received} of {length} bytes; nothing written"
                    )
        got = digest.hexdigest()
        if got != entry.sha256:
            raise RegistryError(f"{entry.name}: checksum mismatch (expected sha256 {entry.sha256}, got {got}); nothing written")
        os.replace(tmp, final)
        return final
    except RegistryError:
        raise
    except urllib.error.HTTPError as e:
        raise RegistryError(f"{entry.name}: download failed: HTTP {e.code} {e.reason} from {url}") from None
    except urllib.error.URLError as e:
        raise RegistryError(f"{entry.name}: download failed: {e.reason} ({url})") from None
    except (OSError, ValueError) as e:  # dropped connections surface as IncompleteRead/ConnectionReset
        raise RegistryError(
            f"{entry.name}: download failed after {received} bytes: {type(e).__name__}: {e}; nothing written"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
