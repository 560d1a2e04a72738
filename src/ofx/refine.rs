//! SANA Refine: a low-resolution clip (Base's output or any plate) in, the same clip with detail
//! added, at ×1 or ×2, out (MODEL.md §8).
//!
//! Identity card
//! - identifier `org.sana-ofx.sana.Refine`, version 1.0
//! - grouping "SANA"; contexts Filter (Source + Output) and General (Natron, Nuke)
//! - the same capability flags as SANA Base (base::describe_common), plus temporal access on
//!   Source: the whole input range is read at once.

use std::ffi::CStr;

use super::base::describe_common;
use super::effect::{clip, define_clip, effect_props};
use super::error::OfxResult;
use super::params::{self, Kind, ParamDef, StringMode, Values};
use super::props::PropSet;
use super::suites::Suites;
use super::sys::*;

pub const IDENTIFIER: &CStr = c"org.sana-ofx.sana.Refine";
pub const VERSION: (u32, u32) = (1, 0);
pub const LABEL: &str = "SANA Refine";
pub const DESCRIPTION: &str = "SANA-Video refiner: re-noises the input clip's latents partway and denoises a few \
     steps to add detail, at ×1 or ×2. Downstream of SANA Base it reuses Base's cached latents.";

pub const SOURCE_CLIP: &CStr = kOfxImageEffectSimpleSourceClipName;

const REFINER_BACKEND: &CStr = c"refinerBackend";
const STRENGTH: &CStr = c"strength";
const UPSCALE: &CStr = c"upscale";
const USE_CACHED_LATENTS: &CStr = c"useCachedLatents";

/// Index order is stored in projects: only append.
const BACKENDS: &[&str] = &["LTX-2 refiner (distilled LoRA, published recipe)", "SANA-Video (same model as Base)"];
const UPSCALES: &[&str] = &["×1", "×2"];

const REFINE_PAGE: &str = "Refine";
const MODEL_PAGE: &str = "Model";

pub fn param_defs() -> Vec<ParamDef> {
    vec![
        ParamDef {
            name: STRENGTH,
            label: "Strength (σ₀)",
            hint: "Noise level the input is re-noised to before refining: 0.909375 in the published recipe; lower \
                   keeps more of the input.",
            page: REFINE_PAGE,
            kind: Kind::Double { default: 0.909375, min: 0.0, max: 1.0 },
        },
        ParamDef {
            name: params::STEPS,
            label: "Steps",
            hint: "Refining steps (the published recipe uses 3).",
            page: REFINE_PAGE,
            kind: Kind::Int { default: 3, min: 1, max: 50 },
        },
        ParamDef {
            name: UPSCALE,
            label: "Upscale",
            hint: "×2 upsamples the latent before refining (704p → 1408p).",
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
            name: REFINER_BACKEND,
            label: "Refiner Backend",
            hint: "Which model refines.",
            page: MODEL_PAGE,
            kind: Kind::Choice { options: BACKENDS, default: 0 },
        },
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
