//! The feature schema of the heart-disease table: names, order, kinds and the range of values
//! a reading may take. Every stage validates against this one definition.

/// How a feature is treated by the model's preprocessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Imputed with the training median and standardised.
    Numeric,
    /// Imputed with the training mode and one-hot encoded; values are small integer codes.
    Categorical,
}

/// One feature column: its CSV header name, kind and the inclusive range of valid values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub min: f64,
    pub max: f64,
    /// Whole-number values only (codes and counts); written without a decimal point.
    pub integer: bool,
}

const fn col(name: &'static str, kind: Kind, min: f64, max: f64) -> Column {
    Column {
        name,
        kind,
        min,
        max,
        integer: true,
    }
}

/// A numeric column that may hold fractions.
const fn real(name: &'static str, min: f64, max: f64) -> Column {
    Column {
        integer: false,
        ..col(name, Kind::Numeric, min, max)
    }
}

/// The feature columns, in the order they appear in `data.csv`.
pub const FEATURES: [Column; 13] = [
    col("age", Kind::Numeric, 18.0, 100.0),
    col("sex", Kind::Categorical, 0.0, 1.0),
    col("cp", Kind::Categorical, 0.0, 3.0),
    col("trestbps", Kind::Numeric, 80.0, 220.0),
    col("chol", Kind::Numeric, 100.0, 600.0),
    col("fbs", Kind::Categorical, 0.0, 1.0),
    col("restecg", Kind::Categorical, 0.0, 2.0),
    col("thalach", Kind::Numeric, 60.0, 220.0),
    col("exang", Kind::Categorical, 0.0, 1.0),
    real("oldpeak", 0.0, 7.0),
    col("slope", Kind::Categorical, 0.0, 2.0),
    col("ca", Kind::Categorical, 0.0, 4.0),
    col("thal", Kind::Categorical, 0.0, 3.0),
];

/// Header of the label column in `target.csv` and in the processed files.
pub const TARGET: &str = "target";

/// Header of the optional key column of the raw files (`data.csv`, `target.csv`).
///
/// When present it is the first column; its cells are opaque text, each row's stable key
/// (`ml-generate` writes `YYYY-MM-DD-NNNNNN`), so predictions, inputs and labels join by key
/// rather than by row position. It is never a feature: the readers check it (no empty,
/// padded or repeated id) and hand it back apart from the feature columns, and the processed
/// files (`train_data.csv`, `train.csv`, `val.csv`) do not carry it. A raw file without it
/// (one written before ids existed) is keyed by its row number, 1-based.
pub const ID: &str = "id";

/// The feature names in file order.
pub fn feature_names() -> impl Iterator<Item = &'static str> {
    FEATURES.iter().map(|c| c.name)
}

/// Looks a feature up by name.
pub fn column(name: &str) -> Option<&'static Column> {
    FEATURES.iter().find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_ranges_ordered() {
        for (i, c) in FEATURES.iter().enumerate() {
            assert!(c.min < c.max, "{}", c.name);
            assert!(FEATURES[i + 1..].iter().all(|o| o.name != c.name));
        }
        assert!(column(TARGET).is_none());
        assert!(column(ID).is_none());
    }
}
