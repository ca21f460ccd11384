//! Earlier days' reports, for the 30-day chart: `HISTORY_DIR/<date>/report.json` for each of
//! the [`HISTORY_DAYS`] days before the report's date. A day without a report is a gap in the
//! chart. A report that cannot be read or is not a monitoring report of its day is skipped
//! with a progress line: it only feeds a chart, and must not keep today's report from being
//! written.

use std::path::Path;

use ml_cli::Progress;
use ml_data::Date;
use serde::Deserialize;

use crate::{REPORT_FORMAT, REPORT_JSON};

/// Days before the report's date that the chart shows (30 days with the report's own).
pub const HISTORY_DAYS: i64 = 29;

/// One day of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub date: Date,
    pub roc_auc: f64,
    /// The validation ROC AUC of the model that day's report evaluated.
    pub validation_roc_auc: f64,
    /// `NAME v3`, or the model's URI for a model outside the registry.
    pub model: String,
    pub verdict: String,
}

/// The fields of an earlier `report.json` the chart needs.
#[derive(Debug, Deserialize)]
struct Earlier {
    format: u32,
    date: String,
    verdict: String,
    model: EarlierModel,
    quality: EarlierQuality,
}

#[derive(Debug, Deserialize)]
struct EarlierModel {
    uri: String,
    registered_model: Option<String>,
    version: Option<String>,
    validation_roc_auc: f64,
}

#[derive(Debug, Deserialize)]
struct EarlierQuality {
    roc_auc: f64,
}

/// How the chart names a model.
pub fn model_label(uri: &str, registered_model: Option<&str>, version: Option<&str>) -> String {
    match (registered_model, version) {
        (Some(name), Some(version)) => format!("{name} v{version}"),
        _ => uri.to_string(),
    }
}

/// The reports of the [`HISTORY_DAYS`] days before `date` found in `dir`, oldest first.
pub fn read(dir: &Path, date: Date, progress: &Progress) -> Vec<Point> {
    let mut points = Vec::new();
    for back in (1..=HISTORY_DAYS).rev() {
        let Some(day) = add_days(date, -back) else {
            continue;
        };
        let path = dir.join(day.to_string()).join(REPORT_JSON);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                skip(progress, &path, &e.to_string());
                continue;
            }
        };
        match parse(&bytes, day) {
            Ok(point) => points.push(point),
            Err(why) => skip(progress, &path, &why),
        }
    }
    progress.log(format_args!(
        "history: {} earlier report(s) in the {HISTORY_DAYS} days before {date} in {}",
        points.len(),
        dir.display()
    ));
    points
}

fn skip(progress: &Progress, path: &Path, why: &str) {
    progress.log(format_args!(
        "skipping {} in the chart: {why}",
        path.display()
    ));
}

fn parse(bytes: &[u8], day: Date) -> Result<Point, String> {
    let earlier: Earlier =
        serde_json::from_slice(bytes).map_err(|e| format!("not a monitoring report: {e}"))?;
    if earlier.format != REPORT_FORMAT {
        return Err(format!(
            "report format {} is not the supported format {REPORT_FORMAT}",
            earlier.format
        ));
    }
    if earlier.date != day.to_string() {
        return Err(format!("it is the report of {}", earlier.date));
    }
    Ok(Point {
        date: day,
        roc_auc: earlier.quality.roc_auc,
        validation_roc_auc: earlier.model.validation_roc_auc,
        model: model_label(
            &earlier.model.uri,
            earlier.model.registered_model.as_deref(),
            earlier.model.version.as_deref(),
        ),
        verdict: earlier.verdict,
    })
}

/// `date` moved by `days` (negative: back); `None` past the years a `Date` holds.
pub fn add_days(date: Date, days: i64) -> Option<Date> {
    from_days(date.days_since_epoch() + days)
}

/// The date `days` after 1970-01-01: the inverse of `Date::days_since_epoch`, in the same
/// March-based calendar (H. Hinnant's `civil_from_days`).
fn from_days(days: i64) -> Option<Date> {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = i32::try_from(year_of_era + era * 400 + i64::from(month <= 2)).ok()?;
    Date::new(year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().expect("date")
    }

    #[test]
    fn day_arithmetic_inverts_days_since_epoch() {
        for days in -800_000..800_000i64 {
            let date = from_days(days).expect("a date");
            assert_eq!(date.days_since_epoch(), days, "{date}");
        }
        assert_eq!(add_days(d("2024-03-01"), -1), Some(d("2024-02-29")));
        assert_eq!(add_days(d("2026-01-01"), -29), Some(d("2025-12-03")));
        assert_eq!(add_days(d("1970-01-01"), 0), Some(d("1970-01-01")));
    }

    fn report(date: &str, auc: f64) -> String {
        serde_json::json!({
            "format": 1,
            "date": date,
            "verdict": "ok",
            "model": {
                "uri": "models:/clf/3",
                "registered_model": "clf",
                "version": "3",
                "validation_roc_auc": 0.9,
            },
            "quality": { "roc_auc": auc },
        })
        .to_string()
    }

    #[test]
    fn reads_the_days_before_skipping_gaps_and_bad_reports() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let write = |day: &str, text: &str| {
            let dir = tmp.path().join(day);
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(dir.join(REPORT_JSON), text).expect("write");
        };
        write("2026-01-04", &report("2026-01-04", 0.8));
        write("2026-01-02", &report("2026-01-02", 0.85));
        write("2026-01-03", "{ not json");
        // Another day's report under this day's name.
        write("2026-01-01", &report("2025-12-31", 0.7));
        // Today's and the thirtieth day back are outside the window.
        write("2026-01-05", &report("2026-01-05", 0.5));
        write("2025-12-06", &report("2025-12-06", 0.5));
        write("2025-12-07", &report("2025-12-07", 0.6));
        let points = read(
            tmp.path(),
            d("2026-01-05"),
            &Progress::new("test").quiet(true),
        );
        let got: Vec<(String, f64)> = points
            .iter()
            .map(|p| (p.date.to_string(), p.roc_auc))
            .collect();
        assert_eq!(
            got,
            [
                ("2025-12-07".to_string(), 0.6),
                ("2026-01-02".to_string(), 0.85),
                ("2026-01-04".to_string(), 0.8)
            ]
        );
        assert_eq!(points[0].model, "clf v3");
        assert_eq!(points[0].validation_roc_auc, 0.9);
        assert!(parse(b"{ not json", d("2026-01-03"))
            .expect_err("bad")
            .starts_with("not a monitoring report"));
        assert_eq!(
            parse(report("2025-12-31", 0.7).as_bytes(), d("2026-01-01")).expect_err("date"),
            "it is the report of 2025-12-31"
        );
    }
}
