//! Launchers for the autoencoder convolutions (kernels/conv.cu; CPU twin backend/cpu/conv.rs).
//!
//! conv3d: a 1×1×1 conv is one cuBLASLt product; a narrow one (≤ 96 output channels, C_in a
//! multiple of 32: the autoencoders' full-resolution layers) runs the implicit-GEMM kernel, which
//! gathers the taps in shared memory; the rest im2col into a slab of at most `SLAB_ELEMENTS` +
//! one cuBLASLt product per slab, so scratch stays bounded at any clip size.

use cudarc::driver::sys::CUfunction_attribute_enum;
use cudarc::driver::{CudaSlice, LaunchConfig};
use half::bf16;

use super::blas::{Epilogue, Gemm};
use super::error::{CudaError, DriverContext};
use super::kernels::grid_stride;
use super::params::{ConvGemmParams, ConvParams, UpsampleParams};
use super::Cuda;
use crate::backend::{ConvDims, GridDims, PadMode};

const THREADS: u32 = 256;
/// kernels/conv.cu implicit GEMM tile: positions × output channels × input channels per step.
const IGEMM_BM: usize = 128;
const IGEMM_BN: usize = 96;
const IGEMM_BK: usize = 32;
const IGEMM_STAGES: usize = 3;
/// Below this many output channels (conv_out's 3) most of a 96-wide tile would be padding: im2col.
const IGEMM_MIN_COUT: usize = 16;
/// Above this, im2col + cuBLASLt wins: measured on the H200 (BENCHMARKS.md), the implicit GEMM
/// runs at ~132 TFLOP/s whatever the width, while im2col + cuBLASLt reaches 100 / 197 / 331 TFLOP/s
/// at 96 / 192 / 384 output channels (its 27× slab traffic amortises over wider products).
const IGEMM_MAX_COUT: usize = 96;
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
        if d.c_in.is_multiple_of(IGEMM_BK) && (IGEMM_MIN_COUT..=IGEMM_MAX_COUT).contains(&d.c_out) {
            return self.launch_conv3d_igemm(out, x, w, bias, d);
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

    /// kernels/conv.cu `conv3d_igemm_bf16`: 128 positions × 96 channels per block.
    fn launch_conv3d_igemm(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        bias: Option<&CudaSlice<bf16>>,
        d: ConvDims,
    ) -> Result<(), CudaError> {
        let [t_out, h_out, w_out] = d.output();
        let i = |v: usize| v as i32;
        let p = ConvGemmParams {
            out: self.ptr(out),
            x: self.ptr(x),
            w: self.ptr(w),
            bias: bias.map_or(0, |b| self.ptr(b)),
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
        let rows = t_out * h_out * w_out;
        // three stages of (128 + 96) rows × 40 bf16; the f32 epilogue tile (128 × 100) fits inside
        let smem = IGEMM_STAGES * (IGEMM_BM + IGEMM_BN) * (IGEMM_BK + 8) * 2;
        let f = self.kernels.get("conv3d_igemm_bf16")?;
        f.set_attribute(CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem as i32)
            .during("raising the shared-memory limit of conv3d_igemm_bf16")?;
        let cfg = LaunchConfig {
            grid_dim: (rows.div_ceil(IGEMM_BM) as u32, d.c_out.div_ceil(IGEMM_BN) as u32, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: smem as u32,
        };
        self.kernels.launch(&self.stream, "conv3d_igemm_bf16", cfg, &p)
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
