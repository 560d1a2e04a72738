//! The plugin driven as a host drives it: the bundle built by `bundle/build.sh` from this build's
//! cdylib, dlopened, loaded (twice), described, instantiated, asked for clip preferences, regions,
//! frame ranges and renders, changed, destroyed and unloaded, through a host of our own
//! (tests/ofx_host/host.rs). Linux x86-64 only, as the bundle is.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod common;
#[path = "ofx_host/driver.rs"]
mod driver;
#[path = "ofx_host/host.rs"]
mod host;

use std::ffi::CStr;
use std::path::PathBuf;
use std::sync::atomic::Ordering::SeqCst;

use driver::{binary, connect_plate, exclusive, Plugin};
use host::{Effect, V};
use sana::ofx::sys::*;

const BASE: &str = "org.sana-ofx.sana.Base";
const REFINE: &str = "org.sana-ofx.sana.Refine";

/// The parameters the issue lists, by script name, and the pages they sit on.
const BASE_PARAMS: &[(&str, &str, &str)] = &[
    ("prompt", "OfxParamTypeString", "Prompt"),
    ("negativePrompt", "OfxParamTypeString", "Prompt"),
    ("seed", "OfxParamTypeInteger", "Prompt"),
    ("motionScore", "OfxParamTypeInteger", "Prompt"),
    ("steps", "OfxParamTypeInteger", "Sampling"),
    ("guidance", "OfxParamTypeDouble", "Sampling"),
    ("flowShift", "OfxParamTypeDouble", "Sampling"),
    ("resolution", "OfxParamTypeChoice", "Clip"),
    ("aspect", "OfxParamTypeChoice", "Clip"),
    ("width", "OfxParamTypeInteger", "Clip"),
    ("height", "OfxParamTypeInteger", "Clip"),
    ("frameCount", "OfxParamTypeInteger", "Clip"),
    ("modelFolder", "OfxParamTypeString", "Model"),
    ("device", "OfxParamTypeChoice", "Model"),
    ("outputColourspace", "OfxParamTypeChoice", "Model"),
];
const REFINE_PARAMS: &[(&str, &str, &str)] = &[
    ("strength", "OfxParamTypeDouble", "Refine"),
    ("steps", "OfxParamTypeInteger", "Refine"),
    ("guidance", "OfxParamTypeDouble", "Refine"),
    ("upscale", "OfxParamTypeChoice", "Refine"),
    ("prompt", "OfxParamTypeString", "Refine"),
    ("seed", "OfxParamTypeInteger", "Refine"),
    ("useCachedLatents", "OfxParamTypeBoolean", "Refine"),
    ("modelFolder", "OfxParamTypeString", "Model"),
    ("upsamplerFolder", "OfxParamTypeString", "Model"),
    ("refinerBackend", "OfxParamTypeChoice", "Model"),
    ("device", "OfxParamTypeChoice", "Model"),
    ("inputColourspace", "OfxParamTypeChoice", "Model"),
    ("outputColourspace", "OfxParamTypeChoice", "Model"),
];

fn tiny_model() -> PathBuf {
    common::fixtures().join("pipeline/tiny-sana-video")
}

/// Loads `id` (setHost + Load) and returns it with a descriptor for `context` and an instance.
fn instance(id: &str, context: &CStr) -> (Plugin, Box<Effect>) {
    let plugin = binary().plugin(id);
    assert_eq!(plugin.load(), kOfxStatOK);
    let (status, described) = plugin.describe();
    assert_eq!(status, kOfxStatOK);
    let (status, in_context) = plugin.describe_in_context(&described, context);
    assert_eq!(status, kOfxStatOK, "{id}: describe in {context:?}");
    let (status, inst) = plugin.create_instance(&in_context, context);
    assert_eq!(status, kOfxStatOK, "{id}: create instance");
    (plugin, inst)
}

/// A Base instance on the CPU at the tiny model's size: 32×32, 5 frames, 2 steps.
fn tiny_base(model: &std::path::Path) -> (Plugin, Box<Effect>) {
    tiny_base_in(model, kOfxImageEffectContextGenerator)
}

/// `tiny_base` in `context` (General has the optional `Image` input).
fn tiny_base_in(model: &std::path::Path, context: &CStr) -> (Plugin, Box<Effect>) {
    let (plugin, inst) = instance(BASE, context);
    for (name, value) in [
        ("modelFolder", V::str(model.to_str().unwrap())),
        ("prompt", V::str("a red fox running through snow")),
        ("device", V::Int(1)),
        ("resolution", V::Int(2)),
        ("width", V::Int(32)),
        ("height", V::Int(32)),
        ("frameCount", V::Int(5)),
        ("steps", V::Int(2)),
    ] {
        inst.set_param(name, value);
    }
    (plugin, inst)
}

fn persistent(inst: &Effect) -> Option<host::Message> {
    inst.persistent.lock().unwrap().clone()
}

/// The message on the node after a failed render, checked to be an error that says `needle`.
fn failed_with(plugin: Plugin, inst: &Effect, time: f64, needle: &str) -> String {
    let status = plugin.render(inst, time);
    assert_eq!(status, kOfxStatFailed, "render should fail with `{needle}`");
    let m = persistent(inst).unwrap_or_else(|| panic!("no persistent message after a failed render (`{needle}`)"));
    assert_eq!(m.kind, "OfxMessageError");
    assert!(m.text.contains(needle), "message `{}` does not say `{needle}`", m.text);
    m.text
}

#[test]
fn bundle_has_the_layout_hosts_require() {
    let _one = exclusive();
    let bundle = driver::bundle();
    let plist = std::fs::read_to_string(bundle.join("Contents/Info.plist")).unwrap();
    assert!(plist.contains("<key>CFBundleExecutable</key>\n\t<string>SanaVideo.ofx</string>"), "{plist}");
    assert!(!plist.contains("@VERSION@"), "version not substituted: {plist}");
    assert!(bundle.join("Contents/Linux-x86-64/SanaVideo.ofx").is_file());
    for id in [BASE, REFINE, "SANA"] {
        let icon = std::fs::read(bundle.join(format!("Contents/Resources/{id}.png"))).unwrap();
        assert_eq!(&icon[..8], b"\x89PNG\r\n\x1a\n", "{id}.png is not a PNG");
        // IHDR: width, height, bit depth 8, colour type 6 (RGBA); ≥ 128 px (spec/OFX.md §9)
        let (w, h) = (
            u32::from_be_bytes(icon[16..20].try_into().unwrap()),
            u32::from_be_bytes(icon[20..24].try_into().unwrap()),
        );
        assert!(
            w >= 128 && h >= 128 && icon[24] == 8 && icon[25] == 6,
            "{id}.png: {w}×{h}, depth {}, type {}",
            icon[24],
            icon[25]
        );
    }
}

#[test]
fn binary_exports_both_effects_and_loads_twice() {
    let _one = exclusive();
    let bin = binary();
    assert_eq!(bin.count, 2);
    assert_eq!(bin.identifiers(), [BASE, REFINE]);
    for id in [BASE, REFINE] {
        let p = bin.plugin(id).p;
        // SAFETY: static strings of the loaded binary.
        assert_eq!(unsafe { CStr::from_ptr(p.pluginApi) }, kOfxImageEffectPluginApi);
        assert_eq!(p.apiVersion, 1);
        assert_eq!((p.pluginVersionMajor, p.pluginVersionMinor), (1, 0));
        let plugin = bin.plugin(id);
        // MLT calls Load more than once; each must succeed and leave the plugin working
        assert_eq!(plugin.load(), kOfxStatOK);
        assert_eq!(plugin.load(), kOfxStatOK);
        let (status, _) = plugin.describe();
        assert_eq!(status, kOfxStatOK);
        assert_eq!(plugin.unload(), kOfxStatOK);
        assert_eq!(plugin.unload(), kOfxStatOK);
    }
}

#[test]
fn descriptors_carry_every_property_the_spec_requires() {
    let _one = exclusive();
    for (id, label, contexts) in [
        (BASE, "SANA Base", vec!["OfxImageEffectContextGenerator", "OfxImageEffectContextGeneral"]),
        (REFINE, "SANA Refine", vec!["OfxImageEffectContextFilter", "OfxImageEffectContextGeneral"]),
    ] {
        let plugin = binary().plugin(id);
        assert_eq!(plugin.load(), kOfxStatOK);
        let (status, d) = plugin.describe();
        assert_eq!(status, kOfxStatOK);
        let p = &d.props;
        assert_eq!(p.string(kOfxPropLabel).as_deref(), Some(label));
        assert_eq!(p.string(kOfxImageEffectPluginPropGrouping).as_deref(), Some("SANA"));
        assert_eq!(p.strings(kOfxImageEffectPropSupportedContexts).unwrap(), contexts);
        let depths = p.strings(kOfxImageEffectPropSupportedPixelDepths).unwrap();
        assert!(depths.contains(&"OfxBitDepthFloat".to_string()), "{depths:?}");
        assert_eq!(p.int(kOfxImageEffectPluginPropSingleInstance), Some(0));
        assert_eq!(p.string(kOfxImageEffectPluginRenderThreadSafety).as_deref(), Some("OfxImageEffectRenderFullySafe"));
        assert_eq!(p.int(kOfxImageEffectPluginPropHostFrameThreading), Some(0));
        assert_eq!(p.int(kOfxImageEffectPropSupportsTiles), Some(0));
        assert_eq!(p.int(kOfxImageEffectPropSupportsMultiResolution), Some(1));
        assert_eq!(p.int(kOfxImageEffectPropTemporalClipAccess), Some(1));
        assert_eq!(p.int(kOfxImageEffectInstancePropSequentialRender), Some(0));
        // not until the device-image path is built: hosts must hand us CPU images
        assert_eq!(p.string(kOfxImageEffectPropCudaRenderSupported).as_deref(), Some("false"));
        assert_eq!(p.string(kOfxImageEffectPropCudaStreamSupported).as_deref(), Some("false"));
        assert_eq!(p.string(kOfxImageEffectPropCPURenderSupported).as_deref(), Some("true"));
        assert!(p.string(kOfxPropPluginDescription).is_some_and(|s| !s.is_empty()));
    }
}

/// Clips and parameters per context: names, types, pages, labels, hints, defaults, no animation.
#[test]
fn contexts_define_the_clips_and_parameters_on_pages() {
    let _one = exclusive();
    type Case<'a> = (&'a str, &'a CStr, &'a [&'a str], &'a [(&'a str, &'a str, &'a str)]);
    let cases: [Case; 4] = [
        (BASE, kOfxImageEffectContextGenerator, &["Output"], BASE_PARAMS),
        (BASE, kOfxImageEffectContextGeneral, &["Output", "Image"], BASE_PARAMS),
        (REFINE, kOfxImageEffectContextFilter, &["Source", "Output"], REFINE_PARAMS),
        (REFINE, kOfxImageEffectContextGeneral, &["Source", "Output"], REFINE_PARAMS),
    ];
    for (id, context, clips, params) in cases {
        let plugin = binary().plugin(id);
        assert_eq!(plugin.load(), kOfxStatOK);
        let (_, described) = plugin.describe();
        let (status, d) = plugin.describe_in_context(&described, context);
        assert_eq!(status, kOfxStatOK, "{id} in {context:?}");
        let names: Vec<String> = d.clips.lock().unwrap().iter().map(|c| c.name.clone()).collect();
        assert_eq!(names, clips, "{id} in {context:?}");
        for c in d.clips.lock().unwrap().iter() {
            let comps = c.props.strings(kOfxImageEffectPropSupportedComponents).unwrap_or_default();
            assert!(comps.contains(&"OfxImageComponentRGBA".to_string()), "clip {}: {comps:?}", c.name);
            assert_eq!(c.props.int(kOfxImageEffectPropSupportsTiles), Some(0), "clip {}", c.name);
            let optional = c.props.int(kOfxImageClipPropOptional).unwrap_or(0);
            assert_eq!(optional, (c.name == "Image") as i32, "clip {} optional", c.name);
        }
        let defined = d.params.params.lock().unwrap();
        for (name, ty, page) in params {
            let p = defined.iter().find(|p| p.name == *name).unwrap_or_else(|| panic!("{id}: no parameter `{name}`"));
            assert_eq!(p.ty, *ty, "{id}: `{name}`");
            assert!(p.props.string(kOfxPropLabel).is_some_and(|s| !s.is_empty()), "{id}: `{name}` label");
            assert!(p.props.string(kOfxParamPropHint).is_some_and(|s| !s.is_empty()), "{id}: `{name}` hint");
            assert_eq!(p.props.string(kOfxParamPropScriptName).as_deref(), Some(*name));
            assert!(p.props.get(kOfxParamPropDefault).is_some(), "{id}: `{name}` has no default");
            assert_eq!(p.props.int(kOfxParamPropAnimates), Some(0), "{id}: `{name}` animates");
            let page_param = defined
                .iter()
                .find(|q| q.ty == "OfxParamTypePage" && q.props.string(kOfxPropLabel).as_deref() == Some(*page))
                .unwrap_or_else(|| panic!("{id}: no page `{page}`"));
            let children = page_param.props.strings(kOfxParamPropPageChild).unwrap();
            assert!(children.contains(&name.to_string()), "{id}: `{name}` not on page `{page}`: {children:?}");
            if p.ty == "OfxParamTypeInteger" || p.ty == "OfxParamTypeDouble" {
                // Resolve needs both the hard and the display range
                for r in [kOfxParamPropMin, kOfxParamPropMax, kOfxParamPropDisplayMin, kOfxParamPropDisplayMax] {
                    assert!(p.props.get(r).is_some(), "{id}: `{name}` lacks {r:?}");
                }
            }
        }
        let prompt = defined.iter().find(|p| p.name == "prompt").unwrap();
        assert_eq!(prompt.props.string(kOfxParamPropStringMode).as_deref(), Some("OfxParamStringIsMultiLine"));
        let folder = defined.iter().find(|p| p.name == "modelFolder").unwrap();
        assert_eq!(folder.props.string(kOfxParamPropStringMode).as_deref(), Some("OfxParamStringIsDirectoryPath"));
        let params_and_pages = defined.iter().filter(|p| p.ty != "OfxParamTypePage").count();
        assert_eq!(params_and_pages, params.len(), "{id}: parameters beyond the list");
    }
}

#[test]
fn base_instance_follows_its_parameters() {
    let _one = exclusive();
    let (plugin, inst) = instance(BASE, kOfxImageEffectContextGenerator);
    let (status, prefs) = plugin.call(&inst, kOfxImageEffectActionGetClipPreferences, &[]);
    assert_eq!(status, kOfxStatOK);
    assert_eq!(prefs.string(c"OfxImageClipPropComponents_Output").as_deref(), Some("OfxImageComponentRGBA"));
    assert_eq!(prefs.string(c"OfxImageClipPropDepth_Output").as_deref(), Some("OfxBitDepthFloat"));
    assert_eq!(prefs.int(kOfxImageEffectFrameVarying), Some(1));
    assert_eq!(prefs.int(kOfxImageClipPropContinuousSamples), Some(0));

    // defaults: 480p 16:9 → 832 × 480, 81 frames from frame 1
    assert_eq!(plugin.region_of_definition(&inst, 1.0), (kOfxStatOK, Some(vec![0.0, 0.0, 832.0, 480.0])));
    let (status, td) = plugin.call(&inst, kOfxImageEffectActionGetTimeDomain, &[]);
    assert_eq!(status, kOfxStatOK);
    assert_eq!(td.doubles(kOfxImageEffectPropFrameRange), Some(vec![1.0, 81.0]));

    // a parameter change reaches every action (instance changed, then the host asks again)
    assert_eq!(plugin.instance_changed(&inst, "aspect", V::Int(1)), kOfxStatOK);
    assert_eq!(plugin.region_of_definition(&inst, 1.0).1, Some(vec![0.0, 0.0, 480.0, 832.0]));
    plugin.instance_changed(&inst, "resolution", V::Int(1));
    plugin.instance_changed(&inst, "aspect", V::Int(0));
    assert_eq!(plugin.region_of_definition(&inst, 1.0).1, Some(vec![0.0, 0.0, 1280.0, 704.0]));
    plugin.instance_changed(&inst, "resolution", V::Int(2));
    plugin.instance_changed(&inst, "width", V::Int(96));
    plugin.instance_changed(&inst, "height", V::Int(64));
    assert_eq!(plugin.region_of_definition(&inst, 1.0).1, Some(vec![0.0, 0.0, 96.0, 64.0]));
    plugin.instance_changed(&inst, "frameCount", V::Int(17));
    let (_, td) = plugin.call(&inst, kOfxImageEffectActionGetTimeDomain, &[]);
    assert_eq!(td.doubles(kOfxImageEffectPropFrameRange), Some(vec![1.0, 17.0]));

    // a custom size that is not a multiple of 32 fails the RoD with a message naming it
    plugin.instance_changed(&inst, "width", V::Int(100));
    assert_eq!(plugin.region_of_definition(&inst, 1.0).0, kOfxStatFailed);
    let m = persistent(&inst).expect("message for a bad custom size");
    assert!(m.text.contains("Width × Height is 100 × 64") && m.text.contains("multiples of 32"), "{}", m.text);
    // fixing it clears the message (instance changed), and the RoD works again
    plugin.instance_changed(&inst, "width", V::Int(128));
    assert!(persistent(&inst).is_none(), "message not cleared after the fix");
    assert_eq!(plugin.region_of_definition(&inst, 1.0).1, Some(vec![0.0, 0.0, 128.0, 64.0]));

    assert_eq!(plugin.destroy_instance(inst), kOfxStatOK);
}

#[test]
fn refine_instance_reads_the_whole_source_range() {
    let _one = exclusive();
    let (plugin, inst) = instance(REFINE, kOfxImageEffectContextFilter);
    connect_plate(&inst, "Source", 1.0, 9.0, Box::new(|_t| Some((48, 32, vec![0.25; 48 * 32 * 4]))));
    let (status, prefs) = plugin.call(&inst, kOfxImageEffectActionGetClipPreferences, &[]);
    assert_eq!(status, kOfxStatOK);
    assert_eq!(prefs.string(c"OfxImageClipPropComponents_Source").as_deref(), Some("OfxImageComponentRGBA"));
    assert_eq!(prefs.int(kOfxImageEffectFrameVarying), Some(1));
    assert_eq!(plugin.region_of_definition(&inst, 3.0), (kOfxStatOK, Some(vec![0.0, 0.0, 48.0, 32.0])));
    plugin.instance_changed(&inst, "upscale", V::Int(1));
    assert_eq!(plugin.region_of_definition(&inst, 3.0).1, Some(vec![0.0, 0.0, 96.0, 64.0]));

    let at = |t: f64| vec![(kOfxPropTime, vec![V::Double(t)])];
    let (status, needed) = plugin.call(&inst, kOfxImageEffectActionGetFramesNeeded, &at(4.0));
    assert_eq!(status, kOfxStatOK);
    assert_eq!(needed.doubles(c"OfxImageClipPropFrameRange_Source"), Some(vec![1.0, 9.0]));
    let mut thumb = at(4.0);
    thumb.push((kOfxImageEffectPropThumbnailRender, vec![V::Int(1)]));
    let (_, needed) = plugin.call(&inst, kOfxImageEffectActionGetFramesNeeded, &thumb);
    assert_eq!(
        needed.doubles(c"OfxImageClipPropFrameRange_Source"),
        Some(vec![4.0, 4.0]),
        "a thumbnail needs one frame"
    );

    let mut roi_args = at(4.0);
    roi_args.push((
        kOfxImageEffectPropRegionOfInterest,
        vec![V::Double(10.0), V::Double(10.0), V::Double(20.0), V::Double(20.0)],
    ));
    let (status, roi) = plugin.call(&inst, kOfxImageEffectActionGetRegionsOfInterest, &roi_args);
    assert_eq!(status, kOfxStatOK);
    assert_eq!(
        roi.doubles(c"OfxImageClipPropRoI_Source"),
        Some(vec![0.0, 0.0, 48.0, 32.0]),
        "whole frames, not the window"
    );

    assert_eq!(plugin.destroy_instance(inst), kOfxStatOK);
}

#[test]
fn missing_model_folder_fails_with_a_message() {
    let _one = exclusive();
    let (plugin, inst) = tiny_base(&tiny_model());
    inst.set_param("modelFolder", V::str(""));
    failed_with(plugin, &inst, 1.0, "Model Folder is empty");
    inst.set_param("modelFolder", V::str("/nonexistent/sana-video"));
    failed_with(plugin, &inst, 1.0, "Model Folder `/nonexistent/sana-video` does not exist");
    inst.set_param("modelFolder", V::str(tiny_model().to_str().unwrap()));
    inst.set_param("prompt", V::str("  "));
    failed_with(plugin, &inst, 1.0, "Prompt is empty");
    assert_eq!(plugin.destroy_instance(inst), kOfxStatOK);
}

/// A folder that exists but holds another model: the message names the file and what it holds.
#[test]
fn wrong_checkpoint_fails_with_a_message() {
    let _one = exclusive();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model_index.json"), r#"{"_class_name": "StableDiffusionPipeline"}"#).unwrap();
    std::fs::create_dir(dir.path().join("transformer")).unwrap();
    std::fs::write(dir.path().join("transformer/config.json"), r#"{"_class_name": "UNet2DConditionModel"}"#).unwrap();
    let (plugin, inst) = tiny_base(dir.path());
    let text = failed_with(plugin, &inst, 1.0, "cannot be used");
    assert!(text.contains("UNet2DConditionModel") && text.contains("transformer/config.json"), "{text}");
    // a folder with no transformer at all
    let empty = tempfile::tempdir().unwrap();
    inst.set_param("modelFolder", V::str(empty.path().to_str().unwrap()));
    let text = failed_with(plugin, &inst, 1.0, "cannot be used");
    assert!(text.contains("transformer/config.json"), "{text}");
    assert_eq!(plugin.destroy_instance(inst), kOfxStatOK);
}

/// Device = CUDA on a machine without an NVIDIA driver (CI, dev machines): a clear message that
/// says what to do, never a crash.
#[test]
fn no_gpu_fails_with_a_message() {
    let _one = exclusive();
    if std::env::var("SANA_GPU_TESTS").as_deref() == Ok("1") {
        eprintln!("skipped: a GPU is present (SANA_GPU_TESTS=1), the no-GPU path cannot be reached");
        return;
    }
    let (plugin, inst) = tiny_base(&tiny_model());
    inst.set_param("device", V::Int(0));
    let text = failed_with(plugin, &inst, 1.0, "Device is CUDA GPU 0, but it cannot be used");
    assert!(text.contains("set Device to CPU"), "{text}");
    assert_eq!(plugin.destroy_instance(inst), kOfxStatOK);
}

/// Base generates the whole clip on the first render (progress reported, latents cached) and
/// serves every frame from it: frames in any order, one twice, identical pixels for the same
/// frame, one generation. A second instance with the same settings is served from the latent
/// cache without denoising.
#[test]
fn base_renders_frames_in_any_order_from_one_generation() {
    let _one = exclusive();
    let (plugin, inst) = tiny_base(&tiny_model());
    inst.set_param("seed", V::Int(7003));
    let cache = driver::bundle().parent().unwrap().join("latents");
    let entries = || walk(&cache);
    let before = entries();
    for t in [3.0, 1.0, 5.0, 3.0, 2.0, 4.0] {
        assert_eq!(plugin.render(&inst, t), kOfxStatOK, "frame {t}: {:?}", persistent(&inst));
    }
    let written = written(&inst);
    assert_eq!(written.len(), 6);
    for (t, px, bounds) in &written {
        assert_eq!(*bounds, [0, 0, 32, 32], "frame {t}");
        assert!(px.iter().all(|v| v.is_finite()), "frame {t}: unwritten or non-finite pixels");
        assert!(px.chunks(4).all(|p| p[3] == 1.0), "frame {t}: alpha is not 1");
    }
    assert_eq!(written[0].1, written[3].1, "frame 3 twice: different pixels");
    for (i, j) in [(0, 1), (1, 2), (0, 4)] {
        assert_ne!(written[i].1, written[j].1, "frames {} and {} identical", written[i].0, written[j].0);
    }
    assert_eq!(inst.progress_started.load(SeqCst), 1, "the clip was generated more than once");
    let updates = inst.progress.lock().unwrap().clone();
    assert!(updates.len() >= 2 && updates.iter().all(|p| (0.0..=1.0).contains(p)), "progress {updates:?}");
    assert_eq!(inst.progress_ended.load(SeqCst), 1);
    // the latents, and the link from the served frames to them
    assert_eq!(entries(), before + 2, "disk cache entries");
    assert!(logged(&inst, "denoised 2 steps"), "{:?}", inst.messages.lock().unwrap());

    // another instance, same settings: the latents come from the cache (no denoising), same pixels
    let (plugin2, other) = tiny_base(&tiny_model());
    other.set_param("seed", V::Int(7003));
    assert_eq!(plugin2.render(&other, 3.0), kOfxStatOK, "{:?}", persistent(&other));
    assert!(logged(&other, "from the cache"), "{:?}", other.messages.lock().unwrap());
    assert_eq!(written_at(&other, 3.0), written[0].1, "a cache hit gave other pixels");
    assert!(!logged(&other, "denoised 2 steps"), "the second instance denoised again");
    assert_eq!(plugin.destroy_instance(inst), kOfxStatOK);
    assert_eq!(plugin2.destroy_instance(other), kOfxStatOK);
}

/// Files under the disk cache (entries sit in two-hex-digit subfolders).
fn walk(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum()
}

fn written(inst: &Effect) -> Vec<host::Written> {
    let output = inst.clip("Output").unwrap();
    // SAFETY: the clip lives in `inst`.
    unsafe { &*output }.written.lock().unwrap().clone()
}

fn written_at(inst: &Effect, time: f64) -> Vec<f32> {
    written(inst).into_iter().rev().find(|w| w.0 == time).map(|w| w.1).unwrap_or_else(|| panic!("no frame {time}"))
}

fn logged(inst: &Effect, needle: &str) -> bool {
    inst.messages.lock().unwrap().iter().any(|m| m.kind == "OfxMessageLog" && m.text.contains(needle))
}

/// SANA Base in the General context with its optional `Image` input: image to video from the
/// input's first frame (said in the log); the clip differs from text to video and follows the
/// image; a connected input the host gives no image for falls back to text to video.
#[test]
fn base_image_input_conditions_the_first_frame() {
    let _one = exclusive();
    let (plugin, inst) = tiny_base_in(&tiny_model(), kOfxImageEffectContextGeneral);
    inst.set_param("seed", V::Int(7501));
    // text to video first: the input is not connected
    assert_eq!(plugin.render(&inst, 2.0), kOfxStatOK, "{:?}", persistent(&inst));
    let text_only = written_at(&inst, 2.0);
    assert!(!logged(&inst, "image to video"));
    // a 48×32 image, served for frame 1 only (the frame Base asks for)
    let image = |t: f64| {
        let px = (0..48 * 32 * 4).map(|i| if i % 4 == 3 { 1.0 } else { ((i as f32 * 0.377).sin() * 0.45 + 0.5).abs() });
        (t == 1.0).then(|| (48, 32, px.collect()))
    };
    connect_plate(&inst, "Image", 1.0, 1.0, Box::new(image));
    assert_eq!(plugin.render(&inst, 2.0), kOfxStatOK, "{:?}", persistent(&inst));
    assert!(
        logged(&inst, "image to video from the Image input's frame 1 (48×32"),
        "{:?}",
        inst.messages.lock().unwrap()
    );
    let conditioned = written_at(&inst, 2.0);
    assert!(conditioned.iter().all(|v| v.is_finite()));
    assert_ne!(conditioned, text_only, "the image changed nothing");
    // another image: another clip
    connect_plate(&inst, "Image", 1.0, 1.0, Box::new(|t| if t == 1.0 { plate(9.0) } else { None }));
    assert_eq!(plugin.render(&inst, 2.0), kOfxStatOK, "{:?}", persistent(&inst));
    assert_ne!(written_at(&inst, 2.0), conditioned, "a new image did not re-generate");
    // connected, but the host hands out no image (Resolve's generators): text to video again
    connect_plate(&inst, "Image", 1.0, 1.0, Box::new(|_| None));
    assert_eq!(plugin.render(&inst, 2.0), kOfxStatOK, "{:?}", persistent(&inst));
    assert_eq!(written_at(&inst, 2.0), text_only);
    assert_eq!(plugin.destroy_instance(inst), kOfxStatOK);
}

/// Frames outside the generated range are transparent black, without generating anything.
#[test]
fn frames_outside_the_clip_are_transparent_black() {
    let _one = exclusive();
    let (plugin, inst) = tiny_base(&tiny_model());
    assert_eq!(plugin.render(&inst, 6.0), kOfxStatOK, "frame 6 of a 5-frame clip");
    assert_eq!(plugin.render(&inst, 0.0), kOfxStatOK, "frame 0, before the clip");
    let output = inst.clip("Output").unwrap();
    // SAFETY: the clip lives in `inst`.
    let written = unsafe { &*output }.written.lock().unwrap().clone();
    assert_eq!(written.len(), 2);
    for (time, pixels, bounds) in written {
        assert_eq!(bounds, [0, 0, 32, 32]);
        assert!(pixels.iter().all(|v| *v == 0.0), "frame {time}: not all transparent black");
    }
    assert!(persistent(&inst).is_none());
    assert_eq!(plugin.destroy_instance(inst), kOfxStatOK);
}

/// The host aborts (its abort flag, or Cancel on the progress bar): the render fails without a
/// message on the node and nothing is cached; the next render after the abort is lifted works.
#[test]
fn abort_mid_render_fails_quietly_and_caches_nothing() {
    let _one = exclusive();
    let (plugin, inst) = tiny_base(&tiny_model());
    inst.set_param("seed", V::Int(7002));
    inst.set_param("steps", V::Int(6));
    let cache = driver::bundle().parent().unwrap().join("latents");
    let entries = || walk(&cache);
    let before = entries();

    inst.abort.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(plugin.render(&inst, 1.0), kOfxStatFailed);
    assert!(persistent(&inst).is_none(), "an abort is not an error to show: {:?}", persistent(&inst));
    assert_eq!(entries(), before, "an aborted run wrote a cache entry");
    inst.abort.store(false, std::sync::atomic::Ordering::SeqCst);

    // Cancel on the progress bar after 3 updates: stops between denoising steps
    inst.progress.lock().unwrap().clear();
    inst.cancel_after_updates.store(3, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(plugin.render(&inst, 1.0), kOfxStatFailed);
    assert!(persistent(&inst).is_none());
    let updates = inst.progress.lock().unwrap().len();
    assert!(updates <= 4, "denoising went on after Cancel ({updates} updates for 6 steps)");
    assert_eq!(entries(), before, "a cancelled run wrote a cache entry");
    inst.cancel_after_updates.store(0, std::sync::atomic::Ordering::SeqCst);

    assert_eq!(plugin.render(&inst, 1.0), kOfxStatOK, "{:?}", persistent(&inst));
    assert_eq!(entries(), before + 2, "the finished run stores its latents and their frames' link");
    assert_eq!(plugin.destroy_instance(inst), kOfxStatOK);
}

/// A Refine instance on the CPU, 4 steps at strength 0.5 (2 transformer passes).
fn tiny_refine(model: &std::path::Path) -> (Plugin, Box<Effect>) {
    let (plugin, inst) = instance(REFINE, kOfxImageEffectContextFilter);
    for (name, value) in [
        ("modelFolder", V::str(model.to_str().unwrap())),
        ("prompt", V::str("a red fox running through snow")),
        ("device", V::Int(1)),
        ("steps", V::Int(4)),
        ("strength", V::Double(0.5)),
    ] {
        inst.set_param(name, value);
    }
    (plugin, inst)
}

/// A plate the harness serves: 32×32 RGBA, different per frame, values in (0, 1).
fn plate(t: f64) -> Option<(usize, usize, Vec<f32>)> {
    let px = (0..32 * 32 * 4).map(|i| {
        if i % 4 == 3 {
            1.0
        } else {
            ((i as f64 * 0.618 + t * 0.31).fract() * 0.9 + 0.05) as f32
        }
    });
    Some((32, 32, px.collect()))
}

/// Refine on the artist's own plate: the whole Source range read, encoded by the VAE (said in
/// the log), refined and decoded; every frame served from one run; the encode is remembered, so
/// a new strength re-refines without encoding again.
#[test]
fn refine_on_a_plate_encodes_it_once() {
    let _one = exclusive();
    let (plugin, inst) = tiny_refine(&tiny_model());
    inst.set_param("seed", V::Int(7101));
    connect_plate(&inst, "Source", 1.0, 5.0, Box::new(plate));
    for t in [2.0, 5.0, 1.0, 2.0] {
        assert_eq!(plugin.render(&inst, t), kOfxStatOK, "frame {t}: {:?}", persistent(&inst));
    }
    let out = written(&inst);
    assert!(out.iter().all(|(_, px, b)| *b == [0, 0, 32, 32] && px.iter().all(|v| v.is_finite())));
    assert_eq!(out[0].1, out[3].1, "frame 2 twice: different pixels");
    assert_ne!(out[0].1, out[1].1);
    assert_eq!(inst.progress_started.load(SeqCst), 1, "refined more than once");
    assert!(logged(&inst, "encoded the Source clip with the VAE"), "{:?}", inst.messages.lock().unwrap());

    inst.messages.lock().unwrap().clear();
    plugin.instance_changed(&inst, "strength", V::Double(0.75));
    assert_eq!(plugin.render(&inst, 2.0), kOfxStatOK, "{:?}", persistent(&inst));
    assert!(logged(&inst, "no VAE encode"), "the plate was encoded again: {:?}", inst.messages.lock().unwrap());
    assert_ne!(written_at(&inst, 2.0), out[0].1, "a new strength gave the same pixels");
    assert_eq!(plugin.destroy_instance(inst), kOfxStatOK);
}

/// Base → Refine: Refine's Source is what Base wrote; Refine takes Base's latents from the
/// cache (no VAE encode, said in the log). With Use Cached Latents off, the same frames are
/// encoded instead. An upstream change (a new Base seed) re-refines.
#[test]
fn base_to_refine_reuses_bases_latents() {
    let _one = exclusive();
    let (base_plugin, base) = tiny_base(&tiny_model());
    base.set_param("seed", V::Int(7201));
    for t in 1..=5 {
        assert_eq!(base_plugin.render(&base, t as f64), kOfxStatOK, "{:?}", persistent(&base));
    }
    let base_frames: Vec<Vec<f32>> = (1..=5).map(|t| written_at(&base, t as f64)).collect();

    let (plugin, inst) = tiny_refine(&tiny_model());
    inst.set_param("seed", V::Int(7202));
    let served = base_frames.clone();
    connect_plate(&inst, "Source", 1.0, 5.0, Box::new(move |t| Some((32, 32, served[t as usize - 1].clone()))));
    assert_eq!(plugin.render(&inst, 3.0), kOfxStatOK, "{:?}", persistent(&inst));
    assert!(logged(&inst, "no VAE encode"), "Refine encoded Base's frames: {:?}", inst.messages.lock().unwrap());
    assert!(!logged(&inst, "encoded the Source clip"));
    let chained = written_at(&inst, 3.0);
    assert!(chained.iter().all(|v| v.is_finite()));
    assert_ne!(chained, base_frames[2], "Refine passed its input through");

    inst.messages.lock().unwrap().clear();
    plugin.instance_changed(&inst, "useCachedLatents", V::Int(0));
    assert_eq!(plugin.render(&inst, 3.0), kOfxStatOK, "{:?}", persistent(&inst));
    assert!(logged(&inst, "encoded the Source clip with the VAE"), "{:?}", inst.messages.lock().unwrap());

    // upstream change: Base renders another clip; Refine's Source now serves it
    inst.messages.lock().unwrap().clear();
    base_plugin.instance_changed(&base, "seed", V::Int(7203));
    let changed: Vec<Vec<f32>> = (1..=5)
        .map(|t| {
            assert_eq!(base_plugin.render(&base, t as f64), kOfxStatOK);
            written_at(&base, t as f64)
        })
        .collect();
    connect_plate(&inst, "Source", 1.0, 5.0, Box::new(move |t| Some((32, 32, changed[t as usize - 1].clone()))));
    plugin.instance_changed(&inst, "useCachedLatents", V::Int(1));
    assert_eq!(plugin.render(&inst, 3.0), kOfxStatOK, "{:?}", persistent(&inst));
    assert!(logged(&inst, "no VAE encode"), "{:?}", inst.messages.lock().unwrap());
    assert_ne!(written_at(&inst, 3.0), chained, "an upstream change did not re-refine");
    assert_eq!(plugin.destroy_instance(inst), kOfxStatOK);
    assert_eq!(base_plugin.destroy_instance(base), kOfxStatOK);
}

/// What Refine cannot do yet, and bad input, ends as a message naming the parameter or frame.
#[test]
fn refine_refuses_what_it_cannot_do_with_a_message() {
    let _one = exclusive();
    let (plugin, inst) = tiny_refine(&tiny_model());
    connect_plate(&inst, "Source", 1.0, 5.0, Box::new(plate));
    inst.set_param("refinerBackend", V::Int(0));
    failed_with(plugin, &inst, 1.0, "the LTX-2 distilled refiner is not built yet");
    inst.set_param("refinerBackend", V::Int(1));
    // a NaN in frame 4 of the plate
    connect_plate(
        &inst,
        "Source",
        1.0,
        5.0,
        Box::new(|t| {
            let (w, h, mut px) = plate(t)?;
            if t == 4.0 {
                px[(3 * 32 + 7) * 4 + 1] = f32::NAN;
            }
            Some((w, h, px))
        }),
    );
    let text = failed_with(plugin, &inst, 1.0, "frame 4 has a non-finite value");
    assert!(text.contains("(7, 28)"), "{text}");
    assert_eq!(plugin.destroy_instance(inst), kOfxStatOK);
}

/// Upscale ×2 on the tiny LTX-2 (720p-style) pipeline: the RoD doubles, every frame is served at
/// 2× the Source's size from one run, and the log says the latents were upsampled. On the Wan
/// model, ×2 ends as a message: no upsampler in its folder (Upsampler Folder named), and, given
/// one, the channel mismatch naming the 720p model.
#[test]
fn refine_x2_doubles_the_size_on_the_ltx2_model() {
    let _one = exclusive();
    let ltx2 = common::fixtures().join("pipeline/tiny-sana-video-ltx2");
    let (plugin, inst) = tiny_refine(&ltx2);
    inst.set_param("seed", V::Int(7401));
    inst.set_param("upscale", V::Int(1));
    // 9 frames (1 + 8k for the LTX-2 VAE) of 96×64: latents 2×3, upsampled to 4×6
    let wide = |t: f64| {
        let px = (0..96 * 64 * 4).map(|i| {
            if i % 4 == 3 {
                1.0
            } else {
                ((i as f64 * 0.618 + t * 0.31).fract() * 0.9 + 0.05) as f32
            }
        });
        Some((96, 64, px.collect()))
    };
    connect_plate(&inst, "Source", 1.0, 9.0, Box::new(wide));
    assert_eq!(plugin.region_of_definition(&inst, 1.0), (kOfxStatOK, Some(vec![0.0, 0.0, 192.0, 128.0])));
    for t in [1.0, 5.0, 9.0] {
        assert_eq!(plugin.render(&inst, t), kOfxStatOK, "frame {t}: {:?}", persistent(&inst));
    }
    let out = written(&inst);
    assert_eq!(out.len(), 3);
    for (t, px, bounds) in &out {
        assert_eq!(*bounds, [0, 0, 192, 128], "frame {t}");
        assert_eq!(px.len(), 192 * 128 * 4, "frame {t}");
        assert!(px.iter().all(|v| v.is_finite()), "frame {t}");
    }
    assert_ne!(out[0].1, out[1].1);
    assert_eq!(inst.progress_started.load(SeqCst), 1, "refined more than once");
    assert!(logged(&inst, "upsampled ×2"), "{:?}", inst.messages.lock().unwrap());
    // ×1 on the same Source keeps its size
    plugin.instance_changed(&inst, "upscale", V::Int(0));
    assert_eq!(plugin.render(&inst, 1.0), kOfxStatOK, "{:?}", persistent(&inst));
    assert_eq!(written(&inst).last().unwrap().2, [0, 0, 96, 64]);
    assert_eq!(plugin.destroy_instance(inst), kOfxStatOK);

    let (plugin, inst) = tiny_refine(&tiny_model());
    connect_plate(&inst, "Source", 1.0, 5.0, Box::new(plate));
    inst.set_param("upscale", V::Int(1));
    let text = failed_with(plugin, &inst, 1.0, "Upsampler Folder");
    assert!(text.contains("latent_upsampler"), "{text}");
    let upsampler = common::fixtures().join("upsampler/tiny-ltx2-upsampler");
    inst.set_param("upsamplerFolder", V::str(upsampler.to_str().unwrap()));
    let text = failed_with(plugin, &inst, 1.0, "720p model (LTX-2 VAE)");
    assert!(text.contains("takes 8 channels") && text.contains("have 16"), "{text}");
    assert_eq!(plugin.destroy_instance(inst), kOfxStatOK);
}

/// A plate off the model's grid — 6 frames (the Wan VAE takes 1 + 4k) of 40×24 (sizes in
/// multiples of 32) — is padded for the model and the result cut back: 6 frames of 40×24 out,
/// said in the log.
#[test]
fn refine_fits_a_plate_off_the_grid_and_cuts_the_result_back() {
    let _one = exclusive();
    let (plugin, inst) = tiny_refine(&tiny_model());
    inst.set_param("seed", V::Int(7401));
    let off_grid = |t: f64| {
        let (_, _, px) = plate(t)?;
        Some((40, 24, px[..40 * 24 * 4].to_vec()))
    };
    connect_plate(&inst, "Source", 1.0, 6.0, Box::new(off_grid));
    assert_eq!(plugin.region_of_definition(&inst, 1.0).1, Some(vec![0.0, 0.0, 40.0, 24.0]));
    for t in [6.0, 1.0] {
        assert_eq!(plugin.render(&inst, t), kOfxStatOK, "frame {t}: {:?}", persistent(&inst));
    }
    let out = written(&inst);
    assert!(out.iter().all(|(_, px, b)| *b == [0, 0, 40, 24] && px.iter().all(|v| v.is_finite())));
    assert_ne!(out[0].1, out[1].1);
    assert!(logged(&inst, "cut back to 6 frames of 40×24"), "{:?}", inst.messages.lock().unwrap());
    assert_eq!(inst.progress_started.load(SeqCst), 1);
    assert_eq!(plugin.destroy_instance(inst), kOfxStatOK);
}

/// A host whose temporal access hands out the current frame for every time (MLT): Refine still
/// renders, and warns on the node that the clip was treated as a still.
#[test]
fn refine_warns_when_every_source_frame_is_the_same() {
    let _one = exclusive();
    let (plugin, inst) = tiny_refine(&tiny_model());
    inst.set_param("seed", V::Int(7301));
    connect_plate(&inst, "Source", 1.0, 5.0, Box::new(|_| plate(1.0)));
    assert_eq!(plugin.render(&inst, 2.0), kOfxStatOK);
    let m = persistent(&inst).expect("a warning on the node");
    assert_eq!(m.kind, "OfxMessageWarning");
    assert!(m.text.contains("same image for all 5 Source frames"), "{}", m.text);
    assert_eq!(plugin.destroy_instance(inst), kOfxStatOK);
}

/// A host that hands out CUDA images although we declared no GPU render: a message, a failed
/// status, and the device pointers never touched.
#[test]
fn cuda_images_are_refused_with_a_message() {
    let _one = exclusive();
    let (plugin, inst) = tiny_base(&tiny_model());
    let (status, _) = plugin.call(
        &inst,
        kOfxImageEffectActionRender,
        &[
            (kOfxPropTime, vec![V::Double(1.0)]),
            (kOfxImageEffectPropRenderWindow, vec![V::Int(0), V::Int(0), V::Int(32), V::Int(32)]),
            (kOfxImageEffectPropRenderScale, vec![V::Double(1.0), V::Double(1.0)]),
            (kOfxImageEffectPropCudaEnabled, vec![V::Int(1)]),
        ],
    );
    assert_eq!(status, kOfxStatFailed);
    let m = persistent(&inst).expect("a message");
    assert!(m.text.contains("CUDA images") && m.text.contains("GPU processing"), "{}", m.text);
    assert!(written(&inst).is_empty(), "an output image was fetched");
    assert_eq!(plugin.destroy_instance(inst), kOfxStatOK);
}

/// Host mistakes end as a status, never a crash: an action on an instance the host never
/// created, a null action name, an action we do not know.
#[test]
fn host_mistakes_end_as_a_status() {
    let _one = exclusive();
    let plugin = binary().plugin(BASE);
    assert_eq!(plugin.load(), kOfxStatOK);
    let (_, described) = plugin.describe();
    let (_, in_context) = plugin.describe_in_context(&described, kOfxImageEffectContextGenerator);
    // an "instance" that skipped CreateInstance: no instance data
    let (_, inst) = plugin.create_instance(&in_context, kOfxImageEffectContextGenerator);
    inst.props.set(kOfxPropInstanceData, vec![V::Ptr(0)]);
    let text = failed_with(plugin, &inst, 1.0, "skipped CreateInstance");
    assert!(!text.is_empty());
    // SAFETY: mainEntry with a null action: the plugin must refuse it, not read it.
    let status = unsafe {
        (plugin.p.mainEntry.unwrap())(
            std::ptr::null(),
            inst.handle() as *const _,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(status, kOfxStatErrBadHandle);
    assert_eq!(plugin.action(c"OfxActionNoSuchThing", inst.handle() as *const _, None, None), kOfxStatReplyDefault);
}
