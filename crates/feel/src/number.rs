//! FEEL numbers as Camunda's engine computes them: Java `BigDecimal` values, every arithmetic
//! result rounded to 34 significant digits, half-even (`MathContext.DECIMAL128`), the scale kept
//! as Java keeps it (so `string(2 * 1.50)` is `"3.00"` and `string(100 / 0.5)` is `"2E+2"`).
//!
//! Why not a decimal crate: `rust_decimal` holds 28 digits, not 34; `bigdecimal` divides to its
//! own precision and prints with its own exponent rule, so both would round and print some
//! results differently from feel-scala. What Java does for these few operations is short to
//! state exactly on top of a big integer.

use std::cmp::Ordering;

use num_bigint::{BigInt, Sign};
use num_integer::Integer;
use num_traits::{One, Signed, ToPrimitive, Zero};

/// Significant digits of `MathContext.DECIMAL128`.
pub const PRECISION: u64 = 34;
/// Java refuses scales outside `i32`; so do we (the operation then gives null).
const MAX_SCALE: i64 = i32::MAX as i64;

/// `unscaled × 10^-scale`.
#[derive(Clone, Debug)]
pub struct Number {
    unscaled: BigInt,
    scale: i64,
}

mod text;

/// 10^n; the powers up to 10^64 are made once.
fn pow10(n: u64) -> BigInt {
    static SMALL: std::sync::OnceLock<Vec<BigInt>> = std::sync::OnceLock::new();
    let small = SMALL.get_or_init(|| {
        let mut v = Vec::with_capacity(65);
        let mut p = BigInt::one();
        for _ in 0..=64 {
            v.push(p.clone());
            p *= 10;
        }
        v
    });
    match small.get(n as usize) {
        Some(p) => p.clone(),
        None => num_traits::pow(BigInt::from(10u8), n as usize),
    }
}

fn digits(n: &BigInt) -> u64 {
    if let Some(small) = n.abs().to_u64() {
        return small.checked_ilog10().map_or(1, |d| d as u64 + 1);
    }
    // bits × log10(2) is within one of the digit count; fix it up exactly.
    let estimate = ((n.bits() as f64) * std::f64::consts::LOG10_2) as u64;
    let mut d = estimate.max(1);
    let magnitude = n.abs();
    while magnitude >= pow10(d) {
        d += 1;
    }
    while d > 1 && magnitude < pow10(d - 1) {
        d -= 1;
    }
    d
}

impl Number {
    fn new(unscaled: BigInt, scale: i64) -> Option<Number> {
        (scale.abs() <= MAX_SCALE).then_some(Number { unscaled, scale })
    }

    pub fn zero() -> Number {
        Number::from(0i64)
    }

    pub fn is_zero(&self) -> bool {
        self.unscaled.is_zero()
    }

    pub fn is_negative(&self) -> bool {
        self.unscaled.is_negative()
    }

    pub fn is_whole(&self) -> bool {
        self.scale <= 0
            || self.is_zero()
            || self.scale <= digits(&self.unscaled) as i64
                && self.unscaled.is_multiple_of(&pow10(self.scale as u64))
    }

    /// Round to 34 significant digits, half-even, as every `MathContext` operation does.
    fn rounded(self) -> Option<Number> {
        self.round_to(PRECISION)
    }

    /// The position of the most significant digit (Java's adjusted exponent).
    fn adjusted(&self) -> i64 {
        digits(&self.unscaled) as i64 - 1 - self.scale
    }

    fn aligned(a: &Number, b: &Number) -> (BigInt, BigInt, i64) {
        let scale = a.scale.max(b.scale);
        let up = |n: &Number| match scale - n.scale {
            0 => n.unscaled.clone(),
            k => &n.unscaled * pow10(k as u64),
        };
        (up(a), up(b), scale)
    }

    /// An operand far below the other's last kept digit only decides the rounding: replace it by
    /// a unit just below, so no addition aligns across a huge exponent gap.
    fn shrink_for_add<'a>(a: &'a Number, b: &'a Number) -> (Number, Number) {
        if a.is_zero() || b.is_zero() {
            return (a.clone(), b.clone());
        }
        let (big, small, swapped) = if a.adjusted() >= b.adjusted() {
            (a, b, false)
        } else {
            (b, a, true)
        };
        let floor = big.adjusted() - PRECISION as i64 - 3;
        let small_low = -small.scale;
        let big_low = -big.scale;
        if small.adjusted() < floor && small_low < big_low.min(floor) {
            let unit = Number {
                unscaled: if small.is_negative() {
                    -BigInt::one()
                } else {
                    BigInt::one()
                },
                scale: -floor.min(big_low),
            };
            return if swapped {
                (unit, big.clone())
            } else {
                (big.clone(), unit)
            };
        }
        (a.clone(), b.clone())
    }

    pub fn add(&self, other: &Number) -> Option<Number> {
        if self.scale == other.scale {
            return Number {
                unscaled: &self.unscaled + &other.unscaled,
                scale: self.scale,
            }
            .rounded();
        }
        let (a, b) = Number::shrink_for_add(self, other);
        let (x, y, scale) = Number::aligned(&a, &b);
        Number {
            unscaled: x + y,
            scale,
        }
        .rounded()
    }

    pub fn sub(&self, other: &Number) -> Option<Number> {
        self.add(&other.neg())
    }

    pub fn neg(&self) -> Number {
        Number {
            unscaled: -&self.unscaled,
            scale: self.scale,
        }
    }

    pub fn abs(&self) -> Number {
        Number {
            unscaled: self.unscaled.abs(),
            scale: self.scale,
        }
    }

    pub fn mul(&self, other: &Number) -> Option<Number> {
        Number {
            unscaled: &self.unscaled * &other.unscaled,
            scale: self.scale + other.scale,
        }
        .rounded()
    }

    /// Java's `divide(divisor, MathContext.DECIMAL128)`: an exact quotient keeps the scale
    /// closest to `this.scale - divisor.scale`; an inexact one has 34 digits. `None` for zero.
    pub fn div(&self, other: &Number) -> Option<Number> {
        self.div_to(other, PRECISION)
    }

    fn div_to(&self, other: &Number, precision: u64) -> Option<Number> {
        if other.is_zero() {
            return None;
        }
        let preferred = self.scale - other.scale;
        if self.is_zero() {
            return Number::new(BigInt::zero(), preferred.clamp(-MAX_SCALE, MAX_SCALE));
        }
        let k = (precision as i64 + 3 + digits(&other.unscaled) as i64
            - digits(&self.unscaled) as i64)
            .max(0) as u64;
        let (q, r) = (&self.unscaled * pow10(k)).div_rem(&other.unscaled);
        let scale = preferred + k as i64;
        if r.is_zero() {
            let mut n = Number { unscaled: q, scale }.round_to(precision)?;
            while n.scale > preferred && n.unscaled.is_multiple_of(&BigInt::from(10u8)) {
                n.unscaled /= 10;
                n.scale -= 1;
            }
            return Some(n);
        }
        // A sticky digit below the quotient (which has more digits than kept): a remainder is
        // never a tie.
        let sign = if self.is_negative() != other.is_negative() {
            -1
        } else {
            1
        };
        Number {
            unscaled: q * 10 + sign,
            scale: scale + 1,
        }
        .round_to(precision)
    }

    /// Java's `pow(n, MathContext.DECIMAL128)` for |n| ≤ 999,999,999.
    pub fn pow(&self, n: i64) -> Option<Number> {
        if n.abs() > 999_999_999 {
            return None;
        }
        if n == 0 {
            return Some(Number::from(1i64));
        }
        let magnitude = n.unsigned_abs();
        let work = PRECISION + magnitude.to_string().len() as u64 + 1;
        let round = |x: Number| x.round_to(work);
        let mut result = Number::from(1i64);
        let mut seen = false;
        for bit in (0..64).rev() {
            if seen {
                result = round(result.mul_exact(&result))?;
            }
            if magnitude >> bit & 1 == 1 {
                seen = true;
                result = round(result.mul_exact(self))?;
            }
        }
        if n < 0 {
            result = Number::from(1i64).div_to(&result, work)?;
        }
        result.rounded()
    }

    fn mul_exact(&self, other: &Number) -> Number {
        Number {
            unscaled: &self.unscaled * &other.unscaled,
            scale: self.scale + other.scale,
        }
    }

    fn round_to(self, precision: u64) -> Option<Number> {
        let d = digits(&self.unscaled);
        if d <= precision {
            return Number::new(self.unscaled, self.scale);
        }
        let drop = d - precision;
        let mut n = round_div(&self.unscaled, &pow10(drop));
        let mut scale = self.scale - drop as i64;
        // 99...9 rounded up has one digit more.
        if digits(&n) > precision {
            n /= 10;
            scale -= 1;
        }
        Number::new(n, scale)
    }

    /// Truncated toward zero, as Java's `intValue`/`longValue` for values in range.
    pub fn to_i64(&self) -> Option<i64> {
        self.trunc_int().to_i64()
    }

    fn trunc_int(&self) -> BigInt {
        if self.scale <= 0 {
            if -self.scale > 40 {
                // Far beyond any i64: the caller only needs "out of range".
                return &self.unscaled * pow10(40);
            }
            &self.unscaled * pow10((-self.scale) as u64)
        } else if self.scale > digits(&self.unscaled) as i64 {
            BigInt::zero()
        } else {
            &self.unscaled / pow10(self.scale as u64)
        }
    }

    pub fn to_f64(&self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// Rounded to `scale` digits after the point with `mode`.
    pub fn with_scale(&self, scale: i64, mode: Rounding) -> Option<Number> {
        if scale >= self.scale {
            let up = (scale - self.scale) as u64;
            if up > 10_000 {
                return None;
            }
            return Number::new(&self.unscaled * pow10(up), scale);
        }
        let drop = (self.scale - scale) as u64;
        let divisor = if drop > digits(&self.unscaled) + 1 {
            // Everything is dropped: only the sign and "not zero" matter.
            pow10(digits(&self.unscaled) + 1)
        } else {
            pow10(drop)
        };
        let (q, r) = self.unscaled.div_rem(&divisor);
        let twice = r.abs() * 2;
        let away = match mode {
            Rounding::Floor => r.is_negative(),
            Rounding::Ceiling => r.is_positive(),
            Rounding::Down => false,
            Rounding::Up => !r.is_zero(),
            Rounding::HalfUp => twice >= divisor,
            Rounding::HalfDown => twice > divisor,
            Rounding::HalfEven => twice > divisor || twice == divisor && q.is_odd(),
        };
        let sign = if self.unscaled.is_negative() { -1 } else { 1 };
        let q = if away { q + sign } else { q };
        Number::new(q, scale)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rounding {
    Floor,
    Ceiling,
    Down,
    Up,
    HalfUp,
    HalfDown,
    HalfEven,
}

/// `n / d` rounded half-even.
fn round_div(n: &BigInt, d: &BigInt) -> BigInt {
    let (q, r) = n.div_rem(d);
    if r.is_zero() {
        return q;
    }
    let twice = r.abs() * 2;
    let d_abs = d.abs();
    if twice < d_abs || twice == d_abs && !q.is_odd() {
        q
    } else if n.is_negative() != d.is_negative() {
        q - 1
    } else {
        q + 1
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Number {
        Number {
            unscaled: BigInt::from(i),
            scale: 0,
        }
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Number) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Number {}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        let (sa, sb) = (self.unscaled.sign(), other.unscaled.sign());
        if sa != sb || sa == Sign::NoSign {
            return sa.cmp(&sb);
        }
        let by_magnitude = self.adjusted().cmp(&other.adjusted()).then_with(|| {
            // Same leading position: the scale gap is bounded by the digit counts.
            let (x, y, _) = Number::aligned(&self.abs(), &other.abs());
            x.cmp(&y)
        });
        if sa == Sign::Minus {
            by_magnitude.reverse()
        } else {
            by_magnitude
        }
    }
}
