//! Latent geometry of a model folder (MODEL.md §3.1): how the VAE compresses frames and pixels,
//! read from `vae/config.json` (Wan2.1: `scale_factor_temporal/spatial`, `z_dim`; LTX-2:
//! `temporal/spatial_compression_ratio`, `latent_channels`), and the frame-count rule it imposes.

use crate::error::{Error, Result};
use crate::io::{ConfigFile, ModelFolder};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatentGeometry {
    pub temporal: usize,
    pub spatial: usize,
    pub channels: usize,
}

impl LatentGeometry {
    pub fn from_folder(folder: &ModelFolder) -> Result<Self> {
        let cfg = folder.component_config("vae")?;
        Self::from_config(&cfg)
    }

    pub fn from_config(cfg: &ConfigFile) -> Result<Self> {
        match cfg.expect_class(&["AutoencoderKLWan", "AutoencoderKLLTX2Video"])?.as_str() {
            "AutoencoderKLWan" => Ok(LatentGeometry {
                temporal: cfg.get("scale_factor_temporal")?,
                spatial: cfg.get("scale_factor_spatial")?,
                channels: cfg.get("z_dim")?,
            }),
            // the class derives other ratios when these are absent (MODEL.md §12.3): require them
            _ => Ok(LatentGeometry {
                temporal: cfg.get("temporal_compression_ratio")?,
                spatial: cfg.get("spatial_compression_ratio")?,
                channels: cfg.get("latent_channels")?,
            }),
        }
    }

    /// Latent (T, H, W) for a clip of `frames` frames at height × width: frames must be
    /// k·temporal + 1 and the size a multiple of 32 and of the spatial factor.
    pub fn latent_size(&self, frames: usize, height: usize, width: usize) -> Result<[usize; 3]> {
        if frames == 0 || !(frames - 1).is_multiple_of(self.temporal) {
            let below = (frames.saturating_sub(1) / self.temporal) * self.temporal + 1;
            return Err(Error::InputShape {
                name: "frames".into(),
                expected: format!("k·{} + 1 frames for this VAE: {below} or {}", self.temporal, below + self.temporal),
                got: frames.to_string(),
            });
        }
        let multiple = self.spatial.max(32);
        if height == 0 || width == 0 || !height.is_multiple_of(multiple) || !width.is_multiple_of(multiple) {
            return Err(Error::InputShape {
                name: "resolution".into(),
                expected: format!("height and width multiples of {multiple}"),
                got: format!("{height}x{width}"),
            });
        }
        Ok([(frames - 1) / self.temporal + 1, height / self.spatial, width / self.spatial])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_rule_names_the_nearest_counts() {
        let wan = LatentGeometry { temporal: 4, spatial: 8, channels: 16 };
        assert_eq!(wan.latent_size(81, 480, 832).unwrap(), [21, 60, 104]);
        let ltx = LatentGeometry { temporal: 8, spatial: 32, channels: 128 };
        assert_eq!(ltx.latent_size(81, 704, 1280).unwrap(), [11, 22, 40]);
        let e = ltx.latent_size(80, 704, 1280).unwrap_err().to_string();
        assert!(e.contains("73 or 81") && e.contains("80"), "{e}");
        assert!(wan.latent_size(81, 480, 830).unwrap_err().to_string().contains("multiples of 32"));
    }
}
