//! Rust mirrors of `kernels/params.h`, field for field, passed by value as each kernel's one
//! argument. The size test at the bottom catches a field added on one side only.

use cudarc::driver::DeviceRepr;

/// Device address of a buffer.
pub type DevPtr = u64;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ModParams {
    pub table: DevPtr,
    pub emb: DevPtr,
    pub emb_chunks: i32,
    pub per_token: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ActivationParams {
    pub out: DevPtr,
    pub x: DevPtr,
    pub len: i64,
    pub act: i32,
    pub pad: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RmsNormParams {
    pub out: DevPtr,
    pub x: DevPtr,
    pub w: DevPtr,
    pub rows: i32,
    pub dim: i32,
    pub eps: f32,
    pub weight_offset: f32,
    pub act: i32,
    pub pad: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NormedResidualParams {
    pub x: DevPtr,
    pub y: DevPtr,
    pub w: DevPtr,
    pub rows: i32,
    pub dim: i32,
    pub eps: f32,
    pub weight_offset: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct AdaLayerNormParams {
    pub out: DevPtr,
    pub x: DevPtr,
    pub m: ModParams,
    pub shift: i32,
    pub scale: i32,
    pub b: i32,
    pub n: i32,
    pub d: i32,
    pub eps: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GatedResidualParams {
    pub x: DevPtr,
    pub y: DevPtr,
    pub m: ModParams,
    pub gate: i32,
    pub b: i32,
    pub n: i32,
    pub d: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LinearAttnParams {
    pub qkv: DevPtr,
    pub norm_q: DevPtr,
    pub norm_k: DevPtr,
    pub cos: DevPtr,
    pub sin: DevPtr,
    pub inv_rms: DevPtr,
    pub partial: DevPtr,
    pub partial_z: DevPtr,
    pub state: DevPtr,
    pub row_scale: DevPtr,
    pub z: DevPtr,
    pub out: DevPtr,
    pub b: i32,
    pub n: i32,
    pub heads: i32,
    pub head_dim: i32,
    pub padded_head_dim: i32,
    pub chunks: i32,
    pub chunk_rows: i32,
    pub out_rows: i32,
    pub norm_eps: f32,
    pub attn_eps: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CrossAttnParams {
    pub q: DevPtr,
    pub k: DevPtr,
    pub v: DevPtr,
    pub key_bias: DevPtr,
    pub out: DevPtr,
    pub b: i32,
    pub n: i32,
    pub l: i32,
    pub heads: i32,
    pub head_dim: i32,
    pub padded_head_dim: i32,
    pub padded_l: i32,
    pub scale: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DepthwiseGluParams {
    pub out: DevPtr,
    pub x: DevPtr,
    pub w: DevPtr,
    pub bias: DevPtr,
    pub frames: i32,
    pub h: i32,
    pub w_: i32,
    pub f: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TemporalShiftParams {
    pub buf: DevPtr,
    pub b: i32,
    pub t: i32,
    pub hw: i32,
    pub c: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct PatchParams {
    pub out: DevPtr,
    pub x: DevPtr,
    pub b: i32,
    pub c: i32,
    pub t: i32,
    pub h: i32,
    pub w: i32,
    pub pt: i32,
    pub ph: i32,
    pub pw: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GatherParams {
    pub out: DevPtr,
    pub table: DevPtr,
    pub ids: DevPtr,
    pub rows: i32,
    pub dim: i32,
    pub scale: f32,
    pub pad: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct RopeHalfParams {
    pub out: DevPtr,
    pub x: DevPtr,
    pub cos: DevPtr,
    pub sin: DevPtr,
    pub rows: i32,
    pub l: i32,
    pub heads: i32,
    pub head_dim: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CausalAttnParams {
    pub out: DevPtr,
    pub q: DevPtr,
    pub k: DevPtr,
    pub v: DevPtr,
    pub key_mask: DevPtr,
    pub b: i32,
    pub l: i32,
    pub heads: i32,
    pub kv_heads: i32,
    pub head_dim: i32,
    pub window: i32,
    pub scale: f32,
    pub softcap: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SamplerParams {
    pub out: DevPtr,
    pub a: DevPtr,
    pub b: DevPtr,
    pub c: DevPtr,
    pub len: i64,
    pub n: i64,
    pub keep: f32,
    pub ca: f32,
    pub cb: f32,
    pub cc: f32,
    pub terms: i32,
    pub pad: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct AddF32Params {
    pub x: DevPtr,
    pub y: DevPtr,
    pub len: i64,
    pub accumulate: i32,
    pub pad: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct BinaryParams {
    pub out: DevPtr,
    pub a: DevPtr,
    pub b: DevPtr,
    pub len: i64,
    pub op: i32,
    pub pad: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ConvParams {
    pub out: DevPtr,
    pub x: DevPtr,
    pub row0: i64,
    pub rows: i32,
    pub up_shift: i32,
    pub t: i32,
    pub h: i32,
    pub w_in: i32,
    pub c_in: i32,
    pub t_out: i32,
    pub h_out: i32,
    pub w_out: i32,
    pub c_out: i32,
    pub kt: i32,
    pub kh: i32,
    pub kw: i32,
    pub reflect: i32,
    pub st: i32,
    pub sh: i32,
    pub sw: i32,
    pub pt: i32,
    pub ph: i32,
    pub pw: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ShuffleParams {
    pub out: DevPtr,
    pub x: DevPtr,
    pub t: i32,
    pub h: i32,
    pub w: i32,
    pub c: i32,
    pub st: i32,
    pub sh: i32,
    pub sw: i32,
    pub order: i32,
    pub k: i32,
    pub pad: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SoftmaxParams {
    pub probs: DevPtr,
    pub scores: DevPtr,
    pub key_bias: DevPtr,
    pub rows: i32,
    pub cols: i32,
    pub scale: f32,
    pub pad: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ConvGemmParams {
    pub out: DevPtr,
    pub x: DevPtr,
    pub w: DevPtr,
    pub bias: DevPtr,
    pub t: i32,
    pub h: i32,
    pub w_in: i32,
    pub c_in: i32,
    pub t_out: i32,
    pub h_out: i32,
    pub w_out: i32,
    pub c_out: i32,
    pub kt: i32,
    pub kh: i32,
    pub kw: i32,
    pub reflect: i32,
    pub st: i32,
    pub sh: i32,
    pub sw: i32,
    pub pt: i32,
    pub ph: i32,
    pub pw: i32,
    pub up_shift: i32,
    pub accumulate: i32,
    pub tile_w: i32,
    pub pad: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GroupNormParams {
    pub out: DevPtr,
    pub x: DevPtr,
    pub gamma: DevPtr,
    pub beta: DevPtr,
    pub partial: DevPtr,
    pub stats: DevPtr,
    pub rows: i32,
    pub channels: i32,
    pub groups: i32,
    pub rows_per_block: i32,
    pub blocks: i32,
    pub act: i32,
    pub eps: f32,
    pub pad: i32,
}

/// The ACT_* code of kernels/params.h.
pub fn act_code(act: crate::backend::Activation) -> i32 {
    use crate::backend::Activation;
    match act {
        Activation::Identity => 0,
        Activation::Silu => 1,
        Activation::GeluTanh => 2,
    }
}

// SAFETY: each struct is #[repr(C)] plain data (integers, floats, device addresses) laid out as
// its C twin in kernels/params.h, which is what the kernels read.
unsafe impl DeviceRepr for ActivationParams {}
unsafe impl DeviceRepr for RmsNormParams {}
unsafe impl DeviceRepr for NormedResidualParams {}
unsafe impl DeviceRepr for AdaLayerNormParams {}
unsafe impl DeviceRepr for GatedResidualParams {}
unsafe impl DeviceRepr for LinearAttnParams {}
unsafe impl DeviceRepr for CrossAttnParams {}
unsafe impl DeviceRepr for DepthwiseGluParams {}
unsafe impl DeviceRepr for PatchParams {}
unsafe impl DeviceRepr for TemporalShiftParams {}
unsafe impl DeviceRepr for GatherParams {}
unsafe impl DeviceRepr for RopeHalfParams {}
unsafe impl DeviceRepr for CausalAttnParams {}
unsafe impl DeviceRepr for BinaryParams {}
unsafe impl DeviceRepr for AddF32Params {}
unsafe impl DeviceRepr for SamplerParams {}
unsafe impl DeviceRepr for ConvParams {}
unsafe impl DeviceRepr for ShuffleParams {}
unsafe impl DeviceRepr for SoftmaxParams {}
unsafe impl DeviceRepr for ConvGemmParams {}
unsafe impl DeviceRepr for GroupNormParams {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes as the C compiler lays out kernels/params.h (all fields 4 or 8 bytes, padded to 8).
    #[test]
    fn sizes_match_params_h() {
        assert_eq!(std::mem::size_of::<ModParams>(), 24);
        assert_eq!(std::mem::size_of::<ActivationParams>(), 32);
        assert_eq!(std::mem::size_of::<RmsNormParams>(), 48);
        assert_eq!(std::mem::size_of::<NormedResidualParams>(), 40);
        assert_eq!(std::mem::size_of::<AdaLayerNormParams>(), 64);
        assert_eq!(std::mem::size_of::<GatedResidualParams>(), 56);
        assert_eq!(std::mem::size_of::<LinearAttnParams>(), 136);
        assert_eq!(std::mem::size_of::<CrossAttnParams>(), 72);
        assert_eq!(std::mem::size_of::<DepthwiseGluParams>(), 48);
        assert_eq!(std::mem::size_of::<PatchParams>(), 48);
        assert_eq!(std::mem::size_of::<TemporalShiftParams>(), 24);
        assert_eq!(std::mem::size_of::<GatherParams>(), 40);
        assert_eq!(std::mem::size_of::<RopeHalfParams>(), 48);
        assert_eq!(std::mem::size_of::<CausalAttnParams>(), 72);
        assert_eq!(std::mem::size_of::<BinaryParams>(), 40);
        assert_eq!(std::mem::size_of::<AddF32Params>(), 32);
        assert_eq!(std::mem::size_of::<ConvParams>(), 104);
        assert_eq!(std::mem::size_of::<ShuffleParams>(), 56);
        assert_eq!(std::mem::size_of::<SoftmaxParams>(), 40);
        assert_eq!(std::mem::size_of::<ConvGemmParams>(), 120);
        assert_eq!(std::mem::size_of::<GroupNormParams>(), 80);
        assert_eq!(std::mem::size_of::<SamplerParams>(), 72);
        // every header field appears in the mirrors (a cheap textual cross-check)
        let header = crate::backend::cuda::kernels::PARAMS_H;
        for field in
            ["chunk_rows", "emb_chunks", "per_token", "padded_head_dim", "frames", "reflect", "c_out", "rows_per_block"]
        {
            assert!(header.contains(field), "{field} missing from params.h");
        }
    }
}
