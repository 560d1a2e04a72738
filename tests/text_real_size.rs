//! The released Gemma-2-2B decoder config (tests/fixtures/configs/gemma_2_2b.json, written by
//! tools/make_text_fixtures.py from transformers' Gemma2Config) at full size with seeded random
//! weights: loads through the checkpoint loader, holds transformers' parameter count, and encodes
//! a short prompt on the CPU. (~10.5 GB of f32 weights.)

mod common;

use std::time::Instant;

use sana::backend::cpu::Cpu;
use sana::engine::text::Gemma2Encoder;

#[test]
fn gemma_2_2b_loads_and_encodes_with_random_weights() {
    let configs = common::fixtures().join("configs");
    let counts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(configs.join("parameter_counts.json")).unwrap()).unwrap();
    let expected = counts["counts"]["gemma_2_2b_decoder"].as_u64().unwrap() as usize;
    assert_eq!(expected, 2_614_341_888, "transformers' count for the Gemma-2-2B decoder");

    let started = Instant::now();
    let encoder = Gemma2Encoder::random(&Cpu, &configs.join("gemma_2_2b.json"), 11).unwrap();
    let load_s = started.elapsed().as_secs_f64();
    assert_eq!(encoder.parameter_count, expected);
    assert_eq!(encoder.config.hidden_size, 2304, "the transformer's caption_channels");

    let ids = [2u32, 651, 4401, 235248, 30, 255_999];
    let started = Instant::now();
    let out = encoder.forward(&Cpu, &ids, &[1.0; 6], 1).unwrap();
    let forward_s = started.elapsed().as_secs_f64();
    assert_eq!(out.shape(), &[1, 6, 2304]);
    let v = out.to_host(&Cpu).unwrap();
    assert!(v.iter().all(|x| x.is_finite()));
    let rms = (v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
    assert!(rms > 1e-3 && rms < 1e3, "implausible output rms {rms}");
    eprintln!(
        "gemma-2-2b: {expected} parameters, random load {load_s:.1} s, 6-token forward {forward_s:.2} s, rms {rms:.3}"
    );
}
