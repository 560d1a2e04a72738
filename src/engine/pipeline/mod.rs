//! The Base and Refine pipelines (MODEL.md §5, §6, §8). So far: resolution binning and Base's
//! text-to-video denoising loop (to latents).

pub mod base;
pub mod binning;
pub mod frames;
pub mod geometry;
pub mod job;
pub mod noise;
pub mod refine;
pub mod upscale;

/// A latent video on the host: (B, C, T, H, W) f32.
#[derive(Clone, Debug, PartialEq)]
pub struct LatentVideo {
    pub shape: [usize; 5],
    pub data: Vec<f32>,
}
