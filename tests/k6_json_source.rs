//! `sources::k6::json`: k6 JSON output lines in, the exact line protocol k6's built-in `influxdb`
//! output writes (plus vu/iter) out, captured by a scripted HTTP server.

mod common;

use common::{FaultServer, Resp};
use perfsink::sources::k6::json::{K6JsonSource, K6Stats, MetricType};
use perfsink::sources::k6::schema::TagsAsFields;
use perfsink::{Config, Sink};

type Types = Vec<(String, MetricType)>;

/// Feeds `input` (one k6 JSON line a line) and returns the lines written, in order, the
/// source's counters and the metric types it kept.
fn convert(input: &str, tags_as_fields: &str) -> (Vec<String>, K6Stats, Types) {
    convert_from(input.as_bytes(), tags_as_fields)
}

/// `convert` from any reader.
fn convert_from(input: impl std::io::Read, tags_as_fields: &str) -> (Vec<String>, K6Stats, Types) {
    let srv = FaultServer::start(vec![]).with_default(Resp::status(204));
    let url = format!("{}/k6", srv.url());
    let config = Config::from_pairs([
        ("INFLUXDB_URL", url.as_str()),
        ("PERFSINK_SELF_METRICS_INTERVAL_MS", "0"),
        ("PERFSINK_CREATE_DATABASE", "false"),
        ("PERFSINK_GZIP_LEVEL", "0"),
    ])
    .unwrap();
    let sink = Sink::open(config).unwrap();
    let (stats, mut types) = {
        let mut source = K6JsonSource::new(&sink, TagsAsFields::parse(tags_as_fields).unwrap());
        let stats = source.run(input).unwrap();
        let types: Types = source
            .metric_types()
            .map(|(n, t)| (n.to_string(), t))
            .collect();
        (stats, types)
    };
    types.sort_by(|a, b| a.0.cmp(&b.0));
    let report = sink.close();
    assert_eq!(report.stats.written, stats.samples, "{report}");
    let lines = srv
        .requests()
        .iter()
        .filter(|r| r.path == "/write")
        .flat_map(|r| r.lines())
        .collect();
    (lines, stats, types)
}

const DEFINITION: &str = r#"{"type":"Metric","data":{"name":"http_req_duration","type":"trend","contains":"time","thresholds":["p(95)<500"],"submetrics":[{"name":"http_req_duration{expected_response:true}","suffix":"expected_response:true","tags":{"expected_response":"true"}}]},"metric":"http_req_duration"}"#;

#[test]
fn an_http_sample_becomes_k6s_influxdb_line() {
    let input = format!(
        "{DEFINITION}\n{}\n",
        r#"{"metric":"http_req_duration","type":"Point","data":{"time":"2025-06-25T10:00:00.123456789Z","value":105.3,"tags":{"expected_response":"true","group":"","method":"GET","name":"http://x/a b","proto":"HTTP/1.1","scenario":"default","status":"200","url":"http://x/a b"},"metadata":{"vu":"3","iter":"17"}}}"#
    );
    let (lines, stats, types) = convert(&input, "vu:int,iter:int,url");
    assert_eq!(
        types,
        vec![("http_req_duration".to_string(), MetricType::Trend)]
    );
    assert_eq!(
        lines,
        vec![
            "http_req_duration,expected_response=true,method=GET,name=http://x/a\\ b,proto=HTTP/1.1,\
             scenario=default,status=200 value=105.3,url=\"http://x/a b\",vu=3i,iter=17i 1750845600123456789"
        ]
    );
    assert_eq!(stats.samples, 1);
    assert_eq!(stats.metrics, 1);
    assert_eq!(stats.malformed, 0);
}

#[test]
fn escapes_key_orders_offsets_and_missing_parts() {
    let input = [
        // Escaped and non-ASCII tag values, a custom tag; no metadata (vu/iter system tags off).
        r#"{"metric":"my_counter","type":"Point","data":{"time":"2025-06-25T10:00:00Z","value":2,"tags":{"group":"::g \"1\"","weird":"a b,c=d \u00fc\t✓"}}}"#,
        // `data` before `type`, whitespace, an offset timestamp, null metadata, no tags.
        r#" { "data" : { "value" : 1e-3 , "time" : "2025-06-25T12:00:00.5+02:00", "metadata": null } , "type" : "Point" , "metric" : "my_gauge" } "#,
        // A Metric line with `type` after `data`.
        r#"{"data":{"type":"gauge","name":"my_gauge"},"metric":"my_gauge","type":"Metric"}"#,
        // Other metadata keys are string fields; an unparsable vu falls back to a string.
        r#"{"metric":"my_rate","type":"Point","data":{"time":"2025-06-25T10:00:01Z","value":0,"tags":{"scenario":"s"},"metadata":{"trace_id":"abc \"x\"","vu":"x"}}}"#,
    ]
    .join("\n");
    let (lines, stats, types) = convert(&input, "vu:int,iter:int,url");
    assert_eq!(types, vec![("my_gauge".to_string(), MetricType::Gauge)]);
    assert_eq!(
        lines,
        vec![
            "my_counter,group=::g\\ \"1\",weird=a\\ b\\,c\\=d\\ ü\t✓ value=2.0 1750845600000000000",
            "my_gauge value=0.001 1750845600500000000",
            "my_rate,scenario=s value=0.0,trace_id=\"abc \\\"x\\\"\",vu=\"x\" 1750845601000000000",
        ]
    );
    assert_eq!((stats.samples, stats.metrics, stats.malformed), (3, 1, 0));
}

#[test]
fn tags_as_fields_are_typed_and_fall_back_to_strings() {
    let input = r#"{"metric":"http_reqs","type":"Point","data":{"time":"2025-06-25T10:00:00Z","value":1,"tags":{"expected_response":"true","method":"GET","name":"n1","status":"200","url":"u","vu":"7"},"metadata":{"vu":"3","iter":"4"}}}"#;
    let (lines, _, _) = convert(
        input,
        "vu:int,url,status:int,expected_response:bool,name:float",
    );
    // `name` is not a float: a string, as k6 does. The `vu` tag wins over the `vu` metadata.
    assert_eq!(
        lines,
        vec![
            "http_reqs,method=GET value=1.0,expected_response=true,name=\"n1\",status=200i,url=\"u\",vu=7i,iter=4i 1750845600000000000"
        ]
    );
}

/// k6's built-in default `vu,iter,url` (no types) moves those tags; it does not make the `vu`
/// and `iter` metadata strings: they stay integers, as on every other path (a string on one
/// path and an integer on another is a field-type conflict in one database). A typed entry
/// does retype metadata.
#[test]
fn untyped_tags_as_fields_leave_metadata_integers() {
    let input = r#"{"metric":"http_reqs","type":"Point","data":{"time":"2025-06-25T10:00:00Z","value":1,"tags":{"url":"u"},"metadata":{"vu":"3","iter":"4","trace":"9"}}}"#;
    let (lines, _, _) = convert(input, "vu,iter,url");
    assert_eq!(
        lines,
        vec!["http_reqs value=1.0,url=\"u\",vu=3i,iter=4i,trace=\"9\" 1750845600000000000"]
    );
    let (lines, _, _) = convert(input, "vu:string,trace:int");
    assert_eq!(
        lines,
        vec!["http_reqs,url=u value=1.0,vu=\"3\",iter=4i,trace=9i 1750845600000000000"]
    );
}

#[test]
fn lines_that_are_not_k6_output_are_counted_and_skipped() {
    let good = r#"{"metric":"vus","type":"Point","data":{"time":"2025-06-25T10:00:00Z","value":4,"tags":{}}}"#;
    let input = [
        "garbage",
        r#"{"type":"Point"}"#,
        r#"{"metric":"vus","type":"Point","data":{"time":"yesterday","value":4}}"#,
        r#"{"metric":"vus","type":"Point","data":{"time":"2025-06-25T10:00:00Z","value":4,"tags":{"a":"b"}"#,
        r#"{"metric":"vus","type":"Point","data":{"time":"2025-06-25T10:00:00Z","value":"4"}}"#,
        r#"{"type":"Something","data":{}}"#,
        "",
        good,
    ]
    .join("\n");
    let (lines, stats, _) = convert(&input, "vu:int,iter:int,url");
    assert_eq!(lines, vec!["vus value=4.0 1750845600000000000"]);
    assert_eq!(stats.malformed, 6);
    assert_eq!(stats.samples, 1);
}

#[test]
fn many_samples_of_few_series_are_all_written() {
    // The cache path: 20 000 samples over 4 tag sets, in batches.
    let mut input = String::new();
    for i in 0..20_000u64 {
        input.push_str(&format!(
            r#"{{"metric":"http_reqs","type":"Point","data":{{"time":"2025-06-25T10:00:{:02}.{:09}Z","value":1,"tags":{{"status":"{}","url":"http://x/{}"}},"metadata":{{"vu":"{}","iter":"{}"}}}}}}"#,
            i / 1_000_000_000 % 60,
            i,
            200 + i % 2,
            i % 2,
            i % 7,
            i
        ));
        input.push('\n');
    }
    let (lines, stats, _) = convert(&input, "vu:int,iter:int,url");
    assert_eq!(stats.samples, 20_000);
    assert_eq!(lines.len(), 20_000);
    assert!(
        lines[1].starts_with("http_reqs,status=201 value=1.0,url=\"http://x/1\",vu=1i,iter=1i ")
    );
}

/// A reader that hands out its input in small pieces of random size, as a pipe may.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    rng: fastrand::Rng,
}

impl std::io::Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self
            .rng
            .usize(1..=300)
            .min(buf.len())
            .min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn lines_split_between_reads_read_like_whole_ones() {
    let mut input = String::new();
    for i in 0..3_000u64 {
        let line = match i % 6 {
            // k6's own layout (the fast path), tags with a brace and an escape in values.
            0 => format!(
                r#"{{"metric":"http_reqs","type":"Point","data":{{"time":"2025-06-25T10:00:{:02}.{:09}Z","value":1,"tags":{{"name":"a}}b","status":"200","url":"http://x/\"{}\""}}}}}}"#,
                i % 60,
                i,
                i % 3
            ),
            1 => format!(
                r#"{{"metric":"http_req_duration","type":"Point","data":{{"time":"2025-06-25T10:00:{:02}.5Z","value":{}.25,"tags":{{"group":"","method":"GET"}},"metadata":{{"vu":"{}","iter":"{}"}}}}}}"#,
                i % 60,
                i,
                i % 5,
                i
            ),
            // Another key order and whitespace (the general scanner).
            2 => format!(
                r#" {{ "type":"Point", "metric":"vus", "data":{{ "value":{}, "tags":{{ "a" : "b" }}, "time":"2025-06-25T10:00:00+02:00" }} }} "#,
                i % 50
            ),
            3 => r#"{"type":"Metric","data":{"name":"vus","type":"gauge"},"metric":"vus"}"#.into(),
            4 => r#"{"metric":"vus","type":"Point","data":{"time":"2025-06-25T10:00:00Z","value":1,"tags":{"a":"b"}}x}"#.into(),
            _ => format!(
                r#"{{"metric":"my\u005fcounter","type":"Point","data":{{"time":"2025-06-25T10:00:00.{:09}Z","value":2,"tags":null}}}}"#,
                i
            ),
        };
        input.push_str(&line);
        input.push(if i % 2 == 0 { '\n' } else { '\r' });
        if i % 2 == 1 {
            input.push('\n');
        }
    }
    // The last line without its newline.
    input.push_str(
        r#"{"metric":"vus","type":"Point","data":{"time":"2025-06-25T10:00:00Z","value":7,"tags":{}}}"#,
    );
    let whole = convert(&input, "vu:int,iter:int,url");
    assert_eq!(whole.1.samples, 2_001);
    assert_eq!(whole.1.malformed, 500);
    assert_eq!(whole.1.metrics, 500);
    for seed in 0..3 {
        let trickle = Trickle {
            data: input.clone().into_bytes(),
            pos: 0,
            rng: fastrand::Rng::with_seed(seed),
        };
        let pieces = convert_from(trickle, "vu:int,iter:int,url");
        assert_eq!(pieces.1, whole.1);
        assert_eq!(pieces.0, whole.0);
    }
}
