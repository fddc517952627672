use std::ffi::CStr;
use std::ptr::{null, null_mut};

use super::*;
use crate::ffi::sink::tests::capture;
use crate::ffi::sink::{perfsink_sink_close, perfsink_sink_flush, perfsink_sink_free};
use crate::ffi::sink::{perfsink_sink_open, perfsink_sink_open_env_with, perfsink_sink_stats};
use crate::ffi::types::perfsink_stats;

const T0: i64 = 1_700_000_000_000_000_001;

/// A batch under construction: records, tag records and the arena.
#[derive(Default)]
struct Batch {
    steps: Vec<perfsink_workflow_step>,
    tags: Vec<perfsink_workflow_tag>,
    arena: Vec<u8>,
}

impl Batch {
    fn text(&mut self, s: &str) -> (u32, u32) {
        let off = self.arena.len() as u32;
        self.arena.extend_from_slice(s.as_bytes());
        (off, s.len() as u32)
    }

    fn push(
        &mut self,
        workflow: &str,
        step: &str,
        tags: &[(&str, &str)],
    ) -> &mut perfsink_workflow_step {
        let (workflow_off, workflow_len) = self.text(workflow);
        let (step_off, step_len) = self.text(step);
        let tags_first = self.tags.len() as u32;
        for (k, v) in tags {
            let (key_off, key_len) = self.text(k);
            let (value_off, value_len) = self.text(v);
            self.tags.push(perfsink_workflow_tag {
                key_off,
                key_len,
                value_off,
                value_len,
            });
        }
        self.steps.push(perfsink_workflow_step {
            end_ns: T0,
            duration_s: 0.5,
            workflow_off,
            workflow_len,
            step_off,
            step_len,
            tags_first,
            tag_count: tags.len() as u32,
            flags: PERFSINK_WORKFLOW_SUCCESS,
            ..Default::default()
        });
        self.steps.last_mut().unwrap()
    }

    /// Submits the batch: the code, how many were taken, the message.
    fn send(&self, sink: *const perfsink_sink) -> (perfsink_result, usize, String) {
        let mut accepted = usize::MAX;
        let mut err = [b'X' as c_char; 512];
        let rc = unsafe {
            perfsink_workflow_steps(
                sink,
                self.steps.as_ptr(),
                self.steps.len(),
                self.tags.as_ptr(),
                self.tags.len(),
                self.arena.as_ptr().cast(),
                self.arena.len(),
                &mut accepted,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        let msg = unsafe { CStr::from_ptr(err.as_ptr()) }
            .to_str()
            .unwrap()
            .to_string();
        (rc, accepted, msg)
    }
}

fn open(port: u16) -> *mut perfsink_sink {
    let cfg = format!(
        "INFLUXDB_URL=http://127.0.0.1:{port}/db;PERFSINK_CREATE_DATABASE=false;\
         PERFSINK_SELF_METRICS_INTERVAL_MS=0;INFLUXDB_VERSION=1"
    );
    let mut sink = null_mut();
    let rc =
        unsafe { perfsink_sink_open(cfg.as_ptr().cast(), cfg.len(), &mut sink, null_mut(), 0) };
    assert_eq!(rc, PERFSINK_OK);
    sink
}

fn stats(sink: *const perfsink_sink) -> perfsink_stats {
    let mut s = perfsink_stats::default();
    let rc = unsafe {
        perfsink_sink_stats(
            sink,
            &mut s,
            std::mem::size_of::<perfsink_stats>(),
            null_mut(),
            0,
        )
    };
    assert_eq!(rc, PERFSINK_OK);
    s
}

/// Records become `workflow_step` points, flags and ranges read as documented; a bad record
/// is refused alone, counted, and named in the message; the good ones around it are written.
#[test]
fn records_are_written_and_a_bad_one_is_refused_alone() {
    let (port, got) = capture();
    let sink = open(port);
    let mut b = Batch::default();
    b.push("wf", "login", &[("testid", "a b")]);
    let s = b.push("wf", "pay", &[]);
    s.flags = PERFSINK_WORKFLOW_ITERATION;
    s.iteration = 3;
    s.duration_s = 0.0;
    s.end_ns = T0 + 1;
    let (action_off, action_len) = b.text("jmeter_test");
    let s = b.push("wf", "bad", &[]);
    s.step_len = 1 << 20;
    let s = b.push("wf", "unknown flag", &[]);
    s.flags = 8;
    let s = b.push("wf", "bad tags", &[]);
    s.tags_first = 7;
    s.tag_count = u32::MAX;
    let s = b.push("wf", "browse", &[]);
    (s.action_off, s.action_len, s.end_ns) = (action_off, action_len, T0 + 2);
    let (rc, accepted, msg) = b.send(sink);
    assert_eq!((rc, accepted), (PERFSINK_INVALID_ARGUMENT, 3), "{msg}");
    assert!(
        msg.starts_with("3 of 6 steps not taken; first: steps[2]: step: range "),
        "{msg}"
    );
    assert_eq!(
        unsafe { perfsink_sink_flush(sink, 10_000, null_mut(), 0) },
        PERFSINK_OK
    );
    let text = String::from_utf8(std::mem::take(&mut *got.lock().unwrap())).unwrap();
    assert_eq!(
        text,
        format!(
            "workflow_step,action=api_call,status=success,step=login,testid=a\\ b,workflow=wf \
             duration=0.5,success_count=1i {T0}\n\
             workflow_step,action=api_call,status=failure,step=pay,workflow=wf \
             duration=0.0,success_count=0i,iteration=3i {}\n\
             workflow_step,action=jmeter_test,status=success,step=browse,workflow=wf \
             duration=0.5,success_count=1i {}\n",
            T0 + 1,
            T0 + 2
        )
    );
    let s = stats(sink);
    assert_eq!((s.accepted, s.rejected_invalid), (3, 3));
    unsafe {
        perfsink_sink_close(sink, null_mut(), 0, null_mut(), 0);
        perfsink_sink_free(sink);
    }
}

/// NULL with a length, invalid UTF-8, the schema's refusals and a closed sink give their
/// codes; NULL with length 0 is an empty batch; nothing crashes.
#[test]
fn misuse_gets_its_code() {
    let (port, _got) = capture();
    let sink = open(port);
    let mut err = [0 as c_char; 256];
    let call = |steps: *const perfsink_workflow_step,
                n: usize,
                strings: *const c_char,
                len: usize,
                err: &mut [c_char]| unsafe {
        perfsink_workflow_steps(
            sink,
            steps,
            n,
            null(),
            0,
            strings,
            len,
            null_mut(),
            err.as_mut_ptr(),
            err.len(),
        )
    };
    assert_eq!(call(null(), 0, null(), 0, &mut err), PERFSINK_OK);
    assert_eq!(
        call(null(), 1, null(), 0, &mut err),
        PERFSINK_NULL_PARAMETER
    );
    let one = [perfsink_workflow_step::default()];
    assert_eq!(
        call(one.as_ptr(), 1, null(), 5, &mut err),
        PERFSINK_NULL_PARAMETER
    );
    let rc = unsafe {
        perfsink_workflow_steps(
            null(),
            one.as_ptr(),
            1,
            null(),
            0,
            null(),
            0,
            null_mut(),
            err.as_mut_ptr(),
            err.len(),
        )
    };
    assert_eq!(rc, PERFSINK_NULL_PARAMETER);
    assert_eq!(
        unsafe { CStr::from_ptr(err.as_ptr()) }.to_str().unwrap(),
        "sink is NULL"
    );

    let mut b = Batch::default();
    b.push("wf", "x", &[]);
    b.arena[2] = 0xff;
    assert_eq!(b.send(sink).0, PERFSINK_INVALID_UTF8);
    let mut b = Batch::default();
    b.push("wf", "", &[]);
    let (rc, _, msg) = b.send(sink);
    assert_eq!(rc, PERFSINK_INVALID_INPUT);
    assert!(msg.contains("step name is empty"), "{msg}");
    let mut b = Batch::default();
    b.push("wf", "s", &[("status", "x")]).duration_s = f64::NAN;
    assert_eq!(b.send(sink).0, PERFSINK_INVALID_VALUE);
    assert_eq!(stats(sink).rejected_invalid, 3);

    unsafe { perfsink_sink_close(sink, null_mut(), 0, null_mut(), 0) };
    let mut b = Batch::default();
    b.push("wf", "s", &[]);
    let (rc, accepted, msg) = b.send(sink);
    assert_eq!(
        (rc, accepted, msg.as_str()),
        (PERFSINK_CLOSED, 0, "sink is closed")
    );
    unsafe { perfsink_sink_free(sink) };
}

/// `perfsink_sink_open_env_with`: its pairs configure the sink (short names too); an unknown
/// key is a configuration error naming it; NULL config with a length is refused.
#[test]
fn open_env_with_takes_its_pairs_and_refuses_unknown_keys() {
    let (port, got) = capture();
    let cfg = format!(
        "url=http://127.0.0.1:{port};db=wfdb;PERFSINK_CREATE_DATABASE=false;\
         self_metrics_interval_ms=0;version=1"
    );
    let mut sink = null_mut();
    let mut err = [0 as c_char; 256];
    let rc = unsafe {
        perfsink_sink_open_env_with(
            cfg.as_ptr().cast(),
            cfg.len(),
            &mut sink,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    assert_eq!(rc, PERFSINK_OK);
    let mut b = Batch::default();
    b.push("wf", "s", &[]);
    assert_eq!(b.send(sink).0, PERFSINK_OK);
    assert_eq!(
        unsafe { perfsink_sink_flush(sink, 10_000, null_mut(), 0) },
        PERFSINK_OK
    );
    assert!(String::from_utf8_lossy(&got.lock().unwrap()).starts_with("workflow_step,"));
    unsafe {
        perfsink_sink_close(sink, null_mut(), 0, null_mut(), 0);
        perfsink_sink_free(sink);
    }
    let bad = "batch_line=5";
    let mut other = null_mut();
    let rc = unsafe {
        perfsink_sink_open_env_with(
            bad.as_ptr().cast(),
            bad.len(),
            &mut other,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    assert_eq!(rc, PERFSINK_CONFIG);
    let msg = unsafe { CStr::from_ptr(err.as_ptr()) }.to_str().unwrap();
    assert!(msg.contains("unknown key batch_line"), "{msg}");
    assert!(other.is_null());
    let rc = unsafe { perfsink_sink_open_env_with(null(), 3, &mut other, null_mut(), 0) };
    assert_eq!(rc, PERFSINK_NULL_PARAMETER);
}
