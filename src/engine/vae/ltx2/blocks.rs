//! The LTX-2 autoencoder's layers (diffusers 0.42.1 `autoencoder_kl_ltx2.py`), on channels-last
//! clips (T, H, W, C) of one sample.

use super::config::{Resampling, TimePadding};
use crate::backend::{
    add, add_f32, conv3d, copy_frames, depth_to_space, rms_norm_act, rms_norm_f32_input_act, space_to_depth,
    table_to_tensor, Activation, Backend, ConvSpec, NormWeight, PadMode, SubpixelOrder, Tensor, Write,
};
use crate::engine::vae::clip::{concat_frames, frames, last_frames, F32Frames, TemporalCaches};
use crate::engine::weights::WeightLoader;
use crate::error::{Error, Result};

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

    pub fn c_in(&self) -> usize {
        self.w.shape()[4]
    }

    /// x (T, H, W, C_in) → (T, H, W, C_out), the whole clip: time padded at both ends as the
    /// causality says (causal: [x₀, x₀, x₀ … x_{T−1}]; centered: [x₀, x₀ … x_{T−1}, x_{T−1}]).
    pub fn forward(&self, be: &B, x: &Tensor<B>) -> Result<Tensor<B>> {
        let (before, after) = self.time.frames();
        let padded = pad_frames(be, None, Some(x), before, after)?
            .ok_or_else(|| Error::shape("ltx2 conv", "a whole clip without frames"))?;
        self.conv_padded(be, &padded)
    }

    /// `forward` of one chunk of an input streamed in time (`caches`; `None`: x is the whole
    /// clip). The conv keeps the last two frames of its padded input as the next chunk's left
    /// context; the clip's first frames are padded on the first chunk and its last on the last
    /// (`TemporalCaches::last_chunk`), so the chunks' outputs, concatenated, are the whole clip's.
    /// A causal conv emits as many frames as it takes; a centered one lags a frame behind (its
    /// output t needs input t + 1): one fewer on the first chunk, one more on the last, and
    /// nothing (`None`) while it has seen fewer than two frames.
    pub fn forward_in(
        &self,
        be: &B,
        x: Option<&Tensor<B>>,
        caches: Option<&mut TemporalCaches<B>>,
    ) -> Result<Option<Tensor<B>>> {
        let Some(caches) = caches else { return x.map(|x| self.forward(be, x)).transpose() };
        let (before, after) = self.time.frames();
        let last = caches.last_chunk();
        let slot = caches.next_slot();
        let context = slot.frames.take();
        let before = if context.is_none() { before } else { 0 };
        let after = if last { after } else { 0 };
        let Some(padded) = pad_frames(be, context.as_ref(), x, before, after)? else { return Ok(None) };
        if padded.shape()[0] < 3 {
            slot.frames = Some(padded);
            return Ok(None);
        }
        slot.frames = Some(last_frames(be, &padded, 2)?);
        Ok(Some(self.conv_padded(be, &padded)?))
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

/// The frames a causal layer emitted for a chunk it was given: always some (only a centered conv
/// lags its input).
pub fn emitted<B: Backend>(x: Option<Tensor<B>>) -> Result<Tensor<B>> {
    x.ok_or_else(|| Error::shape("ltx2 encoder", "a causal layer emitted no frames for a chunk it was given (a bug)"))
}

/// [context, x₀ × `before`, x, x_last × `after`] in one copy, x₀ being x's first frame and x_last
/// the last frame of context and x; `None` when neither has frames.
fn pad_frames<B: Backend>(
    be: &B,
    context: Option<&Tensor<B>>,
    x: Option<&Tensor<B>>,
    before: usize,
    after: usize,
) -> Result<Option<Tensor<B>>> {
    let Some(like) = x.or(context) else { return Ok(None) };
    let (c, t) = (context.map_or(0, |c| c.shape()[0]), x.map_or(0, |x| x.shape()[0]));
    let before = if x.is_some() { before } else { 0 };
    let mut shape = like.shape().to_vec();
    shape[0] = c + before + t + after;
    let mut out = Tensor::empty(be, &shape)?;
    if let Some(context) = context {
        copy_frames(be, &mut out, 0, context, 0, c)?;
    }
    if let Some(x) = x {
        for i in 0..before {
            copy_frames(be, &mut out, c + i, x, 0, 1)?;
        }
        copy_frames(be, &mut out, c + before, x, 0, t)?;
    }
    let (tail, tail_frame) = match x {
        Some(x) => (x, t - 1),
        None => (like, c - 1),
    };
    for i in 0..after {
        copy_frames(be, &mut out, c + before + t + i, tail, tail_frame, 1)?;
    }
    Ok(Some(out))
}

/// The first `n` frames of [pending, x] (`None` if n = 0), the rest kept in `pending` for the next
/// chunk: the frames of a residual path that its lagging branch's `n` new output frames line up
/// with.
fn aligned_frames<B: Backend>(
    be: &B,
    pending: &mut Option<Tensor<B>>,
    x: Option<&Tensor<B>>,
    n: usize,
) -> Result<Option<Tensor<B>>> {
    let joined = match (pending.take(), x) {
        (None, None) => return Ok(None),
        (Some(p), None) => p,
        (p, Some(x)) => concat_frames(be, p.as_ref(), x)?,
    };
    let t = joined.shape()[0];
    if n < t {
        *pending = Some(frames(be, &joined, n, t - n)?);
    }
    Ok(match n {
        0 => None,
        _ if n >= t => Some(joined),
        _ => Some(frames(be, &joined, 0, n)?),
    })
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

    /// conv2(silu(norm(conv1(silu(norm(x)))))) of the f32 residual stream's new frames `x` (the
    /// norm reads them in f32), streamed in time as `Conv::forward_in` says: a centered branch
    /// lags its input by two frames. Each temporary is dropped once the next is made.
    fn branch(
        &self,
        be: &B,
        x: Option<&F32Frames<B>>,
        mut caches: Option<&mut TemporalCaches<B>>,
    ) -> Result<Option<Tensor<B>>> {
        let normed = x.map(|x| self.norm.forward_f32(be, &x.table, &x.shape)).transpose()?;
        let h = self.conv1.forward_in(be, normed.as_ref(), caches.as_deref_mut())?;
        drop(normed);
        let normed = h.as_ref().map(|h| self.norm.forward(be, h)).transpose()?;
        drop(h);
        self.conv2.forward_in(be, normed.as_ref(), caches)
    }
}

/// `resnets` in order on x, their residual stream held in f32 between them (x comes in and goes
/// out in the compute dtype): each adds its conv2's bf16 output to the stream in f32. A bf16
/// stream, rounded after every resnet as diffusers' bf16 run and our first CUDA version did, was
/// most of the CUDA backend's error on the released VAE: emulated in
/// tools/ltx2_bf16_error_budget.py (`bf16-stream` → `f32-resnets`), decode 1.09e-2 → 6.8e-3 and
/// encode 1.09e-2 → 6.9e-3 from f32. Costs a pass over the stream per resnet (an f32
/// read-modify-write instead of conv2's epilogue adding into a bf16 one) and one more clip of
/// memory at each level: +15 ms (2.6%) on the 704×1280×81 encode, the decode unchanged
/// (BENCHMARKS.md; fusing the add into conv2's epilogue measured no gain).
///
/// `caches`: one chunk of a clip streamed in time (`Conv::forward_in`); `None` for a whole clip.
/// Each resnet's stream frames wait in its slot until its branch, which lags them, emits theirs;
/// x and the result are `None` when a chunk has no frames at this point yet.
pub fn resnets_f32<B: Backend>(
    be: &B,
    resnets: &[ResBlock<B>],
    x: Option<Tensor<B>>,
    mut caches: Option<&mut TemporalCaches<B>>,
) -> Result<Option<Tensor<B>>> {
    if resnets.is_empty() {
        return Ok(x);
    }
    let mut stream = match x {
        Some(x) => {
            let mut table = be.alloc_table(x.len())?;
            add_f32(be, &mut table, &x, Write::Overwrite)?;
            Some(F32Frames { table, shape: x.shape().to_vec() })
        }
        None => None,
    };
    for res in resnets {
        let y = res.branch(be, stream.as_ref(), caches.as_deref_mut())?;
        let n = y.as_ref().map_or(0, |y| y.shape()[0]);
        let mut head = match caches.as_deref_mut() {
            // whole clip: the branch gives every frame
            None => stream.take(),
            Some(caches) => {
                let slot = caches.next_slot();
                let joined = F32Frames::concat(be, slot.stream.take(), stream.take())?;
                let (head, rest) = F32Frames::split(be, joined, n)?;
                slot.stream = rest;
                head
            }
        };
        if let (Some(head), Some(y)) = (head.as_mut(), &y) {
            add_f32(be, &mut head.table, y, Write::Accumulate)?;
        }
        stream = head;
    }
    // the stream rounded back to the compute dtype
    stream
        .map(|s| {
            let mut out = Tensor::empty(be, &s.shape)?;
            table_to_tensor(be, &mut out, &s.table)?;
            Ok(out)
        })
        .transpose()
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
        let h = emitted(self.conv.forward_in(be, Some(x), caches)?)?;
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

    /// Channels of its input.
    pub fn channels_in(&self) -> usize {
        self.conv.c_in()
    }

    /// x (T, H, W, C) → (st·T − st + 1, sh·H, sw·W, C / factor) for a whole clip (`caches`
    /// `None`). Streamed in time (`caches`: one chunk, see `Conv::forward_in`), the conv lags its
    /// input by a frame, so the residual path takes the input frames that line up with the
    /// conv's output (the rest wait in a slot), and the first st − 1 frames are dropped from the
    /// first output only.
    pub fn forward(
        &self,
        be: &B,
        x: Option<&Tensor<B>>,
        mut caches: Option<&mut TemporalCaches<B>>,
    ) -> Result<Option<Tensor<B>>> {
        let [st, sh, sw] = self.stride;
        let p = st * sh * sw;
        let streamed = caches.is_some();
        let y = self.conv.forward_in(be, x, caches.as_deref_mut())?;
        let n = y.as_ref().map_or(0, |y| y.shape()[0]);
        // every slot is taken on every chunk, whether or not this one has frames to emit
        let (aligned, first) = match caches {
            None => (None, true),
            Some(caches) => {
                let aligned =
                    if self.residual { aligned_frames(be, &mut caches.next_slot().frames, x, n)? } else { None };
                let slot = caches.next_slot();
                let first = !slot.seen;
                slot.seen |= n > 0;
                (aligned, first)
            }
        };
        let Some(y) = y else { return Ok(None) };
        let residual_in = match (self.residual, streamed) {
            (false, _) => None,
            (true, true) => aligned.as_ref(),
            (true, false) => x,
        };
        let [t, h, w, c] = *y.shape() else { unreachable!("clips are (T, H, W, C)") };
        let fine = |c: usize| [st * t, sh * h, sw * w, c];
        // diffusers drops the first st − 1 frames (the causal-time convention: T latent frames
        // decode to 1 + st·(T − 1))
        let dropped = if first { st - 1 } else { 0 };
        let keep = |be: &B, x: Tensor<B>| if dropped > 0 { frames(be, &x, dropped, st * t - dropped) } else { Ok(x) };
        let mut up = Tensor::empty(be, &fine(c / p))?;
        depth_to_space(be, &mut up, &y, self.stride, SubpixelOrder::Thw, 1)?;
        drop(y);
        let mut out = keep(be, up)?;
        if let Some(x) = residual_in {
            let mut r = Tensor::empty(be, &fine(x.shape()[3] / p * self.repeat))?;
            depth_to_space(be, &mut r, x, self.stride, SubpixelOrder::Thw, self.repeat)?;
            add(be, &mut out, &keep(be, r)?)?;
        }
        Ok(Some(out))
    }
}
