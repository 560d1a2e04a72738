//! Host images: an RAII guard that releases what `clipGetImage` handed out, checked in release
//! builds (depth, components, bounds, row bytes), and a small pixel trait over the three depths
//! hosts offer (float preferred; some hosts only byte or only 16-bit).

use super::effect::Clip;
use super::error::{OfxError, OfxResult};
use super::props::PropSet;
use super::suites::Suites;
use super::sys::*;

/// One channel value of a host image.
pub trait Pixel: Copy {
    fn from_f32(v: f32) -> Self;
    fn to_f32(self) -> f32;
}

impl Pixel for f32 {
    fn from_f32(v: f32) -> Self {
        v
    }
    fn to_f32(self) -> f32 {
        self
    }
}

impl Pixel for u16 {
    fn from_f32(v: f32) -> Self {
        (v.clamp(0.0, 1.0) * 65535.0).round() as u16
    }
    fn to_f32(self) -> f32 {
        self as f32 / 65535.0
    }
}

impl Pixel for u8 {
    fn from_f32(v: f32) -> Self {
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    }
    fn to_f32(self) -> f32 {
        self as f32 / 255.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    Byte,
    Short,
    Float,
}

/// An image the host lent us for the current action; released on drop.
pub struct HostImage<'s> {
    suites: &'s Suites,
    props: PropSet,
    pub data: *mut u8,
    /// x1, y1, x2, y2 in pixels (y up, as OFX has it)
    pub bounds: [i32; 4],
    /// may be negative (bottom-up hosts)
    pub row_bytes: isize,
    pub depth: Depth,
    /// 4 (RGBA) or 3 (RGB)
    pub channels: usize,
}

impl<'s> HostImage<'s> {
    /// `clipGetImage` at `time`; a failed fetch names the clip and the time.
    pub fn fetch(suites: &'s Suites, clip: &Clip, time: f64) -> OfxResult<Self> {
        let f = suites
            .effect
            .clipGetImage
            .ok_or(OfxError::MissingFunction { suite: "image effect", function: "clipGetImage" })?;
        let mut handle: OfxPropertySetHandle = std::ptr::null_mut();
        // SAFETY: clip handle of this instance, NULL region = the whole image, out-pointer live.
        let status = unsafe { f(clip.handle, time, std::ptr::null(), &mut handle) };
        let name = clip.name.to_string_lossy();
        if status != kOfxStatOK || handle.is_null() {
            return Err(OfxError::Clip {
                clip: name.into_owned(),
                problem: format!("no image at time {time} (status {status})"),
            });
        }
        // from here on the guard releases the image, also on the errors below
        let mut image = HostImage {
            suites,
            props: PropSet::new(handle, suites.prop),
            data: std::ptr::null_mut(),
            bounds: [0; 4],
            row_bytes: 0,
            depth: Depth::Float,
            channels: 4,
        };
        let props = image.props;
        image.data = props.get_pointer(kOfxImagePropData, 0)? as *mut u8;
        image.bounds = props.get_ints::<4>(kOfxImagePropBounds)?;
        image.row_bytes = props.get_int(kOfxImagePropRowBytes, 0)? as isize;
        let depth = props.get_string(kOfxImageEffectPropPixelDepth, 0)?;
        image.depth = match depth.as_bytes() {
            b"OfxBitDepthFloat" => Depth::Float,
            b"OfxBitDepthShort" => Depth::Short,
            b"OfxBitDepthByte" => Depth::Byte,
            _ => {
                return Err(OfxError::Clip {
                    clip: name.into_owned(),
                    problem: format!("pixel depth `{depth}`: expected float, 16-bit or 8-bit"),
                })
            }
        };
        let components = props.get_string(kOfxImageEffectPropComponents, 0)?;
        image.channels = match components.as_bytes() {
            b"OfxImageComponentRGBA" => 4,
            b"OfxImageComponentRGB" => 3,
            _ => {
                return Err(OfxError::Clip {
                    clip: name.into_owned(),
                    problem: format!("components `{components}`: expected RGBA or RGB"),
                })
            }
        };
        let [x1, y1, x2, y2] = image.bounds;
        let bytes = (x2 - x1).max(0) as isize * image.channels as isize * image.depth.bytes() as isize;
        if image.data.is_null() || x2 < x1 || y2 < y1 || image.row_bytes.abs() < bytes {
            return Err(OfxError::Clip {
                clip: name.into_owned(),
                problem: format!(
                    "image at time {time} is unusable: data {:?}, bounds {:?}, row bytes {} (need at least {bytes})",
                    image.data, image.bounds, image.row_bytes
                ),
            });
        }
        Ok(image)
    }

    /// Writes an RGBA frame (top row first, `width × height`, anchored at the origin) into the
    /// image; pixels of the image outside the frame become transparent black.
    pub fn write_rgba(&mut self, frame: &[f32], width: usize, height: usize) {
        match self.depth {
            Depth::Float => self.write::<f32>(frame, width, height),
            Depth::Short => self.write::<u16>(frame, width, height),
            Depth::Byte => self.write::<u8>(frame, width, height),
        }
    }

    fn write<P: Pixel>(&mut self, frame: &[f32], width: usize, height: usize) {
        let [x1, y1, x2, y2] = self.bounds;
        let ch = self.channels;
        for y in y1..y2 {
            // SAFETY: y is inside the bounds the host gave, and the row holds (x2 − x1)·ch values
            // of P (checked against row bytes in `fetch`); the host keeps the buffer alive until
            // we release it.
            let row = unsafe {
                let start = self.data.offset((y - y1) as isize * self.row_bytes) as *mut P;
                std::slice::from_raw_parts_mut(start, (x2 - x1) as usize * ch)
            };
            // OFX images are y-up; frames are stored top row first
            let src_row = (y >= 0 && (y as usize) < height).then(|| height - 1 - y as usize);
            for (i, x) in (x1..x2).enumerate() {
                let px = &mut row[i * ch..(i + 1) * ch];
                match src_row.filter(|_| x >= 0 && (x as usize) < width) {
                    Some(r) => {
                        let s = &frame[(r * width + x as usize) * 4..][..4];
                        for c in 0..ch {
                            px[c] = P::from_f32(s[c]);
                        }
                    }
                    None => px.fill(P::from_f32(0.0)),
                }
            }
        }
    }

    /// The whole image as RGBA f32, top row first (RGB images get alpha 1): (width, height, pixels).
    pub fn read_rgba(&self) -> (usize, usize, Vec<f32>) {
        match self.depth {
            Depth::Float => self.read::<f32>(),
            Depth::Short => self.read::<u16>(),
            Depth::Byte => self.read::<u8>(),
        }
    }

    fn read<P: Pixel>(&self) -> (usize, usize, Vec<f32>) {
        let [x1, y1, x2, y2] = self.bounds;
        let (w, h, ch) = ((x2 - x1) as usize, (y2 - y1) as usize, self.channels);
        let mut rgba = vec![1.0f32; w * h * 4];
        for y in y1..y2 {
            // SAFETY: as in `write`: y inside the bounds, the row holds (x2 − x1)·ch values of P.
            let row = unsafe {
                let start = self.data.offset((y - y1) as isize * self.row_bytes) as *const P;
                std::slice::from_raw_parts(start, w * ch)
            };
            // OFX images are y-up; frames are stored top row first
            let out = &mut rgba[(h - 1 - (y - y1) as usize) * w * 4..][..w * 4];
            for (px, dst) in row.chunks_exact(ch).zip(out.chunks_exact_mut(4)) {
                for c in 0..ch {
                    dst[c] = px[c].to_f32();
                }
            }
        }
        (w, h, rgba)
    }

    /// Fills the whole image with transparent black (frames outside the generated range).
    pub fn clear(&mut self) {
        self.write_rgba(&[], 0, 0);
    }
}

impl Depth {
    pub fn bytes(self) -> usize {
        match self {
            Depth::Byte => 1,
            Depth::Short => 2,
            Depth::Float => 4,
        }
    }
}

impl Drop for HostImage<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.suites.effect.clipReleaseImage {
            // SAFETY: the handle came from clipGetImage and is released exactly once, here.
            unsafe { f(self.props.handle()) };
        }
    }
}
