//! Refine (the SANA-Video transformer in refine mode) against the reference composed of diffusers
//! 0.42.1 components in tools/make_refine_fixtures.py: Base's latents re-noised to σ₀, flow Euler
//! over the schedule's tail with guidance, then decoded. Refine ×2 against
//! tools/make_ltx2_pipeline_fixtures.py: the same with the LTX-2 latent upsampler in front
//! (denormalise → upsample → renormalise, MODEL.md §8.2), on a tiny LTX-2 VAE pipeline.

mod common;

use sana::backend::cpu::Cpu;
use sana::engine::dit::{HostTensor, SanaVideoTransformer};
use sana::engine::pipeline::base::Captions;
use sana::engine::pipeline::job::{BaseModels, NoiseSource};
use sana::engine::pipeline::refine::{refine_latents, refine_schedule, RefineSampling};
use sana::engine::pipeline::refine_job::{run_refine, CachedSource, RefineRequest, RefineSource, Upscale};
use sana::engine::pipeline::upscale::upsample_latents;
use sana::engine::pipeline::LatentVideo;
use sana::engine::progress::Silent;
use sana::engine::text::{encode_prompts, Gemma2Encoder, Instruction, PromptOptions, PromptTokenizer};
use sana::engine::upsampler::Ltx2LatentUpsampler;
use sana::io::ModelFolder;
use sana::testing::{compare, tolerance};

#[test]
fn refine_matches_the_diffusers_components() {
    let path = common::fixtures().join("refine/refine.safetensors");
    common::check_fixture_provenance(&path);
    let meta = common::metadata(&path);
    let files = common::open(&path);
    let read = |k: &str| HostTensor::read(&files, k).unwrap().unwrap();
    let latent = |t: HostTensor| LatentVideo { shape: t.shape.clone().try_into().unwrap(), data: t.data };
    let folder = ModelFolder::new(&common::fixtures().join("pipeline/tiny-sana-video")).unwrap();
    let encoder = Gemma2Encoder::from_folder(&Cpu, &folder).unwrap();
    let tokenizer = PromptTokenizer::from_folder(&folder).unwrap();
    let opts = PromptOptions { motion_score: None, instruction: Instruction::Diffusers };
    let (pos, neg) =
        encode_prompts(&Cpu, &encoder, &tokenizer, &[meta["prompt"].clone()], &meta["negative_prompt"], &opts).unwrap();
    let transformer = SanaVideoTransformer::from_folder(&Cpu, &folder).unwrap();
    let sampling = RefineSampling {
        steps: meta["steps"].parse().unwrap(),
        strength: meta["strength"].parse().unwrap(),
        guidance: meta["guidance"].parse().unwrap(),
        flow_shift: meta["flow_shift"].parse().unwrap(),
    };
    // the schedule's tail is diffusers' (timesteps recorded by the script)
    let expected_t: Vec<f32> = meta["timesteps"].split(',').map(|t| t.parse().unwrap()).collect();
    let ours_t = refine_schedule(&sampling).unwrap().timesteps;
    assert_eq!(ours_t.len(), expected_t.len());
    for (a, b) in ours_t.iter().zip(&expected_t) {
        assert!((a - b).abs() < 1e-3, "timesteps {ours_t:?} vs {expected_t:?}");
    }
    let captions = Captions { positive: &pos, negative: &neg };
    let out = refine_latents(
        &Cpu,
        &transformer,
        captions,
        &latent(read("latents_in")),
        &latent(read("noise")),
        &sampling,
        &Silent,
    )
    .unwrap();
    let cmp = compare(&out.data, &read("latents").data);
    eprintln!("refine latents: {cmp}");
    assert!(cmp.rel_l2 <= tolerance::REFERENCE_LOW_PRECISION, "{cmp}");

    let vae = sana::engine::vae::VideoVae::from_folder(&Cpu, &folder).unwrap();
    let video = sana::engine::pipeline::frames::decode_to_size(&Cpu, &vae, &out, (32, 32), &Silent).unwrap();
    let [_, c, f, h, w] = video.shape;
    // ours (1, 3, F, H, W) in [−1, 1] → diffusers' (1, F, 3, H, W) in [0, 1]
    let ours: Vec<f32> = (0..f)
        .flat_map(|fi| (0..c).flat_map(move |ci| (0..h * w).map(move |p| (fi, ci, p))))
        .map(|(fi, ci, p)| (video.data[(ci * f + fi) * h * w + p] * 0.5 + 0.5).clamp(0.0, 1.0))
        .collect();
    let cmp = compare(&ours, &read("video").data);
    eprintln!("refine frames: {cmp}");
    assert!(cmp.rel_l2 <= tolerance::REFERENCE_LOW_PRECISION, "{cmp}");
}

#[test]
fn strength_outside_the_unit_interval_is_refused() {
    for strength in [0.0, -0.5, 1.5, f64::NAN] {
        let s = RefineSampling { strength, ..RefineSampling::default() };
        let err = refine_schedule(&s).unwrap_err().to_string();
        assert!(err.contains("strength"), "{err}");
    }
    // strength 1 runs the whole schedule
    let full = refine_schedule(&RefineSampling { strength: 1.0, ..RefineSampling::default() }).unwrap();
    assert_eq!(full.timesteps.len(), 20);
}

fn sana(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sana")).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// `sana refine --latents` reproduces the reference (Base's latents in, the reference's noise),
/// and `sana refine --input` takes a plate through the VAE encoder and back.
#[test]
fn cli_refine_latents_and_plate() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = common::fixtures().join("refine/refine.safetensors");
    let meta = common::metadata(&fixture);
    let model = common::fixtures().join("pipeline/tiny-sana-video");
    let base_latents = common::fixtures().join("pipeline/t2v.safetensors");
    let out = dir.path().join("refined.safetensors");
    let s = |v: &str| std::ffi::OsString::from(v);
    let common_args = |extra: Vec<std::ffi::OsString>| -> Vec<std::ffi::OsString> {
        let mut a = vec![s("refine"), s("--model"), model.clone().into_os_string(), s("--prompt"), s(&meta["prompt"])];
        a.extend([s("--negative"), s(&meta["negative_prompt"]), s("--steps"), s(&meta["steps"])]);
        a.extend([s("--strength"), s(&meta["strength"]), s("--guidance"), s(&meta["guidance"])]);
        a.extend([s("--flow-shift"), s(&meta["flow_shift"])]);
        a.extend(extra);
        a
    };
    let args = common_args(vec![
        s("--latents"),
        base_latents.into_os_string(),
        s("--noise"),
        fixture.clone().into_os_string(),
        s("--out"),
        out.clone().into_os_string(),
    ]);
    sana(&args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>());
    let ours = HostTensor::read(&common::open(&out), "latents").unwrap().unwrap();
    let expected = HostTensor::read(&common::open(&fixture), "latents").unwrap().unwrap();
    let cmp = compare(&ours.data, &expected.data);
    assert!(cmp.rel_l2 <= tolerance::REFERENCE_LOW_PRECISION, "{cmp}");

    // a plate: five 32×32 PNG frames in, five refined frames out at the same size
    let plate = dir.path().join("plate.%04d.png");
    let seq = sana::io::frames::SequencePattern::parse(plate.to_str().unwrap()).unwrap();
    for i in 0..5 {
        let rgb = (0..32 * 32 * 3).map(|p| ((p * 7 + i * 13) % 256) as f32 / 255.0).collect();
        let frame = sana::io::frames::Frame { width: 32, height: 32, rgb };
        sana::io::frames::write_frame(&seq.path(1 + i), &frame, sana::io::frames::PngDepth::Eight).unwrap();
    }
    let refined = dir.path().join("refined.%04d.png");
    let args = common_args(vec![
        s("--input"),
        plate.into_os_string(),
        s("--frames"),
        s("5"),
        s("--out"),
        refined.clone().into_os_string(),
    ]);
    let output = sana(&args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>());
    let written = String::from_utf8(output.stdout).unwrap();
    assert_eq!(written.lines().count(), 5, "{written}");
    let seq = sana::io::frames::SequencePattern::parse(refined.to_str().unwrap()).unwrap();
    let frames = sana::io::frames::read_sequence(&seq, 1, 5).unwrap();
    assert!(frames.iter().all(|f| f.width == 32 && f.height == 32 && f.rgb.iter().all(|v| v.is_finite())));
}

/// The fixture's sampling settings (recorded by the script).
fn sampling_of(meta: &std::collections::HashMap<String, String>) -> RefineSampling {
    RefineSampling {
        steps: meta["steps"].parse().unwrap(),
        strength: meta["strength"].parse().unwrap(),
        guidance: meta["guidance"].parse().unwrap(),
        flow_shift: meta["flow_shift"].parse().unwrap(),
    }
}

/// ours (1, 3, F, H, W) in [−1, 1] → diffusers' (1, F, 3, H, W) in [0, 1].
fn as_diffusers_frames(video: &sana::engine::pipeline::frames::DecodedVideo) -> Vec<f32> {
    let [_, c, f, h, w] = video.shape;
    (0..f)
        .flat_map(|fi| (0..c).flat_map(move |ci| (0..h * w).map(move |p| (fi, ci, p))))
        .map(|(fi, ci, p)| (video.data[(ci * f + fi) * h * w + p] * 0.5 + 0.5).clamp(0.0, 1.0))
        .collect()
}

/// Refine ×2 as the engine job runs it (source latents given, the reference's noise of the
/// upsampled shape from the fixture file, upsampler from `<model>/latent_upsampler`) against the
/// diffusers-components reference: the upsampled latents, the refined latents and the frames.
#[test]
fn refine_x2_matches_the_diffusers_components() {
    let path = common::fixtures().join("refine/refine_x2.safetensors");
    common::check_fixture_provenance(&path);
    let meta = common::metadata(&path);
    let files = common::open(&path);
    let read = |k: &str| HostTensor::read(&files, k).unwrap().unwrap();
    let latent = |t: HostTensor| LatentVideo { shape: t.shape.clone().try_into().unwrap(), data: t.data };
    let model = common::fixtures().join("pipeline/tiny-sana-video-ltx2");
    let source = latent(read("latents_in"));

    // the hand-off alone
    let mut models = BaseModels::load(&Cpu, &model).unwrap();
    let upsampler = Ltx2LatentUpsampler::from_dir(&Cpu, &model.join("latent_upsampler")).unwrap();
    let vae = sana::engine::vae::VideoVae::from_folder(&Cpu, &models.folder).unwrap();
    let up = upsample_latents(&Cpu, &upsampler, vae.latent_statistics(), &source, &Silent).unwrap();
    let expected = read("upsampled");
    assert_eq!(up.shape.to_vec(), expected.shape);
    let cmp = compare(&up.data, &expected.data);
    eprintln!("refine x2 upsampled latents: {cmp}");
    assert!(cmp.rel_l2 <= tolerance::UPSAMPLER_F32, "{cmp}");

    let request = RefineRequest {
        source: RefineSource::Latents(source),
        prompt: meta["prompt"].clone(),
        negative: Some(meta["negative_prompt"].clone()),
        sampling: sampling_of(&meta),
        noise: NoiseSource::File(path.clone()),
        cached_source: CachedSource::Use,
        upscale: Upscale::latent_x2_in(&model),
    };
    let outcome = run_refine(&Cpu, &mut models, &request, None, &Silent).unwrap();
    assert!(!outcome.cache_hit);
    let expected = read("latents");
    assert_eq!(outcome.latents.shape, expected.shape);
    let cmp = compare(&outcome.latents.data, &expected.data);
    eprintln!("refine x2 latents: {cmp}");
    assert!(cmp.rel_l2 <= tolerance::REFERENCE_LOW_PRECISION, "{cmp}");

    let shape: [usize; 5] = outcome.latents.shape.clone().try_into().unwrap();
    let refined = LatentVideo { shape, data: outcome.latents.data.to_vec() };
    let (_, sf) = vae.factors();
    let size = (shape[3] * sf, shape[4] * sf);
    let video = sana::engine::pipeline::frames::decode_to_size(&Cpu, &vae, &refined, size, &Silent).unwrap();
    let expected = read("video");
    assert_eq!(expected.shape, vec![1, video.shape[2], 3, size.0, size.1]);
    let cmp = compare(&as_diffusers_frames(&video), &expected.data);
    eprintln!("refine x2 frames: {cmp}");
    assert!(cmp.rel_l2 <= tolerance::REFERENCE_LOW_PRECISION, "{cmp}");
}

/// ×2 refuses, by name, a missing upsampler folder and latents of the wrong channel count (the
/// Wan-VAE model's), before anything runs.
#[test]
fn refine_x2_refuses_a_missing_upsampler_and_wan_latents() {
    let wan = common::fixtures().join("pipeline/tiny-sana-video");
    let mut models = BaseModels::load(&Cpu, &wan).unwrap();
    let base = HostTensor::read(&common::open(&common::fixtures().join("pipeline/t2v.safetensors")), "latents")
        .unwrap()
        .unwrap();
    let request = |upscale| RefineRequest {
        source: RefineSource::Latents(LatentVideo {
            shape: base.shape.clone().try_into().unwrap(),
            data: base.data.clone(),
        }),
        prompt: "a cat".into(),
        negative: None,
        sampling: RefineSampling { steps: 4, strength: 0.5, ..RefineSampling::default() },
        noise: NoiseSource::Seed(3),
        cached_source: CachedSource::Use,
        upscale,
    };
    let missing = wan.join("latent_upsampler");
    let err =
        run_refine(&Cpu, &mut models, &request(Upscale::latent_x2_in(&wan)), None, &Silent).err().unwrap().to_string();
    assert!(err.contains(&missing.display().to_string()) && err.contains("LTX-2 `latent_upsampler` folder"), "{err}");
    let upsampler = common::fixtures().join("upsampler/tiny-ltx2-upsampler");
    let err = run_refine(&Cpu, &mut models, &request(Upscale::LatentX2 { upsampler }), None, &Silent)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("takes 8 channels") && err.contains("have 16"), "{err}");
    assert!(err.contains("720p model (LTX-2 VAE)"), "{err}");
}

/// `sana refine --upscale 2`: the latents reproduce the reference (default upsampler folder),
/// frames come out at twice the size (explicit --upsampler), and the Wan model is refused.
#[test]
fn cli_refine_upscale_2() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = common::fixtures().join("refine/refine_x2.safetensors");
    let meta = common::metadata(&fixture);
    let model = common::fixtures().join("pipeline/tiny-sana-video-ltx2");
    let source = HostTensor::read(&common::open(&fixture), "latents_in").unwrap().unwrap();
    let source_file = dir.path().join("base.safetensors");
    sana::io::safetensors::write_f32(&source_file, &[("latents", &source.shape, &source.data)]).unwrap();
    let s = |v: &str| std::ffi::OsString::from(v);
    let args = |model: &std::path::Path, extra: Vec<std::ffi::OsString>| -> Vec<std::ffi::OsString> {
        let mut a = vec![s("refine"), s("--model"), model.as_os_str().into(), s("--prompt"), s(&meta["prompt"])];
        a.extend([s("--negative"), s(&meta["negative_prompt"]), s("--steps"), s(&meta["steps"])]);
        a.extend([s("--strength"), s(&meta["strength"]), s("--guidance"), s(&meta["guidance"])]);
        a.extend([s("--flow-shift"), s(&meta["flow_shift"]), s("--no-cache"), s("--upscale"), s("2")]);
        a.extend([s("--latents"), source_file.clone().into_os_string()]);
        a.extend(extra);
        a
    };
    let run =
        |a: Vec<std::ffi::OsString>| std::process::Command::new(env!("CARGO_BIN_EXE_sana")).args(a).output().unwrap();

    let out = dir.path().join("refined.safetensors");
    let output =
        run(args(&model, vec![s("--noise"), fixture.clone().into_os_string(), s("--out"), out.clone().into()]));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let ours = HostTensor::read(&common::open(&out), "latents").unwrap().unwrap();
    let expected = HostTensor::read(&common::open(&fixture), "latents").unwrap().unwrap();
    assert_eq!(ours.shape, expected.shape);
    let cmp = compare(&ours.data, &expected.data);
    eprintln!("sana refine --upscale 2 latents: {cmp}");
    assert!(cmp.rel_l2 <= tolerance::REFERENCE_LOW_PRECISION, "{cmp}");

    // frames: 9 of 64×128 from 32×64-pixel latents (1×2 latent pixels, 32 pixels each)
    let frames = dir.path().join("refined.%04d.png");
    let upsampler = model.join("latent_upsampler");
    let extra = vec![s("--upsampler"), upsampler.into_os_string(), s("--out"), frames.clone().into()];
    let output = run(args(&model, extra));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8(output.stdout).unwrap().lines().count(), 9);
    let seq = sana::io::frames::SequencePattern::parse(frames.to_str().unwrap()).unwrap();
    let written = sana::io::frames::read_sequence(&seq, 1, 9).unwrap();
    let [_, _, _, h, w] = source.shape[..] else { panic!("latents of rank 5") };
    assert!(written.iter().all(|f| (f.height, f.width) == (2 * 32 * h, 2 * 32 * w)), "not 2× the source size");

    // the Wan-VAE model: no latent_upsampler/ of its own; given one, its latents have 16 channels
    let wan = common::fixtures().join("pipeline/tiny-sana-video");
    let base = common::fixtures().join("pipeline/t2v.safetensors");
    let wan_args = |extra: Vec<std::ffi::OsString>| {
        let mut a = args(&wan, extra);
        let at = a.iter().position(|x| x == "--latents").unwrap();
        a[at + 1] = base.clone().into_os_string();
        a
    };
    let output = run(wan_args(vec![s("--out"), dir.path().join("wan.safetensors").into()]));
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("LTX-2 `latent_upsampler` folder"), "{err}");
    let tiny_upsampler = common::fixtures().join("upsampler/tiny-ltx2-upsampler");
    let extra =
        vec![s("--upsampler"), tiny_upsampler.into_os_string(), s("--out"), dir.path().join("wan.safetensors").into()];
    let output = run(wan_args(extra));
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("720p model (LTX-2 VAE)"), "{err}");
}

/// The refine cache keys ×2 by its mode and the upsampler's identity (config and weight headers,
/// not its path): a repeat is a hit, ×1 of the same source is not, and a copy of the upsampler
/// in another folder is the same upsampler.
#[test]
fn refine_x2_is_cached_under_its_own_key() {
    let path = common::fixtures().join("refine/refine_x2.safetensors");
    let model = common::fixtures().join("pipeline/tiny-sana-video-ltx2");
    let source = HostTensor::read(&common::open(&path), "latents_in").unwrap().unwrap();
    let mut models = BaseModels::load(&Cpu, &model).unwrap();
    let cache = sana::engine::cache::LatentCache::new(1 << 30, None);
    let request = |upscale| RefineRequest {
        source: RefineSource::Latents(LatentVideo {
            shape: source.shape.clone().try_into().unwrap(),
            data: source.data.clone(),
        }),
        prompt: "a cat".into(),
        negative: None,
        sampling: RefineSampling { steps: 4, strength: 0.5, ..RefineSampling::default() },
        noise: NoiseSource::Seed(11),
        cached_source: CachedSource::Use,
        upscale,
    };
    let mut run = |upscale| run_refine(&Cpu, &mut models, &request(upscale), Some(&cache), &Silent).unwrap();
    let first = run(Upscale::latent_x2_in(&model));
    assert!(!first.cache_hit);
    let [_, c, t, h, w] = source.shape[..] else { panic!("latents of rank 5") };
    assert_eq!(first.latents.shape, vec![1, c, t, 2 * h, 2 * w]);
    let again = run(Upscale::latent_x2_in(&model));
    assert!(again.cache_hit);
    assert_eq!(again.latents.data, first.latents.data);
    let x1 = run(Upscale::None);
    assert!(!x1.cache_hit);
    assert_eq!(x1.latents.shape, source.shape);

    let copy = tempfile::tempdir().unwrap();
    for name in ["config.json", "diffusion_pytorch_model.safetensors"] {
        std::fs::copy(model.join("latent_upsampler").join(name), copy.path().join(name)).unwrap();
    }
    let moved = run(Upscale::LatentX2 { upsampler: copy.path().to_path_buf() });
    assert!(moved.cache_hit, "the same upsampler in another folder missed the cache");
    // another upsampler config (same weights): a different key
    let config = copy.path().join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("\"dims\": 3", "\"dims\":  3")).unwrap();
    assert!(!run(Upscale::LatentX2 { upsampler: copy.path().to_path_buf() }).cache_hit);
}
