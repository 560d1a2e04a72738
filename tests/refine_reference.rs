//! Refine (the SANA-Video transformer in refine mode) against the reference composed of diffusers
//! 0.42.1 components in tools/make_refine_fixtures.py: Base's latents re-noised to σ₀, flow Euler
//! over the schedule's tail with guidance, then decoded.

mod common;

use sana::backend::cpu::Cpu;
use sana::engine::dit::{HostTensor, SanaVideoTransformer};
use sana::engine::pipeline::base::Captions;
use sana::engine::pipeline::refine::{refine_latents, refine_schedule, RefineSampling};
use sana::engine::pipeline::LatentVideo;
use sana::engine::progress::Silent;
use sana::engine::text::{encode_prompts, Gemma2Encoder, Instruction, PromptOptions, PromptTokenizer};
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
