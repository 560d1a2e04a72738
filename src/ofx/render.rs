//! Render dispatch (DESIGN.md §7). Hosts ask for one frame at a time; video diffusion makes the
//! whole clip at once. So: read the parameters (and, for Refine, the whole Source range), hash
//! them into the clip key, serve the frame from the instance's clip cache, or generate the whole
//! clip (once, under the engine lock), fill the cache, then serve it.
//!
//! - One process-wide engine behind one lock: host render threads (Natron renders frames of a
//!   fully-safe effect in parallel) never race the engine, and the second thread asking for a
//!   frame of the same clip waits and then finds it cached.
//! - Models load lazily on the first render that needs them, once per process and folder, shared
//!   by every instance of both effects; the latent cache is process-wide too (memory +
//!   SANA_CACHE_DIR on disk).
//! - Base → Refine: Base stores its latents under the key of the frames it serves, read back the
//!   way Refine reads its Source (engine::pipeline::refine_job). Refine downstream finds them and
//!   never runs the VAE encoder; a log message on the node says which way it went.
//! - Progress goes through the host's progress suite when it has one; abort (the effect suite's
//!   `abort` and Cancel on the progress bar) is checked between denoising steps and VAE chunks.
//!   An aborted run stores nothing and returns kOfxStatFailed without a message.

use std::ffi::c_void;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::base::{self, BaseSettings};
use super::effect::{clip, instance, EffectKind, Instance};
use super::error::{OfxError, OfxResult};
use super::image::HostImage;
use super::params::{self, Colourspace, Device, Values};
use super::pixels::{from_host, to_host};
use super::props::PropSet;
use super::refine::{self, RefineSettings};
use super::suites::{Severity, Suites};
use super::sys::*;
use crate::backend::{cpu::Cpu, cuda::Cuda, Backend};
use crate::engine::cache::{default_cache_dir, CacheKey, CachedLatent, KeyBuilder, LatentCache};
use crate::engine::pipeline::frames::{crop_video, decode_to_size};
use crate::engine::pipeline::job::{
    plan_base, run_base, BaseModels, BaseRequest, Binning, NoiseSource, TextEncoderAfter,
};
use crate::engine::pipeline::refine_job::{
    link_video_to_latents, run_refine, RefineRequest, RefineSource, SourceLatents, Upscale, VideoClip,
};
use crate::engine::pipeline::LatentVideo;
use crate::engine::progress::Progress;
use crate::io::frames::{frames_from_video, video_from_frames, Frame};

/// A whole generated clip in the host's colourspace, frame by frame: RGBA f32, top row first.
pub struct GeneratedClip {
    pub key: CacheKey,
    pub width: usize,
    pub height: usize,
    pub frames: Vec<Vec<f32>>,
}

/// Latents kept in memory across renders (one 720p 81-frame latent is ~5 MB; 2K refines more).
const LATENT_MEMORY_BUDGET: u64 = 2 << 30;

struct CudaEngine {
    ordinal: usize,
    be: Cuda,
    models: Option<BaseModels<Cuda>>,
}

/// Everything the process shares: backends, loaded models, the latent cache.
struct Engine {
    cpu: Option<BaseModels<Cpu>>,
    cuda: Option<CudaEngine>,
    cache: Option<LatentCache>,
}

static ENGINE: Mutex<Engine> = parking_lot::const_mutex(Engine { cpu: None, cuda: None, cache: None });

/// The Render action.
pub fn render(suites: &Suites, effect: OfxImageEffectHandle, in_args: &PropSet) -> OfxResult<()> {
    let inst = instance(suites, effect)?;
    let time = in_args.get_double(kOfxPropTime, 0)?;
    if in_args.get_int(kOfxImageEffectPropCudaEnabled, 0).unwrap_or(0) != 0 {
        // the image pointers of this call are CUDA device memory: never touch them from the host
        return Err(OfxError::NotBuilt(
            "the host asked for CUDA images (OFX GPU render); SANA renders into host memory for now: turn the \
             host's GPU processing for this effect off",
        ));
    }
    match inst.kind {
        EffectKind::Base => render_base(suites, effect, inst, time),
        EffectKind::Refine => render_refine(suites, effect, inst, time),
    }
}

fn render_base(suites: &Suites, effect: OfxImageEffectHandle, inst: &Instance, time: f64) -> OfxResult<()> {
    let values = params::read_all(suites, effect, &base::param_defs())?;
    let frames = base::frame_count(&values)?;
    let index = (time - base::FIRST_FRAME).round();
    let output = clip(suites, effect, kOfxImageEffectOutputClipName)?;
    if index < 0.0 || index >= frames as f64 {
        // scrubbing past the clip: never generate for it, show transparent black
        return output_frame(suites, &output, time, None);
    }
    // checked before waiting on the engine: a wrong setting is reported at once
    let settings = BaseSettings::from_values(&values)?;
    let image = conditioning_image(suites, effect, settings.output_colourspace)?;
    let key = clip_key(EffectKind::Base, &values, image.as_ref().map(|(frame, _)| frame_as_clip(frame)).as_ref());
    let job = BaseJob { settings: &settings, image: image.as_ref() };
    let generated = cached_or_generate(inst, key, |engine| generate(engine, suites, effect, key, &job))?;
    serve(suites, &output, time, &generated, index as usize)
}

fn render_refine(suites: &Suites, effect: OfxImageEffectHandle, inst: &Instance, time: f64) -> OfxResult<()> {
    let values = params::read_all(suites, effect, &refine::param_defs())?;
    let output = clip(suites, effect, kOfxImageEffectOutputClipName)?;
    let source = clip(suites, effect, refine::SOURCE_CLIP)?;
    if !source.connected() {
        return Err(OfxError::Clip {
            clip: "Source".into(),
            problem: "not connected: connect the clip to refine".into(),
        });
    }
    let (first, last) = refine::source_range(&source)?;
    let count = (last - first).round() as usize + 1;
    let index = (time - first).round();
    if index < 0.0 || index >= count as f64 {
        return output_frame(suites, &output, time, None);
    }
    let settings = RefineSettings::from_values(&values)?;
    let plate = read_source(suites, &source, first, count, settings.input_colourspace)?;
    let key = clip_key(EffectKind::Refine, &values, Some(&plate));
    let job = RefineJob { settings: &settings, plate: &plate };
    let generated = cached_or_generate(inst, key, |engine| generate(engine, suites, effect, key, &job))?;
    serve(suites, &output, time, &generated, index as usize)
}

/// The clip key of an instance: the effect, every parameter value, and Refine's source pixels
/// (an upstream change must re-refine even when no parameter of ours moved).
fn clip_key(kind: EffectKind, values: &Values, source: Option<&VideoClip>) -> CacheKey {
    let mut key = KeyBuilder::new("ofx-clip/v2");
    key.str("effect", if kind == EffectKind::Base { "base" } else { "refine" });
    values.hash_into(&mut key);
    if let Some(video) = source {
        key.tensor("source", &video.shape, &video.data);
    }
    key.finish()
}

/// The instance's clip when its key matches; otherwise `generate` under the engine lock (after
/// checking again: another render thread may have generated it while this one waited).
fn cached_or_generate(
    inst: &Instance,
    key: CacheKey,
    generate: impl FnOnce(&mut Engine) -> OfxResult<GeneratedClip>,
) -> OfxResult<Arc<GeneratedClip>> {
    let cached = |inst: &Instance| inst.clip.lock().as_ref().filter(|c| c.key == key).cloned();
    if let Some(hit) = cached(inst) {
        return Ok(hit);
    }
    let mut engine = ENGINE.lock();
    if let Some(hit) = cached(inst) {
        return Ok(hit);
    }
    let generated = Arc::new(generate(&mut engine)?);
    *inst.clip.lock() = Some(generated.clone());
    Ok(generated)
}

/// Frame `index` of a generated clip into the output image at `time`.
fn serve(
    suites: &Suites,
    output: &super::effect::Clip,
    time: f64,
    clip: &GeneratedClip,
    index: usize,
) -> OfxResult<()> {
    let frame = clip.frames.get(index).ok_or_else(|| {
        OfxError::Setting(format!("frame {time} is outside the {} generated frames", clip.frames.len()))
    })?;
    output_frame(suites, output, time, Some((frame, clip.width, clip.height)))
}

/// What one effect computes with the engine, written once for both backends.
trait ClipJob {
    fn label(&self) -> &'static str;
    fn device(&self) -> Device;
    fn model_folder(&self) -> &Path;
    fn run<B: Backend>(
        &self,
        be: &B,
        models: &mut BaseModels<B>,
        cache: &LatentCache,
        progress: &HostProgress,
    ) -> OfxResult<JobOutput>;
}

/// A job's frames (host RGBA) and what to tell the artist about how they were made.
struct JobOutput {
    width: usize,
    height: usize,
    frames: Vec<Vec<f32>>,
    log: Vec<String>,
    warnings: Vec<String>,
}

/// Runs `job` on its device with the folder's models (loaded once, replaced when the folder
/// changes), then posts the cache's and the job's warnings and log lines on the node.
fn generate<J: ClipJob>(
    engine: &mut Engine,
    suites: &Suites,
    effect: OfxImageEffectHandle,
    key: CacheKey,
    job: &J,
) -> OfxResult<GeneratedClip> {
    let progress = HostProgress::start(suites, effect as *mut c_void, job.label());
    let Engine { cpu, cuda, cache } = engine;
    let cache = cache.get_or_insert_with(|| LatentCache::new(LATENT_MEMORY_BUDGET, default_cache_dir()));
    let out = match job.device() {
        Device::Cpu => job.run(&Cpu, loaded_models(&Cpu, cpu, job.model_folder(), &progress)?, cache, &progress),
        Device::Cuda(ordinal) => {
            let gpu = cuda_engine(cuda, ordinal)?;
            let models = loaded_models(&gpu.be, &mut gpu.models, job.model_folder(), &progress)?;
            job.run(&gpu.be, models, cache, &progress)
        }
    };
    let instance = effect as *mut c_void;
    for warning in cache.take_warnings() {
        suites.set_persistent_message(instance, Severity::Warning, &warning);
    }
    let out = out?;
    for warning in &out.warnings {
        suites.set_persistent_message(instance, Severity::Warning, warning);
    }
    for line in &out.log {
        suites.log_message(instance, line);
    }
    Ok(GeneratedClip { key, width: out.width, height: out.height, frames: out.frames })
}

/// SANA Base's first-frame input (General context): the `Image` clip's first frame, read with
/// the Output Colourspace choice (the comp's working space), and where it came from. None when the
/// context has no such clip, it is not connected, or the host hands out no image for it
/// (Resolve reports a generator's inputs connected and returns no image: spec/OFX.md §1).
fn conditioning_image(
    suites: &Suites,
    effect: OfxImageEffectHandle,
    colourspace: Colourspace,
) -> OfxResult<Option<(Frame, f64)>> {
    let Ok(image) = clip(suites, effect, base::IMAGE_CLIP) else { return Ok(None) };
    if !image.connected() {
        return Ok(None);
    }
    let [first, _] = image.props.get_doubles::<2>(kOfxImageEffectPropFrameRange).unwrap_or([base::FIRST_FRAME; 2]);
    let Ok(fetched) = HostImage::fetch(suites, &image, first) else { return Ok(None) };
    let (w, h, rgba) = fetched.read_rgba();
    if let Some(bad) = rgba.iter().position(|v| !v.is_finite()) {
        return Err(OfxError::Clip {
            clip: "Image".into(),
            problem: format!(
                "frame {first} has a non-finite value ({}) at pixel ({}, {}) from the top: fix the image",
                rgba[bad],
                (bad / 4) % w,
                (bad / 4) / w
            ),
        });
    }
    Ok(Some((from_host(&rgba, w, h, colourspace), first)))
}

/// A frame as a one-frame clip, for the clip key.
fn frame_as_clip(frame: &Frame) -> VideoClip {
    VideoClip { shape: [1, 1, 1, frame.height, frame.width * 3], data: frame.rgb.clone() }
}

/// SANA Base: the latents (cache or a denoising run; image-to-video when the Image input has a
/// frame), decoded, in the output colourspace; the latents are linked to the served frames for a
/// Refine downstream.
struct BaseJob<'a> {
    settings: &'a BaseSettings,
    image: Option<&'a (Frame, f64)>,
}

impl ClipJob for BaseJob<'_> {
    fn label(&self) -> &'static str {
        "SANA Base: generating the clip"
    }
    fn device(&self) -> Device {
        self.settings.device
    }
    fn model_folder(&self) -> &Path {
        &self.settings.model_folder
    }

    fn run<B: Backend>(
        &self,
        be: &B,
        models: &mut BaseModels<B>,
        cache: &LatentCache,
        progress: &HostProgress,
    ) -> OfxResult<JobOutput> {
        let s = self.settings;
        let request = BaseRequest {
            prompt: s.prompt.clone(),
            negative: s.negative.clone(),
            height: Some(s.height),
            width: Some(s.width),
            frames: s.frames,
            steps: s.steps,
            guidance: s.guidance,
            flow_shift: s.flow_shift,
            motion_score: Some(s.motion_score),
            noise: NoiseSource::Seed(s.seed),
            // the presets are bins already, and the region of definition promised this exact size
            binning: Binning::Exact,
            image: self.image.map(|(frame, _)| frame.clone()),
        };
        let plan = plan_base(be, models, &request).map_err(engine_error)?;
        let outcome =
            run_base(be, models, &plan, Some(cache), TextEncoderAfter::Keep, progress).map_err(engine_error)?;
        let mut log = vec![if outcome.cache_hit {
            format!("SANA Base: latents {} from the cache (not denoised again)", plan.key)
        } else {
            format!("SANA Base: denoised {} steps into latents {}", s.steps, plan.key)
        }];
        if let Some((frame, time)) = self.image {
            log.push(format!(
                "SANA Base: image to video from the Image input's frame {time} ({}×{}, resized to cover {}×{})",
                frame.width, frame.height, s.width, s.height
            ));
        }
        let (width, height, frames) =
            decode_and_link(be, models, cache, &outcome.latents, None, s.output_colourspace, progress)?;
        log.push("SANA Base: frames linked to their latents for SANA Refine downstream".into());
        Ok(JobOutput { width, height, frames, log, warnings: Vec::new() })
    }
}

/// SANA Refine: the Source clip's latents (Base's via the cache, else a VAE encode), a refine
/// pass, decoded in the output colourspace.
struct RefineJob<'a> {
    settings: &'a RefineSettings,
    plate: &'a VideoClip,
}

impl ClipJob for RefineJob<'_> {
    fn label(&self) -> &'static str {
        "SANA Refine: refining the clip"
    }
    fn device(&self) -> Device {
        self.settings.device
    }
    fn model_folder(&self) -> &Path {
        &self.settings.model_folder
    }

    fn run<B: Backend>(
        &self,
        be: &B,
        models: &mut BaseModels<B>,
        cache: &LatentCache,
        progress: &HostProgress,
    ) -> OfxResult<JobOutput> {
        let s = self.settings;
        let request = RefineRequest {
            source: RefineSource::Video(self.plate.clone()),
            prompt: s.prompt.clone(),
            negative: None,
            sampling: s.sampling.clone(),
            noise: NoiseSource::Seed(s.seed),
            cached_source: s.cached_source,
            upscale: s.upscale.clone(),
        };
        let outcome = run_refine(be, models, &request, Some(cache), progress).map_err(engine_error)?;
        let mut log = vec![match outcome.source {
            SourceLatents::Cached => {
                "SANA Refine: Source is a clip whose latents are known (SANA Base's output): took them from the \
                 cache, no VAE encode"
            }
            SourceLatents::Encoded => "SANA Refine: encoded the Source clip with the VAE",
            SourceLatents::Given => "SANA Refine: latents given",
        }
        .to_string()];
        if let (Upscale::LatentX2 { upsampler }, false) = (&s.upscale, outcome.cache_hit) {
            log.push(format!("SANA Refine: latents upsampled ×2 with `{}` before refining", upsampler.display()));
        }
        if outcome.cache_hit {
            log.push("SANA Refine: refined latents from the cache (not denoised again)".into());
        }
        if let Some([f, h, w]) = outcome.crop {
            log.push(format!(
                "SANA Refine: the Source clip is off the model's grid (VAE frame rule, sizes in multiples of 32): \
                 padded at its end for the model, the result cut back to {f} frames of {w}×{h}"
            ));
        }
        let (width, height, frames) =
            decode_and_link(be, models, cache, &outcome.latents, outcome.crop, s.output_colourspace, progress)?;
        let mut warnings = Vec::new();
        let [_, _, t, _, _] = self.plate.shape;
        if t > 1 && identical_frames(self.plate) {
            warnings.push(format!(
                "SANA Refine: the host returned the same image for all {t} Source frames. If the clip is not a still, \
                 this host's temporal clip access does not work (it hands out the current frame for every time): \
                 the result is a refined still"
            ));
        }
        Ok(JobOutput { width, height, frames, log, warnings })
    }
}

/// Whether every frame of a (1, 3, F, H, W) video equals the first.
fn identical_frames(video: &VideoClip) -> bool {
    let [_, c, t, h, w] = video.shape;
    let plane = h * w;
    (1..t)
        .all(|f| (0..c).all(|ch| video.data[(ch * t + f) * plane..][..plane] == video.data[ch * t * plane..][..plane]))
}

/// Transformer-space latents → host RGBA frames at the latents' full size (1, C, T, h, w), or
/// cut to `crop` (frames, height, width) when they are a padded plate's; uncut frames, as a
/// Refine downstream reads them back with the same colourspace choice, are linked to the
/// latents in the cache, so that Refine takes the latents instead of encoding the frames (cut
/// frames are not the decode of those latents, so they get no link).
#[allow(clippy::too_many_arguments)] // the job's pieces, each used once
fn decode_and_link<B: Backend>(
    be: &B,
    models: &mut BaseModels<B>,
    cache: &LatentCache,
    latents: &CachedLatent,
    crop: Option<[usize; 3]>,
    colourspace: Colourspace,
    progress: &HostProgress,
) -> OfxResult<(usize, usize, Vec<Vec<f32>>)> {
    let shape: [usize; 5] = latents.shape.clone().try_into().map_err(|_| {
        OfxError::Setting(format!("internal: latents of shape {:?}, expected (1, C, T, H, W)", latents.shape))
    })?;
    let vae = models.vae(be).map_err(engine_error)?;
    let (_, sf) = vae.factors();
    let size = (shape[3] * sf, shape[4] * sf);
    progress.update(0.95, "decoding");
    let latent = LatentVideo { shape, data: latents.data.to_vec() };
    let mut video = decode_to_size(be, vae, &latent, size, progress).map_err(engine_error)?;
    if let Some(crop) = crop {
        video = crop_video(&video, crop).map_err(engine_error)?;
    }
    let (values, dims) = video.sample(0);
    let frames: Vec<Vec<f32>> =
        frames_from_video(values, dims).map_err(engine_error)?.iter().map(|f| to_host(f, colourspace)).collect();
    let (width, height) = (dims[3], dims[2]);
    if crop.is_none() {
        let readback = video_of(&frames, width, height, colourspace)?;
        link_video_to_latents(cache, &models.folder, &readback, latents).map_err(engine_error)?;
    }
    Ok((width, height, frames))
}

/// Host RGBA frames → the video a VAE encode takes, (1, 3, F, H, W) in [−1, 1].
fn video_of(frames: &[Vec<f32>], width: usize, height: usize, colourspace: Colourspace) -> OfxResult<VideoClip> {
    let model: Vec<Frame> = frames.iter().map(|px| from_host(px, width, height, colourspace)).collect();
    let (data, [c, t, h, w]) = video_from_frames(&model, &[]).map_err(engine_error)?;
    Ok(VideoClip { shape: [1, c, t, h, w], data })
}

/// Every Source frame first..first+count−1 (temporal clip access), each image released at once.
fn read_source(
    suites: &Suites,
    source: &super::effect::Clip,
    first: f64,
    count: usize,
    colourspace: Colourspace,
) -> OfxResult<VideoClip> {
    let mut frames = Vec::with_capacity(count);
    let mut size = None;
    for i in 0..count {
        let time = first + i as f64;
        let (w, h, rgba) = HostImage::fetch(suites, source, time)?.read_rgba();
        match size {
            None => size = Some((w, h)),
            Some(s) if s != (w, h) => {
                return Err(OfxError::Clip {
                    clip: "Source".into(),
                    problem: format!(
                        "frame {time} is {w}×{h} but frame {first} is {}×{}: every frame must have one size",
                        s.0, s.1
                    ),
                })
            }
            Some(_) => {}
        }
        if let Some(bad) = rgba.iter().position(|v| !v.is_finite()) {
            return Err(OfxError::Clip {
                clip: "Source".into(),
                problem: format!(
                    "frame {time} has a non-finite value ({}) at pixel ({}, {}) from the top: fix the plate (NaN or \
                     infinity would poison the whole clip)",
                    rgba[bad],
                    (bad / 4) % w,
                    (bad / 4) / w
                ),
            });
        }
        frames.push(from_host(&rgba, w, h, colourspace));
    }
    let (data, [c, t, h, w]) = video_from_frames(&frames, &[]).map_err(engine_error)?;
    Ok(VideoClip { shape: [1, c, t, h, w], data })
}

fn cuda_engine(slot: &mut Option<CudaEngine>, ordinal: usize) -> OfxResult<&mut CudaEngine> {
    if slot.as_ref().is_none_or(|e| e.ordinal != ordinal) {
        let be = Cuda::new(ordinal).map_err(|e| {
            OfxError::Setting(format!(
                "Device is CUDA GPU {ordinal}, but it cannot be used: {e}. Install or update the NVIDIA driver, or set \
                 Device to CPU (slow)"
            ))
        })?;
        *slot = Some(CudaEngine { ordinal, be, models: None });
    }
    slot.as_mut().ok_or_else(|| OfxError::Setting("internal: CUDA engine missing after creation".into()))
}

/// The models of `folder` on backend `be`, loaded once (a new folder replaces them).
fn loaded_models<'m, B: Backend>(
    be: &B,
    slot: &'m mut Option<BaseModels<B>>,
    folder: &Path,
    progress: &HostProgress,
) -> OfxResult<&'m mut BaseModels<B>> {
    if slot.as_ref().is_none_or(|m| m.folder.root != folder) {
        *slot = None; // free the old models before loading new ones
        progress.update(0.0, "loading the model");
        let models = BaseModels::load(be, folder)
            .map_err(|e| OfxError::Setting(format!("Model Folder `{}` cannot be used: {e}", folder.display())))?;
        *slot = Some(models);
    }
    slot.as_mut().ok_or_else(|| OfxError::Setting("internal: models missing after loading".into()))
}

fn engine_error(e: crate::Error) -> OfxError {
    match e {
        crate::Error::Cancelled => OfxError::Aborted,
        other => OfxError::Engine(other),
    }
}

/// Writes `frame` (or transparent black) into the output image at `time`.
fn output_frame(
    suites: &Suites,
    output: &super::effect::Clip,
    time: f64,
    frame: Option<(&Vec<f32>, usize, usize)>,
) -> OfxResult<()> {
    let mut image = HostImage::fetch(suites, output, time)?;
    match frame {
        Some((pixels, w, h)) => image.write_rgba(pixels, w, h),
        None => image.clear(),
    }
    Ok(())
}

/// The engine's Progress over the host's progress suite (V2, else V1, else none) and abort.
pub struct HostProgress<'s> {
    suites: &'s Suites,
    instance: *mut c_void,
    started: bool,
    cancelled: AtomicBool,
}

// SAFETY: the instance handle is an opaque token the progress and effect suites accept from any
// render thread (spec/OFX.md §5); the suites are immutable tables.
unsafe impl Sync for HostProgress<'_> {}

impl<'s> HostProgress<'s> {
    pub fn start(suites: &'s Suites, instance: *mut c_void, label: &str) -> Self {
        let text = std::ffi::CString::new(label).unwrap_or_default();
        let mut started = false;
        if let Some(f) = suites.progress_v2.and_then(|p| p.progressStart) {
            // SAFETY: instance handle of this render; strings alive for the call.
            started = unsafe { f(instance, text.as_ptr(), c"sanaProgress".as_ptr()) } == kOfxStatOK;
        } else if let Some(f) = suites.progress_v1.and_then(|p| p.progressStart) {
            // SAFETY: as above.
            started = unsafe { f(instance, text.as_ptr()) } == kOfxStatOK;
        }
        HostProgress { suites, instance, started, cancelled: AtomicBool::new(false) }
    }

    fn update_fn(&self) -> Option<unsafe extern "C" fn(*mut c_void, f64) -> OfxStatus> {
        self.suites
            .progress_v2
            .and_then(|p| p.progressUpdate)
            .or_else(|| self.suites.progress_v1.and_then(|p| p.progressUpdate))
    }
}

impl Progress for HostProgress<'_> {
    fn update(&self, fraction: f32, _label: &str) {
        if !self.started {
            return;
        }
        if let Some(f) = self.update_fn() {
            // SAFETY: instance handle of this render; progress was started on it.
            if unsafe { f(self.instance, fraction.clamp(0.0, 1.0) as f64) } == kOfxStatReplyNo {
                self.cancelled.store(true, Ordering::SeqCst); // Cancel pressed on the progress bar
            }
        }
    }

    fn cancelled(&self) -> bool {
        if self.cancelled.load(Ordering::SeqCst) {
            return true;
        }
        let Some(abort) = self.suites.effect.abort else { return false };
        // SAFETY: instance handle of the render in progress.
        unsafe { abort(self.instance as OfxImageEffectHandle) != 0 }
    }
}

impl Drop for HostProgress<'_> {
    fn drop(&mut self) {
        if !self.started {
            return;
        }
        let end = self
            .suites
            .progress_v2
            .and_then(|p| p.progressEnd)
            .or_else(|| self.suites.progress_v1.and_then(|p| p.progressEnd));
        if let Some(f) = end {
            // SAFETY: ends the progress started on this instance.
            unsafe { f(self.instance) };
        }
    }
}
