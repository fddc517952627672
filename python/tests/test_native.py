"""The ctypes binding: loading, ABI check, error codes, per-call error buffers, the log bridge."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List

import pytest

from perfsink import InfluxDBPublisher, PerfsinkError, _native


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Runs ``code`` in a fresh interpreter (the library is loaded once per process)."""
    import perfsink

    path = str(Path(perfsink.__file__).parent.parent)
    full = {**os.environ, "PYTHONPATH": path + os.pathsep + os.environ.get("PYTHONPATH", ""), **env}
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=60)


def test_the_library_is_found_and_its_abi_checked() -> None:
    assert _native.library_path().is_file()
    major, minor = _native.abi_version()
    assert (major, minor >= _native.ABI_MINOR) == (1, True)
    assert _native.version()


def test_a_missing_library_names_where_it_looked(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "libperfsink.so"
    p = run_python("from perfsink import InfluxDBPublisher\nInfluxDBPublisher()", PERFSINK_LIB=str(missing))
    assert p.returncode != 0
    assert "PERFSINK_LIBRARY" in p.stderr and str(missing) in p.stderr, p.stderr


def test_a_library_that_is_not_libperfsink_is_refused() -> None:
    libz = next((p for p in ("/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1") if os.path.exists(p)), None)
    if libz is None:
        pytest.skip("no libz to stand in")
    p = run_python("from perfsink import _native\n_native.lib()", PERFSINK_LIB=libz)
    assert p.returncode != 0 and "is not a libperfsink" in p.stderr and libz in p.stderr, p.stderr


def test_codes_become_perfsink_errors_with_name_and_message() -> None:
    with pytest.raises(PerfsinkError) as e:
        InfluxDBPublisher(url="ftp://nowhere")
    assert (e.value.code, e.value.name) == (100, "PERFSINK_CONFIG")
    assert "INFLUXDB_URL" in e.value.message and str(e.value).startswith("PERFSINK_CONFIG: ")
    assert _native.result_name(302) == "PERFSINK_CLOSED"
    assert _native.result_name(9999) == "PERFSINK_UNKNOWN"


def test_each_call_reads_its_own_error_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads failing at once, each with its own bad measurement name, each get the message
    of their own call (a shared buffer would mix them up)."""
    monkeypatch.delenv("INFLUXDB_URL", raising=False)
    pub = InfluxDBPublisher(url="http://127.0.0.1:9", self_metrics_interval_ms=0, create_database=False)
    wrong: List[str] = []

    def work(t: int) -> None:
        for i in range(300):
            name = f"bad\n{t}-{i}"
            try:
                pub.record(name, {}, {"v": 1})
                wrong.append(f"{name!r} was taken")
            except PerfsinkError as e:
                if f"{t}-{i}" not in e.message:
                    wrong.append(f"{name!r} got {e.message!r}")

    ts = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    pub.close()
    assert wrong == []


def test_engine_messages_reach_the_perfsink_logger_from_its_threads(
    own_influxd: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="perfsink")
    pub = InfluxDBPublisher(
        url=own_influxd.url, db="log", timeout_ms=300, retry_initial_ms=20, close_timeout_ms=500, self_metrics_interval_ms=0
    )
    gc.collect()  # the callback must survive collections
    own_influxd.stop()
    seen: Dict[str, int] = {}
    pub.publish_step("wf", "s", 0.1, True)
    try:
        pub.flush(timeout=1.5)
    except PerfsinkError:
        pass
    for r in caplog.records:
        if r.name == "perfsink":
            seen[r.threadName] = seen.get(r.threadName, 0) + 1
    pub.close()
    assert any(name != threading.current_thread().name for name in seen), (
        "the writer thread's messages arrive",
        [r.getMessage() for r in caplog.records],
    )
