//! A synthetic stream of heart-disease records shaped like the UCI table.
//!
//! Every day is drawn from a population whose parameters move slowly with the calendar, so the
//! data behaves like something that keeps arriving rather than a fixed file:
//!
//! * volume: a few thousand rows a day, lower at weekends, with a yearly swell and day-to-day
//!   noise;
//! * covariate drift: the patient mix ages and cholesterol and blood pressure creep up over the
//!   years, with slow seasonal waves;
//! * label drift: the disease rate follows a multi-year wave, and the weight of some risk
//!   factors changes over months, so a model trained on an old day measurably degrades;
//! * noise: the label is a Bernoulli draw from a logistic function of the features, so even the
//!   true function reaches a ROC AUC of about 0.9, not 1;
//! * about 1% empty cells in five columns (blood pressure, cholesterol, heart rate, ca, thal).
//!
//! Everything is a pure function of `(date, seed)`: the random generator is seeded from both
//! and nothing reads the clock, so re-running a date gives byte-identical files. The
//! generator is named, ChaCha12 (what rand's `StdRng` happens to be today, so the files did
//! not change when it was named): rand documents `StdRng` as free to change between
//! versions, and a `cargo update` must not change every generated day. The golden test in
//! `tests/cli.rs` pins the bytes of one day.
//!
//! Every row has a key, the first column (`id`) of both files: [`row_id`], the date and the
//! row number, so the same date and seed always give the same ids, and predictions, inputs
//! and labels join by key rather than by position.

use std::f64::consts::TAU;
use std::path::{Path, PathBuf};

use ml_data::{io, Date, Frame, Labeled};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use rand_distr::{Distribution, StandardNormal};

/// Default seed; the same for every day so that only the date varies the data.
pub const DEFAULT_SEED: u64 = 42;

/// The most rows one run may generate. The day is built in memory and then written: about
/// 250 bytes a row at the peak (measured: 253 MB for 1,000,000 rows, the id column
/// included), so 10,000,000 rows need about 2.5 GB, already far beyond the few thousand of
/// a natural day and the million the read benchmarks use. More would only end in an
/// allocation failure.
pub const MAX_ROWS: usize = 10_000_000;

/// The calendar origin of the drift: parameters equal their base values on this day.
const DRIFT_ORIGIN: (i32, u32, u32) = (2024, 1, 1);

/// What to generate and where.
#[derive(Debug, Clone)]
pub struct Options {
    pub output_dir: PathBuf,
    pub date: Date,
    /// Overrides the day's natural volume; at most [`MAX_ROWS`] (the command line checks).
    pub rows: Option<usize>,
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub rows: usize,
    pub positives: usize,
    pub data: PathBuf,
    pub target: PathBuf,
}

/// The key of row `row` (1-based) of a day of `rows` rows: `YYYY-MM-DD-NNNNNN`, the date
/// and the row number zero-padded to six digits (`2026-01-05-000001`), or to as many as
/// `rows` has when that is more (a day of 1,000,000 rows has `...-0000001`). One width for
/// the whole file keeps the ids in row order when sorted as text, so a reader's duplicate
/// check needs no memory for them (see `ml_data::key`); natural days, a few thousand rows,
/// always have six digits.
pub fn row_id(date: Date, row: usize, rows: usize) -> String {
    let width = rows.to_string().len().max(6);
    format!("{date}-{row:0width$}")
}

/// Generates one day and writes `data.csv` and `target.csv` atomically, each with the rows'
/// ids ([`row_id`]) as its first column. `target.csv` is committed first: whoever sees
/// `data.csv` (a sensor, predict) also finds its labels.
pub fn run(options: &Options) -> Result<Summary, ml_data::DataError> {
    let day = generate(options.date, options.seed, options.rows);
    let data = options.output_dir.join("data.csv");
    let target = options.output_dir.join("target.csv");
    ml_data::atomic::ensure_dir(&options.output_dir)?;
    // Made as each file is written, not held in a Vec<String> beside the day (some 40 bytes
    // a row more at the peak).
    let rows = day.n_rows();
    let ids = || (1..=rows).map(|row| row_id(options.date, row, rows));
    io::write_keyed_target(&target, ids(), &day.target)?;
    io::write_keyed_features(&data, ids(), &day.features)?;
    Ok(Summary {
        rows: day.n_rows(),
        positives: day.target.iter().map(|&t| usize::from(t)).sum(),
        data,
        target,
    })
}

/// Mixes two 64-bit values into a well-spread seed (the SplitMix64 finaliser).
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The population of one day: every parameter that drifts.
#[derive(Debug, Clone, Copy)]
struct Population {
    age_mean: f64,
    trestbps_shift: f64,
    chol_mean: f64,
    /// Logit offset of the disease rate.
    intercept: f64,
    /// Multiplies the weight of the exercise-test features (thalach, exang, oldpeak).
    exercise_weight: f64,
    /// Multiplies the weight of the vessel and thalassemia findings (ca, thal).
    imaging_weight: f64,
}

impl Population {
    fn on(date: Date) -> Self {
        let origin = Date::new(DRIFT_ORIGIN.0, DRIFT_ORIGIN.1, DRIFT_ORIGIN.2)
            .map_or(0, Date::days_since_epoch);
        let years = (date.days_since_epoch() - origin) as f64 / 365.25;
        let season = (TAU * f64::from(date.ordinal()) / 365.25).sin();
        Self {
            age_mean: 54.0 + 0.8 * years.clamp(-10.0, 10.0) + 0.8 * season,
            trestbps_shift: 1.5 * years.clamp(-10.0, 10.0) + 2.0 * season,
            chol_mean: 246.0 + 4.0 * years.clamp(-10.0, 10.0) + 6.0 * (TAU * years / 3.0).sin(),
            intercept: 0.45 * (TAU * years / 2.5).sin(),
            exercise_weight: 1.0 + 0.35 * (TAU * years / 1.7).sin(),
            imaging_weight: 1.0 - 0.3 * (TAU * years / 2.2).sin(),
        }
    }
}

/// The day's natural number of rows: ~3,000 on a weekday, fewer at weekends, a yearly swell
/// and ±10% noise.
fn daily_rows(date: Date, rng: &mut ChaCha12Rng) -> usize {
    let weekend = if date.weekday() >= 5 { 0.65 } else { 1.0 };
    let season = 1.0 + 0.15 * (TAU * f64::from(date.ordinal()) / 365.25).cos();
    let noise = 1.0 + 0.1 * (2.0 * rng.random::<f64>() - 1.0);
    (3000.0 * weekend * season * noise).round() as usize
}

/// Index drawn from a small discrete distribution given by its cumulative weights.
fn pick(rng: &mut ChaCha12Rng, cumulative: &[f64]) -> usize {
    let u = rng.random::<f64>() * cumulative.last().copied().unwrap_or(1.0);
    cumulative
        .iter()
        .position(|&c| u < c)
        .unwrap_or(cumulative.len() - 1)
}

fn cumulative<const N: usize>(weights: [f64; N]) -> [f64; N] {
    let mut acc = 0.0;
    weights.map(|w| {
        acc += w;
        acc
    })
}

/// Generates the rows of one day (in memory).
pub fn generate(date: Date, seed: u64, rows: Option<usize>) -> Labeled {
    let mut rng = ChaCha12Rng::seed_from_u64(mix(seed, date.days_since_epoch() as u64));
    let n = rows.unwrap_or_else(|| daily_rows(date, &mut rng));
    let pop = Population::on(date);

    let cp_p = cumulative([0.47, 0.17, 0.28, 0.08]);
    let restecg_p = cumulative([0.49, 0.49, 0.02]);
    let slope_p = cumulative([0.07, 0.46, 0.47]);
    let ca_p = cumulative([0.58, 0.21, 0.13, 0.07, 0.01]);
    let thal_p = cumulative([0.01, 0.06, 0.55, 0.38]);
    let z = StandardNormal;

    let mut cols: Vec<Vec<f64>> = (0..13).map(|_| Vec::with_capacity(n)).collect();
    let mut target = Vec::with_capacity(n);
    for _ in 0..n {
        let age = (pop.age_mean + 9.0 * Distribution::<f64>::sample(&z, &mut rng))
            .clamp(29.0, 80.0)
            .round();
        let sex = f64::from(u8::from(rng.random::<f64>() < 0.68));
        let cp = pick(&mut rng, &cp_p) as f64;
        let trestbps = (131.0
            + pop.trestbps_shift
            + 0.35 * (age - 54.0)
            + 17.0 * Distribution::<f64>::sample(&z, &mut rng))
        .clamp(90.0, 200.0)
        .round();
        let chol =
            (pop.chol_mean + 0.8 * (age - 54.0) + 50.0 * Distribution::<f64>::sample(&z, &mut rng))
                .clamp(120.0, 565.0)
                .round();
        let fbs = f64::from(u8::from(rng.random::<f64>() < 0.15));
        let restecg = pick(&mut rng, &restecg_p) as f64;
        let thalach = (150.0 - 0.9 * (age - 54.0)
            + 21.0 * Distribution::<f64>::sample(&z, &mut rng))
        .clamp(70.0, 205.0)
        .round();
        let exang = f64::from(u8::from(
            rng.random::<f64>() < if cp == 0.0 { 0.5 } else { 0.15 },
        ));
        let oldpeak = ((0.6 + 1.2 * Distribution::<f64>::sample(&z, &mut rng)).max(0.0) * 10.0)
            .round()
            .min(62.0)
            / 10.0;
        let slope = pick(&mut rng, &slope_p) as f64;
        let ca = pick(&mut rng, &ca_p) as f64;
        let thal = pick(&mut rng, &thal_p) as f64;

        // Risk-factor effects in logit units, scaled so that the true function reaches a ROC
        // AUC of about 0.9: a good model gets close to it, never to 1.
        let risk = -0.035 * (age - 54.0) - 0.9 * sex + [0.0, 1.1, 1.5, 1.2][cp as usize]
            - 0.015 * (trestbps - 131.0)
            - 0.004 * (chol - 246.0)
            + [0.0, 0.45, -0.4][restecg as usize]
            + pop.exercise_weight
                * (0.03 * (thalach - 150.0) - 0.9 * exang - 0.6 * (oldpeak - 1.0))
            + [0.0, -0.4, 0.5][slope as usize]
            + pop.imaging_weight * (-0.75 * ca + [0.0, 0.2, 0.9, -0.8][thal as usize]);
        let score = pop.intercept + 0.45 + 1.4 * risk;
        let p = 1.0 / (1.0 + (-score).exp());
        target.push(u8::from(rng.random::<f64>() < p));

        let row = [
            age, sex, cp, trestbps, chol, fbs, restecg, thalach, exang, oldpeak, slope, ca, thal,
        ];
        for (col, value) in cols.iter_mut().zip(row) {
            col.push(value);
        }
    }
    // Missing cells, drawn after the labels (the truth exists; the record lost it).
    for (col, rate) in [(3, 0.01), (4, 0.015), (7, 0.008), (11, 0.01), (12, 0.006)] {
        for value in &mut cols[col] {
            if rng.random::<f64>() < rate {
                *value = f64::NAN;
            }
        }
    }
    Labeled {
        features: Frame {
            names: ml_data::schema::feature_names()
                .map(str::to_string)
                .collect(),
            columns: cols,
        },
        target,
    }
}

/// Where the files of `date` go under a raw-data root (`ROOT/YYYY-MM-DD`), for callers that
/// think in roots.
pub fn day_dir(root: &Path, date: Date) -> PathBuf {
    root.join(date.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().expect("date")
    }

    #[test]
    fn same_date_and_seed_same_rows() {
        let a = generate(d("2024-03-05"), 1, None);
        let b = generate(d("2024-03-05"), 1, None);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_ne!(
            format!("{:?}", a.target),
            format!("{:?}", generate(d("2024-03-06"), 1, None).target)
        );
        assert_ne!(
            format!("{:?}", a.target),
            format!("{:?}", generate(d("2024-03-05"), 2, None).target)
        );
    }

    #[test]
    fn row_ids_are_the_date_and_the_padded_row_number() {
        let day = d("2026-01-05");
        assert_eq!(row_id(day, 1, 3000), "2026-01-05-000001");
        assert_eq!(row_id(day, 999_999, 999_999), "2026-01-05-999999");
        assert_eq!(row_id(day, 1, 1_000_000), "2026-01-05-0000001");
        assert_eq!(row_id(day, 1_000_000, 1_000_000), "2026-01-05-1000000");
    }

    #[test]
    fn volume_varies_by_day_and_rows_overrides() {
        let sizes: Vec<usize> = (1..=14)
            .map(|day| generate(d(&format!("2024-05-{day:02}")), 7, None).n_rows())
            .collect();
        assert!(
            sizes.iter().all(|&n| (1500..5000).contains(&n)),
            "{sizes:?}"
        );
        assert!(sizes.windows(2).any(|w| w[0] != w[1]));
        assert_eq!(generate(d("2024-05-01"), 7, Some(123)).n_rows(), 123);
    }

    #[test]
    fn values_stay_in_schema_ranges_with_some_missing() {
        let day = generate(d("2025-11-20"), 3, Some(20_000));
        let mut missing = 0;
        for (col, values) in ml_data::schema::FEATURES.iter().zip(&day.features.columns) {
            for &v in values {
                if v.is_nan() {
                    missing += 1;
                } else {
                    assert!(v >= col.min && v <= col.max, "{} = {v}", col.name);
                    assert!(!col.integer || v.fract() == 0.0, "{} = {v}", col.name);
                }
            }
        }
        let share = f64::from(missing) / (20_000.0 * 13.0);
        assert!(share > 0.002 && share < 0.01, "{share}");
        let rate = day.target.iter().map(|&t| f64::from(t)).sum::<f64>() / 20_000.0;
        assert!(rate > 0.3 && rate < 0.7, "{rate}");
    }
}
