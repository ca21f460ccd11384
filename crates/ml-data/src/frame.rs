//! Column-major in-memory table. Missing cells are `f64::NAN`: readers reject NaN or infinite
//! text in the input, so inside the pipeline NaN always means "the cell was empty".

/// Feature columns in schema order (see [`crate::schema::FEATURES`]), each of the same length.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    pub names: Vec<String>,
    pub columns: Vec<Vec<f64>>,
}

impl Frame {
    pub fn n_rows(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }

    pub fn n_cols(&self) -> usize {
        self.columns.len()
    }

    /// The value at `row` of column `col`; NaN when the cell was empty.
    pub fn get(&self, row: usize, col: usize) -> f64 {
        self.columns[col][row]
    }

    /// Copies the rows at `indices` (in that order) into a new frame.
    pub fn take(&self, indices: &[usize]) -> Frame {
        Frame {
            names: self.names.clone(),
            columns: self
                .columns
                .iter()
                .map(|c| indices.iter().map(|&i| c[i]).collect())
                .collect(),
        }
    }
}

/// Features with their 0/1 labels, row for row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labeled {
    pub features: Frame,
    pub target: Vec<u8>,
}

impl Labeled {
    pub fn n_rows(&self) -> usize {
        self.target.len()
    }

    pub fn take(&self, indices: &[usize]) -> Labeled {
        Labeled {
            features: self.features.take(indices),
            target: indices.iter().map(|&i| self.target[i]).collect(),
        }
    }
}
