//! The CPU autoencoders against diffusers 0.42.1 on the fixtures of tools/make_vae_fixtures.py
//! (Wan2.1) and tools/make_ltx2_fixtures.py (LTX-2): encode (the posterior's mean and
//! log-variance) and decode (Wan: before and after the clamp; LTX-2 does not clamp).

mod common;

use sana::backend::cpu::Cpu;
use sana::engine::dit::HostTensor;
use sana::engine::progress::Silent;
use sana::engine::vae::ltx2::{Chunking, MemoryBudget, TileSpec, Tiling};
use sana::engine::vae::{Ltx2Vae, VideoVae, WanVae};
use sana::io::ModelFolder;
use sana::testing::{compare, tolerance};

fn fixture(name: &str) -> (sana::io::TensorFiles, std::path::PathBuf) {
    let path = common::fixtures().join("vae").join(format!("{name}.safetensors"));
    common::check_fixture_provenance(&path);
    (common::open(&path), path)
}

fn tensor(files: &sana::io::TensorFiles, name: &str) -> HostTensor {
    HostTensor::read(files, name).unwrap().unwrap_or_else(|| panic!("fixture has no `{name}`"))
}

fn shape5(t: &HostTensor) -> [usize; 5] {
    t.shape.clone().try_into().expect("a (B, C, T, H, W) tensor")
}

fn wan(model: &str) -> WanVae<Cpu> {
    let folder = ModelFolder::new(&common::fixtures().join("vae").join(model)).unwrap();
    WanVae::from_folder(&Cpu, &folder).unwrap()
}

fn assert_close(what: &str, ours: &[f32], reference: &[f32]) {
    let c = compare(ours, reference);
    eprintln!("{what}: {c}");
    assert_eq!(c.non_finite, 0, "{what}: non-finite outputs");
    assert!(c.rel_l2 <= tolerance::VAE_F32, "{what}: {c}");
}

fn decode_case(case: &str) {
    let name = format!("tiny-wan.decode.{case}");
    let (files, _) = fixture(&name);
    let z = tensor(&files, "latents");
    let vae = wan("tiny-wan");
    let (raw, shape) = vae.decode_unclamped(&Cpu, &z.data, shape5(&z), &Silent).unwrap();
    let reference_raw = tensor(&files, "sample_unclamped");
    assert_eq!(shape.to_vec(), reference_raw.shape, "{name}: output shape");
    assert_close(&format!("{name} unclamped"), &raw, &reference_raw.data);
    let (clamped, _) = vae.decode(&Cpu, &z.data, shape5(&z), &Silent).unwrap();
    assert_close(&format!("{name} clamped"), &clamped, &tensor(&files, "sample").data);
}

fn encode_case(case: &str) {
    let name = format!("tiny-wan.encode.{case}");
    let (files, _) = fixture(&name);
    let video = tensor(&files, "video");
    let vae = wan("tiny-wan");
    let (params, shape) = vae.encode_parameters(&Cpu, &video.data, shape5(&video), &Silent).unwrap();
    let reference = tensor(&files, "latent_params");
    assert_eq!(shape.to_vec(), reference.shape, "{name}: output shape");
    assert_close(&format!("{name} mean | logvar"), &params, &reference.data);
    // `encode` is the mean half
    let (mean, [b, z, t, h, w]) = vae.encode(&Cpu, &video.data, shape5(&video), &Silent).unwrap();
    assert_eq!(mean.len(), b * z * t * h * w);
    let per_sample = 2 * z * t * h * w;
    assert_eq!(&mean[..z * t * h * w], &params[..z * t * h * w]);
    assert_eq!(params.len(), b * per_sample);
}

#[test]
fn wan_decode_one_latent_frame() {
    decode_case("1x4x6");
}

#[test]
fn wan_decode_three_latent_frames() {
    decode_case("3x4x6");
}

#[test]
fn wan_decode_batch_of_two() {
    decode_case("b2.2x5x3");
}

#[test]
fn wan_encode_one_frame() {
    encode_case("1x32x48");
}

#[test]
fn wan_encode_five_frames() {
    encode_case("5x32x48");
}

#[test]
fn wan_encode_nine_frames() {
    encode_case("9x40x24");
}

/// Every fixture on disk has a test above.
#[test]
fn every_vae_fixture_has_a_test() {
    let covered = [
        "tiny-wan.decode.1x4x6",
        "tiny-wan.decode.3x4x6",
        "tiny-wan.decode.b2.2x5x3",
        "tiny-wan.encode.1x32x48",
        "tiny-wan.encode.5x32x48",
        "tiny-wan.encode.9x40x24",
        "tiny-ltx2.decode.1x2x2",
        "tiny-ltx2.decode.2x2x2",
        "tiny-ltx2.decode.b2.1x2x2",
        "tiny-ltx2.encode.1x32x64",
        "tiny-ltx2.encode.9x32x32",
        "tiny-ltx2.encode.17x32x32",
        "tiny-ltx2.tiled.4x6",
        "tiny-ltx2.tiled.b2.6x8",
        "tiny-ltx2.long.9x2x2",
    ];
    let dir = common::fixtures().join("vae");
    let on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".safetensors").map(str::to_string))
        .collect();
    assert!(!on_disk.is_empty(), "no fixtures in {}: run python3 tools/make_vae_fixtures.py", dir.display());
    for f in &on_disk {
        assert!(covered.contains(&f.as_str()), "fixture {f} has no test in tests/vae_reference.rs");
    }
}

/// A frame count the causal chunking cannot take is refused with the nearest valid counts.
#[test]
fn wan_encode_refuses_a_bad_frame_count() {
    let vae = wan("tiny-wan");
    let video = vec![0.0; 3 * 6 * 32 * 48];
    let err = vae.encode(&Cpu, &video, [1, 3, 6, 32, 48], &Silent).unwrap_err().to_string();
    assert!(err.contains("6 frames") && err.contains("5 or 9"), "{err}");
}

/// Latents with the wrong channel count name what was expected.
#[test]
fn wan_decode_refuses_wrong_channels() {
    let vae = wan("tiny-wan");
    let z = vec![0.0; 8 * 2 * 4 * 6];
    let err = vae.decode(&Cpu, &z, [1, 8, 2, 4, 6], &Silent).unwrap_err().to_string();
    assert!(err.contains("latents") && err.contains("16"), "{err}");
}

fn ltx2_folder() -> ModelFolder {
    ModelFolder::new(&common::fixtures().join("vae").join("tiny-ltx2")).unwrap()
}

fn ltx2() -> Ltx2Vae<Cpu> {
    Ltx2Vae::from_folder(&Cpu, &ltx2_folder()).unwrap()
}

fn ltx2_decode_case(case: &str) {
    let name = format!("tiny-ltx2.decode.{case}");
    let (files, _) = fixture(&name);
    let z = tensor(&files, "latents");
    let (video, shape) = ltx2().decode(&Cpu, &z.data, shape5(&z), &Silent).unwrap();
    let reference = tensor(&files, "sample");
    assert_eq!(shape.to_vec(), reference.shape, "{name}: output shape");
    assert_close(&name, &video, &reference.data);
}

fn ltx2_encode_case(case: &str) {
    let name = format!("tiny-ltx2.encode.{case}");
    let (files, _) = fixture(&name);
    let video = tensor(&files, "video");
    let vae = ltx2();
    let (params, shape) = vae.encode_parameters(&Cpu, &video.data, shape5(&video), &Silent).unwrap();
    let reference = tensor(&files, "latent_params");
    assert_eq!(shape.to_vec(), reference.shape, "{name}: output shape");
    assert_close(&format!("{name} mean | logvar"), &params, &reference.data);
    // `encode` is the mean half of each sample
    let (mean, [b, z, t, h, w]) = vae.encode(&Cpu, &video.data, shape5(&video), &Silent).unwrap();
    let per = z * t * h * w;
    assert_eq!(mean.len(), b * per);
    for s in 0..b {
        assert_eq!(&mean[s * per..][..per], &params[s * 2 * per..][..per]);
    }
}

#[test]
fn ltx2_decode_one_latent_frame() {
    ltx2_decode_case("1x2x2");
}

#[test]
fn ltx2_decode_two_latent_frames() {
    ltx2_decode_case("2x2x2");
}

#[test]
fn ltx2_decode_batch_of_two() {
    ltx2_decode_case("b2.1x2x2");
}

#[test]
fn ltx2_encode_one_frame() {
    ltx2_encode_case("1x32x64");
}

#[test]
fn ltx2_encode_nine_frames() {
    ltx2_encode_case("9x32x32");
}

#[test]
fn ltx2_encode_seventeen_frames() {
    ltx2_encode_case("17x32x32");
}

/// The latent statistics are the checkpoint's buffers, and `VideoVae` picks the LTX-2 VAE by
/// `_class_name` with its factors.
#[test]
fn ltx2_through_video_vae() {
    let files = common::open(&common::fixtures().join("vae/tiny-ltx2/vae/diffusion_pytorch_model.safetensors"));
    let vae = VideoVae::from_folder(&Cpu, &ltx2_folder()).unwrap();
    let (mean, std) = vae.latent_statistics();
    assert_eq!(mean, tensor(&files, "latents_mean").data.as_slice());
    assert_eq!(std, tensor(&files, "latents_std").data.as_slice());
    assert_eq!(vae.factors(), (8, 32));
}

/// A tiled fixture: the latents, diffusers' tiled and untiled decodes and the `enable_tiling`
/// sizes it used.
struct TiledCase {
    name: String,
    z: HostTensor,
    tiled: HostTensor,
    untiled: HostTensor,
    spec: TileSpec,
}

fn tiled_case(case: &str) -> TiledCase {
    let name = format!("tiny-ltx2.tiled.{case}");
    let (files, path) = fixture(&name);
    let meta = common::metadata(&path);
    let px = |key: &str| -> usize {
        meta.get(key).unwrap_or_else(|| panic!("{name}: no `{key}` in the metadata")).parse().unwrap()
    };
    let spec = TileSpec {
        min_height: px("tile_sample_min_height"),
        min_width: px("tile_sample_min_width"),
        stride_height: px("tile_sample_stride_height"),
        stride_width: px("tile_sample_stride_width"),
    };
    TiledCase {
        z: tensor(&files, "latents"),
        tiled: tensor(&files, "sample"),
        untiled: tensor(&files, "sample_untiled"),
        spec,
        name,
    }
}

/// Ours with diffusers' tile sizes against diffusers' `tiled_decode`; the untiled decode of the
/// same (multi-tile) latent against diffusers' untiled one; and how far diffusers' own tiled
/// output is from its untiled one — what tiling is allowed to add. On this tiny random VAE with
/// 3-latent-pixel tiles that is large (7.2e-1 and 1.1; the second case's crops misplace content,
/// as diffusers does with strides that are not multiples of 32): far above the tolerance, so
/// matching the tiled reference is a check of the tiling itself.
fn ltx2_tiled_case(case: &str) {
    let c = tiled_case(case);
    let vae = ltx2();
    let plan = vae.tile_plan(&Cpu, shape5(&c.z), Tiling::Tiles(c.spec)).unwrap();
    let plan = plan.unwrap_or_else(|| panic!("{}: the fixture should take several tiles", c.name));
    assert!(plan.rows.len() >= 2 && plan.cols.len() >= 3, "{}: {plan:?}", c.name);
    let (ours, shape) = vae.decode_with(&Cpu, &c.z.data, shape5(&c.z), Tiling::Tiles(c.spec), &Silent).unwrap();
    assert_eq!(shape.to_vec(), c.tiled.shape, "{}: output shape", c.name);
    assert_close(&format!("{} tiled", c.name), &ours, &c.tiled.data);
    // each tile through the streamed decode (one chunk here: the fixture has one latent frame)
    let mut streamed = ltx2();
    streamed.decode_chunking = Chunking::Frames(8);
    let (ours_streamed, _) =
        streamed.decode_with(&Cpu, &c.z.data, shape5(&c.z), Tiling::Tiles(c.spec), &Silent).unwrap();
    assert!(max_diff(&ours_streamed, &ours) <= 1e-5, "{}: tiles streamed in time differ", c.name);
    let (whole, _) = vae.decode_with(&Cpu, &c.z.data, shape5(&c.z), Tiling::Off, &Silent).unwrap();
    assert_close(&format!("{} untiled", c.name), &whole, &c.untiled.data);
    let gap = compare(&c.tiled.data, &c.untiled.data);
    eprintln!("{}: diffusers tiled vs untiled: {gap}", c.name);
    assert!(gap.rel_l2 > 10.0 * tolerance::VAE_F32, "{}: tiling should change this output: {gap}", c.name);
}

#[test]
fn ltx2_tiled_decode_2x3_tiles() {
    ltx2_tiled_case("4x6");
}

#[test]
fn ltx2_tiled_decode_3x4_tiles_uneven_strides_batch_of_two() {
    ltx2_tiled_case("b2.6x8");
}

/// `Tiling::Auto` decodes whole under a budget the clip fits, and tiles (giving the tiled
/// result) under one it does not; the default (the host's memory) keeps a tiny clip whole.
#[test]
fn ltx2_auto_tiling_follows_the_budget() {
    let c = tiled_case("4x6");
    let vae = ltx2();
    let shape = shape5(&c.z);
    let (_, bytes) = vae.decode_estimate(&Cpu, [shape[2], shape[3], shape[4]]);
    assert!(bytes > 0);
    let auto = |budget| Tiling::Auto { budget, tiles: c.spec };
    assert!(vae.tile_plan(&Cpu, shape, auto(MemoryBudget::Bytes(bytes))).unwrap().is_none());
    assert!(vae.tile_plan(&Cpu, shape, auto(MemoryBudget::Bytes(bytes - 1))).unwrap().is_some());
    let (tiled, _) = vae.decode_with(&Cpu, &c.z.data, shape, auto(MemoryBudget::Bytes(1)), &Silent).unwrap();
    assert_close(&format!("{} auto, tiny budget", c.name), &tiled, &c.tiled.data);
    let (whole, _) = vae.decode_with(&Cpu, &c.z.data, shape, auto(MemoryBudget::Bytes(bytes)), &Silent).unwrap();
    assert_close(&format!("{} auto, ample budget", c.name), &whole, &c.untiled.data);
    assert_eq!(vae.tiling, Tiling::default());
    assert!(vae.tile_plan(&Cpu, shape, vae.tiling).unwrap().is_none(), "a tiny clip should decode whole");
}

/// A tile grid that ends in a tile too thin for reflect padding is refused by name.
#[test]
fn ltx2_tiles_too_thin_for_reflect_padding_are_refused() {
    let vae = ltx2();
    let spec = TileSpec { min_height: 96, min_width: 96, stride_height: 64, stride_width: 64 };
    let z = vec![0.0; 8 * 5 * 4];
    // width 5 = 2 + 2 + 1: the last column one latent pixel wide
    let err = vae.decode_with(&Cpu, &z, [1, 8, 1, 4, 5], Tiling::Tiles(spec), &Silent).unwrap_err().to_string();
    assert!(err.contains("reflection") && err.contains("wide"), "{err}");
}

/// The encoder streamed in time (the first frame, then 8 frames at a time: three chunks of the
/// 17-frame fixture, each causal conv's context carried between them) gives the whole clip's
/// latents, and so matches diffusers' whole-clip encode; a budget too small for the whole clip
/// streams it too (`Chunking::Auto`), an ample one does not; a chunk length that is no multiple of
/// 8 is refused by name.
#[test]
fn ltx2_streamed_encode_is_the_whole_clip_encode() {
    let name = "tiny-ltx2.encode.17x32x32";
    let (files, _) = fixture(name);
    let video = tensor(&files, "video");
    let reference = tensor(&files, "latent_params");
    let mut vae = ltx2();
    assert_eq!(vae.encode_chunking, Chunking::default());
    let (whole, _) = vae.encode_parameters(&Cpu, &video.data, shape5(&video), &Silent).unwrap();
    for chunking in [Chunking::Frames(8), Chunking::Auto { budget: MemoryBudget::Bytes(1) }] {
        vae.encode_chunking = chunking;
        let (streamed, shape) = vae.encode_parameters(&Cpu, &video.data, shape5(&video), &Silent).unwrap();
        assert_eq!(shape.to_vec(), reference.shape, "{name} {chunking:?}: output shape");
        assert_close(&format!("{name} {chunking:?}"), &streamed, &reference.data);
        let diff = max_diff(&streamed, &whole);
        assert!(diff <= 1e-5, "{name} {chunking:?}: {diff} from the whole-clip encode");
    }
    vae.encode_chunking = Chunking::Auto { budget: MemoryBudget::Bytes(usize::MAX) };
    let (ample, _) = vae.encode_parameters(&Cpu, &video.data, shape5(&video), &Silent).unwrap();
    assert_eq!(ample, whole, "an ample budget encodes the whole clip");
    vae.encode_chunking = Chunking::Frames(12);
    let err = vae.encode_parameters(&Cpu, &video.data, shape5(&video), &Silent).unwrap_err().to_string();
    assert!(err.contains("encode chunk frames") && err.contains("multiple"), "{err}");
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max)
}

/// The decoder is non-causal: every video frame depends on latent frames ahead of it (about 7
/// here, 22 in the released decoder). Streamed in time — chunks of 8, 16 and 24 video frames
/// (1, 2 and 3 latent frames), one chunk as long as the clip, and a budget too small for the
/// whole clip — each centered conv lagging a frame behind its input and each stage's output
/// passed on in pieces, the decode of the 9-latent-frame fixture matches diffusers' whole-clip
/// decode and ours within 1e-5. A batch of two streams each sample from fresh caches; an ample
/// budget decodes whole; a chunk that is no multiple of 8 is refused by name.
#[test]
fn ltx2_streamed_decode_is_the_whole_clip_decode() {
    let name = "tiny-ltx2.long.9x2x2";
    let (files, _) = fixture(name);
    let z = tensor(&files, "latents");
    let reference = tensor(&files, "sample");
    let shape = shape5(&z);
    let [_, _, t, h, w] = shape;
    let mut vae = ltx2();
    assert_eq!(vae.decode_chunking, Chunking::default());
    let (whole, _) = vae.decode_with(&Cpu, &z.data, shape, Tiling::Off, &Silent).unwrap();
    assert_close(&format!("{name} whole"), &whole, &reference.data);
    let tiny_budget = Chunking::Auto { budget: MemoryBudget::Bytes(1) };
    for chunking in [Chunking::Frames(8), Chunking::Frames(16), Chunking::Frames(24), Chunking::Frames(72), tiny_budget]
    {
        vae.decode_chunking = chunking;
        assert!(vae.decode_chunk_latents(&Cpu, [t, h, w]).unwrap().is_some(), "{chunking:?} should stream");
        let (streamed, out_shape) = vae.decode_with(&Cpu, &z.data, shape, Tiling::Off, &Silent).unwrap();
        assert_eq!(out_shape.to_vec(), reference.shape, "{name} {chunking:?}: output shape");
        assert_close(&format!("{name} {chunking:?}"), &streamed, &reference.data);
        let diff = max_diff(&streamed, &whole);
        assert!(diff <= 1e-5, "{name} {chunking:?}: {diff} from the whole-clip decode");
    }
    // a batch of two: the fixture, then the fixture scaled by −½
    let batch: Vec<f32> = z.data.iter().copied().chain(z.data.iter().map(|v| -0.5 * v)).collect();
    let batch_shape = [2, shape[1], t, h, w];
    vae.decode_chunking = Chunking::Off;
    let (whole2, _) = vae.decode_with(&Cpu, &batch, batch_shape, Tiling::Off, &Silent).unwrap();
    vae.decode_chunking = Chunking::Frames(16);
    let (streamed2, _) = vae.decode_with(&Cpu, &batch, batch_shape, Tiling::Off, &Silent).unwrap();
    let diff = max_diff(&streamed2, &whole2);
    assert!(diff <= 1e-5, "{name} batch of two streamed: {diff} from the whole-clip decode");
    assert!(max_diff(&streamed2[..whole.len()], &whole) <= 1e-5, "{name}: the batch's first sample");
    vae.decode_chunking = Chunking::Auto { budget: MemoryBudget::Bytes(usize::MAX) };
    assert_eq!(vae.decode_chunk_latents(&Cpu, [t, h, w]).unwrap(), None, "an ample budget decodes whole");
    vae.decode_chunking = Chunking::Frames(12);
    let err = vae.decode_with(&Cpu, &z.data, shape, Tiling::Off, &Silent).unwrap_err().to_string();
    assert!(err.contains("decode chunk frames") && err.contains("multiple"), "{err}");
}

/// Under one budget for tiles and chunks (as `--vae-memory-gib` sets them), a clip too long for
/// it whole streams in time, untiled and exact, once a chunk of one latent frame fits; the
/// longest chunks that fit are taken.
#[test]
fn ltx2_auto_decode_streams_rather_than_tiles() {
    let (files, _) = fixture("tiny-ltx2.long.9x2x2");
    let z = tensor(&files, "latents");
    let reference = tensor(&files, "sample");
    let shape = shape5(&z);
    let [_, _, t, h, w] = shape;
    let mut vae = ltx2();
    let (_, whole) = vae.decode_estimate(&Cpu, [t, h, w]);
    let (_, one) = vae.stream_estimate(&Cpu, 1, [h, w]);
    let (_, two) = vae.stream_estimate(&Cpu, 2, [h, w]);
    assert!(one < two && two < whole, "estimates: one latent frame {one}, two {two}, whole {whole}");
    let budget = MemoryBudget::Bytes(two);
    let tiling = Tiling::Auto { budget, tiles: TileSpec::DIFFUSERS };
    vae.decode_chunking = Chunking::Auto { budget };
    assert_eq!(vae.tile_plan(&Cpu, shape, tiling).unwrap(), None, "streaming fits: no tiles");
    assert_eq!(vae.decode_chunk_latents(&Cpu, [t, h, w]).unwrap(), Some(2));
    let (ours, _) = vae.decode_with(&Cpu, &z.data, shape, tiling, &Silent).unwrap();
    assert_close("tiny-ltx2.long.9x2x2 auto, streamed", &ours, &reference.data);
}

/// 8k + 1 frames only: anything else is refused with the nearest valid counts.
#[test]
fn ltx2_encode_refuses_a_bad_frame_count() {
    let video = vec![0.0; 3 * 12 * 32 * 32];
    let err = ltx2().encode(&Cpu, &video, [1, 3, 12, 32, 32], &Silent).unwrap_err().to_string();
    assert!(err.contains("12 frames") && err.contains("9 or 17"), "{err}");
}

/// Latents with the wrong channel count name the config's count (8 in the tiny model, 128 in
/// the release).
#[test]
fn ltx2_decode_refuses_wrong_channels() {
    let z = vec![0.0; 16 * 2 * 2 * 2];
    let err = ltx2().decode(&Cpu, &z, [1, 16, 2, 2, 2], &Silent).unwrap_err().to_string();
    assert!(err.contains("latents") && err.contains("(B, 8,") && err.contains("latent_channels"), "{err}");
}

/// The released config parses, with the factors the pipelines use (32×, 8×) and its 128 latent
/// channels; a timestep-conditioned decoder is refused by name.
#[test]
fn ltx2_released_config_and_unsupported_variants() {
    use sana::engine::vae::Ltx2Config;
    use sana::io::ConfigFile;
    let path = common::fixtures().join("configs").join("ltx2_vae.json");
    let config = Ltx2Config::from_file(&ConfigFile::open(&path).unwrap()).unwrap();
    assert_eq!((config.spatial_factor(), config.temporal_factor(), config.latent_channels), (32, 8, 128));
    let text = std::fs::read_to_string(&path).unwrap();
    let conditioned = text.replace("\"timestep_conditioning\": false", "\"timestep_conditioning\": true");
    assert_ne!(conditioned, text);
    let err = Ltx2Config::from_file(&ConfigFile::parse(&path, &conditioned).unwrap()).unwrap_err().to_string();
    assert!(err.contains("timestep_conditioning") && err.contains("not implement"), "{err}");
}

/// `sana run vae-decode | vae-encode` on `input` through the fixture folder `model`: (the process's
/// output, the tensors it wrote, if any). The temporary folder lives as long as the caller needs
/// the file.
fn run_cli_vae(
    op: &str,
    model: &str,
    input: &std::path::Path,
    extra: &[&str],
) -> (std::process::Output, Option<sana::io::TensorFiles>) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.safetensors");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sana"))
        .args(["run", op, "--model"])
        .arg(common::fixtures().join("vae").join(model))
        .arg("--inputs")
        .arg(input)
        .arg("--out")
        .arg(&out)
        .args(extra)
        .output()
        .unwrap();
    let files = out.exists().then(|| common::open(&out));
    (output, files)
}

/// The CLI's decode writes diffusers' `vae.decode(latents).sample` (Wan clamped, LTX-2 not), for
/// both autoencoders, a batch of two included.
#[test]
fn cli_run_vae_decode_matches_reference() {
    for (model, case, extra) in
        [("tiny-wan", "decode.3x4x6", &[][..]), ("tiny-ltx2", "decode.b2.1x2x2", &["--vae", "ltx2"][..])]
    {
        let name = format!("{model}.{case}");
        let (files, path) = fixture(&name);
        let (output, written) = run_cli_vae("vae-decode", model, &path, extra);
        assert!(output.status.success(), "{name}: {}", String::from_utf8_lossy(&output.stderr));
        let sample = tensor(&written.expect("an output file"), "sample");
        let reference = tensor(&files, "sample");
        assert_eq!(sample.shape, reference.shape, "{name}: output shape");
        assert_close(&format!("cli {name}"), &sample.data, &reference.data);
    }
}

/// The CLI's encode writes `latent_dist.parameters` as diffusers does and `latent_mean`, the
/// mean half of each sample's parameters.
#[test]
fn cli_run_vae_encode_matches_reference() {
    for (model, case, extra) in
        [("tiny-wan", "encode.5x32x48", &["--vae", "wan"][..]), ("tiny-ltx2", "encode.9x32x32", &[][..])]
    {
        let name = format!("{model}.{case}");
        let (files, path) = fixture(&name);
        let (output, written) = run_cli_vae("vae-encode", model, &path, extra);
        assert!(output.status.success(), "{name}: {}", String::from_utf8_lossy(&output.stderr));
        let written = written.expect("an output file");
        let params = tensor(&written, "latent_params");
        let reference = tensor(&files, "latent_params");
        assert_eq!(params.shape, reference.shape, "{name}: output shape");
        assert_close(&format!("cli {name} mean | logvar"), &params.data, &reference.data);
        let mean = tensor(&written, "latent_mean");
        let [b, c2, t, h, w] = shape5(&params);
        assert_eq!(mean.shape, vec![b, c2 / 2, t, h, w], "{name}: mean shape");
        let half = c2 / 2 * t * h * w;
        for s in 0..b {
            assert_eq!(&mean.data[s * half..][..half], &params.data[s * 2 * half..][..half], "{name}: sample {s}");
        }
    }
}

/// A folder holding the other autoencoder than --vae names, and an input file without the
/// tensor the op reads, are errors that say so (naming the VAEs, the tensor and the file), and
/// nothing is written.
#[test]
fn cli_run_vae_refuses_the_wrong_vae_and_a_missing_tensor() {
    let (_, decode_input) = fixture("tiny-wan.decode.1x4x6");
    let (output, written) = run_cli_vae("vae-decode", "tiny-wan", &decode_input, &["--vae", "ltx2"]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && written.is_none(), "{err}");
    assert!(err.contains("Wan2.1 VAE") && err.contains("LTX-2") && err.contains("tiny-wan"), "{err}");

    let (output, written) = run_cli_vae("vae-encode", "tiny-wan", &decode_input, &[]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && written.is_none(), "{err}");
    assert!(err.contains("video") && err.contains("tiny-wan.decode.1x4x6"), "{err}");
}
