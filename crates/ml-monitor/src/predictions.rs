//! A strict reader of `predictions.csv` as `ml-predict` writes it: the header exactly
//! `id,prediction,probability`, then one row per scored input row with a non-empty id (no
//! spaces around it, none given twice), a prediction of 0 or 1 and a finite probability in
//! `[0, 1]`. Problems are `ml_data::DataError`s naming the file, row, line and column, as
//! every other reader of the pipeline reports them.
//!
//! It parses bytes already in memory, so the checksum compared with `provenance.json` is of
//! the very bytes parsed.

use std::collections::HashMap;
use std::path::Path;

use ml_data::io::PREDICTIONS_HEADER;
use ml_data::{CellProblem, DataError};

/// One row of `predictions.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub id: String,
    pub prediction: u8,
    pub probability: f64,
}

/// The rows of `bytes`, the content of `path` (which errors name).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<Prediction>, DataError> {
    let text = std::str::from_utf8(bytes).map_err(|e| DataError::Invalid {
        path: path.to_path_buf(),
        message: format!("not UTF-8 text: {e}"),
    })?;
    let mut records = Records::new(text);
    let cell = |row: usize, column: &str, problem: CellProblem| DataError::Cell {
        path: path.to_path_buf(),
        row,
        column: column.to_string(),
        problem,
    };
    let header = match records.next() {
        None => {
            return Err(DataError::Empty {
                path: path.to_path_buf(),
            })
        }
        Some(Err(problem)) => return Err(cell(0, "id", problem)),
        Some(Ok(header)) => header,
    };
    if header.join(",") != PREDICTIONS_HEADER {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "header must be exactly `{PREDICTIONS_HEADER}`, found `{}`",
                header.join(",")
            ),
        });
    }
    let mut rows = Vec::new();
    let mut first_row_of: HashMap<String, usize> = HashMap::new();
    for (i, record) in records.enumerate() {
        let row = i + 1;
        let fields = record.map_err(|problem| cell(row, "id", problem))?;
        let [id, prediction, probability] =
            <[String; 3]>::try_from(fields).map_err(|fields| DataError::FieldCount {
                path: path.to_path_buf(),
                row,
                expected: 3,
                found: fields.len(),
            })?;
        if id.is_empty() {
            return Err(cell(row, "id", CellProblem::Empty));
        }
        if id.trim() != id {
            return Err(cell(row, "id", CellProblem::PaddedId(id)));
        }
        if let Some(&first_row) = first_row_of.get(&id) {
            return Err(cell(row, "id", CellProblem::DuplicateId { id, first_row }));
        }
        let prediction = match prediction.as_str() {
            "0" => 0,
            "1" => 1,
            _ => return Err(cell(row, "prediction", CellProblem::NotBinary(prediction))),
        };
        let probability =
            parse_probability(&probability).map_err(|problem| cell(row, "probability", problem))?;
        first_row_of.insert(id.clone(), row);
        rows.push(Prediction {
            id,
            prediction,
            probability,
        });
    }
    if rows.is_empty() {
        return Err(DataError::NoRows {
            path: path.to_path_buf(),
        });
    }
    Ok(rows)
}

fn parse_probability(text: &str) -> Result<f64, CellProblem> {
    if text.is_empty() {
        return Err(CellProblem::Empty);
    }
    if text.trim() != text {
        return Err(CellProblem::Padded(text.to_string()));
    }
    let value: f64 = text
        .parse()
        .map_err(|_| CellProblem::NotNumeric(text.to_string()))?;
    if !value.is_finite() {
        return Err(CellProblem::NotFinite(text.to_string()));
    }
    if !(0.0..=1.0).contains(&value) {
        return Err(CellProblem::OutOfRange {
            value,
            min: 0.0,
            max: 1.0,
        });
    }
    Ok(value)
}

/// The records of CSV text (RFC 4180: `"` quotes, `""` inside them, LF or CRLF endings);
/// the final line ending is optional, and an empty last line is no record.
struct Records<'a> {
    rest: &'a str,
}

impl<'a> Records<'a> {
    fn new(text: &'a str) -> Self {
        Self { rest: text }
    }
}

impl Iterator for Records<'_> {
    type Item = Result<Vec<String>, CellProblem>;

    fn next(&mut self) -> Option<Self::Item> {
        let text = self.rest;
        if text.is_empty() {
            return None;
        }
        let bytes = text.as_bytes();
        let mut fields = Vec::new();
        let mut i = 0;
        loop {
            let mut field = String::new();
            if bytes.get(i) == Some(&b'"') {
                i += 1;
                loop {
                    let Some(j) = text[i..].find('"') else {
                        self.rest = "";
                        return Some(Err(CellProblem::UnclosedQuote(head(text))));
                    };
                    field.push_str(&text[i..i + j]);
                    i += j + 1;
                    if bytes.get(i) != Some(&b'"') {
                        break;
                    }
                    field.push('"');
                    i += 1;
                }
                let ends = matches!(bytes.get(i), None | Some(b',') | Some(b'\n'))
                    || text[i..].starts_with("\r\n");
                if !ends {
                    self.rest = "";
                    return Some(Err(CellProblem::TextAfterQuote(head(text))));
                }
            } else {
                let end = text[i..].find([',', '\n']).map_or(text.len(), |j| i + j);
                let value = &text[i..end];
                let value = match bytes.get(end) {
                    Some(b'\n') => value.strip_suffix('\r').unwrap_or(value),
                    _ => value,
                };
                field.push_str(value);
                // At the `,` or `\n` (a `\r` before it is dropped with the value).
                i = end;
            }
            fields.push(field);
            match bytes.get(i) {
                None => {
                    self.rest = "";
                    return Some(Ok(fields));
                }
                Some(b',') => i += 1,
                // "\r\n" after a quoted field, checked above.
                Some(b'\r') => {
                    self.rest = &text[i + 2..];
                    return Some(Ok(fields));
                }
                Some(_) => {
                    self.rest = &text[i + 1..];
                    return Some(Ok(fields));
                }
            }
        }
    }
}

/// The start of a record, for a message.
fn head(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(40)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Prediction>, String> {
        parse(Path::new("p/predictions.csv"), text.as_bytes()).map_err(|e| e.to_string())
    }

    fn row(id: &str, prediction: u8, probability: f64) -> Prediction {
        Prediction {
            id: id.into(),
            prediction,
            probability,
        }
    }

    #[test]
    fn reads_what_ml_predict_writes() {
        let rows = read("id,prediction,probability\n7,1,0.75\n\"a,\"\"b\",0,1e-5\r\nx,0,0\n")
            .expect("valid");
        assert_eq!(
            rows,
            [row("7", 1, 0.75), row("a,\"b", 0, 1e-5), row("x", 0, 0.0)]
        );
        // No final line ending.
        assert_eq!(
            read("id,prediction,probability\n1,0,1").expect("valid"),
            [row("1", 0, 1.0)]
        );
    }

    #[test]
    fn problems_name_file_row_line_and_column() {
        let h = "id,prediction,probability\n";
        let cases = [
            ("", "p/predictions.csv: file is empty"),
            (h, "p/predictions.csv: header only, no data rows"),
            (
                "id,probability,prediction\n1,0,0.5\n",
                "header must be exactly `id,prediction,probability`, found `id,probability,prediction`",
            ),
            ("id,prediction,probability,x\n", "header must be exactly"),
            (
                "id,prediction,probability\n1,0\n",
                "p/predictions.csv: row 1 (line 2): expected 3 fields, found 2",
            ),
            (
                "id,prediction,probability\n1,0,0.1\n2,2,0.5\n",
                "p/predictions.csv: row 2 (line 3), column `prediction`: \"2\" is not a label",
            ),
            (
                "id,prediction,probability\n1,1,1.5\n",
                "row 1 (line 2), column `probability`: 1.5 is outside the valid range [0, 1]",
            ),
            (
                "id,prediction,probability\n1,1,NaN\n",
                "column `probability`: \"NaN\" is not a finite number",
            ),
            (
                "id,prediction,probability\n1,1,high\n",
                "column `probability`: \"high\" is not a number",
            ),
            (
                "id,prediction,probability\n1,1,\n",
                "column `probability`: empty cell",
            ),
            (
                "id,prediction,probability\n1,1, 0.5\n",
                "column `probability`: \" 0.5\" is not a number: it has leading or trailing spaces",
            ),
            (
                "id,prediction,probability\n,1,0.5\n",
                "row 1 (line 2), column `id`: empty cell",
            ),
            (
                "id,prediction,probability\n a,1,0.5\n",
                "column `id`: \" a\" has leading or trailing spaces",
            ),
            (
                "id,prediction,probability\na,1,0.5\nb,0,0.1\na,0,0.2\n",
                "row 3 (line 4), column `id`: \"a\" is already the id of row 1",
            ),
            (
                "id,prediction,probability\n\"a\"b,1,0.5\n",
                "column `id`: \"\\\"a\\\"b,1,0.5\" has text after its closing quote",
            ),
            (
                "id,prediction,probability\n\"a,1,0.5\n",
                "column `id`: \"\\\"a,1,0.5\" opens a quote that is never closed",
            ),
        ];
        for (text, want) in cases {
            let err = read(text).expect_err(text);
            assert!(err.contains(want), "{text:?}: {err}");
        }
        let err =
            parse(Path::new("p"), b"id,prediction,probability\n\xff,1,0.5\n").expect_err("bytes");
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }
}
