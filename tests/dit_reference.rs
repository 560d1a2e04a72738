//! The CPU transformer against diffusers 0.42.1 on the fixtures of tools/make_dit_fixtures.py.
//!
//! Each fixture holds the reference output computed in f32 (`sample`) and in f64 (`sample_f64`).
//! We must match the f32 reference within TRANSFORMER_F32. Where the f32 reference is itself
//! further than that from the f64 one (it rounds below f32 precision: diffusers adds the −10000
//! caption-mask bias to the scores in f32, so a fully masked caption loses ~1e-3 of each score),
//! we must match the f64 reference within TRANSFORMER_F32 and the f32 one within
//! REFERENCE_LOW_PRECISION.

mod common;

use std::path::Path;

use sana::backend::cpu::Cpu;
use sana::engine::dit::{DitInputFile, HostTensor};
use sana::io::ModelFolder;
use sana::testing::{compare, tolerance};

fn run_fixture(model: &str, case: &str) {
    let dir = common::fixtures().join("dit");
    let path = dir.join(format!("{model}.{case}.safetensors"));
    common::check_fixture_provenance(&path);
    let files = common::open(&path);
    let input = DitInputFile::from_files(&files).unwrap();
    let (shape, ours) = common::dit_forward(&Cpu, &ModelFolder::new(&dir.join(model)).unwrap(), &input);
    let ref32 = HostTensor::read(&files, "sample").unwrap().unwrap();
    let ref64 = HostTensor::read(&files, "sample_f64").unwrap().unwrap();
    assert_eq!(shape, ref32.shape);
    assert_reference_match(&format!("{model}.{case}"), &ours, &ref32.data, &ref64.data);
}

fn assert_reference_match(name: &str, ours: &[f32], ref32: &[f32], ref64: &[f32]) {
    let vs32 = compare(ours, ref32);
    let vs64 = compare(ours, ref64);
    let reference_own_error = compare(ref32, ref64).rel_l2;
    eprintln!("{name}: vs f32 reference {vs32}\n{name}: vs f64 reference rel L2 {:.3e}; f32 reference vs f64 {reference_own_error:.3e}", vs64.rel_l2);
    assert_eq!(vs32.non_finite, 0, "{name}: non-finite outputs");
    if reference_own_error <= tolerance::TRANSFORMER_F32 {
        assert!(vs32.rel_l2 <= tolerance::TRANSFORMER_F32, "{name}: {vs32}");
    } else {
        assert!(vs64.rel_l2 <= tolerance::TRANSFORMER_F32, "{name} vs f64 reference: {vs64}");
        assert!(vs32.rel_l2 <= tolerance::REFERENCE_LOW_PRECISION, "{name}: {vs32}");
    }
}

macro_rules! fixture_tests {
    ($($test:ident: $model:literal, $case:literal;)*) => {
        $(#[test] fn $test() { run_fixture($model, $case); })*

        /// Every fixture on disk is covered by a test above (a new fixture without a test fails).
        #[test]
        fn every_fixture_has_a_test() {
            let covered = [$(format!("{}.{}.safetensors", $model, $case)),*];
            let dir = common::fixtures().join("dit");
            let mut on_disk: Vec<String> = std::fs::read_dir(&dir).unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".safetensors"))
                .collect();
            on_disk.sort();
            assert!(!on_disk.is_empty(), "no fixtures in {}: run python3 tools/make_dit_fixtures.py", dir.display());
            for f in &on_disk {
                assert!(covered.contains(f), "fixture {f} has no test in tests/dit_reference.rs");
            }
        }
    };
}

fixture_tests! {
    tiny_480p_single: "tiny-480p", "single";
    tiny_480p_batch2_masks_and_timesteps: "tiny-480p", "batch2";
    tiny_480p_per_token_timesteps: "tiny-480p", "per-token";
    tiny_480p_one_latent_frame: "tiny-480p", "one-frame";
    tiny_720p_batch2_masks_and_timesteps: "tiny-720p", "batch2";
    tiny_720p_per_token_timesteps: "tiny-720p", "per-token";
    tiny_720p_fully_masked_caption: "tiny-720p", "all-masked";
}

/// The CLI path: `sana run dit` writes `sample` that matches the reference.
#[test]
fn cli_run_dit_matches_reference() {
    let dir = common::fixtures().join("dit");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.safetensors");
    let input = dir.join("tiny-720p.batch2.safetensors");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_sana"))
        .args(["run", "dit", "--model"])
        .arg(dir.join("tiny-720p"))
        .arg("--inputs")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let ours = HostTensor::read(&common::open(&out), "sample").unwrap().unwrap();
    let files = common::open(&input);
    let ref32 = HostTensor::read(&files, "sample").unwrap().unwrap();
    let ref64 = HostTensor::read(&files, "sample_f64").unwrap().unwrap();
    assert_eq!(ours.shape, ref32.shape);
    assert_reference_match("cli tiny-720p.batch2", &ours.data, &ref32.data, &ref64.data);
    assert!(!Path::new(&out.with_extension("safetensors.partial")).exists());
}
