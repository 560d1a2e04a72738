//! Launcher for softmax cross-attention to the caption (CPU twin backend/cpu/cross_attn.rs):
//! per sample, scores = Q·Kᵀ (cuBLASLt, batched over heads, f32 out), masked softmax
//! (kernels/cross_attn.cu, bf16 probabilities), out = P·V (cuBLASLt, batched over heads).

use cudarc::driver::{CudaSlice, LaunchConfig};
use half::bf16;

use super::blas::{BLayout, Epilogue, Gemm, InType, OutType};
use super::error::CudaError;
use super::params::MaskedSoftmaxParams;
use super::Cuda;
use crate::backend::AttnDims;
use crate::error::{Error, Result};

/// kernels/cross_attn.cu: 32 values per lane.
const MAX_KEYS: usize = 1024;
const ROWS_PER_BLOCK: usize = 8;

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
        if d.l > MAX_KEYS {
            return Err(Error::shape("cross_attention (cuda)", format!("{} caption tokens exceed the kernel's {MAX_KEYS}", d.l)));
        }
        let width = d.heads * d.head_dim;
        let rows = d.heads * d.n;
        let scores = self.scratch::<f32>(rows * d.l)?;
        let probs = self.scratch::<bf16>(rows * d.l)?;
        let (q0, k0, v0, o0) = (self.ptr(q), self.ptr(k), self.ptr(v), self.ptr(out));
        let (s0, p0, bias0) = (self.ptr(&scores), self.ptr(&probs), self.ptr(key_bias));
        let stage = |label: &'static str, f: &dyn Fn() -> Result<(), CudaError>| {
            self.timed(|| format!("  cross_attn/{label}"), || f().map_err(|e| self.err(e)))
        };
        let run = || -> Result<()> {
            for b in 0..d.b {
                let q_b = q0 + (b * d.n * width * 2) as u64;
                let kv_offset = (b * d.l * width * 2) as u64;
                // scores_h (N × L) = Q_h (N × d, row stride D) · K_hᵀ, batched over heads
                stage("scores", &|| self.blas.gemm(&Gemm {
                    m: d.n,
                    n: d.l,
                    k: d.head_dim,
                    a: q_b,
                    lda: width,
                    a_transposed: false,
                    b: k0 + kv_offset,
                    ldb: width,
                    b_layout: BLayout::Transposed,
                    c: s0,
                    ldc: d.l,
                    inputs: InType::Bf16,
                    out: OutType::F32,
                    accumulate: false,
                    epilogue: Epilogue::None,
                    batch: d.heads,
                    stride_a: d.head_dim,
                    stride_b: d.head_dim,
                    stride_c: d.n * d.l,
                }))?;
                let p = MaskedSoftmaxParams {
                    scores: s0,
                    probs: p0,
                    key_bias: bias0 + (b * d.l * 4) as u64,
                    rows: rows as i32,
                    l: d.l as i32,
                    scale: 1.0 / (d.head_dim as f32).sqrt(),
                    pad: 0,
                };
                let cfg = LaunchConfig {
                    grid_dim: (rows.div_ceil(ROWS_PER_BLOCK) as u32, 1, 1),
                    block_dim: ((ROWS_PER_BLOCK * 32) as u32, 1, 1),
                    shared_mem_bytes: 0,
                };
                stage("softmax", &|| self.kernels.launch(&self.stream, "masked_softmax_f32_bf16", cfg, &p))?;
                // out_h (N × d, row stride D) = P_h (N × L) · V_h (L × d, row stride D)
                stage("pv", &|| self.blas.gemm(&Gemm {
                    m: d.n,
                    n: d.head_dim,
                    k: d.l,
                    a: p0,
                    lda: d.l,
                    a_transposed: false,
                    b: v0 + kv_offset,
                    ldb: width,
                    b_layout: BLayout::Plain,
                    c: o0 + (b * d.n * width * 2) as u64,
                    ldc: width,
                    inputs: InType::Bf16,
                    out: OutType::Bf16,
                    accumulate: false,
                    epilogue: Epilogue::None,
                    batch: d.heads,
                    stride_a: d.n * d.l,
                    stride_b: d.head_dim,
                    stride_c: d.head_dim,
                }))?;
            }
            Ok(())
        };
        run()
    }
}
