//! The Wan2.1 video autoencoder (diffusers `AutoencoderKLWan`, MODEL.md §3.2), the 480p model's:
//! 8× spatial, 4× temporal, 16 latent channels. Encode runs the first frame alone, then chunks of
//! four; decode runs one latent frame at a time; causal state carries across chunks, so memory
//! stays at a few frames of the widest activation whatever the clip length.

mod blocks;
mod config;

pub use config::{WanConfig, CLASS_NAME};

use std::cell::RefCell;

use blocks::{AttentionBlock, Conv, Norm, ResBlock, Resample};

use super::clip::{
    download_channels_last, frames, sample_to_channels_last, upload_channels_last, write_channels_last, TemporalCaches,
};
use super::posterior_mean;
use crate::backend::{Activation, Backend, Tensor};
use crate::engine::progress::Progress;
use crate::engine::weights::{check_no_unknown_tensors, LoadLog, WeightLoader, WeightSource};
use crate::error::{Error, Result};
use crate::io::{ConfigFile, ModelFolder};

/// `WanMidBlock`: resnet, attention, resnet.
struct MidBlock<B: Backend> {
    res0: ResBlock<B>,
    attention: AttentionBlock<B>,
    res1: ResBlock<B>,
}

impl<B: Backend> MidBlock<B> {
    fn load(w: &WeightLoader<B>, dim: usize) -> Result<Self> {
        Ok(MidBlock {
            res0: ResBlock::load(&w.pp("resnets.0"), dim, dim)?,
            attention: AttentionBlock::load(&w.pp("attentions.0"), dim)?,
            res1: ResBlock::load(&w.pp("resnets.1"), dim, dim)?,
        })
    }

    fn forward(&self, be: &B, x: Tensor<B>, caches: &mut TemporalCaches<B>) -> Result<Tensor<B>> {
        let x = self.res0.forward(be, x, caches)?;
        let x = self.attention.forward(be, &x)?;
        self.res1.forward(be, x, caches)
    }
}

/// One entry of the encoder's flat `down_blocks` list.
enum DownLayer<B: Backend> {
    Res(ResBlock<B>),
    Attention(AttentionBlock<B>),
    Resample(Resample<B>),
}

struct Encoder<B: Backend> {
    conv_in: Conv<B>,
    layers: Vec<DownLayer<B>>,
    mid: MidBlock<B>,
    norm_out: Norm<B>,
    conv_out: Conv<B>,
}

impl<B: Backend> Encoder<B> {
    fn load(w: &WeightLoader<B>, c: &WanConfig) -> Result<Self> {
        let dims: Vec<usize> = std::iter::once(1).chain(c.dim_mult.iter().copied()).map(|u| c.base_dim * u).collect();
        let mut layers = Vec::new();
        let mut scale = 1.0;
        let stages = c.dim_mult.len();
        for i in 0..stages {
            let mut c_in = dims[i];
            for _ in 0..c.num_res_blocks {
                let name = format!("down_blocks.{}", layers.len());
                layers.push(DownLayer::Res(ResBlock::load(&w.pp(name), c_in, dims[i + 1])?));
                if c.attn_scales.contains(&scale) {
                    let name = format!("down_blocks.{}", layers.len());
                    layers.push(DownLayer::Attention(AttentionBlock::load(&w.pp(name), dims[i + 1])?));
                }
                c_in = dims[i + 1];
            }
            if i + 1 != stages {
                let name = format!("down_blocks.{}", layers.len());
                let resample = Resample::load_down(&w.pp(name), dims[i + 1], c.temperal_downsample[i])?;
                layers.push(DownLayer::Resample(resample));
                scale /= 2.0;
            }
        }
        let top = dims[stages];
        Ok(Encoder {
            conv_in: Conv::load3d(&w.pp("conv_in"), c.in_channels, dims[0], [3; 3], [1; 3])?,
            layers,
            mid: MidBlock::load(&w.pp("mid_block"), top)?,
            norm_out: Norm::load(&w.pp("norm_out"), top, 3)?,
            conv_out: Conv::load3d(&w.pp("conv_out"), top, 2 * c.z_dim, [3; 3], [1; 3])?,
        })
    }

    fn forward(&self, be: &B, x: &Tensor<B>, caches: &mut TemporalCaches<B>) -> Result<Tensor<B>> {
        let mut x = self.conv_in.forward_cached(be, x, caches.next_slot())?;
        for layer in &self.layers {
            x = match layer {
                DownLayer::Res(block) => block.forward(be, x, caches)?,
                DownLayer::Attention(block) => block.forward(be, &x)?,
                DownLayer::Resample(resample) => resample.forward(be, &x, caches)?,
            };
        }
        let x = self.mid.forward(be, x, caches)?;
        let x = self.norm_out.forward(be, &x, Activation::Silu)?;
        self.conv_out.forward_cached(be, &x, caches.next_slot())
    }
}

/// `WanUpBlock`: num_res_blocks + 1 resnets, then an optional resample.
struct UpBlock<B: Backend> {
    resnets: Vec<ResBlock<B>>,
    upsample: Option<Resample<B>>,
}

struct Decoder<B: Backend> {
    conv_in: Conv<B>,
    mid: MidBlock<B>,
    up_blocks: Vec<UpBlock<B>>,
    norm_out: Norm<B>,
    conv_out: Conv<B>,
}

impl<B: Backend> Decoder<B> {
    fn load(w: &WeightLoader<B>, c: &WanConfig) -> Result<Self> {
        let base = c.decoder_base_dim;
        let mults = std::iter::once(*c.dim_mult.last().expect("dim_mult checked non-empty"))
            .chain(c.dim_mult.iter().rev().copied());
        let dims: Vec<usize> = mults.map(|u| base * u).collect();
        // the decoder reverses the encoder's temporal steps
        let temporal_up: Vec<bool> = c.temperal_downsample.iter().rev().copied().collect();
        let stages = c.dim_mult.len();
        let mut up_blocks = Vec::with_capacity(stages);
        for i in 0..stages {
            // every stage after the first starts from the previous upsample's halved channels
            let mut c_in = if i > 0 { dims[i] / 2 } else { dims[i] };
            let c_out = dims[i + 1];
            let bw = w.pp(format!("up_blocks.{i}"));
            let mut resnets = Vec::new();
            for r in 0..=c.num_res_blocks {
                resnets.push(ResBlock::load(&bw.pp(format!("resnets.{r}")), c_in, c_out)?);
                c_in = c_out;
            }
            let upsample = if i + 1 != stages {
                Some(Resample::load_up(&bw.pp("upsamplers.0"), c_out, temporal_up[i])?)
            } else {
                None
            };
            up_blocks.push(UpBlock { resnets, upsample });
        }
        let last = dims[stages];
        Ok(Decoder {
            conv_in: Conv::load3d(&w.pp("conv_in"), c.z_dim, dims[0], [3; 3], [1; 3])?,
            mid: MidBlock::load(&w.pp("mid_block"), dims[0])?,
            up_blocks,
            norm_out: Norm::load(&w.pp("norm_out"), last, 3)?,
            conv_out: Conv::load3d(&w.pp("conv_out"), last, c.out_channels, [3; 3], [1; 3])?,
        })
    }

    fn forward(&self, be: &B, x: &Tensor<B>, caches: &mut TemporalCaches<B>) -> Result<Tensor<B>> {
        let x = self.conv_in.forward_cached(be, x, caches.next_slot())?;
        let mut x = self.mid.forward(be, x, caches)?;
        for block in &self.up_blocks {
            for res in &block.resnets {
                x = res.forward(be, x, caches)?;
            }
            if let Some(up) = &block.upsample {
                x = up.forward(be, &x, caches)?;
            }
        }
        let x = self.norm_out.forward(be, &x, Activation::Silu)?;
        self.conv_out.forward_cached(be, &x, caches.next_slot())
    }
}

pub struct WanVae<B: Backend> {
    pub config: WanConfig,
    encoder: Encoder<B>,
    quant_conv: Conv<B>,
    post_quant_conv: Conv<B>,
    decoder: Decoder<B>,
    pub parameter_count: usize,
}

impl<B: Backend> WanVae<B> {
    pub fn from_folder(be: &B, folder: &ModelFolder) -> Result<Self> {
        let config = WanConfig::from_file(&folder.component_config("vae")?)?;
        Self::load(be, config, &WeightSource::Files(folder.component_weights("vae")?))
    }

    /// The architecture of `config_path` with seeded random weights (benchmarks).
    pub fn random(be: &B, config_path: &std::path::Path, seed: u64) -> Result<Self> {
        let config = WanConfig::from_file(&ConfigFile::open(config_path)?)?;
        Self::load(be, config, &WeightSource::Random { seed })
    }

    pub fn load(be: &B, config: WanConfig, source: &WeightSource) -> Result<Self> {
        let log = RefCell::new(LoadLog::default());
        let w = WeightLoader::new(be, source, &log);
        let z = config.z_dim;
        let vae = WanVae {
            encoder: Encoder::load(&w.pp("encoder"), &config)?,
            quant_conv: Conv::load3d(&w.pp("quant_conv"), 2 * z, 2 * z, [1; 3], [0; 3])?,
            post_quant_conv: Conv::load3d(&w.pp("post_quant_conv"), z, z, [1; 3], [0; 3])?,
            decoder: Decoder::load(&w.pp("decoder"), &config)?,
            config,
            parameter_count: 0,
        };
        let log = log.into_inner();
        if let WeightSource::Files(files) = source {
            check_no_unknown_tensors(files, &log)?;
        }
        Ok(WanVae { parameter_count: log.parameters, ..vae })
    }

    /// Frames a clip of `latent_frames` decodes to (1 + 4·(T − 1)).
    pub fn decoded_frames(&self, latent_frames: usize) -> usize {
        1 + self.config.temporal_factor() * latent_frames.saturating_sub(1)
    }

    /// Latents (B, z, T, h, w), as the VAE made them (not the transformer's normalised ones) →
    /// video (B, 3, 1 + 4(T − 1), 8h, 8w), before diffusers' clamp to [−1, 1].
    pub fn decode_unclamped(
        &self,
        be: &B,
        z: &[f32],
        shape: [usize; 5],
        progress: &dyn Progress,
    ) -> Result<(Vec<f32>, [usize; 5])> {
        let [b, c, t, h, w] = shape;
        if c != self.config.z_dim || t == 0 || z.len() != shape.iter().product::<usize>() {
            return Err(Error::InputShape {
                name: "latents".into(),
                expected: format!("(B, {}, T ≥ 1, H, W) for the Wan2.1 VAE", self.config.z_dim),
                got: format!("{shape:?} ({} values)", z.len()),
            });
        }
        let s = self.config.spatial_factor();
        let out_shape = [b, self.config.out_channels, self.decoded_frames(t), h * s, w * s];
        let mut out = vec![0.0; out_shape.iter().product()];
        for sample in 0..b {
            let x = Tensor::from_vec(be, &[t, h, w, c], sample_to_channels_last(z, shape, sample))?;
            let x = self.post_quant_conv.forward(be, &x)?;
            let mut caches = TemporalCaches::default();
            let mut written = 0;
            for i in 0..t {
                progress.step(sample * t + i, b * t, &format!("decoding latent frame {}/{t}", i + 1))?;
                caches.start_chunk(i + 1 == t);
                let chunk = self.decoder.forward(be, &frames(be, &x, i, 1)?, &mut caches)?;
                download_channels_last(be, &chunk, &mut out, out_shape, sample, written)?;
                written += chunk.shape()[0];
            }
            debug_assert_eq!(written, out_shape[2]);
        }
        Ok((out, out_shape))
    }

    /// `decode_unclamped` clamped to [−1, 1], as diffusers' `AutoencoderKLWan.decode` returns it.
    pub fn decode(
        &self,
        be: &B,
        z: &[f32],
        shape: [usize; 5],
        progress: &dyn Progress,
    ) -> Result<(Vec<f32>, [usize; 5])> {
        let (mut video, shape) = self.decode_unclamped(be, z, shape, progress)?;
        video.iter_mut().for_each(|v| *v = v.clamp(-1.0, 1.0));
        Ok((video, shape))
    }

    /// Video (B, 3, T, H, W) in [−1, 1], T = 4k + 1, H and W multiples of 8 → the posterior's
    /// parameters (B, 2z, k + 1, H/8, W/8): mean | log-variance (`latent_dist.parameters`).
    pub fn encode_parameters(
        &self,
        be: &B,
        video: &[f32],
        shape: [usize; 5],
        progress: &dyn Progress,
    ) -> Result<(Vec<f32>, [usize; 5])> {
        let [b, c, t, h, w] = shape;
        let (tf, s) = (self.config.temporal_factor(), self.config.spatial_factor());
        if c != self.config.in_channels || video.len() != shape.iter().product::<usize>() || h % s != 0 || w % s != 0 {
            return Err(Error::InputShape {
                name: "video".into(),
                expected: format!("(B, {}, T, H, W) with H and W multiples of {s}", self.config.in_channels),
                got: format!("{shape:?} ({} values)", video.len()),
            });
        }
        check_frame_count(t, tf)?;
        let latent_t = 1 + (t - 1) / tf;
        let z2 = 2 * self.config.z_dim;
        let out_shape = [b, z2, latent_t, h / s, w / s];
        let mut out = vec![0.0; out_shape.iter().product()];
        for sample in 0..b {
            let x = upload_channels_last(be, video, shape, sample)?;
            let mut caches = TemporalCaches::default();
            // the first frame alone, then chunks of `tf` frames: one latent frame each
            let mut start = 0;
            for i in 0..latent_t {
                progress.step(sample * latent_t + i, b * latent_t, &format!("encoding chunk {}/{latent_t}", i + 1))?;
                let len = if i == 0 { 1 } else { tf };
                caches.start_chunk(i + 1 == latent_t);
                let enc = self.encoder.forward(be, &frames(be, &x, start, len)?, &mut caches)?;
                let enc = self.quant_conv.forward(be, &enc)?;
                write_channels_last(&mut out, out_shape, sample, i, &enc.to_host(be)?);
                start += len;
            }
        }
        Ok((out, out_shape))
    }

    /// The posterior mean (B, z, T', h, w): what the pipelines encode images and plates to.
    pub fn encode(
        &self,
        be: &B,
        video: &[f32],
        shape: [usize; 5],
        progress: &dyn Progress,
    ) -> Result<(Vec<f32>, [usize; 5])> {
        let (params, shape) = self.encode_parameters(be, video, shape, progress)?;
        Ok(posterior_mean(&params, shape))
    }
}

/// Causal video VAEs take 1 + k·factor frames; anything else is refused with the nearest counts.
pub fn check_frame_count(frames: usize, factor: usize) -> Result<()> {
    if frames >= 1 && (frames - 1).is_multiple_of(factor) {
        return Ok(());
    }
    let below = if frames == 0 { 1 } else { 1 + (frames - 1) / factor * factor };
    let above = below + factor;
    Err(Error::InputShape {
        name: "video".into(),
        expected: format!("1 + {factor}·k frames (the VAE's causal chunking), e.g. {below} or {above}"),
        got: format!("{frames} frames"),
    })
}
