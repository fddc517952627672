//! Fault injection, the relay entry point (`perfsink::sources::relay`, `perfsink serve`):
//! clients post numbered lines (measurement `rf`, tag `c` = client, one request of 200 lines
//! after another) while a real influxd is killed with -9 and restarted, frozen longer than
//! the request timeout, put behind a proxy injecting latency, resets, truncated answers and
//! InfluxDB's error answers, or while the spool's disk is full; and `perfsink serve` itself is
//! killed with -9 and started again on the same spool.
//!
//! The invariant, exact: lines in InfluxDB (`count` with `/query`) + the losses counted (the
//! relay's malformed and not-taken lines and the lines of the requests it refused with a 503
//! before reading them, the sink's rejected, dropped and kept-in-spool points) == lines
//! posted; InfluxDB holds what the sink counts as written. Across a crash of
//! the relay: every line of a request answered 204 is in InfluxDB after the restart.
//!
//! Random choices come from a seed printed on stderr; `PERFSINK_FAULT_SEED=N` replays it.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::fault_proxy::{random_script, Fault, FaultProxy};
use common::faults::{
    between, freeze_influxd, kill_influxd, seeded, signal, wait_until, TempDir, Tmpfs,
};
use common::{http, Influx};
use perfsink::sources::relay::{Relay, RelayOptions, RelayStats};
use perfsink::{Report, Sink};

const T0: i64 = 1_700_000_000_000_000_000;
const M: &str = "rf";
const LINES: u64 = 200;

const FAST: &str = "PERFSINK_FLUSH_INTERVAL_MS=50;PERFSINK_RETRY_INITIAL_MS=50;\
                    PERFSINK_RETRY_MAX_MS=500;PERFSINK_SELF_METRICS_INTERVAL_MS=0;\
                    PERFSINK_TIMEOUT_MS=1000;PERFSINK_CONNECT_TIMEOUT_MS=300;\
                    PERFSINK_BATCH_LINES=500";

fn start(url: &str, db: &str, extra: &str) -> (Arc<Sink>, Relay) {
    let kv = format!("INFLUXDB_URL={url};INFLUXDB_DB={db};{FAST};{extra}");
    let sink = Arc::new(Sink::from_kv(&kv).unwrap_or_else(|e| panic!("{kv}: {e}")));
    let relay = Relay::start(
        sink.clone(),
        RelayOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..RelayOptions::default()
        },
    )
    .unwrap();
    (sink, relay)
}

/// Request `req` of client `c`: `LINES` lines, each its own point.
fn body(c: u64, req: u64) -> String {
    (0..LINES)
        .map(|i| {
            let k = req * LINES + i;
            format!("{M},c={c} v={k}i {}\n", T0 + k as i64 * 1000)
        })
        .collect()
}

/// What the clients did: lines posted, and lines of requests answered 204.
#[derive(Default, Debug)]
struct Posted {
    lines: u64,
    lines_204: u64,
    statuses: BTreeMap<u16, u64>,
}

/// `clients` threads posting one request after another to `url` until `stop`.
fn post_until(
    url: String,
    db: &str,
    clients: u64,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<Posted> {
    let db = db.to_string();
    thread::spawn(move || {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (url, db, stop) = (url.clone(), db.clone(), stop.clone());
                thread::spawn(move || {
                    let mut p = Posted::default();
                    let mut req = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let r = http::request(
                            "POST",
                            &format!("{url}/write?db={db}"),
                            &[],
                            body(c, req).as_bytes(),
                        )
                        .unwrap_or_else(|e| panic!("posting to the relay: {e}"));
                        p.lines += LINES;
                        *p.statuses.entry(r.status).or_default() += 1;
                        if r.status == 204 {
                            p.lines_204 += LINES;
                        }
                        req += 1;
                        thread::sleep(Duration::from_millis(5));
                    }
                    p
                })
            })
            .collect();
        let mut all = Posted::default();
        for h in handles {
            let p = h.join().unwrap();
            all.lines += p.lines;
            all.lines_204 += p.lines_204;
            for (s, n) in p.statuses {
                *all.statuses.entry(s).or_default() += n;
            }
        }
        all
    })
}

fn assert_invariant(
    scenario: &str,
    influx: &Influx,
    db: &str,
    p: &Posted,
    relay: &RelayStats,
    r: &Report,
) {
    let stored = influx.count(db, M);
    eprintln!(
        "{scenario}: posted {} lines ({} in 204'd requests, statuses {:?}), in InfluxDB {stored}; \
         relay {relay:?}; {r}",
        p.lines, p.lines_204, p.statuses
    );
    // A request refused before its lines were read (a 503 while the spool refuses appends)
    // is counted as a request: every request here holds LINES lines.
    let refused_lines = relay.refused * LINES;
    assert_eq!(
        relay.lines() + refused_lines,
        p.lines,
        "the relay counts every line posted: {relay:?}"
    );
    assert_eq!(
        stored, r.stats.written,
        "InfluxDB holds what the sink counts as written: {r}"
    );
    assert_eq!(
        stored + r.lost() + relay.lines_rejected + relay.lines_dropped + refused_lines,
        p.lines,
        "{scenario}: in InfluxDB + counted losses == posted; {relay:?}; {r}"
    );
}

fn finish(mut relay: Relay, sink: Arc<Sink>) -> (RelayStats, Report) {
    relay.shutdown(Duration::from_secs(5));
    let stats = relay.stats();
    let _ = sink.flush(Duration::from_secs(60));
    (stats, sink.close())
}

/// Fault 1: influxd killed with -9 three times at random points, down 0.3–2 s each time.
#[test]
fn influxd_killed_and_restarted_at_random_points() {
    let mut rng = seeded("relay/influxd-killed");
    let mut influx = Influx::start();
    let db = "rf_killed";
    let (sink, relay) = start(&influx.url(), db, "PERFSINK_CLOSE_TIMEOUT_MS=20000");
    let stop = Arc::new(AtomicBool::new(false));
    let clients = post_until(relay.url(), db, 2, stop.clone());
    for k in 0..3 {
        thread::sleep(between(
            &mut rng,
            Duration::from_millis(300),
            Duration::from_secs(2),
        ));
        let down = between(&mut rng, Duration::from_millis(300), Duration::from_secs(2));
        eprintln!("kill -9 influxd #{k}, down {down:?}");
        kill_influxd(&mut influx, down);
    }
    thread::sleep(between(
        &mut rng,
        Duration::from_millis(200),
        Duration::from_secs(1),
    ));
    stop.store(true, Ordering::Relaxed);
    let posted = clients.join().unwrap();
    let (rs, r) = finish(relay, sink);
    assert!(r.stats.retried > 0, "{r}");
    assert_invariant("relay/influxd-killed", &influx, db, &posted, &rs, &r);
    assert_eq!(r.lost(), 0, "{r}");
    assert_eq!(posted.lines_204, posted.lines, "{posted:?}");
}

/// Fault 2: influxd frozen twice for 1.5–3 s, longer than the 1 s request timeout.
#[test]
fn influxd_frozen_longer_than_the_request_timeout() {
    let mut rng = seeded("relay/influxd-frozen");
    let influx = Influx::start();
    let db = "rf_frozen";
    let (sink, relay) = start(&influx.url(), db, "PERFSINK_CLOSE_TIMEOUT_MS=20000");
    let stop = Arc::new(AtomicBool::new(false));
    let clients = post_until(relay.url(), db, 2, stop.clone());
    for k in 0..2 {
        thread::sleep(between(
            &mut rng,
            Duration::from_millis(300),
            Duration::from_millis(1500),
        ));
        let frozen = between(
            &mut rng,
            Duration::from_millis(1500),
            Duration::from_millis(3000),
        );
        eprintln!("SIGSTOP influxd #{k} for {frozen:?}");
        freeze_influxd(&influx, frozen);
    }
    thread::sleep(between(
        &mut rng,
        Duration::from_millis(200),
        Duration::from_secs(1),
    ));
    stop.store(true, Ordering::Relaxed);
    let posted = clients.join().unwrap();
    let (rs, r) = finish(relay, sink);
    assert!(r.stats.retried > 0, "{r}");
    assert_invariant("relay/influxd-frozen", &influx, db, &posted, &rs, &r);
    assert_eq!(r.lost(), 0, "{r}");
}

/// Fault 3: The proxy: two rounds of latency, resets, truncated answers, 500, 503, 429, 413, 400,
/// 404 in random order, then a 401.
#[test]
fn proxy_injects_latency_resets_truncation_and_error_answers() {
    let mut rng = seeded("relay/proxy");
    let influx = Influx::start();
    let db = "rf_proxy";
    let mut script = random_script(&mut rng, 2, Duration::from_millis(1500));
    script.push(Fault::Status(401));
    let proxy = FaultProxy::start(&influx.url(), script);
    let (sink, relay) = start(
        &proxy.url(),
        db,
        "PERFSINK_CLOSE_TIMEOUT_MS=5000;PERFSINK_BATCH_LINES=200;PERFSINK_TIMEOUT_MS=5000",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let clients = post_until(relay.url(), db, 2, stop.clone());
    let done = wait_until(Duration::from_secs(60), || proxy.remaining() == 0);
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let posted = clients.join().unwrap();
    eprintln!("proxy: {}", proxy.summary());
    assert!(
        done,
        "the proxy's script was not used up: {}",
        proxy.summary()
    );
    let h = sink.health();
    assert!(
        h.error.as_deref().unwrap_or_default().contains("401"),
        "writing stopped on the 401: {h:?}"
    );
    let (rs, r) = finish(relay, sink);
    assert_invariant("relay/proxy", &influx, db, &posted, &rs, &r);
    assert_eq!(influx.count(db, M), proxy.forwarded_lines() as u64);
    assert!(r.stats.rejected_server > 0, "{r}");
}

/// Fault 4: The spool's disk is full (a 4 MiB tmpfs), influxd down, memory capped at 256 KiB,
/// up to ~12 MB posted (until the second 503): every request is answered 204 only if its
/// lines are kept, else 503 with
/// `Retry-After` and a message naming the cause (ENOSPC); once influxd is back, every line of
/// a 204'd request arrives and nothing taken is dropped.
#[test]
fn spool_disk_full_answers_503_naming_enospc_never_204() {
    let mut influx = Influx::start();
    influx.stop();
    let fs = Tmpfs::mount("relay-enospc", "4m");
    let db = "rf_enospc";
    let (sink, relay) = start(
        &influx.url(),
        db,
        &format!(
            "PERFSINK_SPOOL_DIR={};PERFSINK_MEMORY_MAX_BYTES=262144;PERFSINK_CLOSE_TIMEOUT_MS=30000;\
             PERFSINK_BLOCK_TIMEOUT_MS=10",
            fs.path().join("spool").display()
        ),
    );
    let mut posted = Posted::default();
    let mut messages = BTreeMap::<String, u64>::new();
    let mut bad_503 = Vec::new();
    // Until the second 503: each waits up to the relay's 5 s for room in the spool.
    for req in 0..250u64 {
        if posted.statuses.get(&503).copied().unwrap_or(0) >= 2 {
            break;
        }
        let r = http::request(
            "POST",
            &format!("{}/write?db={db}", relay.url()),
            &[],
            body(0, req)
                .replace(&format!("{M},"), &format!("{M},pad={},", "p".repeat(200)))
                .as_bytes(),
        )
        .unwrap();
        posted.lines += LINES;
        *posted.statuses.entry(r.status).or_default() += 1;
        match r.status {
            204 => posted.lines_204 += LINES,
            503 => {
                let msg = r.text();
                if r.header("retry-after").is_none() {
                    bad_503.push(format!("no Retry-After: {msg}"));
                }
                *messages.entry(msg).or_default() += 1;
            }
            s => panic!("unexpected {s}: {}", r.text()),
        }
    }
    eprintln!(
        "relay/spool-disk-full: tmpfs holds {} bytes; statuses {:?}; 503 messages {messages:#?}",
        fs.used_bytes(),
        posted.statuses
    );
    assert!(fs.used_bytes() > 3_000_000, "the spool filled the disk");
    influx.start_again();
    let (rs, r) = finish(relay, sink);
    assert_invariant("relay/spool-disk-full", &influx, db, &posted, &rs, &r);
    assert!(bad_503.is_empty(), "{bad_503:?}");
    assert_eq!(
        r.stats.dropped_undelivered, 0,
        "lines answered 204 were dropped afterwards: {r}"
    );
    assert!(
        messages.keys().any(|m| m.contains("ENOSPC")),
        "a 503 names the full disk (ENOSPC): {messages:?}"
    );
}

// ------------------------------------------------------------------------------------------
// Fault 5: `perfsink serve` killed with -9 and started again on the same spool.

struct Serve {
    child: Child,
    url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(influx: &Influx, db: &str, spool: &std::path::Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_perfsink"))
        .args(["serve", "--listen", "127.0.0.1:0", "--quiet"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("INFLUXDB_URL", format!("{}/{db}", influx.url()))
        .env("PERFSINK_SPOOL_DIR", spool)
        .env("PERFSINK_FLUSH_INTERVAL_MS", "50")
        .env("PERFSINK_RETRY_INITIAL_MS", "50")
        .env("PERFSINK_RETRY_MAX_MS", "500")
        .env("PERFSINK_CONNECT_TIMEOUT_MS", "300")
        .env("PERFSINK_SELF_METRICS_INTERVAL_MS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    Serve { child, url }
}

/// Lines per `req` tag in InfluxDB.
fn per_request(influx: &Influx, db: &str) -> BTreeMap<u64, u64> {
    let series = influx.query_series(db, "SELECT count(v) FROM crash GROUP BY req");
    series
        .iter()
        .map(|s| {
            (
                s["tags"]["req"].as_str().unwrap().parse().unwrap(),
                s["values"][0][1].as_u64().unwrap(),
            )
        })
        .collect()
}

/// `perfsink serve` with a spool, influxd down; a client posts requests of 200 lines, and the
/// relay is killed with -9 after a random number of them. Started again on the same spool
/// with influxd up, it delivers every line of every request it had answered 204.
#[test]
fn serve_killed_keeps_every_line_it_answered_204() {
    let mut rng = seeded("relay/serve-killed");
    let mut influx = Influx::start();
    influx.create_db("rf_crash");
    influx.stop();
    let spool = TempDir::new("serve-killed");
    let db = "rf_crash";
    let relay = serve(&influx, db, spool.path());
    let requests = rng.u64(5..40);
    let mut acked = Vec::new();
    for req in 0..requests {
        let body: String = (0..LINES)
            .map(|i| {
                format!(
                    "crash,req={req} v={i}i {}\n",
                    T0 + (req * LINES + i) as i64 * 1000
                )
            })
            .collect();
        let r = http::request(
            "POST",
            &format!("{}/write?db={db}", relay.url),
            &[],
            body.as_bytes(),
        )
        .unwrap();
        if r.status == 204 {
            acked.push(req);
        }
    }
    thread::sleep(between(
        &mut rng,
        Duration::ZERO,
        Duration::from_millis(300),
    ));
    signal(relay.child.id(), "KILL");
    drop(relay);
    influx.start_again();
    let mut relay = serve(&influx, db, spool.path());
    let want = acked.len() as u64 * LINES;
    let landed = wait_until(Duration::from_secs(20), || {
        per_request(&influx, db).values().sum::<u64>() >= want
    });
    signal(relay.child.id(), "TERM");
    let mut stderr = String::new();
    relay
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let _ = relay.child.wait();
    let got = per_request(&influx, db);
    let missing: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|r| got.get(r).copied().unwrap_or(0) != LINES)
        .collect();
    eprintln!(
        "relay/serve-killed: {requests} requests, {} answered 204 ({want} lines); after the \
         restart InfluxDB holds {} lines; requests incomplete: {} of {}; landed {landed}; \
         second relay: {}",
        acked.len(),
        got.values().sum::<u64>(),
        missing.len(),
        acked.len(),
        stderr.trim()
    );
    assert!(
        missing.is_empty(),
        "lines of 204'd requests lost: requests {missing:?}"
    );
}
