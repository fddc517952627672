//! k6's JSON output stream (`src/sources/k6/json.rs` over `scanner.rs` and `rfc3339.rs`) into
//! an enabled sink that never connects, so every sample is parsed, registered and encoded as
//! `perfsink k6` does it.
//!
//! Input: one byte choosing the `tagsAsFields` spec, four bytes of read sizes, then the stream.
//! Besides "no panic, no sanitizer report", it checks:
//! - the stream read in one piece and read in the fuzzer's pieces (lines split between reads,
//!   as a FIFO delivers them) gives the same counts, metric types and first error;
//! - the timestamp cache reads every line as the uncached RFC 3339 parser does.
#![no_main]

mod common;

use std::io::{self, Read};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use perfsink::sources::k6::json::{K6JsonSource, K6Stats};
use perfsink::sources::k6::rfc3339::{parse_rfc3339_ns, TimeCache};
use perfsink::sources::k6::schema::TagsAsFields;
use perfsink::Sink;

const SPECS: [&str; 4] = [
    "vu:int,iter:int,url",
    "",
    "vu:int,iter:int,url,status:int,expected_response:bool,name",
    "group:float,method:bool,error_code:int,vu:string",
];

fn sink() -> &'static Sink {
    static SINK: OnceLock<Sink> = OnceLock::new();
    SINK.get_or_init(|| {
        Sink::from_kv(&common::unreachable_config("PERFSINK_SOURCE=k6"))
            .expect("the fuzz sink's configuration")
    })
}

/// `data` in reads of the given sizes, round robin (0: whatever the reader asks).
struct Pieces<'a> {
    data: &'a [u8],
    sizes: [u8; 4],
    i: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = match self.sizes[self.i % 4] {
            0 => buf.len(),
            n => n as usize,
        };
        self.i += 1;
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// What a read of the stream yields: its counts, the metric types seen, its first error.
type Outcome = (K6Stats, Vec<(String, String)>, Option<String>);

fn read_all(spec: &TagsAsFields, input: impl Read) -> Outcome {
    let mut source = K6JsonSource::new(sink(), spec.clone());
    let stats = source.run(input).expect("reading a slice cannot fail");
    let mut types: Vec<(String, String)> = source
        .metric_types()
        .map(|(name, kind)| (name.to_string(), format!("{kind:?}")))
        .collect();
    types.sort();
    let _ = stats.to_string();
    (stats, types, source.first_error().map(str::to_string))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let spec = TagsAsFields::parse(SPECS[(data[0] % 4) as usize]).expect("a valid spec");
    let sizes = [data[1], data[2], data[3], data[4]];
    let stream = &data[5..];

    let whole = read_all(&spec, stream);
    let pieces = read_all(
        &spec,
        Pieces {
            data: stream,
            sizes,
            i: 0,
        },
    );
    assert_eq!(whole, pieces, "the stream reads differently in pieces");

    let mut cache = TimeCache::default();
    for line in stream.split(|&b| b == b'\n') {
        // The time value of a line, or the line itself when it is short.
        let time = match line.windows(8).position(|w| w == b"\"time\":\"") {
            Some(at) => {
                let rest = &line[at + 8..];
                &rest[..rest.iter().position(|&b| b == b'"').unwrap_or(rest.len())]
            }
            None if line.len() <= 48 => line,
            None => continue,
        };
        let cached = cache.parse(time);
        let plain = std::str::from_utf8(time).ok().and_then(parse_rfc3339_ns);
        if let Ok(text) = std::str::from_utf8(time) {
            assert_eq!(cached, plain, "the time cache reads {text:?} differently");
        } else {
            assert_eq!(cached, None, "a time that is not UTF-8 was read");
        }
    }
});
