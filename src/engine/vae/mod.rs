//! Video autoencoders (MODEL.md §3): latents ↔ frames. The Wan2.1 VAE (480p model) and the
//! LTX-2 VAE (720p model). Clips are channels-last on the backend; the Wan VAE streams them over
//! time (see `clip`), the LTX-2 VAE tiles its decode in space and streams its encode in time
//! past a memory budget (see `ltx2`).

pub mod clip;
pub mod ltx2;
pub mod wan;

pub use ltx2::{Ltx2Config, Ltx2Vae};
pub use wan::{check_frame_count, WanConfig, WanVae};

use crate::backend::Backend;
use crate::engine::progress::Progress;
use crate::error::Result;
use crate::io::ModelFolder;

/// The mean half of a posterior's parameters (B, 2C, T, h, w) — each sample's first C channels,
/// diffusers' `latent_dist.mean` — with its shape (B, C, T, h, w).
pub fn posterior_mean(params: &[f32], [b, c2, t, h, w]: [usize; 5]) -> (Vec<f32>, [usize; 5]) {
    let c = c2 / 2;
    let mean = params.chunks(c2 * t * h * w).take(b).flat_map(|p| &p[..c * t * h * w]).copied().collect();
    (mean, [b, c, t, h, w])
}

/// The autoencoder of a model folder's `vae/`, chosen by its `_class_name`.
pub enum VideoVae<B: Backend> {
    // boxed: the two models differ in size by a few kB of layer tables
    Wan(Box<WanVae<B>>),
    Ltx2(Box<Ltx2Vae<B>>),
}

impl<B: Backend> VideoVae<B> {
    pub fn from_folder(be: &B, folder: &ModelFolder) -> Result<Self> {
        let config = folder.component_config("vae")?;
        let class = config.expect_class(&[wan::CLASS_NAME, ltx2::CLASS_NAME])?;
        if class == wan::CLASS_NAME {
            Ok(VideoVae::Wan(Box::new(WanVae::from_folder(be, folder)?)))
        } else {
            Ok(VideoVae::Ltx2(Box::new(Ltx2Vae::from_folder(be, folder)?)))
        }
    }

    /// Per-channel (mean, std) the pipelines normalise latents with: the transformer sees
    /// (z − mean) / std. (LTX-2's also multiply by `scaling_factor`, which the config check
    /// holds at 1.0.)
    pub fn latent_statistics(&self) -> (&[f32], &[f32]) {
        match self {
            VideoVae::Wan(v) => (&v.config.latents_mean, &v.config.latents_std),
            VideoVae::Ltx2(v) => (&v.latents_mean, &v.latents_std),
        }
    }

    /// Plan the LTX-2 VAE's memory bounds (decode chunks and tiles, encode chunks) for `budget` instead of the
    /// device's free memory (a GPU shared with other jobs). The Wan VAE always streams in
    /// 4-frame chunks and has no such choice.
    pub fn set_memory_budget(&mut self, budget: ltx2::MemoryBudget) {
        if let VideoVae::Ltx2(v) = self {
            v.tiling = ltx2::Tiling::Auto { budget, tiles: ltx2::TileSpec::DIFFUSERS };
            v.encode_chunking = ltx2::Chunking::Auto { budget };
            v.decode_chunking = ltx2::Chunking::Auto { budget };
        }
    }

    /// Frames per latent frame after the first, and pixels per latent pixel.
    pub fn factors(&self) -> (usize, usize) {
        match self {
            VideoVae::Wan(v) => (v.config.temporal_factor(), v.config.spatial_factor()),
            VideoVae::Ltx2(v) => (v.config.temporal_factor(), v.config.spatial_factor()),
        }
    }

    /// VAE latents (B, C, T, h, w) → video (B, 3, F, H, W), nominally [−1, 1]: clamped there by
    /// the Wan VAE, not by LTX-2's (each as its diffusers `decode`; the pipelines clamp after
    /// mapping to [0, 1], so the frames agree).
    pub fn decode(
        &self,
        be: &B,
        z: &[f32],
        shape: [usize; 5],
        progress: &dyn Progress,
    ) -> Result<(Vec<f32>, [usize; 5])> {
        match self {
            VideoVae::Wan(v) => v.decode(be, z, shape, progress),
            VideoVae::Ltx2(v) => v.decode(be, z, shape, progress),
        }
    }

    /// Video (B, 3, F, H, W) in [−1, 1] → the posterior's parameters (B, 2C, T, h, w): mean |
    /// log-variance, as diffusers' `latent_dist.parameters`.
    pub fn encode_parameters(
        &self,
        be: &B,
        video: &[f32],
        shape: [usize; 5],
        progress: &dyn Progress,
    ) -> Result<(Vec<f32>, [usize; 5])> {
        match self {
            VideoVae::Wan(v) => v.encode_parameters(be, video, shape, progress),
            VideoVae::Ltx2(v) => v.encode_parameters(be, video, shape, progress),
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
            VideoVae::Ltx2(v) => v.encode(be, video, shape, progress),
        }
    }
}
