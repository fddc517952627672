//! The line-protocol relay (`perfsink::sources::relay`, `perfsink serve`) in front of a real
//! InfluxDB 1.6: raw HTTP requests as k6, JMeter and other InfluxDB clients send them, then the
//! stored points read back with `/query`, exact values asserted.
//!
//! One influxd serves every test (each test has its own database), so the tests stay fast and
//! run in parallel; the two `/health` tests that stop InfluxDB or need its auth start their own.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::{http, HttpResponse, Influx};
use flate2::write::GzEncoder;
use flate2::Compression;
use perfsink::config::Secret;
use perfsink::sources::relay::{Relay, RelayOptions, RelayStats};
use perfsink::{Report, Sink};
use serde_json::{json, Value};

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000_000_000;
const FLUSH: Duration = Duration::from_secs(20);

/// Small intervals so every test runs fast; self-metrics off.
const FAST: &str = "PERFSINK_FLUSH_INTERVAL_MS=50;PERFSINK_RETRY_INITIAL_MS=50;\
                    PERFSINK_RETRY_MAX_MS=500;PERFSINK_SELF_METRICS_INTERVAL_MS=0;\
                    PERFSINK_CLOSE_TIMEOUT_MS=5000;PERFSINK_TIMEOUT_MS=5000";

fn influx() -> &'static Influx {
    static INFLUX: OnceLock<Influx> = OnceLock::new();
    INFLUX.get_or_init(Influx::start)
}

/// A sink writing to database `db` of the shared influxd, and a relay in front of it.
struct Setup {
    sink: Arc<Sink>,
    relay: Relay,
    db: String,
}

fn options() -> RelayOptions {
    RelayOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..RelayOptions::default()
    }
}

fn setup(db: &str, extra: &str, options: RelayOptions) -> Setup {
    let kv = format!(
        "INFLUXDB_URL={};INFLUXDB_DB={db};{FAST};{extra}",
        influx().url()
    );
    let sink = Arc::new(Sink::from_kv(&kv).unwrap_or_else(|e| panic!("{kv}: {e}")));
    let relay = Relay::start(sink.clone(), options).unwrap();
    Setup {
        sink,
        relay,
        db: db.to_string(),
    }
}

impl Setup {
    fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.relay.url())
    }

    fn request(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        http::request(method, &self.url(path_and_query), headers, body)
            .unwrap_or_else(|e| panic!("{method} {path_and_query}: {e}"))
    }

    fn post(&self, path_and_query: &str, body: &str) -> HttpResponse {
        self.request("POST", path_and_query, &[], body.as_bytes())
    }

    /// `POST /write?db=<db>&precision=<precision>`.
    fn write(&self, precision: &str, body: &str) -> HttpResponse {
        let q = http::encode_query(&[("db", &self.db), ("precision", precision)]);
        self.post(&format!("/write?{q}"), body)
    }

    /// Waits until InfluxDB confirmed everything the sink took.
    fn flush(&self) {
        self.sink.flush(FLUSH).unwrap();
    }

    fn rows(&self, q: &str) -> Vec<Vec<Value>> {
        influx().query_rows(&self.db, q)
    }

    fn finish(mut self) -> (RelayStats, Report) {
        self.relay.shutdown(Duration::from_secs(5));
        let stats = self.relay.stats();
        (stats, self.sink.close())
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn assert_status(r: &HttpResponse, status: u16) {
    assert_eq!(r.status, status, "{:?} {}", r.headers, r.text());
}

#[test]
fn precisions_are_converted_to_ns_exactly() {
    let s = setup("relay_precision", "", options());
    for (precision, line) in [
        ("s", "prec,p=s v=1 1700000000"),
        ("ms", "prec,p=ms v=2 1700000000123"),
        ("u", "prec,p=u v=3 1700000000123456"),
        ("us", "prec,p=us v=4 1700000000123457"),
        ("ns", "prec,p=ns v=5 1700000000123456789"),
        ("n", "prec,p=n v=6 1700000000123456790"),
        ("", "prec,p=default v=7 1700000000123456791"),
        ("m", "prec,p=m v=8 28333334"),
        ("h", "prec,p=h v=9 472223"),
    ] {
        assert_status(&s.write(precision, line), 204);
    }
    for (precision, line) in [
        ("s", "prec,p=v2s v=10 1700000001"),
        ("ms", "prec,p=v2ms v=11 1700000001001"),
        ("us", "prec,p=v2us v=12 1700000001000002"),
        ("ns", "prec,p=v2ns v=13 1700000001000000003"),
    ] {
        let q = http::encode_query(&[("org", "o"), ("bucket", &s.db), ("precision", precision)]);
        assert_status(&s.post(&format!("/api/v2/write?{q}"), line), 204);
    }
    // Without a timestamp: the receive time, truncated to the request's precision.
    let before = perfsink::model::now_ns();
    assert_status(&s.write("s", "prec,p=now v=14"), 204);
    let after = perfsink::model::now_ns();
    s.flush();
    let rows = s.rows("SELECT v, p FROM prec");
    let got: Vec<(i64, f64, String)> = rows
        .iter()
        .map(|r| {
            (
                r[0].as_i64().unwrap(),
                r[1].as_f64().unwrap(),
                r[2].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        (T0, 1.0, "s"),
        (T0 + 123_000_000, 2.0, "ms"),
        (T0 + 123_456_000, 3.0, "u"),
        (T0 + 123_457_000, 4.0, "us"),
        (T0 + 123_456_789, 5.0, "ns"),
        (T0 + 123_456_790, 6.0, "n"),
        (T0 + 123_456_791, 7.0, "default"),
        (1_700_000_040_000_000_000, 8.0, "m"),
        (1_700_002_800_000_000_000, 9.0, "h"),
        (T0 + 1_000_000_000, 10.0, "v2s"),
        (T0 + 1_001_000_000, 11.0, "v2ms"),
        (T0 + 1_000_002_000, 12.0, "v2us"),
        (T0 + 1_000_000_003, 13.0, "v2ns"),
    ];
    let mut want: Vec<(i64, f64, String)> = want
        .iter()
        .map(|&(t, v, p)| (t, v, p.to_string()))
        .collect();
    want.sort_by_key(|w| w.0);
    let (now, rest): (Vec<_>, Vec<_>) = got.into_iter().partition(|g| g.2 == "now");
    assert_eq!(rest, want);
    assert_eq!(now.len(), 1);
    let t = now[0].0;
    assert_eq!(t % 1_000_000_000, 0, "truncated to seconds: {t}");
    assert!(
        t >= before - before.rem_euclid(1_000_000_000) && t <= after,
        "{before} <= {t} <= {after}"
    );
    let (relay, report) = s.finish();
    assert_eq!(relay.lines_accepted, 14);
    assert_eq!(report.stats.written, 14);
}

#[test]
fn sink_precision_ms_rescales_and_bad_precisions_are_refused() {
    let s = setup("relay_ms", "INFLUXDB_PRECISION=ms", options());
    assert_status(&s.write("ns", "m v=1 1700000000123456789"), 204);
    assert_status(&s.write("s", "m v=2 1700000001"), 204);
    for (path, want) in [
        (
            "/write?db=x&precision=x",
            "invalid precision \"x\": use n, ns, u, us, ms, s, m or h",
        ),
        (
            "/api/v2/write?bucket=x&precision=u",
            "invalid precision \"u\": use ns, us, ms or s",
        ),
    ] {
        let r = s.post(path, "m v=3 1");
        assert_status(&r, 400);
        let body = r.json();
        let message = body
            .get("error")
            .or_else(|| body.get("message"))
            .and_then(Value::as_str)
            .unwrap();
        assert_eq!(message, want);
    }
    // Out of the servers' time range once in ns.
    let r = s.write("s", "m v=4 9300000000");
    assert_status(&r, 400);
    assert_eq!(
        r.json(),
        json!({"error": "unable to parse 'm v=4 9300000000': \
                         time outside range -9223372036854775806 - 9223372036854775806"})
    );
    s.flush();
    let rows = s.rows("SELECT v FROM m");
    assert_eq!(
        rows,
        [
            vec![json!(T0 + 123_000_000), json!(1)],
            vec![json!(T0 + 1_000_000_000), json!(2)]
        ]
    );
    let (_, report) = s.finish();
    assert_eq!(
        (report.stats.written, report.stats.rejected_invalid),
        (2, 1)
    );
}

#[test]
fn gzip_bodies_and_the_v2_path() {
    let s = setup("relay_gzip", "", options());
    let mut body = String::new();
    for i in 0..2000 {
        body.push_str(&format!(
            "gz,host=h{} value={i}.5,n={i}i,ok=true,s=\"x y\" {}\n",
            i % 4,
            T0 + i
        ));
    }
    let gz = gzip(body.as_bytes());
    let r = s.request(
        "POST",
        &format!("/write?db={}", s.db),
        &[("Content-Encoding", "gzip")],
        &gz,
    );
    assert_status(&r, 204);
    // v2 with a token-less request, gzip, two gzip members in one body.
    let mut two = gzip(format!("gz2 v=1 {T0}\n").as_bytes());
    two.extend(gzip(format!("gz2 v=2 {}\n", T0 + 1).as_bytes()));
    let r = s.request(
        "POST",
        &format!("/api/v2/write?org=o&bucket={}&precision=ns", s.db),
        &[("Content-Encoding", "GZIP"), ("Content-Type", "text/plain")],
        &two,
    );
    assert_status(&r, 204);
    // Not gzip at all.
    let r = s.request(
        "POST",
        &format!("/write?db={}", s.db),
        &[("Content-Encoding", "gzip")],
        b"gz v=1 1\n",
    );
    assert_status(&r, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("gzip"));
    let r = s.request(
        "POST",
        &format!("/write?db={}", s.db),
        &[("Content-Encoding", "br")],
        b"gz v=1 1\n",
    );
    assert_status(&r, 415);
    s.flush();
    assert_eq!(influx().count(&s.db, "gz"), 2000);
    let rows = s.rows("SELECT value, n, ok, s, host FROM gz WHERE time = 1700000000000001999");
    assert_eq!(
        rows,
        [vec![
            json!(T0 + 1999),
            json!(1999.5),
            json!(1999),
            json!(true),
            json!("x y"),
            json!("h3")
        ]]
    );
    assert_eq!(
        s.rows("SELECT v FROM gz2"),
        [vec![json!(T0), json!(1)], vec![json!(T0 + 1), json!(2)]]
    );
    let (relay, _) = s.finish();
    assert_eq!(relay.lines_accepted, 2002);
    assert_eq!(relay.refused, 2);
}

#[test]
fn partial_writes_keep_the_good_lines_and_answer_like_influxdb() {
    let s = setup("relay_partial", "", options());
    let body = format!(
        "good,t=a v=1 {}\nbad line\n\n# a comment\ngood,t=b v=2 {}\n\
         good,t=c v=NaN {}\n  good,t=d w=4i {}\n",
        T0 + 1,
        T0 + 2,
        T0 + 3,
        T0 + 4
    );
    let r = s.write("ns", &body);
    assert_status(&r, 400);
    let want = "partial write: unable to parse 'bad line': invalid field format\n\
                unable to parse 'good,t=c v=NaN 1700000000000000003': invalid number dropped=2";
    assert_eq!(r.json(), json!({ "error": want }));
    assert_eq!(
        r.header("x-influxdb-error").unwrap(),
        want.replace('\n', " ")
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    // Nothing valid at all: a plain parse error, as 1.x answers it.
    let r = s.write("ns", "only garbage\nm,t= v=1\n");
    assert_status(&r, 400);
    assert_eq!(
        r.json(),
        json!({"error": "unable to parse 'only garbage': invalid field format\n\
                         unable to parse 'm,t= v=1': missing tag value"})
    );
    // The v2 shape.
    let r = s.post(
        &format!("/api/v2/write?bucket={}", s.db),
        &format!("good,t=e v=5 {}\nm v=\n", T0 + 5),
    );
    assert_status(&r, 400);
    assert_eq!(
        r.json(),
        json!({"code": "invalid", "message": "partial write: unable to parse 'm v=': \
                                             missing field value dropped=1"})
    );
    // Many bad lines: the first ten are quoted, the rest counted.
    let many: String = (0..15).map(|i| format!("x{i}\n")).collect();
    let r = s.write("ns", &format!("{many}good,t=f v=6 {}\n", T0 + 6));
    assert_status(&r, 400);
    let m = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        m.starts_with("partial write: unable to parse 'x0': missing fields\n"),
        "{m}"
    );
    assert!(
        m.ends_with(
            "unable to parse 'x9': missing fields\n(and 5 more malformed lines) dropped=15"
        ),
        "{m}"
    );
    s.flush();
    let rows = s.rows("SELECT * FROM good");
    let got: Vec<(i64, String)> = rows
        .iter()
        .map(|r| (r[0].as_i64().unwrap(), r[1].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        got,
        (1..=6)
            .filter(|i| *i != 3)
            .map(|i| (
                T0 + i,
                ["a", "b", "c", "d", "e", "f"][i as usize - 1].to_string()
            ))
            .collect::<Vec<_>>()
    );
    let stats = s.sink.stats();
    assert_eq!((stats.accepted, stats.rejected_invalid), (5, 20));
    let (relay, report) = s.finish();
    assert_eq!((relay.lines_accepted, relay.lines_rejected), (5, 20));
    assert_eq!((report.stats.written, report.stats.rejected), (5, 20));
}

#[test]
fn ties_with_the_latest_timestamp_of_a_series_are_kept_apart() {
    for (db, extra, points) in [
        ("relay_dedup_on", "", 3),
        ("relay_dedup_off", "PERFSINK_DEDUP=false", 2),
    ] {
        let s = setup(db, extra, options());
        // Two samples of one series at one nanosecond (k6 does this now and then), a later one,
        // and an out-of-order one that keeps its time (it ties with nothing).
        let t = T0 + 10;
        let body = format!(
            "d,k=a v=1 {t}\nd,k=a v=2 {t}\nd,k=b v=3 {t}\nd,k=a v=4 {}\n",
            t - 5
        );
        assert_status(&s.write("ns", &body), 204);
        s.flush();
        let rows = influx().query_rows(&s.db, "SELECT v FROM d WHERE k = 'a'");
        assert_eq!(rows.len(), points, "{db}: {rows:?}");
        let times: Vec<i64> = rows.iter().map(|r| r[0].as_i64().unwrap()).collect();
        let values: Vec<f64> = rows.iter().map(|r| r[1].as_f64().unwrap()).collect();
        if points == 3 {
            assert_eq!(
                (times, values),
                (vec![t - 5, t, t + 1], vec![4.0, 1.0, 2.0])
            );
        } else {
            assert_eq!((times, values), (vec![t - 5, t], vec![4.0, 2.0]));
        }
        let (_, report) = s.finish();
        let moved = report.stats.deduplicated;
        assert_eq!(moved, if points == 3 { 1 } else { 0 }, "{db}");
    }
}

#[test]
fn concurrent_clients_posting_lines_without_timestamps_lose_nothing() {
    // Two clients post lines of one series without timestamps: each line is stamped with its
    // request's receive time, and the requests interleave in the pipeline. InfluxDB keeps one
    // point per series and timestamp, so every tie must move and nothing may merge.
    const THREADS: usize = 2;
    const BODIES: usize = 40;
    const LINES: usize = 1000;
    let s = Arc::new(setup("relay_concurrent_no_ts", "", options()));
    let clients: Vec<_> = (0..THREADS)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for b in 0..BODIES {
                    let body: String = (0..LINES)
                        .map(|i| format!("conc,s=shared v={}\n", (t * BODIES + b) * LINES + i))
                        .collect();
                    assert_status(&s.write("ns", &body), 204);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    s.flush();
    let sent = (THREADS * BODIES * LINES) as u64;
    assert_eq!(influx().count(&s.db, "conc"), sent);
    // Every value arrived once: the sum of 0..sent.
    let rows = s.rows("SELECT sum(v) FROM conc");
    assert_eq!(rows[0][1].as_f64().unwrap(), (sent * (sent - 1) / 2) as f64);
    let s = Arc::into_inner(s).unwrap();
    let (relay, report) = s.finish();
    assert_eq!((relay.lines_accepted, report.stats.written), (sent, sent));
    assert_eq!(report.stats.dedup_unchecked, 0);
}

#[test]
fn a_retried_body_stores_what_influxdb_alone_keeps() {
    // A client retries a body with explicit timestamps (its first answer was lost): InfluxDB
    // alone overwrites the identical points and keeps 2; so must the relay. A body with a tie
    // (moved once) retried twice lands on the same moved slot.
    let body = "dup,s=a value=1 1000\ndup,s=a value=2 2000\n";
    influx().create_db("relay_retry_alone");
    for _ in 0..2 {
        let r = influx().write("relay_retry_alone", "ns", body);
        assert_eq!(r.status, 204, "{}", r.text());
    }
    let alone = influx().count("relay_retry_alone", "dup");
    assert_eq!(alone, 2);
    let s = setup("relay_retry", "", options());
    let tie = "tie,s=a value=1 1000\ntie,s=a value=2 1000\n";
    for _ in 0..2 {
        assert_status(&s.write("ns", body), 204);
        assert_status(&s.write("ns", tie), 204);
    }
    s.flush();
    assert_eq!(influx().count(&s.db, "dup"), alone);
    let rows = s.rows("SELECT value FROM tie");
    let points: Vec<(i64, f64)> = rows
        .iter()
        .map(|r| (r[0].as_i64().unwrap(), r[1].as_f64().unwrap()))
        .collect();
    assert_eq!(points, [(1000, 1.0), (1001, 2.0)]);
    let (_, report) = s.finish();
    assert_eq!(report.stats.written, 8);
}

#[test]
fn identical_lines_in_one_body_are_two_samples_and_its_retry_adds_none() {
    // k6's influxdb output writes no vu: two VUs counting at the same nanosecond send the same
    // line twice in one body. Those are two samples (the second moves); a retry of that body
    // is the same two points again.
    let body = "twice,s=a value=1 5000\ntwice,s=a value=1 5000\ntwice,s=a value=1 5000\n";
    let s = setup("relay_twice", "", options());
    for _ in 0..2 {
        assert_status(&s.write("ns", body), 204);
    }
    s.flush();
    let rows = s.rows("SELECT value FROM twice");
    let times: Vec<i64> = rows.iter().map(|r| r[0].as_i64().unwrap()).collect();
    assert_eq!(times, [5000, 5001, 5002]);
    let (_, report) = s.finish();
    assert_eq!(report.stats.written, 6);
    // Two lines of each copy of the body are written at a moved timestamp.
    assert_eq!(report.stats.deduplicated, 4);
}

#[test]
fn body_limits_answer_413() {
    // Without de-duplication the repeated line is one point in InfluxDB, which the counts
    // below rely on.
    let s = setup(
        "relay_limits",
        "PERFSINK_DEDUP=false",
        RelayOptions {
            max_body_bytes: 1000,
            ..options()
        },
    );
    let line = format!("lim v=1 {T0}\n");
    let fits = line.repeat(1000 / line.len());
    assert_status(&s.write("ns", &fits), 204);
    let r = s.write("ns", &line.repeat(2000 / line.len()));
    assert_status(&r, 413);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("Request Entity Too Large"));
    // Chunked, no Content-Length: cut off while reading.
    let mut stream = TcpStream::connect(s.relay.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let chunk = "x".repeat(800);
    let request = format!(
        "POST /write?db={} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n\
         {:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        s.db,
        chunk.len(),
        chunk.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Compressed it fits, inflated it does not.
    let packed = gzip(&line.repeat(100).into_bytes());
    assert!(packed.len() < 1000, "{}", packed.len());
    let r = s.request(
        "POST",
        &format!("/write?db={}", s.db),
        &[("Content-Encoding", "gzip")],
        &packed,
    );
    assert_status(&r, 413);
    s.flush();
    assert_eq!(influx().count(&s.db, "lim"), 1, "same series and time");
    let (relay, _) = s.finish();
    assert_eq!(relay.refused, 3);
    assert!(relay.bytes_received <= 1000, "{relay:?}");
}

/// A gzip bomb: 900 KB of gzip members that would inflate to 900 MB. Refused once 1 MB is
/// inflated, without inflating the rest.
#[test]
fn gzip_bomb_is_refused_without_inflating_it() {
    let s = setup(
        "relay_bomb",
        "",
        RelayOptions {
            max_body_bytes: 1_000_000,
            ..options()
        },
    );
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    enc.write_all(&vec![b'0'; 1 << 20]).unwrap();
    let member = enc.finish().unwrap();
    let copies = 900_000 / member.len();
    let bomb = member.repeat(copies);
    assert!(
        bomb.len() <= 1_000_000 && copies >= 400,
        "{} x {}",
        copies,
        member.len()
    );
    let started = Instant::now();
    let r = s.request(
        "POST",
        &format!("/write?db={}", s.db),
        &[("Content-Encoding", "gzip")],
        &bomb,
    );
    assert_status(&r, 413);
    assert!(
        r.json()["error"].as_str().unwrap().contains("inflated"),
        "{}",
        r.text()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let (relay, report) = s.finish();
    assert_eq!((relay.refused, relay.bytes_received), (1, 0));
    assert_eq!(report.stats.accepted, 0);
}

#[test]
fn token_auth() {
    let s = setup(
        "relay_auth",
        "",
        RelayOptions {
            token: Some(Secret::new("s3cr3t")),
            ..options()
        },
    );
    let path = format!("/write?db={}", s.db);
    let body = format!("auth v=1 {T0}");
    let r = s.post(&path, &body);
    assert_status(&r, 401);
    assert_eq!(
        r.json()["error"],
        json!("authorization failed: the perfsink relay needs its token")
    );
    let r = s.post(&format!("/api/v2/write?bucket={}", s.db), &body);
    assert_status(&r, 401);
    assert_eq!(r.json()["code"], json!("unauthorized"));
    for bad in [
        "Bearer nope",
        "Token s3cr3",
        "Basic dXNlcjpub3Bl",
        "s3cr3t",
        "Bearer  ",
    ] {
        let r = s.request("POST", &path, &[("Authorization", bad)], body.as_bytes());
        assert_status(&r, 401);
    }
    assert_status(&s.post(&format!("{path}&u=x&p=nope"), &body), 401);
    assert_status(&s.post("/query?q=CREATE+DATABASE+x", ""), 401);
    let basic = http::basic_auth("anyone", "s3cr3t");
    for (i, good) in [
        "Bearer s3cr3t",
        "Token s3cr3t",
        "token  s3cr3t ",
        basic.as_str(),
    ]
    .iter()
    .enumerate()
    {
        let line = format!("auth v={} {}", i + 2, T0 + 1 + i as i64);
        let r = s.request("POST", &path, &[("Authorization", good)], line.as_bytes());
        assert_status(&r, 204);
    }
    assert_status(
        &s.post(
            &format!("{path}&u=k6&p=s3cr3t"),
            &format!("auth v=9 {}", T0 + 9),
        ),
        204,
    );
    // Ping and health stay open, as on InfluxDB.
    assert_status(&s.request("GET", "/ping", &[], b""), 204);
    assert_status(&s.request("GET", "/health", &[], b""), 200);
    s.flush();
    assert_eq!(influx().count(&s.db, "auth"), 5);
    let (relay, _) = s.finish();
    assert_eq!(relay.refused, 9);
}

#[test]
fn ping_health_query_and_unknown_paths() {
    let s = setup("relay_misc", "", options());
    let r = s.request("GET", "/ping", &[], b"");
    assert_status(&r, 204);
    let version = r.header("x-influxdb-version").unwrap().to_string();
    assert!(version.starts_with("1.8.10-perfsink-"), "{version}");
    assert_status(&s.request("HEAD", "/ping", &[], b""), 204);
    let r = s.request("GET", "/ping?verbose=true", &[], b"");
    assert_status(&r, 200);
    assert_eq!(r.json(), json!({ "version": version }));

    // CREATE DATABASE, GET and POST (URL parameters and form body).
    for (method, path, headers, body) in [
        ("GET", "/query?q=CREATE+DATABASE+%22x%22", vec![], ""),
        ("POST", "/query?q=create+database+x", vec![], ""),
        (
            "POST",
            "/query",
            vec![("Content-Type", "application/x-www-form-urlencoded")],
            "q=CREATE%20DATABASE%20x%20WITH%20DURATION%201d",
        ),
    ] {
        let r = s.request(method, path, &headers, body.as_bytes());
        assert_status(&r, 200);
        assert_eq!(r.json(), json!({"results": [{"statement_id": 0}]}));
    }
    let r = s.request(
        "POST",
        "/query?q=CREATE+DATABASE+a;CREATE+DATABASE+b",
        &[],
        b"",
    );
    assert_eq!(
        r.json(),
        json!({"results": [{"statement_id": 0}, {"statement_id": 1}]})
    );
    let r = s.request("GET", "/query?q=SELECT+*+FROM+m", &[], b"");
    assert_status(&r, 400);
    let m = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        m.starts_with("the perfsink relay answers only CREATE DATABASE on /query")
            && m.contains("\"relay_misc\"")
            && m.ends_with("\"SELECT * FROM m\""),
        "{m}"
    );
    let r = s.request("GET", "/query", &[], b"");
    assert_eq!(
        r.json(),
        json!({"error": "missing required parameter \"q\""})
    );

    assert_status(&s.write("ns", &format!("h v=1 {T0}\nbad\n")), 400);
    s.flush();
    let r = s.request("GET", "/health", &[], b"");
    assert_status(&r, 200);
    let h = r.json();
    assert_eq!(h["status"], json!("pass"));
    assert_eq!(h["name"], json!("perfsink-relay"));
    assert_eq!(h["database"], json!("relay_misc"));
    assert_eq!(h["relay"]["lines_accepted"], json!(1));
    assert_eq!(h["relay"]["lines_rejected"], json!(1));
    assert_eq!(h["sink"]["written"], json!(1));
    assert_eq!(h["sink"]["rejected_invalid"], json!(1));

    let r = s.request("GET", "/nope", &[], b"");
    assert_status(&r, 404);
    let r = s.request("GET", "/write", &[], b"");
    assert_status(&r, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_status(&s.request("DELETE", "/query", &[], b""), 405);
    s.finish();
}

/// k6's built-in `influxdb` output (influxdb1-client v2): `CREATE DATABASE` through
/// `POST /query` with the parameters in the URL and an empty Content-Type, then
/// `POST /write?consistency=&db=..&precision=&rp=` with ns lines.
#[test]
fn k6_influxdb_output_request_sequence() {
    let s = setup("relay_k6", "", options());
    let ua = ("User-Agent", "k6");
    let q = http::encode_query(&[
        ("db", ""),
        ("params", "{}"),
        ("q", "CREATE DATABASE \"relay_k6\""),
    ]);
    let r = s.request(
        "POST",
        &format!("/query?{q}"),
        &[("Content-Type", ""), ua],
        b"",
    );
    assert_status(&r, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("x-influxdb-version").is_some());
    assert_eq!(r.json(), json!({"results": [{"statement_id": 0}]}));
    let body = format!(
        "http_req_duration,expected_response=true,method=GET,name=http://test.k6.io/,\
         proto=HTTP/1.1,scenario=default,status=200 url=\"http://test.k6.io/\",value=105.312 {t}\n\
         http_reqs,expected_response=true,method=GET,name=http://test.k6.io/,proto=HTTP/1.1,\
         scenario=default,status=200 url=\"http://test.k6.io/\",value=1 {t}\n\
         vus value=10 {}\n",
        T0,
        t = T0 + 123_456_789
    );
    let r = s.request(
        "POST",
        "/write?consistency=&db=relay_k6&precision=&rp=",
        &[("Content-Type", ""), ua],
        body.as_bytes(),
    );
    assert_status(&r, 204);
    assert!(r.header("x-influxdb-version").is_some());
    s.flush();
    assert_eq!(
        s.rows("SELECT value, url, status, method FROM http_req_duration"),
        [vec![
            json!(T0 + 123_456_789),
            json!(105.312),
            json!("http://test.k6.io/"),
            json!("200"),
            json!("GET")
        ]]
    );
    assert_eq!(
        s.rows("SELECT value FROM http_reqs"),
        [vec![json!(T0 + 123_456_789), json!(1)]]
    );
    assert_eq!(
        s.rows("SELECT value FROM vus"),
        [vec![json!(T0), json!(10)]]
    );
    s.finish();
}

/// The lines JMeter's built-in `InfluxdbBackendListenerClient` sends (jmeter.md §2.2): no
/// `precision` parameter, ms timestamps with `000000` appended, unsorted tags, escaped spaces,
/// numbers without `i` (floats), an `events` annotation with a string field.
#[test]
fn jmeter_listener_lines() {
    let s = setup("relay_jmeter", "", options());
    let body = "jmeter,application=app,transaction=all,statut=all count=17,countError=1,avg=232.82352941176472,min=5.0,max=512.0,hit=17,sb=1024,rb=20480,pct90.0=400.0,pct95.0=450.5,pct99.0=500.0 1700000000123000000
jmeter,application=app,transaction=Home\\ Page,statut=ok count=16,avg=200.5,min=5.0,max=400.0,hit=17,sb=1024,rb=20480,pct90.0=380.0 1700000000123000000
jmeter,application=app,transaction=Home\\ Page,responseCode=500,responseMessage=Internal\\ Server\\ Error count=1 1700000000124000000
jmeter,application=app,transaction=internal minAT=1,maxAT=5,meanAT=3,startedT=5,endedT=0 1700000000125000000
events,application=app,title=ApacheJMeter text=\"Test name started\" 1700000000000000000
";
    let r = s.request(
        "POST",
        "/write?db=jmeter",
        &[("Content-Type", "text/plain; charset=utf-8")],
        body.as_bytes(),
    );
    assert_status(&r, 204);
    s.flush();
    let q = "SELECT \"count\", countError, avg, \"min\", \"max\", hit, sb, rb, \
             \"pct90.0\", \"pct95.0\", \"pct99.0\" \
             FROM jmeter WHERE transaction = 'all' AND statut = 'all'";
    assert_eq!(
        s.rows(q),
        [vec![
            json!(T0 + 123_000_000),
            json!(17),
            json!(1),
            json!(232.82352941176472),
            json!(5),
            json!(512),
            json!(17),
            json!(1024),
            json!(20480),
            json!(400),
            json!(450.5),
            json!(500)
        ]]
    );
    assert_eq!(
        s.rows(
            "SELECT \"count\", avg FROM jmeter WHERE transaction = 'Home Page' AND statut = 'ok'"
        ),
        [vec![json!(T0 + 123_000_000), json!(16), json!(200.5)]]
    );
    assert_eq!(
        s.rows("SELECT \"count\", responseMessage FROM jmeter WHERE responseCode = '500'"),
        [vec![
            json!(T0 + 124_000_000),
            json!(1),
            json!("Internal Server Error")
        ]]
    );
    assert_eq!(
        s.rows("SELECT maxAT FROM jmeter WHERE transaction = 'internal'"),
        [vec![json!(T0 + 125_000_000), json!(5)]]
    );
    assert_eq!(
        s.rows("SELECT text, title FROM events"),
        [vec![
            json!(T0),
            json!("Test name started"),
            json!("ApacheJMeter")
        ]]
    );
    let types = s.rows("SHOW FIELD KEYS FROM jmeter");
    assert!(types.iter().all(|r| r[1] == json!("float")), "{types:?}");
    s.finish();
}

#[test]
fn global_tags_are_merged_and_own_tags_win() {
    let s = setup(
        "relay_tags",
        "PERFSINK_TAGS=testid=run 1,host=relayhost",
        options(),
    );
    let body = format!("gt,host=mine,z=1 v=1 {T0}\ngt v=2 {}\n", T0 + 1);
    assert_status(&s.write("ns", &body), 204);
    s.flush();
    assert_eq!(
        s.rows("SELECT v, host, testid, z FROM gt"),
        [
            vec![
                json!(T0),
                json!(1),
                json!("mine"),
                json!("run 1"),
                json!("1")
            ],
            vec![
                json!(T0 + 1),
                json!(2),
                json!("relayhost"),
                json!("run 1"),
                Value::Null
            ],
        ]
    );
    s.finish();
}

#[test]
fn refuses_a_remote_address_unless_allowed() {
    let sink = Arc::new(Sink::from_kv("").unwrap());
    let remote = RelayOptions {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..RelayOptions::default()
    };
    let e = Relay::start(sink.clone(), remote.clone()).err().unwrap();
    assert!(e.to_string().contains("not a loopback address"), "{e}");
    let relay = Relay::start(
        sink,
        RelayOptions {
            allow_remote: true,
            ..remote
        },
    )
    .unwrap();
    assert_ne!(relay.addr().port(), 0);
}

/// A disabled sink (no `INFLUXDB_URL`) still checks lines, and a closed one says so.
#[test]
fn disabled_and_closed_sinks() {
    let sink = Arc::new(Sink::from_kv("").unwrap());
    let mut relay = Relay::start(sink.clone(), options()).unwrap();
    let url = relay.url();
    let r = http::post(
        &format!("{url}/write?db=x"),
        "text/plain",
        b"m v=1 1\nm v=x 2\n",
    )
    .unwrap();
    assert_status(&r, 400);
    assert!(r.text().contains("dropped=1"), "{}", r.text());
    sink.close();
    let r = http::post(&format!("{url}/write?db=x"), "text/plain", b"m v=1 1\n").unwrap();
    assert_status(&r, 503);
    assert!(r.text().contains("shutting down"), "{}", r.text());
    relay.shutdown(Duration::from_secs(1));
    assert!(http::get(&format!("{url}/ping")).is_err());
}

/// `perfsink serve` as a user runs it: prints its address, relays, stops on SIGTERM with the
/// delivery report.
#[test]
fn serve_binary_relays_until_sigterm() {
    let db = "relay_binary";
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_perfsink"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--quiet"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("INFLUXDB_URL", format!("{}/{db}", influx().url()))
        .env("PERFSINK_FLUSH_INTERVAL_MS", "50")
        .env("PERFSINK_SELF_METRICS_INTERVAL_MS", "0")
        .env("PERFSINK_RELAY_TOKEN", "tok")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(
        first.starts_with("perfsink relay listening on http://127.0.0.1:")
            && first.contains(&format!("database \"{db}\""))
            && first.contains("(token required)"),
        "{first}"
    );
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap()
        .to_string();
    let auth = [("Authorization", "Token tok")];
    let body = format!(
        "bin,t=a v=1 {T0}\nbin,t=b v=2 {}\nbin v=3 {}\n",
        T0 + 1,
        T0 + 2
    );
    let r = http::request(
        "POST",
        &format!("{url}/write?db={db}"),
        &auth,
        body.as_bytes(),
    )
    .unwrap();
    assert_status(&r, 204);
    let r = http::request(
        "POST",
        &format!("{url}/write?db={db}"),
        &[],
        body.as_bytes(),
    )
    .unwrap();
    assert_status(&r, 401);

    Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "perfsink serve did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(
        stderr.contains(
            "perfsink relay: 2 requests, 3 lines received (3 taken, 0 malformed, 0 not taken)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("perfsink: accepted 3, written 3, rejected 0"),
        "{stderr}"
    );
    assert_eq!(influx().count(db, "bin"), 3);
    assert_eq!(
        influx().query_rows(db, "SELECT v FROM bin WHERE t = 'b'"),
        [vec![json!(T0 + 1), json!(2)]]
    );

    // Without INFLUXDB_URL there is nothing to relay to.
    let out = Command::new(env!("CARGO_BIN_EXE_perfsink"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("INFLUXDB_URL is not set"));
}

/// `perfsink serve` with `args`, fed `bodies` one request each, stopped with SIGTERM: its exit
/// status and stderr.
fn serve_and_stop(db: &str, args: &[&str], bodies: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_perfsink"))
        .args(["serve", "--listen", "127.0.0.1:0", "--quiet"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("INFLUXDB_URL", format!("{}/{db}", influx().url()))
        .env("PERFSINK_FLUSH_INTERVAL_MS", "50")
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
    for body in bodies {
        let r = http::post(
            &format!("{url}/write?db={db}"),
            "text/plain",
            body.as_bytes(),
        )
        .unwrap();
        assert_status(&r, 204);
        // One batch per body: the second one meets the field type the first one created.
        std::thread::sleep(Duration::from_millis(300));
    }
    Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (child.wait().unwrap(), stderr)
}

/// A line InfluxDB refuses (a field type conflict) is counted, not dropped: the relay exits 0,
/// unless `--fail-on-loss` or `PERFSINK_FAIL_ON_LOSS=true` asks for every loss to fail it.
#[test]
fn serve_fails_on_refused_lines_only_with_fail_on_loss() {
    let bodies = [
        &format!("conflict v=1 {T0}\n") as &str,
        &format!("conflict v=\"text\" {}\n", T0 + 1),
    ];
    let (status, stderr) = serve_and_stop("relay_loss_default", &[], &bodies);
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("rejected 1 "), "{stderr}");
    let (status, stderr) = serve_and_stop("relay_loss_flag", &["--fail-on-loss"], &bodies);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("rejected 1 "), "{stderr}");
    assert_eq!(influx().count("relay_loss_flag", "conflict"), 1);
}

/// CPU time of the calling thread (Linux `schedstat`), in ns.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Release-mode measurement of parse-and-forward on one core (not a pass/fail test):
/// `cargo test --release --test relay -- --ignored --nocapture throughput`.
#[test]
#[ignore]
fn throughput() {
    use std::net::TcpListener;
    // A null InfluxDB: answers 204 to every request.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(stream.try_clone().unwrap());
                let mut w = stream;
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.to_ascii_lowercase();
                        if let Some(v) = l.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    w.write_all(b"HTTP/1.1 204 No Content\r\nX-Influxdb-Version: 1.8\r\n\r\n")
                        .unwrap();
                }
            });
        }
    });
    // k6-like lines of ~166 bytes, 5000 per body as k6 sends a second's worth.
    let mut body = Vec::new();
    let per_body = 5000;
    for i in 0..per_body {
        body.extend_from_slice(
            format!(
                "http_req_duration,expected_response=true,method=GET,name=http://test.k6.io/,\
                 proto=HTTP/1.1,scenario=default,status=200 url=\"http://test.k6.io/\",\
                 value={}.{} {}\n",
                100 + i % 50,
                i % 1000,
                T0 + i as i64 * 1000
            )
            .as_bytes(),
        );
    }
    let line_len = body.len() / per_body;
    let rounds = 200;
    let total = (rounds * per_body) as f64;

    // The machine may be shared: report the CPU time of this thread, not only wall time.
    let (t, cpu) = (Instant::now(), thread_cpu_ns());
    let mut n = 0;
    for _ in 0..rounds {
        n += perfsink::lineproto::lines(&body)
            .filter(|(_, r)| r.is_ok())
            .count();
    }
    let (wall, cpu) = (
        t.elapsed().as_secs_f64(),
        (thread_cpu_ns() - cpu) as f64 / 1e9,
    );
    eprintln!(
        "{line_len} B lines: parse only {:.2} M lines/s per CPU second ({:.2} M/s wall)",
        n as f64 / cpu / 1e6,
        n as f64 / wall / 1e6
    );

    for (label, extra) in [
        ("ns -> ns", ""),
        (
            "ns -> ms, 2 global tags",
            "INFLUXDB_PRECISION=ms;PERFSINK_TAGS=testid=t1,host=h1",
        ),
        ("s -> ns", ""),
        (
            "ns -> ns, PERFSINK_MODE=aggregate",
            "PERFSINK_MODE=aggregate",
        ),
        ("ns -> ns, PERFSINK_MODE=both", "PERFSINK_MODE=both"),
    ] {
        // A queue that holds everything, so that ingest never waits for the writer.
        let kv = format!(
            "INFLUXDB_URL=http://{addr}/k6;PERFSINK_CREATE_DATABASE=false;\
             PERFSINK_SELF_METRICS_INTERVAL_MS=0;PERFSINK_QUEUE_CAPACITY=1024;{extra}"
        );
        let precision = if label.starts_with("s ") {
            perfsink::lineproto::InputPrecision::S
        } else {
            perfsink::lineproto::InputPrecision::Ns
        };
        let body = if label.starts_with("s ") {
            String::from_utf8_lossy(&body)
                .lines()
                .map(|l| format!("{}\n", &l[..l.len() - 9]))
                .collect::<String>()
                .into_bytes()
        } else {
            body.clone()
        };
        let sink = Sink::from_kv(&kv).unwrap();
        let series = perfsink::sources::relay::SampleSeries::default();
        let (t, cpu) = (Instant::now(), thread_cpu_ns());
        for _ in 0..rounds {
            let i = perfsink::sources::relay::ingest_with(&sink, &series, &body, precision);
            assert_eq!(i.accepted, per_body);
        }
        let (wall, cpu) = (
            t.elapsed().as_secs_f64(),
            (thread_cpu_ns() - cpu) as f64 / 1e9,
        );
        sink.flush(Duration::from_secs(120)).unwrap();
        let delivered = t.elapsed().as_secs_f64();
        eprintln!(
            "{line_len} B lines, {label}: parse + forward {:.2} M lines/s per CPU second \
             ({:.2} M/s wall); delivered to a null server (gzip) at {:.2} M lines/s wall",
            total / cpu / 1e6,
            total / wall / 1e6,
            total / delivered / 1e6
        );
        let stats = sink.close().stats;
        if label.contains("PERFSINK_MODE") {
            assert_eq!(stats.aggregated, total as u64);
        } else {
            assert_eq!(stats.written, total as u64);
        }
    }

    // Through HTTP, one client connection per request.
    let sink = Arc::new(
        Sink::from_kv(&format!(
            "INFLUXDB_URL=http://{addr}/k6;PERFSINK_CREATE_DATABASE=false;\
             PERFSINK_SELF_METRICS_INTERVAL_MS=0"
        ))
        .unwrap(),
    );
    let relay = Relay::start(sink.clone(), options()).unwrap();
    let url = format!("{}/write?db=k6", relay.url());
    let t = Instant::now();
    let posts = 100;
    for _ in 0..posts {
        let r = http::post(&url, "text/plain", &body).unwrap();
        assert_eq!(r.status, 204);
    }
    eprintln!(
        "through HTTP (sequential POSTs of {per_body} lines): {:.2} M lines/s",
        (posts * per_body) as f64 / t.elapsed().as_secs_f64() / 1e6
    );
}

// ------------------------------------------------------------------------------------------
// Limits and health (issue 12): the in-flight body cap, the body timeout, requests whose
// client went away, `/health` against a stopped, restarted and credential-refusing InfluxDB,
// and the 503's cause.

/// `GET /health` of `relay`: (HTTP status, JSON).
fn health(relay: &Relay) -> (u16, Value) {
    let r = http::get(&format!("{}/health", relay.url())).unwrap();
    (r.status, r.json())
}

/// Polls `/health` until `status` or `limit`; returns the last answer.
fn wait_health(relay: &Relay, status: &str, limit: Duration) -> (u16, Value) {
    let started = Instant::now();
    loop {
        let h = health(relay);
        if h.1["status"] == json!(status) || started.elapsed() > limit {
            return h;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A raw request: `head` (without the blank line) and the first `body` bytes; errors of a
/// server that answers and closes before reading everything are ignored. The answer as text.
fn raw_exchange(relay: &Relay, head: &str, body: &[u8]) -> String {
    let mut stream = TcpStream::connect(relay.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(format!("{head}\r\n\r\n").as_bytes());
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// `n` distinct lines of `measurement` (one series per `i % 10`, distinct timestamps).
fn lines(measurement: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{measurement},s={} v={i}i {}\n", i % 10, T0 + i as i64))
        .collect()
}

/// The bodies of requests in progress together hold at most `max_inflight_bytes`: while a
/// slow request holds 600 kB of 1 MB, another that would go past it gets a 503 with
/// `Retry-After`, by its `Content-Length` or while its chunks arrive; once the slow one is
/// done, the same size fits again. (Before: every request could
/// hold its own `max_body_bytes`, 16 x 127 MiB = 2 GiB.)
#[test]
fn request_bodies_in_progress_share_one_memory_cap() {
    let s = setup(
        "relay_inflight",
        "",
        RelayOptions {
            max_body_bytes: 1_000_000,
            max_inflight_bytes: 1_000_000,
            ..options()
        },
    );
    let first = lines("cap", 20_000);
    let first = &first[..first[..600_000].rfind('\n').unwrap() + 1];
    let head = |len: usize| {
        format!(
            "POST /write?db={} HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\nConnection: close",
            s.db
        )
    };
    // The first request sends its head and a sixth of its body, then waits.
    let mut slow = TcpStream::connect(s.relay.addr()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.write_all(format!("{}\r\n\r\n", head(first.len())).as_bytes())
        .unwrap();
    slow.write_all(&first.as_bytes()[..100_000]).unwrap();
    let started = Instant::now();
    while s.relay.stats().inflight_bytes < first.len() as u64 {
        assert!(started.elapsed() < Duration::from_secs(10), "not reserved");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Declared: refused before reading.
    let answer = raw_exchange(&s.relay, &head(500_000), b"");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1") || answer.contains("retry-after: 1"));
    assert!(answer.contains("--max-inflight-bytes"), "{answer}");
    // Chunked: refused when its chunks outgrow the room left.
    let chunk = "x".repeat(300_000);
    let chunked = format!(
        "POST /write?db={} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close",
        s.db
    );
    let body = format!("{:x}\r\n{chunk}\r\n1\r\nx\r\n0\r\n\r\n", chunk.len());
    let answer = raw_exchange(&s.relay, &chunked, body.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    // The first request ends: taken; the room is back.
    slow.write_all(&first.as_bytes()[100_000..]).unwrap();
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    let second = lines("cap2", 20_000);
    let second = &second[..second[..500_000].rfind('\n').unwrap() + 1];
    assert_status(&s.write("ns", second), 204);
    let h = health(&s.relay).1;
    assert_eq!(h["relay"]["inflight_bytes"], json!(0), "{h}");
    assert_eq!(h["relay"]["refused_busy"], json!(2), "{h}");
    s.flush();
    assert_eq!(
        influx().count(&s.db, "cap") + influx().count(&s.db, "cap2"),
        (first.lines().count() + second.lines().count()) as u64
    );
    let (relay, _) = s.finish();
    assert_eq!((relay.refused, relay.refused_busy), (2, 2));
}

/// A body that stalls is a 408 after `body_timeout`, and its memory is given back.
#[test]
fn a_stalled_body_times_out() {
    let s = setup(
        "relay_slow_body",
        "",
        RelayOptions {
            body_timeout: Duration::from_millis(300),
            ..options()
        },
    );
    let started = Instant::now();
    let answer = raw_exchange(
        &s.relay,
        &format!(
            "POST /write?db={} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nConnection: close",
            s.db
        ),
        b"slow v=1 1",
    );
    let took = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("--body-timeout-ms"), "{answer}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let (relay, report) = s.finish();
    assert_eq!((relay.refused, relay.inflight_bytes), (1, 0));
    assert_eq!(report.stats.accepted, 0);
    assert_eq!(
        RelayOptions::default().body_timeout,
        Duration::from_secs(10),
        "the documented default"
    );
}

/// A client that goes away while the relay processes its body (after the body was read, as a
/// client whose own timeout ran out): its lines are taken (the sink does not undo them) and
/// counted by the relay too. (Before: the sink counted them, the relay's counters did not.)
#[test]
fn lines_of_a_client_that_went_away_are_counted() {
    let s = setup("relay_gone", "", options());
    let n = 300_000;
    let body = lines("gone", n);
    let mut stream = TcpStream::connect(s.relay.addr()).unwrap();
    stream
        .write_all(
            format!(
                "POST /write?db={} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                s.db,
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    // The body is read and being parsed (its bytes are counted before parsing starts): the
    // client leaves now, without its answer.
    let started = Instant::now();
    while s.relay.stats().bytes_received == 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "body not read");
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(stream);
    let gone_at = s.sink.stats().accepted;
    while s.sink.stats().accepted < n as u64 || s.relay.stats().writes == 0 {
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("the client left with {gone_at} of {n} lines taken");
    assert!(
        gone_at < n as u64,
        "the body was processed before the client left: this run did not test a client that \
         went away during processing"
    );
    s.flush();
    assert_eq!(influx().count(&s.db, "gone"), n as u64);
    let (relay, report) = s.finish();
    assert_eq!(report.stats.accepted, n as u64);
    assert_eq!(
        (relay.writes, relay.lines_accepted),
        (1, n as u64),
        "{relay:?}"
    );
}

/// `/health` follows InfluxDB: `pass`; `warn` with the write error while it is stopped (the
/// lines are held); `pass` again with `last_error` cleared once it is back, every line
/// delivered. Then, stopped again, a relay whose sink may hold little: its 503 says InfluxDB
/// and the memory cap are the cause (not the queue's capacity), and `/health` is `fail` (503)
/// while lines are dropped. (Before: always `pass`, the old error kept, "raise
/// PERFSINK_QUEUE_CAPACITY".)
#[test]
fn health_follows_influxdb_down_and_back_and_the_503_names_the_cause() {
    let mut own = Influx::start();
    let base = format!(
        "INFLUXDB_URL={};INFLUXDB_DB=relay_health;PERFSINK_FLUSH_INTERVAL_MS=50;\
         PERFSINK_RETRY_INITIAL_MS=50;PERFSINK_RETRY_MAX_MS=300;\
         PERFSINK_SELF_METRICS_INTERVAL_MS=0;PERFSINK_TIMEOUT_MS=2000;\
         PERFSINK_CONNECT_TIMEOUT_MS=300",
        own.url()
    );
    let sink = Arc::new(Sink::from_kv(&format!("{base};PERFSINK_CLOSE_TIMEOUT_MS=5000")).unwrap());
    let relay = Relay::start(sink.clone(), options()).unwrap();
    let write = |relay: &Relay, body: &str| {
        http::request(
            "POST",
            &format!("{}/write?db=relay_health", relay.url()),
            &[],
            body.as_bytes(),
        )
        .unwrap()
    };
    assert_status(&write(&relay, &lines("up", 10)), 204);
    sink.flush(FLUSH).unwrap();
    let (code, h) = health(&relay);
    assert_eq!(
        (code, &h["status"], &h["last_error"]),
        (200, &json!("pass"), &Value::Null),
        "{h}"
    );

    own.stop();
    let held = lines("held", 10).replace("held,", "held,phase=down,");
    assert_status(&write(&relay, &held), 204);
    let (code, h) = wait_health(&relay, "warn", Duration::from_secs(10));
    assert_eq!((code, &h["status"]), (200, &json!("warn")), "{h}");
    let error = h["last_error"].as_str().unwrap_or_default().to_string();
    assert!(error.starts_with("write failed"), "{h}");
    assert!(h["message"].as_str().unwrap().contains("retried"), "{h}");

    own.start_again();
    let (code, h) = wait_health(&relay, "pass", Duration::from_secs(15));
    assert_eq!(
        (code, &h["status"], &h["last_error"]),
        (200, &json!("pass"), &Value::Null),
        "{h}"
    );
    sink.flush(FLUSH).unwrap();
    assert_eq!(own.count("relay_health", "held"), 10);
    drop(relay);
    assert_eq!(sink.close().stats.written, 20);

    // Stopped again; a sink that holds at most 64 KiB and queues 2 batches of 100 lines. A
    // producer waits up to 300 ms for room in the queue, so the queue is full only when the
    // writer stopped taking from it.
    own.stop();
    let sink = Arc::new(
        Sink::from_kv(&format!(
            "{base};PERFSINK_CLOSE_TIMEOUT_MS=300;PERFSINK_MEMORY_MAX_BYTES=65536;\
             PERFSINK_QUEUE_CAPACITY=2;PERFSINK_BATCH_LINES=100;PERFSINK_QUEUE_POLICY=block;\
             PERFSINK_BLOCK_TIMEOUT_MS=300"
        ))
        .unwrap(),
    );
    let relay = Relay::start(sink.clone(), options()).unwrap();
    assert_status(&write(&relay, &lines("first", 1)), 204);
    let (_, h) = wait_health(&relay, "warn", Duration::from_secs(10));
    assert_eq!(h["status"], json!("warn"), "{h}");
    let body = lines("flood", 2000);
    let refused = (0..200)
        .map(|_| write(&relay, &body))
        .find(|r| r.status != 204)
        .expect("a sink holding 64 KiB takes 200 x 2000 lines while InfluxDB is down");
    assert_status(&refused, 503);
    assert_eq!(refused.header("retry-after"), Some("1"));
    let message = refused.json()["error"].as_str().unwrap().to_string();
    assert!(
        message.contains("InfluxDB is not taking writes")
            && message.contains("PERFSINK_MEMORY_MAX_BYTES=65536")
            && !message.contains("raise PERFSINK_QUEUE_CAPACITY"),
        "{message}"
    );
    let (code, h) = health(&relay);
    assert_eq!((code, &h["status"]), (503, &json!("fail")), "{h}");
    let error = h["last_error"].as_str().unwrap();
    assert!(
        error.contains("points are being dropped") && error.contains("queue full"),
        "{h}"
    );
    drop(relay);
    sink.close();
}

/// InfluxDB refuses the credentials (a wrong token, 401): writing stops, `/health` is `fail`
/// (503) with that error, and stays so.
#[test]
fn health_fails_when_influxdb_refuses_the_credentials() {
    let secured = Influx::start_1_8_with_auth("admin", "pw");
    secured.create_db("d");
    let sink = Arc::new(
        Sink::from_kv(&format!(
            "INFLUXDB_URL={};INFLUXDB_TOKEN=admin:n0tThePw;INFLUXDB_ORG=o;INFLUXDB_BUCKET=d;{FAST}",
            secured.url()
        ))
        .unwrap(),
    );
    let relay = Relay::start(sink.clone(), options()).unwrap();
    let (code, h) = health(&relay);
    assert_eq!((code, &h["status"]), (200, &json!("pass")), "{h}");
    let r = http::request(
        "POST",
        &format!("{}/api/v2/write?bucket=d", relay.url()),
        &[],
        lines("denied", 5).as_bytes(),
    )
    .unwrap();
    assert_status(&r, 204);
    let (code, h) = wait_health(&relay, "fail", Duration::from_secs(10));
    assert_eq!((code, &h["status"]), (503, &json!("fail")), "{h}");
    let error = h["last_error"].as_str().unwrap();
    assert!(error.contains("refused the credentials"), "{h}");
    assert!(
        !h.to_string().contains("n0tThePw"),
        "no secret in /health: {h}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(health(&relay).1["status"], json!("fail"));
    drop(relay);
    sink.close();
}
