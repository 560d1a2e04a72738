//! Launcher for ReLU linear attention (kernels/linear_attn.cu; CPU twin
//! backend/cpu/linear_attn.rs): per-token 1/rms of q and k; per-chunk states S = Σ v k̃ᵀ and
//! z = Σ φk on the bf16 tensor cores (k̃ as a hi + lo bf16 pair), the features computed in the
//! kernel from qkv; the chunks summed into a row-scaled f16 S; out = S q̃ / (φq·z + eps) on the
//! f16 tensor cores. No feature tensors go through memory.

use cudarc::driver::sys::CUfunction_attribute_enum;
use cudarc::driver::{CudaSlice, LaunchConfig};
use half::{bf16, f16};

use super::error::{CudaError, DriverContext};
use super::params::LinearAttnParams;
use super::Cuda;
use crate::backend::{AttnDims, RopeTables};
use crate::error::{Error, Result};

/// Threads per block of the state and inv-rms kernels; tokens per state tile; the largest head
/// dim; the reduce kernel's threads; the output kernel's most warps (kernels/linear_attn.cu).
const THREADS: u32 = 256;
const STATE_TOKENS: usize = 32;
const MAX_HEAD_DIM: usize = 128;
const REDUCE_THREADS: u32 = 128;
const OUTPUT_MAX_WARPS: usize = 12;
/// Tokens per inv-rms block (a warp each).
const INV_RMS_TOKENS: usize = 8;
/// Waves of resident state blocks the chunks are cut for: two, so the (sample, head) count need
/// not divide the resident blocks (40 heads × 13 chunks fill 2 × 264 slots to 98.5%; the earlier
/// fixed 14 chunks made 2.1 waves, the third nearly empty).
const STATE_WAVES: usize = 2;

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
        const OP: &str = "relu_linear_attention (cuda)";
        let (hd, tokens, heads_total) = (d.head_dim, d.b * d.n, d.b * d.heads);
        if hd > MAX_HEAD_DIM {
            return Err(Error::shape(OP, format!("head_dim {hd} exceeds the kernel's {MAX_HEAD_DIM}")));
        }
        let dp = hd.next_multiple_of(16);
        // dynamic shared memory (StateSmem / OutSmem in the kernel): rows of dp + 8 16-bit values
        let ld = dp + 8;
        let state_smem = 6 * STATE_TOKENS * ld * 2 + 4 * STATE_TOKENS * (dp / 2) * 4 + 2 * STATE_TOKENS * 8;
        // S, z and scales, then per warp its staged q, cos/sin, inv_rms and tile; as many warps
        // as the device's per-block limit holds
        let per_warp = 16 * ld * 2 + 2 * 16 * (dp / 2) * 4 + 16 * 8 + 16 * ld * 2;
        let shared = dp * ld * 2 + 2 * dp * 4;
        let output_warps = (self.max_block_smem.saturating_sub(shared) / per_warp).min(OUTPUT_MAX_WARPS);
        if output_warps == 0 {
            let reason = format!("head_dim {hd} needs {} bytes of shared memory per block", shared + per_warp);
            return Err(Error::shape(OP, reason));
        }
        let output_smem = shared + output_warps * per_warp;
        let output_threads = 32 * output_warps as u32;
        let resident = |name: &'static str, threads: u32, smem: usize| -> Result<usize, CudaError> {
            let f = self.kernels.get(name)?;
            let attr = CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;
            f.set_attribute(attr, smem as i32).during("raising a linear-attention kernel's shared-memory limit")?;
            let per_sm =
                f.occupancy_max_active_blocks_per_multiprocessor(threads, smem, None).during("querying occupancy")?;
            Ok(per_sm.max(1) as usize * self.sm_count)
        };
        let state_slots = resident("linear_attn_state_bf16", THREADS, state_smem).map_err(|e| self.err(e))?;
        let output_slots = resident("linear_attn_output_bf16", output_threads, output_smem).map_err(|e| self.err(e))?;
        // The token axis in `chunks` runs of `rows` tokens, so the state blocks fill whole waves;
        // the output blocks, one wave (each block loads its head's S once). The chunking sets the
        // order of S's f32 sums, so it depends on the device's SM count: results are bit for bit
        // the same run to run and machine to machine on one GPU model (a farm's nodes), not
        // across models (cuBLASLt's choices differ there too).
        let chunks = (STATE_WAVES * state_slots / heads_total).clamp(1, d.n.div_ceil(STATE_TOKENS));
        let rows = d.n.div_ceil(chunks).next_multiple_of(STATE_TOKENS);
        let chunks = d.n.div_ceil(rows); // no empty chunk after the rounding
        let output_blocks = (output_slots / heads_total).clamp(1, d.n.div_ceil(16));
        let out_rows = d.n.div_ceil(output_blocks).next_multiple_of(16);
        let output_blocks = d.n.div_ceil(out_rows);

        let inv_rms = self.scratch::<f32>(tokens * 2)?;
        let partial = self.scratch::<f32>(heads_total * chunks * dp * dp)?;
        let partial_z = self.scratch::<f32>(heads_total * chunks * dp)?;
        let state = self.scratch::<f16>(heads_total * dp * dp)?;
        let row_scale = self.scratch::<f32>(heads_total * dp)?;
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
            row_scale: self.ptr(&row_scale),
            z: self.ptr(&z),
            out: self.ptr(out),
            b: d.b as i32,
            n: d.n as i32,
            heads: d.heads as i32,
            head_dim: hd as i32,
            padded_head_dim: dp as i32,
            chunks: chunks as i32,
            chunk_rows: rows as i32,
            out_rows: out_rows as i32,
            norm_eps,
            attn_eps,
        };
        let stage = |label: &'static str, f: &dyn Fn() -> Result<(), CudaError>| {
            self.timed(|| format!("  linear_attn/{label}"), || f().map_err(|e| self.err(e)))
        };
        let grid = |grid_dim: (usize, usize, usize), threads: u32, smem: usize| LaunchConfig {
            grid_dim: (grid_dim.0 as u32, grid_dim.1 as u32, grid_dim.2 as u32),
            block_dim: (threads, 1, 1),
            shared_mem_bytes: smem as u32,
        };
        let launch = |name: &'static str, cfg: LaunchConfig| self.kernels.launch(&self.stream, name, cfg, &p);
        let inv_rms_cfg = grid((tokens.div_ceil(INV_RMS_TOKENS), 1, 1), THREADS, 0);
        stage("inv_rms", &|| launch("linear_attn_inv_rms_bf16", inv_rms_cfg))?;
        let state_cfg = grid((chunks, d.heads, d.b), THREADS, state_smem);
        stage("state", &|| launch("linear_attn_state_bf16", state_cfg))?;
        stage("state reduce", &|| launch("linear_attn_reduce_state", grid((dp, heads_total, 1), REDUCE_THREADS, 0)))?;
        let output_cfg = grid((output_blocks, d.heads, d.b), output_threads, output_smem);
        stage("output", &|| launch("linear_attn_output_bf16", output_cfg))
    }
}
