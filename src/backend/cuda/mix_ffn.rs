//! Launchers for the Mix-FFN (kernels/mix_ffn.cu; CPU twin backend/cpu/mix_ffn.rs): the
//! depthwise 3×3 + GLU kernel, and the temporal (3,1) conv as one GEMM with K = 3C over the
//! three frame-shifted copies of its input laid side by side.

use cudarc::driver::{CudaSlice, LaunchConfig};
use half::bf16;

use super::blas::Gemm;
use super::error::{CudaError, DriverContext};
use super::kernels::grid_stride;
use super::params::{DepthwiseGluParams, TemporalConcatParams};
use super::Cuda;
use crate::backend::GridDims;

/// kernels/mix_ffn.cu kChannels: value channels per block of depthwise3x3_glu_bf16 (with as many
/// gate channels); its fast path needs F to be a multiple.
const CHANNELS_PER_BLOCK: usize = 32;
/// kernels/mix_ffn.cu kGroups: threads per run of columns (one per channel pair).
const GROUPS: usize = 16;
/// kernels/mix_ffn.cu kRun: output columns per thread.
const RUN: usize = 4;
/// kernels/mix_ffn.cu kMaxRuns: runs per block (≤ 256 threads, its launch bound).
const MAX_RUNS: usize = 16;
/// kernels/mix_ffn.cu kStages and kPixelBytes: the ring of input rows in shared memory.
const STAGES: usize = 4;
const PIXEL_BYTES: usize = 144;

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
        if frames * d.h * d.w * d.c == 0 {
            return Ok(());
        }
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
        // The fast kernel copies 16-byte pieces of 32 channels, stores bf16 pairs, and indexes
        // within a frame in 32 bits.
        let fast = d.c.is_multiple_of(CHANNELS_PER_BLOCK)
            && p.x.is_multiple_of(16)
            && (p.out | p.w | p.bias).is_multiple_of(4)
            && d.h * d.w * 2 * d.c < 1 << 31
            && frames <= 65535;
        if !fast {
            let cfg = grid_stride(frames * d.h * d.w * d.c, 256);
            return self.kernels.launch(&self.stream, "depthwise3x3_glu_any_bf16", cfg, &p);
        }
        // Column tiles of ≤ MAX_RUNS runs, as equal as runs allow: one tile up to W = 64.
        let runs_total = d.w.div_ceil(RUN);
        let tiles = runs_total.div_ceil(MAX_RUNS);
        let runs = runs_total.div_ceil(tiles);
        let smem = STAGES * (RUN * runs + 2) * PIXEL_BYTES + 2 * (runs + 1) * GROUPS * 16; // ≤ 46 KB: no opt-in
        let cfg = LaunchConfig {
            grid_dim: ((d.c / CHANNELS_PER_BLOCK) as u32, tiles as u32, frames as u32),
            block_dim: ((GROUPS * runs) as u32, 1, 1),
            shared_mem_bytes: smem as u32,
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
