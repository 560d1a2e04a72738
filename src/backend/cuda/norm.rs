//! Launchers for the norm family (kernels/norm.cu): rms_norm, ada_layer_norm, gated_residual.

use cudarc::driver::{CudaSlice, LaunchConfig};
use half::bf16;

use super::error::CudaError;
use super::params::{act_code, AdaLayerNormParams, GatedResidualParams, ModParams, RmsNormParams};
use super::Cuda;
use crate::backend::{Activation, Modulation, TokenDims};

/// One block per row; 256 threads cover D = 2240 in 9 strided passes.
const THREADS: u32 = 256;
/// Rows up to this wide get a warp each (kernels/norm.cu `rms_norm_narrow_bf16`).
const NARROW_MAX: usize = 1024;

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
            let rows_per_block = THREADS as usize / 32;
            let cfg = LaunchConfig {
                grid_dim: (rows.div_ceil(rows_per_block) as u32, 1, 1),
                block_dim: (THREADS, 1, 1),
                shared_mem_bytes: 0,
            };
            return self.kernels.launch(&self.stream, "rms_norm_narrow_bf16", cfg, &p);
        }
        self.kernels.launch(&self.stream, "rms_norm_bf16", per_row(rows), &p)
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
}
