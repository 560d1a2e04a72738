//! `vae/config.json` of an LTX-2 autoencoder (diffusers 0.42.1 `AutoencoderKLLTX2Video`,
//! MODEL.md §3.1–3.2), read key by key. Variants no released LTX-2 VAE uses (timestep
//! conditioning, noise injection, strided-conv downsampling, temporal patches) are refused by name
//! rather than run wrongly.

use serde::Deserialize;

use crate::backend::PadMode;
use crate::error::{Error, Result};
use crate::io::ConfigFile;

pub const CLASS_NAME: &str = "AutoencoderKLLTX2Video";

/// Which axes one down- or upsampler scales by 2: diffusers' `downsample_type` / `upsample_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resampling {
    Spatial,
    Temporal,
    Spatiotemporal,
}

impl Resampling {
    fn parse(path: &std::path::Path, key: &str, s: &str) -> Result<Self> {
        match s {
            "spatial" => Ok(Resampling::Spatial),
            "temporal" => Ok(Resampling::Temporal),
            "spatiotemporal" => Ok(Resampling::Spatiotemporal),
            "conv" => Err(Error::config_key(
                path,
                key,
                "has \"conv\" (a strided 3×3×3 conv, LTX-Video 0.9.0's downsampler), which no LTX-2 VAE uses and \
                 this engine does not implement; expected spatial, temporal or spatiotemporal",
            )),
            other => Err(Error::config_key(
                path,
                key,
                format!("has {other:?}, expected spatial, temporal or spatiotemporal"),
            )),
        }
    }

    /// (st, sh, sw).
    pub fn stride(self) -> [usize; 3] {
        match self {
            Resampling::Spatial => [1, 2, 2],
            Resampling::Temporal => [2, 1, 1],
            Resampling::Spatiotemporal => [2, 2, 2],
        }
    }
}

/// How a convolution pads time (MODEL.md §3.2): `Causal` replicates the first frame k − 1
/// times before the clip; `Centered` replicates the first and the last (k − 1)/2 times each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimePadding {
    Causal,
    Centered,
}

impl TimePadding {
    /// Frames a kernel-3 conv's input is padded with (before the clip's first, after its last).
    pub fn frames(self) -> (usize, usize) {
        match self {
            TimePadding::Causal => (2, 0),
            TimePadding::Centered => (1, 1),
        }
    }
}

/// One of diffusers' `bool | tuple[bool, ...]` keys.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ltx2Config {
    pub in_channels: usize,
    pub out_channels: usize,
    pub latent_channels: usize,
    pub block_out_channels: Vec<usize>,
    /// One per down block, then the mid block's.
    pub layers_per_block: Vec<usize>,
    /// Per down block: its downsampler, or none (`spatio_temporal_scaling` false).
    pub downsamplers: Vec<Option<Resampling>>,
    pub decoder_block_out_channels: Vec<usize>,
    /// The mid block's first, then one per up block, in the encoder's order (diffusers reverses).
    pub decoder_layers_per_block: Vec<usize>,
    /// Per up block in the encoder's order: its upsampler (type, residual, factor), or none.
    pub upsamplers: Vec<Option<(Resampling, bool, usize)>>,
    pub patch_size: usize,
    pub encoder_time: TimePadding,
    pub decoder_time: TimePadding,
    pub encoder_spatial_padding: PadMode,
    pub decoder_spatial_padding: PadMode,
}

impl Ltx2Config {
    pub fn from_file(cfg: &ConfigFile) -> Result<Self> {
        cfg.expect_class(&[CLASS_NAME])?;
        let path = cfg.path.clone();
        let bad = |key: &str, why: String| Error::config_key(&path, key, why);
        // diffusers' defaults (autoencoder_kl_ltx2.py) for keys a config may leave out
        let list = |key: &str, n: usize, default: bool| -> Result<Vec<bool>> {
            Ok(match cfg.get_or::<OneOrMany<bool>>(key, OneOrMany::One(default))? {
                OneOrMany::One(b) => vec![b; n],
                OneOrMany::Many(v) if v.len() == n => v,
                OneOrMany::Many(v) => return Err(bad(key, format!("has {} entries, expected {n}", v.len()))),
            })
        };
        let strings = |key: &str, n: usize| -> Result<Vec<String>> {
            let v: Vec<String> = cfg.get(key)?;
            if v.len() != n {
                return Err(bad(key, format!("has {} entries, expected {n}", v.len())));
            }
            Ok(v)
        };

        let block_out_channels: Vec<usize> = cfg.get("block_out_channels")?;
        let blocks = block_out_channels.len();
        let layers_per_block: Vec<usize> = cfg.get("layers_per_block")?;
        if layers_per_block.len() != blocks + 1 {
            return Err(bad(
                "layers_per_block",
                format!(
                    "has {} entries, expected one per down block plus the mid block's ({})",
                    layers_per_block.len(),
                    blocks + 1
                ),
            ));
        }
        for (i, t) in strings("down_block_types", blocks)?.iter().enumerate() {
            if t != "LTX2VideoDownBlock3D" {
                return Err(bad("down_block_types", format!("entry {i} is {t:?}, expected \"LTX2VideoDownBlock3D\"")));
            }
        }
        let scaling = list("spatio_temporal_scaling", blocks, true)?;
        let down_types = strings("downsample_type", blocks)?;
        let downsamplers = scaling
            .iter()
            .zip(&down_types)
            .map(|(&on, t)| Ok(if on { Some(Resampling::parse(&path, "downsample_type", t)?) } else { None }))
            .collect::<Result<Vec<_>>>()?;

        let decoder_block_out_channels: Vec<usize> = cfg.get("decoder_block_out_channels")?;
        let up_blocks = decoder_block_out_channels.len();
        let decoder_layers_per_block: Vec<usize> = cfg.get("decoder_layers_per_block")?;
        if decoder_layers_per_block.len() != up_blocks + 1 {
            return Err(bad(
                "decoder_layers_per_block",
                format!(
                    "has {} entries, expected one per up block plus the mid block's ({})",
                    decoder_layers_per_block.len(),
                    up_blocks + 1
                ),
            ));
        }
        let up_scaling = list("decoder_spatio_temporal_scaling", up_blocks, true)?;
        let residual = list("upsample_residual", up_blocks, true)?;
        let up_types = strings("upsample_type", up_blocks)?;
        let factors: Vec<usize> = cfg.get_or("upsample_factor", vec![2; up_blocks])?;
        if factors.len() != up_blocks || factors.contains(&0) {
            return Err(bad("upsample_factor", format!("is {factors:?}, expected {up_blocks} positive entries")));
        }
        let mut upsamplers = Vec::with_capacity(up_blocks);
        for i in 0..up_blocks {
            upsamplers.push(if up_scaling[i] {
                Some((Resampling::parse(&path, "upsample_type", &up_types[i])?, residual[i], factors[i]))
            } else {
                None
            });
        }
        if list("decoder_inject_noise", up_blocks + 1, false)?.contains(&true) {
            return Err(bad(
                "decoder_inject_noise",
                "has a true entry (noise added inside the decoder, LTX-Video 0.9.1's); no LTX-2 VAE injects noise \
                 and this engine does not implement it"
                    .into(),
            ));
        }
        if cfg.get_or("timestep_conditioning", false)? {
            return Err(bad(
                "timestep_conditioning",
                "is true (a decoder conditioned on a denoising timestep, LTX-Video 0.9.1's); the LTX-2 VAE has it \
                 false and this engine does not implement it"
                    .into(),
            ));
        }
        if cfg.get_or("patch_size_t", 1)? != 1 {
            return Err(bad(
                "patch_size_t",
                "is not 1: diffusers' encoder sizes conv_in for spatial patches only (in_channels · patch_size²), \
                 so only 1 is consistent"
                    .into(),
            ));
        }
        let scaling_factor: f64 = cfg.get_or("scaling_factor", 1.0)?;
        if scaling_factor != 1.0 {
            return Err(bad(
                "scaling_factor",
                format!("is {scaling_factor}; the LTX-2 VAE's is 1.0 and only that is supported"),
            ));
        }
        let time = |key: &str, default: bool| -> Result<TimePadding> {
            Ok(if cfg.get_or(key, default)? { TimePadding::Causal } else { TimePadding::Centered })
        };
        let padding = |key: &str, default: &str| -> Result<PadMode> {
            match cfg.get_or::<String>(key, default.to_string())?.as_str() {
                "zeros" => Ok(PadMode::Zeros),
                "reflect" => Ok(PadMode::Reflect),
                other => Err(bad(key, format!("is {other:?}, expected \"zeros\" or \"reflect\""))),
            }
        };
        let c = Ltx2Config {
            in_channels: cfg.get_or("in_channels", 3)?,
            out_channels: cfg.get_or("out_channels", 3)?,
            latent_channels: cfg.get_or("latent_channels", 128)?,
            block_out_channels,
            layers_per_block,
            downsamplers,
            decoder_block_out_channels,
            decoder_layers_per_block,
            upsamplers,
            patch_size: cfg.get_or("patch_size", 4)?,
            encoder_time: time("encoder_causal", true)?,
            // diffusers' class default is causal; the released config says false
            decoder_time: time("decoder_causal", true)?,
            encoder_spatial_padding: padding("encoder_spatial_padding_mode", "zeros")?,
            decoder_spatial_padding: padding("decoder_spatial_padding_mode", "reflect")?,
        };
        if c.decoder_temporal_factor() != c.temporal_factor() || c.decoder_spatial_factor() != c.spatial_factor() {
            return Err(bad(
                "upsample_type",
                format!(
                    "makes the decoder scale by {}× in time and {}× in space, but the encoder reduces by {}× and {}×",
                    c.decoder_temporal_factor(),
                    c.decoder_spatial_factor(),
                    c.temporal_factor(),
                    c.spatial_factor()
                ),
            ));
        }
        // diffusers derives missing ratios from a formula that assumes every block scales both
        // ways (64 and 16 for the release); the released config states 32 and 8, which is what
        // the network does. A config that disagrees with its own network is refused.
        for (key, ours) in
            [("spatial_compression_ratio", c.spatial_factor()), ("temporal_compression_ratio", c.temporal_factor())]
        {
            if let Some(stated) = cfg.get_or::<Option<usize>>(key, None)? {
                if stated != ours {
                    return Err(bad(key, format!("is {stated}, but the down blocks give {ours}")));
                }
            }
        }
        Ok(c)
    }

    /// Frames per latent frame after the first (8 in LTX-2: three temporal halvings).
    pub fn temporal_factor(&self) -> usize {
        self.downsamplers.iter().flatten().map(|r| r.stride()[0]).product()
    }

    /// Pixels per latent pixel along height and width (32 in LTX-2: 4×4 patches, three halvings).
    pub fn spatial_factor(&self) -> usize {
        self.patch_size * self.downsamplers.iter().flatten().map(|r| r.stride()[1]).product::<usize>()
    }

    fn decoder_temporal_factor(&self) -> usize {
        self.upsamplers.iter().flatten().map(|(r, _, _)| r.stride()[0]).product()
    }

    fn decoder_spatial_factor(&self) -> usize {
        self.patch_size * self.upsamplers.iter().flatten().map(|(r, _, _)| r.stride()[1]).product::<usize>()
    }
}
