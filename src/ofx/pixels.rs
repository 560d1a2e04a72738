//! Frames between the host and the model (DESIGN.md §7, Colourspace): hosts pass RGBA, usually
//! scene-linear; the models take and give display-referred sRGB-encoded RGB (`io::frames::Frame`).
//! Linear converts with the sRGB curves of `io::frames` (the ones the CLI's EXR sequences use);
//! sRGB passes values unchanged. Alpha is dropped on the way in and written as 1 (opaque).

use super::params::Colourspace;
use crate::io::frames::{linear_to_srgb, srgb_to_linear, Frame};

/// A model frame → host RGBA f32, top row first.
pub fn to_host(frame: &Frame, colourspace: Colourspace) -> Vec<f32> {
    let mut rgba = Vec::with_capacity(frame.width * frame.height * 4);
    for px in frame.rgb.chunks_exact(3) {
        for &v in px {
            rgba.push(match colourspace {
                Colourspace::Linear => srgb_to_linear(v),
                Colourspace::Srgb => v,
            });
        }
        rgba.push(1.0);
    }
    rgba
}

/// Host RGBA f32 (top row first, `width × height`) → a model frame.
pub fn from_host(rgba: &[f32], width: usize, height: usize, colourspace: Colourspace) -> Frame {
    let mut rgb = Vec::with_capacity(width * height * 3);
    for px in rgba.chunks_exact(4).take(width * height) {
        for &v in &px[..3] {
            rgb.push(match colourspace {
                Colourspace::Linear => linear_to_srgb(v),
                Colourspace::Srgb => v,
            });
        }
    }
    Frame { width, height, rgb }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_round_trip_and_srgb_pass_through() {
        let rgb: Vec<f32> = (0..2 * 3 * 3).map(|i| (i as f32 * 0.37).fract()).collect();
        let frame = Frame { width: 3, height: 2, rgb };
        let host = to_host(&frame, Colourspace::Srgb);
        assert_eq!(host.len(), 24);
        assert!(host.chunks(4).all(|p| p[3] == 1.0));
        assert_eq!(from_host(&host, 3, 2, Colourspace::Srgb), frame);
        let linear = to_host(&frame, Colourspace::Linear);
        assert!((linear[4] - srgb_to_linear(frame.rgb[3])).abs() < 1e-7);
        let back = from_host(&linear, 3, 2, Colourspace::Linear);
        for (a, b) in back.rgb.iter().zip(&frame.rgb) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
