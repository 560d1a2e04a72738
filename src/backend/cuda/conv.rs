//! Launchers for the autoencoder convolutions (kernels/conv.cu; CPU twin backend/cpu/conv.rs).
//!
//! conv3d takes one of five paths ([`Cuda::conv_path`]): a 1×1×1 conv is one cuBLASLt product;
//! on sm_90, a conv with C_in a multiple of 64 and enough output channels and positions
//! (`wgmma_choice`) runs our wgmma implicit GEMM (kernels/conv_wgmma.cu); otherwise a conv with
//! at most 256 output channels (the full-resolution layers, conv_out to RGB) runs one of our
//! mma.sync implicit-GEMM kernels, which gather the taps in shared memory: the halo-tiled one
//! where the taps are 3×3 at stride 1, the plain one otherwise; the rest im2col into a slab of at
//! most `SLAB_ELEMENTS` + one cuBLASLt product per slab, so scratch stays bounded at any clip size.

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
/// kernels/conv.cu implicit GEMM, every instantiation: (positions per block = threads per block,
/// output channels per block, K-step channels, entry point).
const IGEMM_KERNELS: [(usize, usize, usize, &str); 12] = [
    (128, 128, 64, "conv3d_igemm_m128_n128_k64_bf16"),
    (128, 96, 64, "conv3d_igemm_m128_n96_k64_bf16"),
    (128, 64, 64, "conv3d_igemm_m128_n64_k64_bf16"),
    (128, 128, 32, "conv3d_igemm_m128_n128_k32_bf16"),
    (128, 96, 32, "conv3d_igemm_m128_n96_k32_bf16"),
    (128, 64, 32, "conv3d_igemm_m128_n64_k32_bf16"),
    (128, 128, 16, "conv3d_igemm_m128_n128_k16_bf16"),
    (128, 96, 16, "conv3d_igemm_m128_n96_k16_bf16"),
    (128, 64, 16, "conv3d_igemm_m128_n64_k16_bf16"),
    (256, 128, 64, "conv3d_igemm_m256_n128_k64_bf16"),
    (256, 96, 64, "conv3d_igemm_m256_n96_k64_bf16"),
    (256, 64, 64, "conv3d_igemm_m256_n64_k64_bf16"),
];
/// kernels/conv.cu halo-tiled implicit GEMM (3×3 spatial taps, stride 1): (output channels per
/// block, entry point); 128 positions per block, 32-channel K-steps, 4 weight stages.
const HALO_KERNELS: [(usize, &str); 3] = [
    (128, "conv3d_halo_m128_n128_k32_bf16"),
    (96, "conv3d_halo_m128_n96_k32_bf16"),
    (64, "conv3d_halo_m128_n64_k32_bf16"),
];
/// kernels/conv_wgmma.cu (sm_90a, where loaded): (positions per block, output channels per block,
/// pipeline stages, entry point); 256 threads, 64-channel K-steps.
const WGMMA_KERNELS: [(usize, usize, usize, &str); 3] = [
    (128, 256, 4, "conv3d_wgmma_m128_n256_bf16"),
    (256, 128, 4, "conv3d_wgmma_m256_n128_bf16"),
    (128, 128, 6, "conv3d_wgmma_m128_n128_bf16"),
];
const WGMMA_BK: usize = 64;
/// Below this many blocks (4 waves of the H100/H200's 132 SMs at one block each) a wgmma conv
/// leaves SMs idle in its last wave and the engine keeps the path it took before (im2col at 1024
/// output channels on LTX-2's 13×22×40 latent: 1.10 ms against 1.15).
const WGMMA_MIN_BLOCKS: usize = 4 * 132;
/// Narrower outputs leave most of a 128-wide tile as padding: LTX-2's conv_out (128 → 48) stays
/// on the halo kernel, 8.61 ms against 9.77.
const WGMMA_MIN_COUT: usize = 96;
const WGMMA_THREADS: usize = 256;
const HALO_BM: usize = 128;
const HALO_BK: usize = 32;
/// Patch widths (positions per row) the halo kernel takes; its shared halo holds (128 / tile_w + 2)
/// × (tile_w + 2) positions, at most 264 (`halo::kMaxPositions`).
const HALO_TILE_WIDTHS: [usize; 3] = [64, 32, 16];
const HALO_MAX_POSITIONS: usize = 264;
/// Output-channel tile widths, widest first.
const IGEMM_TILES: [usize; 3] = [128, 96, 64];
/// Pipeline stages per K-step width (kernels/conv.cu's instantiations).
fn igemm_stages(bk: usize) -> usize {
    if bk == 64 {
        3
    } else {
        4
    }
}
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
    /// kernels/conv.cu `conv3d_igemm_m{bm}_n{bn}_k{bk}_bf16`: `bm` output positions × `bn`
    /// output channels per block, K-steps of `bk` input channels.
    ImplicitGemm { bm: usize, bn: usize, bk: usize },
    /// kernels/conv.cu `conv3d_halo_m128_n{bn}_k32_bf16`: the implicit GEMM over a patch of
    /// output positions, its input halo staged once per temporal tap for the 9 spatial taps.
    Halo { bn: usize },
    /// kernels/conv_wgmma.cu `conv3d_wgmma_m{bm}_n{bn}_bf16` (sm_90a): the implicit GEMM on
    /// warpgroup MMA, 64-channel K-steps.
    Wgmma { bm: usize, bn: usize },
    /// im2col slabs + cuBLASLt.
    Im2col,
}

impl ConvPath {
    fn kernel(self) -> Option<&'static str> {
        match self {
            ConvPath::ImplicitGemm { bm, bn, bk } => {
                IGEMM_KERNELS.iter().find(|&&(m, n, k, _)| (m, n, k) == (bm, bn, bk)).map(|&(.., name)| name)
            }
            ConvPath::Halo { bn } => HALO_KERNELS.iter().find(|&&(n, _)| n == bn).map(|&(_, name)| name),
            ConvPath::Wgmma { bm, bn } => wgmma_variant(bm, bn).map(|(_, name)| name),
            _ => None,
        }
    }
}

/// Shared memory of an implicit-GEMM variant: dynamic, its stages of (bm + bn) rows × (bk + 8)
/// bf16 (the bf16 epilogue tile, bm × (bn + 8), fits inside); static, the block's decoded row
/// coordinates (3 × bm i32).
fn igemm_smem(bm: usize, bn: usize, bk: usize) -> (usize, usize) {
    (igemm_stages(bk) * (bm + bn) * (bk + 8) * 2, 3 * bm * 4)
}

/// The wgmma variant of `bm` positions × `bn` channels: (its pipeline stages, its entry point).
fn wgmma_variant(bm: usize, bn: usize) -> Option<(usize, &'static str)> {
    WGMMA_KERNELS.iter().find(|&&(m, n, ..)| (m, n) == (bm, bn)).map(|&(.., stages, name)| (stages, name))
}

/// Dynamic shared memory of a wgmma variant: its stages of (bm + bn) rows × 128 bytes, 1024 bytes
/// to align them to the swizzle atom, the block's decoded row coordinates (3 × bm i32).
fn wgmma_smem(bm: usize, bn: usize, stages: usize) -> usize {
    stages * (bm + bn) * WGMMA_BK * 2 + 1024 + 3 * bm * 4
}

/// The wgmma variant the engine takes for `d` where it pays: C_in a multiple of 64, C_out ≥
/// `WGMMA_MIN_COUT`, at least `WGMMA_MIN_BLOCKS` blocks. 128 positions × 256 channels when C_out is
/// a multiple of 256 (LTX-2 decoder 512→512 1.88 ms against 2.06 on 256 × 128, 256→256 4.30
/// against 4.39), else 256 × 128 (128→128 10.18 against 19.69, Wan 384→384 1.59 against 2.09).
fn wgmma_choice(d: &ConvDims) -> Option<ConvPath> {
    if d.c_out < WGMMA_MIN_COUT || !d.c_in.is_multiple_of(WGMMA_BK) {
        return None;
    }
    let (bm, bn) = if d.c_out.is_multiple_of(256) { (128, 256) } else { (256, 128) };
    let [t, h, w] = d.output();
    let blocks = (t * h * w).div_ceil(bm) * d.c_out.div_ceil(bn);
    (blocks >= WGMMA_MIN_BLOCKS).then_some(ConvPath::Wgmma { bm, bn })
}

/// Dynamic shared memory of the halo-tiled kernel: two halos and 4 weight stages, rows of
/// 32 + 8 bf16.
fn halo_smem(bn: usize) -> usize {
    (2 * HALO_MAX_POSITIONS + 4 * bn) * (HALO_BK + 8) * 2
}

/// Can the halo-tiled kernel compute `d`: 3×3 spatial taps at stride 1 on x as stored, C_in a
/// multiple of its K-step.
fn halo_applies(d: &ConvDims) -> bool {
    d.kernel[1..] == [3, 3] && d.stride[1..] == [1, 1] && d.upsample == 1 && d.c_in.is_multiple_of(HALO_BK)
}

/// The halo kernel's patch width for an output frame of h × w: the one that computes the fewest
/// positions past the frame's edges (the widest on a tie: the smallest halo per position).
fn halo_tile_w(h: usize, w: usize) -> usize {
    let computed = |tw: usize| w.div_ceil(tw) * tw * h.div_ceil(HALO_BM / tw) * (HALO_BM / tw);
    HALO_TILE_WIDTHS.into_iter().min_by_key(|&tw| computed(tw)).unwrap_or(HALO_TILE_WIDTHS[0])
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
        if halo_applies(d) {
            for (bn, _) in HALO_KERNELS {
                if halo_smem(bn) <= self.max_block_smem {
                    paths.push(ConvPath::Halo { bn });
                }
            }
        }
        for (bm, bn, bk, _) in IGEMM_KERNELS {
            let (dynamic, fixed) = igemm_smem(bm, bn, bk);
            if d.c_in.is_multiple_of(bk) && dynamic + fixed <= self.max_block_smem {
                paths.push(ConvPath::ImplicitGemm { bm, bn, bk });
            }
        }
        for (bm, bn, stages, name) in WGMMA_KERNELS {
            if self.kernels.has(name)
                && d.c_in.is_multiple_of(WGMMA_BK)
                && wgmma_smem(bm, bn, stages) <= self.max_block_smem
            {
                paths.push(ConvPath::Wgmma { bm, bn });
            }
        }
        paths
    }

    /// The path the engine takes for `d`: pointwise when it is a plain product; on sm_90 with C_in
    /// a multiple of 64 and C_out ≥ 96, the wgmma implicit GEMM ([`Self::wgmma_path`]), which was
    /// the fastest path on 11 of the 16 bench shapes (`sana bench conv`, H200, 2026-12-03,
    /// `bench-results/run_2026-12-03-s7d`: LTX-2 128→128 at 83×176×320 10.18 ms against the halo
    /// kernel's 14.94, encoder 512→512 16.25 against im2col's 22.33, 256→256 8.33 against 13.78;
    /// Wan 384→384 1.59 against 2.44). Otherwise, for C_out ≤ 256, with the output-channel tile
    /// that leaves the fewest padded channels (the widest on a tie):
    /// - C_in ≥ 256: the 256-position mma.sync implicit GEMM with 64-channel K-steps (s7a:
    ///   LTX-2 decoder 256→256 7.10 ms against the 128-position kernel's 7.43 and the halo
    ///   kernel's 7.29);
    /// - otherwise, 3×3 spatial taps at stride 1: the halo-tiled kernel, which stages each input
    ///   position once per temporal tap instead of once per spatial tap (s7a: LTX-2 128→128 at
    ///   83×176×320 14.84 ms against 16.22, 128→48 8.60 against 9.41; Wan 96→96 2.93 against
    ///   3.41, conv_out 96→3 2.58 against 2.78);
    /// - the rest (strided or upsampling convs off the wgmma path, C_in not a multiple of 32): the
    ///   128-position implicit GEMM, 64-channel K-steps on the 128-wide tile, 32 on the narrower
    ///   ones (128→48 on the 64 tile 10.8 vs 9.7 ms), 16 where C_in allows no wider.
    ///
    /// Wan's conv_out to RGB (96→3) is on the 64 tile: 61 of its 64 columns are padding, but the op
    /// is bound by gathering the taps, 2.8 ms per 4-frame chunk on the implicit GEMM against
    /// im2col's 12.7 and a CUDA-core kernel's 3.1–4.3 (tried, 2026-12-02). im2col + cuBLASLt for
    /// everything wider (see `IGEMM_MAX_COUT`).
    pub fn conv_path(&self, d: &ConvDims) -> ConvPath {
        if is_pointwise(d) {
            return ConvPath::Pointwise;
        }
        if let Some(path) = self.wgmma_path(d) {
            return path;
        }
        if d.c_out > IGEMM_MAX_COUT {
            return ConvPath::Im2col;
        }
        let available = self.conv_paths(d);
        let padding = |bn: usize| d.c_out.div_ceil(bn) * bn - d.c_out;
        let Some(bn) = IGEMM_TILES.into_iter().min_by_key(|&bn| padding(bn)) else {
            return ConvPath::Im2col;
        };
        let preferred =
            if d.c_in >= 256 { ConvPath::ImplicitGemm { bm: 256, bn, bk: 64 } } else { ConvPath::Halo { bn } };
        // 16-channel K-steps only where C_in allows no wider one: the LTX-2 encoder's conv_in
        // (C_in = 48, 81×176×320 → 128) 7.85 ms against im2col's 11.59 (`sana bench conv`, H200)
        let fallback_k: &[usize] = if bn == 128 { &[64, 32, 16] } else { &[32, 64, 16] };
        std::iter::once(preferred)
            .chain(fallback_k.iter().map(|&bk| ConvPath::ImplicitGemm { bm: 128, bn, bk }))
            .find(|p| available.contains(p))
            .unwrap_or(ConvPath::Im2col)
    }

    /// [`wgmma_choice`] where this device has that kernel and its shared memory fits.
    fn wgmma_path(&self, d: &ConvDims) -> Option<ConvPath> {
        wgmma_choice(d).filter(|path| self.conv_paths(d).contains(path))
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
            ConvPath::ImplicitGemm { .. } | ConvPath::Halo { .. } | ConvPath::Wgmma { .. } => {
                return self.launch_conv3d_igemm(out, x, w, bias, d, write, path);
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

    /// kernels/conv.cu `conv3d_igemm_m{bm}_n{bn}_k{bk}_bf16` (`bm` consecutive positions × `bn`
    /// channels per block) or `conv3d_halo_m128_n{bn}_k32_bf16` (a patch of 128 positions in one
    /// frame × `bn` channels).
    #[allow(clippy::too_many_arguments)] // the conv's operands, write mode and the variant
    fn launch_conv3d_igemm(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        bias: Option<&CudaSlice<bf16>>,
        d: ConvDims,
        write: Write,
        path: ConvPath,
    ) -> Result<(), CudaError> {
        let name = path.kernel().ok_or_else(|| CudaError::Unsupported(format!("no conv kernel {path:?}")))?;
        let mut p = self.conv_gemm_params(out, x, w, bias, &d, write);
        let [t_out, h_out, w_out] = d.output();
        let (threads, blocks, smem) = match path {
            ConvPath::ImplicitGemm { bm, bn, bk } => {
                if !d.c_in.is_multiple_of(bk) {
                    let msg = format!("{path:?} needs C_in a multiple of {bk}, got {}", d.c_in);
                    return Err(CudaError::Unsupported(msg));
                }
                (bm, (t_out * h_out * w_out).div_ceil(bm) * d.c_out.div_ceil(bn), igemm_smem(bm, bn, bk).0)
            }
            ConvPath::Wgmma { bm, bn } => {
                if !d.c_in.is_multiple_of(WGMMA_BK) {
                    let msg = format!("{path:?} needs C_in a multiple of {WGMMA_BK}, got {}", d.c_in);
                    return Err(CudaError::Unsupported(msg));
                }
                let (stages, _) = wgmma_variant(bm, bn)
                    .ok_or_else(|| CudaError::Unsupported(format!("no wgmma conv kernel {path:?}")))?;
                let blocks = (t_out * h_out * w_out).div_ceil(bm) * d.c_out.div_ceil(bn);
                (WGMMA_THREADS, blocks, wgmma_smem(bm, bn, stages))
            }
            ConvPath::Halo { bn } => {
                if !halo_applies(&d) {
                    return Err(CudaError::Unsupported(format!(
                        "conv3d {d:?} is not a 3×3 stride-1 conv for {path:?}"
                    )));
                }
                let tw = halo_tile_w(h_out, w_out);
                p.tile_w = tw as i32;
                let patches = t_out * h_out.div_ceil(HALO_BM / tw) * w_out.div_ceil(tw);
                (HALO_BM, patches * d.c_out.div_ceil(bn), halo_smem(bn))
            }
            _ => return Err(CudaError::Unsupported(format!("{path:?} is not an implicit-GEMM path"))),
        };
        let f = self.kernels.get(name)?;
        f.set_attribute(CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem as i32)
            .during("raising the shared-memory limit of the implicit-GEMM conv")?;
        let grid = u32::try_from(blocks)
            .map_err(|_| CudaError::Unsupported(format!("conv3d {d:?} needs {blocks} blocks, over the grid limit")))?;
        let cfg =
            LaunchConfig { grid_dim: (grid, 1, 1), block_dim: (threads as u32, 1, 1), shared_mem_bytes: smem as u32 };
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
            tile_w: 0,
            pad: 0,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_implicit_gemm_variant_is_a_loaded_entry_point() {
        for (bm, bn, bk, name) in IGEMM_KERNELS {
            assert_eq!(name, format!("conv3d_igemm_m{bm}_n{bn}_k{bk}_bf16"), "the table names its own kernel");
            assert!(super::super::kernels::ENTRY_POINTS.contains(&name), "{name} is not in ENTRY_POINTS");
        }
        for (bn, name) in HALO_KERNELS {
            assert_eq!(name, format!("conv3d_halo_m{HALO_BM}_n{bn}_k{HALO_BK}_bf16"), "the table names its own kernel");
            assert!(super::super::kernels::ENTRY_POINTS.contains(&name), "{name} is not in ENTRY_POINTS");
        }
        for (bm, bn, stages, name) in WGMMA_KERNELS {
            assert_eq!(name, format!("conv3d_wgmma_m{bm}_n{bn}_bf16"), "the table names its own kernel");
            assert!(super::super::kernels::SM90_ENTRY_POINTS.contains(&name), "{name} is not in SM90_ENTRY_POINTS");
            // sm_90's 227 KB per block (kernels/conv_wgmma.cu's instantiations)
            assert!(wgmma_smem(bm, bn, stages) <= 227 * 1024, "{name}: {} bytes", wgmma_smem(bm, bn, stages));
        }
    }

    /// A 3×3×3 conv with "same" padding over a (t, h, w) clip.
    fn same_conv(input: [usize; 3], c_in: usize, c_out: usize) -> ConvDims {
        ConvDims {
            input,
            c_in,
            c_out,
            kernel: [3; 3],
            stride: [1; 3],
            pad_before: [1; 3],
            pad_after: [1; 3],
            spatial_pad: PadMode::Zeros,
            upsample: 1,
        }
    }

    /// The rule against the bench shapes it was read from (BENCHMARKS.md "Conv kernels on wgmma").
    #[test]
    fn wgmma_takes_the_shapes_it_won() {
        let wgmma = |bm, bn| Some(ConvPath::Wgmma { bm, bn });
        assert_eq!(wgmma_choice(&same_conv([83, 176, 320], 128, 128)), wgmma(256, 128));
        assert_eq!(wgmma_choice(&same_conv([43, 88, 160], 256, 256)), wgmma(128, 256));
        assert_eq!(wgmma_choice(&same_conv([23, 44, 80], 512, 512)), wgmma(128, 256));
        assert_eq!(wgmma_choice(&same_conv([6, 120, 208], 384, 384)), wgmma(256, 128));
        // LTX-2's 13×22×40 latent: 360 blocks, fewer than 4 waves (im2col 1.10 ms against 1.15)
        assert_eq!(wgmma_choice(&same_conv([13, 22, 40], 1024, 1024)), None);
        // conv_out to 48 channels (halo 8.61 ms against 9.77), 96 input channels (no 64-channel
        // K-step), the patchified conv_in's 48
        assert_eq!(wgmma_choice(&same_conv([83, 176, 320], 128, 48)), None);
        assert_eq!(wgmma_choice(&same_conv([6, 480, 832], 96, 96)), None);
        assert_eq!(wgmma_choice(&same_conv([83, 176, 320], 48, 128)), None);
    }

    #[test]
    fn halo_patch_width_fits_the_frame() {
        // the autoencoders' frames: exact fits where one exists
        assert_eq!(halo_tile_w(176, 320), 64);
        assert_eq!(halo_tile_w(480, 832), 64);
        assert_eq!(halo_tile_w(88, 160), 32);
        assert_eq!(halo_tile_w(240, 416), 32);
        assert_eq!(halo_tile_w(120, 208), 16);
        // the GPU tests' frames (tests/gpu_backend.rs): a tie taken by the wider patch, a partial
        // patch at the right edge
        assert_eq!(halo_tile_w(4, 64), 64);
        assert_eq!(halo_tile_w(6, 130), 64);
        assert_eq!(halo_tile_w(20, 26), 32);
        for tw in HALO_TILE_WIDTHS {
            assert!((HALO_BM / tw + 2) * (tw + 2) <= HALO_MAX_POSITIONS, "the halo of width {tw} fits its slot");
        }
    }
}
