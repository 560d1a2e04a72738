//! Video convolutions (the autoencoders, MODEL.md §3): a 3D convolution as an implicit GEMM over
//! one output row at a time (reading x nearest-upsampled where the conv asks for it).

use rayon::prelude::*;

use super::linear::{matmul, Mat, MatMut};
use crate::backend::{ConvDims, PadMode, Write};

/// Input index of output position `o`, tap `k` on one axis, or None where it reads padding zeros.
fn source_index(o: usize, k: usize, stride: usize, before: usize, size: usize, mode: PadMode) -> Option<usize> {
    let i = (o * stride + k) as isize - before as isize;
    if (0..size as isize).contains(&i) {
        return Some(i as usize);
    }
    match mode {
        PadMode::Zeros => None,
        // -1 → 1, size → size − 2 (the op wrapper keeps padding below the size)
        PadMode::Reflect => Some(if i < 0 { (-i) as usize } else { 2 * (size - 1) - i as usize }),
    }
}

/// out ← (or += with `write`) conv(x, w) + bias; `d.upsample` reads x nearest-upsampled in space.
pub fn conv3d(out: &mut [f32], x: &[f32], w: &[f32], bias: Option<&[f32]>, d: ConvDims, write: Write) {
    let [t_in, h_in, w_in] = d.input;
    let [_, h_grid, w_grid] = d.grid();
    let up = d.upsample;
    let [_, h_out, w_out] = d.output();
    let [kt, kh, kw] = d.kernel;
    let (c_in, c_out) = (d.c_in, d.c_out);
    let k_dim = d.taps() * c_in;
    // One output row (t', h') per task: its im2col block (W', taps·C_in) stays small at any size.
    out.par_chunks_mut(w_out * c_out).enumerate().for_each(|(row, out_row)| {
        let (to, ho) = (row / h_out, row % h_out);
        let mut cols = vec![0.0f32; w_out * k_dim];
        for (wo, col) in cols.chunks_mut(k_dim).enumerate() {
            for it in 0..kt {
                // time pads with zeros only (see PadMode)
                let Some(ti) = source_index(to, it, d.stride[0], d.pad_before[0], t_in, PadMode::Zeros) else {
                    continue;
                };
                for ih in 0..kh {
                    let Some(hi) = source_index(ho, ih, d.stride[1], d.pad_before[1], h_grid, d.spatial_pad) else {
                        continue;
                    };
                    let hi = hi / up;
                    for iw in 0..kw {
                        let Some(wi) = source_index(wo, iw, d.stride[2], d.pad_before[2], w_grid, d.spatial_pad) else {
                            continue;
                        };
                        let wi = wi / up;
                        let tap = (it * kh + ih) * kw + iw;
                        let src = ((ti * h_in + hi) * w_in + wi) * c_in;
                        col[tap * c_in..][..c_in].copy_from_slice(&x[src..src + c_in]);
                    }
                }
            }
        }
        // out_row (W', C_out) = cols (W', K) · wᵀ, w stored (C_out, K)
        matmul(
            MatMut { data: out_row, offset: 0, rs: c_out },
            Mat { data: &cols, offset: 0, rs: k_dim, cs: 1 },
            Mat { data: w, offset: 0, rs: 1, cs: k_dim },
            [w_out, c_out, k_dim],
            write,
        );
        if let Some(b) = bias {
            for px in out_row.chunks_mut(c_out) {
                px.iter_mut().zip(b).for_each(|(o, b)| *o += b);
            }
        }
    });
}
