//! Launcher for the fused softmax cross-attention to the caption (kernels/cross_attn.cu; CPU twin
//! backend/cpu/cross_attn.rs): one kernel, scores kept in shared memory, bf16 tensor cores.

use cudarc::driver::sys::CUfunction_attribute_enum;
use cudarc::driver::{CudaSlice, LaunchConfig};
use half::bf16;

use super::error::{CudaError, DriverContext};
use super::params::CrossAttnParams;
use super::Cuda;
use crate::backend::AttnDims;
use crate::error::{Error, Result};

/// kernels/cross_attn.cu: 4 warps of 16 query rows, 64-key tiles, head dim ≤ 128, L ≤ 512.
const QUERIES_PER_BLOCK: usize = 64;
const KEY_TILE: usize = 64;
const MAX_HEAD_DIM: usize = 128;
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
        if d.l > MAX_KEYS || d.l == 0 {
            return Err(Error::shape(OP, format!("{} caption tokens: the kernel takes 1 to {MAX_KEYS}", d.l)));
        }
        if d.head_dim > MAX_HEAD_DIM {
            return Err(Error::shape(OP, format!("head_dim {} exceeds the kernel's {MAX_HEAD_DIM}", d.head_dim)));
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
        let smem =
            2 * QUERIES_PER_BLOCK * (padded_head_dim + 8) * 2 + padded_l * 4 + QUERIES_PER_BLOCK * (padded_l + 4) * 4;
        let run = || -> Result<(), CudaError> {
            let f = self.kernels.get("cross_attention_bf16")?;
            f.set_attribute(CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem as i32)
                .during("raising the shared-memory limit of cross_attention_bf16")?;
            let cfg = LaunchConfig {
                grid_dim: (d.n.div_ceil(QUERIES_PER_BLOCK) as u32, d.heads as u32, d.b as u32),
                block_dim: (128, 1, 1),
                shared_mem_bytes: smem as u32,
            };
            self.kernels.launch(&self.stream, "cross_attention_bf16", cfg, &p)
        };
        run().map_err(|e| self.err(e))
    }
}
