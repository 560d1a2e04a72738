//! SANA Refine: a low-resolution clip (Base's output or any plate) in, the same clip with detail
//! added, at ×1 or ×2, out (MODEL.md §8).
//!
//! Identity card
//! - identifier `org.sana-ofx.sana.Refine`, version 1.0
//! - grouping "SANA"; contexts Filter (Source + Output) and General (Natron, Nuke)
//! - the same capability flags as SANA Base (base::describe_common), plus temporal access on
//!   Source: the whole input range is read at once.

use std::ffi::CStr;
use std::path::PathBuf;

use super::base::describe_common;
use super::effect::{clip, define_clip, effect_props};
use super::error::{OfxError, OfxResult};
use super::params::{self, Colourspace, Device, Kind, ParamDef, StringMode, Values};
use super::props::PropSet;
use super::suites::Suites;
use super::sys::*;
use crate::engine::pipeline::refine::RefineSampling;
use crate::engine::pipeline::refine_job::{CachedSource, Upscale};

pub const IDENTIFIER: &CStr = c"org.sana-ofx.sana.Refine";
pub const VERSION: (u32, u32) = (1, 0);
pub const LABEL: &str = "SANA Refine";
pub const DESCRIPTION: &str = "SANA-Video refiner: re-noises the input clip's latents partway and denoises a few \
     steps to add detail, at ×1 or ×2. Downstream of SANA Base it reuses Base's cached latents.";

pub const SOURCE_CLIP: &CStr = kOfxImageEffectSimpleSourceClipName;

const REFINER_BACKEND: &CStr = c"refinerBackend";
const STRENGTH: &CStr = c"strength";
const GUIDANCE: &CStr = c"guidance";
const UPSCALE: &CStr = c"upscale";
const USE_CACHED_LATENTS: &CStr = c"useCachedLatents";
const UPSAMPLER_FOLDER: &CStr = c"upsamplerFolder";

/// Index order is stored in projects: only append. The LTX-2 refiner is not built yet (a later
/// issue); the default is the backend that runs.
const BACKENDS: &[&str] = &["LTX-2 refiner (distilled LoRA, published recipe)", "SANA-Video (same model as Base)"];
const BACKEND_SANA_VIDEO: i32 = 1;
const UPSCALES: &[&str] = &["×1", "×2"];

const REFINE_PAGE: &str = "Refine";
const MODEL_PAGE: &str = "Model";

pub fn param_defs() -> Vec<ParamDef> {
    vec![
        ParamDef {
            name: STRENGTH,
            label: "Strength",
            hint: "How far back toward noise the clip goes before it is denoised again: the fraction of the \
                   schedule re-run (0.3 of 20 steps at shift 3 re-noises to σ₀ ≈ 0.56). Higher redraws more; \
                   1 regenerates from noise.",
            page: REFINE_PAGE,
            kind: Kind::Double { default: 0.3, min: 0.01, max: 1.0 },
        },
        ParamDef {
            name: params::STEPS,
            label: "Steps",
            hint: "Steps of the full flow-Euler schedule; Refine runs about Steps × Strength of them.",
            page: REFINE_PAGE,
            kind: Kind::Int { default: 20, min: 1, max: 200 },
        },
        ParamDef {
            name: GUIDANCE,
            label: "Guidance",
            hint: "Classifier-free guidance scale while refining (a little under Base's 6: the clip already \
                   carries the prompt).",
            page: REFINE_PAGE,
            kind: Kind::Double { default: 4.5, min: 1.0, max: 20.0 },
        },
        ParamDef {
            name: UPSCALE,
            label: "Upscale",
            hint: "×2 upsamples the latents with the LTX-2 latent upsampler before refining (704p → 1408p): the \
                   output is twice the Source's size. Needs the SANA-Video 720p model (LTX-2 VAE) and the \
                   Upsampler Folder.",
            page: REFINE_PAGE,
            kind: Kind::Choice { options: UPSCALES, default: 0 },
        },
        ParamDef {
            name: params::PROMPT,
            label: "Prompt",
            hint: "The prompt of the clip being refined (without Base's motion score).",
            page: REFINE_PAGE,
            kind: Kind::String { mode: StringMode::MultiLine, default: "" },
        },
        params::seed(REFINE_PAGE),
        ParamDef {
            name: USE_CACHED_LATENTS,
            label: "Use Cached Latents",
            hint: "Downstream of SANA Base, take Base's latents from the cache instead of encoding its pixels.",
            page: REFINE_PAGE,
            kind: Kind::Bool { default: true },
        },
        params::model_folder(MODEL_PAGE),
        ParamDef {
            name: UPSAMPLER_FOLDER,
            label: "Upsampler Folder",
            hint: "For Upscale ×2: an LTX-2 latent_upsampler folder (config.json and \
                   diffusion_pytorch_model.safetensors, e.g. Lightricks/LTX-2's latent_upsampler/). Empty: \
                   <Model Folder>/latent_upsampler.",
            page: MODEL_PAGE,
            kind: Kind::String { mode: StringMode::Directory, default: "" },
        },
        ParamDef {
            name: REFINER_BACKEND,
            label: "Refiner Backend",
            hint: "Which model refines: SANA-Video (the Model Folder's transformer in refine mode). The LTX-2 \
                   distilled refiner of the published 2K recipe is not built yet.",
            page: MODEL_PAGE,
            kind: Kind::Choice { options: BACKENDS, default: BACKEND_SANA_VIDEO },
        },
        params::device(MODEL_PAGE),
        params::colourspace(params::INPUT_COLOURSPACE, "Input Colourspace", MODEL_PAGE),
        params::colourspace(params::OUTPUT_COLOURSPACE, "Output Colourspace", MODEL_PAGE),
    ]
}

pub fn describe(suites: &Suites, effect: OfxImageEffectHandle) -> OfxResult<()> {
    let props = effect_props(suites, effect)?;
    describe_common(&props, LABEL, DESCRIPTION, &[kOfxImageEffectContextFilter, kOfxImageEffectContextGeneral])
}

pub fn describe_in_context(suites: &Suites, effect: OfxImageEffectHandle) -> OfxResult<()> {
    let source = define_clip(suites, effect, SOURCE_CLIP)?;
    source.set_cstrs(kOfxImageEffectPropSupportedComponents, &[kOfxImageComponentRGBA, kOfxImageComponentRGB])?;
    source.set_int(kOfxImageEffectPropSupportsTiles, 0, 0)?;
    source.set_int(kOfxImageEffectPropTemporalClipAccess, 0, 1)?;
    let output = define_clip(suites, effect, kOfxImageEffectOutputClipName)?;
    output.set_cstrs(kOfxImageEffectPropSupportedComponents, &[kOfxImageComponentRGBA])?;
    output.set_int(kOfxImageEffectPropSupportsTiles, 0, 0)?;
    params::describe(suites, effect, &param_defs())
}

/// ×1 or ×2.
pub fn upscale(values: &Values) -> OfxResult<f64> {
    Ok(if values.choice(UPSCALE)? == 1 { 2.0 } else { 1.0 })
}

/// Upscale and, for ×2, the upsampler folder (Upsampler Folder, else `<Model Folder>/latent_upsampler`),
/// checked to hold a config: the message names the parameter and what to point it at.
fn upscale_mode(values: &Values, model_folder: &std::path::Path) -> OfxResult<Upscale> {
    if upscale(values)? == 1.0 {
        return Ok(Upscale::None);
    }
    let given = values.string(UPSAMPLER_FOLDER)?.trim();
    let folder = if given.is_empty() { model_folder.join("latent_upsampler") } else { PathBuf::from(given) };
    if !folder.join("config.json").is_file() {
        return Err(OfxError::Setting(format!(
            "Upscale ×2: the upsampler folder `{}` has no config.json ({}): set Upsampler Folder to an LTX-2 \
             latent_upsampler folder (config.json and diffusion_pytorch_model.safetensors), or Upscale to ×1",
            folder.display(),
            if given.is_empty() {
                "Upsampler Folder is empty, so <Model Folder>/latent_upsampler"
            } else {
                "Upsampler Folder"
            }
        )));
    }
    Ok(Upscale::LatentX2 { upsampler: folder })
}

/// Refine's settings for one render, checked: errors name the parameter and what is expected.
#[derive(Clone, Debug)]
pub struct RefineSettings {
    pub model_folder: PathBuf,
    pub prompt: String,
    pub seed: u64,
    pub sampling: RefineSampling,
    pub cached_source: CachedSource,
    pub upscale: Upscale,
    pub device: Device,
    pub input_colourspace: Colourspace,
    pub output_colourspace: Colourspace,
}

impl RefineSettings {
    pub fn from_values(values: &Values) -> OfxResult<Self> {
        if values.choice(REFINER_BACKEND)? != BACKEND_SANA_VIDEO {
            return Err(OfxError::NotBuilt(
                "Refiner Backend: the LTX-2 distilled refiner is not built yet; set Refiner Backend to SANA-Video",
            ));
        }
        let defaults = RefineSampling::default();
        let model_folder = values.model_folder()?;
        Ok(RefineSettings {
            upscale: upscale_mode(values, &model_folder)?,
            model_folder,
            prompt: values.prompt()?,
            seed: values.count(params::SEED, 0)? as u64,
            sampling: RefineSampling {
                steps: values.count(params::STEPS, 1)?,
                strength: values.double(STRENGTH)?,
                guidance: values.double(GUIDANCE)? as f32,
                flow_shift: defaults.flow_shift,
            },
            cached_source: if values.bool(USE_CACHED_LATENTS)? { CachedSource::Use } else { CachedSource::Encode },
            device: values.device()?,
            input_colourspace: values.colourspace(params::INPUT_COLOURSPACE)?,
            output_colourspace: values.colourspace(params::OUTPUT_COLOURSPACE)?,
        })
    }
}

/// The Source clip's frame range (first, last), inclusive.
pub fn source_range(source: &super::effect::Clip) -> OfxResult<(f64, f64)> {
    match source.props.get_doubles::<2>(kOfxImageEffectPropFrameRange) {
        Ok([first, last]) if last >= first => Ok((first, last)),
        Ok(r) => Err(OfxError::Clip {
            clip: "Source".into(),
            problem: format!("its frame range {r:?} is empty: connect a clip with frames"),
        }),
        Err(e) => Err(e),
    }
}

pub fn clip_preferences(out_args: &PropSet) -> OfxResult<()> {
    for name in [c"OfxImageClipPropComponents_Output", c"OfxImageClipPropComponents_Source"] {
        out_args.set_cstr(name, 0, kOfxImageComponentRGBA)?;
    }
    for name in [c"OfxImageClipPropDepth_Output", c"OfxImageClipPropDepth_Source"] {
        out_args.set_cstr(name, 0, kOfxBitDepthFloat)?;
    }
    out_args.set_int(kOfxImageEffectFrameVarying, 0, 1)?;
    out_args.set_int(kOfxImageClipPropContinuousSamples, 0, 0)?;
    out_args.set_cstr(kOfxImageEffectPropPreMultiplication, 0, kOfxImageOpaque)?;
    Ok(())
}

/// The source's region scaled by the upscale factor; infinite edges pass through.
pub fn region_of_definition(
    suites: &Suites,
    effect: OfxImageEffectHandle,
    in_args: &PropSet,
    out_args: &PropSet,
) -> OfxResult<()> {
    let values = params::read_all(suites, effect, &param_defs())?;
    let k = upscale(&values)?;
    let time = in_args.get_double(kOfxPropTime, 0)?;
    let source = clip(suites, effect, SOURCE_CLIP)?;
    let r = source.region_of_definition(suites, time)?;
    let scale = |v: f64| if v <= kOfxFlagInfiniteMin as f64 || v >= kOfxFlagInfiniteMax as f64 { v } else { v * k };
    out_args.set_doubles(kOfxImageEffectPropRegionOfDefinition, &[scale(r.x1), scale(r.y1), scale(r.x2), scale(r.y2)])
}

/// The whole source region, whatever window is asked: the model needs whole frames.
pub fn regions_of_interest(
    suites: &Suites,
    effect: OfxImageEffectHandle,
    in_args: &PropSet,
    out_args: &PropSet,
) -> OfxResult<()> {
    let time = in_args.get_double(kOfxPropTime, 0)?;
    let r = clip(suites, effect, SOURCE_CLIP)?.region_of_definition(suites, time)?;
    out_args.set_doubles(c"OfxImageClipPropRoI_Source", &[r.x1, r.y1, r.x2, r.y2])
}

/// The whole input range: the clip is refined at once. Thumbnails need only their own frame.
pub fn frames_needed(
    suites: &Suites,
    effect: OfxImageEffectHandle,
    in_args: &PropSet,
    out_args: &PropSet,
) -> OfxResult<()> {
    let time = in_args.get_double(kOfxPropTime, 0)?;
    let thumbnail = in_args.get_int(kOfxImageEffectPropThumbnailRender, 0).unwrap_or(0) != 0;
    let source = clip(suites, effect, SOURCE_CLIP)?;
    let range = match source.props.get_doubles::<2>(kOfxImageEffectPropFrameRange) {
        Ok(r) if !thumbnail && r[1] >= r[0] => r,
        _ => [time, time],
    };
    out_args.set_doubles(c"OfxImageClipPropFrameRange_Source", &range)
}
