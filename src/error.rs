//! The library's one error type. Every variant carries its evidence (file, tensor or key, expected,
//! got) and its message says what to do next, because these messages reach artists on a node and
//! pipeline TDs in farm logs, not just developers.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- checkpoint and files -------------------------------------------------------------------
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("model folder `{folder}` has no `{missing}`: point the model folder at a diffusers SANA-Video folder (model_index.json, transformer/, vae/, text_encoder/, tokenizer/)")]
    MissingComponent { folder: PathBuf, missing: String },

    #[error("`{path}` is not valid JSON: {reason}")]
    BadJson { path: PathBuf, reason: String },

    #[error("`{path}`: config key `{key}` {problem}")]
    ConfigKey { path: PathBuf, key: String, problem: String },

    #[error("`{path}` describes a `{got}`, expected {expected}: is the folder the right component of a SANA-Video checkpoint?")]
    WrongClass { path: PathBuf, expected: String, got: String },

    #[error("`{path}` is not a readable safetensors file ({reason}): the download may be truncated or corrupt; fetch it again")]
    BadSafetensors { path: PathBuf, reason: String },

    #[error("tensor `{name}` is missing from {files}: the checkpoint does not match the config (expected shape {expected:?})")]
    MissingTensor { name: String, files: String, expected: Vec<usize> },

    #[error("tensor `{name}` in `{path}` has shape {got:?}, expected {expected:?} from the config")]
    TensorShape { name: String, path: PathBuf, expected: Vec<usize>, got: Vec<usize> },

    #[error("tensor `{name}` in `{path}` has dtype {got}, expected one of f32, f16, bf16")]
    TensorDtype { name: String, path: PathBuf, got: String },

    #[error("{files} hold {count} tensors this architecture does not use (first: {first:?}): the checkpoint does not match its config.json, or is a variant we do not support")]
    UnusedTensors { files: String, count: usize, first: Vec<String> },

    #[error("tokenizer `{path}` {reason}: point the model folder at a SANA-Video folder whose tokenizer/ holds Gemma's tokenizer.json")]
    BadTokenizer { path: PathBuf, reason: String },

    #[error("`{text_encoder}` has hidden size {hidden}, but `{transformer}` expects caption_channels {caption_channels}: the text encoder and the transformer come from different models")]
    CaptionMismatch { text_encoder: PathBuf, hidden: usize, transformer: PathBuf, caption_channels: usize },

    #[error("shard index `{path}`: {reason}")]
    BadShardIndex { path: PathBuf, reason: String },

    #[error("latent upsampler folder `{folder}` has no `config.json`: point it at an LTX-2 `latent_upsampler` folder (config.json and diffusion_pytorch_model.safetensors of an LTX2LatentUpsamplerModel, e.g. Lightricks/LTX-2's latent_upsampler/)")]
    MissingUpsampler { folder: PathBuf },

    // ---- shapes and inputs ----------------------------------------------------------------------
    #[error("input `{name}`: expected {expected}, got {got}")]
    InputShape { name: String, expected: String, got: String },

    #[error("{op}: {reason}")]
    Shape { op: &'static str, reason: String },

    #[error("Upscale ×2 works on LTX-2 VAE latents: the upsampler `{upsampler}` takes {expected} channels (in_channels) but the latents have {got}. ×2 needs the SANA-Video 720p model (LTX-2 VAE); the 480p model's Wan-VAE latents cannot be upsampled: refine at ×1 or use the 720p model")]
    UpscaleChannels { upsampler: PathBuf, expected: usize, got: usize },

    // ---- cache ----------------------------------------------------------------------------------
    #[error("cache entry `{path}` {reason}")]
    CacheEntry { path: PathBuf, reason: String },

    // ---- device ---------------------------------------------------------------------------------
    #[error("device `{device}`: {reason}")]
    Device { device: String, reason: String },

    // ---- run control ----------------------------------------------------------------------------
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub fn config_key(path: impl Into<PathBuf>, key: &str, problem: impl Into<String>) -> Self {
        Error::ConfigKey { path: path.into(), key: key.to_string(), problem: problem.into() }
    }

    pub fn shape(op: &'static str, reason: impl Into<String>) -> Self {
        Error::Shape { op, reason: reason.into() }
    }
}
