//! Launchers for space_to_depth / depth_to_space (kernels/shuffle.cu; CPU twin
//! backend/cpu/shuffle.rs). Shapes were checked by `backend::ops`; the kernels index with i32
//! sizes and i64 element offsets, so every extent must fit an i32.

use cudarc::driver::CudaSlice;
use half::bf16;

use super::error::CudaError;
use super::kernels::grid_stride;
use super::params::ShuffleParams;
use super::Cuda;
use crate::backend::{ShuffleDims, SubpixelOrder};

const THREADS: u32 = 256;

impl Cuda {
    /// `k` = the group averaged (space_to_depth) or the channel tiling (depth_to_space).
    pub(super) fn launch_shuffle(
        &self,
        kernel: &'static str,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        d: ShuffleDims,
        k: usize,
    ) -> Result<(), CudaError> {
        let [t, h, w] = d.fine;
        let [st, sh, sw] = d.factors;
        let p = ShuffleParams {
            out: self.ptr(out),
            x: self.ptr(x),
            t: t as i32,
            h: h as i32,
            w: w as i32,
            c: d.c as i32,
            st: st as i32,
            sh: sh as i32,
            sw: sw as i32,
            order: match d.order {
                SubpixelOrder::Thw => 0,
                SubpixelOrder::Twh => 1,
            },
            k: k as i32,
            pad: 0,
        };
        self.kernels.launch(&self.stream, kernel, grid_stride(out.len(), THREADS), &p)
    }
}
