//! Temporal values read from and written as feel-scala's text forms.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{Offset, TimeZone};

use super::{DAY_NANOS, NANOS, ZonedDateTime, ZonedTime};

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `yyyy-MM-dd` (a year of 4 to 9 digits, optionally negative), strictly valid.
pub fn parse_date(s: &str) -> Option<Date> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let mut parts = body.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if !digits(y) || y.len() < 4 || y.len() > 9 || y.len() > 4 && y.starts_with('0') {
        return None;
    }
    if m.len() != 2 || d.len() != 2 || !digits(m) || !digits(d) {
        return None;
    }
    let year: i16 = y.parse().ok()?;
    Date::new(
        if negative { -year } else { year },
        m.parse().ok()?,
        d.parse().ok()?,
    )
    .ok()
}

/// `HH:mm[:ss[.fffffffff]]`, with an optional leading `T`.
pub fn parse_local_time(s: &str) -> Option<Time> {
    let s = s.strip_prefix('T').unwrap_or(s);
    let (main, fraction) = match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let mut parts = main.split(':');
    let h = parts.next()?;
    let m = parts.next()?;
    let sec = parts.next();
    if parts.next().is_some()
        || [Some(h), Some(m), sec]
            .iter()
            .flatten()
            .any(|p| p.len() != 2 || !digits(p))
    {
        return None;
    }
    if fraction.is_some() && sec.is_none() {
        return None;
    }
    let nanos = match fraction {
        Some(f) if digits(f) && f.len() <= 9 => format!("{f:0<9}").parse().ok()?,
        Some(_) => return None,
        None => 0,
    };
    Time::new(
        h.parse().ok()?,
        m.parse().ok()?,
        sec.map_or(Some(0), |s| s.parse().ok())?,
        nanos,
    )
    .ok()
}

/// `+HH:mm`, `-HH:mm` or `Z`.
pub(super) fn parse_offset(s: &str) -> Option<Offset> {
    if s == "Z" {
        return Some(Offset::UTC);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = s[1..].split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !digits(h) || !digits(m) {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 18 || m > 59 {
        return None;
    }
    Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()
}

/// Splits `<local part><zone part>`: an offset, `Z`, `[zone]` after an offset, or `@zone`.
fn split_zone(s: &str) -> Option<(&str, Zone)> {
    if let Some((local, zone)) = s.split_once('@') {
        return Some((local, Zone::Named(TimeZone::get(zone).ok()?)));
    }
    let s = match s.find('[') {
        Some(i) if s.ends_with(']') => {
            let zone = TimeZone::get(&s[i + 1..s.len() - 1]).ok()?;
            let local_and_offset = &s[..i];
            let cut = local_and_offset.rfind(['+', '-', 'Z'])?;
            parse_offset(&local_and_offset[cut..])?;
            return Some((&local_and_offset[..cut], Zone::Named(zone)));
        }
        _ => s,
    };
    if let Some(local) = s.strip_suffix('Z') {
        return Some((local, Zone::Fixed(Offset::UTC)));
    }
    let cut = s.len().checked_sub(6)?;
    let offset = parse_offset(s.get(cut..)?)?;
    Some((&s[..cut], Zone::Fixed(offset)))
}

enum Zone {
    Fixed(Offset),
    Named(TimeZone),
}

/// A time with an offset or zone (`10:00:00+01:00`, `10:00:00Z`, `10:00:00@Europe/Paris`).
pub fn parse_zoned_time(s: &str) -> Option<ZonedTime> {
    let (local, zone) = split_zone(s)?;
    let time = parse_local_time(local)?;
    if local.trim_start_matches('T').len() < 8 {
        return None;
    }
    Some(match zone {
        Zone::Fixed(offset) => ZonedTime {
            time,
            offset,
            zone: None,
        },
        // feel-scala takes the zone's offset now for a time without a date.
        Zone::Named(tz) => ZonedTime {
            time,
            offset: tz.to_offset(Timestamp::now()),
            zone: Some(tz),
        },
    })
}

/// `yyyy-MM-ddTHH:mm[:ss[.f]]`.
pub fn parse_local_date_time(s: &str) -> Option<DateTime> {
    let (date, time) = s.split_once('T')?;
    Some(DateTime::from_parts(
        parse_date(date)?,
        parse_local_time(time)?,
    ))
}

pub fn parse_zoned_date_time(s: &str) -> Option<ZonedDateTime> {
    let (local, zone) = split_zone(s)?;
    let dt = parse_local_date_time(local)?;
    Some(match zone {
        Zone::Fixed(offset) => ZonedDateTime {
            zoned: dt.to_zoned_datetime(TimeZone::fixed(offset)).ok()?,
            named: false,
        },
        Zone::Named(tz) => ZonedDateTime {
            zoned: dt.to_zoned_datetime(tz).ok()?,
            named: true,
        },
    })
}

/// `P1Y2M`, `-P1Y`, `P-3M`: whole months.
pub fn parse_year_month(s: &str) -> Option<i64> {
    let (negative, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let mut rest = rest.strip_prefix('P')?;
    if rest.is_empty() {
        return None;
    }
    let mut months: i64 = 0;
    for unit in ['Y', 'M'] {
        let Some(i) = rest.find(unit) else { continue };
        let (n, tail) = (&rest[..i], &rest[i + 1..]);
        let (sign, n) = match n.strip_prefix('-') {
            Some(n) => (-1, n),
            None => (1, n),
        };
        if !digits(n) {
            return None;
        }
        let n: i64 = n.parse().ok()?;
        let factor = if unit == 'Y' { 12 } else { 1 };
        months = months.checked_add(sign * n.checked_mul(factor)?)?;
        rest = tail;
    }
    if !rest.is_empty() || months.abs() > 12 * 999_999_999 {
        return None;
    }
    Some(if negative { -months } else { months })
}

/// `P1DT2H3M4.5S` and its parts, each optionally negative: nanoseconds.
pub fn parse_day_time(s: &str) -> Option<i128> {
    let (negative, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let rest = rest.strip_prefix('P')?;
    let (day_part, time_part) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut total: i128 = 0;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, i128)]| -> Option<()> {
        let mut part = part;
        for &(unit, nanos) in units {
            let Some(i) = part.find(unit) else { continue };
            let (n, tail) = (&part[..i], &part[i + 1..]);
            let (sign, n) = match n.strip_prefix('-') {
                Some(n) => (-1, n),
                None => (1, n),
            };
            let value = if unit == 'S' {
                let (whole, frac) = n.split_once(['.', ',']).unwrap_or((n, ""));
                if !digits(whole) || frac.len() > 9 || !frac.is_empty() && !digits(frac) {
                    return None;
                }
                let frac: i128 = if frac.is_empty() {
                    0
                } else {
                    format!("{frac:0<9}").parse().ok()?
                };
                whole.parse::<i128>().ok()?.checked_mul(NANOS)? + frac
            } else {
                if !digits(n) {
                    return None;
                }
                n.parse::<i128>().ok()?.checked_mul(nanos)?
            };
            total = total.checked_add(sign * value)?;
            any = true;
            part = tail;
        }
        part.is_empty().then_some(())
    };
    take(day_part, &[('D', DAY_NANOS)])?;
    if let Some(t) = time_part {
        take(t, &[('H', 3600 * NANOS), ('M', 60 * NANOS), ('S', NANOS)])?;
    }
    let limit = i64::MAX as i128 * NANOS;
    (any && total.abs() <= limit).then_some(if negative { -total } else { total })
}

pub fn format_date(d: Date) -> String {
    let y = d.year();
    let year = if y < 0 {
        format!("-{:04}", -(y as i32))
    } else {
        format!("{y:04}")
    };
    format!("{year}-{:02}-{:02}", d.month(), d.day())
}

pub fn format_time(t: Time) -> String {
    let mut s = format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
    let nanos = t.subsec_nanosecond();
    if nanos != 0 {
        let f = format!("{nanos:09}");
        let _ = write!(s, ".{}", f.trim_end_matches('0'));
    }
    s
}

pub fn format_offset(o: Offset) -> String {
    let secs = o.seconds();
    if secs == 0 {
        return "Z".into();
    }
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.abs();
    let mut s = format!("{sign}{:02}:{:02}", a / 3600, a / 60 % 60);
    if a % 60 != 0 {
        let _ = write!(s, ":{:02}", a % 60);
    }
    s
}

pub fn format_zoned_time(t: &ZonedTime) -> String {
    match t.zone.as_ref().and_then(TimeZone::iana_name) {
        Some(name) => format!("{}@{name}", format_time(t.time)),
        None => format!("{}{}", format_time(t.time), format_offset(t.offset)),
    }
}

pub fn format_local_date_time(dt: DateTime) -> String {
    format!("{}T{}", format_date(dt.date()), format_time(dt.time()))
}

pub fn format_zoned_date_time(z: &ZonedDateTime) -> String {
    let local = format_local_date_time(z.zoned.datetime());
    match z.zoned.time_zone().iana_name().filter(|_| z.named) {
        Some(name) => format!("{local}@{name}"),
        None => format!("{local}{}", format_offset(z.zoned.offset())),
    }
}

pub fn format_year_month(months: i64) -> String {
    if months == 0 {
        return "P0Y".into();
    }
    let (sign, m) = if months < 0 {
        ("-", -months)
    } else {
        ("", months)
    };
    let mut s = format!("{sign}P");
    if m / 12 != 0 {
        let _ = write!(s, "{}Y", m / 12);
    }
    if m % 12 != 0 {
        let _ = write!(s, "{}M", m % 12);
    }
    s
}

/// feel-scala's form: days, then hours, minutes and whole seconds (fractions are dropped).
pub fn format_day_time(nanos: i128) -> String {
    let secs = nanos / NANOS;
    if secs == 0 {
        return "P0D".into();
    }
    let (sign, s) = if secs < 0 { ("-", -secs) } else { ("", secs) };
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    let mut out = format!("{sign}P");
    if d != 0 {
        let _ = write!(out, "{d}D");
    }
    if h != 0 || m != 0 || sec != 0 {
        out.push('T');
        for (n, u) in [(h, 'H'), (m, 'M'), (sec, 'S')] {
            if n != 0 {
                let _ = write!(out, "{n}{u}");
            }
        }
    }
    out
}
