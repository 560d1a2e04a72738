//! The sampler's elementwise ops in f32 (CUDA twin kernels/sampler.cu). Shapes are checked by
//! the callers in backend/ops.rs.

use rayon::prelude::*;

/// Values per rayon task (a 720p latent pair is 2.5 M values).
const MIN_VALUES_PER_TASK: usize = 1 << 15;

pub fn table_to_tensor(out: &mut [f32], x: &[f32]) {
    out.par_chunks_mut(x.len().max(1)).for_each(|copy| copy.copy_from_slice(&x[..copy.len()]));
}

pub fn guided_velocity(out: &mut [f32], model_out: &[f32], scale: f32) {
    let n = out.len();
    if model_out.len() == n {
        out.copy_from_slice(model_out);
        return;
    }
    let (uncond, cond) = model_out.split_at(n);
    out.par_iter_mut()
        .with_min_len(MIN_VALUES_PER_TASK)
        .zip(uncond.par_iter().zip(cond))
        .for_each(|(o, (&u, &c))| *o = u + scale * (c - u));
}

pub fn lincomb(out: &mut [f32], keep: f32, terms: &[(f32, &[f32])]) {
    out.par_iter_mut().with_min_len(MIN_VALUES_PER_TASK).enumerate().for_each(|(i, o)| {
        let mut v = if keep == 0.0 { 0.0 } else { keep * *o };
        for &(c, t) in terms {
            v += c * t[i];
        }
        *o = v;
    });
}
