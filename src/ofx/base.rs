//! SANA Base: text (and, in the general context, a first-frame image) to a clip.
//!
//! Identity card
//! - identifier `org.sana-ofx.sana.Base`, version 1.0 (major bumps only when saved comps would
//!   render differently: a parameter renamed, retyped or a choice reordered)
//! - grouping "SANA"; contexts Generator (Output) and General (Output + optional `Image`)
//! - full-frame (no tiles), fully thread-safe with our own locks, host frame threading off,
//!   frame-varying output, any render order (sequential render 0: the clip cache makes order
//!   irrelevant), CPU render (OFX 1.5 CUDA render declared unsupported until it is built).

use std::ffi::CStr;
use std::path::PathBuf;

use super::effect::{clip, define_clip, effect_props};
use super::error::{OfxError, OfxResult};
use super::params::{self, Colourspace, Device, Kind, ParamDef, StringMode, Values};
use super::props::PropSet;
use super::suites::Suites;
use super::sys::*;

pub const IDENTIFIER: &CStr = c"org.sana-ofx.sana.Base";
pub const VERSION: (u32, u32) = (1, 0);
pub const LABEL: &str = "SANA Base";
pub const DESCRIPTION: &str =
    "SANA-Video text-to-video: generates the whole clip once per set of parameters and serves \
     it frame by frame. Set Model Folder to a diffusers SANA-Video folder.";

/// The optional first-frame conditioning input of the general context.
pub const IMAGE_CLIP: &CStr = c"Image";

/// The first frame of the generated clip on the host's timeline: frames 1..=Frame Count.
pub const FIRST_FRAME: f64 = 1.0;

const NEGATIVE_PROMPT: &CStr = c"negativePrompt";
const GUIDANCE: &CStr = c"guidance";
const FLOW_SHIFT: &CStr = c"flowShift";
const RESOLUTION: &CStr = c"resolution";
const ASPECT: &CStr = c"aspect";
const WIDTH: &CStr = c"width";
const HEIGHT: &CStr = c"height";
const FRAME_COUNT: &CStr = c"frameCount";
const MOTION_SCORE: &CStr = c"motionScore";

/// Resolution presets; index order is stored in projects: only append.
const RESOLUTIONS: &[&str] = &["480p (Wan VAE model)", "720p (LTX-2 VAE model)", "Custom (Width × Height)"];
const ASPECTS: &[&str] = &["16:9 landscape", "9:16 portrait", "1:1 square", "4:3"];
/// Width × height of each preset and aspect: the model's aspect-ratio bins nearest each
/// aspect, all multiples of 32 as both VAEs require.
const PRESET_SIZES: [[(usize, usize); 4]; 2] =
    [[(832, 480), (480, 832), (640, 640), (640, 480)], [(1280, 704), (704, 1280), (960, 960), (1024, 768)]];

const PROMPT_PAGE: &str = "Prompt";
const SAMPLING_PAGE: &str = "Sampling";
const CLIP_PAGE: &str = "Clip";
const MODEL_PAGE: &str = "Model";

pub fn param_defs() -> Vec<ParamDef> {
    vec![
        ParamDef {
            name: params::PROMPT,
            label: "Prompt",
            hint: "What the clip shows.",
            page: PROMPT_PAGE,
            kind: Kind::String { mode: StringMode::MultiLine, default: "" },
        },
        ParamDef {
            name: NEGATIVE_PROMPT,
            label: "Negative Prompt",
            hint: "What to steer away from. Empty: the SANA-Video docs' negative prompt.",
            page: PROMPT_PAGE,
            kind: Kind::String { mode: StringMode::MultiLine, default: "" },
        },
        params::seed(PROMPT_PAGE),
        ParamDef {
            name: MOTION_SCORE,
            label: "Motion Score",
            hint: "Appended to the prompt as \" motion score: N.\" (the SANA-Video docs use 30): higher, more motion.",
            page: PROMPT_PAGE,
            kind: Kind::Int { default: 30, min: 0, max: 100 },
        },
        ParamDef {
            name: params::STEPS,
            label: "Steps",
            hint: "Denoising steps (flow DPM-Solver++). 50 is the published setting.",
            page: SAMPLING_PAGE,
            kind: Kind::Int { default: 50, min: 1, max: 200 },
        },
        ParamDef {
            name: GUIDANCE,
            label: "Guidance",
            hint: "Classifier-free guidance scale; 1 disables the negative prompt and halves the work.",
            page: SAMPLING_PAGE,
            kind: Kind::Double { default: 6.0, min: 1.0, max: 20.0 },
        },
        ParamDef {
            name: FLOW_SHIFT,
            label: "Flow Shift",
            hint: "Shift of the sampling schedule. 0: the model's scheduler_config.json value (else 8).",
            page: SAMPLING_PAGE,
            kind: Kind::Double { default: 0.0, min: 0.0, max: 50.0 },
        },
        ParamDef {
            name: RESOLUTION,
            label: "Resolution",
            hint: "480p for the 480p (Wan VAE) model, 720p for the 720p (LTX-2 VAE) one, or Custom.",
            page: CLIP_PAGE,
            kind: Kind::Choice { options: RESOLUTIONS, default: 0 },
        },
        ParamDef {
            name: ASPECT,
            label: "Aspect",
            hint: "Aspect of the 480p / 720p presets.",
            page: CLIP_PAGE,
            kind: Kind::Choice { options: ASPECTS, default: 0 },
        },
        ParamDef {
            name: WIDTH,
            label: "Width",
            hint: "Width in pixels when Resolution is Custom: a multiple of 32.",
            page: CLIP_PAGE,
            kind: Kind::Int { default: 832, min: 32, max: 4096 },
        },
        ParamDef {
            name: HEIGHT,
            label: "Height",
            hint: "Height in pixels when Resolution is Custom: a multiple of 32.",
            page: CLIP_PAGE,
            kind: Kind::Int { default: 480, min: 32, max: 4096 },
        },
        ParamDef {
            name: FRAME_COUNT,
            label: "Frame Count",
            hint: "Frames to generate, from frame 1: k·4 + 1 for the 480p model (81), k·8 + 1 for the 720p one.",
            page: CLIP_PAGE,
            kind: Kind::Int { default: 81, min: 1, max: 1000 },
        },
        params::model_folder(MODEL_PAGE),
        params::device(MODEL_PAGE),
        params::colourspace(params::OUTPUT_COLOURSPACE, "Output Colourspace", MODEL_PAGE),
    ]
}

/// The contexts and pixel depths both effects declare, and the capability flags of the card.
pub fn describe_common(props: &PropSet, label: &str, description: &str, contexts: &[&CStr]) -> OfxResult<()> {
    use super::props::allow_missing;
    props.set_string(kOfxPropLabel, 0, label)?;
    props.set_cstr(kOfxImageEffectPluginPropGrouping, 0, c"SANA")?;
    allow_missing(props.set_string(kOfxPropPluginDescription, 0, description))?;
    props.set_cstrs(kOfxImageEffectPropSupportedContexts, contexts)?;
    props.set_cstrs(
        kOfxImageEffectPropSupportedPixelDepths,
        &[kOfxBitDepthFloat, kOfxBitDepthShort, kOfxBitDepthByte],
    )?;
    props.set_int(kOfxImageEffectPluginPropSingleInstance, 0, 0)?;
    // our own locks: a global engine lock and a per-instance clip cache (spec/OFX.md §7)
    props.set_cstr(kOfxImageEffectPluginRenderThreadSafety, 0, kOfxImageEffectRenderFullySafe)?;
    props.set_int(kOfxImageEffectPluginPropHostFrameThreading, 0, 0)?;
    // the model makes whole frames: never tiles, never a window of one
    props.set_int(kOfxImageEffectPropSupportsTiles, 0, 0)?;
    props.set_int(kOfxImageEffectPropSupportsMultiResolution, 0, 1)?;
    props.set_int(kOfxImageEffectPropTemporalClipAccess, 0, 1)?;
    props.set_int(kOfxImageEffectPropSupportsMultipleClipDepths, 0, 0)?;
    // 0: any order is correct, the clip cache serves every frame (Nuke lacks it: ignore)
    allow_missing(props.set_int(kOfxImageEffectInstancePropSequentialRender, 0, 0))?;
    // OFX 1.5 GPU render (Resolve can hand plugins CUDA memory and a stream) is declared "false"
    // until the device-image path exists and has run in a host: a host that believed "true" would
    // hand us device pointers and every render would fail. CPU images work in every host.
    allow_missing(props.set_cstr(kOfxImageEffectPropCudaRenderSupported, 0, c"false"))?;
    allow_missing(props.set_cstr(kOfxImageEffectPropCudaStreamSupported, 0, c"false"))?;
    allow_missing(props.set_cstr(kOfxImageEffectPropCPURenderSupported, 0, c"true"))?;
    Ok(())
}

pub fn describe(suites: &Suites, effect: OfxImageEffectHandle) -> OfxResult<()> {
    let props = effect_props(suites, effect)?;
    describe_common(&props, LABEL, DESCRIPTION, &[kOfxImageEffectContextGenerator, kOfxImageEffectContextGeneral])
}

pub fn describe_in_context(suites: &Suites, effect: OfxImageEffectHandle, context: &str) -> OfxResult<()> {
    let output = define_clip(suites, effect, kOfxImageEffectOutputClipName)?;
    output.set_cstrs(kOfxImageEffectPropSupportedComponents, &[kOfxImageComponentRGBA])?;
    output.set_int(kOfxImageEffectPropSupportsTiles, 0, 0)?;
    if context == kOfxImageEffectContextGeneral.to_str().unwrap_or_default() {
        let image = define_clip(suites, effect, IMAGE_CLIP)?;
        image.set_cstrs(kOfxImageEffectPropSupportedComponents, &[kOfxImageComponentRGBA, kOfxImageComponentRGB])?;
        image.set_int(kOfxImageClipPropOptional, 0, 1)?;
        image.set_int(kOfxImageEffectPropSupportsTiles, 0, 0)?;
        image.set_int(kOfxImageEffectPropTemporalClipAccess, 0, 1)?;
        image.set_string(kOfxPropLabel, 0, "Image (first frame)")?;
    }
    params::describe(suites, effect, &param_defs())
}

/// Base's settings for one render, checked: errors name the parameter and what is expected.
#[derive(Clone, Debug)]
pub struct BaseSettings {
    pub model_folder: PathBuf,
    pub prompt: String,
    pub negative: Option<String>,
    pub seed: u64,
    pub steps: usize,
    pub guidance: f32,
    pub flow_shift: Option<f64>,
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    pub motion_score: i32,
    pub device: Device,
    pub output_colourspace: Colourspace,
}

/// The clip size of the resolution parameters, without touching the model (RoD runs on the main
/// thread and must not load anything).
pub fn size(values: &Values) -> OfxResult<(usize, usize)> {
    let preset = values.choice(RESOLUTION)?;
    let aspect = values.choice(ASPECT)?;
    match preset {
        0 | 1 => PRESET_SIZES[preset as usize].get(aspect as usize).copied().ok_or_else(|| {
            OfxError::Setting(format!("Aspect option {aspect} is unknown to this version of SANA Base"))
        }),
        _ => {
            let (w, h) = (values.count(WIDTH, 32)?, values.count(HEIGHT, 32)?);
            if !w.is_multiple_of(32) || !h.is_multiple_of(32) {
                return Err(OfxError::Setting(format!(
                    "Width × Height is {w} × {h}: both must be multiples of 32 (e.g. {} × {})",
                    w / 32 * 32,
                    h / 32 * 32
                )));
            }
            Ok((w, h))
        }
    }
}

pub fn frame_count(values: &Values) -> OfxResult<usize> {
    values.count(FRAME_COUNT, 1)
}

impl BaseSettings {
    pub fn from_values(values: &Values) -> OfxResult<Self> {
        let model_folder = values.model_folder()?;
        let prompt = values.prompt()?;
        let negative = values.string(NEGATIVE_PROMPT)?.trim();
        let (width, height) = size(values)?;
        let flow_shift = values.double(FLOW_SHIFT)?;
        Ok(BaseSettings {
            model_folder,
            prompt,
            negative: (!negative.is_empty()).then(|| negative.to_string()),
            seed: values.count(params::SEED, 0)? as u64,
            steps: values.count(params::STEPS, 1)?,
            guidance: values.double(GUIDANCE)? as f32,
            flow_shift: (flow_shift > 0.0).then_some(flow_shift),
            width,
            height,
            frames: frame_count(values)?,
            motion_score: values.int(MOTION_SCORE)?,
            device: values.device()?,
            output_colourspace: values.colourspace(params::OUTPUT_COLOURSPACE)?,
        })
    }
}

// ---- instance actions -------------------------------------------------------------------------

pub fn clip_preferences(out_args: &PropSet) -> OfxResult<()> {
    out_args.set_cstr(c"OfxImageClipPropComponents_Output", 0, kOfxImageComponentRGBA)?;
    out_args.set_cstr(c"OfxImageClipPropDepth_Output", 0, kOfxBitDepthFloat)?;
    // Natron leaves time out of its cache key for a node that is not frame-varying: without it
    // frame 1 would show at every time
    out_args.set_int(kOfxImageEffectFrameVarying, 0, 1)?;
    out_args.set_int(kOfxImageClipPropContinuousSamples, 0, 0)?;
    out_args.set_cstr(kOfxImageEffectPropPreMultiplication, 0, kOfxImageOpaque)?;
    Ok(())
}

/// Region of definition: the generated size, rooted at the origin, in canonical coordinates
/// (x scaled by the project's pixel aspect ratio).
pub fn region_of_definition(suites: &Suites, effect: OfxImageEffectHandle, out_args: &PropSet) -> OfxResult<()> {
    let values = params::read_all(suites, effect, &param_defs())?;
    let (w, h) = size(&values)?;
    let par = effect_props(suites, effect)?.get_double(kOfxImageEffectPropProjectPixelAspectRatio, 0).unwrap_or(1.0);
    let par = if par > 0.0 { par } else { 1.0 };
    out_args.set_doubles(kOfxImageEffectPropRegionOfDefinition, &[0.0, 0.0, w as f64 * par, h as f64])
}

/// Time domain: frames FIRST_FRAME ..= FIRST_FRAME + count − 1 (inclusive).
pub fn time_domain(suites: &Suites, effect: OfxImageEffectHandle, out_args: &PropSet) -> OfxResult<()> {
    let values = params::read_all(suites, effect, &param_defs())?;
    let n = frame_count(&values)?;
    out_args.set_doubles(kOfxImageEffectPropFrameRange, &[FIRST_FRAME, FIRST_FRAME + n as f64 - 1.0])
}

/// Frames needed: only the conditioning frame of `Image` (its first frame), when connected.
pub fn frames_needed(suites: &Suites, effect: OfxImageEffectHandle, out_args: &PropSet) -> OfxResult<()> {
    let Ok(image) = clip(suites, effect, IMAGE_CLIP) else { return Ok(()) };
    if !image.connected() {
        return Ok(());
    }
    let [first, _] = image.props.get_doubles::<2>(kOfxImageEffectPropFrameRange).unwrap_or([FIRST_FRAME; 2]);
    out_args.set_doubles(c"OfxImageClipPropFrameRange_Image", &[first, first])
}
