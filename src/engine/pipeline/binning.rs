//! Resolution binning (MODEL.md §5.1; diffusers 0.42.1 `SanaVideoPipeline` with
//! `use_resolution_binning`): a request is generated at the bin of the nearest aspect ratio for
//! the transformer's `sample_size`, then resized (bilinear, half-pixel centres) and centre-cropped
//! back to the requested size.

use crate::error::{Error, Result};

/// (ratio h/w, height, width), in diffusers' dictionary order (ties go to the first).
const BINS_480: [(f64, usize, usize); 11] = [
    (0.5, 448, 896),
    (0.57, 480, 832),
    (0.68, 528, 768),
    (0.78, 560, 720),
    (1.0, 624, 624),
    (1.13, 672, 592),
    (1.29, 720, 560),
    (1.46, 768, 528),
    (1.67, 816, 496),
    (1.75, 832, 480),
    (2.0, 896, 448),
];

const BINS_720: [(f64, usize, usize); 11] = [
    (0.5, 672, 1344),
    (0.57, 704, 1280),
    (0.68, 800, 1152),
    (0.78, 832, 1088),
    (1.0, 960, 960),
    (1.13, 1024, 896),
    (1.29, 1088, 832),
    (1.46, 1152, 800),
    (1.67, 1248, 736),
    (1.75, 1280, 704),
    (2.0, 1344, 672),
];

/// The (height, width) the transformer generates for a requested size: the bin of the nearest
/// aspect ratio. `sample_size` 30 selects the 480p bins, 22 the 720p bins.
pub fn binned_resolution(height: usize, width: usize, sample_size: usize) -> Result<(usize, usize)> {
    let bins = match sample_size {
        30 => &BINS_480,
        22 => &BINS_720,
        other => {
            return Err(Error::InputShape {
                name: "transformer sample_size".into(),
                expected: "30 (480p bins) or 22 (720p bins)".into(),
                got: other.to_string(),
            })
        }
    };
    if height == 0 || width == 0 {
        return Err(Error::InputShape {
            name: "resolution".into(),
            expected: "non-zero height and width".into(),
            got: format!("{height}x{width}"),
        });
    }
    let ratio = height as f64 / width as f64;
    let mut best = bins[0];
    for &bin in bins.iter().skip(1) {
        if (bin.0 - ratio).abs() < (best.0 - ratio).abs() {
            best = bin;
        }
    }
    Ok((best.1, best.2))
}

/// Resizes every (H, W) plane of a video (B, C, T, H, W) — `planes` = B·C·T — so it covers
/// (new_h, new_w) — scaled by the larger ratio, sizes truncated — with bilinear interpolation
/// (PyTorch `interpolate`, `align_corners=False`), then crops the centre. diffusers
/// `VideoProcessor.resize_and_crop_tensor`.
pub fn resize_and_center_crop(
    frames: &[f32],
    planes: usize,
    [h, w]: [usize; 2],
    new_h: usize,
    new_w: usize,
) -> Vec<f32> {
    if h == new_h && w == new_w {
        return frames.to_vec();
    }
    let ratio = (new_h as f64 / h as f64).max(new_w as f64 / w as f64);
    let (rh, rw) = ((h as f64 * ratio) as usize, (w as f64 * ratio) as usize);
    let (y0, x0) = ((rh - new_h) / 2, (rw - new_w) / 2);
    // source coordinate of an output pixel: (dst + 0.5)·in/out − 0.5, clamped at 0
    let taps = |out_len: usize, in_len: usize| -> Vec<(usize, usize, f32)> {
        let scale = in_len as f32 / out_len as f32;
        (0..out_len)
            .map(|d| {
                let src = ((d as f32 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (src.floor() as usize).min(in_len - 1);
                let i1 = (i0 + 1).min(in_len - 1);
                (i0, i1, src - i0 as f32)
            })
            .collect()
    };
    let (ty, tx) = (taps(rh, h), taps(rw, w));
    let mut out = Vec::with_capacity(planes * new_h * new_w);
    for plane in frames.chunks_exact(h * w).take(planes) {
        for &(a, b, fy) in &ty[y0..y0 + new_h] {
            for &(l, r, fx) in &tx[x0..x0 + new_w] {
                let top = plane[a * w + l] * (1.0 - fx) + plane[a * w + r] * fx;
                let bottom = plane[b * w + l] * (1.0 - fx) + plane[b * w + r] * fx;
                out.push(top * (1.0 - fy) + bottom * fy);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_follow_the_nearest_ratio() {
        assert_eq!(binned_resolution(480, 832, 30).unwrap(), (480, 832));
        assert_eq!(binned_resolution(704, 1280, 22).unwrap(), (704, 1280));
        assert_eq!(binned_resolution(1080, 1920, 22).unwrap(), (704, 1280)); // 0.5625 → 0.57
        assert_eq!(binned_resolution(1000, 1000, 30).unwrap(), (624, 624));
        assert_eq!(binned_resolution(1920, 1080, 22).unwrap(), (1280, 704)); // 1.78 → 1.75
        assert!(binned_resolution(480, 832, 32).is_err());
    }
}
