//! The released 480p and 720p transformer configs (MODEL.md §2.1) at full size with seeded random
//! weights: they load through the same loader as a checkpoint and run one forward on a small
//! latent on the CPU; parameter counts equal diffusers' (tools/make_dit_fixtures.py counts them on
//! the meta device and records them in tests/fixtures/configs/parameter_counts.json).
//!
//! Each model holds ~8.2 GB of f32 weights, so both run in one test, one after the other.

mod common;

use std::time::Instant;

use sana::backend::{cpu::Cpu, Tensor};
use sana::engine::dit::{DitInput, SanaVideoTransformer, Timesteps};

const RELEASED: [(&str, usize); 2] = [("sana_video_2b_480p", 2_056_862_144), ("sana_video_2b_720p", 2_057_148_928)];

fn recorded_count(name: &str) -> usize {
    let path = common::fixtures().join("configs").join("parameter_counts.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["counts"][name].as_u64().unwrap() as usize
}

#[test]
fn released_configs_load_and_run_with_random_weights() {
    let be = Cpu;
    for (name, count) in RELEASED {
        assert_eq!(recorded_count(name), count, "diffusers' count for {name}");
        let config = common::fixtures().join("configs").join(format!("{name}.json"));
        let started = Instant::now();
        let model = SanaVideoTransformer::random(&be, &config, 7).unwrap();
        let load_s = started.elapsed().as_secs_f64();
        assert_eq!(model.parameter_count, count, "{name}: parameters read by the loader");
        assert_eq!(model.config.parameter_count(), count, "{name}: parameters implied by the config");

        let cin = model.config.in_channels;
        let latent_shape = [1, cin, 3, 8, 8];
        let n: usize = latent_shape.iter().product();
        let latent_values: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        let latent = Tensor::from_host(&be, &latent_shape, &latent_values).unwrap();
        let caption_values: Vec<f32> = (0..8 * 2304).map(|i| ((i * 104_729) % 997) as f32 / 498.5 - 1.0).collect();
        let caption = Tensor::from_host(&be, &[1, 8, 2304], &caption_values).unwrap();
        let mask = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0];
        let started = Instant::now();
        let out = model
            .forward(
                &be,
                &DitInput {
                    latent: &latent,
                    caption: &caption,
                    timesteps: &Timesteps::PerSample(vec![700.0]),
                    caption_mask: Some(&mask),
                },
            )
            .unwrap();
        let forward_s = started.elapsed().as_secs_f64();
        let v = out.to_host(&be).unwrap();
        assert_eq!(out.shape(), &latent_shape);
        assert!(v.iter().all(|x| x.is_finite()), "{name}: non-finite output");
        let rms = (v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        assert!(rms > 1e-3 && rms < 1e3, "{name}: implausible output rms {rms}");
        eprintln!("{name}: {count} parameters, random load {load_s:.1} s, forward on {latent_shape:?} {forward_s:.2} s, output rms {rms:.3}");
    }
}

#[test]
fn inspect_reports_released_parameter_counts() {
    for (name, count) in RELEASED {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("transformer")).unwrap();
        std::fs::copy(
            common::fixtures().join("configs").join(format!("{name}.json")),
            tmp.path().join("transformer/config.json"),
        )
        .unwrap();
        std::fs::write(
            tmp.path().join("model_index.json"),
            r#"{"_class_name": "SanaVideoPipeline", "transformer": ["diffusers", "SanaVideoTransformer3DModel"]}"#,
        )
        .unwrap();
        let out =
            std::process::Command::new(env!("CARGO_BIN_EXE_sana")).arg("inspect").arg(tmp.path()).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let commas = sana::engine::inspect::with_commas(count);
        assert!(text.contains(&format!("architecture (config.json): {commas} parameters")), "{text}");
        // no weights in this folder: inspect says so rather than failing
        assert!(text.contains("problem:") && text.contains("diffusion_pytorch_model.safetensors"), "{text}");
    }
}

#[test]
fn inspect_counts_stored_weights() {
    let dir = common::fixtures().join("dit").join("tiny-720p");
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_sana")).args(["inspect", "--json"]).arg(&dir).output().unwrap();
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &report["components"][0];
    assert_eq!(t["name"], "transformer");
    assert_eq!(t["stored_parameters"], t["config_parameters"]);
    assert!(t["stored_parameters"].as_u64().unwrap() > 0);
    assert_eq!(t["problems"].as_array().unwrap().len(), 0);
}
