//! The Wan2.1 autoencoder's layers (diffusers `autoencoder_kl_wan.py`), channels-last, streamed
//! over time: every causal convolution keeps the last two input frames of the previous chunk as
//! left context (zeros before the first), exactly as diffusers' `feat_cache` does, so a chunked
//! run equals the whole clip at once.

use crate::backend::{
    conv3d, cross_attention, linear, rms_norm_act, Activation, Backend, ConvDims, ConvSpec, Tensor, Write,
};
use crate::engine::vae::clip::{concat_frames, last_frames, TemporalCaches, TemporalSlot};
use crate::engine::weights::WeightLoader;
use crate::error::Result;

/// Frames of left context a kernel-3 causal conv needs (diffusers' `CACHE_T`).
const CONTEXT: usize = 2;

/// A convolution with its weight permuted to (C_out, kt, kh, kw, C_in) at load.
pub struct Conv<B: Backend> {
    w: Tensor<B>,
    bias: Tensor<B>,
    /// PyTorch `padding` of (t, h, w); the temporal part is applied causally (2·p before).
    padding: [usize; 3],
}

impl<B: Backend> Conv<B> {
    /// `nn.Conv3d` / `WanCausalConv3d` weight (C_out, C_in, kt, kh, kw).
    pub fn load3d(
        w: &WeightLoader<B>,
        c_in: usize,
        c_out: usize,
        kernel: [usize; 3],
        padding: [usize; 3],
    ) -> Result<Self> {
        let [kt, kh, kw] = kernel;
        let torch = w.host("weight", &[c_out, c_in, kt, kh, kw])?;
        Self::from_torch(w, torch, c_in, c_out, kernel, padding)
    }

    /// `nn.Conv2d` weight (C_out, C_in, kh, kw): a conv3d with kt = 1, per frame.
    pub fn load2d(w: &WeightLoader<B>, c_in: usize, c_out: usize, k: usize, padding: usize) -> Result<Self> {
        let torch = w.host("weight", &[c_out, c_in, k, k])?;
        Self::from_torch(w, torch, c_in, c_out, [1, k, k], [0, padding, padding])
    }

    /// Rows `rows` of the output channels only (diffusers' time_conv of `upsample3d` computes two
    /// frames' channels at once; we split it into one conv per output frame).
    fn from_torch(
        w: &WeightLoader<B>,
        torch: Vec<f32>,
        c_in: usize,
        c_out: usize,
        kernel: [usize; 3],
        padding: [usize; 3],
    ) -> Result<Self> {
        let bias = w.host("bias", &[c_out])?;
        Self::from_parts(w.backend(), &torch, &bias, 0..c_out, c_in, kernel, padding)
    }

    fn from_parts(
        be: &B,
        torch: &[f32],
        bias: &[f32],
        rows: std::ops::Range<usize>,
        c_in: usize,
        kernel: [usize; 3],
        padding: [usize; 3],
    ) -> Result<Self> {
        let taps: usize = kernel.iter().product();
        let mut permuted = Vec::with_capacity(rows.len() * taps * c_in);
        for o in rows.clone() {
            for tap in 0..taps {
                permuted.extend((0..c_in).map(|i| torch[(o * c_in + i) * taps + tap]));
            }
        }
        let [kt, kh, kw] = kernel;
        Ok(Conv {
            w: Tensor::from_vec(be, &[rows.len(), kt, kh, kw, c_in], permuted)?,
            bias: Tensor::from_host(be, &[rows.len()], &bias[rows])?,
            padding,
        })
    }

    fn c_out(&self) -> usize {
        self.w.shape()[0]
    }

    /// The conv with `spec`, output allocated here.
    fn run(&self, be: &B, x: &Tensor<B>, spec: ConvSpec) -> Result<Tensor<B>> {
        let kernel = [self.w.shape()[1], self.w.shape()[2], self.w.shape()[3]];
        let out_dims = ConvDims {
            input: [x.shape()[0], x.shape()[1], x.shape()[2]],
            c_in: x.shape()[3],
            c_out: self.c_out(),
            kernel,
            stride: spec.stride,
            pad_before: spec.pad_before,
            pad_after: spec.pad_after,
            spatial_pad: spec.spatial_pad,
            upsample: spec.upsample,
        }
        .output();
        let mut out = Tensor::empty(be, &[out_dims[0], out_dims[1], out_dims[2], self.c_out()])?;
        conv3d(be, &mut out, x, &self.w, Some(&self.bias), spec, Write::Overwrite)?;
        Ok(out)
    }

    /// Causal in time (2·p zeros before, none after), "same" in space; no state (whole clip).
    pub fn forward(&self, be: &B, x: &Tensor<B>) -> Result<Tensor<B>> {
        self.run(be, x, self.causal_spec(2 * self.padding[0]))
    }

    /// Like `forward` for one chunk of a streamed clip: the slot's frames stand in for the zeros.
    pub fn forward_cached(&self, be: &B, x: &Tensor<B>, slot: &mut TemporalSlot<B>) -> Result<Tensor<B>> {
        let (input, zeros) = with_context(be, x, slot)?;
        let out = self.run(be, &input, self.causal_spec(zeros))?;
        slot.frames = Some(last_frames(be, &input, CONTEXT)?);
        Ok(out)
    }

    /// `forward_cached` added into `residual` in the conv's epilogue (one rounding, no add pass).
    fn forward_cached_onto(
        &self,
        be: &B,
        x: &Tensor<B>,
        slot: &mut TemporalSlot<B>,
        mut residual: Tensor<B>,
    ) -> Result<Tensor<B>> {
        let (input, zeros) = with_context(be, x, slot)?;
        conv3d(be, &mut residual, &input, &self.w, Some(&self.bias), self.causal_spec(zeros), Write::Accumulate)?;
        slot.frames = Some(last_frames(be, &input, CONTEXT)?);
        Ok(residual)
    }

    fn causal_spec(&self, zeros_before: usize) -> ConvSpec {
        let [_, ph, pw] = self.padding;
        ConvSpec { pad_before: [zeros_before, ph, pw], pad_after: [0, ph, pw], ..ConvSpec::same([0; 3]) }
    }
}

/// The slot's remembered frames followed by x, and how many zero frames still pad the front.
fn with_context<B: Backend>(be: &B, x: &Tensor<B>, slot: &TemporalSlot<B>) -> Result<(Tensor<B>, usize)> {
    let cached = slot.frames.as_ref().map_or(0, |f| f.shape()[0]);
    Ok((concat_frames(be, slot.frames.as_ref(), x)?, CONTEXT - cached))
}

/// `WanRMS_norm` (`F.normalize` over channels · √C · γ) followed by SiLU. x/‖x‖·√C is
/// x·rsqrt(mean(x²)); F.normalize's max(‖x‖, 1e-12) becomes eps = 1e-24/C on the mean.
pub struct Norm<B: Backend> {
    gamma: Tensor<B>,
    eps: f32,
}

impl<B: Backend> Norm<B> {
    pub fn load(w: &WeightLoader<B>, dim: usize, broadcast_dims: usize) -> Result<Self> {
        let shape: Vec<usize> = std::iter::once(dim).chain(std::iter::repeat_n(1, broadcast_dims)).collect();
        Ok(Norm { gamma: w.tensor_as("gamma", &shape, &[dim])?, eps: 1e-24 / dim as f32 })
    }

    pub fn forward(&self, be: &B, x: &Tensor<B>, act: Activation) -> Result<Tensor<B>> {
        let mut out = Tensor::empty(be, x.shape())?;
        rms_norm_act(be, &mut out, x, &self.gamma, self.eps, act)?;
        Ok(out)
    }
}

/// `WanResidualBlock`: norm, SiLU, causal 3×3×3 conv, twice, plus a (1×1×1) shortcut.
pub struct ResBlock<B: Backend> {
    norm1: Norm<B>,
    conv1: Conv<B>,
    norm2: Norm<B>,
    conv2: Conv<B>,
    shortcut: Option<Conv<B>>,
}

impl<B: Backend> ResBlock<B> {
    pub fn load(w: &WeightLoader<B>, c_in: usize, c_out: usize) -> Result<Self> {
        Ok(ResBlock {
            norm1: Norm::load(&w.pp("norm1"), c_in, 3)?,
            conv1: Conv::load3d(&w.pp("conv1"), c_in, c_out, [3; 3], [1; 3])?,
            norm2: Norm::load(&w.pp("norm2"), c_out, 3)?,
            conv2: Conv::load3d(&w.pp("conv2"), c_out, c_out, [3; 3], [1; 3])?,
            shortcut: if c_in != c_out {
                Some(Conv::load3d(&w.pp("conv_shortcut"), c_in, c_out, [1; 3], [0; 3])?)
            } else {
                None
            },
        })
    }

    /// Takes x by value: without a shortcut conv, conv2 adds its output into x's own memory.
    pub fn forward(&self, be: &B, x: Tensor<B>, caches: &mut TemporalCaches<B>) -> Result<Tensor<B>> {
        let h = self.norm1.forward(be, &x, Activation::Silu)?;
        let h = self.conv1.forward_cached(be, &h, caches.next_slot())?;
        let h = self.norm2.forward(be, &h, Activation::Silu)?;
        let residual = match &self.shortcut {
            Some(conv) => conv.forward(be, &x)?,
            None => x,
        };
        self.conv2.forward_cached_onto(be, &h, caches.next_slot(), residual)
    }
}

/// `WanAttentionBlock`: single-head softmax self-attention over the positions of each frame.
pub struct AttentionBlock<B: Backend> {
    norm: Norm<B>,
    to_q: Tensor<B>,
    to_k: Tensor<B>,
    to_v: Tensor<B>,
    bias_q: Tensor<B>,
    bias_k: Tensor<B>,
    bias_v: Tensor<B>,
    proj: Tensor<B>,
    proj_bias: Tensor<B>,
}

impl<B: Backend> AttentionBlock<B> {
    pub fn load(w: &WeightLoader<B>, dim: usize) -> Result<Self> {
        let be = w.backend();
        // to_qkv is one 1×1 conv (3C, C) whose outputs are q | k | v.
        let qkv = w.pp("to_qkv").host("weight", &[3 * dim, dim, 1, 1])?;
        let qkv_bias = w.pp("to_qkv").host("bias", &[3 * dim])?;
        let part = |i: usize| Tensor::from_host(be, &[dim, dim], &qkv[i * dim * dim..][..dim * dim]);
        let bias = |i: usize| Tensor::from_host(be, &[dim], &qkv_bias[i * dim..][..dim]);
        Ok(AttentionBlock {
            norm: Norm::load(&w.pp("norm"), dim, 2)?,
            to_q: part(0)?,
            to_k: part(1)?,
            to_v: part(2)?,
            bias_q: bias(0)?,
            bias_k: bias(1)?,
            bias_v: bias(2)?,
            proj: w.pp("proj").tensor_as("weight", &[dim, dim, 1, 1], &[dim, dim])?,
            proj_bias: w.pp("proj").tensor("bias", &[dim])?,
        })
    }

    pub fn forward(&self, be: &B, x: &Tensor<B>) -> Result<Tensor<B>> {
        let [t, h, w, c] = *x.shape() else { unreachable!("clips are (T, H, W, C)") };
        let n = self.norm.forward(be, x, Activation::Identity)?;
        // a 1×1 conv is a product over the T·H·W positions; tokens are each frame's positions
        let project = |wt: &Tensor<B>, b: &Tensor<B>| -> Result<Tensor<B>> {
            let mut out = Tensor::empty(be, &[t, h, w, c])?;
            linear(be, &mut out, &n, wt, Some(b), Activation::Identity, Write::Overwrite)?;
            out.reshape(&[t, h * w, c])?;
            Ok(out)
        };
        let q = project(&self.to_q, &self.bias_q)?;
        let k = project(&self.to_k, &self.bias_k)?;
        let v = project(&self.to_v, &self.bias_v)?;
        let mut attended = Tensor::empty(be, &[t, h * w, c])?;
        let no_mask = be.upload_table(vec![0.0; t * h * w])?;
        cross_attention(be, &mut attended, &q, &k, &v, &no_mask, 1)?;
        let mut out = Tensor::empty(be, &[t, h * w, c])?;
        linear(be, &mut out, &attended, &self.proj, Some(&self.proj_bias), Activation::Identity, Write::Overwrite)?;
        out.reshape(&[t, h, w, c])?;
        crate::backend::add(be, &mut out, x)?;
        Ok(out)
    }
}

/// `WanResample`: spatial ×2 up (nearest + 3×3 conv, halving channels) or ↓2 (3×3 stride-2 conv),
/// with a temporal ×2 (`upsample3d`: a causal (3,1,1) conv making two frames per frame, skipped
/// on the first chunk) or ↓2 (`downsample3d`: a (3,1,1) stride-2 conv, the first frame kept).
pub enum Resample<B: Backend> {
    Up { spatial: Conv<B>, temporal: Option<[Conv<B>; 2]> },
    Down { spatial: Conv<B>, temporal: Option<Conv<B>> },
}

impl<B: Backend> Resample<B> {
    pub fn load_up(w: &WeightLoader<B>, dim: usize, temporal: bool) -> Result<Self> {
        let spatial = Conv::load2d(&w.pp("resample.1"), dim, dim / 2, 3, 1)?;
        let temporal = if temporal {
            let tw = w.pp("time_conv");
            let torch = tw.host("weight", &[2 * dim, dim, 3, 1, 1])?;
            let bias = tw.host("bias", &[2 * dim])?;
            let half = |rows| Conv::from_parts(w.backend(), &torch, &bias, rows, dim, [3, 1, 1], [1, 0, 0]);
            // output channels 0..C make the first of each pair of frames, C..2C the second
            Some([half(0..dim)?, half(dim..2 * dim)?])
        } else {
            None
        };
        Ok(Resample::Up { spatial, temporal })
    }

    pub fn load_down(w: &WeightLoader<B>, dim: usize, temporal: bool) -> Result<Self> {
        let spatial = Conv::load2d(&w.pp("resample.1"), dim, dim, 3, 0)?;
        let temporal =
            if temporal { Some(Conv::load3d(&w.pp("time_conv"), dim, dim, [3, 1, 1], [0; 3])?) } else { None };
        Ok(Resample::Down { spatial, temporal })
    }

    pub fn forward(&self, be: &B, x: &Tensor<B>, caches: &mut TemporalCaches<B>) -> Result<Tensor<B>> {
        match self {
            Resample::Up { spatial, temporal } => {
                let doubled = match temporal {
                    Some(convs) => upsample_time(be, x, convs, caches.next_slot())?,
                    None => None,
                };
                let x = doubled.as_ref().unwrap_or(x);
                // nn.Upsample(×2, nearest-exact) + the 3×3 conv: the conv reads x upsampled
                spatial.run(be, x, ConvSpec { upsample: 2, ..spatial.causal_spec(0) })
            }
            Resample::Down { spatial, temporal } => {
                // ZeroPad2d((0, 1, 0, 1)) then a 3×3 stride-2 conv
                let spec =
                    ConvSpec { stride: [1, 2, 2], pad_before: [0; 3], pad_after: [0, 1, 1], ..ConvSpec::same([0; 3]) };
                let y = spatial.run(be, x, spec)?;
                match temporal {
                    Some(conv) => downsample_time(be, y, conv, caches.next_slot()),
                    None => Ok(y),
                }
            }
        }
    }
}

/// upsample3d's temporal half: None on the first chunk (its frame passes through alone);
/// afterwards each input frame becomes two, from the two halves of the causal time conv.
fn upsample_time<B: Backend>(
    be: &B,
    x: &Tensor<B>,
    [first, second]: &[Conv<B>; 2],
    slot: &mut TemporalSlot<B>,
) -> Result<Option<Tensor<B>>> {
    if !slot.seen {
        slot.seen = true;
        return Ok(None);
    }
    let (input, zeros) = with_context(be, x, slot)?;
    let a = first.run(be, &input, first.causal_spec(zeros))?;
    let b = second.run(be, &input, second.causal_spec(zeros))?;
    slot.frames = Some(last_frames(be, &input, CONTEXT)?);
    let t = x.shape()[0];
    let mut shape = x.shape().to_vec();
    shape[0] = 2 * t;
    let mut out = Tensor::empty(be, &shape)?;
    for i in 0..t {
        crate::backend::copy_frames(be, &mut out, 2 * i, &a, i, 1)?;
        crate::backend::copy_frames(be, &mut out, 2 * i + 1, &b, i, 1)?;
    }
    Ok(Some(out))
}

/// downsample3d's temporal half: the first chunk passes through (remembering its last frame);
/// afterwards [last frame of the previous chunk, chunk] go through the stride-2 (3,1,1) conv.
fn downsample_time<B: Backend>(be: &B, y: Tensor<B>, conv: &Conv<B>, slot: &mut TemporalSlot<B>) -> Result<Tensor<B>> {
    let last = last_frames(be, &y, 1)?;
    if !slot.seen {
        slot.seen = true;
        slot.frames = Some(last);
        return Ok(y);
    }
    let input = concat_frames(be, slot.frames.as_ref(), &y)?;
    slot.frames = Some(last);
    let spec = ConvSpec { stride: [2, 1, 1], ..ConvSpec::same([0; 3]) };
    conv.run(be, &input, spec)
}
