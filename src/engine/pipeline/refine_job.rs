//! One Refine run as the CLI (`sana refine`) and the OFX plugin (SANA Refine) both do it: a clip —
//! latents, or a video that is VAE-encoded unless its latents are already known — plus a prompt
//! and settings → the source latents, the noise, the cache key → refined latents, read from or
//! written to the latent cache. Kept in one place so both clients hash the same fields.
//!
//! "Already known" is the Base → Refine hand-off (DESIGN.md §1): whoever produces frames from
//! latents (Base decoding its result) stores those latents under [`video_key`] of the frames as a
//! consumer will read them back. Refine, given those frames, computes the same key and takes the
//! latents instead of running the VAE encoder: no decode/encode round trip on the chained path.
//! The key is over the exact values, so a clip that was changed in any way (graded, retimed,
//! quantised to 8 bits by a host) misses and is encoded, which is what it should be. An encoded
//! plate is stored under the same key, so re-refining it with other settings skips the encode.
//!
//! Upscale ×2 (LTX-2 VAE latents only) runs the latent upsampler on the source latents after they
//! are found or encoded and before re-noising (MODEL.md §8.2 step 1); the noise has the upsampled
//! shape, and the mode and the upsampler's identity (config + weight headers) are in the key.
//!
//! A plate off the model's grid (frame count, size) is padded for the model and the result is
//! to be cut back to it: [`PlateFit`], `RefineOutcome::crop`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::frames::encode_video;
use super::job::{read_noise, BaseModels, NoiseSource};
use super::noise::seeded_noise;
use super::refine::{refine_latents, RefineSampling};
use super::upscale::upsample_latents;
use super::LatentVideo;
use crate::backend::Backend;
use crate::engine::cache::{
    add_component_identity, add_model_identity, CacheKey, CachedLatent, KeyBuilder, LatentCache,
};
use crate::engine::pipeline::base::Captions;
use crate::engine::progress::Progress;
use crate::engine::text::{Instruction, PromptOptions, DEFAULT_NEGATIVE_PROMPT};
use crate::engine::upsampler::UpsamplerConfig;
use crate::error::{Error, Result};
use crate::io::{ConfigFile, ModelFolder};

/// A video as the VAE encoder takes it: (B, 3, F, H, W) in [−1, 1].
#[derive(Clone, Debug)]
pub struct VideoClip {
    pub shape: [usize; 5],
    pub data: Vec<f32>,
}

/// What Refine starts from.
#[derive(Clone, Debug)]
pub enum RefineSource {
    /// Transformer-space latents (Base's output, handed over without a decode).
    Latents(LatentVideo),
    /// Pixels: the latents cached under their [`video_key`], else a VAE encode.
    Video(VideoClip),
}

/// Whether a video source may be served from the latents cached under its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CachedSource {
    /// Take known latents (Base's, or an earlier encode) when the key matches.
    Use,
    /// Always run the VAE encoder (and store nothing under the video's key).
    Encode,
}

/// Whether Refine changes the clip's size before re-noising it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upscale {
    /// Refine at the source size.
    None,
    /// The LTX-2 latent upsampler ×2 of folder `upsampler` (config.json + weights), run on the
    /// source latents before re-noising (MODEL.md §8.2 step 1): LTX-2 VAE latents only.
    LatentX2 { upsampler: PathBuf },
}

impl Upscale {
    /// ×2 with `<model>/latent_upsampler`, where an LTX-2 layout keeps it.
    pub fn latent_x2_in(model: &Path) -> Self {
        Upscale::LatentX2 { upsampler: model.join("latent_upsampler") }
    }
}

/// What the caller asks of one Refine run.
#[derive(Clone, Debug)]
pub struct RefineRequest {
    pub source: RefineSource,
    /// The clip's prompt; Refine adds no motion score (MODEL.md §8.2, step 5).
    pub prompt: String,
    /// None: the SANA-Video docs' negative prompt.
    pub negative: Option<String>,
    pub sampling: RefineSampling,
    /// The noise has the refined (upscaled) shape.
    pub noise: NoiseSource,
    pub cached_source: CachedSource,
    pub upscale: Upscale,
}

/// How the source latents were obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceLatents {
    /// The request carried latents.
    Given,
    /// Found under the video's key: Base's latents (or an earlier encode); the VAE encoder did not run.
    Cached,
    /// The VAE encoder ran.
    Encoded,
}

/// The result of a run: refined transformer-space latents (1, C, T, H, W).
pub struct RefineOutcome {
    pub latents: CachedLatent,
    pub source: SourceLatents,
    /// The refined latents came from the cache (nothing was denoised).
    pub cache_hit: bool,
    /// A video source off the model's grid was padded (see [`PlateFit`]): the decoded result is
    /// to be cut back to these (frames, height, width), in output pixels (×2 when upscaled).
    pub crop: Option<[usize; 3]>,
}

/// How an artist's plate is brought onto the model's grid: the VAEs take 1 + k·tf frames and
/// sizes in multiples of 32 (and of the VAE's spatial factor × the transformer's patch), while
/// plates come as 1920×1080 and any frame count. The plate is padded at its end — the last frame
/// repeated, the last row and column replicated — refined, decoded, and the result cut back to
/// the plate's own size: the padding only gives the model whole tiles and never reaches the
/// frames the artist gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlateFit {
    /// The plate's (frames, height, width).
    pub plate: [usize; 3],
    /// What it is padded to.
    pub padded: [usize; 3],
}

impl PlateFit {
    /// `temporal`: frames per latent frame after the first; `multiple`: the pixel grid.
    pub fn new([f, h, w]: [usize; 3], temporal: usize, multiple: usize) -> Self {
        let frames = 1 + f.saturating_sub(1).div_ceil(temporal) * temporal;
        let up = |v: usize| v.max(1).div_ceil(multiple) * multiple;
        PlateFit { plate: [f, h, w], padded: [frames, up(h), up(w)] }
    }

    pub fn pads(&self) -> bool {
        self.plate != self.padded
    }

    /// (B, C, F, H, W) → (B, C, F', H', W') with the last frame, row and column repeated.
    pub fn pad(&self, video: &VideoClip) -> VideoClip {
        let [b, c, f, h, w] = video.shape;
        let [pf, ph, pw] = self.padded;
        let mut data = Vec::with_capacity(b * c * pf * ph * pw);
        for plane in 0..b * c {
            for t in 0..pf {
                let src = &video.data[(plane * f + t.min(f - 1)) * h * w..][..h * w];
                for y in 0..ph {
                    let row = &src[y.min(h - 1) * w..][..w];
                    data.extend_from_slice(row);
                    data.extend(std::iter::repeat_n(row[w - 1], pw - w));
                }
            }
        }
        VideoClip { shape: [b, c, pf, ph, pw], data }
    }
}

/// The grid a model folder's Refine works on: (temporal factor, pixel multiple).
fn grid<B: Backend>(models: &BaseModels<B>) -> (usize, usize) {
    let [_, ph, pw] = models.transformer.config.patch_size;
    (models.geometry.temporal, (models.geometry.spatial * ph.max(pw)).max(32))
}

/// The key under which the latents of exactly `video` (as a VAE encode would take it) are found:
/// the model folder's identity (so a different VAE never matches) and every value of the video.
pub fn video_key(folder: &ModelFolder, video: &VideoClip) -> Result<CacheKey> {
    let mut key = KeyBuilder::new("video-latents/v1");
    add_model_identity(&mut key, folder)?;
    key.tensor("video", &video.shape, &video.data);
    Ok(key.finish())
}

/// Remembers that `video` is the decode of `latents`, so Refine given `video` takes `latents`.
pub fn link_video_to_latents(
    cache: &LatentCache,
    folder: &ModelFolder,
    video: &VideoClip,
    latents: &CachedLatent,
) -> Result<()> {
    cache.put(video_key(folder, video)?, latents.clone());
    Ok(())
}

/// Runs one Refine: source latents (given, cached or encoded), upscaled ×2 if asked, then a
/// cache hit or a refine pass with the SANA-Video transformer (a cancelled or failed run stores
/// no refined latents).
pub fn run_refine<B: Backend>(
    be: &B,
    models: &mut BaseModels<B>,
    request: &RefineRequest,
    cache: Option<&LatentCache>,
    progress: &dyn Progress,
) -> Result<RefineOutcome> {
    let channels = models.transformer.config.in_channels;
    // checked before anything runs: the upsampler folder, and its channels against the latents'
    // (the transformer's, which the VAE's match: BaseModels::load checks)
    if let Upscale::LatentX2 { upsampler } = &request.upscale {
        check_upsampler(upsampler, channels)?;
    }
    let (latents, source) = source_latents(be, models, request, cache, progress)?;
    let k = if matches!(request.upscale, Upscale::None) { 1 } else { 2 };
    let crop = match &request.source {
        RefineSource::Video(video) => {
            let [_, _, f, h, w] = video.shape;
            let (temporal, multiple) = grid(models);
            Some(PlateFit::new([f, h, w], temporal, multiple)).filter(|fit| fit.pads()).map(|_| [f, h * k, w * k])
        }
        RefineSource::Latents(_) => None,
    };
    if latents.shape[1] != channels {
        return Err(Error::InputShape {
            name: "latents to refine".into(),
            expected: format!("{channels} channels (the transformer's in_channels)"),
            got: format!("shape {:?}", latents.shape),
        });
    }
    let refined_shape = match &request.upscale {
        Upscale::None => latents.shape,
        Upscale::LatentX2 { .. } => {
            let [b, c, t, h, w] = latents.shape;
            [b, c, t, 2 * h, 2 * w]
        }
    };
    let noise = match &request.noise {
        NoiseSource::Seed(seed) => seeded_noise(refined_shape, *seed),
        NoiseSource::File(path) => read_noise(path, refined_shape)?,
    };
    let negative = request.negative.clone().unwrap_or_else(|| DEFAULT_NEGATIVE_PROMPT.to_string());
    let s = &request.sampling;
    let mut key = KeyBuilder::new("refine-latents/v1");
    add_model_identity(&mut key, &models.folder)?;
    key.tensor("source", &latents.shape, &latents.data).str("prompt", &request.prompt).str("negative", &negative);
    key.u64("steps", s.steps as u64).f64("strength", s.strength).f64("guidance", s.guidance as f64);
    key.f64("shift", s.flow_shift);
    // ×1 adds no field, so its keys (and entries cached before ×2 existed) stay as they were
    if let Upscale::LatentX2 { upsampler } = &request.upscale {
        key.str("upscale", "latent x2");
        add_component_identity(&mut key, upsampler, "latent_upsampler")?;
    }
    let device = be.name();
    key.tensor("noise", &noise.shape, &noise.data).str("device", device.split(" (").next().unwrap_or(&device));
    let key = key.finish();
    if let Some(hit) = cache.and_then(|c| c.get(&key)) {
        return Ok(RefineOutcome { latents: hit, source, cache_hit: true, crop });
    }
    let latents = match &request.upscale {
        Upscale::None => latents,
        Upscale::LatentX2 { upsampler } => {
            progress.update(0.0, "upsampling the latents ×2");
            let (vae, upsampler) = models.vae_and_upsampler(be, upsampler)?;
            upsample_latents(be, upsampler, vae.latent_statistics(), &latents, progress)?
        }
    };
    progress.update(0.0, "encoding the prompt");
    let options = PromptOptions { motion_score: None, instruction: Instruction::Diffusers };
    let (pos, neg) = models.encode_captions(be, &request.prompt, &negative, &options)?;
    let captions = Captions { positive: &pos, negative: &neg };
    let refined = refine_latents(be, &models.transformer, captions, &latents, &noise, s, progress)?;
    let meta = BTreeMap::from([("model".to_string(), models.folder.root.display().to_string())]);
    let refined = CachedLatent::new(refined.shape.to_vec(), refined.data, meta);
    if let Some(cache) = cache {
        cache.put(key, refined.clone());
    }
    Ok(RefineOutcome { latents: refined, source, cache_hit: false, crop })
}

/// The upsampler folder exists with a config, and its `in_channels` are the latents' `channels`
/// (LTX-2 VAE latents; a Wan-VAE model's are refused by name). Reads only the config.
fn check_upsampler(dir: &Path, channels: usize) -> Result<()> {
    let path = dir.join("config.json");
    if !path.is_file() {
        return Err(Error::MissingUpsampler { folder: dir.to_path_buf() });
    }
    let config = UpsamplerConfig::from_file(&ConfigFile::open(&path)?)?;
    if config.in_channels != channels {
        return Err(Error::UpscaleChannels {
            upsampler: dir.to_path_buf(),
            expected: config.in_channels,
            got: channels,
        });
    }
    Ok(())
}

fn source_latents<B: Backend>(
    be: &B,
    models: &mut BaseModels<B>,
    request: &RefineRequest,
    cache: Option<&LatentCache>,
    progress: &dyn Progress,
) -> Result<(LatentVideo, SourceLatents)> {
    let video = match &request.source {
        RefineSource::Latents(latents) => return Ok((latents.clone(), SourceLatents::Given)),
        RefineSource::Video(video) => video,
    };
    let key = match (request.cached_source, cache) {
        (CachedSource::Use, Some(cache)) => {
            let key = video_key(&models.folder, video)?;
            if let Some(hit) = cache.get(&key) {
                let shape: [usize; 5] = hit.shape.clone().try_into().map_err(|_| Error::InputShape {
                    name: "cached source latents".into(),
                    expected: "(1, C, T, H, W)".into(),
                    got: format!("{:?}", hit.shape),
                })?;
                return Ok((LatentVideo { shape, data: hit.data.to_vec() }, SourceLatents::Cached));
            }
            Some((cache, key))
        }
        _ => None,
    };
    progress.update(0.0, "encoding the clip");
    let [_, _, f, h, w] = video.shape;
    let (temporal, multiple) = grid(models);
    let fit = PlateFit::new([f, h, w], temporal, multiple);
    let padded;
    let video = if fit.pads() {
        padded = fit.pad(video);
        &padded
    } else {
        video
    };
    let latents = encode_video(be, models.vae(be)?, &video.data, video.shape, progress)?;
    // stored under the key of the plate as given: the padding is a function of it
    if let Some((cache, key)) = key {
        let meta = BTreeMap::from([("encoded".to_string(), models.folder.root.display().to_string())]);
        cache.put(key, CachedLatent::new(latents.shape.to_vec(), latents.data.clone(), meta));
    }
    Ok((latents, SourceLatents::Encoded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plates_are_padded_to_the_grid_by_repeating_their_edges() {
        let fit = PlateFit::new([6, 1080, 1920], 4, 32);
        assert_eq!(fit.padded, [9, 1088, 1920]);
        assert!(PlateFit::new([81, 704, 1280], 8, 32) == PlateFit { plate: [81, 704, 1280], padded: [81, 704, 1280] });
        assert!(!PlateFit::new([81, 704, 1280], 8, 32).pads());
        // (1, 1, 2, 2, 3) → (1, 1, 5, 32, 32): values 0..12 by (t, y, x)
        let video = VideoClip { shape: [1, 1, 2, 2, 3], data: (0..12).map(|v| v as f32).collect() };
        let fit = PlateFit::new([2, 2, 3], 4, 32);
        assert_eq!(fit.padded, [5, 32, 32]);
        let p = fit.pad(&video);
        assert_eq!(p.shape, [1, 1, 5, 32, 32]);
        let at = |t: usize, y: usize, x: usize| p.data[(t * 32 + y) * 32 + x];
        assert_eq!((at(0, 0, 0), at(0, 0, 2), at(0, 1, 1)), (0.0, 2.0, 4.0), "the plate itself");
        assert_eq!(at(0, 0, 31), 2.0, "last column repeated");
        assert_eq!(at(0, 31, 0), 3.0, "last row repeated");
        assert_eq!(at(0, 31, 31), 5.0, "corner");
        assert_eq!((at(1, 0, 0), at(4, 0, 0), at(4, 31, 31)), (6.0, 6.0, 11.0), "last frame repeated");
    }
}
