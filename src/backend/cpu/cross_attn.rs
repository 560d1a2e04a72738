//! Softmax cross-attention to the caption (MODEL.md §2.6; diffusers `SanaAttnProcessor2_0`).
//! q (B, N, D), k and v (B, L, D), head-major; key_bias (B, L) is added to every score
//! (diffusers turns the 0/1 caption mask into 0 / −10000). Softmax in f64.

use rayon::prelude::*;

use crate::backend::AttnDims;

pub fn cross_attention(out: &mut [f32], q: &[f32], k: &[f32], v: &[f32], key_bias: &[f32], dims: AttnDims) {
    let AttnDims { n, l, heads, head_dim: hd, .. } = dims;
    let d = heads * hd;
    let scale = 1.0 / (hd as f64).sqrt();
    out.par_chunks_mut(d).enumerate().for_each(|(row, o)| {
        let b = row / n;
        let q_row = &q[row * d..][..d];
        let bias = &key_bias[b * l..][..l];
        let mut p = vec![0.0f64; l];
        for h in 0..heads {
            let qh = &q_row[h * hd..][..hd];
            for (j, p) in p.iter_mut().enumerate() {
                let kh = &k[(b * l + j) * d + h * hd..][..hd];
                let dot: f64 = qh.iter().zip(kh).map(|(&a, &b)| a as f64 * b as f64).sum();
                *p = dot * scale + bias[j] as f64;
            }
            let max = p.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            p.iter_mut().for_each(|p| *p = (*p - max).exp());
            let total: f64 = p.iter().sum();
            for c in 0..hd {
                let acc: f64 = p.iter().enumerate().map(|(j, &p)| p * v[(b * l + j) * d + h * hd + c] as f64).sum();
                o[h * hd + c] = (acc / total) as f32;
            }
        }
    });
}
