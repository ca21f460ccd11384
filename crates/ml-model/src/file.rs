//! The model file: a versioned envelope around a bincode body.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "MLMODEL\0"
//!      8     4  format version, u32 little-endian
//!     12     8  body length in bytes, u64 little-endian
//!     20     8  FNV-1a 64 checksum of the body, u64 little-endian
//!     28     n  body: bincode 2 (serde, standard config) of `Body`
//! ```
//!
//! The body names the model kind as text and records the feature schema (names and kinds)
//! before the fitted pipeline and the classifier, whose own bytes are decoded by kind. So a
//! reader can tell "not a model file", "truncated", "corrupted", "another format version",
//! "unknown model kind" and "trained on another schema" apart, each as a clear error.
//!
//! Format version 2 stores a random forest as [`StoredForest`]: the number of model inputs
//! and, per tree, its nodes as flat arrays (split input, threshold, left and right child, and
//! the weighted class-0 and class-1 training rows that reached the node; a leaf has both
//! children 0). Loading checks that structure (children in range and after their parent, one
//! parent per node, inputs in range, finite thresholds, leaves with rows) before anything is
//! scored. Version 1 held smartcore's own tree structs; it is no longer read.
//!
//! bincode 2 encodes only the project's own structs here (no library type reaches the file),
//! so a dependency upgrade cannot change the layout unnoticed; the golden files under
//! `tests/golden/` check that. The encoding is not self-describing, which is why the envelope
//! carries the format version and a checksum in front of it. bincode 3.x is an empty
//! tombstone release, so 2.x is the last working line.

use std::path::Path;

use ml_data::schema::{Kind, FEATURES};
use serde::{Deserialize, Serialize};

use crate::forest::Forest;
use crate::linear::LinearModel;
use crate::model::{Classifier, Model, ModelKind};
use crate::preprocess::Preprocessor;
use crate::tree::Tree;
use crate::ModelError;

/// The model's file name inside a model directory.
pub const MODEL_FILE: &str = "model.bin";
pub const MAGIC: [u8; 8] = *b"MLMODEL\0";
/// The version this build writes. Bump when the body layout changes.
pub const FORMAT_VERSION: u32 = 2;
/// The versions this build reads.
pub const SUPPORTED_FORMAT_VERSIONS: &[u32] = &[FORMAT_VERSION];
const HEADER_LEN: usize = 28;
/// Decoding never allocates more than this, whatever a corrupted length field says.
const DECODE_LIMIT: usize = 1 << 30;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredFeature {
    name: String,
    categorical: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Body {
    kind: String,
    features: Vec<StoredFeature>,
    preprocessor: Preprocessor,
    classifier: Vec<u8>,
}

/// A random forest in the file: only the project's own types, see the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredForest {
    pub n_inputs: u32,
    pub trees: Vec<StoredTree>,
}

/// One tree's nodes, node 0 the root; all arrays have one entry per node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTree {
    pub feature: Vec<u32>,
    pub threshold: Vec<f64>,
    pub left: Vec<u32>,
    pub right: Vec<u32>,
    pub count0: Vec<u32>,
    pub count1: Vec<u32>,
}

impl StoredForest {
    fn of(forest: &Forest) -> Self {
        Self {
            // Forest::fit refuses more than u32::MAX inputs.
            n_inputs: forest.n_inputs() as u32,
            trees: forest
                .trees()
                .iter()
                .map(|t| StoredTree {
                    feature: t.feature.clone(),
                    threshold: t.threshold.clone(),
                    left: t.left.clone(),
                    right: t.right.clone(),
                    count0: t.count0.clone(),
                    count1: t.count1.clone(),
                })
                .collect(),
        }
    }

    /// The forest, if its structure is sound and it scores `n_inputs` model inputs.
    fn into_forest(self, n_inputs: usize) -> Result<Forest, String> {
        if self.n_inputs as usize != n_inputs {
            return Err(format!(
                "the forest scores {} model inputs, the feature pipeline makes {n_inputs}",
                self.n_inputs
            ));
        }
        let trees = self
            .trees
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                Tree::from_parts(
                    t.feature,
                    t.threshold,
                    t.left,
                    t.right,
                    t.count0,
                    t.count1,
                    n_inputs,
                )
                .map_err(|e| format!("forest tree {i}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Forest::from_trees(n_inputs, trees)
    }
}

/// FNV-1a, 64 bit: enough to notice flipped or lost bytes (not an integrity seal).
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn schema_features() -> Vec<StoredFeature> {
    FEATURES
        .iter()
        .map(|c| StoredFeature {
            name: c.name.to_string(),
            categorical: c.kind == Kind::Categorical,
        })
        .collect()
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ModelError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| ModelError::Encode(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], path: &Path) -> Result<T, ModelError> {
    let corrupt = |detail: String| ModelError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let (value, used) =
        bincode::serde::decode_from_slice::<T, _>(bytes, config().with_limit::<DECODE_LIMIT>())
            .map_err(|e| corrupt(e.to_string()))?;
    if used != bytes.len() {
        return Err(corrupt(format!(
            "{} unexpected trailing bytes",
            bytes.len() - used
        )));
    }
    Ok(value)
}

/// Wraps a body in the envelope.
fn envelope(version: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&checksum(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn le_u32(bytes: &[u8]) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(b)
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(b)
}

impl Model {
    /// The complete model file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        let classifier = match &self.classifier {
            Classifier::Linear(m) => encode(m)?,
            Classifier::Forest(f) => encode(&StoredForest::of(f))?,
        };
        let body = Body {
            kind: self.kind().as_str().to_string(),
            features: schema_features(),
            preprocessor: self.preprocessor.clone(),
            classifier,
        };
        Ok(envelope(FORMAT_VERSION, &encode(&body)?))
    }

    /// Reads a model file's bytes; `path` only names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, ModelError> {
        let path_buf = || path.to_path_buf();
        let magic_len = bytes.len().min(MAGIC.len());
        if bytes[..magic_len] != MAGIC[..magic_len] {
            return Err(ModelError::NotAModel { path: path_buf() });
        }
        let truncated = |expected: usize| ModelError::Truncated {
            path: path_buf(),
            expected,
            found: bytes.len(),
        };
        if bytes.len() < 12 {
            return Err(truncated(HEADER_LEN));
        }
        let version = le_u32(&bytes[8..]);
        if !SUPPORTED_FORMAT_VERSIONS.contains(&version) {
            return Err(ModelError::FormatVersion {
                path: path_buf(),
                found: version,
                supported: SUPPORTED_FORMAT_VERSIONS,
            });
        }
        if bytes.len() < HEADER_LEN {
            return Err(truncated(HEADER_LEN));
        }
        let body_len = le_u64(&bytes[12..]);
        let expected = usize::try_from(body_len)
            .ok()
            .and_then(|n| n.checked_add(HEADER_LEN))
            .ok_or_else(|| ModelError::Corrupt {
                path: path_buf(),
                detail: format!("impossible body length {body_len}"),
            })?;
        if bytes.len() < expected {
            return Err(truncated(expected));
        }
        if bytes.len() > expected {
            return Err(ModelError::Corrupt {
                path: path_buf(),
                detail: format!(
                    "{} bytes after the end of the model",
                    bytes.len() - expected
                ),
            });
        }
        let body = &bytes[HEADER_LEN..];
        if checksum(body) != le_u64(&bytes[20..]) {
            return Err(ModelError::Corrupt {
                path: path_buf(),
                detail: "checksum mismatch".into(),
            });
        }
        let body: Body = decode(body, path)?;
        let kind = ModelKind::from_name(&body.kind).ok_or_else(|| ModelError::UnknownKind {
            path: path_buf(),
            kind: body.kind.clone(),
        })?;
        if body.features != schema_features() {
            let names: Vec<&str> = body.features.iter().map(|f| f.name.as_str()).collect();
            return Err(ModelError::SchemaMismatch {
                path: path_buf(),
                detail: format!("model features: {}", names.join(",")),
            });
        }
        let input_names: Vec<&str> = body
            .preprocessor
            .input_names()
            .iter()
            .map(String::as_str)
            .collect();
        let schema_names: Vec<&str> = FEATURES.iter().map(|c| c.name).collect();
        if input_names != schema_names {
            return Err(ModelError::Corrupt {
                path: path_buf(),
                detail: "feature pipeline does not match the stored schema".into(),
            });
        }
        let classifier = match kind {
            ModelKind::LogisticRegression => {
                let m: LinearModel = decode(&body.classifier, path)?;
                if m.weights.len() != body.preprocessor.n_outputs() {
                    return Err(ModelError::Corrupt {
                        path: path_buf(),
                        detail: "coefficients do not match the feature pipeline".into(),
                    });
                }
                Classifier::Linear(m)
            }
            ModelKind::RandomForest => {
                let stored: StoredForest = decode(&body.classifier, path)?;
                let forest =
                    stored
                        .into_forest(body.preprocessor.n_outputs())
                        .map_err(|detail| ModelError::Corrupt {
                            path: path_buf(),
                            detail,
                        })?;
                Classifier::Forest(forest)
            }
        };
        Ok(Model {
            preprocessor: body.preprocessor,
            classifier,
        })
    }

    /// Writes the model file atomically (a temporary file renamed into place).
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let bytes = self.to_bytes()?;
        ml_data::atomic::write_atomic(path, &bytes)?;
        Ok(())
    }

    /// Reads and checks `MODEL_DIR/model.bin`.
    pub fn load_dir(dir: &Path) -> Result<Self, ModelError> {
        Self::load(&dir.join(MODEL_FILE))
    }

    /// Reads and checks a model file.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        Self::from_bytes(&Self::read_file(path)?, path)
    }

    /// The bytes of a model file, unchecked, with the errors [`Model::load`] gives for a
    /// missing directory or file. For a caller that needs the bytes too (a checksum of
    /// exactly what [`Model::from_bytes`] decodes).
    pub fn read_file(path: &Path) -> Result<Vec<u8>, ModelError> {
        std::fs::read(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                match path.parent() {
                    Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
                        ModelError::MissingDir {
                            path: dir.to_path_buf(),
                        }
                    }
                    _ => ModelError::Missing {
                        path: path.to_path_buf(),
                    },
                }
            } else {
                ModelError::Read {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::ForestParams;
    use crate::model::Hyperparameters;
    use crate::testing::labeled;

    fn lr() -> Model {
        Model::fit(
            &labeled(500, 11),
            &Hyperparameters::LogisticRegression(Default::default()),
        )
        .expect("fit")
    }

    fn p() -> &'static Path {
        Path::new("m/model.bin")
    }

    #[test]
    fn round_trip_gives_identical_predictions_for_both_kinds() {
        let data = labeled(400, 12);
        let forest = Model::fit(
            &labeled(500, 13),
            &Hyperparameters::RandomForest(ForestParams {
                n_trees: 7,
                ..Default::default()
            }),
        )
        .expect("fit");
        let dir = tempfile::tempdir().expect("tempdir");
        for model in [lr(), forest] {
            let path = dir.path().join(format!("{}.bin", model.kind()));
            model.save(&path).expect("save");
            let loaded = Model::load(&path).expect("load");
            assert_eq!(loaded.kind(), model.kind());
            assert_eq!(
                loaded.predict_proba(&data.features).expect("loaded"),
                model.predict_proba(&data.features).expect("original")
            );
            // Saving is deterministic too.
            assert_eq!(
                loaded.to_bytes().expect("bytes"),
                std::fs::read(&path).expect("read")
            );
        }
    }

    #[test]
    fn every_damage_is_a_clear_error() {
        let bytes = lr().to_bytes().expect("bytes");
        let err = |b: &[u8]| {
            Model::from_bytes(b, p())
                .expect_err("must fail")
                .to_string()
        };

        assert!(err(b"prediction,probability\n").contains("not a model file"));
        assert!(err(&[]).contains("truncated"), "{}", err(&[]));
        assert!(err(&bytes[..5]).contains("truncated"));
        assert!(err(&bytes[..20]).contains("truncated"));
        let cut = err(&bytes[..bytes.len() - 3]);
        assert!(
            cut.contains("m/model.bin") && cut.contains("truncated"),
            "{cut}"
        );

        let mut flipped = bytes.clone();
        let mid = HEADER_LEN + (bytes.len() - HEADER_LEN) / 2;
        flipped[mid] ^= 0x55;
        assert!(err(&flipped).contains("checksum"), "{}", err(&flipped));

        let mut extra = bytes.clone();
        extra.push(0);
        assert!(err(&extra).contains("corrupt"));

        for other in [1u32, 3] {
            let mut b = bytes.clone();
            b[8..12].copy_from_slice(&other.to_le_bytes());
            assert_eq!(
                err(&b),
                format!(
                    "m/model.bin: model file format version {other} is not supported by this \
                     build (supported: 2); retrain the model or use a matching release"
                )
            );
        }
    }

    fn forest() -> Model {
        Model::fit(
            &labeled(400, 14),
            &Hyperparameters::RandomForest(ForestParams {
                n_trees: 3,
                max_depth: Some(3),
                ..Default::default()
            }),
        )
        .expect("fit")
    }

    /// The model file of `model` with its stored forest changed by `damage`.
    fn damaged(model: &Model, damage: impl FnOnce(&mut StoredForest)) -> Vec<u8> {
        let Classifier::Forest(f) = &model.classifier else {
            panic!("not a forest")
        };
        let mut stored = StoredForest::of(f);
        damage(&mut stored);
        let body = Body {
            kind: model.kind().as_str().into(),
            features: schema_features(),
            preprocessor: model.preprocessor.clone(),
            classifier: encode(&stored).expect("enc"),
        };
        envelope(FORMAT_VERSION, &encode(&body).expect("enc"))
    }

    #[test]
    fn a_damaged_forest_structure_is_corrupt_and_says_where() {
        let model = forest();
        let n_inputs = model.preprocessor.n_outputs();
        // Undamaged, the same bytes load.
        let intact = damaged(&model, |_| {});
        assert_eq!(intact, model.to_bytes().expect("bytes"));
        Model::from_bytes(&intact, p()).expect("intact loads");
        type Damage = Box<dyn FnOnce(&mut StoredForest)>;
        let cases: Vec<(Damage, String)> = vec![
            (
                Box::new(|f| f.trees[1].left[0] = 0),
                "forest tree 1: node 0 has child 0".into(),
            ),
            (
                Box::new(|f| f.trees[0].right[0] = 1),
                "node 1 has two parents".into(),
            ),
            (
                Box::new(|f| f.trees[2].left[0] = 10_000),
                "forest tree 2: node 0 has child 10000".into(),
            ),
            (
                Box::new(move |f| f.trees[0].feature[0] = n_inputs as u32),
                format!("splits on input {n_inputs}, the model has {n_inputs}"),
            ),
            (
                Box::new(|f| f.trees[0].threshold[0] = f64::NAN),
                "threshold NaN".into(),
            ),
            (
                Box::new(|f| {
                    let t = &mut f.trees[0];
                    let leaf = t.left.iter().rposition(|&l| l == 0).expect("leaf");
                    (t.count0[leaf], t.count1[leaf]) = (0, 0);
                }),
                "received no training rows".into(),
            ),
            (
                Box::new(|f| f.trees[0].count1.pop().map_or((), drop)),
                "different lengths".into(),
            ),
            (
                Box::new(|f| f.trees.clear()),
                "the forest has no trees".into(),
            ),
            (
                Box::new(|f| f.n_inputs += 1),
                format!("the feature pipeline makes {n_inputs}"),
            ),
        ];
        for (damage, want) in cases {
            let msg = Model::from_bytes(&damaged(&model, damage), p())
                .expect_err(&want)
                .to_string();
            assert!(
                msg.starts_with("m/model.bin: model file is corrupt: ") && msg.contains(&want),
                "{msg} (wanted {want})"
            );
        }
    }

    #[test]
    fn unknown_kind_and_other_schema_are_named() {
        let model = lr();
        let body = |kind: &str, features: Vec<StoredFeature>| Body {
            kind: kind.into(),
            features,
            preprocessor: model.preprocessor.clone(),
            classifier: encode(model.linear().expect("linear")).expect("enc"),
        };
        let file = |b: &Body| envelope(FORMAT_VERSION, &encode(b).expect("enc"));

        let msg = Model::from_bytes(&file(&body("svm", schema_features())), p())
            .expect_err("kind")
            .to_string();
        assert!(msg.contains("unknown model kind `svm`"), "{msg}");

        let mut features = schema_features();
        features[0].name = "years".into();
        let msg = Model::from_bytes(&file(&body("logistic-regression", features)), p())
            .expect_err("schema")
            .to_string();
        assert!(msg.contains("schema") && msg.contains("years"), "{msg}");

        // A well-formed body whose classifier bytes are garbage.
        let mut b = body("random-forest", schema_features());
        b.classifier = vec![1, 2, 3];
        let msg = Model::from_bytes(&file(&b), p())
            .expect_err("garbage")
            .to_string();
        assert!(msg.contains("corrupt"), "{msg}");
    }

    #[test]
    fn missing_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.bin");
        let msg = Model::load(&path).expect_err("missing").to_string();
        assert!(
            msg.contains("model.bin") && msg.contains("no such"),
            "{msg}"
        );
        let msg = Model::load_dir(&dir.path().join("nope"))
            .expect_err("missing dir")
            .to_string();
        assert!(msg.ends_with("nope: no such model directory"), "{msg}");
    }

    #[test]
    fn checksum_known_values() {
        // FNV-1a 64 reference values.
        assert_eq!(checksum(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(checksum(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
