//! Fixtures shared by the ml-promote test binaries: a validation split, and model
//! directories as ml-train leaves them (model.bin plus mlflow_run.json).

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use ml_data::Labeled;
use ml_mlflow::{Client, RunRecord};
use ml_model::{Hyperparameters, LogisticParams, Model};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ml-promote"))
}

pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `PROCESSED_DIR/val.csv` with `n` rows.
pub fn write_val(dir: &Path, n: usize) {
    ml_data::io::write_labeled(&dir.join("val.csv"), &ml_model::testing::labeled(n, 4242))
        .expect("val.csv written");
}

/// How good a fixture model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    /// Logistic regression on the real labels.
    Good,
    /// Logistic regression on inverted labels: reliably worse than chance on val.csv.
    Bad,
}

/// A fitted model saved as `dir/model.bin`.
pub fn write_model(dir: &Path, quality: Quality) {
    let mut train: Labeled = ml_model::testing::labeled(600, 7);
    if quality == Quality::Bad {
        train.target.iter_mut().for_each(|t| *t = 1 - *t);
    }
    let model = Model::fit(
        &train,
        &Hyperparameters::LogisticRegression(LogisticParams::default()),
    )
    .expect("model fits");
    model
        .save(&dir.join(ml_model::MODEL_FILE))
        .expect("model saved");
}

/// A model logged the way ml-train logs it: a run holding `model/model.bin`, and the run
/// record in `dir`.
pub fn logged_model(client: &Client, experiment: &str, dir: &Path, quality: Quality) -> RunRecord {
    write_model(dir, quality);
    ml_mlflow::testing::log_model_dir(client, experiment, dir)
}
