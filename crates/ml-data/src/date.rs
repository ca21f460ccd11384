//! Calendar dates as the pipeline uses them: Airflow's `{{ ds }}` (`YYYY-MM-DD`). Small enough
//! to not need a date-time crate: parsing, validation and the day count that drives the
//! generator's seed, volume and drift.

use std::fmt;
use std::str::FromStr;

/// A proleptic Gregorian calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: i32,
    month: u32,
    day: u32,
}

/// Why a string is not a `YYYY-MM-DD` date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid date {text:?}: {reason} (expected YYYY-MM-DD)")]
pub struct DateError {
    text: String,
    reason: &'static str,
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Date {
    /// A date, if it exists on the calendar.
    pub fn new(year: i32, month: u32, day: u32) -> Option<Self> {
        ((1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month))
            .then_some(Self { year, month, day })
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u32 {
        self.month
    }

    pub fn day(self) -> u32 {
        self.day
    }

    /// Days since 1970-01-01 (negative before it).
    pub fn days_since_epoch(self) -> i64 {
        // Count in a calendar whose year starts on 1 March, so the leap day is the last day of
        // the year and month lengths before it follow a fixed pattern.
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let m = i64::from(self.month);
        let era = y.div_euclid(400);
        let year_of_era = y - era * 400;
        let shifted_month = (m + 9) % 12; // March = 0
        let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(self.day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    /// 1-based day of the year.
    pub fn ordinal(self) -> u32 {
        (1..self.month)
            .map(|m| days_in_month(self.year, m))
            .sum::<u32>()
            + self.day
    }

    /// 0 = Monday ... 6 = Sunday.
    pub fn weekday(self) -> u32 {
        // 1970-01-01 was a Thursday.
        (self.days_since_epoch() + 3).rem_euclid(7) as u32
    }
}

impl FromStr for Date {
    type Err = DateError;

    fn from_str(text: &str) -> Result<Self, DateError> {
        let err = |reason| DateError {
            text: text.to_string(),
            reason,
        };
        let b = text.as_bytes();
        let shape_ok = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shape_ok {
            return Err(err("wrong format"));
        }
        let num =
            |r: std::ops::Range<usize>| text[r].parse::<u32>().map_err(|_| err("wrong format"));
        let year = i32::try_from(num(0..4)?).map_err(|_| err("wrong format"))?;
        Date::new(year, num(5..7)?, num(8..10)?).ok_or_else(|| err("no such day"))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().expect("valid date")
    }

    #[test]
    fn day_counts_and_weekdays() {
        assert_eq!(d("1970-01-01").days_since_epoch(), 0);
        assert_eq!(d("2000-03-01").days_since_epoch(), 11_017);
        assert_eq!(
            d("2024-02-29").days_since_epoch() + 1,
            d("2024-03-01").days_since_epoch()
        );
        assert_eq!(d("1969-12-31").days_since_epoch(), -1);
        assert_eq!(d("2024-01-01").weekday(), 0); // a Monday
        assert_eq!(d("2024-12-31").ordinal(), 366);
        assert_eq!(d("2023-07-04").to_string(), "2023-07-04");
    }

    #[test]
    fn rejects_malformed_and_impossible_dates() {
        for bad in [
            "2023-02-29",
            "2023-13-01",
            "2023-00-10",
            "2023-1-01",
            "20230101",
            "",
            "2023-01-01T00",
        ] {
            assert!(bad.parse::<Date>().is_err(), "{bad}");
        }
        assert!("2023-04-31"
            .parse::<Date>()
            .expect_err("april")
            .to_string()
            .contains("no such day"));
    }
}
