//! Launchers for ReLU linear attention (kernels/linear_attn.cu; CPU twin
//! backend/cpu/linear_attn.rs): per-token 1/rms of q and k; the f32 features q̃, k̃, v (head-major,
//! token axis in chunks) and z = Σ φk; per-chunk states V_chunk K̃_chunkᵀ as one TF32 batched
//! product, summed over chunks; num = Q̃_h S_hᵀ as one TF32 batched product; out = num / (φq·z + eps).
//! A bf16 WMMA kernel for the per-chunk states measured faster alone (8.4 vs 14.5 ms per 720p
//! forward) but the whole op slower (36 vs 30 ms; the following product slowed for reasons not
//! yet found), so it was dropped; see BENCHMARKS.md.

use cudarc::driver::{CudaSlice, LaunchConfig};
use half::bf16;

use super::blas::{Epilogue, Gemm, InType, OutType};
use super::error::{CudaError, DriverContext};
use super::params::LinearAttnParams;
use super::Cuda;
use crate::backend::{AttnDims, RopeTables};
use crate::error::Result;

const THREADS: u32 = 256;
/// kernels/linear_attn.cu kFeatureTokens, kMaxHeadDim.
const FEATURE_TOKENS: usize = 32;
const MAX_HEAD_DIM: usize = 128;

/// Partial-state products to aim for: ~4 per SM of an H100/H200 (132 SMs).
const TARGET_STATE_PRODUCTS: usize = 4 * 132;

impl Cuda {
    #[allow(clippy::too_many_arguments)] // mirrors Backend::relu_linear_attention
    pub(super) fn launch_linear_attention(
        &self,
        out: &mut CudaSlice<bf16>,
        qkv: &CudaSlice<bf16>,
        norm_q: &CudaSlice<bf16>,
        norm_k: &CudaSlice<bf16>,
        rope: &RopeTables<Self>,
        d: AttnDims,
        norm_eps: f32,
        attn_eps: f32,
    ) -> Result<()> {
        let (hd, tokens, heads_total) = (d.head_dim, d.b * d.n, d.b * d.heads);
        if hd > MAX_HEAD_DIM {
            let reason = format!("head_dim {hd} exceeds the kernel's {MAX_HEAD_DIM}");
            return Err(crate::error::Error::shape("relu_linear_attention (cuda)", reason));
        }
        // The token axis in `chunks` runs of `rows`: the state product is then one batched GEMM
        // with enough independent (sample, head, chunk) products to fill the GPU.
        let chunks = TARGET_STATE_PRODUCTS.div_ceil(heads_total).clamp(1, d.n.div_ceil(FEATURE_TOKENS));
        // R a multiple of the features kernel's 32-token blocks, so none straddles two chunks
        let rows = d.n.div_ceil(chunks).next_multiple_of(FEATURE_TOKENS);
        let padded_n = rows * chunks;
        let features = heads_total * padded_n * hd;
        let inv_rms = self.scratch::<f32>(tokens * 2)?;
        let q_rot = self.scratch::<f32>(features)?;
        let k_rot = self.scratch::<f32>(features)?;
        let v = self.scratch::<f32>(features)?;
        let partial = self.scratch::<f32>(heads_total * chunks * hd * hd)?;
        let state = self.scratch::<f32>(heads_total * hd * hd)?;
        let mut k_sum = self.scratch::<f32>(heads_total * hd)?;
        self.stream.memset_zeros(&mut k_sum).during("zeroing the attention state").map_err(|e| self.err(e))?;
        let p = LinearAttnParams {
            qkv: self.ptr(qkv),
            norm_q: self.ptr(norm_q),
            norm_k: self.ptr(norm_k),
            cos: self.ptr(&rope.cos),
            sin: self.ptr(&rope.sin),
            inv_rms: self.ptr(&inv_rms),
            q_rot: self.ptr(&q_rot),
            k_rot: self.ptr(&k_rot),
            v: self.ptr(&v),
            k_sum: self.ptr(&k_sum),
            partial: self.ptr(&partial),
            state: self.ptr(&state),
            // k̃ is consumed by the state product before the output product writes num: same size
            num: self.ptr(&k_rot),
            out: self.ptr(out),
            b: d.b as i32,
            n: d.n as i32,
            heads: d.heads as i32,
            head_dim: hd as i32,
            chunks: chunks as i32,
            padded_n: padded_n as i32,
            norm_eps,
            attn_eps,
        };
        let stage = |label: &'static str, f: &dyn Fn() -> Result<(), CudaError>| {
            self.timed(|| format!("  linear_attn/{label}"), || f().map_err(|e| self.err(e)))
        };
        let blocks = |n: usize, y: usize| LaunchConfig {
            grid_dim: (n as u32, y as u32, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        stage("inv_rms", &|| self.kernels.launch(&self.stream, "linear_attn_inv_rms_bf16", blocks(tokens, 1), &p))?;
        let feature_blocks = blocks(padded_n / FEATURE_TOKENS, d.b);
        stage("features", &|| self.kernels.launch(&self.stream, "linear_attn_features_bf16", feature_blocks, &p))?;
        // partial (d × d) = V_chunk · K̃_chunkᵀ for every (sample, head, chunk), TF32; both stored
        // channel-major (d × R), so the reduction axis is contiguous in both operands
        stage("state", &|| {
            self.blas.gemm(&Gemm {
                m: hd,
                n: hd,
                k: rows,
                a: p.v,
                lda: rows,
                b: p.k_rot,
                ldb: rows,
                c: p.partial,
                ldc: hd,
                inputs: InType::F32Tf32,
                out: OutType::F32,
                accumulate: false,
                addend: None,
                epilogue: Epilogue::None,
                batch: heads_total * chunks,
                stride_a: rows * hd,
                stride_b: rows * hd,
                stride_c: hd * hd,
                b_is_k_by_n: false,
            })
        })?;
        let reduce = blocks((hd * hd).div_ceil(THREADS as usize), heads_total);
        stage("state reduce", &|| self.kernels.launch(&self.stream, "linear_attn_reduce_state", reduce, &p))?;
        // num_h (N × d) = Q̃_h (N × d) · S_hᵀ for every (sample, head)
        stage("output", &|| {
            self.blas.gemm(&Gemm {
                m: d.n,
                n: hd,
                k: hd,
                a: p.q_rot,
                lda: hd,
                b: p.state,
                ldb: hd,
                c: p.num,
                ldc: hd,
                inputs: InType::F32Tf32,
                out: OutType::F32,
                accumulate: false,
                addend: None,
                epilogue: Epilogue::None,
                batch: heads_total,
                stride_a: padded_n * hd,
                stride_b: hd * hd,
                stride_c: padded_n * hd,
                b_is_k_by_n: false,
            })
        })?;
        let finish = LaunchConfig { shared_mem_bytes: (d.heads * 4) as u32, ..blocks(tokens, 1) };
        stage("finish", &|| self.kernels.launch(&self.stream, "linear_attn_finish_bf16", finish, &p))
    }
}
