//! Launchers for `linear` and `activation` (MODEL.md: every Linear and 1×1 conv).
//! Bias and GELU-tanh ride on the cuBLASLt epilogue; SiLU is a second in-place pass.

use cudarc::driver::{CudaSlice, LaunchConfig};
use half::bf16;

use super::blas::{Epilogue, Gemm};
use super::error::CudaError;
use super::error::DriverContext;
use super::kernels::grid_stride;
use super::params::{act_code, ActivationParams, DevPtr, GateScaleParams};
use super::Cuda;
use crate::backend::{Activation, LinearDims, Modulation, TokenDims, Write};

const THREADS: u32 = 256;
/// gate_scaled_weight_bf16's block: one weight row of 280 16-byte chunks at k = 2240.
const SCALE_THREADS: u32 = 128;

impl Cuda {
    #[allow(clippy::too_many_arguments)] // mirrors Backend::linear
    pub(super) fn launch_linear(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        bias: Option<&CudaSlice<bf16>>,
        d: LinearDims,
        act: Activation,
        write: Write,
    ) -> Result<(), CudaError> {
        let bias_ptr = bias.map(|b| self.ptr(b));
        let (epilogue, post) = match (act, bias_ptr) {
            (Activation::GeluTanh, Some(b)) => (Epilogue::GeluBias(b), Activation::Identity),
            (_, Some(b)) => (Epilogue::Bias(b), act),
            (_, None) => (Epilogue::None, act),
        };
        let mut g = Gemm::linear(d.rows, d.n, d.k, self.ptr(x), self.ptr(w), self.ptr(out));
        g.epilogue = epilogue;
        g.accumulate = write == Write::Accumulate;
        self.blas.gemm(&g)?;
        if post != Activation::Identity {
            let p = self.ptr(out);
            self.launch_activation(p, p, d.rows * d.n, post)?;
        }
        Ok(())
    }

    /// x += m[gate] ⊙ (y · wᵀ + bias) for a sample-wide modulation, as one strided-batched
    /// product over the samples, each with the gate folded into its own copy of the weights (kernels/norm.cu gate_scaled_weight_bf16)
    /// and x as the product's addend: the (B, N, D) projection is never written or read back,
    /// which was the gated-residual pass's 3 × 2 bytes per element. Scaling the weights costs
    /// (B + 1) · D · k · 2 bytes, ~30 MB for the 2240² attention output at batch 2.
    /// Returns false (nothing done) where the fold does not apply: per-token modulation, or k
    /// not a multiple of 8 (the scaling kernel's 16-byte chunks).
    #[allow(clippy::too_many_arguments)] // mirrors Backend::linear_gated_residual
    pub(super) fn launch_linear_gated_residual(
        &self,
        x: &mut CudaSlice<bf16>,
        y: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        bias: Option<&CudaSlice<bf16>>,
        k: usize,
        m: &Modulation<Self>,
        gate: usize,
        d: TokenDims,
    ) -> Result<bool, CudaError> {
        if m.per_token || !k.is_multiple_of(8) {
            return Ok(false);
        }
        // SAFETY: every element is written by gate_scaled_weight_bf16 before the products read it.
        let scaled = unsafe { self.stream.alloc::<bf16>(d.b * d.d * k) }.during("allocating gate-scaled weights")?;
        let scaled_bias = unsafe { self.stream.alloc::<bf16>(d.b * d.d) }.during("allocating gate-scaled bias")?;
        let p = GateScaleParams {
            w: self.ptr(w),
            bias: bias.map_or(0, |b| self.ptr(b)),
            w_out: self.ptr(&scaled),
            bias_out: self.ptr(&scaled_bias),
            m: self.mod_params(m),
            gate: gate as i32,
            b: d.b as i32,
            n: d.d as i32,
            k: k as i32,
        };
        let cfg = LaunchConfig { grid_dim: (d.d as u32, 1, 1), block_dim: (SCALE_THREADS, 1, 1), shared_mem_bytes: 0 };
        self.kernels.launch(&self.stream, "gate_scaled_weight_bf16", cfg, &p)?;
        // one launch over the samples: per-sample launches of 9,680 rows measured 721 TFLOP/s at
        // 720p in `sana bench gemm`, the 19,360-row product of the same shape 732
        let mut g = Gemm::linear(d.n, d.d, k, self.ptr(y), p.w_out, self.ptr(x));
        g.accumulate = true;
        (g.batch, g.stride_a, g.stride_b, g.stride_c) = (d.b, d.n * k, d.d * k, d.n * d.d);
        if bias.is_some() {
            g.epilogue = Epilogue::Bias(p.bias_out);
            g.stride_bias = d.d;
        }
        self.blas.gemm(&g)?;
        Ok(true)
    }

    /// out = act(x) elementwise; `out` may equal `x`.
    pub(super) fn launch_activation(
        &self,
        out: DevPtr,
        x: DevPtr,
        len: usize,
        act: Activation,
    ) -> Result<(), CudaError> {
        let p = ActivationParams { out, x, len: len as i64, act: act_code(act), pad: 0 };
        self.kernels.launch(&self.stream, "activation_bf16", grid_stride(len, THREADS), &p)
    }
}
