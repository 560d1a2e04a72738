//! `transformer/config.json` of a SANA-Video checkpoint (diffusers `SanaVideoTransformer3DModel`,
//! MODEL.md §2.1). Every key the forward depends on is required: a config that silently fell back
//! to a class default is how a checkpoint gets run with the wrong architecture.

use crate::error::{Error, Result};
use crate::io::ConfigFile;

pub const CLASS_NAME: &str = "SanaVideoTransformer3DModel";

#[derive(Clone, Debug, PartialEq)]
pub struct DitConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub num_layers: usize,
    pub num_attention_heads: usize,
    pub attention_head_dim: usize,
    pub num_cross_attention_heads: usize,
    pub cross_attention_head_dim: usize,
    pub cross_attention_dim: usize,
    pub caption_channels: usize,
    pub mlp_ratio: f64,
    /// Whether self-attention q/k/v projections carry a bias (false in the released models).
    pub attention_bias: bool,
    pub patch_size: [usize; 3],
    pub norm_eps: f64,
    pub rope_max_seq_len: usize,
    pub sample_size: usize,
}

impl DitConfig {
    pub fn from_file(cfg: &ConfigFile) -> Result<Self> {
        cfg.expect_class(&[CLASS_NAME])?;
        let in_channels: usize = cfg.get("in_channels")?;
        let c = DitConfig {
            in_channels,
            out_channels: cfg.get_or("out_channels", in_channels)?,
            num_layers: cfg.get("num_layers")?,
            num_attention_heads: cfg.get("num_attention_heads")?,
            attention_head_dim: cfg.get("attention_head_dim")?,
            num_cross_attention_heads: cfg.get("num_cross_attention_heads")?,
            cross_attention_head_dim: cfg.get("cross_attention_head_dim")?,
            cross_attention_dim: cfg.get("cross_attention_dim")?,
            caption_channels: cfg.get("caption_channels")?,
            mlp_ratio: cfg.get("mlp_ratio")?,
            attention_bias: cfg.get("attention_bias")?,
            patch_size: cfg.get("patch_size")?,
            norm_eps: cfg.get("norm_eps")?,
            rope_max_seq_len: cfg.get("rope_max_seq_len")?,
            sample_size: cfg.get("sample_size")?,
        };
        // Variants no released checkpoint uses: refuse them rather than compute something else.
        let unsupported = |key: &str, why: &str| Err(Error::config_key(&cfg.path, key, why.to_string()));
        let qk_norm: Option<String> = cfg.get("qk_norm")?;
        if qk_norm.as_deref() != Some("rms_norm_across_heads") {
            return unsupported("qk_norm", "must be \"rms_norm_across_heads\" (the only variant SANA-Video ships)");
        }
        if cfg.get::<bool>("norm_elementwise_affine")? {
            return unsupported("norm_elementwise_affine", "is true; SANA-Video's block norms have no affine weights");
        }
        if cfg.get_or::<bool>("guidance_embeds", false)? {
            return unsupported(
                "guidance_embeds",
                "is true; guidance-distilled SANA-Video checkpoints are not supported",
            );
        }
        if cfg.get_or::<f64>("dropout", 0.0)? != 0.0 {
            return unsupported("dropout", "is not 0; inference checkpoints have no dropout");
        }
        c.validate().map_err(|why| Error::config_key(&cfg.path, why.0, why.1))?;
        Ok(c)
    }

    /// Internal consistency of the dimensions, as (key, problem).
    fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        let d = self.inner_dim();
        if d == 0 || self.in_channels == 0 || self.num_layers == 0 {
            return Err(("num_attention_heads", "gives a zero width model".into()));
        }
        if !self.attention_head_dim.is_multiple_of(2) || self.attention_head_dim < 6 {
            return Err((
                "attention_head_dim",
                format!("{} must be even and >= 6 for the 3D RoPE", self.attention_head_dim),
            ));
        }
        if self.num_cross_attention_heads * self.cross_attention_head_dim != d {
            return Err((
                "cross_attention_head_dim",
                format!(
                    "{} heads x {} must equal the inner dim {d}",
                    self.num_cross_attention_heads, self.cross_attention_head_dim
                ),
            ));
        }
        if self.cross_attention_dim != d {
            return Err((
                "cross_attention_dim",
                format!("{} must equal the inner dim {d} (captions are projected to it)", self.cross_attention_dim),
            ));
        }
        if self.patch_size.contains(&0) {
            return Err(("patch_size", format!("{:?} has a zero", self.patch_size)));
        }
        Ok(())
    }

    /// D = heads × head_dim.
    pub fn inner_dim(&self) -> usize {
        self.num_attention_heads * self.attention_head_dim
    }

    /// F: the Mix-FFN hidden width, `int(mlp_ratio · D)` as diffusers computes it.
    pub fn ffn_hidden(&self) -> usize {
        (self.mlp_ratio * self.inner_dim() as f64) as usize
    }

    pub fn patch_volume(&self) -> usize {
        self.patch_size.iter().product()
    }

    /// FLOPs of one forward (multiply-add = 2) in the matrix products and attention: per block
    /// the projections 2·D²·(3 + 1 + 1 + 1 + 3·r + 3) per token (qkv, attn out, cross q, cross out,
    /// the FFN's inverted/point convs at ratio r, the temporal conv's 3 taps), the caption K/V
    /// 2·2·L·D², the cross-attention scores and sum 2·2·N·L·D and the linear attention state and
    /// output 2·2·N·D·d. Embeddings and the final layer are left out (< 0.1%).
    pub fn forward_flops(&self, batch: usize, tokens: usize, caption_len: usize) -> f64 {
        let d = self.inner_dim() as f64;
        let f = self.ffn_hidden() as f64;
        let (n, l) = (tokens as f64, caption_len as f64);
        let projections = 2.0 * n * (6.0 * d * d + 3.0 * f * d + 3.0 * d * d);
        let caption_kv = 4.0 * l * d * d;
        let cross = 4.0 * n * l * d;
        let linear_attn = 4.0 * n * d * self.attention_head_dim as f64;
        batch as f64 * self.num_layers as f64 * (projections + caption_kv + cross + linear_attn)
    }

    /// Parameters a checkpoint of this architecture holds (MODEL.md §2.9), without loading it.
    /// Tests hold this equal to what the loader reads and to diffusers' own count.
    pub fn parameter_count(&self) -> usize {
        let d = self.inner_dim();
        let f = self.ffn_hidden();
        let dc = self.cross_attention_dim;
        let qkv_bias = if self.attention_bias { 3 * d } else { 0 };
        let self_attn = 3 * d * d + qkv_bias + 2 * d + d * d + d;
        let cross_attn = (d * d + d) + 2 * (d * dc + d) + 2 * d + (d * d + d);
        let ffn = (2 * f * d + 2 * f) + (2 * f * 9 + 2 * f) + d * f + 3 * d * d;
        let block = 6 * d + self_attn + cross_attn + ffn;
        let out = self.patch_volume() * self.out_channels;
        let top = (d * self.in_channels * self.patch_volume() + d)
            + (d * 256 + d)
            + (d * d + d)
            + (6 * d * d + 6 * d)
            + (d * self.caption_channels + d)
            + (d * d + d)
            + d
            + 2 * d
            + (out * d + out);
        top + self.num_layers * block
    }
}
