//! Image sequences: the sRGB transfer functions, frame-number patterns, EXR and PNG round trips,
//! and the frame ↔ video-tensor mapping with its bad-input errors.

use std::path::PathBuf;

use sana::engine::weights::splitmix64;
use sana::io::frames::{
    frames_from_video, linear_to_srgb, read_frame, read_sequence, srgb_to_linear, video_from_frames, write_frame,
    Frame, PngDepth, SequencePattern,
};

fn random_frame(w: usize, h: usize, max: f32, seed: u64) -> Frame {
    let mut s = seed;
    let rgb = (0..w * h * 3).map(|_| (splitmix64(&mut s) >> 40) as f32 / (1u64 << 24) as f32 * max).collect();
    Frame { width: w, height: h, rgb }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn srgb_transfer_matches_the_standard_and_inverts() {
    assert!((srgb_to_linear(0.5) - 0.214_041_14).abs() < 1e-6);
    assert!((linear_to_srgb(0.18) - 0.461_356_1).abs() < 1e-6);
    assert_eq!(srgb_to_linear(0.0), 0.0);
    assert!((srgb_to_linear(1.0) - 1.0).abs() < 1e-6);
    for i in -100..=300 {
        let v = i as f32 / 200.0; // −0.5 … 1.5: negatives and super-whites survive
        assert!((linear_to_srgb(srgb_to_linear(v)) - v).abs() <= 2e-6 * v.abs().max(1.0), "{v}");
    }
}

#[test]
fn sequence_patterns() {
    assert_eq!(SequencePattern::parse("out/shot.%04d.exr").unwrap().path(7), PathBuf::from("out/shot.0007.exr"));
    assert_eq!(SequencePattern::parse("a.####.png").unwrap().path(12), PathBuf::from("a.0012.png"));
    assert_eq!(SequencePattern::parse("f%d.png").unwrap().path(1234), PathBuf::from("f1234.png"));
    let e = SequencePattern::parse("shot.exr").unwrap_err().to_string();
    assert!(e.contains("shot.%04d.exr") && e.contains("shot.exr"), "{e}");
}

#[test]
fn exr_round_trip_keeps_values_including_super_whites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.exr");
    let frame = random_frame(13, 7, 1.5, 1);
    write_frame(&path, &frame, PngDepth::Sixteen).unwrap();
    let back = read_frame(&path).unwrap();
    assert_eq!((back.width, back.height), (13, 7));
    assert!(max_diff(&back.rgb, &frame.rgb) < 1e-5, "{}", max_diff(&back.rgb, &frame.rgb));
}

#[test]
fn png_round_trips_within_their_quantisation() {
    let dir = tempfile::tempdir().unwrap();
    let frame = random_frame(9, 11, 1.0, 2);
    for (depth, step) in [(PngDepth::Sixteen, 1.0 / 65535.0), (PngDepth::Eight, 1.0 / 255.0)] {
        let path = dir.path().join(format!("f{step}.png"));
        write_frame(&path, &frame, depth).unwrap();
        let back = read_frame(&path).unwrap();
        assert!(max_diff(&back.rgb, &frame.rgb) <= step * 0.5 + 1e-6, "{depth:?}");
    }
}

#[test]
fn sequences_name_the_missing_or_mismatched_frame() {
    let dir = tempfile::tempdir().unwrap();
    let pattern = SequencePattern::parse(dir.path().join("s.%03d.png").to_str().unwrap()).unwrap();
    write_frame(&pattern.path(1), &random_frame(4, 4, 1.0, 3), PngDepth::Eight).unwrap();
    write_frame(&pattern.path(2), &random_frame(5, 4, 1.0, 4), PngDepth::Eight).unwrap();
    assert_eq!(read_sequence(&pattern, 1, 1).unwrap().len(), 1);
    let e = read_sequence(&pattern, 1, 2).unwrap_err().to_string();
    assert!(e.contains("s.002.png") && e.contains("4x4") && e.contains("5x4"), "{e}");
    let e = read_sequence(&pattern, 3, 1).unwrap_err().to_string();
    assert!(e.contains("s.003.png") && e.contains("no such frame"), "{e}");
    let e = write_frame(&dir.path().join("f.jpg"), &random_frame(2, 2, 1.0, 5), PngDepth::Eight).unwrap_err();
    assert!(e.to_string().contains(".exr or .png"), "{e}");
}

#[test]
fn video_tensor_mapping_and_nan_plates() {
    let frames: Vec<Frame> = (0..3).map(|i| random_frame(6, 5, 1.0, 10 + i)).collect();
    let (video, shape) = video_from_frames(&frames, &[]).unwrap();
    assert_eq!(shape, [3, 3, 5, 6]);
    assert!(video.iter().all(|v| (-1.0..=1.0).contains(v)));
    let back = frames_from_video(&video, shape).unwrap();
    for (a, b) in back.iter().zip(&frames) {
        assert!(max_diff(&a.rgb, &b.rgb) < 1e-6);
    }
    let mut bad = frames.clone();
    bad[1].rgb[3 * (2 * 6 + 4) + 1] = f32::NAN;
    let names: Vec<PathBuf> = (0..3).map(|i| PathBuf::from(format!("plate.{i:04}.exr"))).collect();
    let e = video_from_frames(&bad, &names).unwrap_err().to_string();
    assert!(e.contains("plate.0001.exr") && e.contains("pixel (4, 2) channel 1"), "{e}");
    assert!(frames_from_video(&video, [4, 3, 5, 6]).is_err());
}
