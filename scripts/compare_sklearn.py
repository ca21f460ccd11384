#!/usr/bin/env python3
"""Compare our logistic regression with scikit-learn's on the same train/val split.

Dev-only: the pipeline itself has no Python. Trains scikit-learn's LogisticRegression with the
same preprocessing recipe as ml-model (numeric: median imputation + standardisation;
categorical: mode imputation + one-hot, unseen categories ignored) and the same penalty
(C = 1 / alpha), then runs ml-train and ml-validate on the same files and prints both.

    python scripts/compare_sklearn.py --processed-dir data/processed/2026-01-05

Needs scikit-learn and pandas (e.g. `python3 -m venv /tmp/sk && /tmp/sk/bin/pip install
scikit-learn pandas`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

# Must match crates/ml-data/src/schema.rs.
NUMERIC = ["age", "trestbps", "chol", "thalach", "oldpeak"]
CATEGORICAL = ["sex", "cp", "fbs", "restecg", "exang", "slope", "ca", "thal"]
DEFAULT_BIN_DIR = Path("target/x86_64-unknown-linux-gnu/release")


def sklearn_scores(train: pd.DataFrame, val: pd.DataFrame, c: float) -> dict:
    features = NUMERIC + CATEGORICAL
    pre = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                NUMERIC,
            ),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                CATEGORICAL,
            ),
        ]
    )
    model = make_pipeline(pre, LogisticRegression(C=c, max_iter=2000))
    start = time.perf_counter()
    model.fit(train[features], train["target"])
    seconds = time.perf_counter() - start
    proba = model.predict_proba(val[features])[:, 1]
    return {
        "roc_auc": roc_auc_score(val["target"], proba),
        "log_loss": log_loss(val["target"], proba),
        "accuracy": accuracy_score(val["target"], proba > 0.5),
        "fit_seconds": seconds,
    }


def our_scores(processed: Path, bin_dir: Path, c: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        start = time.perf_counter()
        subprocess.run(
            [
                str(bin_dir / "ml-train"),
                "--input-dir",
                str(processed),
                "--output-dir",
                str(model_dir),
                "--c",
                str(c),
                "--quiet",
            ],
            check=True,
        )
        seconds = time.perf_counter() - start
        subprocess.run(
            [
                str(bin_dir / "ml-validate"),
                "--input-dir",
                str(processed),
                "--model-dir",
                str(model_dir),
                "--quiet",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        metrics = json.loads((model_dir / "metrics.json").read_text())
    metrics["fit_seconds"] = seconds
    return metrics


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--processed-dir", type=Path, required=True, help="holds train.csv and val.csv"
    )
    parser.add_argument(
        "--bin-dir",
        type=Path,
        default=DEFAULT_BIN_DIR,
        help="where ml-train and ml-validate are",
    )
    parser.add_argument(
        "--c", type=float, default=1.0, help="inverse L2 penalty for both (alpha = 1/C)"
    )
    args = parser.parse_args()

    train = pd.read_csv(args.processed_dir / "train.csv")
    val = pd.read_csv(args.processed_dir / "val.csv")
    theirs = sklearn_scores(train, val, args.c)
    ours = our_scores(args.processed_dir, args.bin_dir, args.c)

    print(
        f"split: {args.processed_dir} (train {len(train):,} rows, val {len(val):,} rows), C = {args.c}"
    )
    print(f"{'':24}{'roc_auc':>10}{'log_loss':>10}{'accuracy':>10}{'fit s':>9}")
    # ml-train's time includes reading the CSV and writing the model; scikit-learn's is fit only.
    for name, m in [("ml-model (Rust)", ours), ("scikit-learn", theirs)]:
        print(
            f"{name:24}{m['roc_auc']:10.4f}{m['log_loss']:10.4f}{m['accuracy']:10.4f}{m['fit_seconds']:9.2f}"
        )
    print(f"difference in ROC AUC: {ours['roc_auc'] - theirs['roc_auc']:+.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
