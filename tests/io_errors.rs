//! Bad checkpoints and bad inputs give errors that name the file, the tensor or key, and what was
//! expected — never a panic. Each case mutates a copy of the tiny 480p-style fixture model.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use safetensors::tensor::{Dtype, TensorView};
use sana::backend::{cpu::Cpu, Tensor};
use sana::engine::dit::{DitInput, SanaVideoTransformer, Timesteps};
use sana::io::{ModelFolder, TensorFiles};

const WEIGHTS: &str = "transformer/diffusion_pytorch_model.safetensors";
const CONFIG: &str = "transformer/config.json";

/// (dtype, shape, little-endian bytes) of every tensor in a file.
type Stored = BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>;

fn copy_model(tmp: &Path) -> PathBuf {
    let src = common::fixtures().join("dit").join("tiny-480p");
    let dst = tmp.join("model");
    std::fs::create_dir_all(dst.join("transformer")).unwrap();
    std::fs::copy(src.join("model_index.json"), dst.join("model_index.json")).unwrap();
    for f in ["config.json", "diffusion_pytorch_model.safetensors"] {
        std::fs::copy(src.join("transformer").join(f), dst.join("transformer").join(f)).unwrap();
    }
    dst
}

fn read_stored(path: &Path) -> Stored {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors().into_iter().map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data().to_vec()))).collect()
}

fn write_stored(path: &Path, tensors: &Stored) {
    let views: Vec<(String, TensorView)> =
        tensors.iter().map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn rewrite_weights(model: &Path, edit: impl FnOnce(&mut Stored)) {
    let path = model.join(WEIGHTS);
    let mut t = read_stored(&path);
    edit(&mut t);
    write_stored(&path, &t);
}

fn rewrite_config(model: &Path, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let path = model.join(CONFIG);
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(cfg.as_object_mut().unwrap());
    std::fs::write(&path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
}

/// Loads the transformer and returns the error text (the load must fail).
fn load_error(model: &Path) -> String {
    let folder = match ModelFolder::new(model) {
        Ok(f) => f,
        Err(e) => return e.to_string(),
    };
    match SanaVideoTransformer::from_folder(&Cpu, &folder) {
        Ok(_) => panic!("loading {} should have failed", model.display()),
        Err(e) => e.to_string(),
    }
}

fn assert_contains(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "error text lacks `{p}`:\n{text}");
    }
}

#[test]
fn unmodified_copy_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    let t = SanaVideoTransformer::from_folder(&Cpu, &ModelFolder::new(&model).unwrap()).unwrap();
    assert_eq!(t.parameter_count, t.config.parameter_count());
}

#[test]
fn missing_tensor_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    rewrite_weights(&model, |t| {
        t.remove("transformer_blocks.1.attn1.norm_k.weight");
    });
    let e = load_error(&model);
    assert_contains(
        &e,
        &["transformer_blocks.1.attn1.norm_k.weight", "missing", "diffusion_pytorch_model.safetensors", "[24]"],
    );
}

#[test]
fn wrong_shape_names_tensor_expected_and_got() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    rewrite_weights(&model, |t| {
        t.insert("caption_norm.weight".into(), (Dtype::F32, vec![25], vec![0u8; 100]));
    });
    let e = load_error(&model);
    assert_contains(&e, &["caption_norm.weight", "[25]", "expected [24]", "diffusion_pytorch_model.safetensors"]);
}

#[test]
fn integer_dtype_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    rewrite_weights(&model, |t| {
        let (_, shape, bytes) = t["scale_shift_table"].clone();
        t.insert("scale_shift_table".into(), (Dtype::I32, shape, bytes));
    });
    let e = load_error(&model);
    assert_contains(&e, &["scale_shift_table", "I32", "f32, f16, bf16"]);
}

#[test]
fn truncated_file_is_reported_as_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    let path = model.join(WEIGHTS);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 1000).unwrap();
    let e = load_error(&model);
    assert_contains(&e, &["diffusion_pytorch_model.safetensors", "truncated or corrupt", "fetch it again"]);
}

#[test]
fn garbage_file_is_reported_as_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    std::fs::write(model.join(WEIGHTS), b"<html>404 Not Found</html>").unwrap();
    let e = load_error(&model);
    assert_contains(&e, &["diffusion_pytorch_model.safetensors", "not a readable safetensors file"]);
}

#[test]
fn unknown_class_name_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    rewrite_config(&model, |c| {
        c.insert("_class_name".into(), "FluxTransformer2DModel".into());
    });
    let e = load_error(&model);
    assert_contains(&e, &["config.json", "FluxTransformer2DModel", "SanaVideoTransformer3DModel"]);
}

#[test]
fn missing_config_key_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    rewrite_config(&model, |c| {
        c.remove("num_layers");
    });
    let e = load_error(&model);
    assert_contains(&e, &["transformer/config.json", "`num_layers` is missing"]);
}

#[test]
fn mistyped_config_key_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    rewrite_config(&model, |c| {
        c.insert("patch_size".into(), "2x2".into());
    });
    let e = load_error(&model);
    assert_contains(&e, &["config.json", "`patch_size`", "wrong type"]);
}

#[test]
fn unsupported_variant_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    rewrite_config(&model, |c| {
        c.insert("qk_norm".into(), "rms_norm".into());
    });
    assert_contains(&load_error(&model), &["`qk_norm`", "rms_norm_across_heads"]);
}

#[test]
fn invalid_json_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    std::fs::write(model.join(CONFIG), "{\"in_channels\": 4,").unwrap();
    assert_contains(&load_error(&model), &["config.json", "not valid JSON"]);
}

#[test]
fn missing_component_folder_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    std::fs::remove_dir_all(model.join("transformer")).unwrap();
    assert_contains(&load_error(&model), &["has no `transformer/config.json`", "diffusers SANA-Video folder"]);
}

#[test]
fn missing_model_folder_is_named() {
    assert_contains(
        &load_error(Path::new("/nonexistent/sana-model")),
        &["/nonexistent/sana-model", "no such model folder"],
    );
}

#[test]
fn missing_weights_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    std::fs::remove_file(model.join(WEIGHTS)).unwrap();
    assert_contains(&load_error(&model), &["diffusion_pytorch_model.safetensors", "transformer"]);
}

#[test]
fn extra_tensors_are_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    rewrite_weights(&model, |t| {
        t.insert("transformer_blocks.2.attn1.to_q.weight".into(), (Dtype::F32, vec![1], vec![0u8; 4]));
    });
    assert_contains(&load_error(&model), &["transformer_blocks.2.attn1.to_q.weight", "does not use"]);
}

#[test]
fn shard_index_naming_a_missing_shard_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    let tensors = read_stored(&model.join(WEIGHTS));
    std::fs::remove_file(model.join(WEIGHTS)).unwrap();
    // Split across two shards, then lose the second.
    let (mut a, mut b) = (Stored::new(), Stored::new());
    for (i, (name, t)) in tensors.into_iter().enumerate() {
        if i % 2 == 0 {
            a.insert(name, t)
        } else {
            b.insert(name, t)
        };
    }
    write_stored(&model.join("transformer/diffusion_pytorch_model-00001-of-00002.safetensors"), &a);
    let map: serde_json::Map<String, serde_json::Value> = a
        .keys()
        .map(|k| (k.clone(), "diffusion_pytorch_model-00001-of-00002.safetensors".into()))
        .chain(b.keys().map(|k| (k.clone(), "diffusion_pytorch_model-00002-of-00002.safetensors".into())))
        .collect();
    let index = serde_json::json!({ "metadata": {}, "weight_map": map });
    std::fs::write(model.join("transformer/diffusion_pytorch_model.safetensors.index.json"), index.to_string())
        .unwrap();
    assert_contains(&load_error(&model), &["diffusion_pytorch_model-00002-of-00002.safetensors"]);

    // With both shards present the sharded set loads and matches the single file.
    write_stored(&model.join("transformer/diffusion_pytorch_model-00002-of-00002.safetensors"), &b);
    let t = SanaVideoTransformer::from_folder(&Cpu, &ModelFolder::new(&model).unwrap()).unwrap();
    assert_eq!(t.parameter_count, t.config.parameter_count());

    // An index that puts a tensor in the wrong shard is refused, naming both.
    let (moved, _) = b.iter().next().unwrap();
    let mut wrong = index.clone();
    wrong["weight_map"][moved] = "diffusion_pytorch_model-00001-of-00002.safetensors".into();
    std::fs::write(model.join("transformer/diffusion_pytorch_model.safetensors.index.json"), wrong.to_string())
        .unwrap();
    assert_contains(&load_error(&model), &["shard index", moved.as_str(), "does not hold it"]);
}

#[test]
fn half_precision_weights_convert_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_model(tmp.path());
    let original = read_stored(&model.join(WEIGHTS));
    rewrite_weights(&model, |t| {
        for (name, (dtype, _, bytes)) in t.iter_mut() {
            let values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
            // alternate bf16 and f16 so both decoders run
            if name.len() % 2 == 0 {
                *dtype = Dtype::BF16;
                *bytes = values.iter().flat_map(|v| bf16::from_f32(*v).to_le_bytes()).collect();
            } else {
                *dtype = Dtype::F16;
                *bytes = values.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect();
            }
        }
    });
    let files = TensorFiles::open(&model.join(WEIGHTS)).unwrap();
    for (name, (_, shape, bytes)) in &original {
        let loaded = files.load_f32(name, shape).unwrap();
        let f32s: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        for (l, v) in loaded.iter().zip(&f32s) {
            let expected = if name.len() % 2 == 0 { bf16::from_f32(*v).to_f32() } else { f16::from_f32(*v).to_f32() };
            assert_eq!(*l, expected, "{name}");
        }
    }
    let (_, by_dtype) = files.parameter_count();
    assert!(by_dtype.contains_key("bf16") && by_dtype.contains_key("f16"));
    SanaVideoTransformer::from_folder(&Cpu, &ModelFolder::new(&model).unwrap()).unwrap();
}

#[test]
fn bad_inputs_name_the_tensor() {
    let be = Cpu;
    let dir = common::fixtures().join("dit").join("tiny-480p");
    let model = SanaVideoTransformer::from_folder(&be, &ModelFolder::new(&dir).unwrap()).unwrap();
    let caption = Tensor::from_host(&be, &[1, 3, 20], &[0.5; 60]).unwrap();
    let run = |latent_shape: &[usize], caption: &Tensor<Cpu>, t: Timesteps, mask: Option<&[f32]>| {
        let n: usize = latent_shape.iter().product();
        let latent = Tensor::from_host(&be, latent_shape, &vec![0.25; n]).unwrap();
        match model.forward(&be, &DitInput { latent: &latent, caption, timesteps: &t, caption_mask: mask }) {
            Ok(_) => panic!("forward on {latent_shape:?} should have failed"),
            Err(e) => e.to_string(),
        }
    };
    let one = || Timesteps::PerSample(vec![500.0]);
    assert_contains(&run(&[1, 5, 1, 4, 4], &caption, one(), None), &["hidden_states", "4 channels", "[1, 5, 1, 4, 4]"]);
    assert_contains(&run(&[1, 4, 1, 5, 4], &caption, one(), None), &["hidden_states", "patch", "[1, 2, 2]"]);
    assert_contains(&run(&[1, 4, 4, 4], &caption, one(), None), &["hidden_states", "(B, C, T, H, W)"]);
    assert_contains(
        &run(&[1, 4, 1, 4, 4], &caption, Timesteps::PerSample(vec![1.0, 2.0]), None),
        &["timestep", "1 (per sample) or 4 (per token)"],
    );
    assert_contains(&run(&[1, 4, 1, 4, 4], &caption, one(), Some(&[1.0, 1.0])), &["encoder_attention_mask", "1x3"]);
    let wide = Tensor::from_host(&be, &[1, 3, 21], &[0.5; 63]).unwrap();
    assert_contains(&run(&[1, 4, 1, 4, 4], &wide, one(), None), &["encoder_hidden_states", "20"]);
}
