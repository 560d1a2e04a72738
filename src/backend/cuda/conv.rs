//! Launchers for the autoencoder convolutions (kernels/conv.cu; CPU twin backend/cpu/conv.rs).
//!
//! conv3d takes one of three paths ([`Cuda::conv_path`]): a 1×1×1 conv is one cuBLASLt product;
//! a conv with at most 256 output channels (the full-resolution layers, conv_out to RGB) runs the
//! implicit-GEMM kernel, which gathers the taps in shared memory; the rest im2col into a slab of
//! at most `SLAB_ELEMENTS` + one cuBLASLt product per slab, so scratch stays bounded at any clip
//! size.

use cudarc::driver::sys::CUfunction_attribute_enum;
use cudarc::driver::{CudaSlice, LaunchConfig};
use half::bf16;

use super::blas::{Epilogue, Gemm};
use super::error::{CudaError, DriverContext};
use super::kernels::grid_stride;
use super::params::{ConvGemmParams, ConvParams};
use super::Cuda;
use crate::backend::{ConvDims, PadMode, Write};

const THREADS: u32 = 256;
/// kernels/conv.cu implicit GEMM: positions per block, threads per block, the output-channel
/// tile widths and (K-step channels, pipeline stages) it is instantiated for (widest first), and
/// its static shared memory (the block's decoded row coordinates).
const IGEMM_BM: usize = 128;
const IGEMM_THREADS: u32 = 128;
const IGEMM_TILES: [usize; 3] = [128, 96, 64];
const IGEMM_K_STEPS: [(usize, usize); 3] = [(64, 3), (32, 4), (16, 4)];
const IGEMM_STATIC_SMEM: usize = 3 * IGEMM_BM * 4;
/// Above this many output channels im2col + cuBLASLt wins: its slab traffic (27× the input)
/// amortises over a wide product that cuBLASLt runs on Hopper's wgmma, while our mma.sync kernel
/// tops out near 280 TFLOP/s. `sana bench conv`, H200, 2026-12-02 (ms, implicit GEMM with
/// 32-channel K-steps / im2col): LTX-2 128→128 at 81×176×320 16.1 / 29.4, 128→48 9.3 / 29.8,
/// 256→256 14.8 / 16.3, 512→512 29.6 / 22.3, 1024→1024 15.1 / 8.7; Wan 96→96 3.7 / 8.0,
/// 192→192 3.4 / 4.0, 384→384 2.9 / 2.4.
const IGEMM_MAX_COUT: usize = 256;
/// im2col scratch bound: 64 Mi bf16 values (128 MiB).
const SLAB_ELEMENTS: usize = 64 << 20;
/// Slabs start on multiples of this many rows, keeping every output pointer 256-byte aligned for
/// cuBLASLt whatever C_out is.
const ROW_ALIGN: usize = 128;

/// How [`Cuda::launch_conv3d`] computes one convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvPath {
    /// 1×1×1, no stride or padding: one cuBLASLt product.
    Pointwise,
    /// kernels/conv.cu `conv3d_igemm_n{bn}_k{bk}_bf16`: `bn` output channels per block, K-steps
    /// of `bk` input channels.
    ImplicitGemm { bn: usize, bk: usize },
    /// im2col slabs + cuBLASLt.
    Im2col,
}

impl ConvPath {
    fn kernel(self) -> Option<&'static str> {
        Some(match self {
            ConvPath::ImplicitGemm { bn: 64, bk: 32 } => "conv3d_igemm_n64_k32_bf16",
            ConvPath::ImplicitGemm { bn: 96, bk: 32 } => "conv3d_igemm_n96_k32_bf16",
            ConvPath::ImplicitGemm { bn: 128, bk: 32 } => "conv3d_igemm_n128_k32_bf16",
            ConvPath::ImplicitGemm { bn: 64, bk: 64 } => "conv3d_igemm_n64_k64_bf16",
            ConvPath::ImplicitGemm { bn: 96, bk: 64 } => "conv3d_igemm_n96_k64_bf16",
            ConvPath::ImplicitGemm { bn: 128, bk: 64 } => "conv3d_igemm_n128_k64_bf16",
            ConvPath::ImplicitGemm { bn: 64, bk: 16 } => "conv3d_igemm_n64_k16_bf16",
            ConvPath::ImplicitGemm { bn: 96, bk: 16 } => "conv3d_igemm_n96_k16_bf16",
            ConvPath::ImplicitGemm { bn: 128, bk: 16 } => "conv3d_igemm_n128_k16_bf16",
            _ => return None,
        })
    }
}

/// Dynamic shared memory of an implicit-GEMM variant: its stages of (128 + bn) rows × (bk + 8)
/// bf16 (the bf16 epilogue tile, 128 × (bn + 8), fits inside).
fn igemm_smem(bn: usize, bk: usize) -> usize {
    let stages = IGEMM_K_STEPS.iter().find(|&&(k, _)| k == bk).map_or(0, |&(_, s)| s);
    stages * (IGEMM_BM + bn) * (bk + 8) * 2
}

/// The kernels' `up_shift`: log2 of the conv's spatial upsampling (1 or 2, checked by ops::conv3d).
fn up_shift(d: &ConvDims) -> i32 {
    d.upsample.trailing_zeros() as i32
}

fn is_pointwise(d: &ConvDims) -> bool {
    d.taps() == 1 && d.stride == [1; 3] && d.pad_before == [0; 3] && d.pad_after == [0; 3] && d.upsample == 1
}

impl Cuda {
    /// Every path that can compute `d` on this device: the pointwise product where it applies,
    /// im2col, and each implicit-GEMM variant whose K-step divides C_in and whose shared memory
    /// fits, widest K-step and tile first (benchmarks and tests run them all).
    pub fn conv_paths(&self, d: &ConvDims) -> Vec<ConvPath> {
        let mut paths = Vec::new();
        if is_pointwise(d) {
            paths.push(ConvPath::Pointwise);
        }
        paths.push(ConvPath::Im2col);
        for (bk, _) in IGEMM_K_STEPS {
            for bn in IGEMM_TILES {
                let fits = igemm_smem(bn, bk) + IGEMM_STATIC_SMEM <= self.max_block_smem;
                if d.c_in.is_multiple_of(bk) && fits {
                    paths.push(ConvPath::ImplicitGemm { bn, bk });
                }
            }
        }
        paths
    }

    /// The path the engine takes for `d`: pointwise when it is a plain product; the implicit GEMM
    /// for C_out ≤ 256, with the tile that leaves the fewest padded output channels (the widest on
    /// a tie) and 64-channel K-steps on the 128-wide tile, 32 on the narrower ones (`sana bench
    /// conv`, H200: 128→128 15.9 vs 16.1 ms, 256→256 14.2 vs 16.0; but 128→48 on the 64 tile 10.8
    /// vs 9.7, Wan 192→192 on the 96 tile 3.3 vs 3.2), 16-channel K-steps where C_in is a multiple
    /// of 16 only; im2col otherwise. Wan's conv_out to RGB (96→3) is on the 64 tile too: 61 of its
    /// 64 columns are padding, but the op is bound by gathering the taps, 2.8 ms per 4-frame chunk
    /// against im2col's 12.7 and a CUDA-core kernel's 3.1–4.3 (tried, 2026-12-02).
    pub fn conv_path(&self, d: &ConvDims) -> ConvPath {
        if is_pointwise(d) {
            return ConvPath::Pointwise;
        }
        let available = self.conv_paths(d);
        if d.c_out > IGEMM_MAX_COUT {
            return ConvPath::Im2col;
        }
        let padding = |bn: usize| d.c_out.div_ceil(bn) * bn - d.c_out;
        let Some(bn) = IGEMM_TILES.into_iter().min_by_key(|&bn| padding(bn)) else {
            return ConvPath::Im2col;
        };
        // 16-channel K-steps only where C_in allows no wider one: the LTX-2 encoder's conv_in
        // (C_in = 48, 81×176×320 → 128) 7.85 ms against im2col's 11.59 (`sana bench conv`, H200)
        let preferred_k: &[usize] = if bn == 128 { &[64, 32, 16] } else { &[32, 64, 16] };
        preferred_k
            .iter()
            .map(|&bk| ConvPath::ImplicitGemm { bn, bk })
            .find(|p| available.contains(p))
            .unwrap_or(ConvPath::Im2col)
    }

    /// A convolution on a given path (one of [`Self::conv_paths`]): for benchmarks and tests,
    /// which compare every path; the engine's conv3d takes [`Self::conv_path`].
    #[allow(clippy::too_many_arguments)] // the conv's operands, its path and write mode
    pub fn conv3d_on_path(
        &self,
        path: ConvPath,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        bias: Option<&CudaSlice<bf16>>,
        d: ConvDims,
        write: Write,
    ) -> crate::error::Result<()> {
        let [t, h, wo] = d.output();
        let sizes = [
            (x.len(), d.input.iter().product::<usize>() * d.c_in, "x"),
            (w.len(), d.c_out * d.taps() * d.c_in, "w"),
            (out.len(), t * h * wo * d.c_out, "out"),
        ];
        if let Some((got, want, name)) = sizes.into_iter().find(|&(got, want, _)| got != want) {
            let msg = format!("conv3d {d:?}: `{name}` has {got} values, expected {want}");
            return Err(self.err(CudaError::Unsupported(msg)));
        }
        if !self.conv_paths(&d).contains(&path) {
            return Err(self.err(CudaError::Unsupported(format!("conv3d {d:?} cannot take the {path:?} path"))));
        }
        self.launch_conv3d_with(out, x, w, bias, d, path, write).map_err(|e| self.err(e))
    }

    pub(super) fn launch_conv3d(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        bias: Option<&CudaSlice<bf16>>,
        d: ConvDims,
        write: Write,
    ) -> Result<(), CudaError> {
        self.launch_conv3d_with(out, x, w, bias, d, self.conv_path(&d), write)
    }

    /// [`Self::launch_conv3d`] on `path`, one of [`Self::conv_paths`].
    #[allow(clippy::too_many_arguments)] // the conv's operands, its path and write mode
    fn launch_conv3d_with(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        bias: Option<&CudaSlice<bf16>>,
        d: ConvDims,
        path: ConvPath,
        write: Write,
    ) -> Result<(), CudaError> {
        let [t_out, h_out, w_out] = d.output();
        let rows_total = t_out * h_out * w_out;
        let k = d.taps() * d.c_in;
        let epilogue = bias.map_or(Epilogue::None, |b| Epilogue::Bias(self.ptr(b)));
        match path {
            ConvPath::Pointwise => {
                if !is_pointwise(&d) {
                    return Err(CudaError::Unsupported(format!("conv3d {d:?} is not a pointwise product")));
                }
                let mut g = Gemm::linear(rows_total, d.c_out, k, self.ptr(x), self.ptr(w), self.ptr(out));
                g.epilogue = epilogue;
                g.accumulate = write == Write::Accumulate;
                return self.blas.gemm(&g);
            }
            ConvPath::ImplicitGemm { bn, bk } => {
                return self.launch_conv3d_igemm(out, x, w, bias, d, write, (bn, bk));
            }
            ConvPath::Im2col => {}
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
                up_shift: up_shift(&d),
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
            g.accumulate = write == Write::Accumulate;
            self.blas.gemm(&g)?;
            row0 += rows;
        }
        Ok(())
    }

    /// kernels/conv.cu `conv3d_igemm_n{bn}_k{bk}_bf16`: 128 positions × `bn` channels per block.
    #[allow(clippy::too_many_arguments)] // the conv's operands, write mode and the variant
    fn launch_conv3d_igemm(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        bias: Option<&CudaSlice<bf16>>,
        d: ConvDims,
        write: Write,
        (bn, bk): (usize, usize),
    ) -> Result<(), CudaError> {
        let path = ConvPath::ImplicitGemm { bn, bk };
        let name =
            path.kernel().ok_or_else(|| CudaError::Unsupported(format!("no implicit-GEMM conv kernel {path:?}")))?;
        if !d.c_in.is_multiple_of(bk) {
            return Err(CudaError::Unsupported(format!("{path:?} needs C_in a multiple of {bk}, got {}", d.c_in)));
        }
        let p = self.conv_gemm_params(out, x, w, bias, &d, write);
        let [t_out, h_out, w_out] = d.output();
        let blocks = (t_out * h_out * w_out).div_ceil(IGEMM_BM) * d.c_out.div_ceil(bn);
        let smem = igemm_smem(bn, bk);
        let f = self.kernels.get(name)?;
        f.set_attribute(CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem as i32)
            .during("raising the shared-memory limit of the implicit-GEMM conv")?;
        let grid = u32::try_from(blocks)
            .map_err(|_| CudaError::Unsupported(format!("conv3d {d:?} needs {blocks} blocks, over the grid limit")))?;
        let cfg =
            LaunchConfig { grid_dim: (grid, 1, 1), block_dim: (IGEMM_THREADS, 1, 1), shared_mem_bytes: smem as u32 };
        self.kernels.launch(&self.stream, name, cfg, &p)
    }

    /// The implicit-GEMM kernels' parameters.
    fn conv_gemm_params(
        &self,
        out: &CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        bias: Option<&CudaSlice<bf16>>,
        d: &ConvDims,
        write: Write,
    ) -> ConvGemmParams {
        let [t_out, h_out, w_out] = d.output();
        let i = |v: usize| v as i32;
        ConvGemmParams {
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
            up_shift: up_shift(d),
            accumulate: i32::from(write == Write::Accumulate),
        }
    }

    pub(super) fn copy_device_range<T: cudarc::driver::DeviceRepr>(
        &self,
        dst: &mut CudaSlice<T>,
        dst_offset: usize,
        src: &CudaSlice<T>,
        src_offset: usize,
        len: usize,
    ) -> Result<(), CudaError> {
        let src = src.slice(src_offset..src_offset + len);
        let mut dst = dst.slice_mut(dst_offset..dst_offset + len);
        self.stream.memcpy_dtod(&src, &mut dst).during("copying frames")
    }
}
