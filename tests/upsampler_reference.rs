//! The CPU LTX-2 latent upsampler against diffusers 0.42.1 `LTX2LatentUpsamplerModel` on the
//! fixtures of tools/make_upsampler_fixtures.py (forward in f32 and f64, and the
//! denormalise → upsample → renormalise hand-off of MODEL.md §8.2), bad inputs and configs, and the
//! released config at full size with seeded random weights.

mod common;

use std::path::{Path, PathBuf};

use sana::backend::cpu::Cpu;
use sana::engine::dit::HostTensor;
use sana::engine::pipeline::upscale::upsample_latents;
use sana::engine::pipeline::LatentVideo;
use sana::engine::progress::Silent;
use sana::engine::upsampler::Ltx2LatentUpsampler;
use sana::io::TensorFiles;
use sana::testing::{compare, tolerance};

const MODEL: &str = "tiny-ltx2-upsampler";

fn dir() -> PathBuf {
    common::fixtures().join("upsampler")
}

fn fixture(case: &str) -> TensorFiles {
    let path = dir().join(format!("{MODEL}.{case}.safetensors"));
    common::check_fixture_provenance(&path);
    common::open(&path)
}

fn tensor(files: &TensorFiles, name: &str) -> HostTensor {
    HostTensor::read(files, name).unwrap().unwrap_or_else(|| panic!("fixture has no `{name}`"))
}

fn shape5(t: &HostTensor) -> [usize; 5] {
    t.shape.clone().try_into().expect("a (B, C, T, H, W) tensor")
}

fn tiny() -> Ltx2LatentUpsampler<Cpu> {
    Ltx2LatentUpsampler::from_dir(&Cpu, &dir().join(MODEL)).unwrap_or_else(|e| panic!("{e}"))
}

fn assert_close(what: &str, ours: &[f32], reference: &[f32]) {
    let c = compare(ours, reference);
    eprintln!("{what}: {c}");
    assert_eq!(c.non_finite, 0, "{what}: non-finite outputs");
    assert!(c.rel_l2 <= tolerance::UPSAMPLER_F32, "{what}: {c}");
}

#[test]
fn forward_matches_diffusers() {
    let model = tiny();
    for case in ["1x5x7", "3x4x5", "b2.2x3x3"] {
        let files = fixture(&format!("forward.{case}"));
        let z = tensor(&files, "latents");
        let (ours, shape) = model.upsample(&Cpu, &z.data, shape5(&z), &Silent).unwrap();
        let reference = tensor(&files, "upsampled");
        assert_eq!(shape.to_vec(), reference.shape, "{case}: output shape");
        assert_close(&format!("forward.{case} vs diffusers f32"), &ours, &reference.data);
        assert_close(&format!("forward.{case} vs diffusers f64"), &ours, &tensor(&files, "upsampled_f64").data);
    }
}

#[test]
fn handoff_matches_the_diffusers_pipelines() {
    let files = fixture("handoff.3x4x5");
    let z = tensor(&files, "latents");
    let (mean, std) = (tensor(&files, "latents_mean").data, tensor(&files, "latents_std").data);
    let latents = LatentVideo { shape: shape5(&z), data: z.data };
    let out = upsample_latents(&Cpu, &tiny(), (&mean, &std), &latents, &Silent).unwrap();
    let reference = tensor(&files, "upsampled");
    assert_eq!(out.shape.to_vec(), reference.shape);
    assert_close("handoff.3x4x5", &out.data, &reference.data);
}

#[test]
fn wrong_channel_count_is_refused_by_name() {
    let model = tiny();
    let shape = [1, 7, 1, 3, 3];
    let err = model.upsample(&Cpu, &[0.5; 63], shape, &Silent).expect_err("7 channels must be refused");
    let msg = err.to_string();
    assert!(msg.contains("latents") && msg.contains("(B, 8, T, H, W)") && msg.contains("[1, 7, 1, 3, 3]"), "{msg}");

    let latents = LatentVideo { shape: [1, 8, 1, 2, 2], data: vec![0.5; 32] };
    let err = upsample_latents(&Cpu, &model, (&[0.0; 7], &[1.0; 8]), &latents, &Silent).expect_err("7 means");
    let msg = err.to_string();
    assert!(msg.contains("latent statistics") && msg.contains("7 means"), "{msg}");
}

/// A copy of the tiny model folder in a fresh temporary directory, with `edit` applied to the
/// config and the tensors `drop` left out of the weights.
fn edited_copy(tag: &str, edit: impl FnOnce(&mut serde_json::Value), drop: &[&str]) -> PathBuf {
    let out = std::env::temp_dir().join(format!("sana-upsampler-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let src = dir().join(MODEL);
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(out.join("config.json"), serde_json::to_string_pretty(&config).unwrap()).unwrap();
    let files = TensorFiles::open_component(&src).unwrap();
    let kept: Vec<(String, HostTensor)> = files
        .names()
        .filter(|n| !drop.contains(n))
        .map(|n| (n.to_string(), HostTensor::read(&files, n).unwrap().unwrap()))
        .collect();
    let views: Vec<(&str, &[usize], &[f32])> =
        kept.iter().map(|(n, t)| (n.as_str(), t.shape.as_slice(), t.data.as_slice())).collect();
    sana::io::write_f32(&out.join("diffusion_pytorch_model.safetensors"), &views).unwrap();
    out
}

fn load_error(dir: &Path) -> String {
    match Ltx2LatentUpsampler::from_dir(&Cpu, dir) {
        Ok(_) => panic!("{} loaded, expected an error", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_tensor_is_named() {
    let d = edited_copy("missing", |_| {}, &["post_upsample_res_blocks.1.norm2.bias"]);
    let msg = load_error(&d);
    assert!(msg.contains("post_upsample_res_blocks.1.norm2.bias"), "{msg}");
    // the copy (all tensors kept) loads and is exact: the loader reads what the copy wrote
    let whole = edited_copy("whole", |_| {}, &[]);
    assert!(Ltx2LatentUpsampler::from_dir(&Cpu, &whole).is_ok());
    let _ = std::fs::remove_dir_all(d);
    let _ = std::fs::remove_dir_all(whole);
}

#[test]
fn unsupported_config_values_are_refused_by_key() {
    for (key, value) in [
        ("temporal_upsample", serde_json::json!(true)),
        ("spatial_upsample", serde_json::json!(false)),
        ("rational_spatial_scale", serde_json::json!(1.5)),
        ("use_rational_resampler", serde_json::json!(false)),
        ("dims", serde_json::json!(2)),
        ("mid_channels", serde_json::json!(48)),
    ] {
        let d = edited_copy(key, |c| c[key] = value.clone(), &[]);
        let msg = load_error(&d);
        assert!(msg.contains(key) && msg.contains("config.json"), "{key}: {msg}");
        let _ = std::fs::remove_dir_all(d);
    }
    let d = edited_copy("class", |c| c["_class_name"] = serde_json::json!("LTXLatentUpsamplerModel"), &[]);
    let msg = load_error(&d);
    assert!(msg.contains("LTX2LatentUpsamplerModel") && msg.contains("LTXLatentUpsamplerModel"), "{msg}");
    let _ = std::fs::remove_dir_all(d);
}

/// The released config (MODEL.md §8.3) with seeded random weights: the loader reads exactly the
/// parameters diffusers counts (tools/make_upsampler_fixtures.py, on the meta device), and a small
/// latent runs through at full width.
#[test]
fn released_config_loads_with_random_weights() {
    let configs = common::fixtures().join("configs");
    let counts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(configs.join("parameter_counts.json")).unwrap()).unwrap();
    let expected = counts["counts"]["ltx2_latent_upsampler"].as_u64().expect("recorded count") as usize;
    let model = Ltx2LatentUpsampler::random(&Cpu, &configs.join("ltx2_latent_upsampler.json"), 11).unwrap();
    assert_eq!(model.parameter_count, expected, "parameters read vs diffusers' count");
    assert_eq!(model.config.in_channels, 128);
    let shape = [1, 128, 1, 2, 3];
    let z: Vec<f32> = (0..768).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
    let (out, out_shape) = model.upsample(&Cpu, &z, shape, &Silent).unwrap();
    assert_eq!(out_shape, [1, 128, 1, 4, 6]);
    assert!(out.iter().all(|v| v.is_finite()), "non-finite output");
    let rms = (out.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / out.len() as f64).sqrt();
    assert!(rms > 1e-3 && rms < 1e3, "implausible output rms {rms}");
}
