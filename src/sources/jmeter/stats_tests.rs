use super::*;

const I: i64 = 5000;
const BASE: i64 = 1_700_000_000_000;

fn s<'a>(ts: i64, label: &'a str, elapsed: i64, success: bool) -> Sample<'a> {
    Sample {
        timestamp_ms: BASE + ts,
        elapsed_ms: elapsed,
        label,
        success,
        all_threads: 1,
        ..Sample::default()
    }
}

fn one_interval(samples: &[Sample<'_>]) -> Interval {
    let mut iv = Intervals::new(I, BASE, usize::MAX);
    for x in samples {
        assert!(iv.add(x, true).is_empty());
    }
    let mut out = iv.take_until(BASE + I);
    assert_eq!(out.len(), 1);
    out.remove(0)
}

/// `SamplerMetric.addHits`/`addNetworkData`: sub-results are hits; a Transaction Controller
/// parent with sub-results ("Generate parent sample") is not a hit itself; one without
/// (its children came as samples) counts on its own label but not in the summary's hits
/// and bytes — and still in every count.
#[test]
fn hits_and_bytes_follow_sampler_metric() {
    let tc_message = format!("{TRANSACTION_PREFIX}2, number of failing samples : 0");
    let embedded = Sample {
        sub_results: 3,
        bytes: 100,
        sent_bytes: 10,
        ..s(1, "page", 5, true)
    };
    let parent_mode = Sample {
        sub_results: 2,
        message: &tc_message,
        bytes: 40,
        sent_bytes: 4,
        ..s(2, "tc parent", 9, true)
    };
    let plain_mode = Sample {
        message: &tc_message,
        bytes: 70,
        sent_bytes: 7,
        ..s(3, "tc", 9, true)
    };
    let iv = one_interval(&[embedded, parent_mode, plain_mode]);
    let hits = |l: &str| iv.labels[l].hits;
    assert_eq!((hits("page"), hits("tc parent"), hits("tc")), (4, 2, 1));
    assert_eq!(iv.labels["tc"].received_bytes, 70);
    assert_eq!(iv.total.count(), 3);
    assert_eq!(iv.total.hits, 4 + 2);
    assert_eq!(iv.total.received_bytes, 140);
    assert_eq!(iv.total.sent_bytes, 14);
}

/// `ErrorMetric`: assertion message wins (even over a 5xx), empty code `0`, empty message
/// `None`, trimmed, case-insensitive with the first spelling kept; successes have none.
#[test]
fn error_codes_and_messages_follow_error_metric() {
    let x = |code, message, assertion, success| Sample {
        code,
        message,
        assertion,
        ..s(1, "l", 1, success)
    };
    let iv = one_interval(&[
        x("500", "Server Error", "", false),
        x("500", "server error ", "", false),
        x("503", "Busy", "body lacks OK", false),
        x("", "", "", false),
        x("200", "OK", "", true),
    ]);
    let errors: Vec<(&str, &str, u64)> = iv.labels["l"]
        .errors
        .iter()
        .map(|e| (e.code.as_str(), e.message.as_str(), e.count))
        .collect();
    assert_eq!(
        errors,
        [
            ("500", "Server Error", 2),
            ("Assertion failed", "body lacks OK", 1),
            ("0", "None", 1)
        ]
    );
    assert_eq!((iv.total.ko.count(), iv.total.ok.count()), (4, 1));
}

/// Samples go to their own timestamp's interval whatever the arrival order; a sample of an
/// interval already written counts into the oldest open one, as late; intervals without
/// samples still come out (their `internal` line), with the last thread counts.
#[test]
fn intervals_by_sample_time_late_and_empty() {
    let mut iv = Intervals::new(I, BASE, usize::MAX);
    let mut t = s(I + 1, "b", 1, true);
    t.all_threads = 7;
    iv.add(&t, true);
    iv.add(&s(I - 1, "a", 1, true), true);
    iv.add(&s(0, "a", 1, true), false);
    let out = iv.take_until(BASE + 2 * I);
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].start_ms, out[0].total.count()), (BASE, 2));
    assert_eq!(
        out[0].labels["a"].count(),
        1,
        "per_label=false counts in the summary only"
    );
    assert_eq!((out[1].start_ms, out[1].labels["b"].count()), (BASE + I, 1));
    // Late: interval 0 was written.
    iv.add(&s(3, "a", 1, true), true);
    let out = iv.take_until(BASE + 5 * I);
    assert_eq!(out.len(), 3);
    assert_eq!(
        (out[0].start_ms, out[0].late, out[0].total.count()),
        (BASE + 2 * I, 1, 1)
    );
    assert_eq!(out[2].total.count(), 0);
    assert_eq!(
        out[2].threads.max, 1,
        "carried from the last interval with samples"
    );
    assert_eq!((iv.folded, iv.late), (4, 1));
    // Closing writes the open ones and the empty ones up to now.
    iv.add(&s(6 * I, "a", 1, true), true);
    assert_eq!(iv.take_all(BASE + 8 * I + 1).len(), 4);
}

/// More than `MAX_OPEN` open intervals (a clock far ahead) write the oldest early.
#[test]
fn too_many_open_intervals_write_the_oldest() {
    let mut iv = Intervals::new(I, BASE, usize::MAX);
    for k in 0..MAX_OPEN as i64 {
        assert!(iv.add(&s(k * I, "a", 1, true), true).is_empty());
    }
    let early = iv.add(&s(100 * I, "a", 1, true), true);
    assert_eq!(early.len(), 1);
    assert_eq!(early[0].start_ms, BASE);
}

/// Producer cost per sample through `Jmeter::submit` (one lock per batch, a disabled sink so
/// only folding is measured): `cargo test --release --lib fold_cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn fold_cost() {
    use crate::sources::jmeter::Jmeter;
    let j = Jmeter::open(
        crate::sources::jmeter::params::resolve(
            [("influxdbUrl", "")],
            std::iter::empty::<(&str, &str)>(),
        )
        .unwrap(),
    )
    .unwrap();
    let labels: Vec<String> = (0..10).map(|i| format!("transaction {i}")).collect();
    let now = crate::model::now_ns() / 1_000_000;
    let batch: Vec<Sample<'_>> = (0..1000)
        .map(|i| Sample {
            timestamp_ms: now + i / 100,
            elapsed_ms: 20 + i % 300,
            label: &labels[i as usize % 10],
            code: if i % 50 == 0 { "500" } else { "200" },
            message: "OK",
            success: i % 50 != 0,
            all_threads: 12,
            ..Sample::default()
        })
        .collect();
    let rounds = 2000;
    let t = std::time::Instant::now();
    for _ in 0..rounds {
        j.submit(&batch).unwrap();
    }
    let ns = t.elapsed().as_nanos() as f64 / (rounds * batch.len()) as f64;
    println!(
        "fold_cost: {ns:.1} ns/sample over {} samples",
        rounds * batch.len()
    );
}

/// `PERFSINK_AGGREGATE_MEMORY_MAX_BYTES` bounds the windows of all open intervals: past it
/// a window gives up its percentiles (counted once per sample, by the summary), and what
/// written intervals held is freed.
#[test]
fn memory_cap_gives_up_percentiles_and_is_freed() {
    // Room for a few hundred exact values, not for 2000.
    let mut iv = Intervals::new(I, BASE, 20_000);
    for k in 0..2000 {
        iv.add(&s(1, "a", k, true), true);
    }
    assert!(
        iv.unranked() > 0 && iv.unranked() <= 2000,
        "{}",
        iv.unranked()
    );
    let out = iv.take_until(BASE + I);
    assert!(out[0].total.all.is_unranked());
    assert_eq!(out[0].total.count(), 2000, "counts stay exact");
    assert_eq!(iv.budget.used, 0);
    // The next interval has room again.
    iv.add(&s(I + 1, "a", 5, true), true);
    let out = iv.take_until(BASE + 2 * I);
    assert!(!out[0].total.all.is_unranked());
}
