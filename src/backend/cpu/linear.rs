//! Matrix products and activations (MODEL.md §2.2–2.7: every Linear and 1×1 conv).

use gemm::Parallelism;
use rayon::prelude::*;

use crate::backend::{Activation, LinearDims, Write};

/// A strided matrix operand: element (r, c) at `data[offset + r·rs + c·cs]`.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub rs: usize,
    pub cs: usize,
}

/// The output of a product: element (r, c) at `data[offset + r·rs + c]` (rows contiguous).
pub struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub offset: usize,
    pub rs: usize,
}

/// dst (m, n) ← [dst +] lhs (m, k) · rhs (k, n).
/// Bounds are checked here, once, so the unsafe call below only ever touches these slices.
pub fn matmul(dst: MatMut, lhs: Mat, rhs: Mat, [m, n, k]: [usize; 3], write: Write) {
    let MatMut { data: dst, offset: dst_offset, rs: dst_rs } = dst;
    if m == 0 || n == 0 {
        return;
    }
    let last = |a: &Mat, rows: usize, cols: usize| a.offset + (rows.max(1) - 1) * a.rs + (cols.max(1) - 1) * a.cs;
    assert!(dst_offset + (m - 1) * dst_rs + n <= dst.len(), "matmul: dst out of bounds");
    assert!(k == 0 || last(&lhs, m, k) < lhs.data.len(), "matmul: lhs out of bounds");
    assert!(k == 0 || last(&rhs, k, n) < rhs.data.len(), "matmul: rhs out of bounds");
    let read_dst = write == Write::Accumulate;
    if k == 0 {
        if !read_dst {
            for r in 0..m {
                dst[dst_offset + r * dst_rs..][..n].fill(0.0);
            }
        }
        return;
    }
    let threads = rayon::current_num_threads();
    let par = if m * n * k > 1 << 18 && threads > 1 { Parallelism::Rayon(threads) } else { Parallelism::None };
    // SAFETY: the asserts above keep every element gemm addresses (offset + r·rs + c·cs for r < m,
    // c < n or k) inside the three slices; dst is borrowed mutably and does not alias lhs or rhs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(dst_offset),
            1,
            dst_rs as isize,
            read_dst,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// out (rows, n) ← act(x (rows, k) · wᵀ + bias), w (n, k) row-major (PyTorch Linear layout).
pub fn linear(
    out: &mut [f32],
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    d: LinearDims,
    act: Activation,
    write: Write,
) {
    let LinearDims { rows, k, n } = d;
    let x_mat = Mat { data: x, offset: 0, rs: k, cs: 1 };
    // wᵀ (k, n): element (i, j) = w[j·k + i]
    let wt = Mat { data: w, offset: 0, rs: 1, cs: k };
    matmul(MatMut { data: out, offset: 0, rs: n }, x_mat, wt, [rows, n, k], write);
    if bias.is_none() && act == Activation::Identity {
        return;
    }
    out.par_chunks_mut(n).for_each(|row| {
        if let Some(b) = bias {
            row.iter_mut().zip(b).for_each(|(o, b)| *o += b);
        }
        row.iter_mut().for_each(|o| *o = apply(act, *o));
    });
}

pub fn activation(out: &mut [f32], x: &[f32], act: Activation) {
    out.par_iter_mut().zip(x.par_iter()).for_each(|(o, &v)| *o = apply(act, v));
}

#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

#[inline]
pub fn apply(act: Activation, x: f32) -> f32 {
    match act {
        Activation::Identity => x,
        Activation::Silu => silu(x),
        Activation::GeluTanh => {
            const SQRT_2_OVER_PI: f32 = 0.797_884_6;
            0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)).tanh())
        }
    }
}
