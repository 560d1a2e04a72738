//! Launchers for the sampler's elementwise ops (kernels/sampler.cu; CPU twin backend/cpu/sampler.rs).

use cudarc::driver::CudaSlice;
use half::bf16;

use super::error::CudaError;
use super::kernels::grid_stride;
use super::params::SamplerParams;
use super::Cuda;

const THREADS: u32 = 256;

impl Cuda {
    pub(super) fn launch_table_to_tensor(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<f32>,
    ) -> Result<(), CudaError> {
        let p = SamplerParams {
            out: self.ptr(out),
            a: self.ptr(x),
            len: out.len() as i64,
            n: x.len() as i64,
            ..Default::default()
        };
        self.kernels.launch(&self.stream, "table_to_tensor_bf16", grid_stride(out.len(), THREADS), &p)
    }

    pub(super) fn launch_guided_velocity(
        &self,
        out: &mut CudaSlice<f32>,
        model_out: &CudaSlice<bf16>,
        scale: f32,
    ) -> Result<(), CudaError> {
        let copies = model_out.len() / out.len().max(1);
        let p = SamplerParams {
            out: self.ptr(out),
            a: self.ptr(model_out),
            len: model_out.len() as i64,
            n: out.len() as i64,
            keep: scale,
            terms: copies as i32,
            ..Default::default()
        };
        self.kernels.launch(&self.stream, "guided_velocity_f32", grid_stride(out.len(), THREADS), &p)
    }

    pub(super) fn launch_lincomb(
        &self,
        out: &mut CudaSlice<f32>,
        keep: f32,
        terms: &[(f32, &CudaSlice<f32>)],
    ) -> Result<(), CudaError> {
        let term = |i: usize| terms.get(i).map_or((0.0, 0), |&(c, t)| (c, self.ptr(t)));
        let ((ca, a), (cb, b), (cc, c)) = (term(0), term(1), term(2));
        let p = SamplerParams {
            out: self.ptr(out),
            a,
            b,
            c,
            len: out.len() as i64,
            n: out.len() as i64,
            keep,
            ca,
            cb,
            cc,
            terms: terms.len() as i32,
            pad: 0,
        };
        self.kernels.launch(&self.stream, "lincomb_f32", grid_stride(out.len(), THREADS), &p)
    }
}
