//! Dates, times and durations with feel-scala's text forms and arithmetic (which are Java's
//! `java.time` rules: `LocalDate`, `LocalTime`, a time with an offset or zone, `LocalDateTime`,
//! `ZonedDateTime`, `Period` as whole months, `Duration`).

use std::cmp::Ordering;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Span, Timestamp, ZonedDateTime as Zoned};

mod text;

pub use text::*;

const NANOS: i128 = 1_000_000_000;
const DAY_NANOS: i128 = 86_400 * NANOS;

/// A time of day with an offset, and the zone it was written with (`10:00:00@Europe/Paris`).
#[derive(Clone, Debug)]
pub struct ZonedTime {
    pub time: Time,
    pub offset: Offset,
    pub zone: Option<TimeZone>,
}

impl ZonedTime {
    /// Nanoseconds of the day at UTC, what feel-scala compares.
    fn utc_nanos(&self) -> i128 {
        time_nanos(self.time) - self.offset.seconds() as i128 * NANOS
    }
}

impl PartialEq for ZonedTime {
    fn eq(&self, other: &ZonedTime) -> bool {
        self.time == other.time
            && self.offset == other.offset
            && self.zone.as_ref().and_then(TimeZone::iana_name)
                == other.zone.as_ref().and_then(TimeZone::iana_name)
    }
}

/// A date and time with an offset; `named` when it was written with a zone id.
#[derive(Clone, Debug)]
pub struct ZonedDateTime {
    pub zoned: Zoned,
    pub named: bool,
}

impl PartialEq for ZonedDateTime {
    /// Java's `ZonedDateTime.equals`: same local time, offset and zone (not just the instant).
    fn eq(&self, other: &ZonedDateTime) -> bool {
        self.zoned.datetime() == other.zoned.datetime()
            && self.zoned.offset() == other.zoned.offset()
            && self.named == other.named
            && self.zoned.time_zone().iana_name() == other.zoned.time_zone().iana_name()
    }
}

fn time_nanos(t: Time) -> i128 {
    (t.hour() as i128 * 3600 + t.minute() as i128 * 60 + t.second() as i128) * NANOS
        + t.subsec_nanosecond() as i128
}

fn time_from_nanos(n: i128) -> Time {
    let n = n.rem_euclid(DAY_NANOS);
    let secs = n / NANOS;
    Time::new(
        (secs / 3600) as i8,
        (secs / 60 % 60) as i8,
        (secs % 60) as i8,
        (n % NANOS) as i32,
    )
    .unwrap_or(Time::midnight())
}

pub fn duration(nanos: i128) -> Option<SignedDuration> {
    let secs = i64::try_from(nanos.div_euclid(NANOS)).ok()?;
    Some(SignedDuration::new(secs, nanos.rem_euclid(NANOS) as i32))
}

// ---------------------------------------------------------------- arithmetic

pub fn add_months_date(d: Date, months: i64) -> Option<Date> {
    d.checked_add(Span::new().try_months(months).ok()?).ok()
}

pub fn add_months_local(dt: DateTime, months: i64) -> Option<DateTime> {
    dt.checked_add(Span::new().try_months(months).ok()?).ok()
}

pub fn add_months_zoned(z: &ZonedDateTime, months: i64) -> Option<ZonedDateTime> {
    Some(ZonedDateTime {
        zoned: z
            .zoned
            .checked_add(Span::new().try_months(months).ok()?)
            .ok()?,
        named: z.named,
    })
}

pub fn add_nanos_local(dt: DateTime, nanos: i128) -> Option<DateTime> {
    dt.checked_add(duration(nanos)?).ok()
}

pub fn add_nanos_zoned(z: &ZonedDateTime, nanos: i128) -> Option<ZonedDateTime> {
    Some(ZonedDateTime {
        zoned: z.zoned.checked_add(duration(nanos)?).ok()?,
        named: z.named,
    })
}

/// `date + duration`: at the start of the day, the duration added, the date taken.
pub fn add_nanos_date(d: Date, nanos: i128) -> Option<Date> {
    Some(add_nanos_local(d.to_datetime(Time::midnight()), nanos)?.date())
}

/// Times of day wrap around midnight, as `LocalTime.plus`.
pub fn add_nanos_time(t: Time, nanos: i128) -> Time {
    time_from_nanos(time_nanos(t) + nanos)
}

pub fn local_between(from: DateTime, to: DateTime) -> i128 {
    to.duration_since(from).as_nanos()
}

pub fn zoned_between(from: &ZonedDateTime, to: &ZonedDateTime) -> i128 {
    to.zoned.timestamp().as_nanosecond() - from.zoned.timestamp().as_nanosecond()
}

pub fn time_between(from: Time, to: Time) -> i128 {
    time_nanos(to) - time_nanos(from)
}

/// feel-scala's difference of two zoned times is the absolute one.
pub fn zoned_time_distance(a: &ZonedTime, b: &ZonedTime) -> i128 {
    (a.utc_nanos() - b.utc_nanos()).abs()
}

pub fn compare_zoned_time(a: &ZonedTime, b: &ZonedTime) -> Ordering {
    a.utc_nanos().cmp(&b.utc_nanos())
}

pub fn compare_zoned(a: &ZonedDateTime, b: &ZonedDateTime) -> Ordering {
    a.zoned
        .timestamp()
        .cmp(&b.zoned.timestamp())
        .then_with(|| a.zoned.datetime().cmp(&b.zoned.datetime()))
}

/// Whole months between two dates, as `Period.between(from, to)` without its days.
pub fn months_between(from: Date, to: Date) -> i64 {
    let mut months =
        (to.year() as i64 - from.year() as i64) * 12 + (to.month() as i64 - from.month() as i64);
    if months > 0 && to.day() < from.day() {
        months -= 1;
    } else if months < 0 && to.day() > from.day() {
        months += 1;
    }
    months
}

pub fn now() -> ZonedDateTime {
    ZonedDateTime {
        zoned: Timestamp::now().to_zoned_datetime(TimeZone::fixed(Offset::UTC)),
        named: false,
    }
}

/// A zone as Java's `ZoneId.of` reads it: `Z` or an offset is a fixed offset, else an IANA
/// name.
fn zone_id(zone: &str) -> Option<(TimeZone, bool)> {
    if let Some(offset) = parse_offset(zone) {
        return Some((TimeZone::fixed(offset), false));
    }
    Some((TimeZone::get(zone).ok()?, true))
}

pub fn zoned_in(dt: DateTime, zone: &str) -> Option<ZonedDateTime> {
    let (tz, named) = zone_id(zone)?;
    Some(ZonedDateTime {
        zoned: dt.to_zoned_datetime(tz).ok()?,
        named,
    })
}

pub fn with_zone(z: &ZonedDateTime, zone: &str) -> Option<ZonedDateTime> {
    let (tz, named) = zone_id(zone)?;
    Some(ZonedDateTime {
        zoned: z.zoned.with_time_zone(tz),
        named,
    })
}

pub fn zoned_time_on(t: &ZonedTime, d: Date) -> Option<ZonedDateTime> {
    let dt = d.to_datetime(t.time);
    Some(match &t.zone {
        Some(tz) => ZonedDateTime {
            zoned: dt.to_zoned_datetime(tz.clone()).ok()?,
            named: true,
        },
        None => ZonedDateTime {
            zoned: dt.to_zoned_datetime(TimeZone::fixed(t.offset)).ok()?,
            named: false,
        },
    })
}

pub fn time_of(z: &ZonedDateTime) -> ZonedTime {
    ZonedTime {
        time: z.zoned.time(),
        offset: z.zoned.offset(),
        zone: z.named.then(|| z.zoned.time_zone().clone()),
    }
}
