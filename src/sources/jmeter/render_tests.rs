use super::*;
use crate::sources::jmeter::params::resolve;
use crate::sources::jmeter::stats::{Intervals, Sample, TRANSACTION_PREFIX};

const BASE: i64 = 1_700_000_000_000;

fn options(params: &[(&str, &str)]) -> JmeterOptions {
    resolve(params.iter().copied(), std::iter::empty::<(&str, &str)>())
        .unwrap()
        .options
}

fn lines(o: &Output) -> Vec<String> {
    (0..o.lines.len())
        .map(|i| String::from_utf8(o.lines.line(i).to_vec()).unwrap())
        .collect()
}

fn render(o: &JmeterOptions, samples: &[Sample<'_>], until: i64) -> Vec<String> {
    let mut iv = Intervals::new(5000, BASE, usize::MAX);
    for s in samples {
        iv.add(s, o.per_label(s.label));
    }
    let r = Renderer {
        options: o,
        dialect: Dialect::Go,
        precision: Precision::Ns,
    };
    let mut out = Output::default();
    for i in iv.take_until(until) {
        r.interval(&i, 10, 3, &mut out);
    }
    assert_eq!(out.refused, 0, "{:?}", out.first_error);
    lines(&out)
}

/// The built-in listener's lines for a hand-made set: a label with every special character,
/// ties, a sample arriving after a later interval's, a Transaction Controller parent, an
/// assertion failure; true percentiles (nearest rank) over each interval.
#[test]
fn exact_lines_of_two_intervals() {
    let o = options(&[
        ("application", " app "),
        ("TAG_env", "ci"),
        ("percentiles", "50;100"),
    ]);
    let label = " a b,c=d\"e\\f ";
    let tc = format!("{TRANSACTION_PREFIX}2, number of failing samples : 1");
    let base = Sample {
        all_threads: 2,
        success: true,
        ..Sample::default()
    };
    let samples = [
        Sample {
            timestamp_ms: BASE + 1000,
            label,
            elapsed_ms: 100,
            code: "200",
            bytes: 10,
            sent_bytes: 5,
            ..base
        },
        Sample {
            timestamp_ms: BASE + 1500,
            label,
            elapsed_ms: 300,
            code: "500",
            message: "Internal Server Error",
            bytes: 20,
            sent_bytes: 5,
            all_threads: 4,
            success: false,
            ..base
        },
        Sample {
            timestamp_ms: BASE + 6000,
            label: "login",
            elapsed_ms: 50,
            all_threads: 5,
            ..base
        },
        Sample {
            timestamp_ms: BASE + 4999,
            label: "login",
            elapsed_ms: 50,
            ..base
        },
        Sample {
            timestamp_ms: BASE + 2000,
            label: "login",
            elapsed_ms: 50,
            code: "200",
            assertion: "Response was null",
            success: false,
            ..base
        },
        Sample {
            timestamp_ms: BASE + 3000,
            label: "TC",
            elapsed_ms: 400,
            message: &tc,
            bytes: 30,
            sent_bytes: 10,
            all_threads: 3,
            success: false,
            ..base
        },
    ];
    let got = render(&o, &samples, BASE + 10_000);
    let t0 = " 1700000000000000000";
    let t1 = " 1700000005000000000";
    let want: Vec<String> = [
        // Labels in byte order of the label as given (untrimmed: ' a b' first).
        format!("jmeter,application=app,transaction=a\\ b\\,c\\=d\"e\\f,statut=all,env=ci count=2,avg=200.0,min=100.0,max=300.0,hit=2,sb=10,rb=30,pct50.0=100.0,pct100.0=300.0{t0}"),
        format!("jmeter,application=app,transaction=a\\ b\\,c\\=d\"e\\f,statut=ok,env=ci count=1,avg=100.0,min=100.0,max=100.0,hit=2,sb=10,rb=30,pct50.0=100.0,pct100.0=100.0{t0}"),
        format!("jmeter,application=app,transaction=a\\ b\\,c\\=d\"e\\f,statut=ko,env=ci count=1,avg=300.0,min=300.0,max=300.0,hit=2,sb=10,rb=30,pct50.0=300.0,pct100.0=300.0{t0}"),
        format!("jmeter,application=app,transaction=a\\ b\\,c\\=d\"e\\f,responseCode=500,responseMessage=Internal\\ Server\\ Error,env=ci count=1{t0}"),
        format!("jmeter,application=app,transaction=TC,statut=all,env=ci count=1,avg=400.0,min=400.0,max=400.0,hit=1,sb=10,rb=30,pct50.0=400.0,pct100.0=400.0{t0}"),
        format!("jmeter,application=app,transaction=TC,statut=ko,env=ci count=1,avg=400.0,min=400.0,max=400.0,hit=1,sb=10,rb=30,pct50.0=400.0,pct100.0=400.0{t0}"),
        format!("jmeter,application=app,transaction=TC,responseCode=0,responseMessage=Number\\ of\\ samples\\ in\\ transaction\\ :\\ 2\\,\\ number\\ of\\ failing\\ samples\\ :\\ 1,env=ci count=1{t0}"),
        format!("jmeter,application=app,transaction=login,statut=all,env=ci count=2,avg=50.0,min=50.0,max=50.0,hit=2,sb=0,rb=0,pct50.0=50.0,pct100.0=50.0{t0}"),
        format!("jmeter,application=app,transaction=login,statut=ok,env=ci count=1,avg=50.0,min=50.0,max=50.0,hit=2,sb=0,rb=0,pct50.0=50.0,pct100.0=50.0{t0}"),
        format!("jmeter,application=app,transaction=login,statut=ko,env=ci count=1,avg=50.0,min=50.0,max=50.0,hit=2,sb=0,rb=0,pct50.0=50.0,pct100.0=50.0{t0}"),
        format!("jmeter,application=app,transaction=login,responseCode=Assertion\\ failed,responseMessage=Response\\ was\\ null,env=ci count=1{t0}"),
        // OK-only avg/min/max; percentiles over all five samples (50,50,100,300,400).
        format!("jmeter,application=app,transaction=all,statut=all,env=ci count=5,countError=3,avg=75.0,min=50.0,max=100.0,hit=4,sb=10,rb=30,pct50.0=100.0,pct100.0=400.0{t0}"),
        format!("jmeter,application=app,transaction=internal,env=ci minAT=2,maxAT=4,meanAT=2,startedT=10,endedT=3{t0}"),
        format!("jmeter,application=app,transaction=login,statut=all,env=ci count=1,avg=50.0,min=50.0,max=50.0,hit=1,sb=0,rb=0,pct50.0=50.0,pct100.0=50.0{t1}"),
        format!("jmeter,application=app,transaction=login,statut=ok,env=ci count=1,avg=50.0,min=50.0,max=50.0,hit=1,sb=0,rb=0,pct50.0=50.0,pct100.0=50.0{t1}"),
        format!("jmeter,application=app,transaction=all,statut=all,env=ci count=1,countError=0,avg=50.0,min=50.0,max=50.0,hit=1,sb=0,rb=0,pct50.0=50.0,pct100.0=50.0{t1}"),
        format!("jmeter,application=app,transaction=internal,env=ci minAT=5,maxAT=5,meanAT=5,startedT=10,endedT=3{t1}"),
    ]
    .into_iter()
    .map(|l| l + "\n")
    .collect();
    assert_eq!(got, want);
}

/// `summaryOnly`, `samplersRegex`; no application tag when it is empty; no `avg/min/max`
/// on a summary without OK samples; an interval without samples has only its `internal`
/// line.
#[test]
fn summary_only_regex_and_empty_intervals() {
    let fail = Sample {
        timestamp_ms: BASE,
        label: "x",
        elapsed_ms: 7,
        ..Sample::default()
    };
    let got = render(
        &options(&[("summaryOnly", "true"), ("percentiles", "")]),
        &[fail],
        BASE + 10_000,
    );
    assert_eq!(
        got,
        [
            "jmeter,transaction=all,statut=all count=1,countError=1,hit=1,sb=0,rb=0 1700000000000000000\n",
            "jmeter,transaction=internal minAT=0,maxAT=0,meanAT=0,startedT=10,endedT=3 1700000000000000000\n",
            "jmeter,transaction=internal minAT=0,maxAT=0,meanAT=0,startedT=10,endedT=3 1700000005000000000\n",
        ]
    );
    let got = render(
        &options(&[("samplersRegex", "^y"), ("percentiles", "")]),
        &[fail],
        BASE + 5000,
    );
    assert!(got.iter().all(|l| !l.contains("transaction=x")), "{got:?}");
}

/// The annotations: title, user tags, `tags`; the text's `"` escaped.
#[test]
fn events_lines() {
    let o = options(&[
        ("application", "shop"),
        ("TAG_env", "ci"),
        ("eventTags", "a b"),
        ("testTitle", "Say \"hi\""),
    ]);
    let r = Renderer {
        options: &o,
        dialect: Dialect::Go,
        precision: Precision::Ms,
    };
    let mut out = Output::default();
    r.event(true, BASE, &mut out);
    r.event(false, BASE + 1, &mut out);
    assert_eq!(
        lines(&out),
        [
            "events,application=shop,title=ApacheJMeter,env=ci,tags=a\\ b text=\"Say \\\"hi\\\" started\" 1700000000000\n",
            "events,application=shop,title=ApacheJMeter,env=ci,tags=a\\ b text=\"Say \\\"hi\\\" ended\" 1700000000001\n",
        ]
    );
}

/// A label no server can store as written (a trailing backslash) is refused and counted,
/// not written as a broken line; a newline becomes `\n` as in the built-in.
#[test]
fn unwritable_label_is_refused_and_counted() {
    let o = options(&[("percentiles", "")]);
    let r = Renderer {
        options: &o,
        dialect: Dialect::Go,
        precision: Precision::Ns,
    };
    let mut iv = Intervals::new(5000, BASE, usize::MAX);
    iv.add(
        &Sample {
            timestamp_ms: BASE,
            label: "bad\\",
            success: true,
            ..Sample::default()
        },
        true,
    );
    iv.add(
        &Sample {
            timestamp_ms: BASE,
            label: "two\nlines",
            success: true,
            ..Sample::default()
        },
        true,
    );
    iv.add(
        &Sample {
            timestamp_ms: BASE,
            label: "a\\ b",
            success: true,
            ..Sample::default()
        },
        true,
    );
    let mut out = Output::default();
    for i in iv.take_until(BASE + 5000) {
        r.interval(&i, 0, 0, &mut out);
    }
    assert_eq!(out.refused, 2, "all and ok lines of bad\\");
    // `a\\ b` is stored as it is: its escaped key still splits where it must.
    assert!(lines(&out)
        .iter()
        .any(|l| l.starts_with("jmeter,transaction=a\\\\ b,statut=ok ")));
    assert!(lines(&out)
        .iter()
        .any(|l| l.contains("transaction=two\\nlines,statut=ok")));
}

/// Past the exact window (512 samples) the histogram answers the percentiles: JMeter's order
/// `99;95;90;50` (descending) must still give every field, each its own nearest rank.
#[test]
fn every_percentile_of_a_busy_interval_in_jmeter_order() {
    let o = options(&[("percentiles", "99;95;90;50")]);
    let samples: Vec<Sample<'_>> = (1..=1000)
        .map(|i| Sample {
            timestamp_ms: BASE + i,
            label: "busy",
            elapsed_ms: i,
            code: "200",
            success: true,
            all_threads: 1,
            ..Sample::default()
        })
        .collect();
    let out = render(&o, &samples, BASE + 5000);
    let all = out
        .iter()
        .find(|l| l.contains("transaction=busy,statut=all"))
        .unwrap();
    for (field, want) in [
        ("pct99.0", 990.0),
        ("pct95.0", 950.0),
        ("pct90.0", 900.0),
        ("pct50.0", 500.0),
    ] {
        let at = all
            .find(&format!("{field}="))
            .unwrap_or_else(|| panic!("{field} missing: {all}"));
        let got: f64 = all[at + field.len() + 1..]
            .split([',', ' '])
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (got - want).abs() <= want * 0.001,
            "{field}={got}, want {want}: {all}"
        );
    }
}
