//! Launcher for the fused softmax cross-attention to the caption (kernels/cross_attn.cu; CPU twin
//! backend/cpu/cross_attn.rs): one kernel, online softmax in registers, bf16 tensor cores.

use cudarc::driver::sys::CUfunction_attribute_enum;
use cudarc::driver::{CudaSlice, LaunchConfig};
use half::bf16;

use super::blas::{Gemm, OutType};
use super::error::{CudaError, DriverContext};
use super::params::{CrossAttnParams, SoftmaxParams};
use super::Cuda;
use crate::backend::AttnDims;
use crate::error::{Error, Result};

/// kernels/cross_attn.cu: 8 warps of 16 query rows, 32-key tiles, head dim ≤ 112 (kMaxHeadDim);
/// L ≤ 512 (the caption's maximum, what the tests cover). Anything larger takes the unfused path.
const QUERIES_PER_BLOCK: usize = 128;
const THREADS: u32 = 256;
const KEY_TILE: usize = 32;
const MAX_HEAD_DIM: usize = 112;
const MAX_KEYS: usize = 512;

impl Cuda {
    pub(super) fn launch_cross_attention(
        &self,
        out: &mut CudaSlice<bf16>,
        q: &CudaSlice<bf16>,
        k: &CudaSlice<bf16>,
        v: &CudaSlice<bf16>,
        key_bias: &CudaSlice<f32>,
        d: AttnDims,
    ) -> Result<()> {
        const OP: &str = "cross_attention (cuda)";
        if d.l == 0 {
            return Err(Error::shape(OP, "no keys".to_string()));
        }
        if d.l > MAX_KEYS || d.head_dim > MAX_HEAD_DIM {
            return self.large_attention(out, q, k, v, key_bias, d).map_err(|e| self.err(e));
        }
        let padded_head_dim = d.head_dim.next_multiple_of(16);
        let padded_l = d.l.next_multiple_of(KEY_TILE);
        let p = CrossAttnParams {
            q: self.ptr(q),
            k: self.ptr(k),
            v: self.ptr(v),
            key_bias: self.ptr(key_bias),
            out: self.ptr(out),
            b: d.b as i32,
            n: d.n as i32,
            l: d.l as i32,
            heads: d.heads as i32,
            head_dim: d.head_dim as i32,
            padded_head_dim: padded_head_dim as i32,
            padded_l: padded_l as i32,
            scale: 1.0 / (d.head_dim as f32).sqrt(),
        };
        // Q tile and K/V tile in bf16 (rows padded by 8), key bias, the block's score rows in f32
        // (rows padded by 4): kernels/cross_attn.cu
        // Q tile, two stages of K and V tiles (row stride dp + 8), key bias
        let smem = (QUERIES_PER_BLOCK + 4 * KEY_TILE) * (padded_head_dim + 8) * 2 + padded_l * 4;
        let run = || -> Result<(), CudaError> {
            let f = self.kernels.get("cross_attention_bf16")?;
            f.set_attribute(CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem as i32)
                .during("raising the shared-memory limit of cross_attention_bf16")?;
            let cfg = LaunchConfig {
                grid_dim: (d.n.div_ceil(QUERIES_PER_BLOCK) as u32, d.heads as u32, d.b as u32),
                block_dim: (THREADS, 1, 1),
                shared_mem_bytes: smem as u32,
            };
            self.kernels.launch(&self.stream, "cross_attention_bf16", cfg, &p)
        };
        run().map_err(|e| self.err(e))
    }

    /// Attention beyond the fused kernel's limits, per (sample, head): scores = Q·Kᵀ in f32 by
    /// cuBLASLt, a row softmax to bf16 probabilities, out = P·V by cuBLASLt. The N × L scores go
    /// through memory (156 MB f32 for one 6240-position frame), which the fused kernel avoids.
    fn large_attention(
        &self,
        out: &mut CudaSlice<bf16>,
        q: &CudaSlice<bf16>,
        k: &CudaSlice<bf16>,
        v: &CudaSlice<bf16>,
        key_bias: &CudaSlice<f32>,
        d: AttnDims,
    ) -> Result<(), CudaError> {
        let width = d.heads * d.head_dim;
        // SAFETY: scores and probs are fully written (GEMM, softmax) before they are read.
        let scores = unsafe { self.stream.alloc::<f32>(d.n * d.l) }.during("allocating attention scores")?;
        let probs = unsafe { self.stream.alloc::<bf16>(d.n * d.l) }.during("allocating attention probabilities")?;
        let bf = std::mem::size_of::<bf16>() as u64;
        for b in 0..d.b {
            for h in 0..d.heads {
                let head = |base: u64, rows: usize| base + ((b * rows * width + h * d.head_dim) as u64) * bf;
                let mut s = Gemm::linear(
                    d.n,
                    d.l,
                    d.head_dim,
                    head(self.ptr(q), d.n),
                    head(self.ptr(k), d.l),
                    self.ptr(&scores),
                );
                (s.lda, s.ldb, s.out) = (width, width, OutType::F32);
                self.blas.gemm(&s)?;
                let p = SoftmaxParams {
                    probs: self.ptr(&probs),
                    scores: self.ptr(&scores),
                    key_bias: self.ptr(key_bias) + (b * d.l * std::mem::size_of::<f32>()) as u64,
                    rows: d.n as i32,
                    cols: d.l as i32,
                    scale: 1.0 / (d.head_dim as f32).sqrt(),
                    pad: 0,
                };
                let cfg = LaunchConfig { grid_dim: (d.n as u32, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
                self.kernels.launch(&self.stream, "softmax_rows_bf16", cfg, &p)?;
                let mut o = Gemm::linear(
                    d.n,
                    d.head_dim,
                    d.l,
                    self.ptr(&probs),
                    head(self.ptr(v), d.l),
                    head(self.ptr(out), d.n),
                );
                (o.ldb, o.ldc, o.b_is_k_by_n) = (width, width, true);
                self.blas.gemm(&o)?;
            }
        }
        Ok(())
    }
}
