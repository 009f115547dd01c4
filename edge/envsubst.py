"""${NAME} in config values, replaced from the environment, so secrets stay out of files.

Shared by the node config and central's settings; kept free of heavy imports.
"""

from __future__ import annotations

import os
import re
from typing import Any

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: Any, path: str, problems: list[str]) -> Any:
    """Replace ${NAME} in every string of `value`; a missing variable is one line in `problems`."""
    if isinstance(value, str):
        def sub(m: re.Match) -> str:
            name = m.group(1)
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
