"""InfluxDBPublisher against a real influxd: schema, values, timestamps, lifecycle, threads,
fork, outages."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Dict, List

import pytest

from perfsink import InfluxDBPublisher, PerfsinkError

FAST = {"PERFSINK_SELF_METRICS_INTERVAL_MS": 0, "flush_interval_ms": 50}


def steps(influxd: Any, db: str, where: str = "") -> List[Dict[str, Any]]:
    return influxd.rows(db, f"SELECT * FROM workflow_step {where} ORDER BY time")


def test_steps_are_written_in_the_documented_schema(influxd: Any) -> None:
    t0 = 1_760_000_000_123_456_789
    with InfluxDBPublisher(url=influxd.url, db="schema", **FAST) as pub:
        pub.publish_step("checkout", "login", 0.25, True, end_ns=t0)
        pub.publish_step("checkout", "pay", 0, False, action="k6_test", iteration=7, end_ns=t0 + 1)
        pub.publish_step("checkout", "browse", 2, True, iteration=0, tags={"testid": "t-1"}, end_ns=t0 + 2)
        pub.flush()
    rows = steps(influxd, "schema")
    assert rows == [
        {"time": t0, "action": "api_call", "duration": 0.25, "iteration": None, "status": "success",
         "step": "login", "success_count": 1, "testid": None, "workflow": "checkout"},
        {"time": t0 + 1, "action": "k6_test", "duration": 0.0, "iteration": 7, "status": "failure",
         "step": "pay", "success_count": 0, "testid": None, "workflow": "checkout"},
        {"time": t0 + 2, "action": "api_call", "duration": 2.0, "iteration": 0, "status": "success",
         "step": "browse", "success_count": 1, "testid": "t-1", "workflow": "checkout"},
    ]
    # duration is a float even for 0 and 2 (an integer would clash with the stored type).
    assert influxd.field_types("schema", "workflow_step") == {
        "duration": "float",
        "iteration": "integer",
        "success_count": "integer",
    }


def test_step_times_the_block_records_failures_and_reraises(influxd: Any) -> None:
    with InfluxDBPublisher(url=influxd.url, db="ctx", **FAST) as pub:
        before = time.time_ns()
        with pub.step("wf", "sleepy", iteration=1):
            time.sleep(0.05)
        after = time.time_ns()
        with pytest.raises(KeyError, match="boom"):
            with pub.step("wf", "raises", action="custom"):
                raise KeyError("boom")
        with pub.step("wf", "marked") as s:
            s.fail()
        pub.flush()
    rows = {r["step"]: r for r in steps(influxd, "ctx")}
    sleepy = rows["sleepy"]
    assert 0.05 <= sleepy["duration"] < 1.0
    assert before <= sleepy["time"] <= after, "stamped at the step's end"
    assert sleepy["time"] - before >= 50_000_000
    assert (sleepy["status"], sleepy["success_count"], sleepy["iteration"]) == ("success", 1, 1)
    assert (rows["raises"]["status"], rows["raises"]["success_count"], rows["raises"]["action"]) == (
        "failure",
        0,
        "custom",
    )
    assert (rows["marked"]["status"], rows["marked"]["success_count"]) == ("failure", 0)


def test_names_and_tag_values_read_back_byte_for_byte(influxd: Any) -> None:
    nasty = ['back\\slash', 'two\\\\back', 'say "hi"', "a b", "a,b", "k=v", "é ✓ 日本", " lead", "x\\,y=z"]
    with InfluxDBPublisher(url=influxd.url, db="nasty", **FAST) as pub:
        for i, v in enumerate(nasty):
            pub.publish_step(v, v, 0.5, True, action=v, iteration=i, tags={"tag key=,\\x": v})
        pub.flush()
    rows = steps(influxd, "nasty")
    got = sorted((r["iteration"], r["workflow"], r["step"], r["action"], r["tag key=,\\x"]) for r in rows)
    assert got == [(i, v, v, v, v) for i, v in enumerate(nasty)]


def test_without_url_it_is_a_no_op_that_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("INFLUXDB_URL", raising=False)
    caplog.set_level(logging.WARNING, logger="perfsink")
    pub = InfluxDBPublisher()
    assert not pub.enabled
    for _ in range(100):
        pub.publish_step("wf", "s", 0.1, True)
        with pub.step("wf", "s"):
            pass
    pub.record("m", {}, {"v": 1})
    pub.flush()
    assert pub.stats().pending == 0
    report = pub.close()
    assert report is not None and report.delivered
    said = [r for r in caplog.records if "INFLUXDB_URL is not set" in r.getMessage()]
    assert len(said) == 1, caplog.records
    assert said[0].name == "perfsink" and said[0].levelno == logging.WARNING


def test_environment_is_read_by_the_engine_and_arguments_override_it(
    influxd: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFLUXDB_URL", influxd.url)
    monkeypatch.setenv("INFLUXDB_DB", "fromenv")
    monkeypatch.setenv("PERFSINK_TAGS", "testid=env-run")
    with InfluxDBPublisher(PERFSINK_SELF_METRICS_INTERVAL_MS=0) as pub:
        pub.publish_step("wf", "a", 0.1, True)
    with InfluxDBPublisher(db="fromarg", tags="testid=arg-run", self_metrics_interval_ms=0) as pub:
        pub.publish_step("wf", "b", 0.1, True)
    assert [(r["step"], r["testid"]) for r in steps(influxd, "fromenv")] == [("a", "env-run")]
    assert [(r["step"], r["testid"]) for r in steps(influxd, "fromarg")] == [("b", "arg-run")]
    monkeypatch.delenv("INFLUXDB_DB")
    with InfluxDBPublisher(PERFSINK_SELF_METRICS_INTERVAL_MS=0) as pub:
        pub.publish_step("wf", "c", 0.1, True)
    assert [r["step"] for r in steps(influxd, "k6")] == ["c"], "INFLUXDB_DB defaults to k6"


def test_unknown_options_are_refused_by_the_engine(influxd: Any) -> None:
    with pytest.raises(PerfsinkError) as e:
        InfluxDBPublisher(url=influxd.url, batch_line=5)
    assert (e.value.name, e.value.code) == ("PERFSINK_CONFIG", 100)
    assert "batch_line" in e.value.message and "did you mean" not in str(e.value.name)
    with pytest.raises(PerfsinkError, match="PERFSINK_CONFIG"):
        InfluxDBPublisher(url=influxd.url, PERFSINK_BATCH_LINE=5)
    InfluxDBPublisher(url=influxd.url, batch_lines=5, PERFSINK_DEDUP=False, gzip_level=0).close()


def test_record_keeps_field_types_and_time(influxd: Any) -> None:
    t = 1_760_000_000_000_000_042
    with InfluxDBPublisher(url=influxd.url, db="record", **FAST) as pub:
        pub.record("custom", {"host": "h 1"}, {"ok": True, "n": -3, "f": 1.0, "s": 'a "q"'}, time=t)
        with pytest.raises(TypeError):
            pub.record("custom", {}, {"bad": [1]})
        with pytest.raises(PerfsinkError) as e:
            pub.record("custom", {}, {"nan": float("nan")})
        assert e.value.name == "PERFSINK_INVALID_VALUE"
        pub.flush()
    assert influxd.rows("record", "SELECT * FROM custom") == [
        {"time": t, "f": 1.0, "host": "h 1", "n": -3, "ok": True, "s": 'a "q"'}
    ]
    assert influxd.field_types("record", "custom") == {"f": "float", "n": "integer", "ok": "boolean", "s": "string"}


def test_many_threads_publish_at_once(influxd: Any) -> None:
    threads, per_thread = 8, 3000
    with InfluxDBPublisher(url=influxd.url, db="threads", **FAST) as pub:

        def work(t: int) -> None:
            for i in range(per_thread):
                if i % 10 == 0:
                    with pub.step(f"wf{t}", "ctx", iteration=i):
                        pass
                else:
                    pub.publish_step(f"wf{t}", f"s{i % 7}", 0.001, i % 3 != 0, iteration=i)

        ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        pub.flush()
        stats = pub.stats()
    assert stats.accepted == threads * per_thread
    assert stats.rejected == stats.dropped == 0
    (row,) = influxd.rows("threads", "SELECT count(\"duration\"), sum(success_count) FROM workflow_step")
    assert row["count"] == threads * per_thread
    assert row["sum"] == threads * sum(1 for i in range(per_thread) if i % 10 == 0 or i % 3 != 0)


def test_close_is_idempotent_and_later_calls_are_refused(influxd: Any) -> None:
    pub = InfluxDBPublisher(url=influxd.url, db="close", **FAST)
    pub.publish_step("wf", "s", 0.1, True)
    first = pub.close()
    assert first is not None and first.delivered and first.stats.accepted == 1
    assert pub.close() is first
    assert pub.stats() == first.stats
    for call in (
        lambda: pub.publish_step("wf", "s", 0.1, True),
        lambda: pub.step("wf", "s"),
        lambda: pub.record("m", {}, {"v": 1}),
        lambda: pub.flush(),
    ):
        with pytest.raises(PerfsinkError) as e:
            call()
        assert e.value.name == "PERFSINK_CLOSED"
    assert len(steps(influxd, "close")) == 1


def test_a_step_the_schema_refuses_is_counted_logged_and_raised_by_flush(
    influxd: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with InfluxDBPublisher(url=influxd.url, db="refused", **FAST) as pub:
        pub.publish_step("wf", "", 0.1, True)
        pub.publish_step("wf", "ok", 0.1, True)
        with pytest.raises(PerfsinkError) as e:
            pub.flush()
        assert e.value.name == "PERFSINK_INVALID_INPUT" and "step name is empty" in e.value.message
        pub.flush()  # reported once
        assert (pub.stats().accepted, pub.stats().rejected_invalid) == (1, 1)
        with pytest.raises(TypeError):
            pub.publish_step("wf", None, 0.1, True)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            pub.publish_step("wf", "s", 0.1, True, iteration=1.5)  # type: ignore[arg-type]
    assert any("step name is empty" in r.getMessage() for r in caplog.records if r.name == "perfsink")
    assert [r["step"] for r in steps(influxd, "refused")] == ["ok"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_after_fork_the_childs_copy_is_a_no_op_and_a_new_publisher_works(influxd: Any) -> None:
    pub = InfluxDBPublisher(url=influxd.url, db="fork", **FAST)
    pub.publish_step("parent", "before", 0.1, True)  # buffered at the fork: the parent's
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        status = 1
        try:
            said: List[str] = []

            class Keep(logging.Handler):
                def emit(self, record: logging.LogRecord) -> None:
                    said.append(record.getMessage())

            logging.getLogger("perfsink").addHandler(Keep())
            for _ in range(3):
                pub.publish_step("parent", "in child", 0.1, True)
            pub.flush()
            assert pub.close() is None
            assert sum("forked child" in m for m in said) == 1, said
            with InfluxDBPublisher(url=influxd.url, db="fork", **FAST) as child:
                child.publish_step("child", "own", 0.1, True)
            status = 0
        except BaseException as e:  # noqa: BLE001
            os.write(w, repr(e).encode())
        finally:
            os._exit(status)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    why = os.read(r, 4096).decode()
    os.close(r)
    assert os.waitstatus_to_exitcode(status) == 0, why
    pub.publish_step("parent", "after", 0.1, True)
    pub.close()
    got = sorted((r["workflow"], r["step"]) for r in steps(influxd, "fork"))
    assert got == [("child", "own"), ("parent", "after"), ("parent", "before")]


def test_influxd_down_nothing_hangs_and_the_loss_is_reported(own_influxd: Any) -> None:
    pub = InfluxDBPublisher(
        url=own_influxd.url,
        db="down",
        close_timeout_ms=1500,
        timeout_ms=500,
        retry_initial_ms=50,
        retry_max_ms=200,
        **FAST,
    )
    pub.publish_step("wf", "up", 0.1, True)
    pub.flush()
    own_influxd.stop()
    start = time.monotonic()
    for i in range(20_000):
        pub.publish_step("wf", "down", 0.001, True, iteration=i)
    assert time.monotonic() - start < 5, "publishing never waits on the network"
    with pytest.raises(PerfsinkError) as e:
        pub.flush(timeout=0.5)
    assert e.value.name == "PERFSINK_TIMEOUT"
    start = time.monotonic()
    report = pub.close()
    assert time.monotonic() - start < 10
    assert report is not None and not report.delivered
    assert report.stats.accepted == 20_001
    assert report.stats.retried > 0
    assert report.stats.dropped_undelivered + report.kept_in_spool == 20_000
    assert report.last_write_error


# A child process that publishes to an InfluxDB that is not there, syncs, says so, and is killed
# with SIGKILL before it can close: what it synced must be in its spool.
_CRASHING_CHILD = """
import os, signal, sys
from perfsink import InfluxDBPublisher
pub = InfluxDBPublisher(url=sys.argv[1], db="crash", PERFSINK_SPOOL_DIR=sys.argv[2],
                        PERFSINK_SPOOL_FSYNC="always", PERFSINK_SELF_METRICS_INTERVAL_MS=0)
for i in range(3000):
    pub.publish_step("wf", "s", 0.001, True, iteration=i, end_ns=1_760_000_000_000_000_000 + i)
pub.sync(timeout=20)
print("synced", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_steps_synced_before_a_kill_9_are_delivered_by_the_next_publisher(
    influxd: Any, tmp_path: Any
) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    spool = tmp_path / "spool"
    child = subprocess.run(
        [sys.executable, "-c", _CRASHING_CHILD, dead, str(spool)],
        capture_output=True, text=True, timeout=60,
    )
    assert child.returncode == -9 and child.stdout == "synced\n", child.stderr
    # Nothing was delivered, and close never ran: only the spool has the steps.
    with InfluxDBPublisher(url=influxd.url, db="crash", PERFSINK_SPOOL_DIR=str(spool), **FAST) as pub:
        pub.flush(timeout=20)
        assert pub.stats().replayed == 3000
    rows = steps(influxd, "crash")
    assert [r["iteration"] for r in rows] == list(range(3000))
    assert not list(spool.glob("*.wal")), "delivered and settled: nothing left"
