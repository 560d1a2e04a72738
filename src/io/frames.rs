//! Image sequences for the CLI: EXR (scene-linear, f32) and PNG (display-referred sRGB, 8 or 16
//! bit), and the mapping between frames and the [−1, 1] video tensors the VAEs take and give.
//!
//! The models work on display-referred, sRGB-encoded frames (DESIGN.md §7). A PNG stores such
//! values directly; an EXR stores linear light, so writing one applies the sRGB EOTF and reading
//! one applies its inverse. Colour primaries are left as they are (Rec.709 / sRGB assumed).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One RGB frame, interleaved, display-referred (sRGB-encoded) values, nominally in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<f32>,
}

/// PNG bit depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PngDepth {
    Eight,
    Sixteen,
}

/// sRGB-encoded value → linear light (IEC 61966-2-1). Values outside [0, 1] extend the curve
/// symmetrically, so super-whites and negatives survive a round trip.
pub fn srgb_to_linear(v: f32) -> f32 {
    let a = v.abs();
    let l = if a <= 0.04045 { a / 12.92 } else { ((a + 0.055) / 1.055).powf(2.4) };
    l.copysign(v)
}

/// Linear light → sRGB-encoded value; the inverse of [`srgb_to_linear`].
pub fn linear_to_srgb(v: f32) -> f32 {
    let a = v.abs();
    let e = if a <= 0.003_130_8 { a * 12.92 } else { 1.055 * a.powf(1.0 / 2.4) - 0.055 };
    e.copysign(v)
}

/// A frame-numbered path pattern: `shot.%04d.exr` (printf style) or `shot.####.exr` (one `#` per
/// digit), as compositing applications write them.
#[derive(Clone, Debug)]
pub struct SequencePattern {
    prefix: String,
    digits: usize,
    suffix: String,
}

impl SequencePattern {
    pub fn parse(pattern: &str) -> Result<Self> {
        let bad = || Error::InputShape {
            name: "image sequence".into(),
            expected: "a frame-numbered path such as shot.%04d.exr or shot.####.png".into(),
            got: pattern.to_string(),
        };
        if let Some(start) = pattern.find('%') {
            let rest = &pattern[start + 1..];
            let end = rest.find('d').ok_or_else(bad)?;
            let digits = if end == 0 { 1 } else { rest[..end].trim_start_matches('0').parse().map_err(|_| bad())? };
            return Ok(SequencePattern { prefix: pattern[..start].into(), digits, suffix: rest[end + 1..].into() });
        }
        let start = pattern.find('#').ok_or_else(bad)?;
        let digits = pattern[start..].chars().take_while(|&c| c == '#').count();
        Ok(SequencePattern { prefix: pattern[..start].into(), digits, suffix: pattern[start + digits..].into() })
    }

    pub fn path(&self, frame: usize) -> PathBuf {
        PathBuf::from(format!("{}{:0width$}{}", self.prefix, frame, self.suffix, width = self.digits))
    }
}

fn extension(path: &Path) -> String {
    path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase()
}

fn image_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(path, std::io::Error::other(e.to_string()))
}

/// Writes one frame; the format follows the extension (`.exr`, `.png`).
pub fn write_frame(path: &Path, frame: &Frame, png_depth: PngDepth) -> Result<()> {
    let (w, h) = (frame.width, frame.height);
    match extension(path).as_str() {
        "exr" => {
            let px = |x: usize, y: usize| {
                let i = (y * w + x) * 3;
                (srgb_to_linear(frame.rgb[i]), srgb_to_linear(frame.rgb[i + 1]), srgb_to_linear(frame.rgb[i + 2]))
            };
            exr::prelude::write_rgb_file(path, w, h, px).map_err(|e| image_error(path, e))
        }
        "png" => {
            let (w32, h32) = (w as u32, h as u32);
            match png_depth {
                PngDepth::Eight => {
                    let data: Vec<u8> = frame.rgb.iter().map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect();
                    image::RgbImage::from_raw(w32, h32, data).map(|img| img.save(path))
                }
                PngDepth::Sixteen => {
                    let data: Vec<u16> =
                        frame.rgb.iter().map(|&v| (v.clamp(0.0, 1.0) * 65535.0).round() as u16).collect();
                    image::ImageBuffer::<image::Rgb<u16>, _>::from_raw(w32, h32, data).map(|img| img.save(path))
                }
            }
            .ok_or_else(|| image_error(path, format!("{w}x{h} frame holds {} values", frame.rgb.len())))?
            .map_err(|e| image_error(path, e))
        }
        other => Err(Error::InputShape {
            name: path.display().to_string(),
            expected: "an .exr or .png file name".into(),
            got: format!("extension {other:?}"),
        }),
    }
}

/// Reads one frame (RGB; alpha dropped; grey expanded), display-referred.
pub fn read_frame(path: &Path) -> Result<Frame> {
    if !path.is_file() {
        return Err(Error::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such frame")));
    }
    match extension(path).as_str() {
        "exr" => {
            let image = exr::prelude::read_first_rgba_layer_from_file(
                path,
                |size, _| (size.width(), vec![0.0f32; size.width() * size.height() * 3]),
                |(w, px): &mut (usize, Vec<f32>), pos, (r, g, b, _a): (f32, f32, f32, f32)| {
                    let i = (pos.y() * *w + pos.x()) * 3;
                    px[i] = linear_to_srgb(r);
                    px[i + 1] = linear_to_srgb(g);
                    px[i + 2] = linear_to_srgb(b);
                },
            )
            .map_err(|e| image_error(path, e))?;
            let size = image.layer_data.size;
            Ok(Frame { width: size.width(), height: size.height(), rgb: image.layer_data.channel_data.pixels.1 })
        }
        "png" => {
            let img = image::open(path).map_err(|e| image_error(path, e))?.into_rgb32f();
            Ok(Frame { width: img.width() as usize, height: img.height() as usize, rgb: img.into_raw() })
        }
        other => Err(Error::InputShape {
            name: path.display().to_string(),
            expected: "an .exr or .png file".into(),
            got: format!("extension {other:?}"),
        }),
    }
}

/// Frames `first..first + count` of a sequence; every frame must exist and share the first's size.
pub fn read_sequence(pattern: &SequencePattern, first: usize, count: usize) -> Result<Vec<Frame>> {
    let mut frames: Vec<Frame> = Vec::with_capacity(count);
    for n in first..first + count {
        let path = pattern.path(n);
        let frame = read_frame(&path)?;
        if let Some(f0) = frames.first() {
            if (frame.width, frame.height) != (f0.width, f0.height) {
                return Err(Error::InputShape {
                    name: path.display().to_string(),
                    expected: format!("{}x{} like the sequence's first frame", f0.width, f0.height),
                    got: format!("{}x{}", frame.width, frame.height),
                });
            }
        }
        frames.push(frame);
    }
    Ok(frames)
}

/// A video tensor (3, T, H, W) in [−1, 1] (a VAE decode) → frames, as the pipelines map it:
/// x/2 + 0.5 clamped to [0, 1].
pub fn frames_from_video(video: &[f32], [c, t, h, w]: [usize; 4]) -> Result<Vec<Frame>> {
    if c != 3 || video.len() != c * t * h * w {
        return Err(Error::InputShape {
            name: "video".into(),
            expected: "(3, T, H, W) values".into(),
            got: format!("({c}, {t}, {h}, {w}) with {} values", video.len()),
        });
    }
    Ok((0..t)
        .map(|f| {
            let mut rgb = Vec::with_capacity(h * w * 3);
            for p in 0..h * w {
                for ch in 0..3 {
                    rgb.push((video[((ch * t + f) * h * w) + p] * 0.5 + 0.5).clamp(0.0, 1.0));
                }
            }
            Frame { width: w, height: h, rgb }
        })
        .collect())
}

/// Frames → a video tensor (3, T, H, W) in [−1, 1] for a VAE encode. A NaN or infinite pixel is
/// an error naming the frame and pixel: it would poison the whole latent.
pub fn video_from_frames(frames: &[Frame], names: &[PathBuf]) -> Result<(Vec<f32>, [usize; 4])> {
    let Some(f0) = frames.first() else {
        return Err(Error::InputShape {
            name: "plate".into(),
            expected: "at least one frame".into(),
            got: "none".into(),
        });
    };
    let (t, h, w) = (frames.len(), f0.height, f0.width);
    let mut video = vec![0.0f32; 3 * t * h * w];
    for (f, frame) in frames.iter().enumerate() {
        if let Some(bad) = frame.rgb.iter().position(|v| !v.is_finite()) {
            let name = names.get(f).map(|p| p.display().to_string()).unwrap_or_else(|| format!("frame {f}"));
            return Err(Error::InputShape {
                name,
                expected: "finite pixel values".into(),
                got: format!("{} at pixel ({}, {}) channel {}", frame.rgb[bad], (bad / 3) % w, (bad / 3) / w, bad % 3),
            });
        }
        for p in 0..h * w {
            for ch in 0..3 {
                video[(ch * t + f) * h * w + p] = frame.rgb[p * 3 + ch] * 2.0 - 1.0;
            }
        }
    }
    Ok((video, [3, t, h, w]))
}
