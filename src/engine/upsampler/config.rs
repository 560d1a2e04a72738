//! `config.json` of an LTX-2 latent upsampler (diffusers 0.42.1 `LTX2LatentUpsamplerModel`,
//! `pipelines/ltx2/latent_upsampler.py`; MODEL.md §8.3), read key by key. Only the released
//! variant runs: 3D convs, spatial ×2 through the rational resampler at scale 2.0. The others
//! (temporal or spatiotemporal upsampling, 2D convs, scales 0.75 / 1.5 / 4.0 with their blur
//! downsample) are refused by name rather than run wrongly.

use crate::error::{Error, Result};
use crate::io::ConfigFile;

pub const CLASS_NAME: &str = "LTX2LatentUpsamplerModel";

/// diffusers hard-codes `torch.nn.GroupNorm(32, channels)` for every norm of the model.
pub const GROUPS: usize = 32;
/// PyTorch's GroupNorm default, which diffusers does not override.
pub const GROUP_NORM_EPS: f32 = 1e-5;

#[derive(Clone, Debug, PartialEq)]
pub struct UpsamplerConfig {
    /// Latent channels in and out (128: the LTX-2 VAE's).
    pub in_channels: usize,
    /// Width of every ResBlock (1024 in the release); a multiple of [`GROUPS`].
    pub mid_channels: usize,
    /// ResBlocks before and after the upsampling (4 each in the release).
    pub num_blocks_per_stage: usize,
}

impl UpsamplerConfig {
    pub fn from_file(cfg: &ConfigFile) -> Result<Self> {
        cfg.expect_class(&[CLASS_NAME])?;
        let bad = |key: &str, why: String| Error::config_key(&cfg.path, key, why);
        // defaults are the diffusers class's (latent_upsampler.py `__init__`)
        let dims: usize = cfg.get_or("dims", 3)?;
        if dims != 3 {
            return Err(bad(
                "dims",
                format!("is {dims}; the released upsampler uses 3D convolutions (3) and only that is implemented"),
            ));
        }
        let spatial: bool = cfg.get_or("spatial_upsample", true)?;
        let temporal: bool = cfg.get_or("temporal_upsample", false)?;
        if !spatial || temporal {
            return Err(bad(
                if temporal { "temporal_upsample" } else { "spatial_upsample" },
                format!(
                    "is {}; only the spatial ×2 upsampler (spatial_upsample true, temporal_upsample false) is \
                     implemented",
                    if temporal { temporal } else { spatial }
                ),
            ));
        }
        if !cfg.get_or("use_rational_resampler", true)? {
            return Err(bad(
                "use_rational_resampler",
                "is false (a plain Conv2d + pixel shuffle under `upsampler.0`); the released upsampler uses the \
                 rational resampler and only that layout is implemented"
                    .into(),
            ));
        }
        let scale: f64 = cfg.get_or("rational_spatial_scale", 2.0)?;
        if scale != 2.0 {
            return Err(bad(
                "rational_spatial_scale",
                format!(
                    "is {scale}; only 2.0 (pixel shuffle ×2, no blur downsample) is implemented, not the 0.75, 1.5 or \
                     4.0 resamplers"
                ),
            ));
        }
        let c = UpsamplerConfig {
            in_channels: cfg.get_or("in_channels", 128)?,
            mid_channels: cfg.get_or("mid_channels", 1024)?,
            num_blocks_per_stage: cfg.get_or("num_blocks_per_stage", 4)?,
        };
        if c.in_channels == 0 {
            return Err(bad("in_channels", "is 0".into()));
        }
        if c.mid_channels == 0 || !c.mid_channels.is_multiple_of(GROUPS) {
            return Err(bad(
                "mid_channels",
                format!(
                    "is {}; GroupNorm({GROUPS}, mid_channels) needs a positive multiple of {GROUPS}",
                    c.mid_channels
                ),
            ));
        }
        Ok(c)
    }
}
