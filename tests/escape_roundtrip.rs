//! Names made of every byte line protocol treats specially, written through the engine to a
//! real influxd 1.6.7 and read back. What the engine takes must come back byte for byte
//! (`SHOW MEASUREMENTS`, `SHOW TAG VALUES`, `SHOW FIELD KEYS`, `SELECT`); what it refuses is
//! refused with `InvalidInput` and counted, and the plain escaping of a refused name indeed
//! does not come back from the server, so no refusal is needless. 3.x has no server here: its
//! own parser checks the 3.x rules in `lineproto::escape`'s unit tests.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::influx::{quote_ident, series_rows};
use common::{FaultServer, Influx, Resp};
use perfsink::config::ServerVersion;
use perfsink::lineproto::escape::{escape_identifier, Element};
use perfsink::lineproto::Dialect;
use perfsink::{Error, Field, FieldValue, Point, Sink, Tag};
use serde_json::{json, Value};

const T0: i64 = 1_700_000_000_000_000_000;
const FLUSH: Duration = Duration::from_secs(20);
const CASES: usize = 300;

/// Every byte some part of a line treats specially, non-ASCII, and plain letters half of the
/// time so that a fair share of names can be stored.
fn name(rng: &mut fastrand::Rng) -> String {
    const SPECIAL: [&str; 17] = [
        " ", ",", "=", "\"", "\\", "\t", "\r", "\n", "\u{c}", "\u{1}", "\u{0}", "\u{7f}", "é", "✓",
        "😀", "#", "_",
    ];
    (0..rng.usize(1..7))
        .map(|_| match rng.bool() {
            true => "b",
            false => SPECIAL[rng.usize(..SPECIAL.len())],
        })
        .collect()
}

/// One generated point: measurement, one tag, one field key.
struct Case {
    m: String,
    tk: String,
    tv: String,
    fk: String,
}

impl Case {
    fn new(rng: &mut fastrand::Rng) -> Case {
        loop {
            let c = Case {
                m: name(rng),
                tk: name(rng),
                tv: name(rng),
                fk: name(rng),
            };
            // A tag and a field of one name make `SELECT` ambiguous; not what is tested here.
            if c.tk != c.fk {
                return c;
            }
        }
    }
}

/// What InfluxDB must hold: measurements, `(measurement, tag key, tag value)` and
/// `(measurement, field key)`.
#[derive(Default, Debug, PartialEq)]
struct Names {
    measurements: BTreeSet<String>,
    tags: BTreeSet<(String, String, String)>,
    fields: BTreeSet<(String, String)>,
}

impl Names {
    fn add(&mut self, c: &Case) {
        self.measurements.insert(c.m.clone());
        if !c.tv.is_empty() {
            self.tags.insert((c.m.clone(), c.tk.clone(), c.tv.clone()));
        }
        self.fields.insert((c.m.clone(), c.fk.clone()));
    }

    fn read(influx: &Influx, db: &str) -> Names {
        let mut names = Names::default();
        for row in influx.query_rows(db, "SHOW MEASUREMENTS") {
            names.measurements.insert(text(&row[0]));
        }
        for s in influx.query_series(db, "SHOW TAG VALUES WITH KEY =~ /.*/") {
            for row in s["values"].as_array().unwrap() {
                names
                    .tags
                    .insert((text(&s["name"]), text(&row[0]), text(&row[1])));
            }
        }
        for s in influx.query_series(db, "SHOW FIELD KEYS") {
            for row in s["values"].as_array().unwrap() {
                names.fields.insert((text(&s["name"]), text(&row[0])));
            }
        }
        names
    }
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("{v} is not a string"))
        .to_string()
}

fn open(influx: &Influx, db: &str) -> Sink {
    let kv = format!(
        "INFLUXDB_URL={};INFLUXDB_DB={db};PERFSINK_FLUSH_INTERVAL_MS=50;\
         PERFSINK_SELF_METRICS_INTERVAL_MS=0",
        influx.url()
    );
    Sink::from_kv(&kv).unwrap()
}

/// The one point at `ts` (timestamps are unique in a database), found without naming the
/// measurement (InfluxQL cannot quote every name a measurement may have): its measurement,
/// tags and the value of field `fk`.
fn point_at(influx: &Influx, db: &str, fk: &str, ts: i64) -> (String, Value, Value) {
    let q = format!("SELECT * FROM /.*/ WHERE time = {ts} GROUP BY *");
    let series = influx.query_series(db, &q);
    assert_eq!(series.len(), 1, "{q:?}: {series:?}");
    let rows = series_rows(&series);
    assert_eq!(rows.len(), 1, "{q:?}: {series:?}");
    let value = rows[0].get(fk).cloned().unwrap_or(Value::Null);
    // `GROUP BY *` over all measurements lists every tag key of the database, empty when the
    // point has no such tag.
    let mut tags = series[0]["tags"].as_object().cloned().unwrap_or_default();
    tags.retain(|_, v| v != "");
    (text(&series[0]["name"]), Value::Object(tags), value)
}

/// The tags InfluxDB reports for a case's series (an empty value reads as no tag).
fn tags_of(c: &Case) -> Value {
    match c.tv.is_empty() {
        true => json!({}),
        false => json!({ c.tk.clone(): c.tv.clone() }),
    }
}

#[test]
fn generated_names_read_back_byte_for_byte_or_are_refused() {
    let influx = Influx::start();
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    // Two databases: fast-path floats and record-path strings never share a field's type.
    let (fast, rec) = (open(&influx, "fast"), open(&influx, "rec"));
    assert_eq!(
        fast.config().server_version,
        ServerVersion::V1,
        "/ping at open"
    );

    let (mut fast_names, mut rec_names) = (Names::default(), Names::default());
    let (mut fast_taken, mut rec_taken, mut rec_refused) = (Vec::new(), Vec::new(), 0);
    let mut refused_cases = Vec::new();
    for i in 0..CASES {
        // The fast path: a registered series, its value field, one point.
        let c = Case::new(&mut rng);
        let tags = [Tag::new(&c.tk, &c.tv)];
        match fast.register_series(&c.m, &tags, &c.fk) {
            Ok(id) => {
                let (ts, value) = (T0 + i as i64, i as f64 + 0.5);
                assert_eq!(
                    fast.submit(&[Point::new(id, value, ts)]).into_result(),
                    Ok(1)
                );
                fast_names.add(&c);
                fast_taken.push((c, ts, value));
            }
            Err(Error::InvalidInput(_)) => refused_cases.push(c),
            Err(e) => panic!("{e:?}"),
        }
        // The record path, with a string field of the same alphabet.
        let c = Case::new(&mut rng);
        let sv = name(&mut rng);
        let ts = T0 + (CASES + i) as i64;
        let fields = [Field::new(&c.fk, FieldValue::Str(&sv))];
        match rec.record(&c.m, &[Tag::new(&c.tk, &c.tv)], &fields, ts) {
            Ok(()) => {
                rec_names.add(&c);
                rec_taken.push((c, ts, sv));
            }
            Err(Error::InvalidInput(_)) => {
                rec_refused += 1;
                refused_cases.push(c);
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(
        fast_taken.len() > CASES / 5 && refused_cases.len() > CASES / 5,
        "{} taken, {} refused: the generator no longer tests both",
        fast_taken.len(),
        refused_cases.len()
    );
    eprintln!(
        "fast path: {} taken; record path: {} taken, {rec_refused} refused",
        fast_taken.len(),
        rec_taken.len()
    );
    fast.flush(FLUSH).unwrap();
    rec.flush(FLUSH).unwrap();

    assert_eq!(Names::read(&influx, "fast"), fast_names);
    assert_eq!(Names::read(&influx, "rec"), rec_names);
    for (c, ts, value) in &fast_taken {
        let want = (c.m.clone(), tags_of(c), json!(value));
        assert_eq!(point_at(&influx, "fast", &c.fk, *ts), want);
    }
    for (c, ts, sv) in &rec_taken {
        let want = (c.m.clone(), tags_of(c), json!(sv));
        assert_eq!(point_at(&influx, "rec", &c.fk, *ts), want);
    }

    let s = fast.close().stats;
    assert_eq!(
        (s.written, s.rejected, s.dropped),
        (fast_taken.len() as u64, 0, 0),
        "{s:?}"
    );
    let s = rec.close().stats;
    assert_eq!(
        (s.written, s.rejected_invalid, s.rejected_server, s.dropped),
        (rec_taken.len() as u64, rec_refused, 0, 0),
        "{s:?}"
    );

    plain_escapes_of_refused_names_do_not_read_back(&influx, &refused_cases);
}

/// For each refused name, the plain escaping (a backslash before `,`, space and `=`, and
/// `"` in a field key) written straight to influxd: the name must not come back as it was,
/// or the refusal was needless. Names refused only for the combination of a series key (the
/// line splitter, `go_key_splits_cleanly`) are left out: each name alone reads back.
fn plain_escapes_of_refused_names_do_not_read_back(influx: &Influx, cases: &[Case]) {
    let plain = |s: &str, el: Element| -> String {
        s.chars()
            .flat_map(|c| {
                let special = matches!(c, ',' | ' ')
                    || (c == '=' && el != Element::Measurement)
                    || (c == '"' && el == Element::FieldKey);
                special.then_some('\\').into_iter().chain([c])
            })
            .collect()
    };
    let mut checked = 0;
    for (n, c) in cases.iter().enumerate() {
        let parts = [
            (&c.m, Element::Measurement),
            (&c.tk, Element::TagKey),
            (&c.tv, Element::TagValue),
            (&c.fk, Element::FieldKey),
        ];
        for (i, &(s, el)) in parts.iter().enumerate() {
            let alone = escape_identifier(&mut Vec::new(), s, el, Dialect::Go);
            if alone.is_ok() || (el == Element::Measurement && s.starts_with('#')) {
                continue;
            }
            let db = format!("naive{n}_{i}");
            influx.create_db(&db);
            let e = plain(s, el);
            let line = match el {
                Element::Measurement => format!("{e},t=x f=1 1"),
                Element::TagKey => format!("m,{e}=x f=1 1"),
                Element::TagValue => format!("m,t={e} f=1 1"),
                Element::FieldKey => format!("m {e}=1 1"),
            };
            let status = influx.write(&db, "ns", &line).status;
            let stored = match status {
                204 => {
                    let names = Names::read(influx, &db);
                    match el {
                        Element::Measurement => names.measurements.contains(s),
                        Element::TagKey => names.tags.iter().any(|t| &t.1 == s),
                        Element::TagValue => names.tags.iter().any(|t| &t.2 == s),
                        Element::FieldKey => names.fields.iter().any(|f| &f.1 == s),
                    }
                }
                _ => false,
            };
            assert!(
                !stored,
                "{el:?} {s:?} was refused, but influxd stores {line:?} as it is"
            );
            influx.exec("", &format!("DROP DATABASE {}", quote_ident(&db)));
            checked += 1;
        }
        if checked >= 40 {
            break;
        }
    }
    eprintln!("{checked} refused names checked against their plain escaping");
    assert!(checked >= 20, "only {checked} refused names checked");
}

/// A sink on a stand-in server whose `/ping` gets `ping`; the first request it sees is the
/// probe.
fn open_on(srv: &FaultServer, extra: &str) -> Sink {
    let kv = format!(
        "INFLUXDB_URL={};PERFSINK_SELF_METRICS_INTERVAL_MS=0;PERFSINK_CREATE_DATABASE=false;\
         PERFSINK_GZIP_LEVEL=0;PERFSINK_FLUSH_INTERVAL_MS=50;{extra}",
        srv.url()
    );
    Sink::from_kv(&kv).unwrap()
}

fn written_lines(srv: &FaultServer) -> Vec<String> {
    let requests = srv.requests();
    requests
        .iter()
        .filter(|r| r.path == "/write")
        .flat_map(|r| r.lines())
        .collect()
}

#[test]
fn auto_asks_ping_once_and_a_3x_server_gets_3x_escaping() {
    let srv = FaultServer::start(vec![Resp::status(204).header("X-Influxdb-Version", "3.1.0")])
        .with_default(Resp::status(204));
    let sink = open_on(&srv, "");
    assert_eq!(sink.config().server_version, ServerVersion::V3);
    let tags = [Tag::new("path", "C:\\x y")];
    let fields = [Field::new("v", FieldValue::Int(1))];
    sink.record("m", &tags, &fields, T0).unwrap();
    sink.flush(FLUSH).unwrap();
    assert_eq!(
        written_lines(&srv),
        ["m,path=C:\\\\x\\ y v=1i 1700000000000000000"]
    );
    let requests = srv.requests();
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", "/ping")
    );
    assert_eq!(requests.iter().filter(|r| r.path == "/ping").count(), 1);

    // The configured version wins, and no probe is sent.
    let srv = FaultServer::start(vec![]).with_default(Resp::status(204));
    let sink = open_on(&srv, "INFLUXDB_VERSION=1");
    sink.record("m", &tags, &fields, T0).unwrap();
    sink.flush(FLUSH).unwrap();
    assert_eq!(
        written_lines(&srv),
        ["m,path=C:\\x\\ y v=1i 1700000000000000000"]
    );
    assert!(srv.requests().iter().all(|r| r.path == "/write"));
}

#[test]
fn a_server_that_does_not_tell_gets_the_1x_rules_and_open_stays_bounded() {
    // No version header, then a /ping that never answers in time.
    for ping in [
        Resp::status(204),
        Resp::status(204).delay(Duration::from_secs(30)),
    ] {
        let srv = FaultServer::start(vec![ping]).with_default(Resp::status(204));
        let started = Instant::now();
        let sink = open_on(&srv, "");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(sink.config().server_version, ServerVersion::Auto);
        sink.record(
            "m",
            &[Tag::new("t", "a\\ b")],
            &[Field::new("v", FieldValue::Int(1))],
            T0,
        )
        .unwrap();
        sink.flush(FLUSH).unwrap();
        assert_eq!(
            written_lines(&srv),
            ["m,t=a\\\\ b v=1i 1700000000000000000"]
        );
    }
}
