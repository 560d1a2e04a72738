//! Writes the seeded random Gemma-2 of the GPU test `text_encoder_matches_cpu_at_width_512`
//! (tests/fixtures/configs/gemma_2_small.json, weight seed 11) as a transformers `Gemma2Model`
//! folder, with our CPU forward of the test's padded batch, so that tools/gemma_bf16_error.py can
//! measure transformers' own bf16 error on exactly these weights and inputs. Ignored: a tool, not
//! a check.
//!
//!     SANA_TEST_SEED=1 cargo test --test dump_random_gemma -- --ignored
//!
//! writes target/random_gemma_small/{config.json, model.safetensors, forward.seed1.safetensors}.

mod common;

use std::cell::RefCell;

use sana::backend::cpu::Cpu;
use sana::engine::text::{Gemma2Config, Gemma2Encoder};
use sana::engine::weights::{splitmix64, LoadLog, WeightLoader, WeightSource};
use sana::io::{write_f32, ConfigFile};

/// The weight seed of `text_encoder_matches_cpu_at_width_512`.
const WEIGHT_SEED: u64 = 11;

/// transformers' `Gemma2Model` tensor names and shapes, the ones `Gemma2Encoder::load` reads.
fn tensor_shapes(c: &Gemma2Config) -> Vec<(String, Vec<usize>)> {
    let (h, q_dim, kv_dim, ff) =
        (c.hidden_size, c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim, c.intermediate_size);
    let mut out =
        vec![("embed_tokens.weight".to_string(), vec![c.vocab_size, h]), ("norm.weight".to_string(), vec![h])];
    for i in 0..c.num_hidden_layers {
        let layer = [
            ("input_layernorm.weight", vec![h]),
            ("self_attn.q_proj.weight", vec![q_dim, h]),
            ("self_attn.k_proj.weight", vec![kv_dim, h]),
            ("self_attn.v_proj.weight", vec![kv_dim, h]),
            ("self_attn.o_proj.weight", vec![h, q_dim]),
            ("post_attention_layernorm.weight", vec![h]),
            ("pre_feedforward_layernorm.weight", vec![h]),
            ("mlp.gate_proj.weight", vec![ff, h]),
            ("mlp.up_proj.weight", vec![ff, h]),
            ("mlp.down_proj.weight", vec![h, ff]),
            ("post_feedforward_layernorm.weight", vec![h]),
        ];
        out.extend(layer.into_iter().map(|(name, shape)| (format!("layers.{i}.{name}"), shape)));
    }
    out
}

#[test]
#[ignore = "writes target/random_gemma_small/ for tools/gemma_bf16_error.py"]
fn dump_random_gemma_small() {
    let config_path = common::fixtures().join("configs/gemma_2_small.json");
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/random_gemma_small");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&config_path, dir.join("config.json")).unwrap();

    // The weights, drawn by the same loader Gemma2Encoder::random uses.
    let config = Gemma2Config::from_file(&ConfigFile::open(&config_path).unwrap()).unwrap();
    let (source, log) = (WeightSource::Random { seed: WEIGHT_SEED }, RefCell::new(LoadLog::default()));
    let loader = WeightLoader::new(&Cpu, &source, &log);
    let shapes = tensor_shapes(&config);
    let values: Vec<Vec<f32>> = shapes.iter().map(|(name, shape)| loader.host(name, shape).unwrap()).collect();
    let tensors: Vec<(&str, &[usize], &[f32])> =
        shapes.iter().zip(&values).map(|((n, s), v)| (n.as_str(), s.as_slice(), v.as_slice())).collect();
    write_f32(&dir.join("model.safetensors"), &tensors).unwrap();

    // The test's padded batch and our CPU forward of it (ids as in gpu_backend.rs).
    let encoder = Gemma2Encoder::random(&Cpu, &config_path, WEIGHT_SEED).unwrap();
    assert_eq!(encoder.parameter_count, log.borrow().parameters, "the dump holds every tensor the encoder loads");
    let (len, lens) = (77, [77usize, 41]);
    let seed: u64 = std::env::var("SANA_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut state = seed;
    let ids: Vec<u32> =
        (0..2 * len).map(|i| if i % len == 0 { 2 } else { 3 + (splitmix64(&mut state) % 4000) as u32 }).collect();
    let mask: Vec<f32> = (0..2 * len).map(|i| if i % len < lens[i / len] { 1.0 } else { 0.0 }).collect();
    let out = encoder.forward(&Cpu, &ids, &mask, 2).unwrap().to_host(&Cpu).unwrap();
    let ids_f32: Vec<f32> = ids.iter().map(|&i| i as f32).collect(); // < 2^24: exact
    let h = config.hidden_size;
    write_f32(
        &dir.join(format!("forward.seed{seed}.safetensors")),
        &[
            ("input_ids", &[2, len], &ids_f32),
            ("attention_mask", &[2, len], &mask),
            ("last_hidden_state", &[2, len, h], &out),
        ],
    )
    .unwrap();
    eprintln!("SANA_TEST_SEED={seed}: wrote {}", dir.display());
}
