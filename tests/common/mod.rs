//! Shared by the integration tests: fixture paths and the fixture staleness check.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::PathBuf;

use sana::io::TensorFiles;

/// The diffusers version every reference fixture must come from (tools/requirements.txt).
pub const DIFFUSERS_VERSION: &str = "0.42.1";

/// tests/fixtures of this checkout; `SANA_FIXTURES` overrides it, and a test binary copied to
/// another machine (the GPU runs) falls back to `tests/fixtures` under the working directory.
pub fn fixtures() -> PathBuf {
    if let Ok(dir) = std::env::var("SANA_FIXTURES") {
        return PathBuf::from(dir);
    }
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures");
    if built.is_dir() {
        built
    } else {
        PathBuf::from("tests").join("fixtures")
    }
}

/// Fails with the regeneration command when a fixture was made by another reference version.
pub fn check_fixture_provenance(path: &std::path::Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).expect("fixture header");
    let meta = meta.metadata().clone().unwrap_or_default();
    let version = meta.get("diffusers").map(String::as_str).unwrap_or("unknown");
    let script = meta.get("script").map(String::as_str).unwrap_or("python3 tools/make_dit_fixtures.py");
    assert_eq!(
        version,
        DIFFUSERS_VERSION,
        "{} was made with diffusers {version}, the pinned reference is {DIFFUSERS_VERSION}: regenerate with `{script}`",
        path.display()
    );
}

pub fn open(path: &std::path::Path) -> TensorFiles {
    TensorFiles::open(path).unwrap_or_else(|e| panic!("{e}"))
}

/// The string metadata of a safetensors fixture.
pub fn metadata(path: &std::path::Path) -> std::collections::HashMap<String, String> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).expect("fixture header");
    meta.metadata().clone().unwrap_or_default()
}

/// One transformer forward of a DiT fixture's inputs on `be`: the output's shape and values.
pub fn dit_forward<B: sana::backend::Backend>(
    be: &B,
    folder: &sana::io::ModelFolder,
    input: &sana::engine::dit::DitInputFile,
) -> (Vec<usize>, Vec<f32>) {
    use sana::backend::Tensor;
    use sana::engine::dit::{DitInput, SanaVideoTransformer};
    let model = SanaVideoTransformer::from_folder(be, folder).unwrap();
    let latent = Tensor::from_host(be, &input.hidden_states.shape, &input.hidden_states.data).unwrap();
    let caption = Tensor::from_host(be, &input.encoder_hidden_states.shape, &input.encoder_hidden_states.data).unwrap();
    let out = model
        .forward(
            be,
            &DitInput {
                latent: &latent,
                caption: &caption,
                timesteps: &input.timesteps,
                caption_mask: input.encoder_attention_mask.as_ref().map(|m| m.data.as_slice()),
            },
        )
        .unwrap();
    (out.shape().to_vec(), out.to_host(be).unwrap())
}
