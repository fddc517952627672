//! The aggregated mode inside a sink: the output series of each aggregated series
//! (`<measurement>_agg` with the generator's `instance`), and the thread that hands due
//! intervals to the pipeline as lines.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::{Aggregator, Rendered};
use crate::config::Config;
use crate::error::Result;
use crate::model::{now_ns, SeriesId, Tag};
use crate::pipeline::Queue;
use crate::series::SeriesRegistry;
use crate::stats::Counters;

/// Suffix of the measurement of aggregated points.
pub const MEASUREMENT_SUFFIX: &str = "_agg";

/// The tag naming the generator of an aggregated point.
pub const INSTANCE_TAG: &str = "instance";

/// Generator identities given in this process: the second and later get `.N`.
static OPENED: AtomicU64 = AtomicU64::new(0);

/// The aggregated mode of one sink.
pub struct Stage {
    pub aggregator: Arc<Aggregator>,
    /// The `instance` tag added to output series; `None` when `PERFSINK_TAGS` sets one.
    instance: Option<String>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Stage {
    /// Starts the stage's thread, which emits due intervals into `queue`.
    pub fn start(
        config: &Config,
        series: Arc<SeriesRegistry>,
        queue: Arc<Queue>,
        counters: Arc<Counters>,
    ) -> Result<Stage> {
        let aggregator = Arc::new(Aggregator::new(
            &config.aggregate,
            config.precision,
            counters,
        ));
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread = {
            let (aggregator, stop) = (aggregator.clone(), stop.clone());
            std::thread::Builder::new()
                .name("perfsink-aggregate".into())
                .spawn(move || run(&aggregator, &series, &queue, &stop))
                .map_err(|e| crate::Error::Config(format!("cannot start a thread: {e}")))?
        };
        Ok(Stage {
            aggregator,
            instance: instance(config),
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Gives series `raw` (`measurement`, `tags`, as registered) its output series, once.
    pub fn bind(
        &self,
        series: &SeriesRegistry,
        raw: SeriesId,
        measurement: &str,
        tags: &[Tag<'_>],
    ) -> Result<SeriesId> {
        let name = format!("{measurement}{MEASUREMENT_SUFFIX}");
        let mut out_tags: Vec<Tag<'_>> = tags.to_vec();
        if let Some(instance) = &self.instance {
            if !tags.iter().any(|t| t.key == INSTANCE_TAG) {
                out_tags.push(Tag::new(INSTANCE_TAG, instance));
            }
        }
        let out = series.register(&name, &out_tags, None)?;
        self.aggregator.bind(raw, out);
        Ok(out)
    }

    /// Hands the intervals due now (all with `all`) to the pipeline.
    pub fn emit(&self, series: &SeriesRegistry, queue: &Queue, all: bool) {
        emit(&self.aggregator, series, queue, all);
    }

    /// Stops the thread and emits every open interval (the sink is closing).
    pub fn finish(&self, series: &SeriesRegistry, queue: &Queue) {
        {
            let (flag, signal) = &*self.stop;
            *flag.lock() = true;
            signal.notify_all();
        }
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
        self.emit(series, queue, true);
    }
}

fn emit(aggregator: &Aggregator, series: &SeriesRegistry, queue: &Queue, all: bool) {
    let rendered: Rendered = {
        let view = series.view();
        aggregator.due(&view, now_ns(), all)
    };
    if rendered.is_empty() {
        return;
    }
    // Counted like any producer's lines: accepted, or dropped by the full-queue policy.
    queue.produce(rendered.len(), |i, buf, _| {
        buf.extend_from_slice(rendered.line(i));
        Ok(1)
    });
}

/// The stage's thread: wakes when the next intervals fall due (at multiples of the interval
/// plus the grace) and emits them, until stopped.
fn run(
    aggregator: &Aggregator,
    series: &SeriesRegistry,
    queue: &Queue,
    stop: &(Mutex<bool>, Condvar),
) {
    let (flag, signal) = stop;
    let (interval, grace) = (aggregator.interval_ns(), aggregator.grace_ns());
    loop {
        let now = now_ns();
        let since = now.saturating_sub(grace).rem_euclid(interval);
        // A millisecond past the boundary, so the interval ending there is surely due.
        let wait = (interval - since).saturating_add(1_000_000);
        let mut stopped = flag.lock();
        if !*stopped {
            signal.wait_for(&mut stopped, Duration::from_nanos(wait as u64));
        }
        if *stopped {
            return;
        }
        drop(stopped);
        emit(aggregator, series, queue, false);
    }
}

/// `instance`: the generator's identity, `None` when the global tags name the instance
/// themselves.
fn instance(config: &Config) -> Option<String> {
    if config.global_tags.iter().any(|(k, _)| k == INSTANCE_TAG) {
        return None;
    }
    Some(generator_identity())
}

/// The identity of this generator for points stamped at aligned times, which two generators
/// would otherwise overwrite: `<hostname>:<pid>`, `.N` appended for the N-th such writer of
/// this process (every aggregating sink, every JMeter listener).
pub fn generator_identity() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let n = OPENED.fetch_add(1, Relaxed);
    let mut id = format!("{host}:{}", std::process::id());
    if n > 0 {
        id.push_str(&format!(".{}", n + 1));
    }
    id
}
