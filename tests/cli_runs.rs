//! How `sana` behaves as a farm job: Ctrl-C stops between steps and leaves nothing behind, two
//! processes computing the same result share one valid cache entry, and `--json` reports what was
//! written.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn generate(cache: &Path, out: &Path, steps: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sana"));
    cmd.args(["generate", "--model"])
        .arg(common::fixtures().join("pipeline/tiny-sana-video"))
        .args(["--prompt", "a cat", "--height", "32", "--width", "32", "--frames", "5", "--no-binning"])
        .args(["--seed", "5", "--steps", steps, "--out"])
        .arg(out)
        .env("SANA_CACHE_DIR", cache);
    cmd
}

/// Every file under the cache folder (entries live in two-hex-digit subfolders).
fn cache_entries(cache: &Path) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(cache) else { return Vec::new() };
    let mut files = Vec::new();
    for e in dir.map(|e| e.unwrap()) {
        if e.file_type().unwrap().is_dir() {
            files.extend(cache_entries(&e.path()));
        } else {
            files.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    files
}

#[test]
fn ctrl_c_stops_between_steps_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, out) = (dir.path().join("cache"), dir.path().join("frames.%04d.png"));
    let mut child = generate(&cache, &out, "5000").stderr(Stdio::piped()).spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut lines = stderr.lines();
    // wait until denoising is under way
    for line in lines.by_ref() {
        if line.unwrap().contains("denoising 3/") {
            break;
        }
    }
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(130), "stderr after the interrupt: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("cancelled: nothing was written")), "{rest:?}");
    assert!(!dir.path().join("frames.0001.png").exists());
    assert!(cache_entries(&cache).is_empty(), "{:?}", cache_entries(&cache));
}

#[test]
fn concurrent_runs_of_one_result_share_one_valid_cache_entry() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let outs: Vec<_> = (0..2).map(|i| dir.path().join(format!("{i}.safetensors"))).collect();
    let children: Vec<_> =
        outs.iter().map(|o| generate(&cache, o, "3").stderr(Stdio::null()).spawn().unwrap()).collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let read = |p: &Path| sana::engine::dit::HostTensor::read(&common::open(p), "latents").unwrap().unwrap().data;
    assert_eq!(read(&outs[0]), read(&outs[1]));
    // one entry, no temporary files left behind
    let entries = cache_entries(&cache);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].ends_with(".safetensors"), "{entries:?}");
    // a third run is served from that entry and gets the same latents
    let third = dir.path().join("2.safetensors");
    let output = generate(&cache, &third, "3").output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cache hit"));
    assert_eq!(read(&third), read(&outs[0]));
}

#[test]
fn json_reports_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, out) = (dir.path().join("cache"), dir.path().join("f.%04d.png"));
    let latents = dir.path().join("l.safetensors");
    let output = generate(&cache, &out, "2").arg("--save-latents").arg(&latents).arg("--json").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["command"], "generate");
    assert_eq!(report["cache_hit"], false);
    assert_eq!(report["latents"], latents.to_str().unwrap());
    let frames = report["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 5);
    assert!(frames.iter().all(|f| Path::new(f.as_str().unwrap()).is_file()));
    assert!(report["device"].as_str().unwrap().starts_with("cpu"));
}

/// `sana generate` to frames, then `sana refine --input` on those frames: the latents are found
/// in the cache from the frames as read back (no VAE encode). A plate that differs in one pixel
/// is encoded.
#[test]
fn refine_on_generated_frames_reuses_their_latents() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, out) = (dir.path().join("cache"), dir.path().join("f.%04d.png"));
    let output = generate(&cache, &out, "2").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let refine = |input: &Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sana"));
        cmd.args(["refine", "--model"])
            .arg(common::fixtures().join("pipeline/tiny-sana-video"))
            .args(["--prompt", "a cat", "--frames", "5", "--steps", "4", "--strength", "0.5", "--input"])
            .arg(input)
            .arg("--out")
            .arg(dir.path().join("r.safetensors"))
            .env("SANA_CACHE_DIR", &cache);
        let output = cmd.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let log = refine(&out);
    assert!(log.contains("not re-encoded"), "{log}");
    assert!(!log.contains("encoded by the VAE"), "{log}");
    // the same clip with one pixel changed is a new plate
    let plate = dir.path().join("p.%04d.png");
    let seq = sana::io::frames::SequencePattern::parse(plate.to_str().unwrap()).unwrap();
    let written = sana::io::frames::SequencePattern::parse(out.to_str().unwrap()).unwrap();
    for (i, mut frame) in sana::io::frames::read_sequence(&written, 1, 5).unwrap().into_iter().enumerate() {
        if i == 2 {
            frame.rgb[40] = 1.0 - frame.rgb[40];
        }
        sana::io::frames::write_frame(&seq.path(1 + i), &frame, sana::io::frames::PngDepth::Sixteen).unwrap();
    }
    let log = refine(&plate);
    assert!(log.contains("encoded by the VAE"), "{log}");
}

/// `sana encode --vae-memory-gib`: a budget too small for the whole clip streams the LTX-2
/// encoder in time, which gives the whole-clip latents (the encoder is causal); a budget that is
/// no positive number is refused by name.
#[test]
fn encode_with_a_small_vae_memory_budget_gives_the_same_latents() {
    let dir = tempfile::tempdir().unwrap();
    let files = common::open(&common::fixtures().join("vae/tiny-ltx2.encode.9x32x32.safetensors"));
    let video = sana::engine::dit::HostTensor::read(&files, "video").unwrap().unwrap();
    let [_, _, t, h, w] = video.shape[..] else { panic!("video is (1, 3, T, H, W)") };
    let plate = dir.path().join("p.%04d.png");
    let seq = sana::io::frames::SequencePattern::parse(plate.to_str().unwrap()).unwrap();
    for f in 0..t {
        // (1, 3, T, H, W) in [−1, 1] → interleaved RGB in [0, 1]
        let rgb = (0..h * w * 3).map(|i| 0.5 + 0.5 * video.data[((i % 3) * t + f) * h * w + i / 3]).collect();
        let frame = sana::io::frames::Frame { width: w, height: h, rgb };
        sana::io::frames::write_frame(&seq.path(1 + f), &frame, sana::io::frames::PngDepth::Sixteen).unwrap();
    }
    let encode = |name: &str, budget: Option<&str>| {
        let out = dir.path().join(name);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sana"));
        cmd.args(["encode", "--model"])
            .arg(common::fixtures().join("vae/tiny-ltx2"))
            .arg("--input")
            .arg(&plate)
            .args(["--frames", &t.to_string(), "--out"])
            .arg(&out);
        if let Some(b) = budget {
            cmd.args(["--vae-memory-gib", b]);
        }
        (cmd.output().unwrap(), out)
    };
    let read = |path: &Path| {
        let files = sana::io::TensorFiles::open(path).unwrap();
        sana::engine::dit::HostTensor::read(&files, "latents").unwrap().unwrap().data
    };
    let (whole, whole_path) = encode("whole.safetensors", None);
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    let (streamed, streamed_path) = encode("streamed.safetensors", Some("1e-9"));
    assert!(streamed.status.success(), "{}", String::from_utf8_lossy(&streamed.stderr));
    let (a, b) = (read(&whole_path), read(&streamed_path));
    assert_eq!(a.len(), b.len());
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(diff <= 1e-4, "streamed latents {diff} from the whole clip's");
    let (refused, _) = encode("refused.safetensors", Some("0"));
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--vae-memory-gib") && err.contains("positive number of GiB"), "{err}");
}
