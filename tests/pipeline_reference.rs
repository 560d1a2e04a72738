//! Resolution binning against diffusers 0.42.1 (tools/make_binning_fixtures.py): the bin every
//! request maps to, for both tables, and the resize-and-centre-crop back to the request.

mod common;

use sana::engine::dit::HostTensor;
use sana::engine::pipeline::binning::{binned_resolution, resize_and_center_crop};
use sana::testing::{compare, tolerance};

#[test]
fn bins_match_diffusers() {
    let text = std::fs::read_to_string(common::fixtures().join("pipeline/bins.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut checked = 0;
    for (sample_size, rows) in json["bins"].as_object().unwrap() {
        for row in rows.as_array().unwrap() {
            let v: Vec<usize> = row.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
            let got = binned_resolution(v[0], v[1], sample_size.parse().unwrap()).unwrap();
            assert_eq!(got, (v[2], v[3]), "sample_size {sample_size}, request {}x{}", v[0], v[1]);
            checked += 1;
        }
    }
    assert!(checked >= 20);
}

#[test]
fn resize_and_crop_matches_diffusers() {
    for i in 0..4 {
        let path = common::fixtures().join(format!("pipeline/resize.{i}.safetensors"));
        common::check_fixture_provenance(&path);
        let meta = common::metadata(&path);
        let files = common::open(&path);
        let input = HostTensor::read(&files, "input").unwrap().unwrap();
        let expected = HostTensor::read(&files, "output").unwrap().unwrap();
        let [b, c, t, h, w] = input.shape[..] else { panic!("5-D input") };
        let (nh, nw) = (meta["new_height"].parse().unwrap(), meta["new_width"].parse().unwrap());
        let out = resize_and_center_crop(&input.data, b * c * t, [h, w], nh, nw);
        let cmp = compare(&out, &expected.data);
        eprintln!("resize.{i} {:?} -> {nh}x{nw}: {cmp}", input.shape);
        assert!(cmp.rel_l2 <= tolerance::TRANSFORMER_F32, "resize.{i}: {cmp}");
    }
}

/// Prompt → latents: our text encoder, transformer, CFG and DPM-Solver++ against diffusers'
/// `SanaVideoPipeline` from the same initial noise (tools/make_pipeline_fixtures.py).
#[test]
fn text_to_video_latents_match_diffusers() {
    use sana::backend::cpu::Cpu;
    use sana::engine::dit::SanaVideoTransformer;
    use sana::engine::pipeline::base::{denoise_text_to_video, BaseSampling, Captions};
    use sana::engine::pipeline::LatentVideo;
    use sana::engine::progress::Silent;
    use sana::engine::text::{encode_prompts, Gemma2Encoder, Instruction, PromptOptions, PromptTokenizer};
    use sana::io::ModelFolder;

    let path = common::fixtures().join("pipeline/t2v.safetensors");
    common::check_fixture_provenance(&path);
    let meta = common::metadata(&path);
    let files = common::open(&path);
    let noise = HostTensor::read(&files, "noise").unwrap().unwrap();
    let expected = HostTensor::read(&files, "latents").unwrap().unwrap();
    let folder = ModelFolder::new(&common::fixtures().join("pipeline/tiny-sana-video")).unwrap();
    let be = Cpu;
    let encoder = Gemma2Encoder::from_folder(&be, &folder).unwrap();
    sana::engine::text::check_matches_transformer(&folder, &encoder.config).unwrap();
    let tokenizer = PromptTokenizer::from_folder(&folder).unwrap();
    // the fixture's prompt already carries its motion score; __call__ applies diffusers' CHI
    let opts = PromptOptions { motion_score: None, instruction: Instruction::Diffusers };
    let (pos, neg) =
        encode_prompts(&be, &encoder, &tokenizer, &[meta["prompt"].clone()], &meta["negative_prompt"], &opts).unwrap();
    let transformer = SanaVideoTransformer::from_folder(&be, &folder).unwrap();
    let sampling = BaseSampling {
        steps: meta["steps"].parse().unwrap(),
        guidance: meta["guidance"].parse().unwrap(),
        flow_shift: meta["flow_shift"].parse().unwrap(),
    };
    let noise = LatentVideo { shape: noise.shape.clone().try_into().unwrap(), data: noise.data };
    let out = denoise_text_to_video(
        &be,
        &transformer,
        Captions { positive: &pos, negative: &neg },
        &noise,
        &sampling,
        &Silent,
    )
    .unwrap();
    assert_eq!(out.shape, noise.shape);
    let cmp = compare(&out.data, &expected.data);
    eprintln!("t2v latents: {cmp}");
    assert!(cmp.rel_l2 <= tolerance::REFERENCE_LOW_PRECISION, "{cmp}");

    // on to frames: our latents through our VAE against diffusers' output_type="pt" video
    let vae = sana::engine::vae::VideoVae::from_folder(&be, &folder).unwrap();
    let video = sana::engine::pipeline::frames::decode_to_size(&be, &vae, &out, (32, 32), &Silent).unwrap();
    let reference = HostTensor::read(&files, "video").unwrap().unwrap();
    let ours = unit_range_bfchw(&video);
    assert_eq!(reference.shape, vec![1, 5, 3, 32, 32]);
    let cmp = compare(&ours, &reference.data);
    eprintln!("t2v frames: {cmp}");
    assert!(cmp.rel_l2 <= tolerance::REFERENCE_LOW_PRECISION, "{cmp}");
}

/// A decoded (B, 3, F, H, W) clip in [−1, 1] as diffusers' `output_type="pt"` returns it:
/// (B, F, 3, H, W), x/2 + 0.5 clamped to [0, 1].
fn unit_range_bfchw(video: &sana::engine::pipeline::frames::DecodedVideo) -> Vec<f32> {
    let [b, c, f, h, w] = video.shape;
    let mut out = Vec::with_capacity(video.data.len());
    for bi in 0..b {
        for fi in 0..f {
            for ci in 0..c {
                let plane = &video.data[((bi * c + ci) * f + fi) * h * w..][..h * w];
                out.extend(plane.iter().map(|v| (v * 0.5 + 0.5).clamp(0.0, 1.0)));
            }
        }
    }
    out
}

/// A cancelled run stops between steps with `Error::Cancelled` and returns no latents.
#[test]
fn cancelled_denoising_stops_between_steps() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use sana::backend::cpu::Cpu;
    use sana::engine::dit::SanaVideoTransformer;
    use sana::engine::pipeline::base::{denoise_text_to_video, BaseSampling, Captions};
    use sana::engine::pipeline::LatentVideo;
    use sana::engine::progress::Progress;
    use sana::engine::text::{encode_prompts, Gemma2Encoder, PromptOptions, PromptTokenizer};
    use sana::io::ModelFolder;

    struct CancelAfter(AtomicUsize);
    impl Progress for CancelAfter {
        fn update(&self, _: f32, _: &str) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn cancelled(&self) -> bool {
            self.0.load(Ordering::SeqCst) >= 2
        }
    }
    let folder = ModelFolder::new(&common::fixtures().join("pipeline/tiny-sana-video")).unwrap();
    let encoder = Gemma2Encoder::from_folder(&Cpu, &folder).unwrap();
    let tokenizer = PromptTokenizer::from_folder(&folder).unwrap();
    let (pos, neg) =
        encode_prompts(&Cpu, &encoder, &tokenizer, &["a cat".into()], "", &PromptOptions::default()).unwrap();
    let transformer = SanaVideoTransformer::from_folder(&Cpu, &folder).unwrap();
    let progress = CancelAfter(AtomicUsize::new(0));
    let sampling = BaseSampling { steps: 10, ..BaseSampling::default() };
    let noise = LatentVideo { shape: [1, 16, 2, 4, 4], data: vec![0.5f32; 16 * 2 * 4 * 4] };
    let r = denoise_text_to_video(
        &Cpu,
        &transformer,
        Captions { positive: &pos, negative: &neg },
        &noise,
        &sampling,
        &progress,
    );
    assert!(matches!(r, Err(sana::Error::Cancelled)));
    assert_eq!(progress.0.load(Ordering::SeqCst), 2, "stopped after two steps");
}

/// `sana generate --noise` reproduces the diffusers run; without it, a seed gives the same
/// latents twice.
#[test]
fn cli_generate_reproduces_diffusers_and_is_seeded() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = common::fixtures().join("pipeline/t2v.safetensors");
    let meta = common::metadata(&fixture);
    let run = |out: &std::path::Path, extra: &[&str]| {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_sana"))
            .args(["generate", "--model"])
            .arg(common::fixtures().join("pipeline/tiny-sana-video"))
            .args(["--prompt", &meta["prompt"], "--negative", &meta["negative_prompt"], "--no-motion-score"])
            .args(["--height", "32", "--width", "32", "--frames", "5", "--steps", "4", "--no-binning", "--no-cache"])
            .arg("--out")
            .arg(out)
            .args(extra)
            .status()
            .unwrap();
        assert!(status.success());
        HostTensor::read(&common::open(out), "latents").unwrap().unwrap()
    };
    // frames: EXR holds linear light, read back and re-encoded to sRGB to compare with diffusers
    let pattern = dir.path().join("frames.%04d.exr");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_sana"))
        .args(["generate", "--model"])
        .arg(common::fixtures().join("pipeline/tiny-sana-video"))
        .args(["--prompt", &meta["prompt"], "--negative", &meta["negative_prompt"], "--no-motion-score"])
        .args(["--height", "32", "--width", "32", "--frames", "5", "--steps", "4", "--no-binning", "--no-cache"])
        .args(["--noise", fixture.to_str().unwrap(), "--out"])
        .arg(&pattern)
        .status()
        .unwrap();
    assert!(status.success());
    let seq = sana::io::frames::SequencePattern::parse(pattern.to_str().unwrap()).unwrap();
    let frames = sana::io::frames::read_sequence(&seq, 1, 5).unwrap();
    let video = HostTensor::read(&common::open(&fixture), "video").unwrap().unwrap(); // (1, F, 3, H, W)
    let ours: Vec<f32> =
        frames.iter().flat_map(|f| (0..3).flat_map(move |c| (0..32 * 32).map(move |p| f.rgb[p * 3 + c]))).collect();
    let cmp = compare(&ours, &video.data);
    eprintln!("cli t2v frames (EXR): {cmp}");
    assert!(cmp.rel_l2 <= tolerance::REFERENCE_LOW_PRECISION, "{cmp}");

    let reproduced = run(&dir.path().join("a.safetensors"), &["--noise", fixture.to_str().unwrap()]);
    let expected = HostTensor::read(&common::open(&fixture), "latents").unwrap().unwrap();
    let cmp = compare(&reproduced.data, &expected.data);
    assert!(cmp.rel_l2 <= tolerance::REFERENCE_LOW_PRECISION, "{cmp}");
    let a = run(&dir.path().join("b.safetensors"), &["--seed", "3"]);
    let b = run(&dir.path().join("c.safetensors"), &["--seed", "3"]);
    assert_eq!(a.data, b.data);
    assert!(a.data.iter().all(|v| v.is_finite()));
}

/// Image to video: the image latent pinned at frame 0, per-token timesteps, the sampler on frames
/// 1.. — against diffusers' `SanaImageToVideoPipeline` from the same noise and image latent.
#[test]
fn image_to_video_latents_match_diffusers() {
    use sana::backend::cpu::Cpu;
    use sana::engine::dit::SanaVideoTransformer;
    use sana::engine::pipeline::base::{denoise_image_to_video, BaseSampling, Captions};
    use sana::engine::pipeline::LatentVideo;
    use sana::engine::progress::Silent;
    use sana::engine::text::{encode_prompts, Gemma2Encoder, Instruction, PromptOptions, PromptTokenizer};
    use sana::io::ModelFolder;

    let path = common::fixtures().join("pipeline/i2v.safetensors");
    common::check_fixture_provenance(&path);
    let meta = common::metadata(&path);
    let files = common::open(&path);
    let read = |k: &str| HostTensor::read(&files, k).unwrap().unwrap();
    let (noise, image, expected) = (read("noise"), read("image_latent"), read("latents"));
    let folder = ModelFolder::new(&common::fixtures().join("pipeline/tiny-sana-video")).unwrap();
    let encoder = Gemma2Encoder::from_folder(&Cpu, &folder).unwrap();
    let tokenizer = PromptTokenizer::from_folder(&folder).unwrap();
    let opts = PromptOptions { motion_score: None, instruction: Instruction::Diffusers };
    let (pos, neg) =
        encode_prompts(&Cpu, &encoder, &tokenizer, &[meta["prompt"].clone()], &meta["negative_prompt"], &opts).unwrap();
    let transformer = SanaVideoTransformer::from_folder(&Cpu, &folder).unwrap();
    let sampling = BaseSampling { steps: 4, guidance: 6.0, flow_shift: 8.0 };
    let noise = LatentVideo { shape: noise.shape.clone().try_into().unwrap(), data: noise.data };
    let captions = Captions { positive: &pos, negative: &neg };
    let out = denoise_image_to_video(&Cpu, &transformer, captions, &noise, &image.data, &sampling, &Silent).unwrap();
    let cmp = compare(&out.data, &expected.data);
    eprintln!("i2v latents: {cmp}");
    assert!(cmp.rel_l2 <= tolerance::REFERENCE_LOW_PRECISION, "{cmp}");
    // frame 0 is exactly the image latent
    let frame = 4 * 4;
    for ch in 0..16 {
        assert_eq!(&out.data[ch * 2 * frame..][..frame], &image.data[ch * frame..][..frame]);
    }
}

/// A second identical `sana generate` is served from the latent cache; a different seed is not.
#[test]
fn cli_generate_uses_the_latent_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let run = |seed: &str, out: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_sana"))
            .args(["generate", "--model"])
            .arg(common::fixtures().join("pipeline/tiny-sana-video"))
            .args(["--prompt", "a cat", "--height", "32", "--width", "32", "--frames", "5", "--steps", "3"])
            .args(["--no-binning", "--seed", seed, "--out"])
            .arg(dir.path().join(out))
            .env("SANA_CACHE_DIR", &cache)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stderr = String::from_utf8(output.stderr).unwrap();
        let latents = HostTensor::read(&common::open(&dir.path().join(out)), "latents").unwrap().unwrap();
        (stderr.contains("cache hit"), latents.data)
    };
    let (hit1, first) = run("1", "a.safetensors");
    let (hit2, second) = run("1", "b.safetensors");
    let (hit3, other) = run("2", "c.safetensors");
    assert!(!hit1 && hit2 && !hit3, "hits: {hit1} {hit2} {hit3}");
    assert_eq!(first, second);
    assert_ne!(first, other);
}

/// Image-to-video's conditioning latent: the image (8-bit RGB, as PIL gives it) to [−1, 1], one
/// frame through our VAE encoder, normalised — against the latent diffusers pinned at frame 0.
#[test]
fn image_latent_matches_diffusers() {
    use sana::backend::cpu::Cpu;
    use sana::engine::progress::Silent;
    use sana::io::ModelFolder;
    let path = common::fixtures().join("pipeline/i2v.safetensors");
    let files = common::open(&path);
    let image = HostTensor::read(&files, "image").unwrap().unwrap(); // (H, W, 3) in 0..255
    let expected = HostTensor::read(&files, "image_latent").unwrap().unwrap();
    let [h, w, _]: [usize; 3] = image.shape.clone().try_into().unwrap();
    let mut video = vec![0.0f32; 3 * h * w];
    for p in 0..h * w {
        for c in 0..3 {
            video[c * h * w + p] = image.data[p * 3 + c] / 255.0 * 2.0 - 1.0;
        }
    }
    let folder = ModelFolder::new(&common::fixtures().join("pipeline/tiny-sana-video")).unwrap();
    let vae = sana::engine::vae::VideoVae::from_folder(&Cpu, &folder).unwrap();
    let latent = sana::engine::pipeline::frames::encode_video(&Cpu, &vae, &video, [1, 3, 1, h, w], &Silent).unwrap();
    assert_eq!(latent.shape.to_vec(), expected.shape);
    let cmp = compare(&latent.data, &expected.data);
    eprintln!("i2v image latent: {cmp}");
    assert!(cmp.rel_l2 <= tolerance::REFERENCE_LOW_PRECISION, "{cmp}");
}

/// `sana generate --image`: the first frame read from a PNG, encoded, pinned — the latents of
/// diffusers' `SanaImageToVideoPipeline` from the same image and noise.
#[test]
fn cli_image_to_video_reproduces_diffusers() {
    use sana::io::frames::{write_frame, Frame, PngDepth};
    let dir = tempfile::tempdir().unwrap();
    let fixture = common::fixtures().join("pipeline/i2v.safetensors");
    let meta = common::metadata(&fixture);
    let files = common::open(&fixture);
    let image = HostTensor::read(&files, "image").unwrap().unwrap(); // (H, W, 3) in 0..255
    let png = dir.path().join("first.png");
    let frame = Frame { width: 32, height: 32, rgb: image.data.iter().map(|v| v / 255.0).collect() };
    write_frame(&png, &frame, PngDepth::Eight).unwrap(); // 8-bit holds the PIL image exactly
    let out = dir.path().join("i2v.safetensors");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_sana"))
        .args(["generate", "--model"])
        .arg(common::fixtures().join("pipeline/tiny-sana-video"))
        .args(["--prompt", &meta["prompt"], "--negative", &meta["negative_prompt"], "--no-motion-score"])
        .args(["--height", "32", "--width", "32", "--frames", "5", "--steps", "4", "--no-binning", "--no-cache"])
        .args(["--noise", fixture.to_str().unwrap(), "--image", png.to_str().unwrap(), "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let ours = HostTensor::read(&common::open(&out), "latents").unwrap().unwrap();
    let expected = HostTensor::read(&files, "latents").unwrap().unwrap();
    let cmp = compare(&ours.data, &expected.data);
    eprintln!("cli i2v latents: {cmp}");
    assert!(cmp.rel_l2 <= tolerance::REFERENCE_LOW_PRECISION, "{cmp}");
}
