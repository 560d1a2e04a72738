//! One Base run as the CLI (`sana generate`) and the OFX plugin (SANA Base) both do it: a model
//! folder, a prompt and settings → the size after binning, the initial noise, the cache key →
//! latents, read from or written to the latent cache. Kept in one place so both clients hash the
//! same fields and a render in a host hits the cache a farm run filled (DESIGN.md §1, §7).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::base::{denoise_image_to_video, denoise_text_to_video, BaseSampling, Captions};
use super::binning::{binned_resolution, resize_and_center_crop};
use super::frames::encode_video;
use super::geometry::LatentGeometry;
use super::noise::seeded_noise;
use super::LatentVideo;
use crate::backend::Backend;
use crate::engine::cache::{add_model_identity, CacheKey, CachedLatent, KeyBuilder, LatentCache};
use crate::engine::dit::{HostTensor, SanaVideoTransformer};
use crate::engine::progress::Progress;
use crate::engine::text::{
    check_matches_transformer, encode_prompts, Gemma2Encoder, Instruction, PromptEmbeddings, PromptOptions,
    PromptTokenizer, DEFAULT_NEGATIVE_PROMPT,
};
use crate::engine::upsampler::Ltx2LatentUpsampler;
use crate::engine::vae::VideoVae;
use crate::error::{Error, Result};
use crate::io::frames::Frame;
use crate::io::{ModelFolder, TensorFiles};

/// Where the initial noise comes from.
#[derive(Clone, Debug)]
pub enum NoiseSource {
    /// Our seeded noise (not PyTorch's generator).
    Seed(u64),
    /// A safetensors file whose `noise` (or else `latents`) tensor is the initial noise: how a
    /// diffusers run is reproduced exactly.
    File(PathBuf),
}

/// Whether the requested size snaps to the nearest aspect-ratio bin (as diffusers does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binning {
    Nearest,
    Exact,
}

/// What the caller asks of one Base run.
#[derive(Clone, Debug)]
pub struct BaseRequest {
    pub prompt: String,
    /// None: the SANA-Video docs' negative prompt.
    pub negative: Option<String>,
    /// None: 480 / 704 for the 480p / 720p model.
    pub height: Option<usize>,
    /// None: 832 / 1280.
    pub width: Option<usize>,
    pub frames: usize,
    pub steps: usize,
    pub guidance: f32,
    /// None: scheduler/scheduler_config.json's `flow_shift`, else 8.
    pub flow_shift: Option<f64>,
    /// Appends " motion score: N." to the prompt; None leaves it out.
    pub motion_score: Option<i32>,
    pub noise: NoiseSource,
    pub binning: Binning,
    /// Image-to-video: the first frame (display-referred RGB), resized to cover the generation
    /// size and centre-cropped (bilinear; diffusers resizes with PIL, so equal sizes are exact).
    pub image: Option<Frame>,
}

/// What to do with the text encoder once the prompt is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextEncoderAfter {
    /// Keep it loaded for the next run (the plugin: artists iterate on prompts).
    Keep,
    /// Drop it before denoising, freeing its memory for the transformer (one-shot CLI runs).
    Release,
}

/// The models of a Base (and Refine) run, loaded from one folder. The text encoder, the VAE and
/// Refine's latent upsampler load on first need, so a run served from the cache never pays for them.
pub struct BaseModels<B: Backend> {
    pub folder: ModelFolder,
    pub transformer: SanaVideoTransformer<B>,
    pub geometry: LatentGeometry,
    text: Option<(Gemma2Encoder<B>, PromptTokenizer)>,
    vae: Option<VideoVae<B>>,
    /// Refine ×2's upsampler and the folder it came from (it may live outside the model folder).
    upsampler: Option<(PathBuf, Ltx2LatentUpsampler<B>)>,
}

impl<B: Backend> BaseModels<B> {
    /// The transformer and the VAE's latent geometry; fails when they come from different models.
    pub fn load(be: &B, root: &Path) -> Result<Self> {
        let folder = ModelFolder::new(root)?;
        let transformer = SanaVideoTransformer::from_folder(be, &folder)?;
        let geometry = LatentGeometry::from_folder(&folder)?;
        if geometry.channels != transformer.config.in_channels {
            return Err(Error::config_key(
                folder.root.join("vae/config.json"),
                "latent channels",
                format!(
                    "is {} but the transformer takes {} (in_channels): the VAE and transformer come from different models",
                    geometry.channels, transformer.config.in_channels
                ),
            ));
        }
        Ok(BaseModels { folder, transformer, geometry, text: None, vae: None, upsampler: None })
    }

    /// The VAE, loaded on first need (image-to-video encodes its first frame with it).
    pub fn vae(&mut self, be: &B) -> Result<&VideoVae<B>> {
        if self.vae.is_none() {
            self.vae = Some(VideoVae::from_folder(be, &self.folder)?);
        }
        self.vae.as_ref().ok_or_else(|| Error::shape("vae", "not loaded"))
    }

    /// The VAE and the latent upsampler of `dir`, each loaded on first need; an upsampler from
    /// another folder replaces the one kept.
    pub fn vae_and_upsampler(&mut self, be: &B, dir: &Path) -> Result<(&VideoVae<B>, &Ltx2LatentUpsampler<B>)> {
        if self.upsampler.as_ref().is_none_or(|(kept, _)| kept != dir) {
            // the old one goes first: two real-size upsamplers need not fit side by side
            self.upsampler = None;
            self.upsampler = Some((dir.to_path_buf(), Ltx2LatentUpsampler::from_dir(be, dir)?));
        }
        self.vae(be)?;
        match (&self.vae, &self.upsampler) {
            (Some(vae), Some((_, upsampler))) => Ok((vae, upsampler)),
            _ => Err(Error::shape("latent upsampler", "not loaded")),
        }
    }

    /// The caption embeddings of one prompt and its negative prompt (the text encoder loads on
    /// first need and stays loaded).
    pub fn encode_captions(
        &mut self,
        be: &B,
        prompt: &str,
        negative: &str,
        options: &PromptOptions,
    ) -> Result<(PromptEmbeddings<B>, PromptEmbeddings<B>)> {
        let (encoder, tokenizer) = self.text(be)?;
        encode_prompts(be, encoder, tokenizer, &[prompt.to_string()], negative, options)
    }

    /// Frees the text encoder's memory (it loads again on the next need).
    pub fn release_text_encoder(&mut self) {
        self.text = None;
    }

    fn text(&mut self, be: &B) -> Result<&(Gemma2Encoder<B>, PromptTokenizer)> {
        if self.text.is_none() {
            let encoder = Gemma2Encoder::from_folder(be, &self.folder)?;
            check_matches_transformer(&self.folder, &encoder.config)?;
            let tokenizer = PromptTokenizer::from_folder(&self.folder)?;
            self.text = Some((encoder, tokenizer));
        }
        // just filled above when it was empty
        self.text.as_ref().ok_or_else(|| Error::shape("text encoder", "not loaded"))
    }
}

/// A request resolved against the models: everything a run needs and its cache key.
#[derive(Clone, Debug)]
pub struct BasePlan {
    pub height: usize,
    pub width: usize,
    /// The size asked for, before binning.
    pub requested: (usize, usize),
    pub frames: usize,
    /// (1, C, T, H, W)
    pub shape: [usize; 5],
    pub noise: LatentVideo,
    pub sampling: BaseSampling,
    pub prompt: String,
    pub negative: String,
    pub options: PromptOptions,
    pub image: Option<Frame>,
    pub key: CacheKey,
}

/// Resolves `request`: size (binned unless asked not to), latent shape, noise, flow shift, and
/// the cache key over everything that changes the latents.
pub fn plan_base<B: Backend>(be: &B, models: &BaseModels<B>, request: &BaseRequest) -> Result<BasePlan> {
    let config = &models.transformer.config;
    let is_720 = config.sample_size == 22;
    let requested = (
        request.height.unwrap_or(if is_720 { 704 } else { 480 }),
        request.width.unwrap_or(if is_720 { 1280 } else { 832 }),
    );
    let (height, width) = match request.binning {
        Binning::Exact => requested,
        Binning::Nearest => binned_resolution(requested.0, requested.1, config.sample_size)?,
    };
    let [t, h, w] = models.geometry.latent_size(request.frames, height, width)?;
    let shape = [1, models.geometry.channels, t, h, w];
    let noise = match &request.noise {
        NoiseSource::Seed(seed) => seeded_noise(shape, *seed),
        NoiseSource::File(path) => read_noise(path, shape)?,
    };
    let flow_shift = match request.flow_shift {
        Some(s) => s,
        None => models
            .folder
            .component_config("scheduler")
            .ok()
            .and_then(|c| c.get_or::<Option<f64>>("flow_shift", None).ok().flatten())
            .unwrap_or(8.0),
    };
    let sampling = BaseSampling { steps: request.steps, guidance: request.guidance, flow_shift };
    let options = PromptOptions { motion_score: request.motion_score, instruction: Instruction::Diffusers };
    let negative = request.negative.clone().unwrap_or_else(|| DEFAULT_NEGATIVE_PROMPT.to_string());
    // everything that changes the latents; the device does not (bf16 vs f32 aside, documented)
    let mut key = KeyBuilder::new("base-latents/v1");
    add_model_identity(&mut key, &models.folder)?;
    key.str("prompt", &request.prompt)
        .str("negative", &negative)
        .u64("motion", options.motion_score.map_or(u64::MAX, |m| m as u64));
    key.u64("steps", request.steps as u64).f64("guidance", request.guidance as f64).f64("shift", flow_shift);
    if let Some(image) = &request.image {
        key.tensor("image", &[image.height, image.width, 3], &image.rgb);
    }
    let device = be.name();
    key.tensor("noise", &noise.shape, &noise.data).str("device", device.split(" (").next().unwrap_or(&device));
    Ok(BasePlan {
        height,
        width,
        requested,
        frames: request.frames,
        shape,
        noise,
        sampling,
        prompt: request.prompt.clone(),
        image: request.image.clone(),
        negative,
        options,
        key: key.finish(),
    })
}

/// The conditioning frame as SanaImageToVideoPipeline prepares it: to the generation size, to
/// [−1, 1], one frame through the VAE encoder, normalised.
fn encode_first_frame<B: Backend>(
    be: &B,
    vae: &VideoVae<B>,
    image: &Frame,
    (height, width): (usize, usize),
    progress: &dyn Progress,
) -> Result<LatentVideo> {
    if let Some(bad) = image.rgb.iter().position(|v| !v.is_finite()) {
        return Err(Error::InputShape {
            name: "first-frame image".into(),
            expected: "finite pixel values".into(),
            got: format!("{} at pixel {} channel {}", image.rgb[bad], bad / 3, bad % 3),
        });
    }
    let (h, w) = (image.height, image.width);
    let planes: Vec<f32> = (0..3).flat_map(|c| (0..h * w).map(move |p| image.rgb[p * 3 + c] * 2.0 - 1.0)).collect();
    let sized = resize_and_center_crop(&planes, 3, [h, w], height, width);
    encode_video(be, vae, &sized, [1, 3, 1, height, width], progress)
}

/// The initial noise of `shape` from a safetensors file (`noise`, else `latents`).
pub(super) fn read_noise(path: &Path, shape: [usize; 5]) -> Result<LatentVideo> {
    let files = TensorFiles::open(path)?;
    // `noise` first: a file may also hold a run's final `latents`
    let tensor = match HostTensor::read(&files, "noise")? {
        Some(t) => t,
        None => HostTensor::read_required(&files, "latents", "(1, C, T, H, W) initial latents")?,
    };
    if tensor.shape != shape {
        return Err(Error::InputShape {
            name: format!("noise in `{}`", path.display()),
            expected: format!("{shape:?} for this request"),
            got: format!("{:?}", tensor.shape),
        });
    }
    Ok(LatentVideo { shape, data: tensor.data })
}

/// The latents of a run and whether they came from the cache.
pub struct BaseOutcome {
    pub latents: CachedLatent,
    pub cache_hit: bool,
}

/// Runs `plan`: a cache hit returns at once; otherwise encodes the prompt, denoises, and stores
/// the complete result (a cancelled or failed run stores nothing).
pub fn run_base<B: Backend>(
    be: &B,
    models: &mut BaseModels<B>,
    plan: &BasePlan,
    cache: Option<&LatentCache>,
    text_after: TextEncoderAfter,
    progress: &dyn Progress,
) -> Result<BaseOutcome> {
    if let Some(hit) = cache.and_then(|c| c.get(&plan.key)) {
        return Ok(BaseOutcome { latents: hit, cache_hit: true });
    }
    progress.update(0.0, "encoding the prompt");
    let (pos, neg) = models.encode_captions(be, &plan.prompt, &plan.negative, &plan.options)?;
    if text_after == TextEncoderAfter::Release {
        models.release_text_encoder();
    }
    let captions = Captions { positive: &pos, negative: &neg };
    let latents = match &plan.image {
        None => denoise_text_to_video(be, &models.transformer, captions, &plan.noise, &plan.sampling, progress)?,
        Some(image) => {
            progress.update(0.0, "encoding the first frame");
            let latent = encode_first_frame(be, models.vae(be)?, image, (plan.height, plan.width), progress)?;
            let transformer = &models.transformer;
            denoise_image_to_video(be, transformer, captions, &plan.noise, &latent.data, &plan.sampling, progress)?
        }
    };
    let meta = BTreeMap::from([("model".to_string(), models.folder.root.display().to_string())]);
    let latents = CachedLatent::new(latents.shape.to_vec(), latents.data, meta);
    if let Some(cache) = cache {
        cache.put(plan.key, latents.clone());
    }
    Ok(BaseOutcome { latents, cache_hit: false })
}
