//! Launcher for ReLU linear attention (kernels/linear_attn.cu; CPU twin
//! backend/cpu/linear_attn.rs): per-token 1/rms of q and k; per-chunk states S = Σ v k̃ᵀ and
//! z = Σ φk on the TF32 tensor cores, the features computed in the kernel from qkv; the chunks
//! summed; out = S q̃ / (φq·z + eps) on the tensor cores. No f32 feature tensors: the previous
//! version stored q̃, k̃, v in f32 for two cuBLASLt products (see BENCHMARKS.md).

use cudarc::driver::{CudaSlice, LaunchConfig};
use half::bf16;

use super::error::CudaError;
use super::params::LinearAttnParams;
use super::Cuda;
use crate::backend::{AttnDims, RopeTables};
use crate::error::Result;

/// Threads per block of every kernel but the output one (kernels/linear_attn.cu).
const THREADS: u32 = 256;
const OUTPUT_THREADS: u32 = 128;
/// kernels/linear_attn.cu: kStateTokens (a chunk is a whole number of its tiles), kMaxHeadDim,
/// the output kernel's tokens per block.
const STATE_TOKENS: usize = 32;
const MAX_HEAD_DIM: usize = 128;
const OUTPUT_TOKENS: usize = 64;

/// (sample, head, chunk) state blocks to aim for: ~4 per SM of an H100/H200 (132 SMs).
const TARGET_STATE_BLOCKS: usize = 4 * 132;

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
        // The token axis in `chunks` runs of `rows` tokens, so the state blocks fill the GPU.
        let chunks = TARGET_STATE_BLOCKS.div_ceil(heads_total).clamp(1, d.n.div_ceil(STATE_TOKENS));
        let rows = d.n.div_ceil(chunks).next_multiple_of(STATE_TOKENS);
        let chunks = d.n.div_ceil(rows); // no empty chunk after the rounding
        let dp = hd.next_multiple_of(16);
        let inv_rms = self.scratch::<f32>(tokens * 2)?;
        let partial = self.scratch::<f32>(heads_total * chunks * dp * dp)?;
        let partial_z = self.scratch::<f32>(heads_total * chunks * dp)?;
        let state = self.scratch::<f32>(heads_total * dp * dp)?;
        let z = self.scratch::<f32>(heads_total * dp)?;
        let p = LinearAttnParams {
            qkv: self.ptr(qkv),
            norm_q: self.ptr(norm_q),
            norm_k: self.ptr(norm_k),
            cos: self.ptr(&rope.cos),
            sin: self.ptr(&rope.sin),
            inv_rms: self.ptr(&inv_rms),
            partial: self.ptr(&partial),
            partial_z: self.ptr(&partial_z),
            state: self.ptr(&state),
            z: self.ptr(&z),
            out: self.ptr(out),
            b: d.b as i32,
            n: d.n as i32,
            heads: d.heads as i32,
            head_dim: hd as i32,
            padded_head_dim: dp as i32,
            chunks: chunks as i32,
            chunk_rows: rows as i32,
            norm_eps,
            attn_eps,
        };
        let stage = |label: &'static str, f: &dyn Fn() -> Result<(), CudaError>| {
            self.timed(|| format!("  linear_attn/{label}"), || f().map_err(|e| self.err(e)))
        };
        let grid = |grid_dim: (usize, usize, usize), threads: u32| LaunchConfig {
            grid_dim: (grid_dim.0 as u32, grid_dim.1 as u32, grid_dim.2 as u32),
            block_dim: (threads, 1, 1),
            shared_mem_bytes: 0,
        };
        let launch = |name: &'static str, cfg: LaunchConfig| self.kernels.launch(&self.stream, name, cfg, &p);
        stage("inv_rms", &|| launch("linear_attn_inv_rms_bf16", grid((tokens, 1, 1), THREADS)))?;
        stage("state", &|| launch("linear_attn_state_bf16", grid((chunks, d.heads, d.b), THREADS)))?;
        let reduce = grid(((dp * dp).div_ceil(THREADS as usize), heads_total, 1), THREADS);
        stage("state reduce", &|| launch("linear_attn_reduce_state", reduce))?;
        let output = grid((d.n.div_ceil(OUTPUT_TOKENS), d.heads, d.b), OUTPUT_THREADS);
        stage("output", &|| launch("linear_attn_output_bf16", output))
    }
}
