//! Render dispatch (DESIGN.md §7). Hosts ask for one frame at a time; video diffusion makes the
//! whole clip at once. So: read the parameters, hash them into the clip key, serve the frame from
//! the instance's clip cache, or generate the whole clip (once, under the engine lock), fill the
//! cache, then serve it.
//!
//! - One process-wide engine behind one lock: host render threads (Natron renders frames of a
//!   fully-safe effect in parallel) never race the engine, and the second thread asking for a
//!   frame of the same clip waits and then finds it cached.
//! - Models load lazily on the first render that needs them, once per process, shared by every
//!   instance; the latent cache is process-wide too (memory + SANA_CACHE_DIR on disk).
//! - Progress goes through the host's progress suite when it has one; abort (the effect suite's
//!   `abort` and Cancel on the progress bar) is checked between denoising steps. An aborted run
//!   stores nothing and returns kOfxStatFailed without a message.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::base::{self, BaseSettings, Colourspace, Device};
use super::effect::{clip, instance, EffectKind, Instance};
use super::error::{OfxError, OfxResult};
use super::image::HostImage;
use super::params::{self, Values};
use super::props::PropSet;
use super::refine;
use super::suites::Suites;
use super::sys::*;
use crate::backend::{cpu::Cpu, cuda::Cuda, Backend};
use crate::engine::cache::{default_cache_dir, CacheKey, CachedLatent, KeyBuilder, LatentCache};
use crate::engine::pipeline::job::{
    plan_base, run_base, BaseModels, BaseRequest, Binning, NoiseSource, TextEncoderAfter,
};
use crate::engine::progress::Progress;

/// A whole generated clip in the host's colourspace, frame by frame: RGBA f32, top row first.
pub struct GeneratedClip {
    pub key: CacheKey,
    pub width: usize,
    pub height: usize,
    pub frames: Vec<Vec<f32>>,
}

/// Latents kept in memory across renders (one 720p 81-frame latent is ~5 MB; 2K refines more).
const LATENT_MEMORY_BUDGET: u64 = 2 << 30;

struct Loaded<B: Backend> {
    root: PathBuf,
    models: BaseModels<B>,
}

struct CudaEngine {
    ordinal: usize,
    be: Cuda,
    models: Option<Loaded<Cuda>>,
}

/// Everything the process shares: backends, loaded models, the latent cache.
struct Engine {
    cpu: Option<Loaded<Cpu>>,
    cuda: Option<CudaEngine>,
    cache: Option<LatentCache>,
}

static ENGINE: Mutex<Engine> = parking_lot::const_mutex(Engine { cpu: None, cuda: None, cache: None });

/// The Render action.
pub fn render(suites: &Suites, effect: OfxImageEffectHandle, in_args: &PropSet) -> OfxResult<()> {
    let inst = instance(suites, effect)?;
    let time = in_args.get_double(kOfxPropTime, 0)?;
    let on_gpu = in_args.get_int(kOfxImageEffectPropCudaEnabled, 0).unwrap_or(0) != 0;
    match inst.kind {
        EffectKind::Base => render_base(suites, effect, inst, time, on_gpu),
        EffectKind::Refine => render_refine(suites, effect),
    }
}

fn render_base(
    suites: &Suites,
    effect: OfxImageEffectHandle,
    inst: &Instance,
    time: f64,
    on_gpu: bool,
) -> OfxResult<()> {
    let values = params::read_all(suites, effect, &base::param_defs())?;
    let frames = base::frame_count(&values)?;
    let index = (time - base::FIRST_FRAME).round();
    let output = clip(suites, effect, kOfxImageEffectOutputClipName)?;
    if index < 0.0 || index >= frames as f64 {
        // scrubbing past the clip: never generate for it, show transparent black
        return output_frame(suites, &output, time, on_gpu, None);
    }
    // checked before waiting on the engine: a wrong setting is reported at once
    let settings = BaseSettings::from_values(&values)?;
    let key = clip_key(EffectKind::Base, &values);
    let generated = cached_or_generate(inst, key, |engine| generate_base(engine, suites, effect, key, &settings))?;
    let frame = generated.frames.get(index as usize).ok_or_else(|| {
        OfxError::Setting(format!("frame {time} is outside the {} generated frames", generated.frames.len()))
    })?;
    output_frame(suites, &output, time, on_gpu, Some((frame, generated.width, generated.height)))
}

/// SANA Refine renders nothing yet: it needs the VAE to encode plates and decode its result, and
/// the refine pipeline itself. Say so on the node rather than pass the input through unrefined.
fn render_refine(suites: &Suites, effect: OfxImageEffectHandle) -> OfxResult<()> {
    // read the parameters anyway, so a host-side parameter problem shows before the missing part
    params::read_all(suites, effect, &refine::param_defs())?;
    Err(OfxError::NotBuilt(
        "SANA Refine is not built yet: refining needs the VAE (issue 5) to encode the input and decode the result, \
         and the refine pipeline; connect SANA Base alone for now",
    ))
}

/// The clip key of an instance: the effect and every parameter value.
fn clip_key(kind: EffectKind, values: &Values) -> CacheKey {
    let mut key = KeyBuilder::new("ofx-clip/v1");
    key.str("effect", if kind == EffectKind::Base { "base" } else { "refine" });
    values.hash_into(&mut key);
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

fn generate_base(
    engine: &mut Engine,
    suites: &Suites,
    effect: OfxImageEffectHandle,
    key: CacheKey,
    settings: &BaseSettings,
) -> OfxResult<GeneratedClip> {
    let progress = HostProgress::start(suites, effect as *mut c_void, "SANA Base: generating the clip");
    let Engine { cpu, cuda, cache } = engine;
    let cache = cache.get_or_insert_with(|| LatentCache::new(LATENT_MEMORY_BUDGET, default_cache_dir()));
    let latents = match settings.device {
        Device::Cpu => base_latents(&Cpu, cpu, settings, cache, &progress)?,
        Device::Cuda(ordinal) => {
            let gpu = cuda_engine(cuda, ordinal)?;
            base_latents(&gpu.be, &mut gpu.models, settings, cache, &progress)?
        }
    };
    for warning in cache.take_warnings() {
        suites.set_persistent_message(effect as *mut c_void, super::suites::Severity::Warning, &warning);
    }
    let frames = decode_latents_to_frames(&latents, &settings.model_folder, settings.output_colourspace)?;
    Ok(GeneratedClip { key, width: settings.width, height: settings.height, frames })
}

/// THE place to connect the VAE (issue 5): latents (1, C, T, H, W), normalised as the
/// transformer leaves them, → frames RGBA f32 in the host's colourspace (Output Colourspace:
/// the model's [−1, 1] display-referred values to [0, 1], then the sRGB EOTF for "Linear"), top
/// row first, width × height of the request. Until `engine::vae` exists this fails, and Base
/// reports it on the node: no fake pixels.
pub fn decode_latents_to_frames(
    latents: &CachedLatent,
    model_folder: &Path,
    colourspace: Colourspace,
) -> OfxResult<Vec<Vec<f32>>> {
    let _ = (latents, model_folder, colourspace);
    Err(OfxError::NotBuilt("decoding latents to frames needs the VAE (issue 5), not built yet"))
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

/// Base's latents on backend `be`: models loaded once per folder (a new folder replaces them),
/// the run planned and served from or stored in the latent cache.
fn base_latents<B: Backend>(
    be: &B,
    slot: &mut Option<Loaded<B>>,
    settings: &BaseSettings,
    cache: &LatentCache,
    progress: &HostProgress,
) -> OfxResult<CachedLatent> {
    if slot.as_ref().is_none_or(|l| l.root != settings.model_folder) {
        *slot = None; // free the old models before loading new ones
        progress.update(0.0, "loading the model");
        let models = BaseModels::load(be, &settings.model_folder).map_err(|e| {
            OfxError::Setting(format!("Model Folder `{}` cannot be used: {e}", settings.model_folder.display()))
        })?;
        *slot = Some(Loaded { root: settings.model_folder.clone(), models });
    }
    let loaded = slot.as_mut().ok_or_else(|| OfxError::Setting("internal: models missing after loading".into()))?;
    let request = BaseRequest {
        prompt: settings.prompt.clone(),
        negative: settings.negative.clone(),
        height: Some(settings.height),
        width: Some(settings.width),
        frames: settings.frames,
        steps: settings.steps,
        guidance: settings.guidance,
        flow_shift: settings.flow_shift,
        motion_score: Some(settings.motion_score),
        noise: NoiseSource::Seed(settings.seed),
        // the presets are bins already, and the region of definition promised this exact size
        binning: Binning::Exact,
        image: None,
    };
    let plan = plan_base(be, &loaded.models, &request).map_err(engine_error)?;
    let outcome =
        run_base(be, &mut loaded.models, &plan, Some(cache), TextEncoderAfter::Keep, progress).map_err(engine_error)?;
    Ok(outcome.latents)
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
    on_gpu: bool,
    frame: Option<(&Vec<f32>, usize, usize)>,
) -> OfxResult<()> {
    if on_gpu {
        // Resolve hands device pointers when it enabled CUDA render for this call; the upload
        // from our host-side frames is connected together with decode (the frames exist only then)
        return Err(OfxError::NotBuilt(
            "the host asked for CUDA output images; writing frames to GPU memory comes with the VAE decode (issue 5)",
        ));
    }
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
