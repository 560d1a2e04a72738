//! Launchers for the norm family (kernels/norm.cu): rms_norm (also reading an f32 residual
//! stream), normed_residual_f32, add_f32, ada_layer_norm, gated_residual, group_norm.

use cudarc::driver::{CudaSlice, LaunchConfig};
use half::bf16;

use super::error::{CudaError, DriverContext};
use super::kernels::grid_stride;
use super::params::{
    act_code, AdaLayerNormParams, AddF32Params, GatedResidualParams, GroupNormParams, ModParams, NormedResidualParams,
    RmsNormParams,
};
use super::Cuda;
use crate::backend::{Activation, Modulation, TokenDims, Write};

/// Threads per block: a block per row (strided passes over it), or 8 rows of a warp each.
const THREADS: u32 = 256;
/// Rows up to this wide get a warp each (kernels/norm.cu `rms_norm_narrow_bf16`).
const NARROW_MAX: usize = 1024;
/// kernels/norm.cu `kWideChunks`: rows of 16-byte chunks up to this wide are held in registers,
/// a warp each (`*_wide_bf16`).
const WIDE_MAX: usize = 32 * 9 * 8;

/// Whether a bf16 row width takes the register-resident warp-per-row kernels.
fn wide_rows(dim: usize) -> bool {
    dim > NARROW_MAX && dim <= WIDE_MAX && dim.is_multiple_of(8)
}

/// A warp per row, 8 rows per block.
fn warp_per_row(rows: usize) -> LaunchConfig {
    let rows_per_block = THREADS as usize / 32;
    LaunchConfig {
        grid_dim: (rows.div_ceil(rows_per_block) as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}
/// kernels/norm.cu `kMaxGroups` (shared-memory partial sums per group).
pub(super) const GROUP_NORM_MAX_GROUPS: usize = 128;

fn per_row(rows: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: (rows as u32, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

impl Cuda {
    fn mod_params(&self, m: &Modulation<Self>) -> ModParams {
        ModParams {
            table: self.ptr(&m.table.buf),
            emb: self.ptr(&m.emb.buf),
            emb_chunks: m.emb_chunks as i32,
            per_token: m.per_token as i32,
        }
    }

    #[allow(clippy::too_many_arguments)] // mirrors Backend::rms_norm
    pub(super) fn launch_rms_norm(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        rows: usize,
        dim: usize,
        eps: f32,
        weight_offset: f32,
        act: Activation,
    ) -> Result<(), CudaError> {
        let p = RmsNormParams {
            out: self.ptr(out),
            x: self.ptr(x),
            w: self.ptr(w),
            rows: rows as i32,
            dim: dim as i32,
            eps,
            weight_offset,
            act: act_code(act),
            pad: 0,
        };
        if dim <= NARROW_MAX {
            return self.kernels.launch(&self.stream, "rms_norm_narrow_bf16", warp_per_row(rows), &p);
        }
        if wide_rows(dim) {
            return self.kernels.launch(&self.stream, "rms_norm_wide_bf16", warp_per_row(rows), &p);
        }
        self.kernels.launch(&self.stream, "rms_norm_bf16", per_row(rows), &p)
    }

    /// RMSNorm of an f32 residual stream into bf16: a warp per row up to `NARROW_MAX` channels
    /// (the LTX-2 autoencoder's millions of rows), a block per row wider (the text encoder's few
    /// thousand rows of 2304).
    #[allow(clippy::too_many_arguments)] // mirrors Backend::rms_norm_f32_input
    pub(super) fn launch_rms_norm_f32_input(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<f32>,
        w: &CudaSlice<bf16>,
        rows: usize,
        dim: usize,
        eps: f32,
        weight_offset: f32,
        act: Activation,
    ) -> Result<(), CudaError> {
        let p = RmsNormParams {
            out: self.ptr(out),
            x: self.ptr(x),
            w: self.ptr(w),
            rows: rows as i32,
            dim: dim as i32,
            eps,
            weight_offset,
            act: act_code(act),
            pad: 0,
        };
        if dim <= NARROW_MAX {
            return self.kernels.launch(&self.stream, "rms_norm_narrow_f32_input_bf16", warp_per_row(rows), &p);
        }
        self.kernels.launch(&self.stream, "rms_norm_f32_input_bf16", per_row(rows), &p)
    }

    /// x (f32) ← y or x + y, y bf16 of x's length.
    pub(super) fn launch_add_f32(
        &self,
        x: &mut CudaSlice<f32>,
        y: &CudaSlice<bf16>,
        write: Write,
    ) -> Result<(), CudaError> {
        let p = AddF32Params {
            x: self.ptr(x),
            y: self.ptr(y),
            len: y.len() as i64,
            accumulate: i32::from(write == Write::Accumulate),
            pad: 0,
        };
        self.kernels.launch(&self.stream, "add_f32_bf16", grid_stride(y.len().div_ceil(8), THREADS), &p)
    }

    /// x (f32) += RMSNorm(y)·(offset + w), a block per row.
    #[allow(clippy::too_many_arguments)] // mirrors Backend::normed_residual_f32
    pub(super) fn launch_normed_residual_f32(
        &self,
        x: &mut CudaSlice<f32>,
        y: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        rows: usize,
        dim: usize,
        eps: f32,
        weight_offset: f32,
    ) -> Result<(), CudaError> {
        let p = NormedResidualParams {
            x: self.ptr(x),
            y: self.ptr(y),
            w: self.ptr(w),
            rows: rows as i32,
            dim: dim as i32,
            eps,
            weight_offset,
        };
        self.kernels.launch(&self.stream, "normed_residual_f32_bf16", per_row(rows), &p)
    }

    #[allow(clippy::too_many_arguments)] // mirrors Backend::ada_layer_norm
    pub(super) fn launch_ada_layer_norm(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        m: &Modulation<Self>,
        shift: usize,
        scale: usize,
        d: TokenDims,
        eps: f32,
    ) -> Result<(), CudaError> {
        let p = AdaLayerNormParams {
            out: self.ptr(out),
            x: self.ptr(x),
            m: self.mod_params(m),
            shift: shift as i32,
            scale: scale as i32,
            b: d.b as i32,
            n: d.n as i32,
            d: d.d as i32,
            eps,
        };
        if wide_rows(d.d) {
            return self.kernels.launch(&self.stream, "ada_layer_norm_wide_bf16", warp_per_row(d.b * d.n), &p);
        }
        self.kernels.launch(&self.stream, "ada_layer_norm_bf16", per_row(d.b * d.n), &p)
    }

    pub(super) fn launch_gated_residual(
        &self,
        x: &mut CudaSlice<bf16>,
        y: &CudaSlice<bf16>,
        m: &Modulation<Self>,
        gate: usize,
        d: TokenDims,
    ) -> Result<(), CudaError> {
        let p = GatedResidualParams {
            x: self.ptr(x),
            y: self.ptr(y),
            m: self.mod_params(m),
            gate: gate as i32,
            b: d.b as i32,
            n: d.n as i32,
            d: d.d as i32,
        };
        self.kernels.launch(&self.stream, "gated_residual_bf16", per_row(d.b * d.n), &p)
    }

    /// kernels/norm.cu GroupNorm: per-block partial sums, an f64 fold per group, then the
    /// elementwise normalisation.
    #[allow(clippy::too_many_arguments)] // mirrors Backend::group_norm
    pub(super) fn launch_group_norm(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        gamma: &CudaSlice<bf16>,
        beta: &CudaSlice<bf16>,
        rows: usize,
        channels: usize,
        groups: usize,
        eps: f32,
        act: Activation,
    ) -> Result<(), CudaError> {
        // ~64 K elements a block: enough blocks to fill the GPU, few partials to fold
        let rows_per_block = (65536 / channels.max(1)).max(1);
        let blocks = rows.div_ceil(rows_per_block).max(1);
        // SAFETY: partials and stats are written by the first two launches before they are read.
        let partial =
            unsafe { self.stream.alloc::<f32>(blocks * groups * 2) }.during("allocating group-norm partials")?;
        let stats = unsafe { self.stream.alloc::<f32>(groups * 2) }.during("allocating group-norm statistics")?;
        let p = GroupNormParams {
            out: self.ptr(out),
            x: self.ptr(x),
            gamma: self.ptr(gamma),
            beta: self.ptr(beta),
            partial: self.ptr(&partial),
            stats: self.ptr(&stats),
            rows: rows as i32,
            channels: channels as i32,
            groups: groups as i32,
            rows_per_block: rows_per_block as i32,
            blocks: blocks as i32,
            act: act_code(act),
            eps,
            pad: 0,
        };
        let grid =
            |n: usize| LaunchConfig { grid_dim: (n as u32, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 };
        self.kernels.launch(&self.stream, "group_norm_partials_bf16", grid(blocks), &p)?;
        self.kernels.launch(&self.stream, "group_norm_stats", grid(1), &p)?;
        self.kernels.launch(&self.stream, "group_norm_apply_bf16", grid_stride(rows * channels, THREADS), &p)
    }
}
