//! Times the pipeline's default random forest (100 trees, depth 10, leaves of 5 rows, 60% of
//! the inputs per split) on synthetic rows: fitting on TRAIN_ROWS, scoring SCORE_ROWS.
//!
//! `cargo run --release -p ml-model --example forest_speed [-- TRAIN_ROWS [SCORE_ROWS]]`
//! (defaults 160000 and 1000000); wrap in `/usr/bin/time -v` for the peak memory, and in
//! `taskset -c 0` for one core.

use std::error::Error;
use std::time::Instant;

use ml_model::metrics::roc_auc;
use ml_model::testing::labeled;
use ml_model::{ForestParams, Hyperparameters, Model};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let train_rows = args.next().transpose()?.unwrap_or(160_000);
    let score_rows = args.next().transpose()?.unwrap_or(1_000_000);
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    println!("{threads} thread(s)");

    let train = labeled(train_rows, 1);
    let hp = Hyperparameters::RandomForest(ForestParams {
        n_trees: 100,
        max_depth: Some(10),
        min_samples_leaf: 5,
        feature_fraction: 0.6,
        ..Default::default()
    });
    let start = Instant::now();
    let model = Model::fit(&train, &hp)?;
    println!(
        "fit {train_rows} rows: {:.2} s",
        start.elapsed().as_secs_f64()
    );
    drop(train);
    if score_rows == 0 {
        return Ok(());
    }

    let rows = labeled(score_rows, 2);
    let start = Instant::now();
    let inputs = model.preprocessor().transform(&rows.features)?;
    let pipeline = start.elapsed().as_secs_f64();
    drop(inputs);
    let start = Instant::now();
    let p = model.predict_proba(&rows.features)?;
    let total = start.elapsed().as_secs_f64();
    println!(
        "predict {score_rows} rows: {total:.2} s (feature pipeline {pipeline:.2} s, forest {:.2} s); ROC AUC {:.4}",
        total - pipeline,
        roc_auc(&rows.target, &p).unwrap_or(f64::NAN)
    );
    Ok(())
}
