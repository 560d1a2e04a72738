//! Refine's optional ×2 latent upscale (MODEL.md §8.2 step 1): SANA's latents live in the
//! transformer's normalised space (z − mean)/std, the LTX-2 latent upsampler works on the VAE's
//! own latents, so the hand-off is denormalise → upsample → renormalise. As diffusers 0.42.1
//! computes it (`pipelines/ltx2/pipeline_ltx2_latent_upsample.py` `_denormalize_latents`, then
//! `pipeline_ltx2.py` `_normalize_latents`, scaling_factor 1): x = z·std/1 + mean,
//! upsampled y, out = (y − mean)·1/std, each step rounded in f32 in that order.

use super::LatentVideo;
use crate::backend::Backend;
use crate::engine::progress::Progress;
use crate::engine::upsampler::Ltx2LatentUpsampler;
use crate::error::{Error, Result};

/// Normalised latents (B, C, T, H, W) → normalised latents (B, C, T, 2H, 2W). `statistics` is the
/// VAE's per-channel (mean, std), as `VideoVae::latent_statistics` returns them.
pub fn upsample_latents<B: Backend>(
    be: &B,
    upsampler: &Ltx2LatentUpsampler<B>,
    statistics: (&[f32], &[f32]),
    latents: &LatentVideo,
    progress: &dyn Progress,
) -> Result<LatentVideo> {
    let (mean, std) = statistics;
    let [_, c, t, h, w] = latents.shape;
    if mean.len() != c || std.len() != c {
        return Err(Error::InputShape {
            name: "latent statistics".into(),
            expected: format!("{c} means and stds, one per channel of the latents {:?}", latents.shape),
            got: format!("{} means, {} stds", mean.len(), std.len()),
        });
    }
    if latents.data.len() != latents.shape.iter().product::<usize>() {
        return Err(Error::InputShape {
            name: "latents".into(),
            expected: format!("{} values for the shape {:?}", latents.shape.iter().product::<usize>(), latents.shape),
            got: format!("{} values", latents.data.len()),
        });
    }
    let plane = t * h * w;
    // channel of element i: (i / plane) mod C in the (B, C, T, H, W) layout
    let denormalised: Vec<f32> =
        latents.data.iter().enumerate().map(|(i, &z)| z * std[(i / plane) % c] + mean[(i / plane) % c]).collect();
    let (mut up, shape) = upsampler.upsample(be, &denormalised, latents.shape, progress)?;
    let up_plane = shape[2] * shape[3] * shape[4];
    for (i, y) in up.iter_mut().enumerate() {
        let ch = (i / up_plane) % c;
        *y = (*y - mean[ch]) / std[ch];
    }
    Ok(LatentVideo { shape, data: up })
}
