//! Launchers for patchify / unpatchify (kernels/patch.cu; CPU twin backend/cpu/patch.rs).

use cudarc::driver::CudaSlice;
use half::bf16;

use super::error::CudaError;
use super::kernels::grid_stride;
use super::params::PatchParams;
use super::Cuda;
use crate::backend::PatchDims;

const THREADS: u32 = 256;

impl Cuda {
    pub(super) fn launch_patch(
        &self,
        kernel: &'static str,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        d: PatchDims,
    ) -> Result<(), CudaError> {
        let [pt, ph, pw] = d.patch;
        let p = PatchParams {
            out: self.ptr(out),
            x: self.ptr(x),
            b: d.b as i32,
            c: d.c as i32,
            t: d.t as i32,
            h: d.h as i32,
            w: d.w as i32,
            pt: pt as i32,
            ph: ph as i32,
            pw: pw as i32,
        };
        self.kernels.launch(&self.stream, kernel, grid_stride(out.len(), THREADS), &p)
    }
}
