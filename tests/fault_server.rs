//! The writer against a loopback HTTP server of the test's own that answers what the test
//! scripts (500/503/429 with Retry-After, 413, 400/422 partial writes, 401/403, hangups, slow
//! answers): retries, splitting, counters, errors, and the shape of the requests.

mod common;

use std::time::{Duration, Instant};

use common::{http, FaultServer, Request, Resp};
use perfsink::{Error, Field, FieldValue, Point, Sink, Tag};

const T0: i64 = 1_700_000_000_000_000_000;
const FLUSH: Duration = Duration::from_secs(10);

/// Fast retries, no self-metrics, no database creation and no version probe (which would take
/// the first scripted answer), one request at a time so the script is consumed in a known order.
const FAST: &str = "INFLUXDB_VERSION=1;PERFSINK_FLUSH_INTERVAL_MS=50;PERFSINK_RETRY_INITIAL_MS=50;\
                    PERFSINK_RETRY_MAX_MS=500;PERFSINK_SELF_METRICS_INTERVAL_MS=0;\
                    PERFSINK_CREATE_DATABASE=false;PERFSINK_CONCURRENCY=1;\
                    PERFSINK_CLOSE_TIMEOUT_MS=3000;PERFSINK_TIMEOUT_MS=5000";

fn open(srv: &FaultServer, extra: &str) -> Sink {
    let kv = format!("INFLUXDB_URL={};{FAST};{extra}", srv.url());
    Sink::from_kv(&kv).unwrap_or_else(|e| panic!("{kv}: {e}"))
}

/// Records `n` points `m,k=v v=<i>i <T0+i>` and returns their lines as InfluxDB should get them.
fn record_n(sink: &Sink, n: i64) -> Vec<String> {
    (0..n)
        .map(|i| {
            sink.record(
                "m",
                &[Tag::new("k", "v")],
                &[Field::new("v", FieldValue::Int(i))],
                T0 + i,
            )
            .unwrap();
            format!("m,k=v v={i}i {}", T0 + i)
        })
        .collect()
}

/// All lines of the requests answered with success, in arrival order.
fn lines_of(reqs: &[Request]) -> Vec<String> {
    reqs.iter().flat_map(|r| r.lines()).collect()
}

fn gap(a: &Request, b: &Request) -> Duration {
    b.received_at.duration_since(a.received_at)
}

/// Waits a little and checks that no request beyond `n` arrives.
fn assert_no_more_requests(srv: &FaultServer, n: usize) {
    assert!(
        !srv.wait_for_requests(n + 1, Duration::from_millis(400)),
        "unexpected request: {:?}",
        srv.requests().last().map(|r| r.body_str())
    );
}

#[test]
fn retry_after_on_503_is_honoured() {
    let srv = FaultServer::start(vec![Resp::status(503)
        .header("Retry-After", "1")
        .body("busy")]);
    let sink = open(&srv, "");
    let lines = record_n(&sink, 10);
    let t = Instant::now();
    sink.flush(FLUSH).unwrap();
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2);
    assert!(
        gap(&reqs[0], &reqs[1]) >= Duration::from_secs(1),
        "{:?}",
        gap(&reqs[0], &reqs[1])
    );
    assert_eq!(reqs[0].lines(), lines);
    assert_eq!(reqs[1].lines(), lines, "the same batch is sent again");
    let s = sink.stats();
    assert_eq!(
        (s.written, s.retried, s.requests, s.dropped),
        (10, 1, 2, 0),
        "{s:?}"
    );
    let e = sink.last_error().unwrap();
    assert!(e.contains("503") && e.contains("busy"), "{e}");
    assert_no_more_requests(&srv, 2);
}

#[test]
fn retries_500_and_429_with_backoff_and_retry_after() {
    let srv = FaultServer::start(vec![
        Resp::influx_error(500, "timeout"),
        Resp::status(429).header("Retry-After", "1"),
        Resp::status(502),
        Resp::status(204),
    ]);
    let sink = open(&srv, "");
    let lines = record_n(&sink, 5);
    sink.flush(FLUSH).unwrap();
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 4);
    // Backoff after the first failure: at least half of the 50 ms initial delay.
    assert!(gap(&reqs[0], &reqs[1]) >= Duration::from_millis(25));
    assert!(
        gap(&reqs[1], &reqs[2]) >= Duration::from_secs(1),
        "Retry-After of the 429"
    );
    assert!(reqs.iter().all(|r| r.lines() == lines));
    let s = sink.stats();
    assert_eq!(
        (s.written, s.retried, s.requests, s.rejected),
        (5, 3, 4, 0),
        "{s:?}"
    );
    sink.close();
}

#[test]
fn hangups_and_request_timeouts_are_retried() {
    let srv = FaultServer::start(vec![
        Resp::hangup(),
        Resp::status(204).delay(Duration::from_secs(3)),
        Resp::status(204),
    ]);
    let sink = open(&srv, "PERFSINK_TIMEOUT_MS=300");
    let lines = record_n(&sink, 3);
    let t = Instant::now();
    sink.flush(FLUSH).unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "the request timeout cut the slow answer"
    );
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 3);
    assert!(reqs.iter().all(|r| r.lines() == lines));
    let s = sink.stats();
    assert_eq!((s.written, s.retried), (3, 2), "{s:?}");
    let e = sink.last_error().unwrap();
    assert!(e.contains(&srv.url()), "names the server: {e}");
}

#[test]
fn too_large_splits_the_batch_until_it_fits() {
    let srv = FaultServer::start(vec![
        Resp::status(413).body("Request Entity Too Large"),
        Resp::status(413).body("Request Entity Too Large"),
    ]);
    let sink = open(&srv, "");
    let lines = record_n(&sink, 40);
    sink.flush(FLUSH).unwrap();
    let reqs = srv.requests();
    let sizes: Vec<usize> = reqs.iter().map(|r| r.lines().len()).collect();
    assert_eq!(sizes, [40, 20, 10, 10, 20]);
    assert_eq!(lines_of(&reqs[2..]), lines, "every line once, in order");
    let s = sink.stats();
    assert_eq!(
        (s.written, s.rejected_server, s.retried, s.requests),
        (40, 0, 0, 5),
        "{s:?}"
    );
}

#[test]
fn a_single_line_too_large_is_rejected_not_retried() {
    let srv = FaultServer::start(vec![Resp::status(413)]);
    let sink = open(&srv, "");
    record_n(&sink, 1);
    sink.flush(FLUSH).unwrap();
    assert_no_more_requests(&srv, 1);
    let s = sink.stats();
    assert_eq!(
        (s.written, s.rejected_server, s.retried),
        (0, 1, 0),
        "{s:?}"
    );
    assert!(sink.last_error().unwrap().contains("413"));
    // The writer goes on with the next points.
    record_n(&sink, 2);
    sink.flush(FLUSH).unwrap();
    assert_eq!(srv.requests()[1].lines().len(), 2);
    assert_eq!(sink.stats().written, 2);
}

/// A raw newline inside a string field is not the end of a line: a split must not cut there.
#[test]
fn split_never_cuts_inside_a_string_field() {
    let srv = FaultServer::start(vec![Resp::status(413)]);
    let sink = open(&srv, "");
    let values = ["x\ny\nz", "one\ntwo", "p,q=r s\n", "plain"];
    let mut want = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let ts = T0 + i as i64;
        sink.record("m", &[], &[Field::new("s", FieldValue::Str(v))], ts)
            .unwrap();
        want.push(format!("m s=\"{v}\" {ts}\n"));
    }
    sink.flush(FLUSH).unwrap();
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 3, "one 413 and two halves");
    assert_eq!(reqs[0].body_str(), want.concat());
    // Each half holds whole points.
    assert_eq!(reqs[1].body_str(), want[..2].concat());
    assert_eq!(reqs[2].body_str(), want[2..].concat());
    let s = sink.stats();
    assert_eq!((s.written, s.rejected_server), (4, 0), "{s:?}");
}

/// A partial write whose `dropped=` cannot be trusted (InfluxDB 1.6 counts only the first
/// shard's refusals): the writer sends halves again until every line is in a request whose
/// answer is exact, and counts what was stored.
#[test]
fn an_untrusted_partial_write_is_bisected_down_to_the_refused_line() {
    let conflict = "partial write: field type conflict: input field \"v\" on measurement \"m\" \
                    is type float, already exists as type integer dropped=1";
    let srv = FaultServer::start(vec![
        Resp::influx_error(400, conflict), // lines 0..4
        Resp::status(204),                 // lines 0..2
        Resp::influx_error(400, conflict), // lines 2..4
        Resp::influx_error(400, conflict), // line 2
        Resp::status(204),                 // line 3
    ]);
    let sink = open(&srv, "");
    let lines = record_n(&sink, 4);
    sink.flush(FLUSH).unwrap();
    assert_no_more_requests(&srv, 5);
    let bodies: Vec<Vec<String>> = srv.requests().iter().map(|r| r.lines()).collect();
    assert_eq!(
        bodies,
        [
            &lines[..],
            &lines[..2],
            &lines[2..],
            &lines[2..3],
            &lines[3..]
        ]
    );
    let s = sink.stats();
    assert_eq!(
        (s.written, s.rejected_server, s.retried, s.queue_depth),
        (3, 1, 0, 0),
        "{s:?}"
    );
    let e = sink.last_error().unwrap();
    assert!(
        e.contains("field type conflict") && e.contains("1 line"),
        "{e}"
    );
}

/// InfluxDB 1.x lists every unparseable line, and says so only when all the others were
/// stored: that answer is exact, nothing is sent again.
#[test]
fn parse_errors_alone_are_counted_from_the_answer() {
    let msg = "partial write: unable to parse 'm bad': invalid field format\n\
               unable to parse 'm v=1 9223372036854775807': time outside range \
               -9223372036854775806 - 9223372036854775806 dropped=0";
    let srv = FaultServer::start(vec![json_error(400, msg)]);
    let sink = open(&srv, "");
    record_n(&sink, 10);
    sink.flush(FLUSH).unwrap();
    assert_no_more_requests(&srv, 1);
    let s = sink.stats();
    assert_eq!(
        (s.written, s.rejected_server, s.rejected, s.retried),
        (8, 2, 2, 0),
        "{s:?}"
    );
}

/// `{"error":msg}` without the `X-Influxdb-Error` header, which cannot hold a newline.
fn json_error(status: u16, msg: &str) -> Resp {
    Resp::status(status)
        .header("Content-Type", "application/json")
        .body(&serde_json::json!({ "error": msg }).to_string())
}

#[test]
fn a_bad_request_listing_every_line_rejects_the_whole_batch_at_once() {
    let msg = (0..4)
        .map(|i| format!("unable to parse 'm v={i}': missing field value"))
        .collect::<Vec<_>>()
        .join("\n");
    let srv = FaultServer::start(vec![json_error(400, &msg)]);
    let sink = open(&srv, "");
    record_n(&sink, 4);
    sink.flush(FLUSH).unwrap();
    assert_no_more_requests(&srv, 1);
    let s = sink.stats();
    assert_eq!(
        (s.written, s.rejected_server, s.retried),
        (0, 4, 0),
        "{s:?}"
    );
}

#[test]
fn v2_partial_write_422() {
    let refused = |dropped: u32| {
        Resp::status(422)
            .header("Content-Type", "application/json")
            .body(&format!(
                r#"{{"code":"unprocessable entity","message":"failure writing points to database: partial write: points beyond retention policy dropped={dropped}"}}"#
            ))
    };
    // 3 lines, 1 dropped: bisected; the second half says every line of it was dropped.
    let srv = FaultServer::start(vec![refused(1), Resp::status(204), refused(2)]);
    let sink = open(&srv, "INFLUXDB_TOKEN=t;INFLUXDB_ORG=o;INFLUXDB_BUCKET=b");
    record_n(&sink, 3);
    sink.flush(FLUSH).unwrap();
    assert_no_more_requests(&srv, 3);
    let s = sink.stats();
    assert_eq!(
        (s.written, s.rejected_server, s.retried),
        (1, 2, 0),
        "{s:?}"
    );
}

#[test]
fn unauthorized_401_stops_with_a_clear_error_and_no_token() {
    const TOKEN: &str = "SeCrEt-ToKeN-42";
    let srv = FaultServer::start(vec![]).with_default(
        Resp::status(401)
            .header("Content-Type", "application/json")
            .body(r#"{"code":"unauthorized","message":"unauthorized access"}"#),
    );
    let sink = open(&srv, &format!("INFLUXDB_TOKEN={TOKEN};INFLUXDB_ORG=o"));
    record_n(&sink, 5);
    let e = sink.flush(FLUSH).unwrap_err();
    let Error::Auth(msg) = &e else {
        panic!("expected Error::Auth, got {e:?}")
    };
    assert!(msg.contains(&srv.url()) && msg.contains("401"), "{msg}");
    // Later points are taken but not sent; every call says why.
    let id = sink.register_series("m", &[], "value").unwrap();
    let sub = sink.submit(&[Point::new(id, 1.0, T0)]);
    assert!(matches!(sub.first_error, Some(Error::Auth(_))), "{sub:?}");
    assert!(matches!(sink.flush(FLUSH), Err(Error::Auth(_))));
    assert_no_more_requests(&srv, 1);
    let r = sink.close();
    for text in [
        e.to_string(),
        format!("{e:?}"),
        r.to_string(),
        format!("{r:?}"),
        r.last_error.clone().unwrap(),
    ] {
        assert!(!text.contains(TOKEN), "token leaked: {text}");
    }
    assert_eq!(
        (
            r.stats.written,
            r.stats.dropped_undelivered,
            r.stats.retried
        ),
        (0, 6, 0),
        "{:?}",
        r.stats
    );
    assert_eq!(
        srv.requests()[0].header("authorization"),
        Some(&*format!("Token {TOKEN}"))
    );
}

#[test]
fn forbidden_403_on_v1_stops_without_the_password() {
    const PW: &str = "hunter2-pw";
    let srv = FaultServer::start(vec![]).with_default(Resp::influx_error(
        403,
        "\"admin\" user is not authorized to write to database \"k6\"",
    ));
    let sink = open(
        &srv,
        &format!("INFLUXDB_USERNAME=admin;INFLUXDB_PASSWORD={PW}"),
    );
    record_n(&sink, 2);
    let e = sink.flush(FLUSH).unwrap_err();
    assert!(
        matches!(&e, Error::Auth(m) if m.contains(&srv.url()) && m.contains("403")),
        "{e:?}"
    );
    assert!(!format!("{e} {e:?} {:?}", sink.last_error()).contains(PW));
    assert_no_more_requests(&srv, 1);
    assert_eq!(sink.close().stats.dropped_undelivered, 2);
}

#[test]
fn bodies_are_gzipped_by_default_and_plain_at_level_0() {
    for (level, gzipped) in [
        ("", true),
        ("PERFSINK_GZIP_LEVEL=0", false),
        ("PERFSINK_GZIP_LEVEL=9", true),
    ] {
        let srv = FaultServer::start(vec![]);
        let sink = open(&srv, level);
        let lines = record_n(&sink, 200);
        sink.flush(FLUSH).unwrap();
        let reqs = srv.requests();
        assert_eq!(reqs.len(), 1, "{level}");
        let r = &reqs[0];
        assert!(r.gzip_error.is_none(), "{:?}", r.gzip_error);
        assert_eq!(r.lines(), lines, "{level}");
        assert_eq!(
            r.header("content-encoding") == Some("gzip"),
            gzipped,
            "{level}"
        );
        if gzipped {
            assert!(
                r.raw_body_len * 4 < r.body.len(),
                "{} vs {}",
                r.raw_body_len,
                r.body.len()
            );
        } else {
            assert_eq!(r.raw_body_len, r.body.len());
        }
        assert_eq!(sink.stats().bytes_sent, r.raw_body_len as u64, "{level}");
    }
}

#[test]
fn v2_requests_use_api_v2_write_with_a_token() {
    let srv = FaultServer::start(vec![]);
    let sink = open(
        &srv,
        "INFLUXDB_TOKEN=my-token==;INFLUXDB_ORG=my org;INFLUXDB_BUCKET=perf/week;\
         INFLUXDB_PRECISION=ms",
    );
    sink.record(
        "m",
        &[],
        &[
            Field::new("u", FieldValue::UInt(u64::MAX)),
            Field::new("i", FieldValue::Int(-1)),
        ],
        T0 + 1_234_567,
    )
    .unwrap();
    sink.flush(FLUSH).unwrap();
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1, "no CREATE DATABASE on v2");
    let r = &reqs[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/api/v2/write")
    );
    assert_eq!(r.query_param("bucket"), Some("perf/week"));
    assert_eq!(r.query_param("org"), Some("my org"));
    assert_eq!(r.query_param("precision"), Some("ms"));
    assert_eq!(r.header("authorization"), Some("Token my-token=="));
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    // v2 has unsigned integers; the timestamp is in ms.
    assert_eq!(
        r.lines(),
        [format!("m u={}u,i=-1i {}", u64::MAX, T0 / 1_000_000 + 1)]
    );
}

#[test]
fn v1_requests_use_write_with_basic_auth_and_create_the_database() {
    let srv = FaultServer::start(vec![Resp::status(200)
        .header("Content-Type", "application/json")
        .body(r#"{"results":[{"statement_id":0}]}"#)]);
    let kv = format!(
        "INFLUXDB_URL={}/perf;INFLUXDB_RP=week;INFLUXDB_USERNAME=admin;INFLUXDB_PASSWORD=s3cr:et;\
         INFLUXDB_PRECISION=s;{FAST};PERFSINK_CREATE_DATABASE=true",
        srv.url()
    );
    let sink = Sink::from_kv(&kv).unwrap();
    sink.record(
        "m",
        &[],
        &[Field::new("u", FieldValue::UInt(7))],
        T0 + 999_999_999,
    )
    .unwrap();
    sink.flush(FLUSH).unwrap();
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 2, "CREATE DATABASE, then the write");
    let basic = http::basic_auth("admin", "s3cr:et");
    let create = &reqs[0];
    assert_eq!(
        (create.method.as_str(), create.path.as_str()),
        ("POST", "/query")
    );
    let form = http::parse_query(&create.body_str());
    assert_eq!(
        form,
        [("q".to_string(), "CREATE DATABASE \"perf\"".to_string())]
    );
    assert_eq!(create.header("authorization"), Some(basic.as_str()));
    let w = &reqs[1];
    assert_eq!((w.method.as_str(), w.path.as_str()), ("POST", "/write"));
    assert_eq!(w.query_param("db"), Some("perf"));
    assert_eq!(w.query_param("rp"), Some("week"));
    assert_eq!(w.query_param("precision"), Some("s"));
    assert_eq!(w.header("authorization"), Some(basic.as_str()));
    // No credentials in the URL; unsigned written as integer (1.x has no `u`).
    assert!(
        w.query.iter().all(|(k, _)| k != "u" && k != "p"),
        "{:?}",
        w.query
    );
    assert_eq!(w.lines(), [format!("m u=7i {}", T0 / 1_000_000_000)]);
}

#[test]
fn several_requests_are_in_flight_at_once() {
    let delay = Duration::from_millis(600);
    for (concurrency, overlapping) in [(4, true), (1, false)] {
        let srv = FaultServer::start(vec![]).with_default(Resp::status(204).delay(delay));
        let sink = open(
            &srv,
            &format!("PERFSINK_CONCURRENCY={concurrency};PERFSINK_BATCH_LINES=10"),
        );
        let lines = record_n(&sink, 40);
        let t = Instant::now();
        sink.flush(FLUSH).unwrap();
        let took = t.elapsed();
        let mut reqs = srv.requests();
        assert_eq!(reqs.len(), 4);
        assert!(reqs.iter().all(|r| r.lines().len() == 10));
        let mut got = lines_of(&reqs);
        got.sort();
        let mut want = lines.clone();
        want.sort();
        assert_eq!(got, want);
        reqs.sort_by_key(|r| r.received_at);
        let spread = gap(&reqs[0], &reqs[3]);
        let mut conns: Vec<usize> = reqs.iter().map(|r| r.conn_id).collect();
        conns.sort();
        conns.dedup();
        if overlapping {
            assert!(
                spread < delay / 2,
                "all four sent before the first answer: {spread:?}"
            );
            assert_eq!(conns.len(), 4, "one connection per request in flight");
            assert!(took < delay * 2, "{took:?}");
        } else {
            for w in reqs.windows(2) {
                assert!(gap(&w[0], &w[1]) >= delay, "one at a time");
            }
            assert_eq!(conns, [0], "one keep-alive connection");
            assert!(took >= delay * 4, "{took:?}");
        }
    }
}

#[test]
fn batches_are_cut_by_lines_and_bytes() {
    let srv = FaultServer::start(vec![]);
    let sink = open(
        &srv,
        "PERFSINK_BATCH_LINES=100;PERFSINK_FLUSH_INTERVAL_MS=60000",
    );
    let id = sink.register_series("m", &[], "value").unwrap();
    let pts: Vec<Point> = (0..1000)
        .map(|i| Point::new(id, i as f64, T0 + i))
        .collect();
    for chunk in pts.chunks(100) {
        sink.submit(chunk).into_result().unwrap();
    }
    // Full batches go out without a flush; the last one waits for the interval or a flush.
    assert!(srv.wait_for_requests(9, Duration::from_secs(5)));
    assert_no_more_requests(&srv, 9);
    sink.flush(FLUSH).unwrap();
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 10);
    assert!(reqs.iter().all(|r| r.lines().len() == 100));
    let want: Vec<String> = (0..1000)
        .map(|i| format!("m value={i}.0 {}", T0 + i))
        .collect();
    assert_eq!(lines_of(&reqs), want);

    let srv = FaultServer::start(vec![]);
    let sink = open(&srv, "PERFSINK_BATCH_BYTES=1024");
    let id = sink.register_series("m", &[], "value").unwrap();
    let pts: Vec<Point> = (0..500).map(|i| Point::new(id, i as f64, T0 + i)).collect();
    sink.submit(&pts).into_result().unwrap();
    sink.flush(FLUSH).unwrap();
    let reqs = srv.requests();
    assert!(reqs.len() >= 500 * 30 / 1100, "{}", reqs.len());
    for r in &reqs {
        // A batch is cut once it reaches the limit, so it exceeds it by less than one line.
        assert!(r.body.len() < 1024 + 40, "{}", r.body.len());
    }
    assert_eq!(lines_of(&reqs).len(), 500);
}

#[test]
fn a_partial_batch_is_sent_after_the_flush_interval() {
    let srv = FaultServer::start(vec![]);
    let sink = open(&srv, "PERFSINK_FLUSH_INTERVAL_MS=300");
    let t = Instant::now();
    let lines = record_n(&sink, 5);
    assert!(srv.wait_for_requests(1, Duration::from_secs(5)));
    let r = &srv.requests()[0];
    let after = r.received_at.duration_since(t);
    assert!(
        after >= Duration::from_millis(300) && after < Duration::from_millis(1500),
        "{after:?}"
    );
    assert_eq!(r.lines(), lines);

    // With a long interval nothing is sent until a flush.
    let srv = FaultServer::start(vec![]);
    let sink = open(&srv, "PERFSINK_FLUSH_INTERVAL_MS=60000");
    record_n(&sink, 5);
    assert!(!srv.wait_for_requests(1, Duration::from_millis(800)));
    sink.flush(FLUSH).unwrap();
    assert_eq!(srv.request_count(), 1);
}

#[test]
fn close_is_prompt_while_a_request_hangs() {
    let srv =
        FaultServer::start(vec![]).with_default(Resp::status(204).delay(Duration::from_secs(30)));
    // Seven one-line batches; the first hangs, the others wait behind it.
    let sink = open(
        &srv,
        "PERFSINK_TIMEOUT_MS=20000;PERFSINK_CLOSE_TIMEOUT_MS=500;PERFSINK_BATCH_LINES=1",
    );
    record_n(&sink, 7);
    assert_eq!(sink.flush(Duration::from_millis(300)), Err(Error::Timeout));
    assert!(srv.wait_for_requests(1, Duration::from_secs(5)));
    let t = Instant::now();
    let r = sink.close();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "close took {:?}",
        t.elapsed()
    );
    assert_eq!(
        (
            r.stats.written,
            r.stats.dropped_undelivered,
            r.stats.queue_depth
        ),
        (0, 7, 0),
        "{:?}",
        r.stats
    );
    // Past the deadline nothing new is sent, and the abandoned request is not a retry.
    assert_eq!((r.stats.requests, r.stats.retried), (0, 0), "{:?}", r.stats);
    assert_no_more_requests(&srv, 1);
}

#[test]
fn close_keeps_a_hanging_request_in_the_spool_for_the_next_sink() {
    let dir = std::env::temp_dir().join(format!("perfsink-fault-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let spool = format!("PERFSINK_SPOOL_DIR={}", dir.display());
    let srv =
        FaultServer::start(vec![]).with_default(Resp::status(204).delay(Duration::from_secs(30)));
    let sink = open(
        &srv,
        &format!("{spool};PERFSINK_TIMEOUT_MS=20000;PERFSINK_CLOSE_TIMEOUT_MS=500"),
    );
    let lines = record_n(&sink, 7);
    assert!(srv.wait_for_requests(1, Duration::from_secs(5)));
    let t = Instant::now();
    let r = sink.close();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "close took {:?}",
        t.elapsed()
    );
    assert_eq!(r.kept_in_spool, 7);
    assert_eq!((r.stats.spooled, r.stats.dropped), (7, 0), "{:?}", r.stats);

    let srv2 = FaultServer::start(vec![]);
    let sink = open(&srv2, &spool);
    assert_eq!(sink.stats().replayed, 7);
    sink.flush(FLUSH).unwrap();
    assert_eq!(
        lines_of(&srv2.requests()),
        lines,
        "replayed exactly, in order"
    );
    let r = sink.close();
    assert_eq!((r.stats.written, r.kept_in_spool), (7, 0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn close_is_prompt_when_retry_after_is_longer_than_its_timeout() {
    let srv =
        FaultServer::start(vec![]).with_default(Resp::status(503).header("Retry-After", "30"));
    let sink = open(&srv, "PERFSINK_CLOSE_TIMEOUT_MS=300");
    record_n(&sink, 3);
    assert!(srv.wait_for_requests(1, Duration::from_secs(5)));
    let t = Instant::now();
    let r = sink.close();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "close took {:?}",
        t.elapsed()
    );
    assert_eq!(
        (r.stats.dropped_undelivered, r.stats.retried),
        (3, 1),
        "{:?}",
        r.stats
    );
    assert!(r.last_error.unwrap().contains("503"));
    assert_no_more_requests(&srv, 1);
}
