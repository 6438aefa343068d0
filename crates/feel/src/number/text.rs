//! Numbers from and to text and JSON, as Java's `BigDecimal` reads and prints them.

use std::fmt;

use num_bigint::BigInt;
use num_traits::Signed;

use super::Number;

impl Number {
    /// Java's `BigDecimal(String)`: optional sign, digits with one optional point, optional
    /// exponent. Anything else is `None`.
    pub fn parse(text: &str) -> Option<Number> {
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], text[i + 1..].parse::<i64>().ok()?),
            None => (text, 0),
        };
        let (negative, body) = match mantissa.as_bytes().first()? {
            b'-' => (true, &mantissa[1..]),
            b'+' => (false, &mantissa[1..]),
            _ => (false, mantissa),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        if int.is_empty() && frac.is_empty()
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let all: String = [int, frac].concat();
        let mut unscaled: BigInt = all.parse().ok()?;
        if negative {
            unscaled = -unscaled;
        }
        Number::new(unscaled, frac.len() as i64 - exponent)
    }

    /// A JSON number: integers exactly, others from their shortest text, as feel-scala takes a
    /// `double` (`BigDecimal.decimal`).
    pub fn from_json(n: &serde_json::Number) -> Option<Number> {
        if let Some(i) = n.as_i64() {
            return Some(Number::from(i));
        }
        if let Some(u) = n.as_u64() {
            return Some(Number::new(BigInt::from(u), 0).unwrap_or_else(Number::zero));
        }
        Number::from_f64(n.as_f64()?)
    }

    pub fn from_f64(f: f64) -> Option<Number> {
        if !f.is_finite() {
            return None;
        }
        Number::parse(&format!("{f:?}"))
    }

    pub fn to_json(&self) -> serde_json::Value {
        if self.is_whole()
            && let Some(i) = self.to_i64()
        {
            return serde_json::Value::from(i);
        }
        serde_json::Number::from_f64(self.to_f64()).map_or(serde_json::Value::Null, Into::into)
    }
}

/// Java's `BigDecimal.toString`: plain unless the exponent is positive or the value is tiny.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.unscaled.abs().to_string();
        let sign = if self.unscaled.is_negative() { "-" } else { "" };
        let adjusted = digits.len() as i64 - 1 - self.scale;
        if self.scale >= 0 && adjusted >= -6 {
            let point = digits.len() as i64 - self.scale;
            return if self.scale == 0 {
                write!(f, "{sign}{digits}")
            } else if point > 0 {
                let (a, b) = digits.split_at(point as usize);
                write!(f, "{sign}{a}.{b}")
            } else {
                let zeros = "0".repeat((-point) as usize);
                write!(f, "{sign}0.{zeros}{digits}")
            };
        }
        let (first, rest) = digits.split_at(1);
        let exp_sign = if adjusted >= 0 { "+" } else { "" };
        if rest.is_empty() {
            write!(f, "{sign}{first}E{exp_sign}{adjusted}")
        } else {
            write!(f, "{sign}{first}.{rest}E{exp_sign}{adjusted}")
        }
    }
}
