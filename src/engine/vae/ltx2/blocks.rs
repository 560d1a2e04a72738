//! The LTX-2 autoencoder's layers (diffusers 0.42.1 `autoencoder_kl_ltx2.py`), on channels-last
//! clips (T, H, W, C) of one sample.

use super::config::{Resampling, TimePadding};
use crate::backend::{
    add, add_f32, conv3d, copy_frames, depth_to_space, latent_to_model, rms_norm_act, rms_norm_f32_input_act,
    space_to_depth, Activation, Backend, ConvSpec, NormWeight, PadMode, SubpixelOrder, Tensor, Write,
};
use crate::engine::vae::clip::{concat_frames, frames, last_frames, TemporalCaches};
use crate::engine::weights::WeightLoader;
use crate::error::Result;

/// `PerChannelRMSNorm` has no weight and eps 1e-8: x / sqrt(mean_c(x²) + 1e-8).
const NORM_EPS: f32 = 1e-8;

/// `LTX2VideoCausalConv3d`, kernel 3×3×3, stride 1: time padded by replicating edge frames (as
/// the config's causality says), space by one zero or reflected pixel. Weight permuted at load to
/// (C_out, kt, kh, kw, C_in).
pub struct Conv<B: Backend> {
    w: Tensor<B>,
    bias: Tensor<B>,
    time: TimePadding,
    spatial: PadMode,
}

impl<B: Backend> Conv<B> {
    pub fn load(w: &WeightLoader<B>, c_in: usize, c_out: usize, time: TimePadding, spatial: PadMode) -> Result<Self> {
        // the checkpoint's `<name>.conv.weight` (C_out, C_in, 3, 3, 3): the nn.Conv3d inside
        let w = w.pp("conv");
        let torch = w.host("weight", &[c_out, c_in, 3, 3, 3])?;
        let mut permuted = Vec::with_capacity(torch.len());
        for o in 0..c_out {
            for tap in 0..27 {
                permuted.extend((0..c_in).map(|i| torch[(o * c_in + i) * 27 + tap]));
            }
        }
        let be = w.backend();
        Ok(Conv {
            w: Tensor::from_vec(be, &[c_out, 3, 3, 3, c_in], permuted)?,
            bias: w.tensor("bias", &[c_out])?,
            time,
            spatial,
        })
    }

    pub fn c_out(&self) -> usize {
        self.w.shape()[0]
    }

    /// x (T, H, W, C_in) → (T, H, W, C_out), the whole clip: time padded at both ends as the
    /// causality says.
    pub fn forward(&self, be: &B, x: &Tensor<B>) -> Result<Tensor<B>> {
        // causal: [x₀, x₀, x₀ … x_{T−1}]; centered: [x₀, x₀ … x_{T−1}, x_{T−1}]
        let (before, after) = match self.time {
            TimePadding::Causal => (2, 0),
            TimePadding::Centered => (1, 1),
        };
        self.conv_padded(be, &replicate_edges(be, x, before, after)?)
    }

    /// `forward` of one chunk of a causal conv's input streamed in time: its left context is the
    /// last two frames of the padded input so far (`caches`' next slot; on the first chunk, the
    /// first frame repeated, as `forward` pads), so the chunks' outputs are the whole clip's.
    /// `None`: the whole clip.
    pub fn forward_in(&self, be: &B, x: &Tensor<B>, caches: Option<&mut TemporalCaches<B>>) -> Result<Tensor<B>> {
        let Some(caches) = caches else { return self.forward(be, x) };
        debug_assert_eq!(self.time, TimePadding::Causal, "only causal convs stream");
        let slot = caches.next_slot();
        let padded = match slot.frames.take() {
            Some(context) => concat_frames(be, Some(&context), x)?,
            None => replicate_edges(be, x, 2, 0)?,
        };
        slot.frames = Some(last_frames(be, &padded, 2)?);
        self.conv_padded(be, &padded)
    }

    /// The conv of a time-padded input (T + 2 frames → T); space padded by the conv itself.
    fn conv_padded(&self, be: &B, padded: &Tensor<B>) -> Result<Tensor<B>> {
        let [t, h, w, _] = *padded.shape() else { unreachable!("clips are (T, H, W, C)") };
        let spec = ConvSpec {
            pad_before: [0, 1, 1],
            pad_after: [0, 1, 1],
            spatial_pad: self.spatial,
            ..ConvSpec::same([0; 3])
        };
        let mut out = Tensor::empty(be, &[t - 2, h, w, self.c_out()])?;
        conv3d(be, &mut out, padded, &self.w, Some(&self.bias), spec, Write::Overwrite)?;
        Ok(out)
    }
}

/// x with its first frame repeated `before` times in front and its last `after` times behind.
fn replicate_edges<B: Backend>(be: &B, x: &Tensor<B>, before: usize, after: usize) -> Result<Tensor<B>> {
    let t = x.shape()[0];
    let mut shape = x.shape().to_vec();
    shape[0] = before + t + after;
    let mut out = Tensor::empty(be, &shape)?;
    for i in 0..before {
        copy_frames(be, &mut out, i, x, 0, 1)?;
    }
    copy_frames(be, &mut out, before, x, 0, t)?;
    for i in 0..after {
        copy_frames(be, &mut out, before + t + i, x, t - 1, 1)?;
    }
    Ok(out)
}

/// `PerChannelRMSNorm` followed by SiLU, as every LTX-2 conv is preceded. The backend's norm
/// takes a weight: ones, which multiply exactly.
pub struct NormSilu<B: Backend> {
    ones: Tensor<B>,
}

impl<B: Backend> NormSilu<B> {
    pub fn new(be: &B, channels: usize) -> Result<Self> {
        Ok(NormSilu { ones: Tensor::from_vec(be, &[channels], vec![1.0; channels])? })
    }

    pub fn forward(&self, be: &B, x: &Tensor<B>) -> Result<Tensor<B>> {
        let mut out = Tensor::empty(be, x.shape())?;
        rms_norm_act(be, &mut out, x, &self.ones, NORM_EPS, Activation::Silu)?;
        Ok(out)
    }

    /// `forward` of an f32 residual stream x holding a clip of `shape`.
    fn forward_f32(&self, be: &B, x: &B::Table, shape: &[usize]) -> Result<Tensor<B>> {
        let mut out = Tensor::empty(be, shape)?;
        rms_norm_f32_input_act(be, &mut out, x, &self.ones, NORM_EPS, NormWeight::Plain, Activation::Silu)?;
        Ok(out)
    }
}

/// `LTX2VideoResnetBlock3d` with in = out channels (no norm3 / conv_shortcut: no LTX-2 VAE
/// block changes width), no noise, no timestep: x + conv2(silu(norm(conv1(silu(norm(x)))))).
pub struct ResBlock<B: Backend> {
    norm: NormSilu<B>,
    conv1: Conv<B>,
    conv2: Conv<B>,
}

impl<B: Backend> ResBlock<B> {
    pub fn load(w: &WeightLoader<B>, c: usize, time: TimePadding, spatial: PadMode) -> Result<Self> {
        Ok(ResBlock {
            norm: NormSilu::new(w.backend(), c)?,
            conv1: Conv::load(&w.pp("conv1"), c, c, time, spatial)?,
            conv2: Conv::load(&w.pp("conv2"), c, c, time, spatial)?,
        })
    }

    /// x (f32, a clip of `shape`) ← x + conv2(…(x)): the norms read the stream in f32 and conv2's
    /// output (bf16) is added to it in f32. Each temporary is dropped once the next is made.
    /// `caches`: streamed in time (see `Conv::forward_in`).
    fn forward_f32(
        &self,
        be: &B,
        x: &mut B::Table,
        shape: &[usize],
        mut caches: Option<&mut TemporalCaches<B>>,
    ) -> Result<()> {
        let h = self.conv1.forward_in(be, &self.norm.forward_f32(be, x, shape)?, caches.as_deref_mut())?;
        let normed = self.norm.forward(be, &h)?;
        drop(h);
        let y = self.conv2.forward_in(be, &normed, caches)?;
        drop(normed);
        add_f32(be, x, &y, Write::Accumulate)
    }
}

/// `resnets` in order on x, their residual stream held in f32 between them (x comes in and goes
/// out in the compute dtype). A bf16 stream, rounded after every resnet as diffusers' bf16 run and
/// our first CUDA version did, was most of the CUDA backend's error on the released VAE:
/// emulated in tools/ltx2_bf16_error_budget.py (`bf16-stream` → `f32-resnets`), decode
/// 1.09e-2 → 6.8e-3 and encode 1.09e-2 → 6.9e-3 from f32. Costs a pass over the stream per resnet (an
/// f32 read-modify-write instead of conv2's epilogue adding into a bf16 one) and one more clip of
/// memory at each level: +15 ms (2.6%) on the 704×1280×81 encode, the decode unchanged
/// (BENCHMARKS.md; fusing the add into conv2's epilogue measured no gain).
///
/// `caches`: the encoder streamed in time (`Conv::forward_in`); `None` for a whole clip.
pub fn resnets_f32<B: Backend>(
    be: &B,
    resnets: &[ResBlock<B>],
    x: Tensor<B>,
    mut caches: Option<&mut TemporalCaches<B>>,
) -> Result<Tensor<B>> {
    if resnets.is_empty() {
        return Ok(x);
    }
    let shape = x.shape().to_vec();
    let mut stream = be.alloc_table(x.len())?;
    add_f32(be, &mut stream, &x, Write::Overwrite)?;
    drop(x);
    for res in resnets {
        res.forward_f32(be, &mut stream, &shape, caches.as_deref_mut())?;
    }
    // the stream rounded back to the compute dtype (the one-copy case of the sampler's batch op)
    let mut out = Tensor::empty(be, &shape)?;
    latent_to_model(be, &mut out, &stream)?;
    Ok(out)
}

/// `LTX2VideoDownsampler3d`: the first st − 1 frames are repeated in front, then
/// space_to_depth(conv(x)) + the mean over groups of space_to_depth(x), both in (c, t, h, w)
/// channel order.
pub struct Downsampler<B: Backend> {
    conv: Conv<B>,
    stride: [usize; 3],
    group: usize,
}

impl<B: Backend> Downsampler<B> {
    /// `c_out` must be a multiple of st·sh·sw and divide c_in·st·sh·sw (checked by the caller).
    pub fn load(
        w: &WeightLoader<B>,
        c_in: usize,
        c_out: usize,
        kind: Resampling,
        time: TimePadding,
        spatial: PadMode,
    ) -> Result<Self> {
        let stride = kind.stride();
        let p: usize = stride.iter().product();
        Ok(Downsampler {
            conv: Conv::load(&w.pp("conv"), c_in, c_out / p, time, spatial)?,
            stride,
            group: c_in * p / c_out,
        })
    }

    /// x (T, H, W, C_in) → ((T + st − 1)/st, H/sh, W/sw, C_out). `caches`: one chunk of the
    /// encoder streamed in time (`Conv::forward_in`): the frames are prepended to the first chunk
    /// only, and every later chunk holds a multiple of st frames.
    pub fn forward(&self, be: &B, x: &Tensor<B>, mut caches: Option<&mut TemporalCaches<B>>) -> Result<Tensor<B>> {
        let st = self.stride[0];
        let first_chunk = caches.as_deref_mut().is_none_or(|c| {
            let slot = c.next_slot();
            !std::mem::replace(&mut slot.seen, true)
        });
        // diffusers prepends x[:, :, :st − 1] so that 1 + st·k frames become 1 + k
        let padded;
        let x = if st > 1 && first_chunk {
            padded = concat_frames(be, Some(&frames(be, x, 0, st - 1)?), x)?;
            &padded
        } else {
            x
        };
        let coarse = |c: usize| -> Vec<usize> {
            let s = x.shape();
            vec![s[0] / self.stride[0], s[1] / self.stride[1], s[2] / self.stride[2], c]
        };
        let c_out = self.conv.c_out() * self.stride.iter().product::<usize>();
        let mut residual = Tensor::empty(be, &coarse(c_out))?;
        space_to_depth(be, &mut residual, x, self.stride, SubpixelOrder::Thw, self.group)?;
        let h = self.conv.forward_in(be, x, caches)?;
        let mut out = Tensor::empty(be, &coarse(c_out))?;
        space_to_depth(be, &mut out, &h, self.stride, SubpixelOrder::Thw, 1)?;
        add(be, &mut out, &residual)?;
        Ok(out)
    }
}

/// `LTX2VideoUpsampler3d`: depth_to_space(conv(x)) in (c, t, h, w) order, the first st − 1
/// output frames dropped, plus (if `residual`) depth_to_space(x) with its channels tiled to match.
pub struct Upsampler<B: Backend> {
    conv: Conv<B>,
    stride: [usize; 3],
    residual: bool,
    /// st·sh·sw / upscale_factor: the residual's channel tiling.
    repeat: usize,
}

impl<B: Backend> Upsampler<B> {
    /// `c_in` must be a multiple of st·sh·sw, which must be a multiple of `factor` (checked by
    /// the caller); the output has c_in / factor channels.
    pub fn load(
        w: &WeightLoader<B>,
        c_in: usize,
        (kind, residual, factor): (Resampling, bool, usize),
        time: TimePadding,
        spatial: PadMode,
    ) -> Result<Self> {
        let stride = kind.stride();
        let p: usize = stride.iter().product();
        Ok(Upsampler {
            conv: Conv::load(&w.pp("conv"), c_in, c_in * p / factor, time, spatial)?,
            stride,
            residual,
            repeat: p / factor,
        })
    }

    /// (st, sh, sw).
    pub fn stride(&self) -> [usize; 3] {
        self.stride
    }

    /// Channels of the conv's output, before depth-to-space.
    pub fn conv_channels(&self) -> usize {
        self.conv.c_out()
    }

    /// x (T, H, W, C) → (st·T − st + 1, sh·H, sw·W, C / factor).
    pub fn forward(&self, be: &B, x: &Tensor<B>) -> Result<Tensor<B>> {
        let [t, h, w, c] = *x.shape() else { unreachable!("clips are (T, H, W, C)") };
        let [st, sh, sw] = self.stride;
        let p = st * sh * sw;
        let fine = |c: usize| [st * t, sh * h, sw * w, c];
        let y = self.conv.forward(be, x)?;
        let mut up = Tensor::empty(be, &fine(y.shape()[3] / p))?;
        depth_to_space(be, &mut up, &y, self.stride, SubpixelOrder::Thw, 1)?;
        // diffusers drops the first st − 1 frames (the causal-time convention: T latent frames
        // decode to 1 + st·(T − 1))
        let mut out = frames(be, &up, st - 1, st * t - (st - 1))?;
        if self.residual {
            let mut r = Tensor::empty(be, &fine(c / p * self.repeat))?;
            depth_to_space(be, &mut r, x, self.stride, SubpixelOrder::Thw, self.repeat)?;
            add(be, &mut out, &frames(be, &r, st - 1, st * t - (st - 1))?)?;
        }
        Ok(out)
    }
}
