"""``InfluxDBPublisher``: Python workflow steps and points, streamed to InfluxDB by the engine.

How a step travels: :meth:`InfluxDBPublisher.publish_step` stamps it (the step's end), checks
its Python types and appends it to an in-process buffer, which is handed to the engine in
batches (``perfsink_workflow_steps``) when it holds :data:`BATCH_STEPS` steps, at least every
:data:`HANDOFF_INTERVAL_S` (a background thread), and on ``flush``, ``stats`` and ``close``.
A foreign call costs microseconds; one per step would cap a Python thread far below the
engine. The engine then encodes, batches and writes without ever blocking the caller on the
network; what it refuses or loses is counted in :meth:`stats` and logged.

Lifecycle decisions:

* No ``INFLUXDB_URL``: the publisher is a no-op; the engine says so once, on the
  ``perfsink`` logger, when it opens.
* ``close()`` is idempotent and returns the same :class:`CloseReport` each time. After it,
  ``publish_step``, ``step``, ``record`` and ``flush`` raise :class:`PerfsinkError`
  (``PERFSINK_CLOSED``); ``stats()`` returns the final counters.
* ``fork``: the engine's threads do not exist in a forked child, so a publisher inherited
  through ``os.fork`` (or ``multiprocessing`` with the fork start method) is a no-op in the
  child: its calls do nothing and say so once on the ``perfsink`` logger; steps the parent
  had buffered are the parent's to deliver. A publisher opened in the child works normally
  (close it there: ``multiprocessing`` ends fork children with ``os._exit``, which skips
  ``atexit``).
* At interpreter exit every open publisher is closed (its buffer delivered within
  ``PERFSINK_CLOSE_TIMEOUT_MS``).
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import operator
import os
import struct
import threading
import time
import weakref
from dataclasses import dataclass, fields
from datetime import datetime
from types import TracebackType
from typing import Any, Dict, List, Mapping, Optional, Tuple, Type, Union

from . import _logbridge, _native
from ._native import PerfsinkError

logger = logging.getLogger("perfsink")

#: Steps per engine call (the buffer is handed over when it holds this many).
BATCH_STEPS = 1024
#: Longest a step waits in the buffer before a background thread hands it to the engine.
HANDOFF_INTERVAL_S = 0.05

_STEP = struct.Struct(_native.STEP_FORMAT)
_TAG = struct.Struct(_native.TAG_FORMAT)
assert _STEP.size == 64 and _TAG.size == 16  # perfsink_workflow_step, perfsink_workflow_tag

_OPEN, _CLOSED, _FORKED = "open", "closed", "forked"
_SUCCESS, _ITERATION = _native.WORKFLOW_SUCCESS, _native.WORKFLOW_ITERATION
_pack = _STEP.pack_into
_time_ns = time.time_ns

TagValues = Mapping[str, Any]
FieldValue = Union[bool, int, float, str]

class _Batch:
    """Steps packed as the engine reads them: ``perfsink_workflow_step`` records, tag records
    and one UTF-8 arena in which each distinct name is stored once."""

    __slots__ = ("steps", "n", "tags", "n_tags", "arena", "offsets", "names")

    def __init__(self) -> None:
        self.steps = bytearray(BATCH_STEPS * _STEP.size)
        self.n = 0
        self.tags = bytearray()
        self.n_tags = 0
        self.arena = bytearray()
        self.offsets: Dict[str, Tuple[int, int]] = {}
        # (workflow, step, action) -> their six range numbers.
        self.names: Dict[Tuple[str, str, Optional[str]], Tuple[int, int, int, int, int, int]] = {}

    def place(self, text: str) -> Tuple[int, int]:
        """The range of ``text`` in the arena (added once per batch)."""
        r = self.offsets.get(text)
        if r is None:
            b = text.encode()
            r = self.offsets[text] = (len(self.arena), len(b))
            self.arena += b
        return r

    def add_names(self, key: Tuple[str, str, Optional[str]]) -> Tuple[int, int, int, int, int, int]:
        _check_names(key)
        workflow, step, action = key
        r = self.names[key] = (*self.place(workflow), *self.place(step), *self.place(action or ""))
        return r

    def add_tags(self, tags: TagValues) -> Tuple[int, int]:
        """Appends the tag records of one step: (first, count)."""
        pairs = _tag_pairs(tags)
        records = b"".join(_TAG.pack(*self.place(k), *self.place(v)) for k, v in pairs)
        first = self.n_tags
        self.tags += records
        self.n_tags += len(pairs)
        return first, len(pairs)


@dataclass(frozen=True)
class Stats:
    """The engine's counters (README, "Counters"), plus ``pending``: steps still in this
    publisher's buffer (0 right after ``stats()``, which hands them over first)."""

    accepted: int = 0
    replayed: int = 0
    written: int = 0
    retried: int = 0
    rejected: int = 0
    rejected_invalid: int = 0
    rejected_server: int = 0
    dropped: int = 0
    dropped_queue_full: int = 0
    dropped_undelivered: int = 0
    spooled: int = 0
    queue_depth: int = 0
    deduplicated: int = 0
    series: int = 0
    series_rejected: int = 0
    requests: int = 0
    bytes_sent: int = 0
    write_latency_us_mean: int = 0
    write_latency_us_max: int = 0
    dedup_unchecked: int = 0
    aggregated: int = 0
    aggregated_late: int = 0
    aggregated_no_percentiles: int = 0
    pending: int = 0

    @classmethod
    def _of(cls, c: _native.Stats, pending: int = 0) -> "Stats":
        return cls(**{n: getattr(c, n) for n in _native.STAT_NAMES}, pending=pending)

    def as_dict(self) -> Dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class CloseReport:
    """What ``close()`` delivered: ``delivered`` is True when every accepted point reached
    InfluxDB; otherwise ``message`` says how many did not and why."""

    delivered: bool
    kept_in_spool: int
    last_write_error: Optional[str]
    stats: Stats
    message: str


class Step:
    """The object ``InfluxDBPublisher.step()`` yields: call :meth:`fail` to record the step as
    failed without raising."""

    __slots__ = ("_publisher", "workflow", "name", "action", "iteration", "tags", "failed", "_t0")

    def __init__(
        self,
        publisher: "InfluxDBPublisher",
        workflow: str,
        name: str,
        action: Optional[str],
        iteration: Optional[int],
        tags: Optional[TagValues],
    ) -> None:
        self._publisher = publisher
        self.workflow, self.name, self.action = workflow, name, action
        self.iteration, self.tags = iteration, tags
        self.failed = False
        self._t0 = 0

    def fail(self) -> None:
        """Records the step as a failure when the block ends."""
        self.failed = True

    def __enter__(self) -> "Step":
        self._t0 = time.perf_counter_ns()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        duration = (time.perf_counter_ns() - self._t0) / 1e9
        self._publisher.publish_step(
            self.workflow,
            self.name,
            duration,
            exc_type is None and not self.failed,
            action=self.action,
            iteration=self.iteration,
            tags=self.tags,
        )
        # None: an exception propagates.


class InfluxDBPublisher:
    """Publishes workflow steps (measurement ``workflow_step``) and any point to InfluxDB
    through the perfsink engine. Thread-safe: any number of threads may publish at once.

    ``url`` and ``db`` override ``INFLUXDB_URL`` and ``INFLUXDB_DB`` (default ``k6``);
    ``options`` override any other engine key, named as in the README's configuration table
    (``PERFSINK_BATCH_LINES=...``, ``INFLUXDB_TOKEN=...``) or by its short lowercase name
    (``batch_lines=...``, ``token=...``). The engine resolves them with the environment and
    refuses unknown keys (:class:`PerfsinkError` ``PERFSINK_CONFIG``). ``True``/``False``
    are passed as ``true``/``false``.

    Without a URL (argument or environment) the publisher is a no-op that says so once.
    See the module documentation for ``close``, ``fork`` and exit.
    """

    def __init__(self, url: Optional[str] = None, db: Optional[str] = None, **options: Any) -> None:
        pairs: List[Tuple[str, Any]] = []
        if url is not None:
            pairs.append(("INFLUXDB_URL", url))
        if db is not None:
            pairs.append(("INFLUXDB_DB", db))
        pairs.extend(options.items())
        config = ";".join(f"{k}={_kv_value(v)}" for k, v in pairs).encode()
        _logbridge.install()
        lib = _native.lib()
        handle = ctypes.c_void_p()
        err = _native.err_buf()
        _native.check(lib.perfsink_sink_open_env_with(config, len(config), ctypes.byref(handle), err, len(err)), err)
        self._lib = lib
        self._handle: Optional[int] = handle.value
        enabled = ctypes.c_bool()
        err = _native.err_buf()
        _native.check(lib.perfsink_sink_enabled(self._handle, ctypes.byref(enabled), err, len(err)), err)
        self._enabled = bool(enabled.value)
        # Where points go, as the engine resolved it: asked once, the handle is freed at close.
        self._describe = _native.describe(self._handle)
        self._database = _native.database(self._handle)
        self._pid = os.getpid()
        self._state = _OPEN
        self._lock = threading.Lock()  # the batch, the state's change to closed
        self._batch = _Batch()
        self._in_flight = 0  # batches taken from the buffer, not yet through the engine
        self._sent = threading.Condition(self._lock)
        self._refusal: Optional[PerfsinkError] = None
        self._report: Optional[CloseReport] = None
        self._close_lock = threading.Lock()
        self._fork_said = False
        _register(self)

    @property
    def destination(self) -> str:
        """Where points go, as the engine resolved the configuration: ``http://host:8086, db k6``
        (never credentials), or ``disabled (no INFLUXDB_URL)``."""
        return self._describe

    @property
    def database(self) -> Optional[str]:
        """The v1 database points go to (``INFLUXDB_DB``, the URL's path, or ``k6``); ``None``
        when disabled or writing to a v2 bucket. Other tools started beside the publisher can
        be given it so that everything lands in one database."""
        return self._database

    @property
    def enabled(self) -> bool:
        """True when points go to InfluxDB (a URL was given)."""
        return self._enabled and self._state == _OPEN

    # -- steps ---------------------------------------------------------------------------

    def publish_step(
        self,
        workflow: str,
        step: str,
        duration: float,
        success: bool,
        action: Optional[str] = None,
        iteration: Optional[int] = None,
        tags: Optional[TagValues] = None,
        *,
        end_ns: Optional[int] = None,
    ) -> None:
        """Publishes one step execution as a ``workflow_step`` point: tags ``workflow``,
        ``step``, ``status`` (``success``/``failure``), ``action`` (default ``api_call``)
        and ``tags`` (values turned into text; ``None`` omits a tag); fields ``duration``
        (seconds, always a float), ``success_count`` (1 or 0) and ``iteration`` (an integer,
        when given). The timestamp is the step's end: now, or ``end_ns`` (ns since the
        epoch).

        Python types are checked here (``TypeError``/``ValueError``); the schema's own rules
        (empty names, a tag named like a schema tag, a negative duration) are the engine's,
        applied when the buffer is handed over: a refused step is counted in
        ``stats().rejected_invalid``, logged, and raised by the next ``flush()``.
        """
        end = _time_ns() if end_ns is None else int(end_ns)
        if self._state is not _OPEN and self._inactive():
            return
        flags = _SUCCESS if success else 0
        if iteration is None:
            iteration = 0
        else:
            flags |= _ITERATION
            iteration = operator.index(iteration)
        duration = float(duration)
        key = (workflow, step, action)
        if not self._enabled:
            _check_names(key)  # checked like any step, then dropped: no URL, nothing sent
            if tags:
                _tag_pairs(tags)
            return
        with self._lock:
            if self._state is not _OPEN:
                self._raise_closed()
            b = self._batch
            r = b.names.get(key)
            if r is None:
                r = b.add_names(key)
            first, count = b.add_tags(tags) if tags else (0, 0)
            _pack(b.steps, b.n * 64, end, duration, iteration, *r, first, count, flags, 0)
            b.n += 1
            if b.n < BATCH_STEPS:
                return
            self._batch = _Batch()
            self._in_flight += 1
        self._send(b)

    def step(
        self,
        workflow: str,
        name: str,
        action: Optional[str] = None,
        iteration: Optional[int] = None,
        tags: Optional[TagValues] = None,
    ) -> Step:
        """A context manager that times its block (monotonic clock) and publishes it as a
        step: a failure when the block raises (the exception propagates) or calls
        ``.fail()`` on the object it yields, a success otherwise.

        >>> with publisher.step("checkout", "login") as s:   # doctest: +SKIP
        ...     if not login():
        ...         s.fail()
        """
        if self._state is _CLOSED:
            self._raise_closed()
        return Step(self, workflow, name, action, iteration, tags)

    # -- generic points ------------------------------------------------------------------

    def record(
        self,
        measurement: str,
        tags: Optional[TagValues],
        fields: Mapping[str, FieldValue],
        time: Union[None, int, datetime] = None,
    ) -> None:
        """Writes one point (``perfsink_sink_record``, synchronous: errors raise here).
        Field types are kept: ``bool``, ``int`` (``uint`` above 2**63-1), ``float``, ``str``.
        ``time``: ``None`` (now), ``int`` ns since the epoch, or a ``datetime`` (naive means
        local time, as ``datetime.timestamp`` reads it)."""
        if self._state is not _OPEN and self._inactive():
            return
        ts = _timestamp(time)
        m = measurement.encode()
        tag_pairs = [(k.encode(), v.encode()) for k, v in _tag_pairs(tags)] if tags else []
        c_tags = (_native.Tag * max(len(tag_pairs), 1))()
        for i, (k, v) in enumerate(tag_pairs):
            c_tags[i] = _native.Tag(k, len(k), v, len(v))
        c_fields = (_native.Field * max(len(fields), 1))()
        for i, (key, value) in enumerate(fields.items()):
            _set_field(c_fields[i], key, value)
        err = _native.err_buf()
        rc = self._lib.perfsink_sink_record(
            self._handle, m, len(m), c_tags, len(tag_pairs), c_fields, len(fields), ts, err, len(err)
        )
        _native.check(rc, err)

    # -- delivery ------------------------------------------------------------------------

    def flush(self, timeout: Optional[float] = None) -> None:
        """Hands the buffered steps to the engine and waits until InfluxDB confirmed (or
        refused) everything published so far, at most ``timeout`` seconds (default 30).
        Raises :class:`PerfsinkError`: ``PERFSINK_TIMEOUT`` when that was not enough (nothing
        is lost; the engine keeps trying), or the first refusal of a buffered step since the
        last ``flush``."""
        if self._state is not _OPEN and self._inactive():
            return
        self._handoff()
        ms = 30_000 if timeout is None else max(0, min(int(timeout * 1000), 2**32 - 1))
        err = _native.err_buf()
        _native.check(self._lib.perfsink_sink_flush(self._handle, ms, err, len(err)), err)
        refusal, self._refusal = self._refusal, None
        if refusal is not None:
            raise refusal

    def sync(self, timeout: Optional[float] = None) -> None:
        """Hands the buffered steps to the engine and waits until everything published so far
        is kept: appended to the spool (``PERFSINK_SPOOL_DIR``) or delivered, at most
        ``timeout`` seconds (default 30). A process killed after it returned loses none of
        those steps: the next publisher on the same spool directory delivers them. Without a
        spool it is :meth:`flush`. Raises :class:`PerfsinkError` like ``flush``."""
        if self._state is not _OPEN and self._inactive():
            return
        self._handoff()
        ms = 30_000 if timeout is None else max(0, min(int(timeout * 1000), 2**32 - 1))
        err = _native.err_buf()
        _native.check(self._lib.perfsink_sink_sync(self._handle, ms, err, len(err)), err)
        refusal, self._refusal = self._refusal, None
        if refusal is not None:
            raise refusal

    def stats(self) -> Stats:
        """The engine's counters, after handing over the buffered steps; after ``close()``,
        the final ones."""
        if self._state is _CLOSED:
            assert self._report is not None
            return self._report.stats
        if self._state is _FORKED:
            self._inactive()
            return Stats()
        self._handoff()
        c = _native.Stats()
        err = _native.err_buf()
        rc = self._lib.perfsink_sink_stats(self._handle, ctypes.byref(c), ctypes.sizeof(c), err, len(err))
        if rc == _native.CLOSED and self._report is not None:
            return self._report.stats
        _native.check(rc, err)
        return Stats._of(c, self._batch.n)

    def close(self) -> Optional[CloseReport]:
        """Delivers what is left (within ``PERFSINK_CLOSE_TIMEOUT_MS``), stops the engine's
        threads and returns the final report, also logged (``INFO``; ``WARNING`` when points
        were not delivered). Idempotent: later calls return the same report. ``None`` in a
        forked child for a publisher of the parent."""
        with self._close_lock:
            if self._report is not None:
                return self._report
            if self._state is _FORKED:
                return None
            with self._lock:
                self._state = _CLOSED  # from here publish_step refuses, under the same lock
            self._handoff()
            c = _native.CloseReport()
            err = _native.err_buf()
            rc = self._lib.perfsink_sink_close(self._handle, ctypes.byref(c), ctypes.sizeof(c), err, len(err))
            if rc not in (_native.OK, _native.UNDELIVERED):
                _native.check(rc, err)
            message = err.value.decode("utf-8", "replace") if rc else "every accepted point was delivered"
            self._report = CloseReport(
                delivered=bool(c.delivered),
                kept_in_spool=c.kept_in_spool,
                last_write_error=_native.last_write_error(self._handle) if c.has_last_write_error else None,
                stats=Stats._of(c.stats),
                message=message,
            )
        s = self._report.stats
        logger.log(
            logging.INFO if self._report.delivered else logging.WARNING,
            "publisher closed: accepted %d, written %d, rejected %d, dropped %d; %s",
            s.accepted,
            s.written,
            s.rejected,
            s.dropped,
            message,
        )
        _unregister(self)
        return self._report

    def __enter__(self) -> "InfluxDBPublisher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is None or getattr(self, "_pid", None) != os.getpid():
            return  # a forked child never touches its parent's engine
        try:
            if self._report is None:
                self.close()
            self._lib.perfsink_sink_free(handle)
            self._handle = None
        except Exception:  # noqa: BLE001 - nothing may escape a finalizer
            pass

    # -- internals -----------------------------------------------------------------------

    def _handoff(self) -> None:
        """Hands the buffered steps to the engine and waits until every batch taken from the
        buffer before (by other threads too) went through it."""
        with self._lock:
            b = self._batch
            if b.n:
                self._batch = _Batch()
                self._in_flight += 1
        if b.n:
            self._send(b)
        with self._lock:
            while self._in_flight:
                self._sent.wait()

    def _send(self, b: _Batch) -> None:
        """One ``perfsink_workflow_steps`` call for batch ``b`` (taken from the buffer)."""
        try:
            if self._state is _FORKED:
                return
            step_buf = (ctypes.c_char * len(b.steps)).from_buffer(b.steps)
            tag_buf = (ctypes.c_char * max(len(b.tags), 1)).from_buffer(b.tags or bytearray(1))
            accepted = ctypes.c_size_t()
            err = _native.err_buf()
            arena = bytes(b.arena)
            rc = self._lib.perfsink_workflow_steps(
                self._handle, step_buf, b.n, tag_buf, b.n_tags, arena, len(arena), ctypes.byref(accepted), err, len(err)
            )
        finally:
            with self._lock:
                self._in_flight -= 1
                self._sent.notify_all()
        if rc != _native.OK:
            e = PerfsinkError(rc, _native.result_name(rc), err.value.decode("utf-8", "replace"))
            # Once until the next flush() raises it: a loop of bad steps must not flood the log.
            if self._refusal is None:
                self._refusal = e
                logger.warning("workflow steps not taken (counted in stats().rejected_invalid): %s", e)

    def _inactive(self) -> bool:
        """For a publisher that is not open: True (the call is a no-op) in a forked child,
        after saying so once; raises after close."""
        if self._state is _FORKED or self._pid != os.getpid():
            self._state = _FORKED
            if not self._fork_said:
                self._fork_said = True
                logger.warning(
                    "this InfluxDBPublisher was opened in process %d: in this forked child "
                    "(pid %d) it is a no-op; open a new InfluxDBPublisher here",
                    self._pid,
                    os.getpid(),
                )
            return True
        self._raise_closed()
        return False

    @staticmethod
    def _raise_closed() -> None:
        raise PerfsinkError(_native.CLOSED, "PERFSINK_CLOSED", "the publisher is closed")

    def _after_fork_in_child(self) -> None:
        self._state = _FORKED
        self._lock = threading.Lock()
        self._sent = threading.Condition(self._lock)
        self._batch = _Batch()
        self._in_flight = 0
        self._close_lock = threading.Lock()


def _kv_value(v: Any) -> str:
    """A value for the engine's ``KEY=value;...`` string (``;`` and ``\\`` escaped)."""
    text = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return text.replace("\\", "\\\\").replace(";", "\\;")


def _check_names(key: Tuple[str, str, Optional[str]]) -> None:
    workflow, step, action = key
    if not (type(workflow) is str and type(step) is str and (action is None or type(action) is str)):
        raise TypeError("workflow, step and action must be str")


def _tag_pairs(tags: TagValues) -> Tuple[Tuple[str, str], ...]:
    """Tags as text: values turned into ``str``, ``None`` values left out (an omitted tag)."""
    try:
        pairs = tuple((k, v if type(v) is str else str(v)) for k, v in tags.items() if v is not None)
    except AttributeError:
        raise TypeError("tags must be a mapping of str to values") from None
    if not all(type(k) is str for k, _ in pairs):
        raise TypeError("tag keys must be str")
    return pairs


def _timestamp(t: Union[None, int, datetime]) -> int:
    if t is None:
        return _native.TIMESTAMP_NOW
    if isinstance(t, datetime):
        return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000
    if isinstance(t, int) and not isinstance(t, bool):
        return t
    raise TypeError(f"time must be None, int ns since the epoch or a datetime, not {type(t).__name__}")


def _set_field(f: _native.Field, key: str, value: FieldValue) -> None:
    k = key.encode()
    f.key, f.key_len = k, len(k)
    if isinstance(value, bool):
        f.kind, f.bool_value = _native.FIELD_BOOL, int(value)
    elif isinstance(value, int):
        if -(2**63) <= value < 2**63:
            f.kind, f.int_value = _native.FIELD_INT, value
        elif 0 <= value < 2**64:
            f.kind, f.uint_value = _native.FIELD_UINT, value
        else:
            raise ValueError(f"field {key!r}: {value} does not fit 64 bits")
    elif isinstance(value, float):
        f.kind, f.float_value = _native.FIELD_FLOAT, value
    elif isinstance(value, str):
        s = value.encode()
        f.kind, f.string_value, f.string_len = _native.FIELD_STRING, s, len(s)
    else:
        raise TypeError(f"field {key!r}: {type(value).__name__} is not bool, int, float or str")


# -- every open publisher: the hand-off thread, fork and exit ----------------------------

_live: "weakref.WeakSet[InfluxDBPublisher]" = weakref.WeakSet()
_live_lock = threading.Lock()
_thread: Optional[Tuple[int, threading.Thread]] = None  # (pid, thread)


def _register(p: InfluxDBPublisher) -> None:
    global _thread
    with _live_lock:
        _live.add(p)
        if _thread is None or _thread[0] != os.getpid():
            t = threading.Thread(target=_handoff_loop, name="perfsink-handoff", daemon=True)
            _thread = (os.getpid(), t)
            t.start()


def _unregister(p: InfluxDBPublisher) -> None:
    with _live_lock:
        _live.discard(p)


def _snapshot() -> List[InfluxDBPublisher]:
    with _live_lock:
        return list(_live)


def _handoff_loop() -> None:
    """Hands every open publisher's buffer to the engine every HANDOFF_INTERVAL_S; ends when
    no publisher is open (the next one starts it again)."""
    global _thread
    pid = os.getpid()
    while os.getpid() == pid:
        time.sleep(HANDOFF_INTERVAL_S)
        with _live_lock:
            publishers = list(_live)
            if not publishers:
                _thread = None
                return
        for p in publishers:
            if p._batch.n and p._state is _OPEN:
                try:
                    p._handoff()
                except Exception:  # noqa: BLE001 - the thread must survive any one publisher
                    logger.exception("handing workflow steps to the engine failed")


def _after_fork_in_child() -> None:
    global _thread, _live_lock
    _live_lock = threading.Lock()
    _thread = None
    for p in list(_live):
        p._after_fork_in_child()
    _live.clear()


def _close_all_at_exit() -> None:
    for p in _snapshot():
        try:
            p.close()
        except Exception:  # noqa: BLE001
            logger.exception("closing a publisher at exit failed")
    _logbridge.uninstall()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all_at_exit)
