//! Exact numbers for the aggregated-mode checks, which compare sums bit for bit:
//!
//! * [`fsum`]: the correctly rounded sum of floats (Shewchuk's partials with the final
//!   round-half-even step of Python's `math.fsum`), the oracle of an interval's `sum`;
//! * [`parse_exact`]: JSON with every number read by Rust's correctly rounding `str::parse`.
//!   `serde_json` without its `float_roundtrip` feature (this crate does not enable it) may
//!   read a 17-digit float one ulp off, and InfluxDB answers a float sum with 17 digits.

use serde_json::{Number, Value};

/// The sum of `values` rounded once, to the nearest float (ties to even), as Python's
/// `math.fsum` computes it. The values must be finite.
pub fn fsum(values: impl IntoIterator<Item = f64>) -> f64 {
    // Non-overlapping partials, increasing magnitude, whose exact total is the exact sum.
    let mut partials: Vec<f64> = Vec::new();
    for mut x in values {
        let mut i = 0;
        for j in 0..partials.len() {
            let mut y = partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                partials[i] = lo;
                i += 1;
            }
            x = hi;
        }
        partials.truncate(i);
        partials.push(x);
    }
    let Some(mut n) = partials.len().checked_sub(1) else {
        return 0.0;
    };
    // Add from the top until the sum is inexact; `lo` is then what was rounded away.
    let mut hi = partials[n];
    let mut lo = 0.0;
    while n > 0 {
        let x = hi;
        n -= 1;
        let y = partials[n];
        hi = x + y;
        lo = y - (hi - x);
        if lo != 0.0 {
            break;
        }
    }
    // `lo` exactly half an ulp, and the partials below pull the same way: the rounding to
    // even went the wrong way, so take the other neighbour.
    if n > 0 && ((lo < 0.0 && partials[n - 1] < 0.0) || (lo > 0.0 && partials[n - 1] > 0.0)) {
        let y = lo * 2.0;
        let x = hi + y;
        if y == x - hi {
            hi = x;
        }
    }
    hi
}

/// Marks a number's text while it travels through `serde_json` as a string.
const NUMBER_MARK: char = '\u{0}';

/// Parses JSON text like `serde_json::from_str`, except that every number is read exactly:
/// integers as integers, anything with a fraction or exponent with `str::parse::<f64>`.
pub fn parse_exact(text: &str) -> Value {
    let mut quoted = String::with_capacity(text.len() + text.len() / 8);
    let mut chars = text.chars().peekable();
    let (mut in_string, mut escaped) = (false, false);
    while let Some(c) = chars.next() {
        if in_string {
            quoted.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '-' || c.is_ascii_digit() {
            // A number token (outside strings only numbers start with these): quote it.
            quoted.push('"');
            quoted.push_str("\\u0000");
            quoted.push(c);
            while let Some(&d) = chars.peek() {
                if !(d.is_ascii_digit() || matches!(d, '.' | 'e' | 'E' | '+' | '-')) {
                    break;
                }
                quoted.push(d);
                chars.next();
            }
            quoted.push('"');
        } else {
            in_string = c == '"';
            quoted.push(c);
        }
    }
    let v: Value = serde_json::from_str(&quoted)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", &text[..text.len().min(300)]));
    unquote_numbers(v)
}

fn unquote_numbers(v: Value) -> Value {
    match v {
        Value::String(s) => match s.strip_prefix(NUMBER_MARK) {
            Some(n) => Value::Number(exact_number(n)),
            None => Value::String(s),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(unquote_numbers).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, unquote_numbers(v)))
                .collect(),
        ),
        other => other,
    }
}

fn exact_number(text: &str) -> Number {
    let integer = !text.contains(['.', 'e', 'E']);
    if integer {
        if let Ok(u) = text.parse::<u64>() {
            return Number::from(u);
        }
        if let Ok(i) = text.parse::<i64>() {
            return Number::from(i);
        }
    }
    let f: f64 = text
        .parse()
        .unwrap_or_else(|e| panic!("{text:?} is not a number: {e}"));
    Number::from_f64(f).unwrap_or_else(|| panic!("{text:?} is not finite"))
}
