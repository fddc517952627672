//! The aggregator alone: windows, due times, late samples, the bounds.

use std::sync::Arc;

use super::*;
use crate::series::SeriesRegistry;

const SEC: i64 = 1_000_000_000;
const T: i64 = 1_700_000_000 * SEC;

fn setup(memory_max_bytes: usize) -> (Aggregator, SeriesRegistry, SeriesId, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let config = AggregateConfig {
        memory_max_bytes,
        ..Default::default()
    };
    let agg = Aggregator::new(&config, Precision::Ns, counters.clone());
    let series = SeriesRegistry::new(100, Vec::new());
    let raw = series.register("m", &[], Some("value")).unwrap();
    let out = series.register("m_agg", &[], None).unwrap();
    agg.bind(raw, out);
    (agg, series, raw, counters)
}

fn add(agg: &Aggregator, series: &SeriesRegistry, samples: &[Sample]) -> usize {
    agg.add(&series.view(), samples.len(), |i| Some(samples[i]))
}

fn text(r: &Rendered) -> Vec<String> {
    (0..r.len())
        .map(|i| String::from_utf8(r.line(i).to_vec()).unwrap())
        .collect()
}

fn sample(series: SeriesId, value: f64, timestamp_ns: i64) -> Sample {
    Sample {
        series,
        value,
        timestamp_ns,
    }
}

#[test]
fn an_interval_is_due_a_grace_after_its_end_in_stream_time() {
    let (agg, series, id, _) = setup(1 << 20);
    // Samples 1.5 s apart: the first interval ends at T + 1 s, due once the stream reaches
    // T + 3 s (grace 2 s), whatever the wall clock says.
    add(
        &agg,
        &series,
        &[sample(id, 1.0, T), sample(id, 2.0, T + SEC + SEC / 2)],
    );
    let now = crate::model::now_ns();
    assert!(agg.due(&series.view(), now, false).is_empty());
    add(&agg, &series, &[sample(id, 3.0, T + 3 * SEC)]);
    let due = text(&agg.due(&series.view(), now, false));
    assert_eq!(due.len(), 1, "{due:?}");
    assert!(due[0].starts_with("m_agg count=1i,sum=1.0,"), "{due:?}");
    assert!(due[0].ends_with(&format!(" {T}\n")), "{due:?}");
    // The rest at close.
    assert_eq!(text(&agg.due(&series.view(), now, true)).len(), 2);
}

#[test]
fn a_late_sample_goes_to_the_next_interval() {
    let (agg, series, id, counters) = setup(1 << 20);
    add(
        &agg,
        &series,
        &[sample(id, 1.0, T), sample(id, 9.0, T + 5 * SEC)],
    );
    let now = crate::model::now_ns();
    assert_eq!(agg.due(&series.view(), now, false).len(), 1);
    add(&agg, &series, &[sample(id, 2.0, T + 10)]);
    let rest = text(&agg.due(&series.view(), now, true));
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert!(
        rest[0].contains("count=1i,sum=2.0,") && rest[0].contains(",late=1i "),
        "{rest:?}"
    );
    assert!(rest[0].ends_with(&format!(" {}\n", T + SEC)), "{rest:?}");
    assert_eq!(counters.snapshot().aggregated_late, 1);
}

#[test]
fn a_series_holds_at_most_max_open_intervals() {
    let (agg, series, id, _) = setup(1 << 20);
    // A clock running ahead: twelve intervals at once. The oldest are written early.
    let samples: Vec<Sample> = (0..12).map(|i| sample(id, 1.0, T + i * SEC)).collect();
    add(&agg, &series, &samples);
    let early = agg.due(&series.view(), T - 100 * SEC, false);
    assert_eq!(early.len(), 12 - MAX_OPEN);
    assert_eq!(agg.due(&series.view(), T, true).len(), MAX_OPEN);
}

#[test]
fn the_memory_cap_leaves_an_interval_without_percentiles_counted() {
    let (agg, series, id, counters) = setup(1);
    let samples: Vec<Sample> = (0..10).map(|i| sample(id, i as f64, T + i)).collect();
    assert_eq!(add(&agg, &series, &samples), 10);
    let lines = text(&agg.due(&series.view(), T, true));
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("m_agg count=10i,sum=45.0,mean=4.5,min=0.0,max=9.0 "),
        "{lines:?}"
    );
    assert_eq!(counters.snapshot().aggregated_no_percentiles, 10);
}

#[test]
fn past_exact_max_samples_a_histogram_takes_over_within_the_cap() {
    let (agg, series, id, counters) = setup(1 << 20);
    let n = window::EXACT_MAX as i64 * 3;
    let samples: Vec<Sample> = (0..n).map(|i| sample(id, i as f64, T + i)).collect();
    add(&agg, &series, &samples);
    let lines = text(&agg.due(&series.view(), T, true));
    // Nearest rank of p50 among 0..1535 is 767; the histogram says it within 0.1 %.
    let p50: f64 = lines[0]
        .split("p50=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((p50 - 767.0).abs() <= 0.767, "{lines:?}");
    assert_eq!(counters.snapshot().aggregated_no_percentiles, 0);
    assert!(agg.state.lock().memory <= 1 << 20);
}
