use super::*;
use crate::config::Api;

fn resolve_with(params: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Resolved> {
    resolve(params.iter().copied(), env.iter().copied())
}

fn db(r: &Resolved) -> (String, String) {
    let e = r.config.endpoint.as_ref().expect("enabled");
    match &e.api {
        Api::V1 { db, .. } => (e.base_url.to_string(), db.to_string()),
        Api::V2 { bucket, .. } => (e.base_url.to_string(), format!("bucket {bucket}")),
    }
}

fn err(params: &[(&str, &str)], env: &[(&str, &str)]) -> String {
    resolve_with(params, env).unwrap_err().to_string()
}

/// The built-in listener's defaults (its `DEFAULT_ARGS` as the GUI pre-fills them).
const GUI_DEFAULTS: &[(&str, &str)] = &[
    ("influxdbMetricsSender", HTTP_SENDER),
    ("influxdbUrl", PLACEHOLDER_URL),
    ("application", "application name"),
    ("measurement", "jmeter"),
    ("summaryOnly", "false"),
    ("samplersRegex", ".*"),
    ("percentiles", "99;95;90"),
    ("testTitle", "Test name"),
    ("eventTags", ""),
];

#[test]
fn defaults_as_the_gui_fills_them_and_without_parameters() {
    let r = resolve_with(GUI_DEFAULTS, &[]).unwrap();
    assert!(
        r.config.endpoint.is_none(),
        "placeholder, no INFLUXDB_URL: disabled"
    );
    let o = &r.options;
    assert_eq!(o.application, "application name");
    assert_eq!(o.measurement, "jmeter");
    assert!(!o.summary_only && !o.raw_samples);
    assert!(o.per_label("any label"));
    let fields: Vec<&str> = o.pct_fields.iter().map(String::as_str).collect();
    assert_eq!(fields, ["pct90.0", "pct95.0", "pct99.0"]);
    assert_eq!(o.interval, Duration::from_secs(5));
    assert_eq!(o.test_title, "Test name");
    // Absent parameters: the code's defaults, not the GUI's.
    let r = resolve_with(&[], &[]).unwrap();
    assert_eq!(r.options.application, "");
    assert_eq!(r.options.test_title, "Test");
    assert_eq!(r.options.percentiles.len(), 3);
}

#[test]
fn placeholder_url_takes_the_environment() {
    let r = resolve_with(GUI_DEFAULTS, &[("INFLUXDB_URL", "http://127.0.0.1:8086")]).unwrap();
    assert_eq!(db(&r), ("http://127.0.0.1:8086".into(), "jmeter".into()));
    let env = [("INFLUXDB_URL", "http://h:8086"), ("INFLUXDB_DB", "perf")];
    assert_eq!(db(&resolve_with(GUI_DEFAULTS, &env).unwrap()).1, "perf");
    // The Java listener's own variable is not an engine key; a mistyped engine key is.
    let env = [
        ("INFLUXDB_URL", "http://h:8086"),
        ("PERFSINK_LIB", "/x/libperfsink.so"),
    ];
    assert!(resolve_with(GUI_DEFAULTS, &env).is_ok());
    let env = [("PERFSINK_BATCH_LINE", "5")];
    assert!(err(GUI_DEFAULTS, &env).contains("PERFSINK_BATCH_LINE"));
    // k6-style path database in the environment's URL.
    let env = [("INFLUXDB_URL", "http://h:8086/loadtest")];
    assert_eq!(db(&resolve_with(GUI_DEFAULTS, &env).unwrap()).1, "loadtest");
    // An explicit URL wins over the environment.
    let p = [("influxdbUrl", "http://10.0.0.1:9999/write?db=x")];
    let r = resolve_with(
        &p,
        &[("INFLUXDB_URL", "http://h:8086"), ("INFLUXDB_DB", "perf")],
    )
    .unwrap();
    assert_eq!(db(&r), ("http://10.0.0.1:9999".into(), "x".into()));
}

#[test]
fn v1_and_v2_urls_and_token() {
    let p = [(
        "influxdbUrl",
        "https://h:8086/write?db=my%20db&rp=week&u=bob&p=s3cret",
    )];
    let r = resolve_with(&p, &[]).unwrap();
    assert_eq!(db(&r), ("https://h:8086".into(), "my db".into()));
    let p = [
        (
            "influxdbUrl",
            "http://h:8086/api/v2/write?org=acme&bucket=perf",
        ),
        ("influxdbToken", "tok"),
    ];
    let r = resolve_with(&p, &[]).unwrap();
    assert_eq!(db(&r).1, "bucket perf");
    assert!(!r.describe().contains("tok"));
    // A token with a v1 URL: the built-in sends `Authorization: Token` to /write; the
    // engine writes v2 with the database as the bucket.
    let p = [
        ("influxdbUrl", "http://h:8086/write?db=j"),
        ("influxdbToken", "t"),
    ];
    assert_eq!(db(&resolve_with(&p, &[]).unwrap()).1, "bucket j");
}

#[test]
fn bad_values_are_named_and_secrets_hidden() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("summaryOnly", "yes")], "summaryOnly"),
        (&[("rawSamples", "1")], "rawSamples"),
        (&[("samplersRegex", "a(")], "samplersRegex"),
        (&[("percentiles", "99;abc")], "percentiles"),
        (&[("percentiles", "0")], "percentiles"),
        (&[("percentiles", "100.5")], "percentiles"),
        (&[("percentiles", "99.9999")], "percentiles"),
        (&[("measurement", " ")], "measurement"),
        (
            &[("backend_influxdb.send_interval", "0")],
            "backend_influxdb.send_interval",
        ),
        (&[("influxdbUrl", "h:8086")], "influxdbUrl"),
        (
            &[("influxdbUrl", "http://h:8086/query?db=x")],
            "influxdbUrl",
        ),
        (&[("influxdbUrl", "http://h:8086/write")], "influxdbUrl"),
        (
            &[("influxdbUrl", "http://h:8086/write?db=x&consistency=all")],
            "consistency",
        ),
        (
            &[(
                "influxdbMetricsSender",
                "org.apache.jmeter.visualizers.backend.influxdb.UdpMetricsSender",
            )],
            "influxdbMetricsSender",
        ),
        (&[("TAG_", "x")], "TAG_"),
        (&[("TAG_statut", "x")], "TAG_statut"),
        (&[("PERFSINK_NO_SUCH_KEY", "1")], "PERFSINK_NO_SUCH_KEY"),
        (&[("PERFSINK_BATCH_LINES", "many")], "PERFSINK_BATCH_LINES"),
    ];
    for (params, name) in cases {
        let e = err(params, &[]);
        assert!(e.contains(name), "{params:?}: {e}");
    }
    let e = err(
        &[("influxdbUrl", "http://h:8086/writ?db=x&u=a&p=s3cret")],
        &[],
    );
    assert!(!e.contains("s3cret"), "{e}");
}

#[test]
fn tags_percentiles_interval_and_engine_keys() {
    let p = [
        ("TAG_env", " staging "),
        ("TAG_blank", "  "),
        ("TAG_run id", "7"),
        ("percentiles", "99.9; 50 ;90;90.0;75.5"),
        ("samplersRegex", "^(login|search)"),
        ("backend_influxdb.send_interval", "2"),
        ("rawSamples", "TRUE"),
        ("PERFSINK_BATCH_LINES", "77"),
        ("INFLUXDB_URL", "http://h:1"),
        ("something the listener does not know", "x"),
    ];
    let r = resolve_with(&p, &[("PERFSINK_BATCH_LINES", "5")]).unwrap();
    let o = &r.options;
    assert_eq!(
        o.user_tags,
        [
            ("env".to_string(), "staging".to_string()),
            ("run id".into(), "7".into())
        ]
    );
    let fields: Vec<&str> = o.pct_fields.iter().map(String::as_str).collect();
    assert_eq!(fields, ["pct50.0", "pct75.5", "pct90.0", "pct99.9"]);
    assert!(o.per_label("login page") && o.per_label("search") && !o.per_label("a login"));
    assert_eq!(o.interval, Duration::from_secs(2));
    assert!(o.raw_samples);
    // A parameter wins over the environment.
    assert_eq!(r.config.batch_lines, 77);
    assert!(r.config.endpoint.is_some());
    assert!(!resolve_with(&[], &[]).unwrap().options.per_label(" all "));
    let r = resolve_with(&[("summaryOnly", "true")], &[]).unwrap();
    assert!(!r.options.per_label("x"));
    // An empty regex (the parameter absent or empty) matches everything.
    let r = resolve_with(&[("samplersRegex", "")], &[]).unwrap();
    assert!(r.options.per_label(""));
}

#[test]
fn java_float_names() {
    assert_eq!(java_float(90.0), "90.0");
    assert_eq!(java_float(99.9), "99.9");
    assert_eq!(java_float(99.99), "99.99");
    assert_eq!(java_float(0.5), "0.5");
    assert_eq!(java_float(100.0), "100.0");
}

#[test]
fn self_metrics_source_is_jmeter_unless_set() {
    let url = [("influxdbUrl", "http://127.0.0.1:8086/write?db=jm")];
    assert_eq!(resolve_with(&url, &[]).unwrap().config.source, "jmeter");
    let from_env = resolve_with(&url, &[("PERFSINK_SOURCE", "gen-a")]).unwrap();
    assert_eq!(from_env.config.source, "gen-a");
    let as_param = [url[0], ("PERFSINK_SOURCE", "gen-b")];
    let from_param = resolve_with(&as_param, &[("PERFSINK_SOURCE", "gen-a")]).unwrap();
    assert_eq!(from_param.config.source, "gen-b");
}
