//! Channels-last clips (T, H, W, C) on a backend, and the temporal state that lets an autoencoder
//! run a long clip a few frames at a time (MODEL.md §3.2: diffusers' `feat_cache`).
//!
//! Model code here never touches the backend's buffers directly: frames move with the
//! shape-checked `copy_frames`, so both backends run the same streaming logic.

use rayon::prelude::*;

use crate::backend::{copy_frames, copy_table_range, Backend, Tensor};
use crate::error::Result;

/// `a` followed by `b` along time (both (T, H, W, C)); `a` absent = `b` itself, copied.
pub fn concat_frames<B: Backend>(be: &B, a: Option<&Tensor<B>>, b: &Tensor<B>) -> Result<Tensor<B>> {
    let before = a.map_or(0, |a| a.shape()[0]);
    let mut shape = b.shape().to_vec();
    shape[0] += before;
    let mut out = Tensor::empty(be, &shape)?;
    if let Some(a) = a {
        copy_frames(be, &mut out, 0, a, 0, before)?;
    }
    copy_frames(be, &mut out, before, b, 0, b.shape()[0])?;
    Ok(out)
}

/// The last `n` frames of x (all of them when it has fewer).
pub fn last_frames<B: Backend>(be: &B, x: &Tensor<B>, n: usize) -> Result<Tensor<B>> {
    frames(be, x, x.shape()[0].saturating_sub(n), x.shape()[0].min(n))
}

/// Frames `first..first + count` of x.
pub fn frames<B: Backend>(be: &B, x: &Tensor<B>, first: usize, count: usize) -> Result<Tensor<B>> {
    let mut shape = x.shape().to_vec();
    shape[0] = count;
    let mut out = Tensor::empty(be, &shape)?;
    copy_frames(be, &mut out, 0, x, first, count)?;
    Ok(out)
}

/// What one temporal layer remembers between chunks: whether it has emitted yet, the last input
/// frames it needs as context, and (a residual around a branch that lags its input) the f32 frames
/// of the stream its branch has not yet caught up with.
pub struct TemporalSlot<B: Backend> {
    pub seen: bool,
    pub frames: Option<Tensor<B>>,
    pub stream: Option<F32Frames<B>>,
}

/// The temporal state of one streamed encode or decode: one slot per temporal layer, handed out in
/// call order; `start_chunk` rewinds the cursor, so the i-th layer a chunk calls always gets the
/// i-th slot (every layer is called on every chunk, whether or not it has frames to take).
pub struct TemporalCaches<B: Backend> {
    slots: Vec<TemporalSlot<B>>,
    next: usize,
    last: bool,
}

impl<B: Backend> Default for TemporalCaches<B> {
    fn default() -> Self {
        TemporalCaches { slots: Vec::new(), next: 0, last: false }
    }
}

impl<B: Backend> TemporalCaches<B> {
    /// The next chunk begins; `last`: it ends the clip (a non-causal layer then pads its end).
    pub fn start_chunk(&mut self, last: bool) {
        self.next = 0;
        self.last = last;
    }

    pub fn last_chunk(&self) -> bool {
        self.last
    }

    pub fn next_slot(&mut self) -> &mut TemporalSlot<B> {
        if self.next == self.slots.len() {
            self.slots.push(TemporalSlot { seen: false, frames: None, stream: None });
        }
        self.next += 1;
        &mut self.slots[self.next - 1]
    }
}

/// Frames of an f32 residual stream: a channels-last clip of `shape` (T, H, W, C) in a table.
pub struct F32Frames<B: Backend> {
    pub table: B::Table,
    pub shape: Vec<usize>,
}

impl<B: Backend> F32Frames<B> {
    fn frame_len(&self) -> usize {
        self.shape[1..].iter().product()
    }

    /// `a` followed by `b` along time; either absent = the other, uncopied.
    pub fn concat(be: &B, a: Option<Self>, b: Option<Self>) -> Result<Option<Self>> {
        let (a, b) = match (a, b) {
            (Some(a), Some(b)) => (a, b),
            (a, b) => return Ok(a.or(b)),
        };
        let mut shape = b.shape.clone();
        shape[0] += a.shape[0];
        let mut table = be.alloc_table(shape.iter().product())?;
        let split = a.shape[0] * a.frame_len();
        copy_table_range(be, &mut table, 0, &a.table, 0, split)?;
        copy_table_range(be, &mut table, split, &b.table, 0, b.shape[0] * b.frame_len())?;
        Ok(Some(F32Frames { table, shape }))
    }

    /// (the first `n` frames, the rest): a part without frames is `None`, and a part that is the
    /// whole is not copied.
    pub fn split(be: &B, x: Option<Self>, n: usize) -> Result<(Option<Self>, Option<Self>)> {
        let Some(x) = x else { return Ok((None, None)) };
        let t = x.shape[0];
        if n == 0 {
            return Ok((None, Some(x)));
        }
        if n >= t {
            return Ok((Some(x), None));
        }
        let frame = x.frame_len();
        let part = |first: usize, count: usize| -> Result<Self> {
            let mut shape = x.shape.clone();
            shape[0] = count;
            let mut table = be.alloc_table(count * frame)?;
            copy_table_range(be, &mut table, 0, &x.table, first * frame, count * frame)?;
            Ok(F32Frames { table, shape })
        };
        Ok((Some(part(0, n)?), Some(part(n, t - n)?)))
    }
}

/// (B, C, T, H, W) host layout → channels-last (T, H, W, C) of sample `b`. In parallel over
/// pixels: a 704×1280×81 clip is 219 M values, which one thread took a large part of a second to
/// reorder (a whole decode on the GPU takes about as long).
pub fn sample_to_channels_last(x: &[f32], shape: [usize; 5], b: usize) -> Vec<f32> {
    let [_, c, t, h, w] = shape;
    let mut out = vec![0.0; c * t * h * w];
    channels_last_piece(x, shape, b, 0, &mut out);
    out
}

/// Values `offset..offset + out.len()` of sample `b`'s channels-last layout (`offset` a whole
/// number of pixels), read from the (B, C, T, H, W) host layout.
fn channels_last_piece(x: &[f32], [_, c, t, h, w]: [usize; 5], b: usize, offset: usize, out: &mut [f32]) {
    if c == 0 {
        return; // no values (and a zero chunk size would panic in par_chunks_mut)
    }
    let plane = t * h * w;
    let sample = &x[b * c * plane..][..c * plane];
    let first = offset / c;
    out.par_chunks_mut(c * PIXELS_PER_TASK).enumerate().for_each(|(task, block)| {
        for (i, px) in block.chunks_mut(c).enumerate() {
            let p = first + task * PIXELS_PER_TASK + i;
            for (ch, v) in px.iter_mut().enumerate() {
                *v = sample[ch * plane + p];
            }
        }
    });
}

/// Sample `b` of a (B, C, T, H, W) host video as a channels-last (T, H, W, C) tensor, reordered
/// frame by frame into the backend's upload pieces (no full-size host copy in between).
pub fn upload_channels_last<B: Backend>(be: &B, x: &[f32], shape: [usize; 5], b: usize) -> Result<Tensor<B>> {
    let [_, c, t, h, w] = shape;
    Tensor::from_pieces(be, &[t, h, w, c], h * w * c, &mut |offset, piece| {
        channels_last_piece(x, shape, b, offset, piece);
        Ok(())
    })
}

/// Channels-last (T, H, W, C) frames `src` into sample `b`'s block of a (B, C, T_total, H, W)
/// host video from frame `t0`, piece by piece as the backend downloads them.
pub fn download_channels_last<B: Backend>(
    be: &B,
    src: &Tensor<B>,
    dst: &mut [f32],
    dst_shape: [usize; 5],
    b: usize,
    t0: usize,
) -> Result<()> {
    let [_, c, _, h, w] = dst_shape;
    let frame = (h * w * c).max(1);
    src.to_host_pieces(be, frame, &mut |offset, values| {
        write_channels_last(dst, dst_shape, b, t0 + offset / frame, values);
        Ok(())
    })
}

/// Channels-last (T, H, W, C) frames appended to sample `b`'s (C, T_total, H, W) block of a
/// (B, C, T_total, H, W) host video, from frame `t0`. In parallel over destination rows (a
/// piece may be a single frame of 3 planes).
pub fn write_channels_last(dst: &mut [f32], [_, c, t_total, h, w]: [usize; 5], b: usize, t0: usize, src: &[f32]) {
    let frame = h * w;
    if frame == 0 || c == 0 {
        return; // nothing to place (and a zero chunk size would panic in par_chunks_mut)
    }
    let frames = src.len() / (frame * c);
    let sample = &mut dst[b * c * t_total * frame..][..c * t_total * frame];
    sample.par_chunks_mut(frame).enumerate().for_each(|(i, plane)| {
        let (ch, t) = (i / t_total, i % t_total);
        if t < t0 || t >= t0 + frames {
            return;
        }
        let pixels = &src[(t - t0) * frame * c..][..frame * c];
        plane.par_chunks_mut(w).zip(pixels.par_chunks(w * c)).for_each(|(row, src_row)| {
            for (v, px) in row.iter_mut().zip(src_row.chunks(c)) {
                *v = px[ch];
            }
        });
    });
}

/// Pixels one rayon task reorders (small enough to spread a latent over the cores, large enough
/// that the task overhead does not show).
const PIXELS_PER_TASK: usize = 1 << 14;

#[cfg(test)]
mod tests {
    use super::*;

    /// A (B, C, T, H, W) video whose every value is distinct.
    fn video(shape: [usize; 5]) -> Vec<f32> {
        (0..shape.iter().product::<usize>()).map(|i| i as f32).collect()
    }

    #[test]
    fn channels_last_pieces_match_the_whole_reorder() {
        let shape = [2, 3, 4, 5, 7];
        let x = video(shape);
        let [_, c, t, h, w] = shape;
        for b in 0..2 {
            let whole = sample_to_channels_last(&x, shape, b);
            // by hand: value (t, y, x, ch) of sample b
            let at = |ti: usize, y: usize, xi: usize, ch: usize| x[(((b * c + ch) * t + ti) * h + y) * w + xi];
            assert_eq!(whole[((2 * h + 3) * w + 6) * c + 1], at(2, 3, 6, 1));
            // pieces of 4 pixels (not a whole frame), as an upload stage might cut them
            let mut pieces = vec![f32::NAN; whole.len()];
            for (k, piece) in pieces.chunks_mut(4 * c).enumerate() {
                channels_last_piece(&x, shape, b, k * 4 * c, piece);
            }
            assert_eq!(pieces, whole);
        }
    }

    #[test]
    fn write_channels_last_frame_by_frame_matches_the_planar_layout() {
        let shape = [2, 3, 4, 5, 7];
        let x = video(shape);
        let [_, c, _, h, w] = shape;
        let mut out = vec![f32::NAN; x.len()];
        for b in 0..2 {
            let cl = sample_to_channels_last(&x, shape, b);
            // frames 0, then 1..3, then 3: the pieces a download might deliver
            for (t0, frames) in [(0, 1), (1, 2), (3, 1)] {
                write_channels_last(&mut out, shape, b, t0, &cl[t0 * h * w * c..][..frames * h * w * c]);
            }
        }
        assert_eq!(out, x);
    }
}
