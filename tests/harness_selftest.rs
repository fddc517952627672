//! Self-test of the integration-test harness in `tests/common/`.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{http, FaultServer, Influx, Resp};
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::json;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn influx_write_and_query_exact_value() {
    let t0 = Instant::now();
    let influx = Influx::start();
    eprintln!(
        "Influx::start() took {:?} (port {})",
        t0.elapsed(),
        influx.port()
    );
    assert!(influx.url().starts_with("http://127.0.0.1:"));
    influx.create_db("selftest");

    let line = "cpu,host=a\\ b usage=42.5,n=7i,ok=true,msg=\"hi \\\"x\\\"\" 1700000000000000000\n";
    let url = format!("{}/write?db=selftest&precision=ns", influx.url());
    let r = http::post(&url, "text/plain", line.as_bytes()).unwrap();
    assert_eq!(r.status, 204, "{}", r.text());

    let rows = influx.query_rows("selftest", "SELECT usage, n, ok, msg, host FROM cpu");
    assert_eq!(
        rows,
        vec![vec![
            json!(1_700_000_000_000_000_000u64),
            json!(42.5),
            json!(7),
            json!(true),
            json!("hi \"x\""),
            json!("a b")
        ]]
    );
    assert_eq!(influx.count("selftest", "cpu"), 1);
    assert_eq!(influx.count_field("selftest", "cpu", "usage"), 1);
    assert_eq!(influx.count("selftest", "nope"), 0);
    assert!(influx
        .query_rows("selftest", "SELECT * FROM nope")
        .is_empty());
    let series = influx.query_series("selftest", "SELECT usage FROM cpu GROUP BY host");
    assert_eq!(series.len(), 1);
    assert_eq!(series[0]["tags"]["host"], json!("a b"));

    // Writes to a missing database are refused (the sink must create it or report).
    let r = influx.write("missing", "ns", "m v=1");
    assert_eq!(r.status, 404, "{}", r.text());
    // InfluxDB 1.6 has no /api/v2/write (added in 1.8): v2 tests need the FaultServer.
    let r = http::post(
        &format!("{}/api/v2/write?bucket=selftest", influx.url()),
        "text/plain",
        b"m v=1",
    )
    .unwrap();
    assert_eq!(r.status, 404);
}

#[test]
fn influx_stop_and_start_again_keeps_data() {
    let mut influx = Influx::start();
    influx.create_db("persist");
    influx.write_lines(
        "persist",
        "mem,host=h used=1i 1000000000\nmem,host=h used=2i 2000000000",
    );
    let port = influx.port();
    influx.stop();
    assert!(!influx.ping());
    influx.stop(); // idempotent
    influx.start_again();
    assert_eq!(influx.port(), port);
    assert!(influx.ping());
    assert_eq!(
        influx.query_rows("persist", "SELECT used FROM mem"),
        vec![
            vec![json!(1_000_000_000u64), json!(1)],
            vec![json!(2_000_000_000u64), json!(2)]
        ]
    );
    influx.write_lines("persist", "mem,host=h used=3i 3000000000");
    assert_eq!(
        influx.wait_for_count("persist", "mem", 3, Duration::from_secs(5)),
        3
    );
}

#[test]
fn influx_auth_refuses_unauthenticated() {
    let influx = Influx::start_with_auth("admin", "s3cr'et");
    influx.create_db("secure");
    influx.write_lines("secure", "m v=1 1");
    assert_eq!(influx.count("secure", "m"), 1);

    let r = influx.query_http("GET", "secure", "SELECT * FROM m", None);
    assert_eq!(r.status, 401, "{}", r.text());
    let r = influx.query_http("GET", "secure", "SELECT * FROM m", Some(("admin", "wrong")));
    assert_eq!(r.status, 401, "{}", r.text());
    let r = http::post(
        &format!("{}/write?db=secure", influx.url()),
        "text/plain",
        b"m v=2 2",
    )
    .unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    // Basic auth is accepted as well as u/p parameters.
    let r = http::request(
        "POST",
        &format!("{}/write?db=secure", influx.url()),
        &[("Authorization", &http::basic_auth("admin", "s3cr'et"))],
        b"m v=2 2",
    )
    .unwrap();
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(influx.count("secure", "m"), 2);
}

#[test]
fn influx_parallel_instances_are_isolated() {
    let handles: Vec<_> = (0..3)
        .map(|i| {
            std::thread::spawn(move || {
                let influx = Influx::start();
                influx.create_db("p");
                influx.write_lines("p", &format!("m v={i}i 1"));
                let rows = influx.query_rows("p", "SELECT v FROM m");
                assert_eq!(rows, vec![vec![json!(1), json!(i)]]);
                influx.port()
            })
        })
        .collect();
    let mut ports: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 3);
}

#[test]
fn fault_server_script_then_default_and_gzip() {
    let srv = FaultServer::start(vec![
        Resp::status(503).header("Retry-After", "1").body("busy"),
        Resp::status(204),
    ])
    .with_default(Resp::influx_error(500, "boom"));

    let payload = b"cpu,host=a usage=1 1\ncpu,host=a usage=2 2\n".to_vec();
    let gz = gzip(&payload);

    // Two requests on one keep-alive connection: gzip + Content-Length, then chunked.
    let mut s = TcpStream::connect(srv.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut msg = format!(
        "POST /write?db=my%20db&precision=ns&u=a+b HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nX-Custom: V\r\n\r\n",
        gz.len()
    )
    .into_bytes();
    msg.extend_from_slice(&gz);
    s.write_all(&msg).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let (status_line, headers) = http::read_head(&mut reader).unwrap().unwrap();
    assert_eq!(http::parse_status_line(&status_line).unwrap(), 503);
    assert_eq!(http::find_header(&headers, "retry-after"), Some("1"));
    let body = http::read_request_body(&mut reader, &headers).unwrap();
    assert_eq!(body, b"busy");

    s.write_all(b"POST /api/v2/write?org=o&bucket=b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nm v=1\r\n6;ext=1\r\n\nm v=2\r\n0\r\n\r\n").unwrap();
    let (status_line, headers) = http::read_head(&mut reader).unwrap().unwrap();
    assert_eq!(http::parse_status_line(&status_line).unwrap(), 204);
    assert!(http::find_header(&headers, "content-length").is_none());

    // Script used up: default answers, and Connection: close is honoured.
    s.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(rest.starts_with("HTTP/1.1 500 "), "{rest}");
    assert!(rest.contains("{\"error\":\"boom\"}"), "{rest}");

    assert!(srv.wait_for_requests(3, Duration::from_secs(5)));
    let reqs = srv.requests();
    assert_eq!(srv.request_count(), 3);
    assert_eq!(srv.connection_count(), 1);
    let r0 = &reqs[0];
    assert_eq!((r0.method.as_str(), r0.path.as_str()), ("POST", "/write"));
    assert_eq!(r0.query_param("db"), Some("my db"));
    assert_eq!(r0.query_param("u"), Some("a b"));
    assert_eq!(
        r0.query,
        vec![
            ("db".into(), "my db".into()),
            ("precision".into(), "ns".into()),
            ("u".into(), "a b".into())
        ]
    );
    assert_eq!(r0.header("x-custom"), Some("V"));
    assert!(r0.headers.iter().all(|(k, _)| *k == k.to_ascii_lowercase()));
    assert_eq!(r0.body, payload);
    assert_eq!(r0.raw_body_len, gz.len());
    assert!(r0.gzip_error.is_none());
    assert_eq!(r0.lines().len(), 2);
    let r1 = &reqs[1];
    assert_eq!(r1.path, "/api/v2/write");
    assert_eq!(r1.body_str(), "m v=1\nm v=2");
    assert_eq!(r1.raw_body_len, 11);
    assert!(reqs.iter().all(|r| r.conn_id == 0));
    assert_eq!(reqs[2].method, "GET");
}

#[test]
fn fault_server_with_http_client_delay_and_hangup() {
    let srv = FaultServer::start(vec![
        Resp::status(204).delay(Duration::from_millis(300)),
        Resp::hangup(),
    ]);
    let t = Instant::now();
    let r = http::post(&format!("{}/write?db=x", srv.url()), "text/plain", b"m v=1").unwrap();
    assert_eq!(r.status, 204);
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert!(http::post(&format!("{}/write?db=x", srv.url()), "text/plain", b"m v=2").is_err());
    // Default (204) afterwards; pushed responses go to the back of the script.
    srv.push(Resp::status(429).header("Retry-After", "0"));
    assert_eq!(http::get(&format!("{}/x", srv.url())).unwrap().status, 429);
    assert_eq!(http::get(&format!("{}/x", srv.url())).unwrap().status, 204);
    srv.set_default(Resp::status(200).body("ok"));
    assert_eq!(http::get(&format!("{}/x", srv.url())).unwrap().text(), "ok");
    assert_eq!(srv.request_count(), 5);
    assert!(!srv.wait_for_requests(6, Duration::from_millis(100)));
    assert_eq!(srv.remaining_script(), 0);
}

#[test]
fn fault_server_drop_does_not_hang_on_open_connections() {
    let srv = FaultServer::start(vec![Resp::status(204).delay(Duration::from_secs(60))]);
    let mut idle = TcpStream::connect(srv.addr()).unwrap();
    let mut slow = TcpStream::connect(srv.addr()).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    idle.write_all(b"").unwrap();
    assert!(srv.wait_for_requests(1, Duration::from_secs(5)));
    let t = Instant::now();
    drop(srv);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "drop took {:?}",
        t.elapsed()
    );
}

#[test]
fn url_helpers_round_trip() {
    let s = "SELECT \"v\" FROM m WHERE t = 'a&b=c' + 1%";
    assert_eq!(http::url_decode(&http::url_encode(s)), s);
    assert_eq!(http::url_decode("a+b%20c%zz%4"), "a b c%zz%4");
    assert_eq!(http::base64(b"admin:pw"), "YWRtaW46cHc=");
    assert_eq!(http::base64(b"a"), "YQ==");
}
