//! Launchers for the Gemma-2 text encoder's ops (kernels/decoder.cu; CPU twin
//! backend/cpu/decoder.rs).

use cudarc::driver::{CudaSlice, LaunchConfig};
use half::bf16;

use super::error::{CudaError, DriverContext};
use super::kernels::grid_stride;
use super::params::{BinaryParams, CausalAttnParams, DevPtr, GatherParams, RopeHalfParams};
use super::Cuda;
use crate::backend::{AttnDims, RopeTables};
use crate::error::{Error, Result};

const THREADS: u32 = 256;
/// kernels/decoder.cu kMaxHeadDim.
const MAX_HEAD_DIM: usize = 256;

impl Cuda {
    pub(super) fn launch_gather_rows(
        &self,
        out: &mut CudaSlice<bf16>,
        table: &CudaSlice<bf16>,
        ids: &[u32],
        dim: usize,
        scale: f32,
    ) -> Result<(), CudaError> {
        let out = self.ptr(out);
        self.launch_gather("gather_rows_bf16", out, table, ids, dim, scale)
    }

    /// The same into an f32 residual stream.
    pub(super) fn launch_gather_rows_f32(
        &self,
        out: &mut CudaSlice<f32>,
        table: &CudaSlice<bf16>,
        ids: &[u32],
        dim: usize,
        scale: f32,
    ) -> Result<(), CudaError> {
        let out = self.ptr(out);
        self.launch_gather("gather_rows_f32_bf16", out, table, ids, dim, scale)
    }

    /// `kernel` must store the element type `out` points to (the two launchers above pair them).
    fn launch_gather(
        &self,
        kernel: &'static str,
        out: DevPtr,
        table: &CudaSlice<bf16>,
        ids: &[u32],
        dim: usize,
        scale: f32,
    ) -> Result<(), CudaError> {
        let ids_dev = self.stream.clone_htod(ids).during("uploading token ids")?;
        let p = GatherParams {
            out,
            table: self.ptr(table),
            ids: self.ptr(&ids_dev),
            rows: ids.len() as i32,
            dim: dim as i32,
            scale,
            pad: 0,
        };
        self.kernels.launch(&self.stream, kernel, grid_stride(ids.len() * dim, THREADS), &p)
    }

    pub(super) fn launch_rope_rotate_half(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        rope: &RopeTables<Self>,
        d: AttnDims,
    ) -> Result<(), CudaError> {
        let p = RopeHalfParams {
            out: self.ptr(out),
            x: self.ptr(x),
            cos: self.ptr(&rope.cos),
            sin: self.ptr(&rope.sin),
            rows: (d.b * d.n) as i32,
            l: d.n as i32,
            heads: d.heads as i32,
            head_dim: d.head_dim as i32,
        };
        let total = d.b * d.n * d.heads * d.head_dim / 2;
        self.kernels.launch(&self.stream, "rope_rotate_half_bf16", grid_stride(total, THREADS), &p)
    }

    #[allow(clippy::too_many_arguments)] // mirrors Backend::causal_attention
    pub(super) fn launch_causal_attention(
        &self,
        out: &mut CudaSlice<bf16>,
        q: &CudaSlice<bf16>,
        k: &CudaSlice<bf16>,
        v: &CudaSlice<bf16>,
        key_mask: &CudaSlice<f32>,
        d: AttnDims,
        kv_heads: usize,
        scale: f32,
        softcap: Option<f32>,
        window: Option<usize>,
    ) -> Result<()> {
        if d.head_dim > MAX_HEAD_DIM {
            let reason = format!("head_dim {} exceeds the kernel's {MAX_HEAD_DIM}", d.head_dim);
            return Err(Error::shape("causal_attention (cuda)", reason));
        }
        let p = CausalAttnParams {
            out: self.ptr(out),
            q: self.ptr(q),
            k: self.ptr(k),
            v: self.ptr(v),
            key_mask: self.ptr(key_mask),
            b: d.b as i32,
            l: d.n as i32,
            heads: d.heads as i32,
            kv_heads: kv_heads as i32,
            head_dim: d.head_dim as i32,
            window: window.unwrap_or(0) as i32,
            scale,
            softcap: softcap.unwrap_or(0.0),
        };
        // one warp per (query, head, sample)
        let cfg = LaunchConfig {
            grid_dim: (d.n as u32, d.heads as u32, d.b as u32),
            block_dim: (32, 1, 1),
            shared_mem_bytes: 0,
        };
        self.kernels.launch(&self.stream, "causal_attention_bf16", cfg, &p).map_err(|e| self.err(e))
    }

    /// out = a · b (op 0) or a + b (op 1); `out` may equal `a`.
    pub(super) fn launch_binary(
        &self,
        out: DevPtr,
        a: DevPtr,
        b: DevPtr,
        len: usize,
        op: i32,
    ) -> Result<(), CudaError> {
        let p = BinaryParams { out, a, b, len: len as i64, op, pad: 0 };
        self.kernels.launch(&self.stream, "binary_bf16", grid_stride(len, THREADS), &p)
    }
}
