"""Reading settings files: bounded in size, YAML with located errors, ${NAME} from the environment.

Shared by the node config and central's settings; kept free of heavy imports.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml


class FileProblem(Exception):
    """One line saying what is wrong with a settings file and where."""


def read_text(path: Path, limit: int, what: str) -> str:
    """The file's text, refusing files over `limit` bytes (what cannot be a `what`)."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise FileProblem(f"{path}: {size} bytes is over the {limit}-byte limit for a {what}")
        return path.read_text()
    except FileNotFoundError:
        raise FileProblem(f"{path}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FileProblem(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None


def parse_yaml(text: str, origin: str) -> Any:
    """YAML, or a FileProblem naming the line and column of the first error."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise FileProblem(f"{origin}{where}: not valid YAML: {getattr(e, 'problem', None) or e}") from None

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, path: str, problems: list[str]) -> Any:
    """Replace ${NAME} (or ${NAME:-default}, as in the shell) in every string of `value`; a missing
    variable without a default is one line in `problems`."""
    if isinstance(value, str):
        def sub(m: re.Match) -> str:
            name, default = m.group(1), m.group(2)
            if name not in os.environ and default is not None:
                return default
            if name not in os.environ:
                problems.append(f"{path}: environment variable {name} is not set")
                return ""
            return os.environ[name]

        return _ENV.sub(sub, value)
    if isinstance(value, list):
        return [expand_env(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: expand_env(v, f"{path}.{k}" if path else str(k), problems) for k, v in value.items()}
    return value
