//! `vae/config.json` of a Wan2.1 autoencoder (diffusers `AutoencoderKLWan`, MODEL.md §3.1–3.2).

use crate::error::{Error, Result};
use crate::io::ConfigFile;

pub const CLASS_NAME: &str = "AutoencoderKLWan";

#[derive(Clone, Debug, PartialEq)]
pub struct WanConfig {
    pub base_dim: usize,
    pub decoder_base_dim: usize,
    pub z_dim: usize,
    pub dim_mult: Vec<usize>,
    pub num_res_blocks: usize,
    /// Scales (1, 1/2, 1/4, …) after which the encoder inserts an attention block (none in Wan2.1).
    pub attn_scales: Vec<f64>,
    pub temperal_downsample: Vec<bool>,
    pub in_channels: usize,
    pub out_channels: usize,
    pub latents_mean: Vec<f32>,
    pub latents_std: Vec<f32>,
}

impl WanConfig {
    pub fn from_file(cfg: &ConfigFile) -> Result<Self> {
        cfg.expect_class(&[CLASS_NAME])?;
        let base_dim: usize = cfg.get("base_dim")?;
        let c = WanConfig {
            base_dim,
            decoder_base_dim: cfg.get::<Option<usize>>("decoder_base_dim")?.unwrap_or(base_dim),
            z_dim: cfg.get("z_dim")?,
            dim_mult: cfg.get("dim_mult")?,
            num_res_blocks: cfg.get("num_res_blocks")?,
            attn_scales: cfg.get("attn_scales")?,
            temperal_downsample: cfg.get("temperal_downsample")?,
            in_channels: cfg.get_or("in_channels", 3)?,
            out_channels: cfg.get_or("out_channels", 3)?,
            latents_mean: cfg.get("latents_mean")?,
            latents_std: cfg.get("latents_std")?,
        };
        let bad = |key: &str, why: String| Err(Error::config_key(&cfg.path, key, why));
        // Wan2.2's autoencoder (residual blocks, 2×2 patchify) is a different network.
        if cfg.get_or::<bool>("is_residual", false)? {
            return bad("is_residual", "is true (the Wan2.2 autoencoder); only Wan2.1's is supported".into());
        }
        if cfg.get_or::<Option<usize>>("patch_size", None)?.is_some() {
            return bad("patch_size", "is set (the Wan2.2 autoencoder); only Wan2.1's (null) is supported".into());
        }
        if c.dim_mult.is_empty() || c.temperal_downsample.len() + 1 != c.dim_mult.len() {
            return bad(
                "temperal_downsample",
                format!(
                    "has {} entries, expected one fewer than dim_mult ({})",
                    c.temperal_downsample.len(),
                    c.dim_mult.len()
                ),
            );
        }
        for (key, v) in [("latents_mean", &c.latents_mean), ("latents_std", &c.latents_std)] {
            if v.len() != c.z_dim {
                return bad(key, format!("has {} values, expected z_dim = {}", v.len(), c.z_dim));
            }
        }
        if c.latents_std.iter().any(|&s| s <= 0.0 || !s.is_finite()) {
            return bad("latents_std", "must be positive and finite".into());
        }
        Ok(c)
    }

    /// Frames per latent frame after the first (4 in Wan2.1: two temporal halvings).
    pub fn temporal_factor(&self) -> usize {
        1 << self.temperal_downsample.iter().filter(|&&d| d).count()
    }

    /// Pixels per latent pixel along height and width (8 in Wan2.1).
    pub fn spatial_factor(&self) -> usize {
        1 << (self.dim_mult.len() - 1)
    }
}
