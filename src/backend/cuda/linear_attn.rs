//! Launchers for ReLU linear attention (kernels/linear_attn.cu; CPU twin
//! backend/cpu/linear_attn.rs). Three launches: per-token 1/rms of q and k, the per-head
//! state S = Σ v k̃ᵀ and z = Σ φk (f32 atomics into zeroed scratch), then the output.

use cudarc::driver::{CudaSlice, LaunchConfig};
use cudarc::driver::sys::CUfunction_attribute_enum;
use half::bf16;

use super::error::{CudaError, DriverContext};
use super::params::LinearAttnParams;
use super::Cuda;
use crate::backend::{AttnDims, RopeTables};
use crate::error::{Error, Result};

const THREADS: u32 = 256;
/// kernels/linear_attn.cu: kMaxHeadDim, kStateTokens, kOutTokens.
const MAX_HEAD_DIM: usize = 128;
const STATE_TOKENS: usize = 32;
const OUT_TOKENS: usize = 64;
/// State blocks to aim for: ~4 per SM of an H100/H200 (132 SMs) so the atomics spread out.
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
        if d.head_dim > MAX_HEAD_DIM {
            return Err(Error::shape("relu_linear_attention (cuda)", format!("head_dim {} exceeds the kernel's {MAX_HEAD_DIM}", d.head_dim)));
        }
        let heads_total = d.b * d.heads;
        let inv_rms = self.scratch::<f32>(d.b * d.n * 2)?;
        let mut state = self.scratch::<f32>(heads_total * d.head_dim * d.head_dim)?;
        let mut k_sum = self.scratch::<f32>(heads_total * d.head_dim)?;
        self.stream.memset_zeros(&mut state).during("zeroing the attention state").map_err(|e| self.err(e))?;
        self.stream.memset_zeros(&mut k_sum).during("zeroing the attention state").map_err(|e| self.err(e))?;
        let chunks = TARGET_STATE_BLOCKS.div_ceil(heads_total).clamp(1, d.n.div_ceil(STATE_TOKENS));
        let tokens_per_block = d.n.div_ceil(chunks).next_multiple_of(STATE_TOKENS);
        let p = LinearAttnParams {
            qkv: self.ptr(qkv),
            norm_q: self.ptr(norm_q),
            norm_k: self.ptr(norm_k),
            cos: self.ptr(&rope.cos),
            sin: self.ptr(&rope.sin),
            inv_rms: self.ptr(&inv_rms),
            state: self.ptr(&state),
            k_sum: self.ptr(&k_sum),
            out: self.ptr(out),
            b: d.b as i32,
            n: d.n as i32,
            heads: d.heads as i32,
            head_dim: d.head_dim as i32,
            tokens_per_block: tokens_per_block as i32,
            norm_eps,
            attn_eps,
            pad: 0,
        };
        let run = || -> Result<(), CudaError> {
            let rows = LaunchConfig { grid_dim: ((d.b * d.n) as u32, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 };
            self.kernels.launch(&self.stream, "linear_attn_inv_rms_bf16", rows, &p)?;
            let state_grid = (d.n.div_ceil(tokens_per_block) as u32, d.heads as u32, d.b as u32);
            let cfg = LaunchConfig { grid_dim: state_grid, block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 };
            self.kernels.launch(&self.stream, "linear_attn_state_bf16", cfg, &p)?;
            // S (d rows of d+1), 64 rotated queries, 64 denominators
            let smem = (d.head_dim * (d.head_dim + 1) + OUT_TOKENS * d.head_dim + OUT_TOKENS) * 4;
            let f = self.kernels.get("linear_attn_out_bf16")?;
            f.set_attribute(CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem as i32)
                .during("raising the shared-memory limit of linear_attn_out_bf16")?;
            let out_grid = (d.n.div_ceil(OUT_TOKENS) as u32, d.heads as u32, d.b as u32);
            let cfg = LaunchConfig { grid_dim: out_grid, block_dim: (THREADS, 1, 1), shared_mem_bytes: smem as u32 };
            self.kernels.launch(&self.stream, "linear_attn_out_bf16", cfg, &p)
        };
        run().map_err(|e| self.err(e))
    }
}
