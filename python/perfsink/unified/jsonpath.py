"""The JSONPath subset of ``extract:``: ``$``, ``.key``, ``[index]`` (negative counts from the
end) and ``['key']``/``["key"]`` for keys that are not identifiers. Nothing else (no wildcards,
filters or recursive descent): one path names one value."""

from __future__ import annotations

import re
from typing import Any, List, Union

_TOKEN_RE = re.compile(r"\.([A-Za-z_][\w-]*)|\[(-?\d+)\]|\[(['\"])(.*?)\3\]")


class PathError(ValueError):
    """The path is not in the subset, or the document has no value there."""


def parse(path: str) -> List[Union[str, int]]:
    if not path.startswith("$"):
        raise PathError(f"JSONPath {path!r} must start with $")
    parts: List[Union[str, int]] = []
    pos = 1
    while pos < len(path):
        m = _TOKEN_RE.match(path, pos)
        if not m:
            raise PathError(f"unsupported JSONPath {path!r} at {path[pos:]!r}")
        key, index, _, quoted = m.groups()
        parts.append(int(index) if index is not None else (key if key is not None else quoted))
        pos = m.end()
    return parts


def find(document: Any, path: str) -> Any:
    """The value at ``path`` in a parsed JSON document; ``PathError`` when it is not there."""
    value = document
    for part in parse(path):
        try:
            if isinstance(part, int):
                if not isinstance(value, list):
                    raise LookupError
                value = value[part]
            else:
                if not isinstance(value, dict):
                    raise LookupError
                value = value[part]
        except LookupError:
            raise PathError(f"{path}: no value at {part!r}") from None
    return value
