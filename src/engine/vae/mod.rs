//! Video autoencoders (MODEL.md §3): latents ↔ frames. The Wan2.1 VAE (480p model) so far; the
//! LTX-2 VAE (720p model, refiner) is next. Clips are channels-last on the backend and streamed
//! over time (see `clip`).

pub mod clip;
pub mod wan;

pub use wan::{check_frame_count, WanConfig, WanVae};

use crate::backend::Backend;
use crate::engine::progress::Progress;
use crate::error::{Error, Result};
use crate::io::ModelFolder;

/// The autoencoder of a model folder's `vae/`, chosen by its `_class_name`.
pub enum VideoVae<B: Backend> {
    Wan(WanVae<B>),
}

impl<B: Backend> VideoVae<B> {
    pub fn from_folder(be: &B, folder: &ModelFolder) -> Result<Self> {
        let config = folder.component_config("vae")?;
        let class = config.expect_class(&[wan::CLASS_NAME, "AutoencoderKLLTX2Video"])?;
        match class.as_str() {
            wan::CLASS_NAME => Ok(VideoVae::Wan(WanVae::from_folder(be, folder)?)),
            _ => Err(Error::config_key(
                &config.path,
                "_class_name",
                "is AutoencoderKLLTX2Video (the 720p model's VAE), which is not built yet (issue 5): \
                 decoding and encoding work with the 480p model's Wan2.1 VAE today",
            )),
        }
    }

    /// Per-channel (mean, std) the pipelines normalise latents with: the transformer sees
    /// (z − mean) / std.
    pub fn latent_statistics(&self) -> (&[f32], &[f32]) {
        match self {
            VideoVae::Wan(v) => (&v.config.latents_mean, &v.config.latents_std),
        }
    }

    /// Frames per latent frame after the first, and pixels per latent pixel.
    pub fn factors(&self) -> (usize, usize) {
        match self {
            VideoVae::Wan(v) => (v.config.temporal_factor(), v.config.spatial_factor()),
        }
    }

    /// VAE latents (B, C, T, h, w) → video (B, 3, F, H, W) in [−1, 1].
    pub fn decode(
        &self,
        be: &B,
        z: &[f32],
        shape: [usize; 5],
        progress: &dyn Progress,
    ) -> Result<(Vec<f32>, [usize; 5])> {
        match self {
            VideoVae::Wan(v) => v.decode(be, z, shape, progress),
        }
    }

    /// Video (B, 3, F, H, W) in [−1, 1] → VAE latents (the posterior mean).
    pub fn encode(
        &self,
        be: &B,
        video: &[f32],
        shape: [usize; 5],
        progress: &dyn Progress,
    ) -> Result<(Vec<f32>, [usize; 5])> {
        match self {
            VideoVae::Wan(v) => v.encode(be, video, shape, progress),
        }
    }
}
