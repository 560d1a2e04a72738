//! Memory bounds of the LTX-2 autoencoder: streaming in time (`Chunking`, the encoder's and the
//! decoder's), and the decoder's spatial tiles.
//!
//! Spatially tiled decode, as diffusers 0.42.1 `AutoencoderKLLTX2Video.tiled_decode` (after
//! `enable_tiling`): the latent is cut into overlapping tiles of `tile_sample_min_*` / 32 latent
//! pixels every `tile_sample_stride_*` / 32, each tile decoded alone, and each tile's first
//! `min − stride` sample rows and columns blended linearly with the tile above and the tile to the
//! left, in diffusers' order and in place (a tile's blended edges are what the next tile blends
//! with); of every tile the first `stride` rows and columns are kept, concatenated, and cropped to
//! the clip. Only space is tiled: diffusers' `_temporal_tiled_decode` is reached only through
//! `use_framewise_decoding`, which `enable_tiling` does not set.
//!
//! When to tile (`Tiling::Auto`): when the whole-clip decode's activations, estimated from the
//! latent shape and the decoder's widths, exceed a memory budget (the backend's available memory,
//! or `DEFAULT_BUDGET` where it cannot say), or when its largest tensor would pass 2³¹ elements
//! (where diffusers fails at 2K: MODEL.md §12.9).

use crate::error::{Error, Result};

/// diffusers' `tile_sample_*` attributes, in sample (output) pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileSpec {
    pub min_height: usize,
    pub min_width: usize,
    pub stride_height: usize,
    pub stride_width: usize,
}

impl TileSpec {
    /// `AutoencoderKLLTX2Video`'s constructor defaults (512-pixel tiles every 448: 64-pixel
    /// blends). The config does not store tile sizes.
    pub const DIFFUSERS: TileSpec = TileSpec { min_height: 512, min_width: 512, stride_height: 448, stride_width: 448 };
}

impl Default for TileSpec {
    fn default() -> Self {
        TileSpec::DIFFUSERS
    }
}

/// What `Tiling::Auto` compares the whole-clip decode's estimated activation bytes with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryBudget {
    /// `AVAILABLE_FRACTION` of the backend's available memory, or `DEFAULT_BUDGET` where the
    /// backend cannot say.
    Available,
    Bytes(usize),
}

impl MemoryBudget {
    /// The budget in bytes, `available` being the backend's available memory where it can say.
    pub fn bytes(self, available: Option<usize>) -> usize {
        match self {
            MemoryBudget::Bytes(b) => b,
            MemoryBudget::Available => available.map_or(DEFAULT_BUDGET, |m| (m as f64 * AVAILABLE_FRACTION) as usize),
        }
    }
}

/// How an LTX-2 decode treats large clips.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tiling {
    /// The whole clip at once, whatever its size.
    Off,
    /// diffusers' `enable_tiling(...)` with these tiles: tiled whenever the latent is larger than
    /// one tile in height or width (diffusers' test), else whole.
    Tiles(TileSpec),
    /// Whole when the estimate fits `budget`, else as `Tiles(tiles)` (the stride narrowed by
    /// one latent pixel at a time where the grid would end in a tile too thin for reflect padding).
    Auto { budget: MemoryBudget, tiles: TileSpec },
}

impl Default for Tiling {
    fn default() -> Self {
        Tiling::Auto { budget: MemoryBudget::Available, tiles: TileSpec::DIFFUSERS }
    }
}

/// How an LTX-2 encode or decode runs long clips: streamed in time exactly, each conv's context
/// carried from the previous chunk (`blocks::Conv::forward_in`; the decoder's centered convs lag
/// their input by a frame), so the chunks' outputs are the whole clip's. The encoder takes the
/// first frame, then chunks of `Frames` video frames; the decoder chunks of `Frames` / 8 latent
/// frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunking {
    /// The whole clip at once, whatever its length.
    Off,
    /// This many video frames at a time (a multiple of the temporal factor, 8; the encoder's
    /// first frame alone before them).
    Frames(usize),
    /// Whole when the estimate (`ACTIVATION_FACTOR` × the largest time-padded tensor) fits
    /// `budget`, else the longest chunks that fit (at least one latent frame's).
    Auto { budget: MemoryBudget },
}

impl Default for Chunking {
    fn default() -> Self {
        Chunking::Auto { budget: MemoryBudget::Available }
    }
}

/// The frames per chunk `chunking` gives an encode of `frames` (1 + 8k) frames whose widest
/// level holds `frame_bytes` per frame (activations of one frame at the first level, before
/// `ACTIVATION_FACTOR`), or `None` for the whole clip. `available`: the backend's available
/// memory where it can say (see [`MemoryBudget::bytes`]).
pub fn chunk_frames(
    chunking: Chunking,
    frames: usize,
    temporal_factor: usize,
    frame_bytes: usize,
    available: Option<usize>,
) -> Result<Option<usize>> {
    let n = match chunking {
        Chunking::Off => return Ok(None),
        Chunking::Frames(n) if n == 0 || !n.is_multiple_of(temporal_factor) => {
            return Err(Error::InputShape {
                name: "encode chunk frames".into(),
                expected: format!("a positive multiple of the encoder's temporal factor {temporal_factor}"),
                got: n.to_string(),
            })
        }
        Chunking::Frames(n) => n,
        Chunking::Auto { budget } => {
            let available = budget.bytes(available);
            // the conv inputs are time-padded by 2 frames
            let per_frame = frame_bytes.saturating_mul(ACTIVATION_FACTOR).max(1);
            if (frames + 2).saturating_mul(per_frame) <= available {
                return Ok(None);
            }
            let fit = (available / per_frame).saturating_sub(2) / temporal_factor * temporal_factor;
            fit.max(temporal_factor)
        }
    };
    Ok(Some(n))
}

/// The budget where the backend cannot report its memory.
pub const DEFAULT_BUDGET: usize = 16 << 30;
/// Of the available memory, the share a decode may plan for (the rest: the pipeline's other
/// buffers, allocator fragmentation).
pub const AVAILABLE_FRACTION: f64 = 0.8;
/// Peak activation bytes over the largest activation tensor's bytes. Measured: the released
/// decoder at 704×1280×81 peaked at 8.06 GiB on CUDA bf16 (BENCHMARKS.md), 2.3 GiB of it weights,
/// against a largest tensor of 1.11 GiB (83 × 176 × 320 × 128, the padded input of the
/// full-resolution convs): 5.2×; 6 leaves a margin.
pub const ACTIVATION_FACTOR: usize = 6;

/// A tile grid over the latent: (start, length) in latent pixels per tile row and column, and
/// the spec (sample pixels) whose blends and crops apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TilePlan {
    pub rows: Vec<(usize, usize)>,
    pub cols: Vec<(usize, usize)>,
    pub spec: TileSpec,
}

/// diffusers' `range(0, n, stride)` with `z[i : i + min]`.
fn axis(n: usize, min: usize, stride: usize) -> Vec<(usize, usize)> {
    (0..n).step_by(stride).map(|i| (i, min.min(n - i))).collect()
}

/// The grid of `spec` over an (h, w) latent, or `None` when diffusers would decode it whole
/// (no larger than one tile). `thinnest`: the smallest tile the decoder's padding takes.
pub fn plan(spec: TileSpec, h: usize, w: usize, factor: usize, thinnest: usize) -> Result<Option<TilePlan>> {
    let lat = |px: usize| px / factor;
    let (min_h, min_w, stride_h, stride_w) =
        (lat(spec.min_height), lat(spec.min_width), lat(spec.stride_height), lat(spec.stride_width));
    if min_h == 0 || min_w == 0 || stride_h == 0 || stride_w == 0 {
        return Err(Error::InputShape {
            name: "tile sizes".into(),
            expected: format!("tile sizes and strides of at least {factor} pixels (one latent pixel)"),
            got: format!("{spec:?}"),
        });
    }
    if w <= min_w && h <= min_h {
        return Ok(None);
    }
    let plan = TilePlan { rows: axis(h, min_h, stride_h), cols: axis(w, min_w, stride_w), spec };
    for (what, tiles) in [("tall", &plan.rows), ("wide", &plan.cols)] {
        if let Some(&(start, len)) = tiles.iter().find(|t| t.1 < thinnest) {
            return Err(Error::InputShape {
                name: "tile sizes".into(),
                expected: format!(
                    "a tile grid whose tiles are at least {thinnest} latent pixels {what} (the decoder pads by \
                     reflection; diffusers fails the same way): choose another stride"
                ),
                got: format!("{spec:?} over a {h}×{w} latent leaves a tile at {start} of {len}"),
            });
        }
    }
    Ok(Some(plan))
}

/// `plan`, with each stride narrowed by one latent pixel at a time while its axis would end in
/// a too-thin tile (`Tiling::Auto`).
pub fn fitted_plan(spec: TileSpec, h: usize, w: usize, factor: usize, thinnest: usize) -> Result<Option<TilePlan>> {
    let fit = |n: usize, min: usize, mut stride: usize| {
        let (min, mut lat) = (min / factor, stride / factor);
        while lat > 1 && axis(n, min, lat).iter().any(|t| t.1 < thinnest) {
            lat -= 1;
            stride = lat * factor;
        }
        stride
    };
    let spec = TileSpec {
        stride_height: fit(h, spec.min_height, spec.stride_height),
        stride_width: fit(w, spec.min_width, spec.stride_width),
        ..spec
    };
    plan(spec, h, w, factor, thinnest)
}

/// One decoded tile on the host: (frames, h, w, channels), channels last.
pub struct Tile {
    pub data: Vec<f32>,
    pub frames: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

/// diffusers' weights for blend row / column `y` of `extent`: (1 − y/e, y/e), in f64 then f32 as
/// PyTorch scales an f32 tensor by a Python float.
fn weights(y: usize, extent: usize) -> (f32, f32) {
    let r = y as f64 / extent as f64;
    ((1.0 - r) as f32, r as f32)
}

/// `blend_v`: b's first rows ← a's last rows · (1 − y/e) + b's · y/e, e = min(a.h, b.h, extent).
pub fn blend_v(a: &Tile, b: &mut Tile, extent: usize) {
    let e = a.h.min(b.h).min(extent);
    let row = b.w * b.c; // a and b share a tile column: the same width
    for f in 0..b.frames {
        for y in 0..e {
            let (wa, wb) = weights(y, e);
            let src = (f * a.h + a.h - e + y) * row;
            let dst = (f * b.h + y) * row;
            for (o, i) in b.data[dst..dst + row].iter_mut().zip(&a.data[src..src + row]) {
                *o = *i * wa + *o * wb;
            }
        }
    }
}

/// `blend_h`: b's first columns ← a's last columns · (1 − x/e) + b's · x/e, e = min(a.w, b.w, extent).
pub fn blend_h(a: &Tile, b: &mut Tile, extent: usize) {
    let e = a.w.min(b.w).min(extent);
    let c = b.c;
    for f in 0..b.frames {
        for y in 0..b.h {
            // a and b share a tile row: the same height
            let (ra, rb) = ((f * a.h + y) * a.w, (f * b.h + y) * b.w);
            for x in 0..e {
                let (wa, wb) = weights(x, e);
                let (src, dst) = ((ra + a.w - e + x) * c, (rb + x) * c);
                for k in 0..c {
                    b.data[dst + k] = a.data[src + k] * wa + b.data[dst + k] * wb;
                }
            }
        }
    }
}

/// Writes `tile[:, :rows, :cols]` at (y0, x0) of sample `b` of `out` (B, C, F, H, W), clipped to
/// H × W (diffusers' final crop).
pub fn place(
    out: &mut [f32],
    [_, c, f, h, w]: [usize; 5],
    b: usize,
    tile: &Tile,
    (y0, x0): (usize, usize),
    (rows, cols): (usize, usize),
) {
    let rows = rows.min(tile.h).min(h.saturating_sub(y0));
    let cols = cols.min(tile.w).min(w.saturating_sub(x0));
    for k in 0..c {
        for t in 0..f {
            let plane = ((b * c + k) * f + t) * h * w;
            for y in 0..rows {
                let src = ((t * tile.h + y) * tile.w) * tile.c + k;
                let dst = plane + (y0 + y) * w + x0;
                for x in 0..cols {
                    out[dst + x] = tile.data[src + x * tile.c];
                }
            }
        }
    }
}

/// The (h, w) latent window of a channels-last (t, H, W, c) sample.
pub fn window(z: &[f32], [t, h, w, c]: [usize; 4], (y0, rows): (usize, usize), (x0, cols): (usize, usize)) -> Vec<f32> {
    debug_assert!(y0 + rows <= h && x0 + cols <= w);
    let mut out = Vec::with_capacity(t * rows * cols * c);
    for f in 0..t {
        for y in y0..y0 + rows {
            let start = ((f * h + y) * w + x0) * c;
            out.extend_from_slice(&z[start..start + cols * c]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_follows_diffusers_ranges() {
        // the 2K refine latent (44 × 80) under the defaults: 16-pixel tiles every 14
        let p = plan(TileSpec::DIFFUSERS, 44, 80, 32, 2).unwrap().unwrap();
        assert_eq!(p.rows, vec![(0, 16), (14, 16), (28, 16), (42, 2)]);
        assert_eq!(p.cols.len(), 6);
        assert_eq!(p.cols[5], (70, 10));
        // no larger than a tile: whole
        assert_eq!(plan(TileSpec::DIFFUSERS, 16, 16, 32, 2).unwrap(), None);
    }

    #[test]
    fn thin_edge_tiles_are_refused_or_fitted() {
        // 43 = 3·14 + 1: the last tile would be one latent pixel tall
        let err = plan(TileSpec::DIFFUSERS, 43, 20, 32, 2).unwrap_err().to_string();
        assert!(err.contains("reflection") && err.contains("at 42 of 1"), "{err}");
        let p = fitted_plan(TileSpec::DIFFUSERS, 43, 20, 32, 2).unwrap().unwrap();
        assert_eq!(p.spec.stride_height, 13 * 32);
        assert!(p.rows.iter().all(|r| r.1 >= 2) && p.rows.last().map(|r| r.0 + r.1) == Some(43));
        assert_eq!(p.spec.stride_width, 448);
    }

    #[test]
    fn blends_match_diffusers_formula() {
        let tile = |v: f32, h, w| Tile { data: vec![v; 2 * h * w], frames: 1, h, w, c: 2 };
        let a = tile(1.0, 4, 3);
        let mut b = tile(0.0, 4, 3);
        blend_v(&a, &mut b, 2);
        // rows 0 and 1 take 1 − y/2 of a: 1, 0.5; the rest stays
        assert_eq!(&b.data[..6], &[1.0; 6]);
        assert_eq!(&b.data[6..12], &[0.5; 6]);
        assert!(b.data[12..].iter().all(|&x| x == 0.0));
        let mut b = tile(0.0, 4, 3);
        blend_h(&a, &mut b, 8); // e = min(3, 3, 8) = 3: 1, 2/3, 1/3
        assert_eq!(&b.data[..2], &[1.0; 2]);
        assert!((b.data[2] - 2.0 / 3.0).abs() < 1e-7 && (b.data[4] - 1.0 / 3.0).abs() < 1e-7);
    }
}
