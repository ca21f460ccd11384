//! Golden model files: files written by an earlier build must keep loading and keep giving
//! exactly the probabilities they gave then, whatever changes in the code or its
//! dependencies (bincode, rand, the standard library). See `tests/golden/README.md`.

use std::path::{Path, PathBuf};

use ml_model::file::{checksum, MAGIC};
use ml_model::testing::labeled;
use ml_model::{ForestParams, Hyperparameters, Model, FORMAT_VERSION};

/// Set to 1 to rewrite the golden files from the current code (see the README).
const REGENERATE: &str = "ML_REGENERATE_GOLDEN";

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The golden models: file stem and what was trained on `labeled(300, 5)`.
fn cases() -> [(&'static str, Hyperparameters); 2] {
    [
        (
            "v2-logistic-regression",
            Hyperparameters::LogisticRegression(Default::default()),
        ),
        (
            "v2-random-forest",
            Hyperparameters::RandomForest(ForestParams {
                n_trees: 5,
                max_depth: Some(4),
                ..Default::default()
            }),
        ),
    ]
}

fn train() -> ml_data::Labeled {
    labeled(300, 5)
}

/// The fixed rows every golden model scores.
fn input() -> ml_data::Frame {
    labeled(20, 99).features
}

fn regenerating() -> bool {
    std::env::var(REGENERATE).is_ok_and(|v| v == "1")
}

/// One line per row: the probability's bits in hex (what is compared), then its decimal form
/// (for people).
fn format_probabilities(p: &[f64]) -> String {
    let mut out = String::from("# bits of P(class 1) per input row, then the value\n");
    for v in p {
        out.push_str(&format!("{:#018x} {v:?}\n", v.to_bits()));
    }
    out
}

fn parse_probabilities(text: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let bits = l.split_whitespace().next().expect("a field");
            let bits = bits.strip_prefix("0x").expect("hex bits");
            f64::from_bits(u64::from_str_radix(bits, 16).expect("hex bits"))
        })
        .collect()
}

fn regenerate(name: &str, hp: &Hyperparameters) {
    let dir = golden_dir();
    let model = Model::fit(&train(), hp).expect("fit");
    let path = dir.join(format!("{name}.bin"));
    model.save(&path).expect("save");
    let p = Model::load(&path)
        .expect("load")
        .predict_proba(&input())
        .expect("proba");
    std::fs::write(
        dir.join(format!("{name}.proba.txt")),
        format_probabilities(&p),
    )
    .expect("write");
}

#[test]
fn golden_model_files_load_and_predict_bit_for_bit() {
    for (name, hp) in cases() {
        if regenerating() {
            regenerate(name, &hp);
        }
        let path = golden_dir().join(format!("{name}.bin"));
        let bytes = std::fs::read(&path).expect("golden model file");
        assert_eq!(bytes[8..12], FORMAT_VERSION.to_le_bytes(), "{name}");
        let model = Model::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(model.kind(), hp.kind());
        let got = model.predict_proba(&input()).expect("proba");
        let text = std::fs::read_to_string(golden_dir().join(format!("{name}.proba.txt")))
            .expect("golden probabilities");
        let want = parse_probabilities(&text);
        assert_eq!(got.len(), want.len(), "{name}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{name}, row {i}: {g:?}, golden {w:?}"
            );
        }
        // Loading and saving again reproduces the file byte for byte.
        assert_eq!(model.to_bytes().expect("bytes"), bytes, "{name}");
    }
}

/// Forest training uses only integer counts and IEEE arithmetic (no libm), so it must give
/// the golden forest on every platform and after dependency upgrades. If this fails after a
/// deliberate change to training, regenerate; if not, something changed the random streams
/// (rand, rand_chacha) or the algorithm by accident.
#[test]
fn training_the_golden_forest_again_gives_the_same_file() {
    let (name, hp) = &cases()[1];
    let golden = std::fs::read(golden_dir().join(format!("{name}.bin"))).expect("golden");
    let model = Model::fit(&train(), hp).expect("fit");
    assert!(model.to_bytes().expect("bytes") == golden, "{name} differs");
}

#[test]
fn a_format_version_1_file_is_refused_by_name() {
    let body = b"a smartcore forest of format version 1";
    let mut file = MAGIC.to_vec();
    file.extend_from_slice(&1u32.to_le_bytes());
    file.extend_from_slice(&(body.len() as u64).to_le_bytes());
    file.extend_from_slice(&checksum(body).to_le_bytes());
    file.extend_from_slice(body);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("model.bin");
    std::fs::write(&path, &file).expect("write");
    let msg = Model::load(&path).expect_err("version 1").to_string();
    assert_eq!(
        msg,
        format!(
            "{}: model file format version 1 is not supported by this build (supported: 2); \
             retrain the model or use a matching release",
            path.display()
        )
    );
}
