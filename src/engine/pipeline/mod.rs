//! The Base and Refine pipelines (MODEL.md §5, §6, §8): resolution binning and latent geometry,
//! Base's denoising loops and job, Refine's pass and job, and the frames ↔ latents mapping.

pub mod base;
pub mod binning;
pub mod frames;
pub mod geometry;
pub mod job;
pub mod noise;
pub mod refine;
pub mod refine_job;
pub mod upscale;

/// A latent video on the host: (B, C, T, H, W) f32.
#[derive(Clone, Debug, PartialEq)]
pub struct LatentVideo {
    pub shape: [usize; 5],
    pub data: Vec<f32>,
}
