//! Between the transformer's latent space and pixels, as the SANA-Video pipelines do it
//! (MODEL.md §3.1, §6): latents are normalised per channel, z_model = (z − mean) / std; decoding
//! undoes that and runs the VAE; image-to-video encodes the conditioning image the other way.

use super::LatentVideo;
use crate::backend::Backend;
use crate::engine::progress::Progress;
use crate::engine::vae::VideoVae;
use crate::error::{Error, Result};

/// A decoded clip on the host: (B, 3, F, H, W) in [−1, 1] (clamped, as the VAE returns it).
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedVideo {
    pub shape: [usize; 5],
    pub data: Vec<f32>,
}

impl DecodedVideo {
    /// Sample `b` as (3, F, H, W) values, for `io::frames_from_video`.
    pub fn sample(&self, b: usize) -> (&[f32], [usize; 4]) {
        let [_, c, f, h, w] = self.shape;
        (&self.data[b * c * f * h * w..][..c * f * h * w], [c, f, h, w])
    }
}

/// Transformer-space latents → pixels: z = z_model · std + mean per channel, then the VAE.
pub fn decode_latents<B: Backend>(
    be: &B,
    vae: &VideoVae<B>,
    latents: &LatentVideo,
    progress: &dyn Progress,
) -> Result<DecodedVideo> {
    let (mean, std) = vae.latent_statistics();
    let z = map_channels(latents, mean.len(), |c, v| v * std[c] + mean[c])?;
    let (data, shape) = vae.decode(be, &z, latents.shape, progress)?;
    Ok(DecodedVideo { shape, data })
}

/// `decode_latents`, then back to the size the user asked for when binning changed it (diffusers
/// `resize_and_crop_tensor`: scale to cover, bilinear, centre crop), as the pipelines return it.
pub fn decode_to_size<B: Backend>(
    be: &B,
    vae: &VideoVae<B>,
    latents: &LatentVideo,
    (height, width): (usize, usize),
    progress: &dyn Progress,
) -> Result<DecodedVideo> {
    let video = decode_latents(be, vae, latents, progress)?;
    let [b, c, f, h, w] = video.shape;
    if (h, w) == (height, width) {
        return Ok(video);
    }
    let data = super::binning::resize_and_center_crop(&video.data, b * c * f, [h, w], height, width);
    Ok(DecodedVideo { shape: [b, c, f, height, width], data })
}

/// The first `frames` frames and the top-left `height × width` of a decoded clip: how a padded
/// plate's result is cut back to the plate (refine_job::PlateFit pads at the end).
pub fn crop_video(video: &DecodedVideo, [frames, height, width]: [usize; 3]) -> Result<DecodedVideo> {
    let [b, c, f, h, w] = video.shape;
    if frames > f || height > h || width > w {
        return Err(Error::InputShape {
            name: "crop".into(),
            expected: format!("at most the clip's {f} frames of {h}x{w}"),
            got: format!("{frames} frames of {height}x{width}"),
        });
    }
    let mut data = Vec::with_capacity(b * c * frames * height * width);
    for plane in 0..b * c {
        for t in 0..frames {
            for y in 0..height {
                data.extend_from_slice(&video.data[((plane * f + t) * h + y) * w..][..width]);
            }
        }
    }
    Ok(DecodedVideo { shape: [b, c, frames, height, width], data })
}

/// Pixels (B, 3, F, H, W) in [−1, 1] → transformer-space latents (the posterior mean, then
/// (z − mean) / std), as the image-to-video pipeline encodes its first frame.
pub fn encode_video<B: Backend>(
    be: &B,
    vae: &VideoVae<B>,
    video: &[f32],
    shape: [usize; 5],
    progress: &dyn Progress,
) -> Result<LatentVideo> {
    let (z, z_shape) = vae.encode(be, video, shape, progress)?;
    let (mean, std) = vae.latent_statistics();
    let raw = LatentVideo { shape: z_shape, data: z };
    Ok(LatentVideo { shape: z_shape, data: map_channels(&raw, mean.len(), |c, v| (v - mean[c]) / std[c])? })
}

fn map_channels(x: &LatentVideo, channels: usize, f: impl Fn(usize, f32) -> f32) -> Result<Vec<f32>> {
    let [_, c, t, h, w] = x.shape;
    if c != channels {
        return Err(Error::InputShape {
            name: "latents".into(),
            expected: format!("{channels} channels (the VAE's latent channels)"),
            got: format!("shape {:?}", x.shape),
        });
    }
    let plane = t * h * w;
    Ok(x.data.iter().enumerate().map(|(i, &v)| f((i / plane) % c, v)).collect())
}
