//! RFC 8785 JSON Canonicalization Scheme (JCS).
//!
//! [`canonical_json`] renders a [`serde_json::Value`] as the one byte string
//! RFC 8785 assigns to it:
//!
//! * no insignificant whitespace;
//! * object members sorted by their keys compared as sequences of UTF-16
//!   code units (not UTF-8 bytes, not code points);
//! * strings escaped exactly as ECMAScript's `JSON.stringify` does: only `"`,
//!   `\` and the control characters below U+0020 are escaped (`\b \f \n \r
//!   \t` in short form, the rest as `\u00xx` with lowercase hex); everything
//!   else, including non-ASCII and U+2028/U+2029, is written as literal UTF-8;
//! * numbers in ECMAScript `Number.prototype.toString` form, the shortest
//!   decimal that round-trips through an IEEE 754 double.
//!
//! JCS treats every number as an IEEE 754 double. An integer beyond ±2^53
//! that a double cannot carry unchanged (e.g. 2^53 + 1, `u64::MAX`) is
//! rejected with [`CanonicalError::NumberOutOfRange`]: a verifier in another
//! language could not reproduce the bytes. Every integer within ±2^53 is fine.
//!
//! Exact ties between two shortest decimal forms go to the even digit
//! string, as RFC 8785 Appendix B expects (`1424953923781206.2`).

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// 2^53: the largest magnitude up to which every integer is an exact double.
const MAX_EXACT_INTEGER: u64 = 1 << 53;

/// Why a value has no canonical encoding.
#[derive(Debug, thiserror::Error)]
pub enum CanonicalError {
    /// An integer beyond ±2^53 that does not survive the trip through an
    /// IEEE 754 double unchanged (or, with unusual `serde_json` features, a
    /// non-finite number).
    #[error("number {0} cannot be represented exactly as an IEEE 754 double")]
    NumberOutOfRange(String),
    /// The value could not be converted to a JSON value at all.
    #[error("value cannot be converted to JSON: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Render `value` in RFC 8785 canonical form.
///
/// # Errors
///
/// [`CanonicalError::NumberOutOfRange`] if the value contains an integer
/// beyond ±2^53 that a double cannot represent exactly.
pub fn canonical_json(value: &Value) -> Result<String, CanonicalError> {
    let mut out = String::new();
    write_value(&mut out, value)?;
    Ok(out)
}

/// Serialize `value` with serde, then return its RFC 8785 canonical UTF-8 bytes.
///
/// # Errors
///
/// [`CanonicalError::Serialize`] if serde cannot represent the value as JSON
/// (for instance a map with non-string keys), and
/// [`CanonicalError::NumberOutOfRange`] as for [`canonical_json`].
pub fn canonical_bytes<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let value = serde_json::to_value(value)?;
    canonical_json(&value).map(String::into_bytes)
}

fn write_value(out: &mut String, value: &Value) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item)?;
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map)?,
    }
    Ok(())
}

fn write_object(out: &mut String, map: &Map<String, Value>) -> Result<(), CanonicalError> {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    members.sort_by(|(a, _), (b, _)| utf16_cmp(a, b));
    out.push('{');
    for (i, (key, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        write_value(out, value)?;
    }
    out.push('}');
    Ok(())
}

/// Order two strings by their UTF-16 code units, as RFC 8785 §3.2.3 requires.
fn utf16_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

pub(crate) fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_number(out: &mut String, n: &Number) -> Result<(), CanonicalError> {
    if let Some(u) = n.as_u64() {
        write_integer(out, u <= MAX_EXACT_INTEGER, u.to_string(), u as f64, n)
    } else if let Some(i) = n.as_i64() {
        let small = i.unsigned_abs() <= MAX_EXACT_INTEGER;
        write_integer(out, small, i.to_string(), i as f64, n)
    } else {
        match n.as_f64() {
            Some(f) if f.is_finite() => {
                out.push_str(&ecmascript_number(f));
                Ok(())
            }
            _ => Err(CanonicalError::NumberOutOfRange(n.to_string())),
        }
    }
}

/// An integer is canonical as its own decimal text, provided that text is
/// also the ECMAScript form of the double it denotes. Always true within
/// ±2^53; beyond, only for integers that survive the trip through a double
/// unchanged (such as the integer-form output of a large double), which
/// keeps every encoding this module produces re-parseable to itself.
fn write_integer(
    out: &mut String,
    small: bool,
    text: String,
    as_double: f64,
    n: &Number,
) -> Result<(), CanonicalError> {
    if small || ecmascript_number(as_double) == text {
        out.push_str(&text);
        Ok(())
    } else {
        Err(CanonicalError::NumberOutOfRange(n.to_string()))
    }
}

/// ECMAScript `Number::toString(x)` (ECMA-262 `Number::toString`, radix 10)
/// for finite `x`.
fn ecmascript_number(x: f64) -> String {
    if x == 0.0 {
        // Both +0 and -0 print as "0".
        return "0".to_owned();
    }
    let (digits, n) = shortest_digits(x.abs());
    // x = 0.d1d2...dk × 10^n with k digits.
    let k = i32::try_from(digits.len()).unwrap_or(i32::MAX);

    let mut out = String::new();
    if x < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        // Integer: the digits, then n-k zeros.
        out.push_str(&digits);
        push_zeros(&mut out, n - k);
    } else if 0 < n && n <= 21 {
        // Decimal point inside the digits.
        let (int_part, frac_part) = digits.split_at(usize::try_from(n).unwrap_or(0));
        out.push_str(int_part);
        out.push('.');
        out.push_str(frac_part);
    } else if -6 < n && n <= 0 {
        // Small magnitude: 0.000ddd
        out.push_str("0.");
        push_zeros(&mut out, -n);
        out.push_str(&digits);
    } else {
        // Exponential form: d[.ddd]e±(n-1)
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let e = n - 1;
        let sign = if e < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{}", e.unsigned_abs());
    }
    out
}

/// The shortest decimal digit string `s` (no leading or trailing zeros) and
/// exponent `n` with `x = 0.s × 10^n` that round-trips to the positive finite
/// `x`, closest to `x`, with exact ties going to the even digit string.
fn shortest_digits(x: f64) -> (String, i32) {
    // Rust's `{:e}` without a precision yields the shortest round-trip digit
    // string nearest to x, but on an exact tie it rounds the last digit up.
    let (digits, n) = split_scientific(&format!("{x:e}"));
    if digits.len() < 15 {
        // A tie needs the exact expansion to have only one digit more than
        // the shortest form, which happens only near the 17-digit limit.
        return (digits, n);
    }
    // The exact decimal expansion of a double has at most 767 significant digits.
    let (exact, exact_n) = split_scientific(&format!("{x:.800e}"));
    if exact.len() != digits.len() + 1 || !exact.ends_with('5') {
        return (digits, n);
    }
    let low = &exact[..digits.len()];
    if low.ends_with(['0', '2', '4', '6', '8'])
        && low != digits
        && format!("0.{low}e{exact_n}").parse::<f64>().ok() == Some(x)
    {
        return (low.to_owned(), exact_n);
    }
    (digits, n)
}

/// Split Rust's `d.ddde[-]X` into (digits without trailing zeros, X + 1).
fn split_scientific(sci: &str) -> (String, i32) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    (digits, exp + 1)
}

fn push_zeros(out: &mut String, count: i32) {
    for _ in 0..count {
        out.push('0');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(x: f64) -> String {
        ecmascript_number(x)
    }

    #[test]
    fn ecmascript_number_forms() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (100.0, "100"),
            (123_456_789.0, "123456789"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (1e-6, "0.000001"),
            (1.5e-6, "0.0000015"),
            (1e-7, "1e-7"),
            (1.25e-7, "1.25e-7"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (-5e-324, "-5e-324"),
            (9_007_199_254_740_992.0, "9007199254740992"),
            (295_147_905_179_352_830_000.0, "295147905179352830000"),
        ];
        for (x, want) in cases {
            assert_eq!(num(*x), *want, "formatting {x:?}");
        }
    }

    #[test]
    fn utf16_order_differs_from_utf8_order() {
        // U+FB33 (one UTF-16 unit 0xFB33) vs U+1F600 (surrogates 0xD83D..):
        // UTF-8 puts U+FB33 first, UTF-16 puts the emoji first.
        assert_eq!("\u{fb33}".cmp("\u{1f600}"), Ordering::Less);
        assert_eq!(utf16_cmp("\u{fb33}", "\u{1f600}"), Ordering::Greater);
    }

    #[test]
    fn integer_range_limits() {
        let ok = serde_json::json!([9_007_199_254_740_992_u64, -9_007_199_254_740_992_i64]);
        assert_eq!(
            canonical_json(&ok).unwrap(),
            "[9007199254740992,-9007199254740992]"
        );
        for bad in [
            serde_json::json!(9_007_199_254_740_993_u64),
            serde_json::json!(-9_007_199_254_740_993_i64),
            serde_json::json!(u64::MAX),
            serde_json::json!(i64::MIN),
        ] {
            assert!(matches!(
                canonical_json(&bad),
                Err(CanonicalError::NumberOutOfRange(_))
            ));
        }
    }
}
