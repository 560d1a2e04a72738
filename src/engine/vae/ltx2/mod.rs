//! The LTX-2 video autoencoder (diffusers 0.42.1 `AutoencoderKLLTX2Video`, MODEL.md §3.1–3.2),
//! the 720p model's: 32× spatial, 8× temporal, 128 latent channels. Input 4×4 space-to-depth
//! (channels in (c, p_w, p_h) order), a causal encoder (time padded by repeating the first frame),
//! a non-causal decoder (first and last frames repeated, reflect padding in space) with residual
//! depth-to-space upsamplers, and the latent statistics stored as buffers in the checkpoint.
//!
//! Long clips stream through both halves in time, exactly (`Chunking`, by default when the whole
//! clip's estimate exceeds the memory budget). The encoder is causal: the first frame, then chunks
//! of a multiple of 8 frames, each causal conv's last two padded input frames carried to the next
//! chunk and the downsamplers' leading frames prepended to the first chunk only. The decoder is
//! not (every output frame sees the next frame of each conv's input): each centered conv carries
//! the same two frames but lags its input by one, so a chunk's video frames are the next ones of
//! the whole clip's — none from the first chunks (the released decoder sees 22 latent frames
//! ahead), the rest in the last chunk's flush, which runs stage by stage in pieces of a chunk's
//! length so the peak does not grow with the clip. Large frames (2K and up) may also decode in
//! overlapping spatial tiles blended as diffusers' `tiled_decode` (`tiling`): when asked for, or
//! by default when neither the whole clip nor a streamed chunk fits the budget.

mod blocks;
mod config;
pub mod tiling;

pub use config::{Ltx2Config, Resampling, TimePadding, CLASS_NAME};
pub use tiling::{Chunking, MemoryBudget, TilePlan, TileSpec, Tiling};

use std::cell::RefCell;

use blocks::{emitted, resnets_f32, Conv, Downsampler, NormSilu, ResBlock, Upsampler};

use super::clip::{
    download_channels_last, frames, sample_to_channels_last, upload_channels_last, write_channels_last, TemporalCaches,
};
use super::{check_frame_count, posterior_mean};
use crate::backend::{depth_to_space, space_to_depth, Backend, PadMode, SubpixelOrder, Tensor};
use crate::engine::progress::Progress;
use crate::engine::weights::{check_no_unknown_tensors, LoadLog, WeightLoader, WeightSource};
use crate::error::{Error, Result};
use crate::io::{ConfigFile, ModelFolder};

/// `LTX2VideoDownBlock3D`: resnets, then an optional downsampler.
struct DownBlock<B: Backend> {
    resnets: Vec<ResBlock<B>>,
    downsampler: Option<Downsampler<B>>,
}

struct Encoder<B: Backend> {
    patch: usize,
    conv_in: Conv<B>,
    down_blocks: Vec<DownBlock<B>>,
    mid: Vec<ResBlock<B>>,
    norm_out: NormSilu<B>,
    conv_out: Conv<B>,
}

/// A config whose channel counts do not chain the way diffusers builds them.
fn bad_widths(path: &std::path::Path, key: &str, why: String) -> Error {
    Error::config_key(path, key, why)
}

impl<B: Backend> Encoder<B> {
    fn load(w: &WeightLoader<B>, c: &Ltx2Config, path: &std::path::Path) -> Result<Self> {
        let (time, pad) = (c.encoder_time, c.encoder_spatial_padding);
        let p = c.patch_size;
        // conv_in emits latent_channels (128), the width of the first down block
        let conv_in = Conv::load(&w.pp("conv_in"), c.in_channels * p * p, c.latent_channels, time, pad)?;
        let mut width = c.latent_channels;
        let mut down_blocks = Vec::new();
        for (i, (&c_out, &kind)) in c.block_out_channels.iter().zip(&c.downsamplers).enumerate() {
            let bw = w.pp(format!("down_blocks.{i}"));
            let resnets = (0..c.layers_per_block[i])
                .map(|r| ResBlock::load(&bw.pp(format!("resnets.{r}")), width, time, pad))
                .collect::<Result<Vec<_>>>()?;
            let downsampler = match kind {
                Some(kind) => {
                    let s: usize = kind.stride().iter().product();
                    if !c_out.is_multiple_of(s) || !(width * s).is_multiple_of(c_out) {
                        return Err(bad_widths(
                            path,
                            "block_out_channels",
                            format!(
                                "down block {i} goes {width} → {c_out} channels by {kind:?}: {c_out} must be a multiple \
                                 of {s} and divide {}",
                                width * s
                            ),
                        ));
                    }
                    let d = Downsampler::load(&bw.pp("downsamplers.0"), width, c_out, kind, time, pad)?;
                    width = c_out;
                    Some(d)
                }
                // diffusers declares the next block at c_out although the channels did not change
                None if c_out != width => {
                    return Err(bad_widths(
                        path,
                        "block_out_channels",
                        format!("down block {i} has no downsampler but changes width {width} → {c_out}"),
                    ))
                }
                None => None,
            };
            down_blocks.push(DownBlock { resnets, downsampler });
        }
        let mid_layers = *c.layers_per_block.last().expect("layers_per_block checked non-empty");
        let mid = (0..mid_layers)
            .map(|r| ResBlock::load(&w.pp(format!("mid_block.resnets.{r}")), width, time, pad))
            .collect::<Result<Vec<_>>>()?;
        Ok(Encoder {
            patch: p,
            conv_in,
            down_blocks,
            mid,
            norm_out: NormSilu::new(w.backend(), width)?,
            // mean (latent_channels) + one shared log-variance channel
            conv_out: Conv::load(&w.pp("conv_out"), width, c.latent_channels + 1, time, pad)?,
        })
    }

    /// Video (T, H, W, 3) → (T', H/32, W/32, latent_channels + 1). `caches`: x is one chunk of a
    /// clip streamed in time (the first frame, then multiples of 8 frames), the causal convs'
    /// context carried in `caches` (see `blocks::Conv::forward_in`); `None`: the whole clip.
    fn forward(
        &self,
        be: &B,
        x: &Tensor<B>,
        progress: &mut dyn FnMut(&str) -> Result<()>,
        mut caches: Option<&mut TemporalCaches<B>>,
    ) -> Result<Tensor<B>> {
        let [t, h, w, c] = *x.shape() else { unreachable!("clips are (T, H, W, C)") };
        let p = self.patch;
        // (T, H, W, 3) → (T, H/p, W/p, 3·p·p), channels (c, p_w, p_h): diffusers' "weird patching order"
        let mut patches = Tensor::empty(be, &[t, h / p, w / p, c * p * p])?;
        space_to_depth(be, &mut patches, x, [1, p, p], SubpixelOrder::Twh, 1)?;
        let mut x = self.conv_in.forward_in(be, Some(&patches), caches.as_deref_mut())?;
        for (i, block) in self.down_blocks.iter().enumerate() {
            progress(&format!("encoder block {}/{}", i + 1, self.down_blocks.len()))?;
            x = resnets_f32(be, &block.resnets, x, caches.as_deref_mut())?;
            if let Some(down) = &block.downsampler {
                x = Some(down.forward(be, &emitted(x)?, caches.as_deref_mut())?);
            }
        }
        let x = emitted(resnets_f32(be, &self.mid, x, caches.as_deref_mut())?)?;
        emitted(self.conv_out.forward_in(be, Some(&self.norm_out.forward(be, &x)?), caches)?)
    }
}

/// `LTX2VideoUpBlock3d`: an optional upsampler, then resnets (no conv_in: see `Decoder::load`).
struct UpBlock<B: Backend> {
    upsampler: Option<Upsampler<B>>,
    resnets: Vec<ResBlock<B>>,
}

struct Decoder<B: Backend> {
    patch: usize,
    out_channels: usize,
    conv_in: Conv<B>,
    mid: Vec<ResBlock<B>>,
    up_blocks: Vec<UpBlock<B>>,
    norm_out: NormSilu<B>,
    conv_out: Conv<B>,
}

impl<B: Backend> Decoder<B> {
    fn load(w: &WeightLoader<B>, c: &Ltx2Config, path: &std::path::Path) -> Result<Self> {
        let (time, pad) = (c.decoder_time, c.decoder_spatial_padding);
        // diffusers reverses every per-block list: the decoder runs the widest block first
        let widths: Vec<usize> = c.decoder_block_out_channels.iter().rev().copied().collect();
        let layers: Vec<usize> = c.decoder_layers_per_block.iter().rev().copied().collect();
        let ups: Vec<_> = c.upsamplers.iter().rev().copied().collect();
        let mut width = widths[0];
        let conv_in = Conv::load(&w.pp("conv_in"), c.latent_channels, width, time, pad)?;
        let mid = (0..layers[0])
            .map(|r| ResBlock::load(&w.pp(format!("mid_block.resnets.{r}")), width, time, pad))
            .collect::<Result<Vec<_>>>()?;
        let mut up_blocks = Vec::new();
        for (i, up) in ups.iter().enumerate() {
            let bw = w.pp(format!("up_blocks.{i}"));
            let factor = up.map_or(1, |(_, _, f)| f);
            // diffusers: out_channels = widths[i] / factor; the upsampler takes out · factor
            // channels and gives out. A block whose input differs would get a conv_in resnet
            // (LayerNorm + 1×1 shortcut) that no LTX-2 VAE has: refused.
            let c_out = widths[i] / factor;
            let needs = if up.is_some() { c_out * factor } else { c_out };
            if width != needs {
                return Err(bad_widths(
                    path,
                    "decoder_block_out_channels",
                    format!(
                        "up block {i} receives {width} channels but is built for {needs} (a conv_in resnet between \
                         widths, which no LTX-2 VAE has and this engine does not implement)"
                    ),
                ));
            }
            let upsampler = match *up {
                Some(spec @ (kind, _, factor)) => {
                    let s: usize = kind.stride().iter().product();
                    if !width.is_multiple_of(s) || !s.is_multiple_of(factor) {
                        return Err(bad_widths(
                            path,
                            "upsample_factor",
                            format!("up block {i}: {width} channels by {kind:?} with factor {factor} do not divide"),
                        ));
                    }
                    width = c_out;
                    Some(Upsampler::load(&bw.pp("upsamplers.0"), width * factor, spec, time, pad)?)
                }
                None => None,
            };
            let resnets = (0..layers[i + 1])
                .map(|r| ResBlock::load(&bw.pp(format!("resnets.{r}")), width, time, pad))
                .collect::<Result<Vec<_>>>()?;
            up_blocks.push(UpBlock { upsampler, resnets });
        }
        let p = c.patch_size;
        Ok(Decoder {
            patch: p,
            out_channels: c.out_channels,
            conv_in,
            mid,
            up_blocks,
            norm_out: NormSilu::new(w.backend(), width)?,
            conv_out: Conv::load(&w.pp("conv_out"), width, c.out_channels * p * p, time, pad)?,
        })
    }

    /// The largest activation tensor (elements) of a (t, h, w) latent's decode: every conv's
    /// time-padded input and output, every upsampler's pre-shuffle output.
    fn largest_activation(&self, [t, h, w]: [usize; 3]) -> usize {
        let (mut dims, mut c) = ([t, h, w], self.conv_in.c_out());
        let padded = |[t, h, w]: [usize; 3], c: usize| (t + 2) * h * w * c;
        let mut largest = padded(dims, c);
        for block in &self.up_blocks {
            if let Some(up) = &block.upsampler {
                let [st, sh, sw] = up.stride();
                let y = up.conv_channels();
                largest = largest.max(dims.iter().product::<usize>() * y);
                dims = [st * dims[0] - (st - 1), sh * dims[1], sw * dims[2]];
                c = y / (st * sh * sw);
            }
            largest = largest.max(padded(dims, c));
        }
        largest.max(dims.iter().product::<usize>() * self.conv_out.c_out())
    }

    /// Latent frames' worth a stage may take beyond a streamed chunk's share at the finest rate:
    /// in the last chunk's flush a run of resnets emits two frames per resnet more than it took, and
    /// conv_out one (18 + 1 frames at 8× the latent rate for the released decoder: 2 latent frames).
    fn stream_burst_latents(&self) -> usize {
        let last_run = self.up_blocks.last().map_or(self.mid.len(), |b| b.resnets.len());
        (2 * last_run + 1).div_ceil(self.stage_rate(self.stage_count() - 1))
    }

    /// The most bytes the temporal caches of a decode streamed in time hold for an (h, w) latent,
    /// at `element_bytes` per activation: two input frames of every conv, two f32 frames of every
    /// resnet's residual stream waiting for its branch, one input frame of every upsampler's
    /// residual path.
    fn stream_cache_bytes(&self, [h, w]: [usize; 2], element_bytes: usize) -> usize {
        let resnets = |pixels: usize, c: usize, n: usize| n * pixels * c * (2 * 2 * element_bytes + 2 * 4);
        let (mut pixels, mut c) = (h * w, self.conv_in.c_out());
        let mut total = 2 * pixels * self.conv_in.c_in() * element_bytes + resnets(pixels, c, self.mid.len());
        for block in &self.up_blocks {
            if let Some(up) = &block.upsampler {
                let [st, sh, sw] = up.stride();
                total += 3 * pixels * up.channels_in() * element_bytes;
                pixels *= sh * sw;
                c = up.conv_channels() / (st * sh * sw);
            }
            total += resnets(pixels, c, block.resnets.len());
        }
        total + 2 * pixels * c * element_bytes
    }

    /// The decoder as a sequence of stages a clip passes through in order: conv_in, the mid
    /// block's resnets, each up block's upsampler and resnets, then norm_out, conv_out and the
    /// patch shuffle.
    fn stage_count(&self) -> usize {
        2 + 2 * self.up_blocks.len() + 1
    }

    /// Stage `i` on x, the whole clip (`caches` `None`) or one chunk of it streamed in time (the
    /// stage's own caches): its centered convs lag their inputs (see `blocks::Conv::forward_in`),
    /// so a chunk's output is the next frames of the whole clip's, fewer than it took at first
    /// (`None` while none is ready), more on the last chunk.
    fn stage(
        &self,
        be: &B,
        i: usize,
        x: Option<Tensor<B>>,
        caches: Option<&mut TemporalCaches<B>>,
    ) -> Result<Option<Tensor<B>>> {
        let ups = self.up_blocks.len();
        match i {
            0 => self.conv_in.forward_in(be, x.as_ref(), caches),
            1 => resnets_f32(be, &self.mid, x, caches),
            i if i < 2 + 2 * ups => {
                let block = &self.up_blocks[(i - 2) / 2];
                match (&block.upsampler, i % 2 == 0) {
                    (Some(up), true) => up.forward(be, x.as_ref(), caches),
                    (None, true) => Ok(x),
                    (_, false) => resnets_f32(be, &block.resnets, x, caches),
                }
            }
            _ => {
                let normed = x.map(|x| self.norm_out.forward(be, &x)).transpose()?;
                let Some(x) = self.conv_out.forward_in(be, normed.as_ref(), caches)? else { return Ok(None) };
                // (T, H, W, 3·p·p) → (T, H·p, W·p, 3), channels (c, p_w, p_h) as the encoder's patches
                let [t, h, w, _] = *x.shape() else { unreachable!("clips are (T, H, W, C)") };
                let p = self.patch;
                let mut out = Tensor::empty(be, &[t, h * p, w * p, self.out_channels])?;
                depth_to_space(be, &mut out, &x, [1, p, p], SubpixelOrder::Twh, 1)?;
                Ok(Some(out))
            }
        }
    }

    /// Frames stage `i` emits per latent frame (the upsamplers' temporal strides up to it).
    fn stage_rate(&self, i: usize) -> usize {
        // stages 2 and 3 run at the first upsampler's rate, 4 and 5 at the second's…
        self.up_blocks.iter().take(i / 2).filter_map(|b| b.upsampler.as_ref()).map(|u| u.stride()[0]).product()
    }

    /// Latents (T, h, w, C) → video (1 + 8(T − 1), 32h, 32w, 3), the whole clip at once.
    fn forward(&self, be: &B, z: &Tensor<B>, progress: &mut dyn FnMut(&str) -> Result<()>) -> Result<Tensor<B>> {
        let mut x = Some(self.conv_in.forward(be, z)?);
        for i in 1..self.stage_count() {
            if i >= 2 && i % 2 == 0 && i < 2 + 2 * self.up_blocks.len() {
                progress(&format!("decoder block {}/{}", i / 2, self.up_blocks.len()))?;
            }
            x = self.stage(be, i, x, None)?;
        }
        x.ok_or_else(|| Error::shape("ltx2 decode", "a whole clip decoded to no frames"))
    }

    /// `x`, the output of the stage before `i` for one chunk of a clip streamed in time (`last`:
    /// the clip's end), through stages i.. (`caches`: one per stage), the video frames that come
    /// out handed to `emit` in order. Each stage's output goes on in pieces of at most `piece`
    /// latent frames' worth at its rate, so no stage takes more than that plus its lag at once,
    /// not even when the last chunk flushes what the lagging convs held back (about 22 latent
    /// frames at the released widths: the whole of an 81-frame clip).
    #[allow(clippy::too_many_arguments)] // the recursion's state; one caller, `Ltx2Vae::decode_clip`
    fn stream_from(
        &self,
        be: &B,
        i: usize,
        x: Option<Tensor<B>>,
        last: bool,
        piece: usize,
        caches: &mut [TemporalCaches<B>],
        emit: &mut dyn FnMut(&Tensor<B>) -> Result<()>,
    ) -> Result<()> {
        if i == self.stage_count() {
            return x.map_or(Ok(()), |x| emit(&x));
        }
        caches[i].start_chunk(last);
        let Some(y) = self.stage(be, i, x, Some(&mut caches[i]))? else {
            return if last { self.stream_from(be, i + 1, None, true, piece, caches, emit) } else { Ok(()) };
        };
        let (t, step) = (y.shape()[0], piece * self.stage_rate(i));
        if t <= step {
            return self.stream_from(be, i + 1, Some(y), last, piece, caches, emit);
        }
        for start in (0..t).step_by(step) {
            let part = frames(be, &y, start, step.min(t - start))?;
            self.stream_from(be, i + 1, Some(part), last && start + step >= t, piece, caches, emit)?;
        }
        Ok(())
    }
}

pub struct Ltx2Vae<B: Backend> {
    pub config: Ltx2Config,
    encoder: Encoder<B>,
    decoder: Decoder<B>,
    /// The checkpoint's `latents_mean` / `latents_std` buffers (latent_channels each).
    pub latents_mean: Vec<f32>,
    pub latents_std: Vec<f32>,
    pub parameter_count: usize,
    /// What `decode` does with large clips (`Tiling::default()`: tiles past the memory budget).
    pub tiling: Tiling,
    /// What `encode` does with long clips (`Chunking::default()`: streams past the memory budget).
    pub encode_chunking: Chunking,
    /// What `decode` does with long clips, within each tile if it tiles (`Chunking::default()`:
    /// streams past the memory budget).
    pub decode_chunking: Chunking,
}

impl<B: Backend> Ltx2Vae<B> {
    pub fn from_folder(be: &B, folder: &ModelFolder) -> Result<Self> {
        let cfg = folder.component_config("vae")?;
        let config = Ltx2Config::from_file(&cfg)?;
        Self::load(be, config, &cfg.path, &WeightSource::Files(folder.component_weights("vae")?))
    }

    /// The architecture of `config_path` with seeded random weights (benchmarks).
    pub fn random(be: &B, config_path: &std::path::Path, seed: u64) -> Result<Self> {
        let config = Ltx2Config::from_file(&ConfigFile::open(config_path)?)?;
        Self::load(be, config, config_path, &WeightSource::Random { seed })
    }

    pub fn load(be: &B, config: Ltx2Config, config_path: &std::path::Path, source: &WeightSource) -> Result<Self> {
        let log = RefCell::new(LoadLog::default());
        let w = WeightLoader::new(be, source, &log);
        let n = config.latent_channels;
        let encoder = Encoder::load(&w.pp("encoder"), &config, config_path)?;
        let decoder = Decoder::load(&w.pp("decoder"), &config, config_path)?;
        let latents_mean = w.host("latents_mean", &[n])?;
        let mut latents_std = w.host("latents_std", &[n])?;
        let log = log.into_inner();
        match source {
            WeightSource::Files(files) => {
                check_no_unknown_tensors(files, &log)?;
                if let Some(bad) = latents_std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
                    return Err(Error::config_key(
                        config_path,
                        "latents_std",
                        format!("(the checkpoint buffer) holds {bad}; the latent statistics must be positive"),
                    ));
                }
            }
            // random weights are not statistics: normalise by 1
            WeightSource::Random { .. } => latents_std.iter_mut().for_each(|s| *s = 1.0),
        }
        Ok(Ltx2Vae {
            config,
            encoder,
            decoder,
            latents_mean,
            latents_std,
            parameter_count: log.parameters,
            tiling: Tiling::default(),
            encode_chunking: Chunking::default(),
            decode_chunking: Chunking::default(),
        })
    }

    /// Frames a clip of `latent_frames` decodes to (1 + 8·(T − 1)).
    pub fn decoded_frames(&self, latent_frames: usize) -> usize {
        1 + self.config.temporal_factor() * latent_frames.saturating_sub(1)
    }

    /// Latents (B, C, T, h, w), as the VAE made them (not the transformer's normalised ones) →
    /// video (B, 3, 1 + 8(T − 1), 32h, 32w). Like diffusers' `AutoencoderKLLTX2Video.decode`,
    /// not clamped (the pipelines clamp after mapping to [0, 1]). Tiled as `self.tiling` says.
    pub fn decode(
        &self,
        be: &B,
        z: &[f32],
        shape: [usize; 5],
        progress: &dyn Progress,
    ) -> Result<(Vec<f32>, [usize; 5])> {
        self.decode_with(be, z, shape, self.tiling, progress)
    }

    /// The smallest latent height / width a decode (or a tile) takes: reflect padding needs two
    /// pixels to reflect (PyTorch refuses a pad as wide as the input).
    fn thinnest(&self) -> usize {
        if self.config.decoder_spatial_padding == PadMode::Reflect {
            2
        } else {
            1
        }
    }

    /// A (t, h, w) latent's whole-clip decode on `be`: (its largest activation tensor in
    /// elements, the estimated peak activation bytes = `ACTIVATION_FACTOR` × that tensor's bytes).
    pub fn decode_estimate(&self, be: &B, [t, h, w]: [usize; 3]) -> (usize, usize) {
        let largest = self.decoder.largest_activation([t, h, w]);
        (largest, largest.saturating_mul(be.element_bytes()).saturating_mul(tiling::ACTIVATION_FACTOR))
    }

    /// A (t, h, w) latent's decode streamed `k` latent frames at a time on `be`: (the largest
    /// activation tensor of a chunk in elements, the estimated peak bytes: a chunk's activations
    /// as those of a clip of k + 1 latent frames and the flush's burst, plus the temporal caches).
    pub fn stream_estimate(&self, be: &B, k: usize, [h, w]: [usize; 2]) -> (usize, usize) {
        let (largest, bytes) = self.decode_estimate(be, [k + 1 + self.decoder.stream_burst_latents(), h, w]);
        (largest, bytes.saturating_add(self.decoder.stream_cache_bytes([h, w], be.element_bytes())))
    }

    /// The tile grid `tiling` gives a (B, C, T, h, w) latent on `be`, or `None` for whole frames.
    /// `Tiling::Auto` tiles only what fits its budget neither whole nor streamed in time as
    /// `decode_chunking` says: streaming is exact, tiles blend.
    pub fn tile_plan(&self, be: &B, shape: [usize; 5], tiling: Tiling) -> Result<Option<TilePlan>> {
        let [_, _, t, h, w] = shape;
        let (s, thin) = (self.config.spatial_factor(), self.thinnest());
        match tiling {
            Tiling::Off => Ok(None),
            Tiling::Tiles(spec) => tiling::plan(spec, h, w, s, thin),
            Tiling::Auto { budget, tiles } => {
                let budget = budget.bytes(be.available_memory());
                let fits = |(largest, bytes): (usize, usize)| bytes <= budget && largest <= i32::MAX as usize;
                let streamed_fits = match self.decode_chunk_latents(be, [t, h, w])? {
                    Some(k) => fits(self.stream_estimate(be, k, [h, w])),
                    None => false,
                };
                if fits(self.decode_estimate(be, [t, h, w])) || streamed_fits {
                    Ok(None)
                } else {
                    tiling::fitted_plan(tiles, h, w, s, thin)
                }
            }
        }
    }

    /// The latent frames per chunk `decode_chunking` gives a (t, h, w) decode (whole frames or
    /// one tile), or `None` for the whole clip at once.
    pub fn decode_chunk_latents(&self, be: &B, [t, h, w]: [usize; 3]) -> Result<Option<usize>> {
        let tf = self.config.temporal_factor();
        match self.decode_chunking {
            Chunking::Off => Ok(None),
            Chunking::Frames(n) if n == 0 || !n.is_multiple_of(tf) => Err(Error::InputShape {
                name: "decode chunk frames".into(),
                expected: format!("a positive multiple of the decoder's temporal factor {tf}"),
                got: n.to_string(),
            }),
            Chunking::Frames(n) => Ok(Some(n / tf)),
            Chunking::Auto { budget } => {
                let budget = budget.bytes(be.available_memory());
                let fits = |(largest, bytes): (usize, usize)| bytes <= budget && largest <= i32::MAX as usize;
                if t == 1 || fits(self.decode_estimate(be, [t, h, w])) {
                    return Ok(None);
                }
                // the longest chunks that fit, at least one latent frame (8 video frames)
                let k = (1..t).rev().find(|&k| fits(self.stream_estimate(be, k, [h, w]))).unwrap_or(1);
                Ok(Some(k))
            }
        }
    }

    /// `decode` with an explicit `tiling`.
    pub fn decode_with(
        &self,
        be: &B,
        z: &[f32],
        shape: [usize; 5],
        tiling: Tiling,
        progress: &dyn Progress,
    ) -> Result<(Vec<f32>, [usize; 5])> {
        let [b, c, t, h, w] = shape;
        let min = self.thinnest();
        if c != self.config.latent_channels
            || t == 0
            || h < min
            || w < min
            || z.len() != shape.iter().product::<usize>()
        {
            return Err(Error::InputShape {
                name: "latents".into(),
                expected: format!(
                    "(B, {}, T ≥ 1, H ≥ {min}, W ≥ {min}) for the LTX-2 VAE (`latent_channels` of its config)",
                    self.config.latent_channels
                ),
                got: format!("{shape:?} ({} values)", z.len()),
            });
        }
        let s = self.config.spatial_factor();
        let out_shape = [b, self.config.out_channels, self.decoded_frames(t), h * s, w * s];
        let mut out = vec![0.0; out_shape.iter().product()];
        if let Some(plan) = self.tile_plan(be, shape, tiling)? {
            self.decode_tiles(be, z, shape, &plan, &mut out, out_shape, progress)?;
            return Ok((out, out_shape));
        }
        let chunk = self.decode_chunk_latents(be, [t, h, w])?;
        let stages = chunk.map_or(self.decoder.up_blocks.len(), |k| t.div_ceil(k));
        for sample in 0..b {
            let mut tick = stage_ticker(progress, sample, b, stages);
            let x = Tensor::from_vec(be, &[t, h, w, c], sample_to_channels_last(z, shape, sample))?;
            let mut written = 0;
            self.decode_clip(be, &x, chunk, &mut tick, &mut |video| {
                download_channels_last(be, video, &mut out, out_shape, sample, written)?;
                written += video.shape()[0];
                Ok(())
            })?;
            self.check_decoded_frames(written, t)?;
        }
        Ok((out, out_shape))
    }

    /// One sample's latents (T, h, w, C) through the decoder, the whole clip at once (`chunk`
    /// `None`) or streamed in time `chunk` latent frames at a time; `emit` gets the video's frames
    /// in order, all at once or a run per chunk (none from the first chunks: the decoder sees
    /// about 22 latent frames ahead at the released widths).
    fn decode_clip(
        &self,
        be: &B,
        z: &Tensor<B>,
        chunk: Option<usize>,
        progress: &mut dyn FnMut(&str) -> Result<()>,
        emit: &mut dyn FnMut(&Tensor<B>) -> Result<()>,
    ) -> Result<()> {
        let Some(k) = chunk else { return emit(&self.decoder.forward(be, z, progress)?) };
        let t = z.shape()[0];
        let chunks = t.div_ceil(k);
        let mut caches: Vec<_> = (0..self.decoder.stage_count()).map(|_| TemporalCaches::default()).collect();
        for i in 0..chunks {
            progress(&format!("decoding chunk {}/{chunks}", i + 1))?;
            let piece = frames(be, z, i * k, k.min(t - i * k))?;
            self.decoder.stream_from(be, 0, Some(piece), i + 1 == chunks, k, &mut caches, emit)?;
        }
        Ok(())
    }

    /// A decode of `latent_frames` gave `written` video frames: a streamed decode whose chunks did
    /// not add up is a bug, said rather than written out short.
    fn check_decoded_frames(&self, written: usize, latent_frames: usize) -> Result<()> {
        let expected = self.decoded_frames(latent_frames);
        if written != expected {
            return Err(Error::shape(
                "ltx2 decode",
                format!("{latent_frames} latent frames decoded to {written} video frames, not {expected}"),
            ));
        }
        Ok(())
    }

    /// diffusers' `tiled_decode` over `plan`, sample by sample, into `out` (see `tiling`). Keeps
    /// the previous tile row on the host, as the blends need.
    #[allow(clippy::too_many_arguments)] // one call site: the tiled branch of `decode_with`
    fn decode_tiles(
        &self,
        be: &B,
        z: &[f32],
        shape: [usize; 5],
        plan: &TilePlan,
        out: &mut [f32],
        out_shape: [usize; 5],
        progress: &dyn Progress,
    ) -> Result<()> {
        let [b, c, t, h, w] = shape;
        let spec = plan.spec;
        let blend =
            (spec.min_height.saturating_sub(spec.stride_height), spec.min_width.saturating_sub(spec.stride_width));
        let (n_rows, n_cols) = (plan.rows.len(), plan.cols.len());
        let total = b * n_rows * n_cols;
        for sample in 0..b {
            let zs = sample_to_channels_last(z, shape, sample);
            let mut above: Vec<Option<tiling::Tile>> = Vec::new();
            let mut y0 = 0;
            for (i, &rows) in plan.rows.iter().enumerate() {
                let mut row: Vec<tiling::Tile> = Vec::with_capacity(n_cols);
                let mut x0 = 0;
                for (j, &cols) in plan.cols.iter().enumerate() {
                    let done = (sample * n_rows + i) * n_cols + j;
                    progress.step(
                        done,
                        total,
                        &format!("sample {}: tile {}/{}", sample + 1, i * n_cols + j + 1, n_rows * n_cols),
                    )?;
                    let x =
                        Tensor::from_vec(be, &[t, rows.1, cols.1, c], tiling::window(&zs, [t, h, w, c], rows, cols))?;
                    let chunk = self.decode_chunk_latents(be, [t, rows.1, cols.1])?;
                    let (mut data, mut frames, mut size) = (Vec::new(), 0, [0; 3]);
                    self.decode_clip(be, &x, chunk, &mut |_| Ok(()), &mut |video| {
                        let [f, th, tw, tc] = *video.shape() else { unreachable!("clips are (T, H, W, C)") };
                        data.extend(video.to_host(be)?);
                        (frames, size) = (frames + f, [th, tw, tc]);
                        Ok(())
                    })?;
                    self.check_decoded_frames(frames, t)?;
                    let [th, tw, tc] = size;
                    let mut tile = tiling::Tile { data, frames, h: th, w: tw, c: tc };
                    if let Some(up) = above.get_mut(j).and_then(Option::take) {
                        tiling::blend_v(&up, &mut tile, blend.0);
                    }
                    if let Some(left) = row.last() {
                        tiling::blend_h(left, &mut tile, blend.1);
                    }
                    tiling::place(out, out_shape, sample, &tile, (y0, x0), (spec.stride_height, spec.stride_width));
                    x0 += spec.stride_width.min(tile.w);
                    row.push(tile);
                }
                y0 += row.first().map_or(0, |tile| spec.stride_height.min(tile.h));
                above = row.into_iter().map(Some).collect();
            }
        }
        Ok(())
    }

    /// Video (B, 3, T, H, W) in [−1, 1], T = 8k + 1, H and W multiples of 32 → the posterior's
    /// parameters (B, 2C, k + 1, H/32, W/32): mean | log-variance, the encoder's one log-variance
    /// channel repeated C times (`latent_dist.parameters`).
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
        let n = self.config.latent_channels;
        let out_shape = [b, 2 * n, 1 + (t - 1) / tf, h / s, w / s];
        let mut out = vec![0.0; out_shape.iter().product()];
        // (T', h, w, n + 1) → (T', h, w, 2n): the last channel repeated n − 1 more times
        let params = |enc: Vec<f32>| -> Vec<f32> {
            enc.chunks(n + 1).flat_map(|px| px.iter().chain(std::iter::repeat_n(&px[n], n - 1)).copied()).collect()
        };
        let Some(chunk) = self.encode_chunk_frames(be, [t, h, w])? else {
            let stages = self.encoder.down_blocks.len();
            for sample in 0..b {
                let mut tick = stage_ticker(progress, sample, b, stages);
                let x = upload_channels_last(be, video, shape, sample)?;
                let enc = self.encoder.forward(be, &x, &mut tick, None)?.to_host(be)?;
                write_channels_last(&mut out, out_shape, sample, 0, &params(enc));
            }
            return Ok((out, out_shape));
        };
        // streamed: the first frame alone (one latent frame), then `chunk` frames at a time
        let chunks = 1 + (t - 1).div_ceil(chunk);
        for sample in 0..b {
            let x = upload_channels_last(be, video, shape, sample)?;
            let mut caches = TemporalCaches::default();
            let (mut start, mut latent_frame) = (0, 0);
            for i in 0..chunks {
                let label = format!("sample {}: encoding chunk {}/{chunks}", sample + 1, i + 1);
                progress.step(sample * chunks + i, b * chunks, &label)?;
                let len = if i == 0 { 1 } else { chunk.min(t - start) };
                caches.start_chunk(i + 1 == chunks);
                let piece = frames(be, &x, start, len)?;
                let enc = self.encoder.forward(be, &piece, &mut |_| Ok(()), Some(&mut caches))?;
                let encoded_frames = enc.shape()[0];
                write_channels_last(&mut out, out_shape, sample, latent_frame, &params(enc.to_host(be)?));
                start += len;
                latent_frame += encoded_frames;
            }
        }
        Ok((out, out_shape))
    }

    /// The frames per streamed chunk of a (t, h, w) encode (`self.encode_chunking`), or `None` for the
    /// whole clip. A non-causal encoder (`encoder_causal: false`) cannot stream.
    fn encode_chunk_frames(&self, be: &B, [t, h, w]: [usize; 3]) -> Result<Option<usize>> {
        if self.config.encoder_time != TimePadding::Causal {
            return match self.encode_chunking {
                Chunking::Frames(_) => Err(Error::InputShape {
                    name: "encode chunk frames".into(),
                    expected: "a causal encoder (`encoder_causal: true` in the VAE config) to stream".into(),
                    got: "a non-causal encoder".into(),
                }),
                _ => Ok(None),
            };
        }
        let p = self.config.patch_size;
        let frame_bytes = (h / p) * (w / p) * self.config.latent_channels * be.element_bytes();
        let available = be.available_memory();
        tiling::chunk_frames(self.encode_chunking, t, self.config.temporal_factor(), frame_bytes, available)
    }

    /// The posterior mean (B, C, T', h, w): what the pipelines encode images and plates to.
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

/// The progress callback a whole-clip encode or decode of sample `sample` (of `b`) hands its
/// model, which reports each of its `stages` blocks by label.
fn stage_ticker(
    progress: &dyn Progress,
    sample: usize,
    b: usize,
    stages: usize,
) -> impl FnMut(&str) -> Result<()> + '_ {
    let mut stage = 0;
    move |label: &str| {
        stage += 1;
        progress.step(sample * stages + stage - 1, b * stages, &format!("sample {}: {label}", sample + 1))
    }
}
