//! GMS's office-hours service: a `service.<name>` section with
//! `_service = office-hours`, read in its own time zone (`_timezone`):
//! regular weekly hours (`_bh_regular<n> = Mon-Fri 9:00-17:00`, days and
//! hours may wrap), extra open periods (`_bh_add<n> = 2026-12-24 9:00-12:00`,
//! or `12-24 9:00-12:00` every year) and closed days (`_bh_closed<n> =
//! 2026-12-25` or `12-25`). Extra periods beat closed days, closed days beat
//! regular hours.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// A date, with its year or every year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Day {
    year: Option<i32>,
    month: u32,
    day: u32,
}

impl Day {
    fn parse(text: &str) -> Option<Day> {
        let parts: Vec<&str> = text.trim().split('-').collect();
        let num = |s: &str| s.parse::<u32>().ok();
        let (year, month, day) = match parts.as_slice() {
            [y, m, d] => (Some(y.parse::<i32>().ok()?), num(m)?, num(d)?),
            [m, d] => (None, num(m)?, num(d)?),
            _ => return None,
        };
        NaiveDate::from_ymd_opt(year.unwrap_or(2000), month, day)?;
        Some(Day { year, month, day })
    }

    fn matches(&self, date: NaiveDate) -> bool {
        self.year.is_none_or(|y| y == date.year())
            && self.month == date.month()
            && self.day == date.day()
    }
}

/// Minutes of the day `[start, end)`; `end <= start` runs past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hours {
    start: u32,
    end: u32,
}

impl Hours {
    fn parse(text: &str) -> Option<Hours> {
        let (a, b) = text.trim().split_once('-')?;
        let minute = |s: &str| {
            let (h, m) = s.trim().split_once(':')?;
            let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
            (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
        };
        Some(Hours {
            start: minute(a)?,
            end: minute(b)?,
        })
    }

    fn overnight(&self) -> bool {
        self.end <= self.start
    }
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn weekday(name: &str) -> Option<u32> {
    let name = name.trim().to_ascii_lowercase();
    WEEKDAYS
        .iter()
        .position(|d| name.starts_with(d))
        .map(|i| i as u32)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficeHours {
    tz: Tz,
    /// Days of the week (Monday = 0) each regular period opens on.
    regular: Vec<([bool; 7], Hours)>,
    extra: Vec<(Day, Hours)>,
    closed: Vec<Day>,
}

#[derive(Debug, thiserror::Error)]
#[error("office hours option {option} = {value:?}: {why}")]
pub struct OfficeHoursError {
    pub option: String,
    pub value: String,
    pub why: &'static str,
}

impl OfficeHours {
    /// Reads a section's options; a value that cannot be read is an error
    /// (an office that opens at the wrong times is worse than no start).
    pub fn from_options(options: &HashMap<String, String>) -> Result<Self, OfficeHoursError> {
        let err = |option: &str, value: &str, why| OfficeHoursError {
            option: option.to_owned(),
            value: value.to_owned(),
            why,
        };
        let tz = match options.get("_timezone").map(|s| s.trim()) {
            None | Some("") => Tz::UTC,
            Some(name) => name
                .parse::<Tz>()
                .map_err(|_| err("_timezone", name, "not an IANA time zone"))?,
        };
        let mut hours = OfficeHours {
            tz,
            regular: Vec::new(),
            extra: Vec::new(),
            closed: Vec::new(),
        };
        let mut names: Vec<&String> = options.keys().collect();
        names.sort();
        for name in names {
            let value = &options[name];
            if name.starts_with("_bh_regular") {
                let (days, time) = value
                    .trim()
                    .split_once(' ')
                    .ok_or_else(|| err(name, value, "expected DDD-DDD HH:mm-HH:mm"))?;
                let (first, last) = days.split_once('-').unwrap_or((days, days));
                let (first, last) = weekday(first)
                    .zip(weekday(last))
                    .ok_or_else(|| err(name, value, "unknown day of the week"))?;
                let mut set = [false; 7];
                let mut d = first;
                loop {
                    set[d as usize] = true;
                    if d == last {
                        break;
                    }
                    d = (d + 1) % 7;
                }
                let time = Hours::parse(time).ok_or_else(|| err(name, value, "bad hours"))?;
                hours.regular.push((set, time));
            } else if name.starts_with("_bh_add") {
                let (day, time) = value
                    .trim()
                    .split_once(' ')
                    .ok_or_else(|| err(name, value, "expected YYYY-MM-dd HH:mm-HH:mm"))?;
                let day = Day::parse(day).ok_or_else(|| err(name, value, "bad date"))?;
                let time = Hours::parse(time).ok_or_else(|| err(name, value, "bad hours"))?;
                hours.extra.push((day, time));
            } else if name.starts_with("_bh_closed") {
                let day = Day::parse(value).ok_or_else(|| err(name, value, "bad date"))?;
                hours.closed.push(day);
            }
        }
        Ok(hours)
    }

    /// Whether the office is open at `ms` (milliseconds since the epoch).
    pub fn is_open(&self, ms: u64) -> bool {
        let Some(utc) = DateTime::<Utc>::from_timestamp_millis(ms as i64) else {
            return false;
        };
        let local = self.tz.from_utc_datetime(&utc.naive_utc());
        let date = local.date_naive();
        let minute = local.hour() * 60 + local.minute();
        let yesterday = date.pred_opt().unwrap_or(date);
        // A period covers today from its start, or the early hours of the
        // day after it began.
        let covers = |on: &dyn Fn(NaiveDate) -> bool, h: &Hours| {
            if h.overnight() {
                (on(date) && minute >= h.start) || (on(yesterday) && minute < h.end)
            } else {
                on(date) && minute >= h.start && minute < h.end
            }
        };
        if self
            .extra
            .iter()
            .any(|(day, h)| covers(&|d| day.matches(d), h))
        {
            return true;
        }
        if self.closed.iter().any(|day| day.matches(date)) {
            return false;
        }
        self.regular.iter().any(|(days, h)| {
            covers(
                &|d: NaiveDate| days[d.weekday().num_days_from_monday() as usize],
                h,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::model::parse_iso;

    fn hours(options: &[(&str, &str)]) -> OfficeHours {
        let map = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        OfficeHours::from_options(&map).unwrap()
    }

    fn open(h: &OfficeHours, at: &str) -> bool {
        h.is_open(parse_iso(at).unwrap())
    }

    #[test]
    fn regular_hours_in_the_offices_time_zone() {
        let h = hours(&[
            ("_timezone", "Europe/Paris"),
            ("_bh_regular1", "Mon-Fri 9:00-17:00"),
        ]);
        // Monday 2026-11-30, Paris is UTC+1 in winter.
        assert!(open(&h, "2026-11-30T08:00:00Z"));
        assert!(!open(&h, "2026-11-30T07:59:00Z"));
        assert!(!open(&h, "2026-11-30T16:00:00Z"));
        assert!(!open(&h, "2026-11-29T10:00:00Z"), "Sunday");
    }

    #[test]
    fn days_and_hours_wrap() {
        let h = hours(&[("_bh_regular1", "Sat-Mon 19:00-7:00")]);
        assert!(open(&h, "2026-11-28T20:00:00Z"), "Saturday evening");
        assert!(
            open(&h, "2026-12-01T06:00:00Z"),
            "Tuesday early, after Monday"
        );
        assert!(!open(&h, "2026-12-01T20:00:00Z"), "Tuesday evening");
        assert!(
            !open(&h, "2026-11-28T06:00:00Z"),
            "Saturday early (Friday closed)"
        );
    }

    #[test]
    fn closed_days_and_extra_periods() {
        let h = hours(&[
            ("_bh_regular1", "Mon-Sun 9:00-17:00"),
            ("_bh_closed1", "12-25"),
            ("_bh_add1", "2026-12-25 10:00-12:00"),
        ]);
        assert!(!open(&h, "2027-12-25T10:30:00Z"), "closed every year");
        assert!(open(&h, "2026-12-25T10:30:00Z"), "but open then in 2026");
        assert!(!open(&h, "2026-12-25T14:00:00Z"));
        assert!(open(&h, "2026-12-26T14:00:00Z"));
    }

    #[test]
    fn bad_values_are_refused() {
        for (k, v) in [
            ("_timezone", "Mars/Olympus"),
            ("_bh_regular1", "Funday 9:00-17:00"),
            ("_bh_regular1", "Mon-Fri 9-17"),
            ("_bh_add1", "2026-02-30 9:00-10:00"),
            ("_bh_closed1", "tomorrow"),
        ] {
            let map = HashMap::from([(k.to_string(), v.to_string())]);
            assert!(OfficeHours::from_options(&map).is_err(), "{k} = {v}");
        }
        // No regular hours: never open.
        assert!(!open(&hours(&[]), "2026-11-30T10:00:00Z"));
    }
}
