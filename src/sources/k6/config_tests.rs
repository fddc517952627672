//! The rules of k6 configuration, including every case of the Go output's own tests
//! (go-shim/k6output/config_test.go), which this module replaces.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::model::Precision;

type Env<'a> = &'a [(&'a str, &'a str)];

/// The engine keys a configuration resolves to (the last value of each key).
fn keys(arg: Option<&str>, json: &str, env: Env) -> BTreeMap<String, String> {
    let json = (!json.is_empty()).then_some(json.as_bytes());
    let r = resolve_keys(arg, json, env.iter().copied()).unwrap();
    r.pairs.into_iter().collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn settings(arg: Option<&str>, json: &str, env: Env) -> Result<K6Settings> {
    let json = (!json.is_empty()).then_some(json.as_bytes());
    resolve(arg, json, env.iter().copied())
}

fn error(arg: Option<&str>, json: &str, env: Env) -> String {
    settings(arg, json, env).unwrap_err().to_string()
}

fn tf(s: &K6Settings) -> String {
    let entries: Vec<String> = s
        .tags_as_fields
        .entries()
        .iter()
        .map(|f| format!("{}:{}", f.name, f.kind.as_str()))
        .collect();
    entries.join(",")
}

const DEFAULT_TF: &str = "vu:int,iter:int,url:string";

#[test]
fn asked_for_with_nothing_else_is_k6s_default_address() {
    assert_eq!(
        keys(Some(""), "", &[]),
        map(&[
            ("INFLUXDB_URL", "http://localhost:8086"),
            ("PERFSINK_SOURCE", "k6"),
            ("PERFSINK_GZIP_LEVEL", "0"),
        ])
    );
    let s = settings(Some(""), "", &[]).unwrap();
    assert_eq!(tf(&s), DEFAULT_TF);
    assert_eq!(s.describe(), "http://localhost:8086, db k6");
    assert!(s.notes.is_empty(), "{:?}", s.notes);
}

#[test]
fn k6_url_argument_with_credentials_database_and_query() {
    let arg = "https://me:s3cr%3Bt@influx:8087/perf?precision=ms&pushInterval=250ms&\
               concurrentWrites=2&tagsAsFields=vu:int&tagsAsFields=url&insecure=true&retention=rp1";
    assert_eq!(
        keys(Some(arg), "", &[]),
        map(&[
            ("INFLUXDB_URL", "https://influx:8087"),
            ("INFLUXDB_DB", "perf"),
            ("INFLUXDB_USERNAME", "me"),
            ("INFLUXDB_PASSWORD", "s3cr;t"),
            ("INFLUXDB_PRECISION", "ms"),
            ("PERFSINK_FLUSH_INTERVAL_MS", "250"),
            ("PERFSINK_CONCURRENCY", "2"),
            ("INFLUXDB_INSECURE_SKIP_VERIFY", "true"),
            ("INFLUXDB_RP", "rp1"),
            ("PERFSINK_SOURCE", "k6"),
        ])
    );
    let s = settings(Some(arg), "", &[]).unwrap();
    assert_eq!(tf(&s), "vu:int,url:string");
    assert_eq!(s.describe(), "https://influx:8087, db perf");
}

#[test]
fn json_below_k6_variables_below_the_argument() {
    let json = r#"{"addr":"http://json:1","db":"jsondb","pushInterval":"3s","concurrentWrites":3,"tagsAsFields":["a:float","b"]}"#;
    let env = [
        ("K6_INFLUXDB_ADDR", "http://env:2"),
        ("K6_INFLUXDB_PUSH_INTERVAL", "2s"),
        ("K6_INFLUXDB_TAGS_AS_FIELDS", "c:bool"),
    ];
    let arg = Some("K6_INFLUXDB_PUSH_INTERVAL=1500ms");
    assert_eq!(
        keys(arg, json, &env),
        map(&[
            ("INFLUXDB_URL", "http://env:2"),
            ("INFLUXDB_DB", "jsondb"),
            ("PERFSINK_FLUSH_INTERVAL_MS", "1500"),
            ("PERFSINK_CONCURRENCY", "3"),
            ("PERFSINK_SOURCE", "k6"),
        ])
    );
    assert_eq!(tf(&settings(arg, json, &env).unwrap()), "c:bool");
    // Without the variable, the JSON list.
    assert_eq!(tf(&settings(None, json, &[]).unwrap()), "a:float,b:string");
}

#[test]
fn a_json_push_interval_number_is_milliseconds() {
    let k = keys(Some(""), r#"{"pushInterval": 750}"#, &[]);
    assert_eq!(k["PERFSINK_FLUSH_INTERVAL_MS"], "750");
    let k = keys(Some(""), r#"{"pushInterval": 0.5}"#, &[]);
    assert_eq!(k["PERFSINK_FLUSH_INTERVAL_MS"], "1");
}

#[test]
fn engine_keys_win_and_the_argument_over_the_environment() {
    let env = [
        ("K6_INFLUXDB_ADDR", "http://k6:1"),
        ("K6_INFLUXDB_DB", "k6db"),
        ("K6_INFLUXDB_CONCURRENT_WRITES", "9"),
        ("INFLUXDB_URL", "http://ours:2/oursdb"),
        ("PERFSINK_CONCURRENCY", "5"),
        ("PERFSINK_TAGS", "testid=a"),
        ("INFLUXDB_HTTP_BIND_ADDRESS", ":1"), // influxd's, ignored
        ("HOME", "/root"),
    ];
    let arg = Some(r"PERFSINK_TAGS=testid=b\;c;PERFSINK_SPOOL_DIR=/tmp/x");
    assert_eq!(
        keys(arg, "", &env),
        map(&[
            ("INFLUXDB_URL", "http://ours:2"),
            ("INFLUXDB_DB", "oursdb"),
            ("PERFSINK_CONCURRENCY", "5"),
            ("PERFSINK_TAGS", "testid=b;c"),
            ("PERFSINK_SPOOL_DIR", "/tmp/x"),
            ("PERFSINK_SOURCE", "k6"),
        ])
    );
    let s = settings(arg, "", &env).unwrap();
    assert_eq!(s.config.concurrency, 5);
    assert_eq!(s.describe(), "http://ours:2, db oursdb");
}

#[test]
fn an_empty_influxdb_url_disables_reporting() {
    let env = [("INFLUXDB_URL", ""), ("K6_INFLUXDB_ADDR", "http://k6:1")];
    assert_eq!(
        keys(Some(""), "", &env),
        map(&[("INFLUXDB_URL", ""), ("PERFSINK_SOURCE", "k6")])
    );
    let s = settings(Some(""), "", &env).unwrap();
    assert!(!s.config.enabled());
    assert_eq!(s.describe(), "disabled (INFLUXDB_URL is empty)");
}

#[test]
fn v2_credentials_in_json_with_xk6_output_influxdb_names_and_engine_keys() {
    let json = r#"{"addr":"http://v2:8086","organization":"o","bucket":"b","token":"t","insecureSkipTLSVerify":true,"PERFSINK_GZIP_LEVEL":"6"}"#;
    assert_eq!(
        keys(Some(""), json, &[]),
        map(&[
            ("INFLUXDB_URL", "http://v2:8086"),
            ("INFLUXDB_ORG", "o"),
            ("INFLUXDB_BUCKET", "b"),
            ("INFLUXDB_TOKEN", "t"),
            ("INFLUXDB_INSECURE_SKIP_VERIFY", "true"),
            ("PERFSINK_GZIP_LEVEL", "6"),
            ("PERFSINK_SOURCE", "k6"),
        ])
    );
    let s = settings(Some(""), json, &[]).unwrap();
    assert_eq!(s.describe(), "http://v2:8086, bucket b");
}

#[test]
fn errors_say_what_is_wrong_and_where() {
    let none: Env = &[];
    for (arg, json, env, want) in [
        (Some("udp://h:8089"), "", none, "UDP is not supported"),
        (
            Some("http://h:1/db?bogus=1"),
            "",
            none,
            r#"unknown query key "bogus""#,
        ),
        (
            Some("http://h:1/db?precision=h"),
            "",
            none,
            "precision in the --out URL",
        ),
        (Some("NOPE=1"), "", none, r#"unknown key "NOPE""#),
        (
            Some("INFLUXDB_NOPE=1"),
            "",
            none,
            r#"unknown key "INFLUXDB_NOPE""#,
        ),
        (Some("justtext"), "", none, "not KEY=value"),
        (None, r#"{"adr":"x"}"#, none, r#"unknown key "adr""#),
        (None, "[1]", none, "must be a JSON object"),
        (None, "{", none, "must be a JSON object"),
        (None, r#"{"db":{"x":1}}"#, none, "expected a string"),
        (
            None,
            r#"{"pushInterval":"soon"}"#,
            none,
            "pushInterval (collectors.perfsink)",
        ),
        (
            Some("K6_INFLUXDB_CONCURRENT_WRITES=x"),
            "",
            none,
            "K6_INFLUXDB_CONCURRENT_WRITES in the --out argument",
        ),
    ] {
        let e = error(arg, json, env);
        assert!(e.contains(want), "{arg:?} {json:?}: {e}");
    }
    for (k, v, want) in [
        (
            "K6_INFLUXDB_TAGS_AS_FIELDS",
            "vu:integer",
            r#"invalid type "integer""#,
        ),
        ("K6_INFLUXDB_TAGS_AS_FIELDS", "value", "collide"),
        ("K6_INFLUXDB_TAGS_AS_FIELDS", "a,a:int", "listed twice"),
        ("K6_INFLUXDB_CONCURRENT_WRITES", "0", "positive integer"),
        ("K6_INFLUXDB_PUSH_INTERVAL", "soon", "positive duration"),
        ("K6_INFLUXDB_PUSH_INTERVAL", "0", "positive duration"),
        (
            "K6_INFLUXDB_PROXY",
            "http://p:3128",
            "proxy is not supported",
        ),
        ("K6_INFLUXDB_INSECURE", "maybe", "not a boolean"),
        ("K6_INFLUXDB_PRECISION", "h", "expected ns, u, ms or s"),
        ("K6_INFLUXDB_ADDR", "udp://x:8089", "UDP is not supported"),
        (
            "K6_INFLUXDB_ADDR",
            "http://x:1/db?a=b",
            "must not contain a query",
        ),
    ] {
        let e = error(None, "", &[(k, v)]);
        assert!(e.contains(k) && e.contains(want), "{k}={v}: {e}");
    }
}

/// A password must never appear in a message, whatever carries it.
#[test]
fn errors_hide_secrets() {
    for (arg, env) in [
        (Some("http://u:topsecret@h:1/%zz"), vec![]),
        (Some("http://u:topsecret@h:0/db"), vec![]),
        (Some("INFLUXDB_PASSWORD=top;secret"), vec![]),
        (
            None,
            vec![("K6_INFLUXDB_ADDR", "http://u:topsecret@h:99999")],
        ),
        (None, vec![("K6_INFLUXDB_PASSWORD", "topsecret")]), // no user
        (
            Some(""),
            vec![
                ("K6_INFLUXDB_TOKEN", "topsecret"),
                ("K6_INFLUXDB_USERNAME", "u"),
            ],
        ),
    ] {
        let e = error(arg, "", &env);
        assert!(
            !e.contains("topsecret") && !e.contains("secret"),
            "{arg:?} {env:?}: {e}"
        );
    }
}

#[test]
fn ignored_options_are_noted() {
    let s = settings(
        Some("http://h:1/db?consistency=all&payload_size=512"),
        "",
        &[],
    )
    .unwrap();
    assert_eq!(s.notes.len(), 2, "{:?}", s.notes);
    assert!(
        s.notes[0].contains("consistency in the --out URL"),
        "{:?}",
        s.notes
    );
    let s = settings(None, "", &[("K6_INFLUXDB_PRECISION", "u")]).unwrap();
    assert_eq!(s.config.precision, Precision::Ns);
    assert!(s
        .notes
        .iter()
        .any(|n| n.contains("K6_INFLUXDB_PRECISION=u")));
}

#[test]
fn describe_hides_credentials() {
    let s = settings(Some("http://u:pw@h:1/db"), "", &[]).unwrap();
    assert_eq!(s.describe(), "http://h:1, db db");
}

// `perfsink k6`: the environment only.

#[test]
fn nothing_set_means_disabled_and_default_tags_as_fields() {
    let s = settings(None, "", &[("PATH", "/bin")]).unwrap();
    assert!(!s.config.enabled());
    assert_eq!(tf(&s), DEFAULT_TF);
    assert_eq!(s.config.source, "k6");
}

#[test]
fn k6_variables_map_onto_the_sink() {
    let s = settings(
        None,
        "",
        &[
            ("K6_INFLUXDB_ADDR", "http://influx:8086/"),
            ("K6_INFLUXDB_DB", "loadtest"),
            ("K6_INFLUXDB_RETENTION", "week"),
            ("K6_INFLUXDB_USERNAME", "k6user"),
            ("K6_INFLUXDB_PASSWORD", "s3cret"),
            ("K6_INFLUXDB_INSECURE", "T"),
            ("K6_INFLUXDB_PRECISION", "ms"),
            ("K6_INFLUXDB_PUSH_INTERVAL", "1m30.5s"),
            ("K6_INFLUXDB_CONCURRENT_WRITES", "3"),
            (
                "K6_INFLUXDB_TAGS_AS_FIELDS",
                "vu:int,iter:int,url,name:string",
            ),
            ("K6_INFLUXDB_CONSISTENCY", "all"),
        ],
    )
    .unwrap();
    let c = &s.config;
    let e = c.endpoint.as_ref().unwrap();
    assert_eq!(e.base_url, "http://influx:8086");
    match &e.api {
        Api::V1 {
            db,
            rp,
            username,
            password,
        } => {
            assert_eq!(db, "loadtest");
            assert_eq!(rp.as_deref(), Some("week"));
            assert_eq!(username.as_deref(), Some("k6user"));
            assert_eq!(password.as_ref().unwrap().expose(), "s3cret");
        }
        other => panic!("{other:?}"),
    }
    assert!(c.tls.insecure_skip_verify);
    assert_eq!(c.precision, Precision::Ms);
    assert_eq!(c.flush_interval, Duration::from_millis(90_500));
    assert_eq!(c.concurrency, 3);
    assert_eq!(c.gzip_level, 1);
    assert_eq!(tf(&s), "vu:int,iter:int,url:string,name:string");
    assert!(s
        .notes
        .iter()
        .any(|n| n.contains("K6_INFLUXDB_CONSISTENCY")));
}

#[test]
fn the_address_may_carry_credentials_and_the_database() {
    let s = settings(
        None,
        "",
        &[("K6_INFLUXDB_ADDR", "http://u:p%40ss@h:8086/perf")],
    )
    .unwrap();
    match s.config.endpoint.unwrap().api {
        Api::V1 {
            db,
            username,
            password,
            ..
        } => {
            assert_eq!(db, "perf");
            assert_eq!(username.as_deref(), Some("u"));
            assert_eq!(password.unwrap().expose(), "p@ss");
        }
        other => panic!("{other:?}"),
    }
    // Options of their own win over the address's parts.
    let k = keys(
        None,
        "",
        &[
            ("K6_INFLUXDB_ADDR", "http://u:p@h:8086/perf"),
            ("K6_INFLUXDB_DB", "other"),
            ("K6_INFLUXDB_USERNAME", "me"),
        ],
    );
    assert_eq!(k["INFLUXDB_DB"], "other");
    assert_eq!(k["INFLUXDB_USERNAME"], "me");
    assert_eq!(k["INFLUXDB_PASSWORD"], "p");
}

#[test]
fn influxdb_on_this_machine_gets_uncompressed_bodies_unless_told_otherwise() {
    let gzip = |env: Env| settings(None, "", env).unwrap().config.gzip_level;
    assert_eq!(gzip(&[("INFLUXDB_URL", "http://127.0.0.1:8086/k6")]), 0);
    assert_eq!(gzip(&[("INFLUXDB_URL", "http://localhost:8086")]), 0);
    assert_eq!(gzip(&[("INFLUXDB_URL", "https://[::1]:8086/k6")]), 0);
    assert_eq!(gzip(&[("K6_INFLUXDB_DB", "k6")]), 0); // k6's default localhost:8086
    assert_eq!(gzip(&[("INFLUXDB_URL", "http://influx:8086/k6")]), 1);
    assert_eq!(gzip(&[("INFLUXDB_URL", "http://10.0.0.1:8086")]), 1);
    assert_eq!(gzip(&[("INFLUXDB_URL", "http://127.example.com")]), 1);
    assert_eq!(
        gzip(&[
            ("INFLUXDB_URL", "http://127.0.0.1:8086"),
            ("PERFSINK_GZIP_LEVEL", "1")
        ]),
        1
    );
    // The xk6 output too (the Go output had no such default).
    let s = settings(Some("http://127.0.0.1:8086/k6"), "", &[]).unwrap();
    assert_eq!(s.config.gzip_level, 0);
}

#[test]
fn any_k6_option_enables_reporting_at_k6s_default_address() {
    let s = settings(None, "", &[("K6_INFLUXDB_PUSH_INTERVAL", "2s")]).unwrap();
    assert_eq!(s.config.endpoint.unwrap().base_url, "http://localhost:8086");
    assert_eq!(s.config.flush_interval, Duration::from_secs(2));
    assert!(s
        .notes
        .iter()
        .any(|n| n.contains("K6_INFLUXDB_PUSH_INTERVAL") && n.contains("localhost:8086")));
}

#[test]
fn our_variables_win() {
    let s = settings(
        None,
        "",
        &[
            ("K6_INFLUXDB_ADDR", "http://k6:8086"),
            ("K6_INFLUXDB_DB", "k6db"),
            ("K6_INFLUXDB_USERNAME", "k6user"),
            ("K6_INFLUXDB_CONCURRENT_WRITES", "9"),
            ("K6_INFLUXDB_PUSH_INTERVAL", "5s"),
            ("K6_INFLUXDB_PRECISION", "s"),
            ("INFLUXDB_URL", "http://mine:8086/mydb"),
            ("INFLUXDB_TOKEN", "tok"),
            ("INFLUXDB_PRECISION", "ns"),
            ("PERFSINK_CONCURRENCY", "2"),
            ("PERFSINK_FLUSH_INTERVAL_MS", ""),
        ],
    )
    .unwrap();
    let c = s.config;
    let e = c.endpoint.unwrap();
    assert_eq!(e.base_url, "http://mine:8086");
    assert!(matches!(e.api, Api::V2 { ref bucket, .. } if bucket == "mydb"));
    assert_eq!(c.precision, Precision::Ns);
    assert_eq!(c.concurrency, 2);
    assert_eq!(c.flush_interval, Duration::from_secs(5));
}

#[test]
fn v2_extension_variables() {
    let s = settings(
        None,
        "",
        &[
            ("K6_INFLUXDB_ADDR", "https://cloud:8086"),
            ("K6_INFLUXDB_ORGANIZATION", "acme"),
            ("K6_INFLUXDB_BUCKET", "perf"),
            ("K6_INFLUXDB_TOKEN", "tok"),
            ("K6_INFLUXDB_PRECISION", "1ns"),
        ],
    )
    .unwrap();
    match s.config.endpoint.unwrap().api {
        Api::V2 { org, bucket, token } => {
            assert_eq!(org.as_deref(), Some("acme"));
            assert_eq!(bucket, "perf");
            assert_eq!(token.expose(), "tok");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn durations() {
    assert_eq!(duration_ms("1s"), Some(1000));
    assert_eq!(duration_ms("500ms"), Some(500));
    assert_eq!(duration_ms("1m30s"), Some(90_000));
    assert_eq!(duration_ms("1.5s"), Some(1500));
    assert_eq!(duration_ms("100us"), Some(1));
    assert_eq!(duration_ms("1h"), Some(3_600_000));
    assert_eq!(duration_ms("1d"), Some(86_400_000));
    assert_eq!(duration_ms("250"), Some(250));
    assert_eq!(duration_ms("0.5"), Some(1));
    for bad in ["", "s", "1x", "-1s", "1s2", "0", "0s", "-5", "NaN", "inf"] {
        assert_eq!(duration_ms(bad), None, "{bad}");
    }
}
