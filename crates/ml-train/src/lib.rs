//! The training stage: reads `PROCESSED_DIR/train.csv`, fits the feature pipeline and a
//! classifier, and writes `MODEL_DIR/model.bin`, `MODEL_DIR/params.json`,
//! `MODEL_DIR/reference_profile.json` (the training features binned, which `ml-monitor`
//! measures drift against; see `ml_model::profile`) and the `MLmodel` descriptor, each
//! atomically, the descriptor last. Nothing is written unless training succeeded. With an
//! MLflow client, [`log_to_mlflow`] then logs the run and leaves `mlflow_run.json` for later
//! stages.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ml_cli::Progress;
use ml_mlflow::{Client, Metric, Param, RunRecord, Tag, TrainingRun};
use ml_model::{
    ForestParams, Hyperparameters, LogisticParams, Model, ModelKind, ReferenceProfile, PROFILE_FILE,
};

/// The training split inside the input directory.
pub use ml_data::split::TRAIN_FILE;
/// Run parameters next to the model.
pub const PARAMS_FILE: &str = "params.json";

/// Hyperparameters as given on the command line: `None` means "the default". Giving one that
/// does not apply to the chosen model kind is an error rather than silently ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HyperparameterArgs {
    pub alpha: Option<f64>,
    pub c: Option<f64>,
    pub n_trees: Option<usize>,
    pub max_depth: Option<u16>,
    pub min_samples_leaf: Option<usize>,
    pub feature_fraction: Option<f64>,
    pub max_samples: Option<usize>,
    pub seed: Option<u64>,
}

impl HyperparameterArgs {
    /// Resolves defaults for `kind` and rejects options of the other kind.
    pub fn resolve(&self, kind: ModelKind) -> anyhow::Result<Hyperparameters> {
        let forest_only = [
            ("--n-trees", self.n_trees.is_some()),
            ("--max-depth", self.max_depth.is_some()),
            ("--min-samples-leaf", self.min_samples_leaf.is_some()),
            ("--feature-fraction", self.feature_fraction.is_some()),
            ("--max-samples", self.max_samples.is_some()),
            ("--seed", self.seed.is_some()),
        ];
        let lr_only = [("--alpha", self.alpha.is_some()), ("--c", self.c.is_some())];
        let (foreign, _) = match kind {
            ModelKind::LogisticRegression => (&forest_only[..], &lr_only[..]),
            ModelKind::RandomForest => (&lr_only[..], &forest_only[..]),
        };
        if let Some((flag, _)) = foreign.iter().find(|(_, given)| *given) {
            bail!("{flag} does not apply to --model {kind}");
        }
        Ok(match kind {
            ModelKind::LogisticRegression => {
                let alpha = match (self.alpha, self.c) {
                    (Some(_), Some(_)) => bail!("give --alpha or --c, not both (alpha = 1 / C)"),
                    (Some(a), None) => a,
                    (None, Some(c)) if c > 0.0 && c.is_finite() => 1.0 / c,
                    (None, Some(c)) => bail!("--c must be a positive number, got {c}"),
                    (None, None) => LogisticParams::default().alpha,
                };
                Hyperparameters::LogisticRegression(LogisticParams { alpha })
            }
            ModelKind::RandomForest => {
                let d = ForestParams::default();
                Hyperparameters::RandomForest(ForestParams {
                    n_trees: self.n_trees.unwrap_or(d.n_trees),
                    max_depth: self.max_depth.or(d.max_depth),
                    min_samples_leaf: self.min_samples_leaf.unwrap_or(d.min_samples_leaf),
                    feature_fraction: self.feature_fraction.unwrap_or(d.feature_fraction),
                    max_samples: self.max_samples.or(d.max_samples),
                    seed: self.seed.unwrap_or(d.seed),
                })
            }
        })
    }
}

/// What one training run needs.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub input_dir: PathBuf,
    pub output_dir: PathBuf,
    pub hyperparameters: Hyperparameters,
}

/// What a training run produced.
#[derive(Debug)]
pub struct Trained {
    pub model: Model,
    pub rows: usize,
    pub model_path: PathBuf,
    pub params_path: PathBuf,
    pub profile_path: PathBuf,
    /// What params.json holds.
    pub params: serde_json::Value,
    pub fit_seconds: f64,
}

/// The model files logged to MLflow, in upload order (the descriptor last). A registry
/// download brings back all of them.
pub const MODEL_FILES: [&str; 4] = [
    ml_model::MODEL_FILE,
    PARAMS_FILE,
    PROFILE_FILE,
    ml_mlflow::DESCRIPTOR_FILE,
];

/// Reads, fits, and writes the model and its parameters.
pub fn run(config: &TrainConfig, progress: &Progress) -> anyhow::Result<Trained> {
    let train_path = config.input_dir.join(TRAIN_FILE);
    let train = progress.step(
        format_args!("read {}", train_path.display()),
        |r: &Result<ml_data::Labeled, _>| r.as_ref().map_or(0, ml_data::Labeled::n_rows),
        || ml_data::io::read_labeled(&train_path),
    )?;
    // A run record left by an earlier training into this directory would name a run whose
    // model is not the one about to be written: it goes first.
    remove_stale_record(&config.output_dir)?;
    let kind = config.hyperparameters.kind();
    let started = std::time::Instant::now();
    let model = progress
        .step(
            format_args!("fit {kind}"),
            |_| train.n_rows(),
            || Model::fit(&train, &config.hyperparameters),
        )
        // Kept as a `ModelError` (bad input: exit 65); the one error line still reads
        // "<file>: cannot train <kind>: <reason>".
        .with_context(|| format!("{}: cannot train {kind}", train_path.display()))?;
    let fit_seconds = started.elapsed().as_secs_f64();
    let profile = ReferenceProfile::from_frame(&train.features)
        .with_context(|| format!("{}: cannot profile the features", train_path.display()))?;

    let params = params_json(config, train.n_rows(), &model);
    let params_text = serde_json::to_string_pretty(&params).context("cannot encode params.json")?;
    let mut profile_json =
        serde_json::to_vec_pretty(&profile).context("cannot encode reference_profile.json")?;
    profile_json.push(b'\n');
    let model_path = config.output_dir.join(ml_model::MODEL_FILE);
    let params_path = config.output_dir.join(PARAMS_FILE);
    let profile_path = config.output_dir.join(PROFILE_FILE);
    let descriptor = ml_mlflow::descriptor(
        ml_model::MODEL_FILE,
        "ml-model-bin",
        ml_model::FORMAT_VERSION,
        model.kind().as_str(),
        code_version(),
    );
    model.save(&model_path)?;
    ml_data::atomic::write_atomic(&params_path, format!("{params_text}\n").as_bytes())?;
    ml_data::atomic::write_atomic(&profile_path, &profile_json)?;
    ml_data::atomic::write_atomic(
        &config.output_dir.join(ml_mlflow::DESCRIPTOR_FILE),
        descriptor.as_bytes(),
    )?;
    progress.log(format_args!(
        "wrote {}, {} and {}",
        model_path.display(),
        params_path.display(),
        profile_path.display()
    ));
    Ok(Trained {
        model,
        rows: train.n_rows(),
        model_path,
        params_path,
        profile_path,
        params,
        fit_seconds,
    })
}

fn remove_stale_record(model_dir: &Path) -> anyhow::Result<()> {
    let path = RunRecord::path(model_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("{}: cannot remove", path.display())),
    }
}

/// Logs the trained model to MLflow: a run named after the data date in `experiment`, with
/// params.json flattened into params, the fit time and row count as metrics, and the model
/// files below the `model/` artifact directory. Writes `MODEL_DIR/mlflow_run.json` last.
pub fn log_to_mlflow(
    client: &Client,
    experiment: &str,
    config: &TrainConfig,
    trained: &Trained,
    progress: &Progress,
) -> anyhow::Result<RunRecord> {
    let params = flatten_params(&trained.params);
    let run_name = match data_date(&config.input_dir) {
        Some(date) => format!("train-{date}"),
        None => "train".to_string(),
    };
    let metrics = [
        Metric::now("train_rows", trained.rows as f64),
        Metric::now("fit_seconds", trained.fit_seconds),
    ];
    let tags = [
        Tag::new("mlflow.source.name", "ml-train"),
        Tag::new("mlflow.source.type", "JOB"),
        Tag::new("code_version", code_version()),
    ];
    progress.log(format_args!(
        "logging run {run_name} to MLflow at {}",
        client.base_url()
    ));
    let logged = client.log_training(&TrainingRun {
        experiment,
        run_name: &run_name,
        params: &params,
        metrics: &metrics,
        tags: &tags,
        model_dir: &config.output_dir,
        files: &MODEL_FILES,
    })?;
    let record = logged.record;
    if !logged.superseded.is_empty() {
        progress.log(format_args!(
            "marked KILLED {} earlier run(s) of {run_name} left RUNNING by a try that never \
             finished: {}",
            logged.superseded.len(),
            logged.superseded.join(", ")
        ));
    }
    progress.log(format_args!(
        "MLflow run {} in experiment {:?} (id {}); wrote {}",
        record.run_id,
        record.experiment_name,
        record.experiment_id,
        RunRecord::path(&config.output_dir).display()
    ));
    Ok(record)
}

/// params.json as MLflow params: nested keys joined with `.`, lists joined with `,`, nulls
/// left out (a default that does not apply).
pub fn flatten_params(value: &serde_json::Value) -> Vec<Param> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut Vec<Param>) {
        let key = |k: &str| {
            if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            }
        };
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    walk(&key(k), v, out);
                }
            }
            serde_json::Value::Null => {}
            serde_json::Value::String(s) => out.push(Param::new(prefix, s)),
            serde_json::Value::Array(items) => {
                let text: Vec<String> = items
                    .iter()
                    .map(|i| match i {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                out.push(Param::new(prefix, text.join(",")));
            }
            other => out.push(Param::new(prefix, other)),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}

/// The code version recorded with every model: the image build may stamp a git revision in
/// `ML_CODE_VERSION` at compile time; otherwise the crate version.
pub fn code_version() -> &'static str {
    option_env!("ML_CODE_VERSION").unwrap_or(env!("CARGO_PKG_VERSION"))
}

/// The contents of `params.json`. Deterministic: no clock, no host names.
pub fn params_json(config: &TrainConfig, rows: usize, model: &Model) -> serde_json::Value {
    let hyperparameters = match &config.hyperparameters {
        Hyperparameters::LogisticRegression(p) => serde_json::to_value(p),
        Hyperparameters::RandomForest(p) => serde_json::to_value(p),
    }
    .unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "model": model.kind().as_str(),
        "probabilities": model.kind().probabilities(),
        "hyperparameters": hyperparameters,
        "rows": { "train": rows },
        "features": {
            "inputs": model.preprocessor().input_names(),
            "model_inputs": model.preprocessor().n_outputs(),
        },
        "data_date": data_date(&config.input_dir),
        "format_version": ml_model::FORMAT_VERSION,
        "code_version": code_version(),
    })
}

/// The data date when the directory's name is a calendar date `YYYY-MM-DD` (as in
/// `/data/processed/2026-01-05`), else `None`.
pub fn data_date(dir: &Path) -> Option<String> {
    let name = dir.file_name()?.to_str()?;
    name.parse::<ml_data::Date>().ok().map(|d| d.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_flatten_to_mlflow_keys() {
        let value = serde_json::json!({
            "model": "random-forest",
            "hyperparameters": { "n_trees": 3, "max_depth": null, "feature_fraction": 0.5 },
            "rows": { "train": 10 },
            "features": { "inputs": ["age", "sex"], "model_inputs": 7 },
            "data_date": null,
        });
        let flat: Vec<(String, String)> = flatten_params(&value)
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect();
        let get = |k: &str| {
            flat.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("model"), Some("random-forest"));
        assert_eq!(get("hyperparameters.n_trees"), Some("3"));
        assert_eq!(get("hyperparameters.feature_fraction"), Some("0.5"));
        assert_eq!(get("hyperparameters.max_depth"), None);
        assert_eq!(get("rows.train"), Some("10"));
        assert_eq!(get("features.inputs"), Some("age,sex"));
        assert_eq!(get("features.model_inputs"), Some("7"));
        assert_eq!(get("data_date"), None);
        assert_eq!(flat.len(), 6);
    }

    #[test]
    fn data_date_only_for_real_calendar_dates() {
        let d = |s: &str| data_date(Path::new(s));
        assert_eq!(
            d("/data/processed/2026-01-05").as_deref(),
            Some("2026-01-05")
        );
        assert_eq!(d("2024-02-29").as_deref(), Some("2024-02-29"));
        assert_eq!(
            d("/data/processed/2026-01-05/").as_deref(),
            Some("2026-01-05")
        );
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-05",
            "processed",
            "2026-01-32",
            "20260105xx",
            "/",
        ] {
            assert_eq!(d(bad), None, "{bad}");
        }
    }

    #[test]
    fn hyperparameters_resolve_with_defaults_and_reject_foreign_flags() {
        let none = HyperparameterArgs::default();
        assert_eq!(
            none.resolve(ModelKind::LogisticRegression).expect("lr"),
            Hyperparameters::LogisticRegression(LogisticParams::default())
        );
        let c = HyperparameterArgs {
            c: Some(4.0),
            ..Default::default()
        };
        assert_eq!(
            c.resolve(ModelKind::LogisticRegression).expect("c"),
            Hyperparameters::LogisticRegression(LogisticParams { alpha: 0.25 })
        );
        let both = HyperparameterArgs {
            alpha: Some(1.0),
            c: Some(1.0),
            ..Default::default()
        };
        assert!(both.resolve(ModelKind::LogisticRegression).is_err());
        let trees = HyperparameterArgs {
            n_trees: Some(3),
            seed: Some(9),
            ..Default::default()
        };
        let msg = trees
            .resolve(ModelKind::LogisticRegression)
            .expect_err("foreign")
            .to_string();
        assert_eq!(
            msg,
            "--n-trees does not apply to --model logistic-regression"
        );
        match trees.resolve(ModelKind::RandomForest).expect("rf") {
            Hyperparameters::RandomForest(p) => {
                assert_eq!((p.n_trees, p.seed), (3, 9));
                assert_eq!(p.max_depth, ForestParams::default().max_depth);
            }
            other => panic!("{other:?}"),
        }
        let alpha = HyperparameterArgs {
            alpha: Some(1.0),
            ..Default::default()
        };
        assert!(alpha.resolve(ModelKind::RandomForest).is_err());
    }
}
