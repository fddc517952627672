use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::ffi::sink::tests::capture;
use crate::Config;

fn open() -> (Sink, Arc<Mutex<Vec<u8>>>) {
    let (port, got) = capture();
    let sink = Sink::open(
        Config::from_kv(&format!(
            "INFLUXDB_URL=http://127.0.0.1:{port}/db;PERFSINK_CREATE_DATABASE=false;\
             PERFSINK_SELF_METRICS_INTERVAL_MS=0;INFLUXDB_VERSION=1"
        ))
        .unwrap(),
    )
    .unwrap();
    (sink, got)
}

fn written(sink: &Sink, got: &Mutex<Vec<u8>>) -> String {
    sink.flush(Duration::from_secs(10)).unwrap();
    String::from_utf8(std::mem::take(&mut *got.lock().unwrap())).unwrap()
}

const T0: i64 = 1_700_000_000_123_456_789;

fn step<'a>(workflow: &'a str, name: &'a str) -> Step<'a> {
    Step {
        workflow,
        step: name,
        action: None,
        success: true,
        duration_s: 0.25,
        iteration: None,
        end_ns: T0,
        tags: &[],
    }
}

/// The documented schema: tags workflow/step/status/action (default `api_call`), caller
/// tags beside them, `duration` a float even when whole, `success_count` 1i/0i, `iteration`
/// an integer field only when given, the step's end as the timestamp.
#[test]
fn steps_are_written_in_the_documented_schema() {
    let (sink, got) = open();
    record(&sink, &step("checkout", "login")).unwrap();
    let tags = [Tag::new("testid", "run 1"), Tag::new("host", "a,b=c")];
    record(
        &sink,
        &Step {
            action: Some("k6_test"),
            success: false,
            duration_s: 0.0,
            iteration: Some(7),
            end_ns: T0 + 1,
            tags: &tags,
            ..step("checkout", "pay")
        },
    )
    .unwrap();
    record(
        &sink,
        &Step {
            action: Some(""),
            duration_s: 2.0,
            iteration: Some(-1),
            ..step("w", "s")
        },
    )
    .unwrap();
    assert_eq!(
        written(&sink, &got),
        format!(
            "workflow_step,action=api_call,status=success,step=login,workflow=checkout \
             duration=0.25,success_count=1i {T0}\n\
             workflow_step,action=k6_test,host=a\\,b\\=c,status=failure,step=pay,testid=run\\ 1,\
             workflow=checkout duration=0.0,success_count=0i,iteration=7i {}\n\
             workflow_step,action=api_call,status=success,step=s,workflow=w \
             duration=2.0,success_count=1i,iteration=-1i {T0}\n",
            T0 + 1
        )
    );
    assert_eq!(sink.stats().accepted, 3);
    sink.close();
}

/// What the schema refuses is refused with a message naming the reason, counted, and never
/// written; what it takes after a refusal is written as usual.
#[test]
fn steps_the_schema_refuses_are_counted_and_not_written() {
    let (sink, got) = open();
    let status = [Tag::new("status", "ok")];
    let cases: [(Step<'_>, &str); 6] = [
        (step("", "s"), "workflow name is empty"),
        (step("w", ""), "step name is empty"),
        (
            Step {
                duration_s: -0.001,
                ..step("w", "s")
            },
            "duration -0.001 s",
        ),
        (
            Step {
                duration_s: f64::NAN,
                ..step("w", "s")
            },
            "duration NaN s",
        ),
        (
            Step {
                duration_s: f64::INFINITY,
                ..step("w", "s")
            },
            "duration inf s",
        ),
        (
            Step {
                tags: &status,
                ..step("w", "s")
            },
            "tag \"status\" is set by the schema",
        ),
    ];
    for (s, why) in &cases {
        let e = record(&sink, s).unwrap_err();
        assert!(e.to_string().contains(why), "{e} should say {why}");
    }
    record(&sink, &step("w", "s")).unwrap();
    assert_eq!(
        written(&sink, &got),
        format!("workflow_step,action=api_call,status=success,step=s,workflow=w duration=0.25,success_count=1i {T0}\n")
    );
    let stats = sink.stats();
    assert_eq!((stats.accepted, stats.rejected_invalid), (1, 6));
    sink.close();
}

/// A disabled sink (no INFLUXDB_URL) takes steps and does nothing; a closed one refuses them.
#[test]
fn disabled_takes_and_closed_refuses() {
    let sink = Sink::open(Config::from_kv("").unwrap()).unwrap();
    record(&sink, &step("w", "s")).unwrap();
    sink.close();
    let (sink, _) = open();
    sink.close();
    assert_eq!(record(&sink, &step("w", "s")), Err(Error::Closed));
}
