//! Launchers for the Mix-FFN (kernels/mix_ffn.cu; CPU twin backend/cpu/mix_ffn.rs): the
//! depthwise 3×3 + GLU kernel, and the temporal (3,1) conv as three accumulated, row-shifted
//! GEMMs over the contiguous frames each tap reaches.

use cudarc::driver::{CudaSlice, LaunchConfig};
use half::bf16;

use super::blas::Gemm;
use super::error::{CudaError, DriverContext};
use super::params::DepthwiseGluParams;
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

    pub(super) fn launch_temporal_conv3_residual(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        d: GridDims,
    ) -> Result<(), CudaError> {
        self.stream.memcpy_dtod(x, out).during("temporal conv residual copy")?;
        let frame = d.h * d.w * d.c; // elements per frame
        let (x0, w0, o0) = (self.ptr(x), self.ptr(w), self.ptr(out));
        for b in 0..d.b {
            for k in 0..3usize {
                // output frames t with 0 <= t + k - 1 < T
                let first = 1usize.saturating_sub(k);
                let end = (d.t + 1).saturating_sub(k).min(d.t);
                if end <= first {
                    continue;
                }
                let rows = (end - first) * d.h * d.w;
                let src = x0 + (((b * d.t + first + k - 1) * frame) * 2) as u64;
                let dst = o0 + (((b * d.t + first) * frame) * 2) as u64;
                let mut g = Gemm::linear(rows, d.c, d.c, src, w0 + (k * d.c * d.c * 2) as u64, dst);
                g.accumulate = true;
                self.blas.gemm(&g)?;
            }
        }
        Ok(())
    }
}
