//! Launchers for `linear` and `activation` (MODEL.md: every Linear and 1×1 conv).
//! Bias and GELU-tanh ride on the cuBLASLt epilogue; SiLU is a second in-place pass.

use cudarc::driver::CudaSlice;
use half::bf16;

use super::blas::{Epilogue, Gemm};
use super::error::CudaError;
use super::kernels::grid_stride;
use super::params::{act_code, ActivationParams, DevPtr};
use super::Cuda;
use crate::backend::{Activation, LinearDims, Write};

const THREADS: u32 = 256;

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
