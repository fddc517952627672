//! A scripted workflow reporting through perfsink's Rust API: each step execution becomes one
//! `workflow_step` point (convenience path), and a k6-like request metric goes through the fast
//! path (series registered once, points by id). Configured from the environment
//! (`INFLUXDB_URL`, `INFLUXDB_DB`, `PERFSINK_*`).
//!
//!     INFLUXDB_URL=http://127.0.0.1:8086/demo cargo run --release --example workflow -- 3000

use std::time::Duration;

use perfsink::model::now_ns;
use perfsink::{Field, FieldValue, Point, Sink, Tag};

const STEPS: [(&str, &str); 4] = [
    ("login", "http_post"),
    ("search", "http_get"),
    ("add_to_cart", "http_post"),
    ("checkout", "http_post"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1000);
    let sink = Sink::from_env()?;
    if !sink.enabled() {
        eprintln!("INFLUXDB_URL is not set: reporting is disabled");
    }

    // Fast path: one series per (request name, status), registered once.
    let ok = sink.register_series(
        "http_req_duration",
        &[Tag::new("name", "search"), Tag::new("status", "200")],
        "value",
    )?;
    let slow = sink.register_series(
        "http_req_duration",
        &[Tag::new("name", "search"), Tag::new("status", "503")],
        "value",
    )?;

    let mut rng = fastrand::Rng::with_seed(7);
    let mut batch = Vec::with_capacity(64);
    for iteration in 0..iterations {
        for (step, action) in STEPS {
            let duration = 0.05 + rng.f64() * 0.45;
            let success = rng.f64() > 0.03;
            let status = if success { "success" } else { "failure" };
            sink.record(
                "workflow_step",
                &[
                    Tag::new("workflow", "shop"),
                    Tag::new("step", step),
                    Tag::new("status", status),
                    Tag::new("action", action),
                ],
                &[
                    Field::new("duration", FieldValue::Float(duration)),
                    Field::new("success_count", FieldValue::Int(success as i64)),
                    Field::new("iteration", FieldValue::Int(iteration as i64)),
                ],
                now_ns(),
            )?;
            let series = if success { ok } else { slow };
            batch.push(Point::new(series, duration * 1000.0, now_ns()));
        }
        if batch.len() >= 60 {
            sink.submit(&batch).into_result()?;
            batch.clear();
        }
    }
    sink.submit(&batch).into_result()?;
    if sink.enabled() {
        sink.flush(Duration::from_secs(10))?;
    }
    println!("{}", sink.close());
    Ok(())
}
