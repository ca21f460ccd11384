//! How often would each promotion rule move production on noise? Reads the weekly model and
//! validation directories that `scripts/flip_rates.sh` leaves (two independent generated
//! samples of every Sunday, `ROOT/a/...` and `ROOT/b/...`) and prints a table.
//!
//! - *Same-distribution pairs*: for each Sunday, model `b` (trained on an independent sample
//!   of that day) challenges model `a`, judged on `a`'s validation rows, which neither model
//!   was trained on. Both come from the same data distribution and the same settings, so
//!   neither is better: every promotion is a flip on noise.
//! - *Weekly sequence*: model `a` of every Sunday challenges whatever each rule holds in
//!   production, as the weekly DAG would, on that week's validation rows.
//!
//! The old rule promoted on a ROC AUC gain of at least 0.002 (and above 0); the new rule is
//! `ml_promote::decide` with its defaults (floor 0.75, 95% paired-bootstrap interval of the
//! difference above 0).
//!
//! ```text
//! scripts/flip_rates.sh            # generates, trains and runs this example
//! cargo run --release -p ml-promote --example flip_rates -- ROOT
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ml_model::evaluate::{paired_auc_difference, score, Scored};
use ml_model::{BootstrapConfig, Model};
use ml_promote::{decide, Incumbent, Mode, Outcome, Rule, DEFAULT_MIN_ROC_AUC, VAL_FILE};

/// The rule ml-promote used before: a fixed ROC AUC gain on one evaluation.
const OLD_MIN_GAIN: f64 = 0.002;

struct Week {
    date: String,
    val: ml_data::Labeled,
    a: Model,
    b: Model,
}

fn load_week(root: &Path, date: &str) -> anyhow::Result<Week> {
    let dir = |sample: &str, kind: &str| root.join(sample).join(kind).join(date);
    let val_path = dir("a", "processed").join(VAL_FILE);
    Ok(Week {
        date: date.to_string(),
        val: ml_data::io::read_labeled(&val_path)?,
        a: Model::load_dir(&dir("a", "models"))?,
        b: Model::load_dir(&dir("b", "models"))?,
    })
}

fn old_rule(challenger: f64, production: Option<f64>) -> bool {
    // The old rule also required a strictly positive gain; with a margin above 0 that is
    // implied.
    production.is_none_or(|p| challenger - p >= OLD_MIN_GAIN)
}

fn new_rule(val: &ml_data::Labeled, challenger: &Scored, production: Option<&Scored>) -> bool {
    let rule = Rule {
        min_improvement: 0.0,
        min_roc_auc: DEFAULT_MIN_ROC_AUC,
    };
    let incumbent = production.map(|p| Incumbent {
        experiment_id: None,
        version: "production".into(),
        run_id: String::new(),
        metrics: Some(p.metrics.clone()),
        unusable: None,
    });
    let difference = production.and_then(|p| {
        paired_auc_difference(
            &val.target,
            &challenger.probabilities,
            &p.probabilities,
            &BootstrapConfig::default(),
        )
        .ok()
        .flatten()
    });
    let (outcome, _) = decide(
        Mode::Auto,
        challenger.metrics.roc_auc,
        incumbent.as_ref(),
        difference.as_ref(),
        &rule,
    );
    outcome == Outcome::Promoted
}

fn auc(s: &Scored) -> f64 {
    s.metrics.roc_auc.unwrap_or(f64::NAN)
}

fn main() -> anyhow::Result<()> {
    let root: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: flip_rates ROOT (see scripts/flip_rates.sh)")?;
    let mut dates: Vec<String> = std::fs::read_dir(root.join("a").join("models"))
        .with_context(|| format!("{}: no a/models directory", root.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    dates.sort();
    if dates.len() < 2 {
        bail!("{}: needs at least two weeks of models", root.display());
    }
    let weeks = dates
        .iter()
        .map(|d| load_week(&root, d))
        .collect::<anyhow::Result<Vec<_>>>()?;

    // Same-distribution pairs: b challenges a on a's validation rows.
    let (mut pairs_old, mut pairs_new) = (0, 0);
    eprintln!("same-distribution pairs (b challenges a):");
    for w in &weeks {
        let a = score(&w.a, &w.val)?;
        let b = score(&w.b, &w.val)?;
        let old = old_rule(auc(&b), Some(auc(&a)));
        let new = new_rule(&w.val, &b, Some(&a));
        pairs_old += usize::from(old);
        pairs_new += usize::from(new);
        eprintln!(
            "  {}  a {:.4}  b {:.4}  gain {:+.4}  old {}  new {}",
            w.date,
            auc(&a),
            auc(&b),
            auc(&b) - auc(&a),
            if old { "flip" } else { "keep" },
            if new { "flip" } else { "keep" }
        );
    }

    // Weekly sequence: each rule keeps its own production model.
    let mut production_old: Option<usize> = None;
    let mut production_new: Option<usize> = None;
    let (mut moves_old, mut moves_new) = (0, 0);
    eprintln!("weekly sequence (model a of each Sunday challenges production):");
    for (i, w) in weeks.iter().enumerate() {
        let challenger = score(&w.a, &w.val)?;
        let scored_old = production_old
            .map(|p| score(&weeks[p].a, &w.val))
            .transpose()?;
        let scored_new = production_new
            .map(|p| score(&weeks[p].a, &w.val))
            .transpose()?;
        let old = old_rule(auc(&challenger), scored_old.as_ref().map(auc));
        let new = new_rule(&w.val, &challenger, scored_new.as_ref());
        if old {
            moves_old += usize::from(production_old.is_some());
            production_old = Some(i);
        }
        if new {
            moves_new += usize::from(production_new.is_some());
            production_new = Some(i);
        }
        eprintln!(
            "  {}  challenger {:.4}  old {}  new {}",
            w.date,
            auc(&challenger),
            if old { "promote" } else { "keep" },
            if new { "promote" } else { "keep" }
        );
    }

    let n = weeks.len();
    let share = |k: usize, of: usize| format!("{k} of {of} ({:.0}%)", 100.0 * k as f64 / of as f64);
    println!(
        "| {} Sundays, {} to {} | old rule (gain >= {OLD_MIN_GAIN}) | new rule (floor {DEFAULT_MIN_ROC_AUC}, 95% paired bootstrap) |",
        n,
        dates[0],
        dates[n - 1]
    );
    println!("|---|---|---|");
    println!(
        "| promotions between two models of the same distribution (all noise) | {} | {} |",
        share(pairs_old, n),
        share(pairs_new, n)
    );
    println!(
        "| production changes in the weekly sequence | {} | {} |",
        share(moves_old, n - 1),
        share(moves_new, n - 1)
    );
    Ok(())
}
