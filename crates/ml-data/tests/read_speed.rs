//! Read speed of the CSV readers on a large file; not part of a plain `cargo test`:
//!
//! ```text
//! ml-generate --output-dir /tmp/day --date 2026-03-01 --rows 1000000
//! ML_DATA_BENCH_DIR=/tmp/day cargo test --release -p ml-data --test read_speed -- --ignored --nocapture
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

fn best_of(runs: usize, mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut rows = 0;
    for _ in 0..runs {
        let start = Instant::now();
        rows = f();
        best = best.min(start.elapsed());
    }
    (best, rows)
}

#[test]
#[ignore = "needs ML_DATA_BENCH_DIR with a generated day"]
fn read_speed() {
    let dir = PathBuf::from(std::env::var("ML_DATA_BENCH_DIR").expect("ML_DATA_BENCH_DIR"));
    let data = dir.join("data.csv");
    let target = dir.join("target.csv");
    let report = |what: &str, (took, rows): (Duration, usize)| {
        eprintln!(
            "{what:<28} {rows} rows in {:.3}s ({:.0} rows/s)",
            took.as_secs_f64(),
            rows as f64 / took.as_secs_f64()
        );
    };
    report(
        "read_features",
        best_of(7, || {
            ml_data::io::read_features(&data).expect("read").n_rows()
        }),
    );
    report(
        "feature_batches(100000)",
        best_of(7, || {
            ml_data::io::feature_batches(&data, 100_000)
                .expect("open")
                .map(|b| b.expect("batch").features.n_rows())
                .sum()
        }),
    );
    report(
        "read_target",
        best_of(7, || ml_data::io::read_target(&target).expect("read").len()),
    );
}
