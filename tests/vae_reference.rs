//! The CPU autoencoders against diffusers 0.42.1 on the fixtures of tools/make_vae_fixtures.py:
//! encode (the posterior's mean and log-variance) and decode (before and after the clamp).

mod common;

use sana::backend::cpu::Cpu;
use sana::engine::dit::HostTensor;
use sana::engine::progress::Silent;
use sana::engine::vae::WanVae;
use sana::io::ModelFolder;
use sana::testing::{compare, tolerance};

fn fixture(name: &str) -> (sana::io::TensorFiles, std::path::PathBuf) {
    let path = common::fixtures().join("vae").join(format!("{name}.safetensors"));
    common::check_fixture_provenance(&path);
    (common::open(&path), path)
}

fn tensor(files: &sana::io::TensorFiles, name: &str) -> HostTensor {
    HostTensor::read(files, name).unwrap().unwrap_or_else(|| panic!("fixture has no `{name}`"))
}

fn shape5(t: &HostTensor) -> [usize; 5] {
    t.shape.clone().try_into().expect("a (B, C, T, H, W) tensor")
}

fn wan(model: &str) -> WanVae<Cpu> {
    let folder = ModelFolder::new(&common::fixtures().join("vae").join(model)).unwrap();
    WanVae::from_folder(&Cpu, &folder).unwrap()
}

fn assert_close(what: &str, ours: &[f32], reference: &[f32]) {
    let c = compare(ours, reference);
    eprintln!("{what}: {c}");
    assert_eq!(c.non_finite, 0, "{what}: non-finite outputs");
    assert!(c.rel_l2 <= tolerance::VAE_F32, "{what}: {c}");
}

fn decode_case(case: &str) {
    let name = format!("tiny-wan.decode.{case}");
    let (files, _) = fixture(&name);
    let z = tensor(&files, "latents");
    let vae = wan("tiny-wan");
    let (raw, shape) = vae.decode_unclamped(&Cpu, &z.data, shape5(&z), &Silent).unwrap();
    let reference_raw = tensor(&files, "sample_unclamped");
    assert_eq!(shape.to_vec(), reference_raw.shape, "{name}: output shape");
    assert_close(&format!("{name} unclamped"), &raw, &reference_raw.data);
    let (clamped, _) = vae.decode(&Cpu, &z.data, shape5(&z), &Silent).unwrap();
    assert_close(&format!("{name} clamped"), &clamped, &tensor(&files, "sample").data);
}

fn encode_case(case: &str) {
    let name = format!("tiny-wan.encode.{case}");
    let (files, _) = fixture(&name);
    let video = tensor(&files, "video");
    let vae = wan("tiny-wan");
    let (params, shape) = vae.encode_parameters(&Cpu, &video.data, shape5(&video), &Silent).unwrap();
    let reference = tensor(&files, "latent_params");
    assert_eq!(shape.to_vec(), reference.shape, "{name}: output shape");
    assert_close(&format!("{name} mean | logvar"), &params, &reference.data);
    // `encode` is the mean half
    let (mean, [b, z, t, h, w]) = vae.encode(&Cpu, &video.data, shape5(&video), &Silent).unwrap();
    assert_eq!(mean.len(), b * z * t * h * w);
    let per_sample = 2 * z * t * h * w;
    assert_eq!(&mean[..z * t * h * w], &params[..z * t * h * w]);
    assert_eq!(params.len(), b * per_sample);
}

#[test]
fn wan_decode_one_latent_frame() {
    decode_case("1x4x6");
}

#[test]
fn wan_decode_three_latent_frames() {
    decode_case("3x4x6");
}

#[test]
fn wan_decode_batch_of_two() {
    decode_case("b2.2x5x3");
}

#[test]
fn wan_encode_one_frame() {
    encode_case("1x32x48");
}

#[test]
fn wan_encode_five_frames() {
    encode_case("5x32x48");
}

#[test]
fn wan_encode_nine_frames() {
    encode_case("9x40x24");
}

/// Every fixture on disk has a test above.
#[test]
fn every_vae_fixture_has_a_test() {
    let covered = [
        "tiny-wan.decode.1x4x6",
        "tiny-wan.decode.3x4x6",
        "tiny-wan.decode.b2.2x5x3",
        "tiny-wan.encode.1x32x48",
        "tiny-wan.encode.5x32x48",
        "tiny-wan.encode.9x40x24",
    ];
    let dir = common::fixtures().join("vae");
    let on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".safetensors").map(str::to_string))
        .collect();
    assert!(!on_disk.is_empty(), "no fixtures in {}: run python3 tools/make_vae_fixtures.py", dir.display());
    for f in &on_disk {
        assert!(covered.contains(&f.as_str()), "fixture {f} has no test in tests/vae_reference.rs");
    }
}

/// A frame count the causal chunking cannot take is refused with the nearest valid counts.
#[test]
fn wan_encode_refuses_a_bad_frame_count() {
    let vae = wan("tiny-wan");
    let video = vec![0.0; 3 * 6 * 32 * 48];
    let err = vae.encode(&Cpu, &video, [1, 3, 6, 32, 48], &Silent).unwrap_err().to_string();
    assert!(err.contains("6 frames") && err.contains("5 or 9"), "{err}");
}

/// Latents with the wrong channel count name what was expected.
#[test]
fn wan_decode_refuses_wrong_channels() {
    let vae = wan("tiny-wan");
    let z = vec![0.0; 8 * 2 * 4 * 6];
    let err = vae.decode(&Cpu, &z, [1, 8, 2, 4, 6], &Silent).unwrap_err().to_string();
    assert!(err.contains("latents") && err.contains("16"), "{err}");
}
