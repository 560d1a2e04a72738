//! The Gemma-2 decoder used as SANA-Video's text encoder (MODEL.md §4; transformers 5.23
//! `models/gemma2/modeling_gemma2.py`, `Gemma2Model`, eager attention): scaled embeddings, per
//! layer RMSNorm(1+w) → grouped-query attention with rotate-half RoPE, logit soft-capping and a
//! sliding window on alternate layers → post-norm → residual; pre-norm → GeGLU (tanh GELU) →
//! post-norm → residual; final RMSNorm. Output: `last_hidden_state`.
//!
//! The residual stream is kept in f32 on every backend (the backend's `Table` storage; on the
//! CPU nothing changes, everything is f32 there). transformers keeps it in the model dtype, but
//! with a bf16 stream our CUDA encoder measured 1.25e-2 (tiny fixture) and 1.70e-2 (width 512)
//! from the CPU, past DESIGN §5's 1e-2 end-to-end: the rounding of every residual add piles up.
//! With the f32 stream (H200, 2026-12-01): 9.19e-3 and 1.39–1.46e-2, the latter under
//! transformers' own bf16 error on that case (1.80–1.87e-2, tools/gemma_bf16_error.py).

use std::cell::RefCell;

use crate::backend::{self as ops, Activation, Backend, NormWeight, RopeTables, Tensor, Write};
use crate::engine::weights::{LoadLog, WeightLoader, WeightSource};
use crate::error::{Error, Result};
use crate::io::{ConfigFile, ModelFolder};

#[derive(Clone, Debug, PartialEq)]
pub struct Gemma2Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub query_pre_attn_scalar: f64,
    pub attn_logit_softcapping: Option<f64>,
    pub sliding_window: Option<usize>,
    /// Per layer: whether it attends through the sliding window.
    pub sliding_layers: Vec<bool>,
}

impl Gemma2Config {
    pub fn from_file(cfg: &ConfigFile) -> Result<Self> {
        let model_type: String = cfg.get("model_type")?;
        if model_type != "gemma2" {
            return Err(Error::WrongClass {
                path: cfg.path.clone(),
                expected: "a Gemma-2 text encoder (model_type \"gemma2\")".into(),
                got: model_type,
            });
        }
        let act: String = cfg.get_or("hidden_activation", cfg.get_or("hidden_act", String::new())?)?;
        if act != "gelu_pytorch_tanh" {
            return Err(Error::config_key(
                &cfg.path,
                "hidden_activation",
                format!("is {act:?}; Gemma-2 uses \"gelu_pytorch_tanh\""),
            ));
        }
        let layers: usize = cfg.get("num_hidden_layers")?;
        // transformers ≥ 5 writes layer_types; older configs alternate, starting with a sliding layer
        let sliding_layers = match cfg.get_or::<Option<Vec<String>>>("layer_types", None)? {
            Some(types) if types.len() == layers => types.iter().map(|t| t == "sliding_attention").collect(),
            Some(types) => {
                return Err(Error::config_key(
                    &cfg.path,
                    "layer_types",
                    format!("lists {} layers, num_hidden_layers is {layers}", types.len()),
                ))
            }
            None => (0..layers).map(|i| i % 2 == 0).collect(),
        };
        // transformers ≥ 5: rope_parameters.rope_theta; earlier: rope_theta
        let rope_theta = match cfg.get_or::<Option<serde_json::Value>>("rope_parameters", None)? {
            Some(p) => p.get("rope_theta").and_then(|t| t.as_f64()).ok_or_else(|| {
                Error::config_key(&cfg.path, "rope_parameters.rope_theta", "is missing or not a number")
            })?,
            None => cfg.get_or("rope_theta", 10000.0)?,
        };
        let c = Gemma2Config {
            vocab_size: cfg.get("vocab_size")?,
            hidden_size: cfg.get("hidden_size")?,
            intermediate_size: cfg.get("intermediate_size")?,
            num_hidden_layers: layers,
            num_attention_heads: cfg.get("num_attention_heads")?,
            num_key_value_heads: cfg.get("num_key_value_heads")?,
            head_dim: cfg.get("head_dim")?,
            rms_norm_eps: cfg.get("rms_norm_eps")?,
            rope_theta,
            query_pre_attn_scalar: cfg.get("query_pre_attn_scalar")?,
            attn_logit_softcapping: cfg.get_or("attn_logit_softcapping", None)?,
            sliding_window: cfg.get_or("sliding_window", None)?,
            sliding_layers,
        };
        if c.num_key_value_heads == 0
            || !c.num_attention_heads.is_multiple_of(c.num_key_value_heads)
            || !c.head_dim.is_multiple_of(2)
        {
            return Err(Error::config_key(
                &cfg.path,
                "num_key_value_heads",
                "must divide num_attention_heads, with an even head_dim",
            ));
        }
        Ok(c)
    }
}

struct Layer<B: Backend> {
    input_norm: Tensor<B>,
    q: Tensor<B>,
    k: Tensor<B>,
    v: Tensor<B>,
    o: Tensor<B>,
    post_attention_norm: Tensor<B>,
    pre_feedforward_norm: Tensor<B>,
    gate: Tensor<B>,
    up: Tensor<B>,
    down: Tensor<B>,
    post_feedforward_norm: Tensor<B>,
    sliding: bool,
}

pub struct Gemma2Encoder<B: Backend> {
    pub config: Gemma2Config,
    /// Parameters loaded.
    pub parameter_count: usize,
    embed_tokens: Tensor<B>,
    layers: Vec<Layer<B>>,
    norm: Tensor<B>,
}

/// Gemma's RMSNorm multiplies by (1 + w). The weight is kept as stored and the 1 added in f32 by
/// the op (NormWeight::OnePlus), as transformers does: folding it in at load would round 1 + w to
/// bf16 on the GPU, 4× coarser than w itself.
fn norm_weight<B: Backend>(w: &WeightLoader<B>, name: &str, dim: usize) -> Result<Tensor<B>> {
    w.tensor(name, &[dim])
}

impl<B: Backend> Gemma2Encoder<B> {
    /// Loads `text_encoder/` of a model folder: a `Gemma2Model` checkpoint, or a causal-LM one
    /// whose decoder tensors carry a `model.` prefix.
    pub fn from_folder(be: &B, folder: &ModelFolder) -> Result<Self> {
        let config = Gemma2Config::from_file(&folder.component_config("text_encoder")?)?;
        let files = folder.component_weights("text_encoder")?;
        let prefix = if files.contains("model.embed_tokens.weight") { "model" } else { "" };
        Self::load(be, config, &WeightSource::Files(files), prefix)
    }

    /// A decoder at `config_path`'s architecture with seeded random weights (real-size checks).
    pub fn random(be: &B, config_path: &std::path::Path, seed: u64) -> Result<Self> {
        let config = Gemma2Config::from_file(&ConfigFile::open(config_path)?)?;
        Self::load(be, config, &WeightSource::Random { seed }, "")
    }

    pub fn load(be: &B, config: Gemma2Config, source: &WeightSource, prefix: &str) -> Result<Self> {
        let log = RefCell::new(LoadLog::default());
        let root = WeightLoader::new(be, source, &log);
        let w = if prefix.is_empty() { root } else { root.pp(prefix) };
        let (h, hd) = (config.hidden_size, config.head_dim);
        let (q_dim, kv_dim, ff) =
            (config.num_attention_heads * hd, config.num_key_value_heads * hd, config.intermediate_size);
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let l = w.pp(format!("layers.{i}"));
                Ok(Layer {
                    input_norm: norm_weight(&l, "input_layernorm.weight", h)?,
                    q: l.tensor("self_attn.q_proj.weight", &[q_dim, h])?,
                    k: l.tensor("self_attn.k_proj.weight", &[kv_dim, h])?,
                    v: l.tensor("self_attn.v_proj.weight", &[kv_dim, h])?,
                    o: l.tensor("self_attn.o_proj.weight", &[h, q_dim])?,
                    post_attention_norm: norm_weight(&l, "post_attention_layernorm.weight", h)?,
                    pre_feedforward_norm: norm_weight(&l, "pre_feedforward_layernorm.weight", h)?,
                    gate: l.tensor("mlp.gate_proj.weight", &[ff, h])?,
                    up: l.tensor("mlp.up_proj.weight", &[ff, h])?,
                    down: l.tensor("mlp.down_proj.weight", &[h, ff])?,
                    post_feedforward_norm: norm_weight(&l, "post_feedforward_layernorm.weight", h)?,
                    sliding: config.sliding_layers[i],
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let embed_tokens = w.tensor("embed_tokens.weight", &[config.vocab_size, h])?;
        let norm = norm_weight(&w, "norm.weight", h)?;
        let parameter_count = log.borrow().parameters;
        Ok(Gemma2Encoder { embed_tokens, norm, layers, config, parameter_count })
    }

    /// last_hidden_state (B, L, hidden) for token ids (B·L) and a 0/1 key mask (B·L).
    pub fn forward(&self, be: &B, ids: &[u32], mask: &[f32], batch: usize) -> Result<Tensor<B>> {
        let c = &self.config;
        if batch == 0 || !ids.len().is_multiple_of(batch) || mask.len() != ids.len() {
            return Err(Error::InputShape {
                name: "input_ids".into(),
                expected: format!("B·L ids and as many mask values, B = {batch}"),
                got: format!("{} ids, {} mask values", ids.len(), mask.len()),
            });
        }
        let (l, h, hd) = (ids.len() / batch, c.hidden_size, c.head_dim);
        let (heads, kv_heads) = (c.num_attention_heads, c.num_key_value_heads);
        let eps = c.rms_norm_eps as f32;

        // embeddings × √hidden into the f32 residual stream x (B·L, hidden).
        // Gemma2TextScaledWordEmbedding casts the scale to the weight dtype: √hidden rounded to f32
        // for an f32 model, as here on every backend (a bf16 model rounds it to bf16, exact for
        // Gemma-2-2B's √2304 = 48, and rounds the product, which we keep in f32).
        let mut x = be.alloc_table(batch * l * h)?;
        ops::gather_rows_f32(be, &mut x, &self.embed_tokens, ids, (h as f64).sqrt() as f32)?;
        let rope = rope_tables(be, hd, l, c.rope_theta)?;
        let key_mask = be.upload_table(mask.to_vec())?;
        let scale = c.query_pre_attn_scalar.powf(-0.5) as f32;
        let softcap = c.attn_logit_softcapping.map(|s| s as f32);

        let t = |shape: &[usize]| Tensor::empty(be, shape);
        let (mut normed, mut proj) = (t(&[batch, l, h])?, t(&[batch, l, h])?);
        let (mut q, mut q_rot, mut attn) =
            (t(&[batch, l, heads * hd])?, t(&[batch, l, heads * hd])?, t(&[batch, l, heads * hd])?);
        let (mut k, mut k_rot, mut v) =
            (t(&[batch, l, kv_heads * hd])?, t(&[batch, l, kv_heads * hd])?, t(&[batch, l, kv_heads * hd])?);
        let ff = c.intermediate_size;
        let (mut gate, mut up, mut prod) = (t(&[batch, l, ff])?, t(&[batch, l, ff])?, t(&[batch, l, ff])?);
        let id = Activation::Identity;
        for layer in &self.layers {
            // attention block
            ops::rms_norm_f32_input(be, &mut normed, &x, &layer.input_norm, eps, NormWeight::OnePlus)?;
            ops::linear(be, &mut q, &normed, &layer.q, None, id, Write::Overwrite)?;
            ops::linear(be, &mut k, &normed, &layer.k, None, id, Write::Overwrite)?;
            ops::linear(be, &mut v, &normed, &layer.v, None, id, Write::Overwrite)?;
            ops::rope_rotate_half(be, &mut q_rot, &q, &rope, heads)?;
            ops::rope_rotate_half(be, &mut k_rot, &k, &rope, kv_heads)?;
            let window = if layer.sliding { c.sliding_window } else { None };
            ops::causal_attention(
                be, &mut attn, &q_rot, &k_rot, &v, &key_mask, heads, kv_heads, scale, softcap, window,
            )?;
            ops::linear(be, &mut proj, &attn, &layer.o, None, id, Write::Overwrite)?;
            ops::normed_residual_f32(be, &mut x, &proj, &layer.post_attention_norm, eps, NormWeight::OnePlus)?;
            // GeGLU block
            ops::rms_norm_f32_input(be, &mut normed, &x, &layer.pre_feedforward_norm, eps, NormWeight::OnePlus)?;
            ops::linear(be, &mut gate, &normed, &layer.gate, None, Activation::GeluTanh, Write::Overwrite)?;
            ops::linear(be, &mut up, &normed, &layer.up, None, id, Write::Overwrite)?;
            ops::multiply(be, &mut prod, &gate, &up)?;
            ops::linear(be, &mut proj, &prod, &layer.down, None, id, Write::Overwrite)?;
            ops::normed_residual_f32(be, &mut x, &proj, &layer.post_feedforward_norm, eps, NormWeight::OnePlus)?;
        }
        ops::rms_norm_f32_input(be, &mut normed, &x, &self.norm, eps, NormWeight::OnePlus)?;
        Ok(normed)
    }
}

/// Rotate-half RoPE tables (L, hd/2), in f32 as transformers computes them:
/// inv_freq_i = 1 / θ^(2i/hd), angle = position · inv_freq_i.
fn rope_tables<B: Backend>(be: &B, head_dim: usize, len: usize, theta: f64) -> Result<RopeTables<B>> {
    let half = head_dim / 2;
    let theta = theta as f32;
    let inv: Vec<f32> = (0..half).map(|i| 1.0 / theta.powf((2 * i) as f32 / head_dim as f32)).collect();
    let (mut cos, mut sin) = (Vec::with_capacity(len * half), Vec::with_capacity(len * half));
    for pos in 0..len {
        for &f in &inv {
            let angle = pos as f32 * f;
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    Ok(RopeTables { cos: be.upload_table(cos)?, sin: be.upload_table(sin)? })
}
