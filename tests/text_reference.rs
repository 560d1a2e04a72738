//! The text encoder against transformers 5.23 (`Gemma2Model`, eager attention) and the prompt
//! path against diffusers 0.42.1 (`SanaVideoPipeline.encode_prompt`), on the fixtures of
//! tools/make_text_fixtures.py (tiny random-weight Gemma-2, a Gemma-shaped tokenizer.json).

mod common;

use sana::backend::cpu::Cpu;
use sana::engine::dit::HostTensor;
use sana::engine::text::{encode_prompts, Gemma2Config, Gemma2Encoder, Instruction, PromptOptions, PromptTokenizer};
use sana::io::{ConfigFile, ModelFolder};
use sana::testing::{compare, tolerance};

fn text_fixtures() -> std::path::PathBuf {
    common::fixtures().join("text")
}

fn tiny_model() -> ModelFolder {
    ModelFolder::new(&text_fixtures().join("tiny-gemma")).unwrap()
}

fn assert_close(name: &str, ours: &[f32], reference: &[f32]) {
    let c = compare(ours, reference);
    eprintln!("{name}: {c}");
    assert_eq!(c.non_finite, 0, "{name}");
    assert!(c.rel_l2 <= tolerance::TRANSFORMER_F32, "{name}: {c}");
}

#[test]
fn decoder_matches_transformers() {
    let path = text_fixtures().join("decoder.safetensors");
    common::check_fixture_provenance(&path);
    let files = common::open(&path);
    let ids = HostTensor::read(&files, "input_ids").unwrap().unwrap();
    let mask = HostTensor::read(&files, "attention_mask").unwrap().unwrap();
    let expected = HostTensor::read(&files, "last_hidden_state").unwrap().unwrap();
    let ids: Vec<u32> = ids.data.iter().map(|&v| v as u32).collect();
    let encoder = Gemma2Encoder::from_folder(&Cpu, &tiny_model()).unwrap();
    // the fixture covers the soft-capping and a sliding window shorter than the sequence
    assert!(encoder.config.attn_logit_softcapping.is_some());
    assert!(encoder.config.sliding_window.unwrap() < expected.shape[1]);
    let out = encoder.forward(&Cpu, &ids, &mask.data, expected.shape[0]).unwrap();
    assert_eq!(out.shape(), expected.shape.as_slice());
    assert_close("decoder last_hidden_state", &out.to_host(&Cpu).unwrap(), &expected.data);
}

fn run_prompt_case(case: &str) {
    let path = text_fixtures().join(format!("prompt.{case}.safetensors"));
    common::check_fixture_provenance(&path);
    let meta = common::metadata(&path);
    let prompts: Vec<String> = (0..).map_while(|i| meta.get(&format!("prompt.{i}")).cloned()).collect();
    assert!(!prompts.is_empty(), "{case}: no prompts in the fixture metadata");
    let files = common::open(&path);
    let folder = tiny_model();
    let encoder = Gemma2Encoder::from_folder(&Cpu, &folder).unwrap();
    let tokenizer = PromptTokenizer::from_folder(&folder).unwrap();
    // the fixture's prompts already end with the motion score, as the diffusers docs append it
    let opts = PromptOptions { motion_score: None, instruction: Instruction::Diffusers };
    let (pos, neg) = encode_prompts(&Cpu, &encoder, &tokenizer, &prompts, &meta["negative_prompt"], &opts).unwrap();
    for (label, ours, key) in [("prompt", &pos, "prompt"), ("negative", &neg, "negative_prompt")] {
        let embeds = HostTensor::read(&files, &format!("{key}_embeds")).unwrap().unwrap();
        let mask = HostTensor::read(&files, &format!("{key}_attention_mask")).unwrap().unwrap();
        assert_eq!(ours.embeds.shape(), embeds.shape.as_slice(), "{case} {label}");
        assert_eq!(ours.mask, mask.data, "{case} {label}: masks differ");
        assert_close(&format!("{case} {label}_embeds"), &ours.embeds.to_host(&Cpu).unwrap(), &embeds.data);
    }
}

#[test]
fn prompt_empty() {
    run_prompt_case("empty");
}

#[test]
fn prompt_simple_lowercased_and_stripped() {
    run_prompt_case("simple");
}

#[test]
fn prompt_long_truncated() {
    run_prompt_case("long");
}

#[test]
fn prompt_non_ascii() {
    run_prompt_case("non-ascii");
}

#[test]
fn prompt_batch_of_two() {
    run_prompt_case("batch2");
}

#[test]
fn instruction_text_is_diffusers_default() {
    let text = std::fs::read_to_string(text_fixtures().join("chi_diffusers.json")).unwrap();
    let lines: Vec<String> = serde_json::from_str(&text).unwrap();
    assert_eq!(lines, sana::engine::text::prompt::DIFFUSERS_INSTRUCTION.map(String::from).to_vec());
}

#[test]
fn missing_tokenizer_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let e = PromptTokenizer::from_folder(&ModelFolder::new(tmp.path()).unwrap()).err().unwrap().to_string();
    assert!(e.contains("tokenizer/tokenizer.json"), "{e}");
}

#[test]
fn malformed_tokenizer_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tokenizer.json");
    std::fs::write(&path, "{\"version\": \"1.0\", \"model\": 42}").unwrap();
    let e = PromptTokenizer::open(&path).err().unwrap().to_string();
    assert!(e.contains("tokenizer.json") && e.contains("Gemma's tokenizer.json"), "{e}");
}

#[test]
fn tokenizer_without_pad_is_refused() {
    let src = text_fixtures().join("tiny-gemma/tokenizer/tokenizer.json");
    let text = std::fs::read_to_string(src).unwrap().replace("\"<pad>\"", "\"<nopad>\"");
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tokenizer.json");
    std::fs::write(&path, text).unwrap();
    let e = PromptTokenizer::open(&path).err().unwrap().to_string();
    assert!(e.contains("<pad>"), "{e}");
}

#[test]
fn caption_channel_mismatch_names_both_files() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in ["text_encoder", "transformer"] {
        std::fs::create_dir(tmp.path().join(dir)).unwrap();
    }
    let te = text_fixtures().join("tiny-gemma/text_encoder/config.json");
    std::fs::copy(&te, tmp.path().join("text_encoder/config.json")).unwrap();
    let dit = common::fixtures().join("dit/tiny-480p/transformer/config.json"); // caption_channels 20
    std::fs::copy(dit, tmp.path().join("transformer/config.json")).unwrap();
    let folder = ModelFolder::new(tmp.path()).unwrap();
    let config = Gemma2Config::from_file(&ConfigFile::open(&te).unwrap()).unwrap();
    let e = sana::engine::text::check_matches_transformer(&folder, &config).err().unwrap().to_string();
    assert!(
        e.contains("hidden size 32") && e.contains("caption_channels 20") && e.contains("transformer/config.json"),
        "{e}"
    );
}

#[test]
fn wrong_model_type_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("config.json");
    let text = std::fs::read_to_string(text_fixtures().join("tiny-gemma/text_encoder/config.json")).unwrap();
    std::fs::write(&path, text.replace("\"gemma2\"", "\"llama\"")).unwrap();
    let e = Gemma2Config::from_file(&ConfigFile::open(&path).unwrap()).err().unwrap().to_string();
    assert!(e.contains("llama") && e.contains("gemma2"), "{e}");
}

/// The CLI writes the four tensors with the shapes the transformer takes.
#[test]
fn cli_run_text_encoder_writes_embeddings() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("text.safetensors");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_sana"))
        .args(["run", "text-encoder", "--model"])
        .arg(text_fixtures().join("tiny-gemma"))
        .args(["--prompt", "A cat sleeping", "--prompt", "Ünïcode Σ", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let files = common::open(&out);
    for (name, shape) in [
        ("prompt_embeds", vec![2, 300, 32]),
        ("prompt_attention_mask", vec![2, 300]),
        ("negative_prompt_embeds", vec![2, 300, 32]),
        ("negative_prompt_attention_mask", vec![2, 300]),
    ] {
        let t = HostTensor::read(&files, name).unwrap().unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(t.shape, shape, "{name}");
        assert!(t.data.iter().all(|v| v.is_finite()), "{name}");
    }
    // BOS is always kept, and the two masks count the real tokens
    let mask = HostTensor::read(&files, "prompt_attention_mask").unwrap().unwrap();
    assert_eq!(mask.data[0], 1.0);
    assert!(mask.data.iter().sum::<f32>() > 2.0);
}
