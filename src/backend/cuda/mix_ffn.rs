//! Launchers for the Mix-FFN (kernels/mix_ffn.cu; CPU twin backend/cpu/mix_ffn.rs): the
//! depthwise 3×3 + GLU kernel, and conv_point + the temporal (3,1) conv as two GEMMs, the second
//! with K = 3C over the three frame-shifted copies of the first's output laid side by side.

use cudarc::driver::{CudaSlice, LaunchConfig};
use half::bf16;

use super::blas::Gemm;
use super::error::{CudaError, DriverContext};
use super::kernels::grid_stride;
use super::params::{DepthwiseGluParams, DevPtr, TemporalShiftParams};
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
/// kernels/mix_ffn.cu kShiftLanes, kShiftRows: temporal_shift_bf16's block, threads per token row
/// × rows.
const SHIFT_LANES: u32 = 64;
const SHIFT_ROWS: usize = 4;

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

    /// z = glu · pᵀ written by its product straight into the middle third of the temporal conv's
    /// operand [z(t−1) | z(t) | z(t+1)] (rows 3C apart), the outer thirds filled from it by
    /// temporal_shift_bf16, then one product with K = 3C and the middle third as its addend: z is
    /// never stored on its own, and the output is rounded to bf16 once.
    #[allow(clippy::too_many_arguments)] // mirrors Backend::point_temporal_residual
    pub(super) fn launch_point_temporal_residual(
        &self,
        out: &mut CudaSlice<bf16>,
        glu: &CudaSlice<bf16>,
        point: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        f: usize,
        d: GridDims,
    ) -> Result<(), CudaError> {
        let rows = d.b * d.t * d.h * d.w;
        if rows * d.c == 0 {
            return Ok(());
        }
        // SAFETY: the middle third is written by the first product, the outer two by
        // temporal_shift_bf16, before the second product reads any of it.
        let operand =
            unsafe { self.stream.alloc::<bf16>(rows * 3 * d.c) }.during("allocating the temporal conv's operand")?;
        let operand_ptr = self.ptr(&operand);
        let middle = operand_ptr + (d.c * 2) as DevPtr; // bf16 offset of the middle third
        let mut point_product = Gemm::linear(rows, d.c, f, self.ptr(glu), self.ptr(point), middle);
        point_product.ldc = 3 * d.c;
        self.blas.gemm(&point_product)?;
        let p = TemporalShiftParams {
            buf: operand_ptr,
            b: d.b as i32,
            t: d.t as i32,
            hw: (d.h * d.w) as i32,
            c: d.c as i32,
        };
        let cfg = LaunchConfig {
            grid_dim: (rows.div_ceil(SHIFT_ROWS) as u32, 1, 1),
            block_dim: (SHIFT_LANES, SHIFT_ROWS as u32, 1),
            shared_mem_bytes: 0,
        };
        self.kernels.launch(&self.stream, "temporal_shift_bf16", cfg, &p)?;
        let mut g = Gemm::linear(rows, d.c, 3 * d.c, operand_ptr, self.ptr(w), self.ptr(out));
        g.accumulate = true;
        g.addend = Some(middle);
        g.ld_addend = Some(3 * d.c);
        self.blas.gemm(&g)
    }
}
