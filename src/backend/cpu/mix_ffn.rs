//! The Mix-FFN's spatial depthwise conv + GLU and its temporal conv (MODEL.md §2.7; diffusers
//! `GLUMBTempConv`). Activations are channels-last: (B, T, H, W, C).

use rayon::prelude::*;

use super::linear::{matmul, silu, Mat, MatMut};
use crate::backend::{GridDims, Write};

/// u = SiLU(x); y = dwconv3x3(u) + bias over 2F channels (zero padding 1, per frame);
/// out = y[.., :F] · SiLU(y[.., F:]). x (B·T, H, W, 2F), w (9, 2F) tap-major, out (B·T, H, W, F).
pub fn depthwise3x3_glu(out: &mut [f32], x: &[f32], w: &[f32], bias: &[f32], d: GridDims) {
    let GridDims { h, w: wd, c: f, .. } = d;
    let c2 = 2 * f;
    // One output pixel (frame, y, x) per chunk.
    out.par_chunks_mut(f).enumerate().for_each(|(pixel, o)| {
        let (frame, y, xx) = (pixel / (h * wd), (pixel / wd) % h, pixel % wd);
        let conv = |c: usize| -> f32 {
            let mut acc = bias[c];
            for ky in 0..3 {
                let yy = y as isize + ky as isize - 1;
                if yy < 0 || yy >= h as isize {
                    continue;
                }
                for kx in 0..3 {
                    let xs = xx as isize + kx as isize - 1;
                    if xs < 0 || xs >= wd as isize {
                        continue;
                    }
                    let src = ((frame * h + yy as usize) * wd + xs as usize) * c2 + c;
                    acc += silu(x[src]) * w[(ky * 3 + kx) * c2 + c];
                }
            }
            acc
        };
        for (c, o) in o.iter_mut().enumerate() {
            *o = conv(c) * silu(conv(f + c));
        }
    });
}

/// out[b, t] = x[b, t] + Σ_{k=0..2} W_k · x[b, t + k − 1] (zero outside 0..T), with
/// W_k = w[:, k·C..(k+1)·C] of the (C_out, 3·C_in) weight. x, out (B, T, H·W, C).
/// Each tap is one matrix product over the contiguous run of frames it reaches.
pub fn temporal_conv3_residual(out: &mut [f32], x: &[f32], w: &[f32], d: GridDims) {
    let GridDims { b: batch, t, h, w: wd, c } = d;
    let frame = h * wd * c;
    out.copy_from_slice(x);
    for b in 0..batch {
        for k in 0..3usize {
            // output frames t_out with 0 <= t_out + k - 1 < T
            let first = 1usize.saturating_sub(k);
            let end = (t + 1).saturating_sub(k).min(t);
            if end <= first {
                continue;
            }
            let rows = (end - first) * h * wd;
            let src = Mat { data: x, offset: (b * t + first + k - 1) * frame, rs: c, cs: 1 };
            // W_kᵀ (C_in, C_out): element (i, o) = w[o·3C + k·C + i]
            let wk = Mat { data: w, offset: k * c, rs: 1, cs: 3 * c };
            matmul(
                MatMut { data: out, offset: (b * t + first) * frame, rs: c },
                src,
                wk,
                [rows, c, c],
                Write::Accumulate,
            );
        }
    }
}
