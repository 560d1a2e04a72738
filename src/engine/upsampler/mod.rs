//! The LTX-2 spatial latent upsampler ×2 (diffusers 0.42.1 `LTX2LatentUpsamplerModel`,
//! `pipelines/ltx2/latent_upsampler.py`; MODEL.md §8.2–8.3): VAE latents (B, C, T, H, W), as the
//! VAE made them (denormalised), → (B, C, T, 2H, 2W). On channels-last clips (T, H, W, C) of one
//! sample (GroupNorm statistics are per sample, so samples run one at a time):
//!   initial_conv (3³, C → M) → GroupNorm(32) → SiLU
//!   res_blocks × n:  silu(GN(conv2(silu(GN(conv1(x))))) + x)
//!   upsampler: per frame Conv2d 3×3 (M → 4M) → pixel shuffle ×2, channels (c, ih, iw)
//!              (→ blur downsample with stride 1: the identity at scale 2.0)
//!   post_upsample_res_blocks × n
//!   final_conv (3³, M → C)
//! Every conv is stride 1 with one zero of padding on each side of each axis (`padding=1`,
//! PyTorch's zeros mode), time included: unlike the VAE's, these convs are not causal.

mod config;

pub use config::{UpsamplerConfig, CLASS_NAME, GROUPS, GROUP_NORM_EPS};

use std::cell::RefCell;
use std::path::Path;

use super::vae::clip::{sample_to_channels_last, write_channels_last};
use crate::backend::{
    activation, add, conv3d, depth_to_space, group_norm, Activation, Backend, ConvSpec, SubpixelOrder, Tensor, Write,
};
use crate::engine::progress::Progress;
use crate::engine::weights::{check_no_unknown_tensors, LoadLog, WeightLoader, WeightSource};
use crate::error::{Error, Result};
use crate::io::{ConfigFile, TensorFiles};

/// A `torch.nn.Conv3d` (or a Conv2d seen as a 1×kh×kw Conv3d) with bias, stride 1, `padding=1`
/// on the axes its kernel spans. Weight permuted at load from PyTorch's (C_out, C_in, kt, kh, kw)
/// to the backend's (C_out, kt, kh, kw, C_in).
struct Conv<B: Backend> {
    w: Tensor<B>,
    bias: Tensor<B>,
}

impl<B: Backend> Conv<B> {
    /// `kernel` (kt, kh, kw); the checkpoint stores a Conv2d's weight without the kt axis.
    fn load(w: &WeightLoader<B>, c_in: usize, c_out: usize, kernel: [usize; 3]) -> Result<Self> {
        let taps: usize = kernel.iter().product();
        let stored: Vec<usize> = if kernel[0] == 1 {
            vec![c_out, c_in, kernel[1], kernel[2]]
        } else {
            vec![c_out, c_in, kernel[0], kernel[1], kernel[2]]
        };
        let torch = w.host("weight", &stored)?;
        let mut permuted = Vec::with_capacity(torch.len());
        for o in 0..c_out {
            for tap in 0..taps {
                permuted.extend((0..c_in).map(|i| torch[(o * c_in + i) * taps + tap]));
            }
        }
        let be = w.backend();
        let [kt, kh, kw] = kernel;
        Ok(Conv { w: Tensor::from_vec(be, &[c_out, kt, kh, kw, c_in], permuted)?, bias: w.tensor("bias", &[c_out])? })
    }

    /// x (T, H, W, C_in) → (T, H, W, C_out): `padding=1` on every axis the kernel spans.
    fn forward(&self, be: &B, x: &Tensor<B>) -> Result<Tensor<B>> {
        let s = self.w.shape();
        let pad = [s[1] / 2, s[2] / 2, s[3] / 2];
        let mut shape = x.shape().to_vec();
        if let Some(c) = shape.last_mut() {
            *c = s[0];
        }
        let mut out = Tensor::empty(be, &shape)?;
        conv3d(be, &mut out, x, &self.w, Some(&self.bias), ConvSpec::same(pad), Write::Overwrite)?;
        Ok(out)
    }
}

/// `torch.nn.GroupNorm(32, C)` (eps 1e-5, affine) with the activation that follows it fused.
struct GroupNorm<B: Backend> {
    weight: Tensor<B>,
    bias: Tensor<B>,
}

impl<B: Backend> GroupNorm<B> {
    fn load(w: &WeightLoader<B>, c: usize) -> Result<Self> {
        Ok(GroupNorm { weight: w.tensor("weight", &[c])?, bias: w.tensor("bias", &[c])? })
    }

    fn forward(&self, be: &B, x: &Tensor<B>, act: Activation) -> Result<Tensor<B>> {
        let mut out = Tensor::empty(be, x.shape())?;
        group_norm(be, &mut out, x, &self.weight, &self.bias, GROUPS, GROUP_NORM_EPS, act)?;
        Ok(out)
    }
}

/// `ResBlock` (mid_channels = channels): silu(norm2(conv2(silu(norm1(conv1(x))))) + x) — the
/// SiLU comes after the residual add, unlike the VAE's pre-activation blocks.
struct ResBlock<B: Backend> {
    conv1: Conv<B>,
    norm1: GroupNorm<B>,
    conv2: Conv<B>,
    norm2: GroupNorm<B>,
}

impl<B: Backend> ResBlock<B> {
    fn load(w: &WeightLoader<B>, c: usize) -> Result<Self> {
        Ok(ResBlock {
            conv1: Conv::load(&w.pp("conv1"), c, c, [3, 3, 3])?,
            norm1: GroupNorm::load(&w.pp("norm1"), c)?,
            conv2: Conv::load(&w.pp("conv2"), c, c, [3, 3, 3])?,
            norm2: GroupNorm::load(&w.pp("norm2"), c)?,
        })
    }

    fn forward(&self, be: &B, x: &Tensor<B>) -> Result<Tensor<B>> {
        let h = self.norm1.forward(be, &self.conv1.forward(be, x)?, Activation::Silu)?;
        let mut h = self.norm2.forward(be, &self.conv2.forward(be, &h)?, Activation::Identity)?;
        add(be, &mut h, x)?;
        let mut out = Tensor::empty(be, h.shape())?;
        activation(be, &mut out, &h, Activation::Silu)?;
        Ok(out)
    }
}

pub struct Ltx2LatentUpsampler<B: Backend> {
    pub config: UpsamplerConfig,
    initial_conv: Conv<B>,
    initial_norm: GroupNorm<B>,
    res_blocks: Vec<ResBlock<B>>,
    /// `upsampler.conv`: the rational resampler's Conv2d 3×3, M → 4M (num² · M, num = 2).
    upsampler_conv: Conv<B>,
    post_upsample_res_blocks: Vec<ResBlock<B>>,
    final_conv: Conv<B>,
    pub parameter_count: usize,
}

/// `SpatialRationalResampler` at scale 2.0: upsample by num = 2, blur-downsample by den = 1.
const FACTOR: usize = 2;

impl<B: Backend> Ltx2LatentUpsampler<B> {
    /// A diffusers component folder: `config.json` and `diffusion_pytorch_model.safetensors`
    /// (e.g. `latent_upsampler/` of an LTX-2 model folder).
    pub fn from_dir(be: &B, dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let config = UpsamplerConfig::from_file(&ConfigFile::open(&path)?)?;
        Self::load(be, config, &WeightSource::Files(TensorFiles::open_component(dir)?))
    }

    /// The architecture of `config_path` with seeded random weights (benchmarks, real-size tests).
    pub fn random(be: &B, config_path: &Path, seed: u64) -> Result<Self> {
        let config = UpsamplerConfig::from_file(&ConfigFile::open(config_path)?)?;
        Self::load(be, config, &WeightSource::Random { seed })
    }

    pub fn load(be: &B, config: UpsamplerConfig, source: &WeightSource) -> Result<Self> {
        let log = RefCell::new(LoadLog::default());
        let w = WeightLoader::new(be, source, &log);
        let (c, m, n) = (config.in_channels, config.mid_channels, config.num_blocks_per_stage);
        let blocks = |name: &str| -> Result<Vec<ResBlock<B>>> {
            (0..n).map(|i| ResBlock::load(&w.pp(format!("{name}.{i}")), m)).collect()
        };
        let initial_conv = Conv::load(&w.pp("initial_conv"), c, m, [3, 3, 3])?;
        let initial_norm = GroupNorm::load(&w.pp("initial_norm"), m)?;
        let res_blocks = blocks("res_blocks")?;
        let upsampler_conv = Conv::load(&w.pp("upsampler.conv"), m, FACTOR * FACTOR * m, [1, 3, 3])?;
        let post_upsample_res_blocks = blocks("post_upsample_res_blocks")?;
        let final_conv = Conv::load(&w.pp("final_conv"), m, c, [3, 3, 3])?;
        let parameter_count = log.borrow().parameters;
        if let WeightSource::Files(files) = source {
            // The blur kernel is a persistent buffer (not a parameter) that diffusers saves with
            // the weights; at stride 1 it is never applied. Read so it counts as known, and
            // checked so a checkpoint of another resampler is not mistaken for this one.
            const BLUR: &str = "upsampler.blur_down.kernel";
            if files.contains(BLUR) {
                w.host(BLUR, &[1, 1, 5, 5])?;
            }
            check_no_unknown_tensors(files, &log.borrow())?;
        }
        Ok(Ltx2LatentUpsampler {
            config,
            initial_conv,
            initial_norm,
            res_blocks,
            upsampler_conv,
            post_upsample_res_blocks,
            final_conv,
            parameter_count,
        })
    }

    /// One sample's latents (T, H, W, C) → (T, 2H, 2W, C). `tick` runs between stages (progress
    /// and cancellation).
    pub fn forward(&self, be: &B, x: &Tensor<B>, tick: &mut dyn FnMut(&str) -> Result<()>) -> Result<Tensor<B>> {
        let c = self.config.in_channels;
        let [t, h, w, xc] = *x.shape() else {
            return Err(Error::InputShape {
                name: "upsampler input".into(),
                expected: format!("a channels-last clip (T, H, W, {c})"),
                got: format!("{:?}", x.shape()),
            });
        };
        if xc != c || t == 0 || h == 0 || w == 0 {
            return Err(Error::InputShape {
                name: "upsampler input".into(),
                expected: format!("(T ≥ 1, H ≥ 1, W ≥ 1, {c}) (`in_channels` of the upsampler's config)"),
                got: format!("{:?}", x.shape()),
            });
        }
        let x = self.initial_conv.forward(be, x)?;
        let mut x = self.initial_norm.forward(be, &x, Activation::Silu)?;
        for (i, block) in self.res_blocks.iter().enumerate() {
            tick(&format!("upsampler block {}/{}", i + 1, self.res_blocks.len()))?;
            x = block.forward(be, &x)?;
        }
        tick("upsampler ×2")?;
        // (T, H, W, 4M) → (T, 2H, 2W, M): PixelShuffleND(2) unflattens channels as (c, p1, p2),
        // i.e. coarse channel c·4 + ih·2 + iw, which is SubpixelOrder::Thw with st = 1
        let coarse = self.upsampler_conv.forward(be, &x)?;
        let m = self.config.mid_channels;
        let mut x = Tensor::empty(be, &[t, FACTOR * h, FACTOR * w, m])?;
        depth_to_space(be, &mut x, &coarse, [1, FACTOR, FACTOR], SubpixelOrder::Thw, 1)?;
        drop(coarse);
        for (i, block) in self.post_upsample_res_blocks.iter().enumerate() {
            tick(&format!("upsampler block {}/{}", self.res_blocks.len() + i + 1, 2 * self.res_blocks.len()))?;
            x = block.forward(be, &x)?;
        }
        self.final_conv.forward(be, &x)
    }

    /// Host latents (B, C, T, H, W) → (B, C, T, 2H, 2W), sample by sample.
    pub fn upsample(
        &self,
        be: &B,
        z: &[f32],
        shape: [usize; 5],
        progress: &dyn Progress,
    ) -> Result<(Vec<f32>, [usize; 5])> {
        let [b, c, t, h, w] = shape;
        if c != self.config.in_channels || b == 0 || z.len() != shape.iter().product::<usize>() {
            return Err(Error::InputShape {
                name: "latents".into(),
                expected: format!(
                    "(B, {}, T, H, W) for the latent upsampler (`in_channels` of its config)",
                    self.config.in_channels
                ),
                got: format!("{shape:?} ({} values)", z.len()),
            });
        }
        let out_shape = [b, c, t, FACTOR * h, FACTOR * w];
        let mut out = vec![0.0; out_shape.iter().product()];
        let stages = 2 * self.config.num_blocks_per_stage + 1;
        for sample in 0..b {
            let mut stage = 0;
            let mut tick = |label: &str| {
                stage += 1;
                progress.step(sample * stages + stage - 1, b * stages, &format!("sample {}: {label}", sample + 1))
            };
            let x = Tensor::from_vec(be, &[t, h, w, c], sample_to_channels_last(z, shape, sample))?;
            let up = self.forward(be, &x, &mut tick)?;
            write_channels_last(&mut out, out_shape, sample, 0, &up.to_host(be)?);
        }
        Ok((out, out_shape))
    }
}
