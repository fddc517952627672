"""``${VAR}`` expansion (the environment) and ``{{var}}`` templating (workflow variables).

``${VAR}`` and ``${VAR:-default}`` read the run's environment; ``$${`` is a literal ``${``. An
unset variable without a default is an error (a URL with a literal ``${...}`` would only fail
later and obscurely). ``{{name}}`` reads a workflow variable (``extract:``, ``vu``, ``iteration``);
a string that is exactly ``{{name}}`` is replaced by the value itself (a number stays a number in
a JSON body), otherwise the value is inserted as text (dicts and lists as JSON).
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Mapping

_ENV_RE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_VAR_RE = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")

# Fields that are names or bookkeeping, never expanded.
_KEEP = frozenset({"name", "display_name", "description", "tags", "line", "tool"})


class ExpandError(ValueError):
    """An unset ``${VAR}`` or an undefined ``{{var}}``."""


def expand_env_str(text: str, env: Mapping[str, str]) -> str:
    def one(m: "re.Match[str]") -> str:
        if m.group(0) == "$${":
            return "${"
        name, default = m.group(1), m.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                raise ExpandError(f"environment variable ${{{name}}} is not set")
            return default
        return value

    return _ENV_RE.sub(one, text)


def expand_env(value: Any, env: Mapping[str, str]) -> Any:
    """A copy of ``value`` (str, list, dict or a model dataclass) with ``${VAR}`` expanded."""
    if isinstance(value, str):
        return expand_env_str(value, env)
    if isinstance(value, list):
        return [expand_env(v, env) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v, env) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: expand_env(getattr(value, f.name), env)
            for f in dataclasses.fields(value)
            if f.name not in _KEEP
        }
        return dataclasses.replace(value, **changes)
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def render(value: Any, variables: Mapping[str, Any]) -> Any:
    """``value`` (str, list or dict) with every ``{{var}}`` replaced from ``variables``."""
    if isinstance(value, str):
        whole = _VAR_RE.fullmatch(value)
        if whole:
            return _lookup(whole.group(1), variables)
        return _VAR_RE.sub(lambda m: _text(_lookup(m.group(1), variables)), value)
    if isinstance(value, list):
        return [render(v, variables) for v in value]
    if isinstance(value, dict):
        return {render(k, variables): render(v, variables) for k, v in value.items()}
    return value


def _lookup(name: str, variables: Mapping[str, Any]) -> Any:
    if name not in variables:
        raise ExpandError(f"variable {{{{{name}}}}} is not defined (extract it in an earlier step)")
    return variables[name]
