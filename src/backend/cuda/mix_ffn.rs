//! Launchers for the Mix-FFN (kernels/mix_ffn.cu; CPU twin backend/cpu/mix_ffn.rs): the
//! depthwise 3×3 + GLU kernel, and the temporal (3,1) conv as three accumulated, row-shifted
//! GEMMs over the contiguous frames each tap reaches.

use cudarc::driver::{CudaSlice, LaunchConfig};
use half::bf16;

use super::blas::Gemm;
use super::error::{CudaError, DriverContext};
use super::kernels::grid_stride;
use super::params::{DepthwiseGluParams, TemporalConcatParams};
use super::Cuda;
use crate::backend::GridDims;

/// kernels/mix_ffn.cu kPairsPerBlock: one thread per channel pair.
const PAIRS_PER_BLOCK: usize = 128;
/// kernels/mix_ffn.cu kRowsPerThread.
const ROWS_PER_THREAD: usize = 2;

impl Cuda {
    pub(super) fn launch_depthwise3x3_glu(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        bias: &CudaSlice<bf16>,
        d: GridDims,
    ) -> Result<(), CudaError> {
        let frames = d.b * d.t;
        let p = DepthwiseGluParams {
            out: self.ptr(out),
            x: self.ptr(x),
            w: self.ptr(w),
            bias: self.ptr(bias),
            frames: frames as i32,
            h: d.h as i32,
            w_: d.w as i32,
            f: d.c as i32,
        };
        let cfg = LaunchConfig {
            grid_dim: ((d.c / 2).div_ceil(PAIRS_PER_BLOCK) as u32, d.h.div_ceil(ROWS_PER_THREAD) as u32, frames as u32),
            block_dim: (PAIRS_PER_BLOCK as u32, 1, 1),
            shared_mem_bytes: 0,
        };
        self.kernels.launch(&self.stream, "depthwise3x3_glu_bf16", cfg, &p)
    }

    /// One product with K = 3C over the three shifted copies of x laid side by side, with the
    /// residual x as the product's addend: a single bf16 rounding of the output.
    pub(super) fn launch_temporal_conv3_residual(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        d: GridDims,
    ) -> Result<(), CudaError> {
        let rows = d.b * d.t * d.h * d.w;
        // SAFETY: every element is written by temporal_concat_bf16 before the product reads it.
        let shifted =
            unsafe { self.stream.alloc::<bf16>(rows * 3 * d.c) }.during("allocating temporal conv scratch")?;
        let p = TemporalConcatParams {
            out: self.ptr(&shifted),
            x: self.ptr(x),
            b: d.b as i32,
            t: d.t as i32,
            hw: (d.h * d.w) as i32,
            c: d.c as i32,
        };
        let per_thread = if d.c.is_multiple_of(8) { 8 } else { 1 }; // kernels/mix_ffn.cu copies 16 bytes when it can
        self.kernels.launch(&self.stream, "temporal_concat_bf16", grid_stride(rows * 3 * d.c / per_thread, 256), &p)?;
        let mut g = Gemm::linear(rows, d.c, 3 * d.c, p.out, self.ptr(w), self.ptr(out));
        g.accumulate = true;
        g.addend = Some(p.x);
        self.blas.gemm(&g)
    }
}
