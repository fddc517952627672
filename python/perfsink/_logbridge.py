"""The engine's log (``perfsink_log_set``) routed to Python's ``logging.getLogger("perfsink")``.

The engine calls back from its own threads (the writer's above all) and from the caller's
thread while a call runs; ctypes takes the GIL for each call. The callback object is kept
alive here for as long as it is installed, and it never lets an exception reach C.
Installed once per process, at the first publisher; detached at interpreter exit (after the
publishers are closed), so no engine thread calls into a finalizing interpreter.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from typing import Any, Optional

from . import _native

logger = logging.getLogger("perfsink")

_LEVELS = {
    _native.LOG_ERROR: logging.ERROR,
    _native.LOG_WARN: logging.WARNING,
    _native.LOG_INFO: logging.INFO,
    _native.LOG_DEBUG: logging.DEBUG,
}


def _engine_level(python_level: int) -> int:
    """The most detailed engine level the ``perfsink`` logger would emit."""
    if python_level <= logging.DEBUG:
        return _native.LOG_DEBUG
    if python_level <= logging.INFO:
        return _native.LOG_INFO
    if python_level <= logging.WARNING:
        return _native.LOG_WARN
    return _native.LOG_ERROR


def _forward(_userdata: Any, level: int, msg: Any, length: int) -> None:
    try:
        text = ctypes.string_at(msg, length).decode("utf-8", "replace")
        logger.log(_LEVELS.get(level, logging.DEBUG), "%s", text)
    except BaseException:  # noqa: BLE001 - nothing may unwind into the engine's thread
        pass


# Kept for the life of the process: the engine holds only its address.
_CALLBACK = _native.LOG_FN(_forward)
_lock = threading.Lock()
_installed: Optional[tuple[int, int]] = None  # (pid, engine level)


def _reset_lock_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a parent thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_in_child)


def install() -> None:
    """Routes the engine's log to the ``perfsink`` logger at its current effective level.

    Called before every sink opens (the open itself may log, such as the message of a sink
    without ``INFLUXDB_URL``). A forked child keeps its parent's installation: replacing the
    logger there could wait on a lock a parent thread held at the fork.
    """
    global _installed
    level = _engine_level(logger.getEffectiveLevel())
    with _lock:
        if _installed is not None and (_installed[0] != os.getpid() or _installed[1] == level):
            return
        _native.lib().perfsink_log_set(_CALLBACK, None, level)
        _installed = (os.getpid(), level)


def uninstall() -> None:
    """Gives the engine back its stderr logger (at exit, once the publishers are closed)."""
    global _installed
    with _lock:
        if _installed is None or _installed[0] != os.getpid():
            return
        _native.lib().perfsink_log_set(_native.LOG_FN(), None, _native.LOG_WARN)  # NULL: stderr
        _installed = None
