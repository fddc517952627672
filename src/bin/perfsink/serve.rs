//! `perfsink serve`: the line-protocol relay (`perfsink::sources::relay`) in front of a sink
//! configured from the environment, until SIGINT or SIGTERM; then the delivery report.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use perfsink::config::url::loopback_fallbacks;
use perfsink::config::{Api, Config, Secret};
use perfsink::sources::relay::{Relay, RelayOptions};
use perfsink::Sink;

pub const USAGE: &str = "usage: perfsink serve [--listen ADDR] [--allow-remote] [--token TOKEN]
                      [--max-body-bytes N] [--max-inflight-bytes N] [--body-timeout-ms N]
                      [--quiet] [--fail-on-loss]

Runs an InfluxDB-compatible write endpoint in front of the sink: anything that writes line
protocol to InfluxDB can write to it instead and get perfsink's batching, gzip, retries, spool
and delivery report. The sink is configured from INFLUXDB_* / PERFSINK_* (README.md);
INFLUXDB_URL must be set.

  --listen ADDR       where to listen (default 127.0.0.1:8186; port 0 picks a free port)
  --allow-remote      required to listen on a non-loopback address such as 0.0.0.0:8186
  --token TOKEN       require this token on writes and queries (default: $PERFSINK_RELAY_TOKEN),
                      as `Authorization: Bearer|Token <token>`, Basic auth with the token as
                      password, or the 1.x `p=<token>` parameter
  --max-body-bytes N  largest request body, compressed or inflated (default 134217728: k6
                      sends all samples of a second in one body, ~37 MB at 17 k requests/s)
  --max-inflight-bytes N
                      memory of all request bodies in progress together, received and
                      inflated (default 536870912); past it a request gets 503 and
                      Retry-After (one request alone always gets through)
  --body-timeout-ms N longest time to receive a request body, else 408 (default 10000: clients
                      send a body at once, 128 MiB take ~1 s on a gigabit link; a slow client
                      holds its part of --max-inflight-bytes meanwhile)
  --quiet             no progress line on stderr
  --fail-on-loss      exit 1 also when a line was lost (see Exit code below)

Endpoints: POST /write (1.x: db, rp, precision n|ns|u|us|ms|s|m|h), POST /api/v2/write (2.x:
org, bucket, precision ns|us|ms|s), gzip bodies, GET|POST /query (answers CREATE DATABASE only,
as k6 sends it), GET|HEAD /ping, GET /health (JSON with the counters; status pass, warn while
writes fail and are retried, fail (and 503) while points are lost or writing stopped, with the
current error in last_error).
Malformed lines get InfluxDB 1.x's partial-write answer (400, `dropped=N`) and the good lines of
the body are kept. Timestamps are rescaled from the request's precision to the sink's; a line
without one gets the time the relay received it. Lines are otherwise forwarded as they came,
global tags (PERFSINK_TAGS) merged in; with PERFSINK_DEDUP (default) a line tied with the
latest timestamp of its series moves just after it so InfluxDB keeps both.

InfluxDB on this machine (localhost, 127.x, [::1]) gets uncompressed request bodies unless
PERFSINK_GZIP_LEVEL is set: on loopback gzip saves nothing and costs CPU in both processes.

Database: the sink has one writer and one database (INFLUXDB_DB, INFLUXDB_BUCKET, or the path of
INFLUXDB_URL). Every line goes there, whatever db or bucket a request names (a different name is
logged once); run one relay per database.

  k6:     k6 run --out influxdb=http://127.0.0.1:8186/k6 script.js
  JMeter: Backend Listener influxdbUrl = http://127.0.0.1:8186/write?db=jmeter

Ctrl-C or SIGTERM stops it: no new connections, requests in progress finish, what the sink holds
is delivered (up to PERFSINK_CLOSE_TIMEOUT_MS) and the delivery report is printed on stderr.
Exit code 0, or 1 when points were dropped; with --fail-on-loss (PERFSINK_FAIL_ON_LOSS=true)
also 1 when lines were not taken, refused by InfluxDB or left in the spool.";

/// How often the progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How long requests in progress may take to finish at shutdown.
const GRACE: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Args {
    listen: SocketAddr,
    allow_remote: bool,
    token: Option<String>,
    max_body_bytes: usize,
    max_inflight_bytes: usize,
    body_timeout: Duration,
    quiet: bool,
    fail_on_loss: bool,
}

fn parse_args(args: &[String]) -> Result<Option<Args>, String> {
    let defaults = RelayOptions::default();
    let mut a = Args {
        listen: defaults.listen,
        allow_remote: false,
        token: None,
        max_body_bytes: defaults.max_body_bytes,
        max_inflight_bytes: defaults.max_inflight_bytes,
        body_timeout: defaults.body_timeout,
        quiet: false,
        fail_on_loss: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs {what}"))
        };
        match name {
            "-h" | "--help" => return Ok(None),
            "--listen" => {
                let v = value("an address such as 127.0.0.1:8186")?;
                a.listen = v
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut addrs| addrs.next())
                    .ok_or_else(|| format!("--listen: {v:?} is not an address (host:port)"))?;
            }
            "--allow-remote" => a.allow_remote = true,
            "--token" => a.token = Some(value("a token")?),
            "--max-body-bytes" => {
                let v = value("a number of bytes")?;
                a.max_body_bytes =
                    v.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
                        format!("--max-body-bytes: {v:?} is not a positive number")
                    })?;
            }
            "--max-inflight-bytes" => {
                let v = value("a number of bytes")?;
                a.max_inflight_bytes =
                    v.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
                        format!("--max-inflight-bytes: {v:?} is not a positive number")
                    })?;
            }
            "--body-timeout-ms" => {
                let v = value("milliseconds")?;
                a.body_timeout = v
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n > 0)
                    .map(Duration::from_millis)
                    .ok_or_else(|| format!("--body-timeout-ms: {v:?} is not a positive number"))?;
            }
            "--quiet" | "-q" => a.quiet = true,
            "--fail-on-loss" => a.fail_on_loss = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(a))
}

pub fn run(args: &[String]) -> ExitCode {
    let args = match parse_args(args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("perfsink serve: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let token = args.token.clone().or_else(|| {
        std::env::var("PERFSINK_RELAY_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
    });
    // InfluxDB on this machine: uncompressed bodies unless PERFSINK_GZIP_LEVEL says otherwise.
    let url = std::env::var("INFLUXDB_URL").ok();
    let fallbacks = loopback_fallbacks(url.as_deref());
    let fallbacks: Vec<(&str, &str)> = fallbacks.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut config = match Config::from_env_with_fallbacks(&fallbacks) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("perfsink serve: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(endpoint) = config.endpoint.clone() else {
        eprintln!("perfsink serve: INFLUXDB_URL is not set: there is nothing to relay to");
        return ExitCode::from(2);
    };
    if std::env::var_os("PERFSINK_SOURCE").is_none() {
        config.source = "relay".into();
    }
    config.fail_on_loss |= args.fail_on_loss;
    let sink = match Sink::open(config) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("perfsink serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            eprintln!("perfsink serve: cannot handle signals ({e})");
            return ExitCode::FAILURE;
        }
    }
    let remote = !args.listen.ip().is_loopback();
    let options = RelayOptions {
        listen: args.listen,
        allow_remote: args.allow_remote,
        token: token.map(Secret::new),
        max_body_bytes: args.max_body_bytes,
        max_inflight_bytes: args.max_inflight_bytes,
        body_timeout: args.body_timeout,
    };
    let authenticated = options.token.is_some();
    let mut relay = match Relay::start(sink.clone(), options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("perfsink serve: {e}");
            let _ = sink.close();
            return ExitCode::FAILURE;
        }
    };
    let target = match &endpoint.api {
        Api::V1 { db, .. } => format!("{} database {db:?}", endpoint.base_url),
        Api::V2 { bucket, .. } => format!("{} bucket {bucket:?}", endpoint.base_url),
    };
    println!(
        "perfsink relay listening on {} -> InfluxDB {target}{}",
        relay.url(),
        if authenticated {
            " (token required)"
        } else {
            ""
        }
    );
    let _ = std::io::stdout().flush();
    if remote && !authenticated {
        eprintln!(
            "perfsink serve: warning: listening on {} without a token: anyone who reaches it \
             can write to InfluxDB",
            args.listen
        );
    }

    let mut last = (Instant::now(), relay.stats().lines(), sink.stats().written);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if !args.quiet && last.0.elapsed() >= PROGRESS_EVERY {
            let (r, s) = (relay.stats(), sink.stats());
            let secs = last.0.elapsed().as_secs_f64();
            eprintln!(
                "perfsink relay: {:.0} lines/s received, {:.0} lines/s written, queue {}, \
                 malformed {}, dropped {}",
                (r.lines() - last.1) as f64 / secs,
                (s.written.saturating_sub(last.2)) as f64 / secs,
                s.queue_depth,
                r.lines_rejected,
                s.dropped,
            );
            last = (Instant::now(), r.lines(), s.written);
        }
    }

    relay.shutdown(GRACE);
    let r = relay.stats();
    let report = sink.close();
    eprintln!(
        "perfsink relay: {} requests, {} lines received ({} taken, {} malformed, {} not taken)",
        r.requests,
        r.lines(),
        r.lines_accepted,
        r.lines_rejected,
        r.lines_dropped
    );
    eprintln!("{report}");
    // Dropped points always fail the relay; with --fail-on-loss / PERFSINK_FAIL_ON_LOSS so do
    // lines it did not take and points InfluxDB refused or the spool still holds.
    let lost = report.failed() || (report.fail_on_loss && r.lines_dropped > 0);
    if report.stats.dropped > 0 || lost {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<Args>, String> {
        parse_args(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn arguments() {
        let a = args(&[]).unwrap().unwrap();
        assert_eq!(a.listen.to_string(), "127.0.0.1:8186");
        assert!(!a.allow_remote && !a.quiet && !a.fail_on_loss && a.token.is_none());
        assert_eq!(a.max_body_bytes, 128 << 20);
        assert_eq!(a.max_inflight_bytes, 512 << 20);
        assert_eq!(a.body_timeout, Duration::from_secs(10));
        let a = args(&[
            "--listen",
            "127.0.0.1:0",
            "--token=t",
            "--max-body-bytes",
            "10",
            "--max-inflight-bytes=20",
            "--body-timeout-ms",
            "1500",
            "--quiet",
            "--allow-remote",
            "--fail-on-loss",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.listen.port(), 0);
        assert_eq!(a.token.as_deref(), Some("t"));
        assert_eq!(a.max_body_bytes, 10);
        assert_eq!(a.max_inflight_bytes, 20);
        assert_eq!(a.body_timeout, Duration::from_millis(1500));
        assert!(a.quiet && a.allow_remote && a.fail_on_loss);
        assert!(args(&["--help"]).unwrap().is_none());
        assert!(args(&["--listen"]).unwrap_err().contains("needs"));
        assert!(args(&["--listen", "nowhere"]).is_err());
        assert!(args(&["--max-body-bytes", "0"]).is_err());
        assert!(args(&["--max-inflight-bytes", "x"]).is_err());
        assert!(args(&["--body-timeout-ms", "0"]).is_err());
        assert!(args(&["--bogus"]).unwrap_err().contains("--bogus"));
    }
}
