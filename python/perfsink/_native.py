"""ctypes binding to libperfsink's C ABI (``include/perfsink.h``).

Only types are adapted here: every rule (configuration, schemas, counting) is the engine's.

The library is looked for, in this order: ``$PERFSINK_LIB``; the copy bundled in the
installed package (``perfsink/_bundled/``); a development checkout's
``$CARGO_TARGET_DIR/release`` and ``<repository>/target/release``. Its ABI must be 1.x with
x >= :data:`ABI_MINOR`.

Every fallible call gets an error buffer of its own, so calls from many threads at once never
read each other's messages; a failure raises :class:`PerfsinkError` with the result code's
name and the engine's message.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from ctypes import (
    POINTER,
    Structure,
    c_bool,
    c_char,
    c_char_p,
    c_double,
    c_int64,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, List, Optional

ABI_MAJOR = 1
#: The minor version this binding was written for (1.3: workflow steps, open_env_with;
#: 1.4: sync).
ABI_MINOR = 4

#: ``PERFSINK_TIMESTAMP_NOW``: stamp a point with the time of the call.
TIMESTAMP_NOW = -(2**63)

WORKFLOW_SUCCESS = 1
WORKFLOW_ITERATION = 2

FIELD_FLOAT, FIELD_INT, FIELD_UINT, FIELD_BOOL, FIELD_STRING = 0, 1, 2, 3, 4

LOG_OFF, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG = 0, 1, 2, 3, 4

OK = 0
CLOSED = 302
UNDELIVERED = 303

_ERR_LEN = 1024
_LIB_NAME = "libperfsink.dylib" if sys.platform == "darwin" else "libperfsink.so"


class PerfsinkError(Exception):
    """A perfsink call failed: ``code`` is the ``perfsink_result`` number, ``name`` its name
    (``PERFSINK_CONFIG``...), ``message`` the engine's explanation."""

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}" if message else name)
        self.code = code
        self.name = name
        self.message = message


class LibraryError(PerfsinkError):
    """libperfsink could not be loaded, or its ABI does not fit this binding."""

    def __init__(self, message: str) -> None:
        super().__init__(-1, "PERFSINK_LIBRARY", message)


class Tag(Structure):
    _fields_ = [
        ("key", c_char_p),
        ("key_len", c_size_t),
        ("value", c_char_p),
        ("value_len", c_size_t),
    ]


class Field(Structure):
    _fields_ = [
        ("key", c_char_p),
        ("key_len", c_size_t),
        ("kind", c_uint32),
        ("bool_value", c_uint8),
        ("float_value", c_double),
        ("int_value", c_int64),
        ("uint_value", c_uint64),
        ("string_value", c_char_p),
        ("string_len", c_size_t),
    ]


#: The counters of ``perfsink_stats``, in their order (ABI 1.1; only ever appended to).
STAT_NAMES = (
    "accepted",
    "replayed",
    "written",
    "retried",
    "rejected",
    "rejected_invalid",
    "rejected_server",
    "dropped",
    "dropped_queue_full",
    "dropped_undelivered",
    "spooled",
    "queue_depth",
    "deduplicated",
    "series",
    "series_rejected",
    "requests",
    "bytes_sent",
    "write_latency_us_mean",
    "write_latency_us_max",
    "dedup_unchecked",
    "aggregated",
    "aggregated_late",
    "aggregated_no_percentiles",
)


class Stats(Structure):
    _fields_ = [(name, c_uint64) for name in STAT_NAMES]


class CloseReport(Structure):
    _fields_ = [
        ("kept_in_spool", c_uint64),
        ("has_last_write_error", c_uint32),
        ("delivered", c_uint32),
        ("stats", Stats),
    ]


#: ``perfsink_workflow_step``: 64 bytes, see ``struct`` format ``STEP_FORMAT``.
STEP_FORMAT = "=qdqIIIIIIIIII"
#: ``perfsink_workflow_tag``.
TAG_FORMAT = "=IIII"

LOG_FN = ctypes.CFUNCTYPE(None, c_void_p, c_uint32, POINTER(c_char), c_size_t)

_SIGNATURES: dict[str, tuple[Any, List[Any]]] = {
    "perfsink_abi_version": (c_uint32, []),
    "perfsink_version": (c_char_p, []),
    "perfsink_result_name": (c_char_p, [c_uint32]),
    "perfsink_log_set": (None, [LOG_FN, c_void_p, c_uint32]),
    "perfsink_sink_open_env_with": (
        c_uint32,
        [c_char_p, c_size_t, POINTER(c_void_p), c_char_p, c_size_t],
    ),
    "perfsink_sink_enabled": (c_uint32, [c_void_p, POINTER(c_bool), c_char_p, c_size_t]),
    "perfsink_sink_record": (
        c_uint32,
        [
            c_void_p,
            c_char_p,
            c_size_t,
            POINTER(Tag),
            c_size_t,
            POINTER(Field),
            c_size_t,
            c_int64,
            c_char_p,
            c_size_t,
        ],
    ),
    "perfsink_workflow_steps": (
        c_uint32,
        [
            c_void_p,
            c_void_p,
            c_size_t,
            c_void_p,
            c_size_t,
            c_char_p,
            c_size_t,
            POINTER(c_size_t),
            c_char_p,
            c_size_t,
        ],
    ),
    "perfsink_sink_flush": (c_uint32, [c_void_p, c_uint32, c_char_p, c_size_t]),
    "perfsink_sink_sync": (c_uint32, [c_void_p, c_uint32, c_char_p, c_size_t]),
    "perfsink_sink_stats": (c_uint32, [c_void_p, POINTER(Stats), c_size_t, c_char_p, c_size_t]),
    "perfsink_sink_last_write_error": (c_size_t, [c_void_p, c_char_p, c_size_t]),
    "perfsink_sink_describe": (c_size_t, [c_void_p, c_char_p, c_size_t]),
    "perfsink_sink_database": (c_size_t, [c_void_p, c_char_p, c_size_t]),
    "perfsink_sink_close": (
        c_uint32,
        [c_void_p, POINTER(CloseReport), c_size_t, c_char_p, c_size_t],
    ),
    "perfsink_sink_free": (None, [c_void_p]),
}

_lib: Optional[ctypes.CDLL] = None
_lib_path: Optional[Path] = None
_load_lock = threading.Lock()


def library_candidates() -> List[Path]:
    """Where libperfsink is looked for, in order (the first that exists is loaded)."""
    env = os.environ.get("PERFSINK_LIB")
    if env:
        return [Path(env)]
    here = Path(__file__).resolve().parent
    found = [here / "_bundled" / _LIB_NAME]
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        found.append(Path(target) / "release" / _LIB_NAME)
    # A development checkout: <repository>/python/perfsink/_native.py.
    found.append(here.parent.parent / "target" / "release" / _LIB_NAME)
    return found


def lib() -> ctypes.CDLL:
    """The loaded library (loaded on first use); :class:`LibraryError` when it cannot be."""
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    with _load_lock:
        if _lib is None:
            _lib_path, _lib = _load(library_candidates())
    return _lib


def library_path() -> Path:
    """The file the library was loaded from."""
    lib()
    assert _lib_path is not None
    return _lib_path


def _load(candidates: List[Path]) -> tuple[Path, ctypes.CDLL]:
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        looked = ", ".join(str(p) for p in candidates)
        raise LibraryError(
            f"{_LIB_NAME} not found (looked in: {looked}); install the package with "
            "`pip install ./python` from a perfsink checkout, or set PERFSINK_LIB to the library"
        )
    try:
        # CDLL releases the GIL around every call: a call that waits (the queue's block
        # policy, flush, close) never stalls the other Python threads.
        cdll = ctypes.CDLL(str(path))
    except OSError as e:
        raise LibraryError(f"cannot load {path}: {e}") from e
    try:
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(cdll, name)
            fn.restype, fn.argtypes = restype, argtypes
    except AttributeError as e:
        raise LibraryError(f"{path} is not a libperfsink of ABI 1.{ABI_MINOR} or later: {e}") from e
    abi = cdll.perfsink_abi_version()
    major, minor = abi >> 16, abi & 0xFFFF
    if major != ABI_MAJOR or minor < ABI_MINOR:
        raise LibraryError(
            f"{path} has C ABI {major}.{minor}; this package needs {ABI_MAJOR}.{ABI_MINOR} or a "
            f"later {ABI_MAJOR}.x (rebuild it: pip install ./python)"
        )
    return path, cdll


def err_buf() -> ctypes.Array[c_char]:
    """A fresh error buffer for one call."""
    return ctypes.create_string_buffer(_ERR_LEN)


def result_name(code: int) -> str:
    name: bytes = lib().perfsink_result_name(code)
    return name.decode()


def check(code: int, err: ctypes.Array[c_char]) -> None:
    """Raises :class:`PerfsinkError` for a failed call's code and its buffer's message."""
    if code != OK:
        raise PerfsinkError(code, result_name(code), err.value.decode("utf-8", "replace"))


def version() -> str:
    """The library's version (``perfsink_version``)."""
    v: bytes = lib().perfsink_version()
    return v.decode()


def abi_version() -> tuple[int, int]:
    """The loaded library's C ABI ``(major, minor)``."""
    v = lib().perfsink_abi_version()
    return v >> 16, v & 0xFFFF


def _text(fn: Any, handle: Optional[int]) -> str:
    """A string export's answer (``size_t fn(sink, buf, len)``), its full length honoured."""
    buf = ctypes.create_string_buffer(256)
    n = fn(handle, buf, len(buf))
    if n >= len(buf):
        buf = ctypes.create_string_buffer(n + 1)
        fn(handle, buf, len(buf))
    return buf.value.decode("utf-8", "replace")


def describe(handle: Optional[int]) -> str:
    """Where the sink's points go, for humans (``http://host:8086, db k6``; no credentials)."""
    return _text(lib().perfsink_sink_describe, handle)


def database(handle: Optional[int]) -> Optional[str]:
    """The v1 database the engine resolved (``INFLUXDB_DB``, the URL's path or ``k6``)."""
    return _text(lib().perfsink_sink_database, handle) or None


def last_write_error(handle: Optional[int]) -> Optional[str]:
    """The latest write failure of the sink, if any."""
    buf = ctypes.create_string_buffer(_ERR_LEN)
    n = lib().perfsink_sink_last_write_error(handle, buf, _ERR_LEN)
    return buf.value.decode("utf-8", "replace") if n else None
