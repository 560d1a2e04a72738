//! ReLU linear attention with 3D RoPE (MODEL.md §2.4–2.5; diffusers 0.42.1
//! `SanaLinearAttnProcessor3_0`).
//!
//! qkv (B, N, 3·D): per token q | k | v, each head-major (channel = head·d + c), q and k before
//! their across-head RMSNorm. out (B, N, D). Per head:
//!   φq = ReLU(RMSNorm(q)), φk = ReLU(RMSNorm(k)); q̃ = RoPE(φq), k̃ = RoPE(φk)
//!   out_i = (Σ_j v_j k̃_jᵀ) q̃_i / (φq_i · Σ_j φk_j + eps)
//! The denominator uses the un-rotated features, as the reference does.

use rayon::prelude::*;

use super::linear::{matmul, Mat, MatMut};
use super::norm::inv_rms;
use crate::backend::{AttnDims, Write};

#[allow(clippy::too_many_arguments)] // mirrors Backend::relu_linear_attention
pub fn relu_linear_attention(
    out: &mut [f32],
    qkv: &[f32],
    norm_q: &[f32],
    norm_k: &[f32],
    rope_cos: &[f32],
    rope_sin: &[f32],
    dims: AttnDims,
    norm_eps: f32,
    attn_eps: f32,
) {
    let AttnDims { b: batch, n, heads, head_dim: hd, .. } = dims;
    let d = heads * hd;
    let rows = batch * n;

    // φ features (un-rotated) and their rotations, each (B, N, D).
    let mut q_feat = vec![0.0f32; rows * d];
    let mut k_feat = vec![0.0f32; rows * d];
    let mut q_rot = vec![0.0f32; rows * d];
    let mut k_rot = vec![0.0f32; rows * d];
    let feature = |dst: &mut [f32], rot: &mut [f32], src: &[f32], w: &[f32], token: usize| {
        let r = inv_rms(src, norm_eps);
        for c in 0..d {
            dst[c] = (src[c] * r * w[c]).max(0.0);
        }
        rope_row(rot, dst, &rope_cos[token * hd / 2..][..hd / 2], &rope_sin[token * hd / 2..][..hd / 2], heads, hd);
    };
    q_feat
        .par_chunks_mut(d)
        .zip(q_rot.par_chunks_mut(d))
        .zip(k_feat.par_chunks_mut(d).zip(k_rot.par_chunks_mut(d)))
        .enumerate()
        .for_each(|(row, ((qf, qr), (kf, kr)))| {
            let src = &qkv[row * 3 * d..][..3 * d];
            feature(qf, qr, &src[..d], norm_q, row % n);
            feature(kf, kr, &src[d..2 * d], norm_k, row % n);
        });

    let mut state = vec![0.0f32; hd * hd];
    for b in 0..batch {
        for h in 0..heads {
            let col = h * hd;
            // state (d, d) = Vᵀ K̃: state[c1][c2] = Σ_j v[j, c1] · k̃[j, c2]
            let vt = Mat { data: qkv, offset: b * n * 3 * d + 2 * d + col, rs: 1, cs: 3 * d };
            let kr = Mat { data: &k_rot, offset: b * n * d + col, rs: d, cs: 1 };
            matmul(MatMut { data: &mut state, offset: 0, rs: hd }, vt, kr, [hd, hd, n], Write::Overwrite);
            // out[i, c1] = Σ_c2 q̃[i, c2] · state[c1][c2]
            let qr = Mat { data: &q_rot, offset: b * n * d + col, rs: d, cs: 1 };
            let st = Mat { data: &state, offset: 0, rs: 1, cs: hd };
            matmul(MatMut { data: out, offset: b * n * d + col, rs: d }, qr, st, [n, hd, hd], Write::Overwrite);

            let mut k_sum = vec![0.0f64; hd];
            for j in 0..n {
                let kf = &k_feat[(b * n + j) * d + col..][..hd];
                k_sum.iter_mut().zip(kf).for_each(|(s, &k)| *s += k as f64);
            }
            out[b * n * d..][..n * d].par_chunks_mut(d).enumerate().for_each(|(i, o)| {
                let qf = &q_feat[(b * n + i) * d + col..][..hd];
                let den: f64 = qf.iter().zip(&k_sum).map(|(&q, &k)| q as f64 * k).sum();
                let z = (1.0 / (den + attn_eps as f64)) as f32;
                o[col..col + hd].iter_mut().for_each(|v| *v *= z);
            });
        }
    }
}

/// Interleaved-pair rotation of every head of one token (MODEL.md §2.5):
/// out[2i] = x[2i]·cos_i − x[2i+1]·sin_i, out[2i+1] = x[2i]·sin_i + x[2i+1]·cos_i.
fn rope_row(out: &mut [f32], x: &[f32], cos: &[f32], sin: &[f32], heads: usize, hd: usize) {
    for h in 0..heads {
        for i in 0..hd / 2 {
            let (a, b) = (x[h * hd + 2 * i], x[h * hd + 2 * i + 1]);
            out[h * hd + 2 * i] = a * cos[i] - b * sin[i];
            out[h * hd + 2 * i + 1] = a * sin[i] + b * cos[i];
        }
    }
}
