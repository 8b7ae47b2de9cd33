//! Dates and times computed the way SQLite's date functions do, for `datetime()` and
//! `unixepoch()` (PROTOCOL.md §1.5), plus the proleptic Gregorian calendar helpers that
//! `pg_convert.rs` uses to normalize timestamps.
//!
//! Holds [`datetime`], [`unixepoch`], the time-value parser behind them and the modifiers, and
//! [`days_from_civil`] / [`civil_from_days`]. It does not hold the functions' registration
//! (`functions.rs`).
//!
//! Time values (as SQLite): `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS[.fff…]]` (a `T` may replace the
//! space), `HH:MM[:SS[.fff…]]` alone (on 2000-01-01), each optionally followed by `Z` or `±HH:MM`;
//! or a number (INTEGER, REAL, or a TEXT that is only a number): a Julian day number, or Unix
//! seconds when the first modifier is `'unixepoch'`.
//!
//! Modifiers (case-insensitive, applied left to right), all of SQLite's deterministic ones:
//! `unixepoch`, `julianday` and `auto` (first only, numbers only), `subsec` / `subsecond`,
//! `±N days|hours|minutes|seconds|months|years` (singular too, N may have a fraction),
//! `±HH:MM[:SS[.fff]]`, `±YYYY-MM-DD[ HH:MM[:SS[.fff]]]`, `start of day|month|year`,
//! `end of day|month|year`, `weekday ±N`, `ceiling`, `floor`. `now` (as a value), `localtime` and
//! `utc` would make results depend on the clock or the server's time zone and give NULL, like any
//! unknown modifier, malformed value or result outside SQLite's range (years -4713 to 9999).
//! PowerSync supports only `unixepoch` and `subsec`; ferry's results for those match it, and its
//! other results match SQLite 3.54 (checked against it in `tests/values_sqlite.rs`).

use crate::cast::{parse_whole_number, to_text};
use crate::value::Value;

/// Julian day of 1970-01-01 00:00:00 UTC, in milliseconds.
pub const UNIX_EPOCH_JD_MS: i64 = 210_866_760_000_000;

/// Largest valid Julian day in milliseconds (9999-12-31 23:59:59.999).
const MAX_JD_MS: i64 = 464_269_060_799_999;

const MS_PER_DAY: i64 = 86_400_000;

fn valid_jd(jd_ms: i64) -> bool {
    (0..=MAX_JD_MS).contains(&jd_ms)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| is_space(b)).count();
    &s[n..]
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 30,
    }
}

/// Reads `count` ASCII digits at the start of `s` as a number within `min..=max`.
fn digits(s: &[u8], count: usize, min: i64, max: i64) -> Option<i64> {
    let part = s.get(..count)?;
    if !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = part
        .iter()
        .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0'));
    (min..=max).contains(&v).then_some(v)
}

/// The date/time being computed, with SQLite's validity flags: a value can be known as a Julian
/// day, as broken-down fields, or both, and conversions happen lazily — which is what makes
/// `'2023-02-31'` print unnormalized after some modifiers and normalized after others, exactly
/// as SQLite does.
#[derive(Debug, Clone, Default)]
struct DateTime {
    /// Julian day × 86 400 000.
    jd: i64,
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    /// Seconds with fraction (or the raw number while `raw_number`).
    second: f64,
    /// Time zone offset in minutes, pending application.
    tz: i64,
    /// Days of month overflow (for the `floor` modifier).
    n_floor: i64,
    valid_jd: bool,
    valid_ymd: bool,
    valid_hms: bool,
    /// `second` holds a raw number that may still be read as Unix seconds.
    raw_number: bool,
    error: bool,
    subsec: bool,
}

impl DateTime {
    fn set_error(&mut self) {
        *self = DateTime {
            error: true,
            ..DateTime::default()
        };
    }

    fn compute_jd(&mut self) {
        if self.valid_jd {
            return;
        }
        let (mut y, mut m, d) = if self.valid_ymd {
            (self.year, self.month, self.day)
        } else if self.valid_hms && self.hour == 24 {
            self.hour = 0;
            (2000, 1, 2)
        } else {
            (2000, 1, 1)
        };
        if !(-4713..=9999).contains(&y) || self.raw_number {
            self.set_error();
            return;
        }
        if m <= 2 {
            y -= 1;
            m += 12;
        }
        let a = (y + 4800) / 100;
        let b = 38 - a + a / 4;
        let x1 = 36525 * (y + 4716) / 100;
        let x2 = 306_001 * (m + 1) / 10000;
        self.jd = (((x1 + x2 + d + b) as f64 - 1524.5) * 86_400_000.0) as i64;
        self.valid_jd = true;
        if self.valid_hms {
            self.jd +=
                self.hour * 3_600_000 + self.minute * 60_000 + (self.second * 1000.0 + 0.5) as i64;
            if self.tz != 0 {
                self.jd -= self.tz * 60_000;
                self.valid_ymd = false;
                self.valid_hms = false;
                self.tz = 0;
            }
        }
    }

    fn compute_ymd(&mut self) {
        if self.valid_ymd {
            return;
        }
        if !self.valid_jd {
            self.year = 2000;
            self.month = 1;
            self.day = 1;
        } else if !valid_jd(self.jd) {
            self.set_error();
            return;
        } else {
            let z = (self.jd + 43_200_000) / MS_PER_DAY;
            let alpha = ((z as f64 + 32_044.75) / 36_524.25) as i64 - 52;
            let a = z + 1 + alpha - (alpha + 100) / 4 + 25;
            let b = a + 1524;
            let c = ((b as f64 - 122.1) / 365.25) as i64;
            let d = (36525 * (c & 32767)) / 100;
            let e = ((b - d) as f64 / 30.6001) as i64;
            let x1 = (30.6001 * e as f64) as i64;
            self.day = b - d - x1;
            self.month = if e < 14 { e - 1 } else { e - 13 };
            self.year = if self.month > 2 { c - 4716 } else { c - 4715 };
        }
        self.valid_ymd = true;
    }

    fn compute_hms(&mut self) {
        if self.valid_hms {
            return;
        }
        self.compute_jd();
        let day_ms = self.jd.wrapping_add(43_200_000).rem_euclid(MS_PER_DAY);
        self.second = (day_ms % 60_000) as f64 / 1000.0;
        let day_min = day_ms / 60_000;
        self.minute = day_min % 60;
        self.hour = day_min / 60;
        self.raw_number = false;
        self.valid_hms = true;
    }

    fn compute_ymd_hms(&mut self) {
        self.compute_ymd();
        self.compute_hms();
    }

    fn compute_floor(&mut self) {
        let max = days_in_month(self.year, self.month);
        self.n_floor = if self.day > max { self.day - max } else { 0 };
    }

    fn clear_ymd_hms_tz(&mut self) {
        self.valid_ymd = false;
        self.valid_hms = false;
        self.tz = 0;
    }

    /// Normalizes a month that went out of 1..=12 into the year.
    fn carry_months(&mut self) {
        let x = if self.month > 0 {
            (self.month - 1) / 12
        } else {
            (self.month - 12) / 12
        };
        self.year += x;
        self.month -= x * 12;
    }
}

/// `HH:MM[:SS[.fff…]]` then an optional time zone, into `dt`; `None` on a syntax error.
fn parse_hms(s: &[u8], dt: &mut DateTime) -> Option<()> {
    let h = digits(s, 2, 0, 24)?;
    if s.get(2) != Some(&b':') {
        return None;
    }
    let m = digits(&s[3..], 2, 0, 59)?;
    let mut rest = &s[5..];
    let mut sec = 0i64;
    let mut fraction = 0.0f64;
    if rest.first() == Some(&b':') {
        sec = digits(&rest[1..], 2, 0, 59)?;
        rest = &rest[3..];
        if rest.first() == Some(&b'.') && rest.get(1).is_some_and(u8::is_ascii_digit) {
            let mut scale = 1.0f64;
            let mut i = 1;
            while let Some(&d) = rest.get(i).filter(|d| d.is_ascii_digit()) {
                fraction = fraction * 10.0 + f64::from(d - b'0');
                scale *= 10.0;
                i += 1;
            }
            fraction /= scale;
            // SQLite truncates here to avoid rounding up into the next second.
            fraction = fraction.min(0.999);
            rest = &rest[i..];
        }
    }
    if h == 24 && (m != 0 || sec != 0 || fraction != 0.0) {
        return None;
    }
    dt.valid_jd = false;
    dt.raw_number = false;
    dt.valid_hms = true;
    dt.hour = h;
    dt.minute = m;
    dt.second = sec as f64 + fraction;
    dt.tz = parse_timezone(rest)?;
    Some(())
}

/// An optional `Z` / `±HH:MM` suffix and trailing spaces: the offset in minutes east of UTC.
fn parse_timezone(s: &[u8]) -> Option<i64> {
    let s = skip_spaces(s);
    let (offset, rest) = match s.first() {
        None => return Some(0),
        Some(b'Z' | b'z') => (0, &s[1..]),
        Some(&sign @ (b'+' | b'-')) => {
            let hours = digits(&s[1..], 2, 0, 14)?;
            if s.get(3) != Some(&b':') {
                return None;
            }
            let minutes = digits(&s[4..], 2, 0, 59)?;
            let total = hours * 60 + minutes;
            (if sign == b'-' { -total } else { total }, &s[6..])
        }
        Some(_) => return None,
    };
    skip_spaces(rest).is_empty().then_some(offset)
}

/// `[-]YYYY-MM-DD[( |T)+HH:MM…]`.
fn parse_ymd(s: &[u8], dt: &mut DateTime) -> Option<()> {
    let (negative, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let mut y = digits(s, 4, 0, 9999)?;
    if s.get(4) != Some(&b'-') {
        return None;
    }
    let mut m = digits(&s[5..], 2, 1, 12)?;
    if s.get(7) != Some(&b'-') {
        return None;
    }
    let mut d = digits(&s[8..], 2, 1, 31)?;
    let mut rest = &s[10..];
    while let Some(&b) = rest.first() {
        if is_space(b) || b == b'T' {
            rest = &rest[1..];
        } else {
            break;
        }
    }
    if parse_hms(rest, dt).is_some() {
        if dt.hour == 24 {
            dt.hour = 0;
            d += 1;
            if d > days_in_month(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    } else if rest.is_empty() {
        dt.valid_hms = false;
    } else {
        return None;
    }
    dt.valid_jd = false;
    dt.valid_ymd = true;
    dt.year = if negative { -y } else { y };
    dt.month = m;
    dt.day = d;
    dt.compute_floor();
    if dt.tz != 0 {
        dt.compute_jd();
    }
    Some(())
}

/// A raw number: a Julian day when in range; kept for a following `unixepoch`/`auto`.
fn set_raw_number(dt: &mut DateTime, r: f64) {
    dt.second = r;
    dt.raw_number = true;
    if (0.0..5_373_484.5).contains(&r) {
        dt.jd = (r * 86_400_000.0 + 0.5) as i64;
        dt.valid_jd = true;
    }
}

fn initial(value: &Value) -> Option<DateTime> {
    let mut dt = DateTime::default();
    match value {
        Value::Integer(v) => set_raw_number(&mut dt, *v as f64),
        Value::Real(v) => set_raw_number(&mut dt, *v),
        Value::Null => return None,
        Value::Text(_) | Value::Blob(_) => {
            let text = to_text(value)?;
            let bytes = text.as_bytes();
            if parse_ymd(bytes, &mut dt).is_none() {
                dt = DateTime::default();
                if parse_hms(bytes, &mut dt).is_none() {
                    // A number, else nothing: 'now' and 'subsec' as time values read the clock,
                    // which is not deterministic.
                    dt = DateTime::default();
                    set_raw_number(&mut dt, parse_whole_number(&text)?);
                }
            }
        }
    }
    Some(dt)
}

/// One modifier (`index` is 1 for the first); `None` when unsupported or not applicable.
fn apply_modifier(dt: &mut DateTime, modifier: &str, index: usize) -> Option<()> {
    let lower = modifier.to_ascii_lowercase();
    match lower.as_str() {
        "auto" => {
            if index > 1 {
                return None;
            }
            if !dt.raw_number || dt.valid_jd {
                dt.raw_number = false;
            } else if (-210_866_760_000.0..=253_402_300_799.0).contains(&dt.second) {
                let r = dt.second * 1000.0 + UNIX_EPOCH_JD_MS as f64;
                dt.clear_ymd_hms_tz();
                dt.jd = (r + 0.5) as i64;
                dt.valid_jd = true;
                dt.raw_number = false;
            }
            return Some(());
        }
        "ceiling" => {
            dt.compute_jd();
            dt.clear_ymd_hms_tz();
            dt.n_floor = 0;
            return Some(());
        }
        "floor" => {
            dt.compute_jd();
            dt.jd = dt.jd.wrapping_sub(dt.n_floor * MS_PER_DAY);
            dt.clear_ymd_hms_tz();
            return Some(());
        }
        "julianday" => {
            if index > 1 || !(dt.valid_jd && dt.raw_number) {
                return None;
            }
            dt.raw_number = false;
            return Some(());
        }
        "unixepoch" => {
            if !dt.raw_number || index > 1 {
                return None;
            }
            let r = dt.second * 1000.0 + UNIX_EPOCH_JD_MS as f64;
            if !(0.0..464_269_060_800_000.0).contains(&r) {
                return None;
            }
            dt.clear_ymd_hms_tz();
            dt.jd = (r + 0.5) as i64;
            dt.valid_jd = true;
            dt.raw_number = false;
            return Some(());
        }
        "subsec" | "subsecond" => {
            dt.subsec = true;
            return Some(());
        }
        _ => {}
    }
    if let Some(unit) = lower.strip_prefix("start of ") {
        if !dt.valid_jd && !dt.valid_ymd && !dt.valid_hms {
            return None;
        }
        dt.compute_ymd();
        dt.valid_hms = true;
        dt.hour = 0;
        dt.minute = 0;
        dt.second = 0.0;
        dt.raw_number = false;
        dt.tz = 0;
        dt.valid_jd = false;
        match unit {
            "month" => dt.day = 1,
            "year" => {
                dt.month = 1;
                dt.day = 1;
            }
            "day" => {}
            _ => return None,
        }
        return Some(());
    }
    if let Some(unit) = lower.strip_prefix("end of ") {
        if !dt.valid_jd && !dt.valid_ymd && !dt.valid_hms {
            return None;
        }
        dt.compute_ymd();
        dt.valid_hms = true;
        dt.hour = 23;
        dt.minute = 59;
        dt.second = 59.999;
        dt.raw_number = false;
        dt.tz = 0;
        dt.valid_jd = false;
        match unit {
            "month" => {
                dt.day = 1;
                dt.month += 1;
                if dt.month > 12 {
                    dt.year += 1;
                    dt.month = 1;
                }
                dt.compute_floor();
                dt.compute_jd();
                dt.jd -= (dt.n_floor + 1) * MS_PER_DAY;
                dt.clear_ymd_hms_tz();
            }
            "year" => {
                dt.month = 12;
                dt.day = 31;
            }
            "day" => {}
            _ => return None,
        }
        return Some(());
    }
    if let Some(n) = lower.strip_prefix("weekday ") {
        let r = parse_whole_number(n)?;
        if !(-6.0..=6.0).contains(&r) || r.fract() != 0.0 {
            return None;
        }
        dt.compute_ymd_hms();
        dt.tz = 0;
        dt.valid_jd = false;
        dt.compute_jd();
        let n = (r as i64).abs();
        let mut z = ((dt.jd + 129_600_000) / MS_PER_DAY) % 7;
        if z != n {
            if z > n {
                z -= 7;
            }
            dt.jd = dt.jd.wrapping_add((n - z) * MS_PER_DAY);
            if modifier[8..].contains('-') {
                dt.jd = dt.jd.wrapping_sub(7 * MS_PER_DAY);
            }
        }
        dt.clear_ymd_hms_tz();
        return Some(());
    }
    shift(dt, modifier)
}

/// `±N unit`, `±HH:MM[:SS[.fff]]` and `±YYYY-MM-DD[ HH:MM…]` modifiers.
fn shift(dt: &mut DateTime, modifier: &str) -> Option<()> {
    let bytes = modifier.as_bytes();
    let first = *bytes.first()?;
    if !(first == b'+' || first == b'-' || first.is_ascii_digit()) {
        return None;
    }
    let mut n = 1;
    while n < bytes.len() {
        let b = bytes[n];
        if b == b':' || is_space(b) {
            break;
        }
        if b == b'-'
            && ((n == 5 && digits(&bytes[1..], 4, 0, 9999).is_some())
                || (n == 6 && digits(&bytes[1..], 5, 0, 99999).is_some()))
        {
            break;
        }
        n += 1;
    }
    let r = parse_whole_number(&modifier[..n])?;
    let mut time_part: Option<&[u8]> = None;
    if bytes.get(n) == Some(&b'-') {
        if first != b'+' && first != b'-' {
            return None;
        }
        let (y, after_year) = if n == 5 {
            (digits(&bytes[1..], 4, 0, 9999)?, 5)
        } else {
            (digits(&bytes[1..], 5, 0, 99999)?, 6)
        };
        let m = digits(bytes.get(after_year + 1..)?, 2, 0, 11)?;
        if bytes.get(after_year + 3) != Some(&b'-') {
            return None;
        }
        let mut d = digits(bytes.get(after_year + 4..)?, 2, 0, 30)?;
        dt.compute_ymd_hms();
        dt.valid_jd = false;
        if first == b'-' {
            dt.year -= y;
            dt.month -= m;
            d = -d;
        } else {
            dt.year += y;
            dt.month += m;
        }
        dt.carry_months();
        dt.compute_floor();
        dt.compute_jd();
        dt.valid_hms = false;
        dt.valid_ymd = false;
        dt.jd = dt.jd.wrapping_add(d * MS_PER_DAY);
        let rest = &bytes[after_year + 6..];
        if rest.is_empty() {
            return Some(());
        }
        if !(is_space(rest[0]) && rest.len() >= 6) {
            return None;
        }
        digits(&rest[1..], 2, 0, 24)?;
        time_part = Some(&rest[1..]);
    } else if bytes.get(n) == Some(&b':') {
        time_part = Some(if first.is_ascii_digit() {
            bytes
        } else {
            &bytes[1..]
        });
    }
    if let Some(hms) = time_part {
        let mut tx = DateTime::default();
        parse_hms(hms, &mut tx)?;
        tx.compute_jd();
        tx.jd -= 43_200_000;
        let day = tx.jd / MS_PER_DAY;
        tx.jd -= day * MS_PER_DAY;
        if first == b'-' {
            tx.jd = -tx.jd;
        }
        dt.compute_jd();
        dt.clear_ymd_hms_tz();
        dt.jd = dt.jd.wrapping_add(tx.jd);
        return Some(());
    }
    let unit = std::str::from_utf8(skip_spaces(&bytes[n..])).ok()?;
    if unit.len() < 3 || unit.len() > 10 {
        return None;
    }
    let unit = if unit.ends_with(['s', 'S']) {
        &unit[..unit.len() - 1]
    } else {
        unit
    };
    dt.compute_jd();
    let rounder = if r < 0.0 { -0.5 } else { 0.5 };
    dt.n_floor = 0;
    // (name, limit, seconds per unit) as in SQLite's aXformType.
    const UNITS: [(&str, f64, f64); 6] = [
        ("second", 4.6427e14, 1.0),
        ("minute", 7.7379e12, 60.0),
        ("hour", 1.2897e11, 3600.0),
        ("day", 5_373_485.0, 86_400.0),
        ("month", 176_546.0, 2_592_000.0),
        ("year", 14_713.0, 31_536_000.0),
    ];
    let unit = unit.to_ascii_lowercase();
    let &(name, _, seconds) = UNITS
        .iter()
        .find(|(name, limit, _)| *name == unit && r > -limit && r < *limit)?;
    let mut r = r;
    if name == "month" {
        dt.compute_ymd_hms();
        dt.month += r as i64;
        dt.carry_months();
        dt.compute_floor();
        dt.valid_jd = false;
        r -= r.trunc();
    } else if name == "year" {
        dt.compute_ymd_hms();
        dt.year += r as i64;
        dt.compute_floor();
        dt.valid_jd = false;
        r -= r.trunc();
    }
    dt.compute_jd();
    // Wrapping like SQLite's C arithmetic: far out-of-range values come back invalid, not a panic.
    dt.jd = dt.jd.wrapping_add((r * 1000.0 * seconds + rounder) as i64);
    dt.clear_ymd_hms_tz();
    if dt.error {
        return None;
    }
    Some(())
}

/// SQLite's `isDate`: the value and its modifiers; `None` means a NULL result.
fn evaluate(args: &[Value]) -> Option<DateTime> {
    let (value, modifiers) = args.split_first()?;
    let mut dt = initial(value)?;
    for (i, modifier) in modifiers.iter().enumerate() {
        let text = to_text(modifier)?;
        apply_modifier(&mut dt, &text, i + 1)?;
        if dt.error {
            return None;
        }
    }
    dt.compute_jd();
    if dt.error || !valid_jd(dt.jd) {
        return None;
    }
    if modifiers.is_empty() && dt.valid_ymd && dt.day > 28 {
        // Normalize a plain YYYY-MM-DD like 2023-02-31 (to 2023-03-03).
        dt.valid_ymd = false;
    }
    Some(dt)
}

/// `datetime(value, modifiers…)`: `YYYY-MM-DD HH:MM:SS`, with `.SSS` after `subsec`; NULL for
/// NULL or invalid input and unsupported modifiers.
pub fn datetime(args: &[Value]) -> Value {
    let Some(mut dt) = evaluate(args) else {
        return Value::Null;
    };
    dt.compute_ymd_hms();
    if dt.error {
        return Value::Null;
    }
    use std::fmt::Write as _;
    let mut out = String::with_capacity(24);
    if dt.year < 0 {
        out.push('-');
    }
    let year = dt.year.abs() % 10000;
    let _ = write!(
        out,
        "{year:04}-{:02}-{:02} {:02}:{:02}:",
        dt.month % 100,
        dt.day % 100,
        dt.hour % 100,
        dt.minute % 100
    );
    if dt.subsec {
        let ms = (1000.0 * dt.second + 0.5) as i64;
        let _ = write!(out, "{:02}.{:03}", ms / 1000 % 100, ms % 1000);
    } else {
        let _ = write!(out, "{:02}", (dt.second as i64) % 100);
    }
    Value::Text(out)
}

/// `unixepoch(value, modifiers…)`: Unix seconds as INTEGER (rounded down), or REAL with
/// millisecond precision after `subsec`; NULL for NULL or invalid input and unsupported modifiers.
pub fn unixepoch(args: &[Value]) -> Value {
    let Some(dt) = evaluate(args) else {
        return Value::Null;
    };
    if dt.subsec {
        Value::Real((dt.jd - UNIX_EPOCH_JD_MS) as f64 / 1000.0)
    } else {
        Value::Integer(dt.jd / 1000 - UNIX_EPOCH_JD_MS / 1000)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (any year; `month` 1–12, `day` 1–31).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(args: &[Value]) -> Value {
        datetime(args)
    }

    fn t(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    #[test]
    fn civil_day_counts_round_trip() {
        for days in [-800_000i64, -719_468, -1, 0, 1, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn modifiers_shift_and_truncate() {
        assert_eq!(
            dt(&[t("2023-01-31"), t("+1 month")]),
            t("2023-03-03 00:00:00")
        );
        assert_eq!(
            dt(&[t("2023-06-28 14:12"), t("-1.5 hours")]),
            t("2023-06-28 12:42:00")
        );
        assert_eq!(
            dt(&[t("2023-06-28 14:12"), t("start of month")]),
            t("2023-06-01 00:00:00")
        );
        assert_eq!(
            dt(&[t("2023-06-28 14:12"), t("weekday 0")]),
            t("2023-07-02 14:12:00")
        );
        assert_eq!(
            dt(&[t("2023-06-28 14:12"), t("+01:30")]),
            t("2023-06-28 15:42:00")
        );
        assert_eq!(dt(&[t("2023-06-28"), t("localtime")]), Value::Null);
        assert_eq!(dt(&[t("now")]), Value::Null);
        assert_eq!(
            dt(&[Value::Integer(1), t("+1 days"), t("unixepoch")]),
            Value::Null
        );
        // Huge shifts wrap (as in SQLite's C) instead of overflowing; out of range is NULL.
        let mut args = vec![t("2023-06-28")];
        args.extend((0..40).map(|_| t("+4.6e14 seconds")));
        assert_eq!(dt(&args), Value::Null);
        let there_and_back = [t("2023-06-28"), t("+4e14 seconds"), t("-4e14 seconds")];
        assert_eq!(dt(&there_and_back), t("2023-06-28 00:00:00"));
    }
}
