//! Launchers for the autoencoder convolutions (kernels/conv.cu; CPU twin backend/cpu/conv.rs).
//!
//! conv3d = im2col into a slab of at most `SLAB_ELEMENTS` + one cuBLASLt product (with the bias
//! epilogue) per slab, so scratch stays bounded at any clip size; a 1×1×1 conv is the product
//! alone.

use cudarc::driver::CudaSlice;
use half::bf16;

use super::blas::{Epilogue, Gemm};
use super::error::{CudaError, DriverContext};
use super::kernels::grid_stride;
use super::params::{ConvParams, UpsampleParams};
use super::Cuda;
use crate::backend::{ConvDims, GridDims, PadMode};

const THREADS: u32 = 256;
/// im2col scratch bound: 64 Mi bf16 values (128 MiB).
const SLAB_ELEMENTS: usize = 64 << 20;
/// Slabs start on multiples of this many rows, keeping every output pointer 256-byte aligned for
/// cuBLASLt whatever C_out is.
const ROW_ALIGN: usize = 128;

impl Cuda {
    pub(super) fn launch_conv3d(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        bias: Option<&CudaSlice<bf16>>,
        d: ConvDims,
    ) -> Result<(), CudaError> {
        let [t_out, h_out, w_out] = d.output();
        let rows_total = t_out * h_out * w_out;
        let k = d.taps() * d.c_in;
        let epilogue = bias.map_or(Epilogue::None, |b| Epilogue::Bias(self.ptr(b)));
        let pointwise = d.taps() == 1 && d.stride == [1; 3] && d.pad_before == [0; 3] && d.pad_after == [0; 3];
        if pointwise {
            let mut g = Gemm::linear(rows_total, d.c_out, k, self.ptr(x), self.ptr(w), self.ptr(out));
            g.epilogue = epilogue;
            return self.blas.gemm(&g);
        }
        let slab_rows = (SLAB_ELEMENTS / k).max(ROW_ALIGN) / ROW_ALIGN * ROW_ALIGN;
        let slab_rows = slab_rows.min(rows_total);
        // SAFETY: every slab is written by im2col before the product reads it.
        let cols = unsafe { self.stream.alloc::<bf16>(slab_rows * k) }.during("allocating im2col scratch")?;
        let i = |v: usize| v as i32;
        let mut row0 = 0;
        while row0 < rows_total {
            let rows = slab_rows.min(rows_total - row0);
            let p = ConvParams {
                out: self.ptr(&cols),
                x: self.ptr(x),
                row0: row0 as i64,
                rows: i(rows),
                pad2: 0,
                t: i(d.input[0]),
                h: i(d.input[1]),
                w_in: i(d.input[2]),
                c_in: i(d.c_in),
                t_out: i(t_out),
                h_out: i(h_out),
                w_out: i(w_out),
                c_out: i(d.c_out),
                kt: i(d.kernel[0]),
                kh: i(d.kernel[1]),
                kw: i(d.kernel[2]),
                reflect: i32::from(d.spatial_pad == PadMode::Reflect),
                st: i(d.stride[0]),
                sh: i(d.stride[1]),
                sw: i(d.stride[2]),
                pt: i(d.pad_before[0]),
                ph: i(d.pad_before[1]),
                pw: i(d.pad_before[2]),
            };
            self.kernels.launch(&self.stream, "im2col_bf16", grid_stride(rows * k, THREADS), &p)?;
            let out_ptr = self.ptr(out) + (row0 * d.c_out * std::mem::size_of::<bf16>()) as u64;
            let mut g = Gemm::linear(rows, d.c_out, k, self.ptr(&cols), self.ptr(w), out_ptr);
            g.epilogue = epilogue;
            self.blas.gemm(&g)?;
            row0 += rows;
        }
        Ok(())
    }

    pub(super) fn launch_upsample_nearest2x(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        d: GridDims,
    ) -> Result<(), CudaError> {
        let p = UpsampleParams {
            out: self.ptr(out),
            x: self.ptr(x),
            frames: (d.b * d.t) as i32,
            h: d.h as i32,
            w: d.w as i32,
            c: d.c as i32,
        };
        self.kernels.launch(&self.stream, "upsample_nearest2x_bf16", grid_stride(out.len(), THREADS), &p)
    }

    pub(super) fn copy_device_range(
        &self,
        dst: &mut CudaSlice<bf16>,
        dst_offset: usize,
        src: &CudaSlice<bf16>,
        src_offset: usize,
        len: usize,
    ) -> Result<(), CudaError> {
        let src = src.slice(src_offset..src_offset + len);
        let mut dst = dst.slice_mut(dst_offset..dst_offset + len);
        self.stream.memcpy_dtod(&src, &mut dst).during("copying frames")
    }
}
