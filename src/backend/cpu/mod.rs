//! The CPU reference backend: plain f32 loops over named dimensions, rayon over rows, matrix
//! products through the `gemm` crate. It is the runnable form of MODEL.md that every faster
//! backend is checked against, so clarity wins over speed here.

mod conv;
mod cross_attn;
mod decoder;
mod linear;
mod linear_attn;
mod mix_ffn;
mod norm;
mod patch;
mod shuffle;

use super::{
    Activation, AttnDims, Backend, Buffer, ConvDims, GridDims, LinearDims, Modulation, NormWeight, PatchDims,
    RopeTables, ShuffleDims, TokenDims, Write,
};
use crate::error::Result;

impl Buffer for Vec<f32> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu;

impl Backend for Cpu {
    type Buf = Vec<f32>;
    type Table = Vec<f32>;

    fn name(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn alloc(&self, len: usize) -> Result<Vec<f32>> {
        Ok(vec![0.0; len])
    }

    /// Linux's `MemAvailable` (host memory is the CPU backend's device memory); `None`
    /// elsewhere or if /proc/meminfo cannot be read.
    fn available_memory(&self) -> Option<usize> {
        let info = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
        kib.checked_mul(1024)
    }

    fn upload(&self, host: &[f32]) -> Result<Vec<f32>> {
        Ok(host.to_vec())
    }

    fn upload_vec(&self, host: Vec<f32>) -> Result<Vec<f32>> {
        Ok(host)
    }

    fn download(&self, buf: &Vec<f32>) -> Result<Vec<f32>> {
        Ok(buf.clone())
    }

    fn upload_table(&self, host: Vec<f32>) -> Result<Vec<f32>> {
        Ok(host)
    }

    fn linear(
        &self,
        out: &mut Vec<f32>,
        x: &Vec<f32>,
        w: &Vec<f32>,
        bias: Option<&Vec<f32>>,
        dims: LinearDims,
        act: Activation,
        write: Write,
    ) -> Result<()> {
        linear::linear(out, x, w, bias.map(|b| b.as_slice()), dims, act, write);
        Ok(())
    }

    fn activation(&self, out: &mut Vec<f32>, x: &Vec<f32>, act: Activation) -> Result<()> {
        linear::activation(out, x, act);
        Ok(())
    }

    fn rms_norm(
        &self,
        out: &mut Vec<f32>,
        x: &Vec<f32>,
        w: &Vec<f32>,
        rows: usize,
        dim: usize,
        eps: f32,
        weight: NormWeight,
        act: Activation,
    ) -> Result<()> {
        norm::rms_norm(out, x, w, rows, dim, eps, weight.offset(), act);
        Ok(())
    }

    fn ada_layer_norm(
        &self,
        out: &mut Vec<f32>,
        x: &Vec<f32>,
        m: &Modulation<Self>,
        shift: usize,
        scale: usize,
        dims: TokenDims,
        eps: f32,
    ) -> Result<()> {
        norm::ada_layer_norm(out, x, &norm::ModView::new(m, dims), shift, scale, dims, eps);
        Ok(())
    }

    fn gated_residual(
        &self,
        x: &mut Vec<f32>,
        y: &Vec<f32>,
        m: &Modulation<Self>,
        gate: usize,
        dims: TokenDims,
    ) -> Result<()> {
        norm::gated_residual(x, y, &norm::ModView::new(m, dims), gate, dims);
        Ok(())
    }

    fn relu_linear_attention(
        &self,
        out: &mut Vec<f32>,
        qkv: &Vec<f32>,
        norm_q: &Vec<f32>,
        norm_k: &Vec<f32>,
        rope: &RopeTables<Self>,
        dims: AttnDims,
        norm_eps: f32,
        attn_eps: f32,
    ) -> Result<()> {
        linear_attn::relu_linear_attention(out, qkv, norm_q, norm_k, &rope.cos, &rope.sin, dims, norm_eps, attn_eps);
        Ok(())
    }

    fn cross_attention(
        &self,
        out: &mut Vec<f32>,
        q: &Vec<f32>,
        k: &Vec<f32>,
        v: &Vec<f32>,
        key_bias: &Vec<f32>,
        dims: AttnDims,
    ) -> Result<()> {
        cross_attn::cross_attention(out, q, k, v, key_bias, dims);
        Ok(())
    }

    fn depthwise3x3_glu(
        &self,
        out: &mut Vec<f32>,
        x: &Vec<f32>,
        w: &Vec<f32>,
        bias: &Vec<f32>,
        dims: GridDims,
    ) -> Result<()> {
        mix_ffn::depthwise3x3_glu(out, x, w, bias, dims);
        Ok(())
    }

    fn temporal_conv3_residual(&self, out: &mut Vec<f32>, x: &Vec<f32>, w: &Vec<f32>, dims: GridDims) -> Result<()> {
        mix_ffn::temporal_conv3_residual(out, x, w, dims);
        Ok(())
    }

    fn gather_rows(&self, out: &mut Vec<f32>, table: &Vec<f32>, ids: &[u32], dim: usize, scale: f32) -> Result<()> {
        decoder::gather_rows(out, table, ids, dim, scale);
        Ok(())
    }

    fn rope_rotate_half(
        &self,
        out: &mut Vec<f32>,
        x: &Vec<f32>,
        rope: &RopeTables<Self>,
        dims: AttnDims,
    ) -> Result<()> {
        decoder::rope_rotate_half(out, x, &rope.cos, &rope.sin, dims);
        Ok(())
    }

    fn causal_attention(
        &self,
        out: &mut Vec<f32>,
        q: &Vec<f32>,
        k: &Vec<f32>,
        v: &Vec<f32>,
        key_mask: &Vec<f32>,
        dims: AttnDims,
        kv_heads: usize,
        scale: f32,
        softcap: Option<f32>,
        window: Option<usize>,
    ) -> Result<()> {
        decoder::causal_attention(out, q, k, v, key_mask, dims, kv_heads, scale, softcap, window);
        Ok(())
    }

    fn multiply(&self, out: &mut Vec<f32>, a: &Vec<f32>, b: &Vec<f32>) -> Result<()> {
        decoder::multiply(out, a, b);
        Ok(())
    }

    fn add(&self, x: &mut Vec<f32>, y: &Vec<f32>) -> Result<()> {
        decoder::add(x, y);
        Ok(())
    }

    fn conv3d(
        &self,
        out: &mut Vec<f32>,
        x: &Vec<f32>,
        w: &Vec<f32>,
        bias: Option<&Vec<f32>>,
        dims: ConvDims,
    ) -> Result<()> {
        conv::conv3d(out, x, w, bias.map(|b| b.as_slice()), dims);
        Ok(())
    }

    fn upsample_nearest2x(&self, out: &mut Vec<f32>, x: &Vec<f32>, dims: GridDims) -> Result<()> {
        conv::upsample_nearest2x(out, x, dims);
        Ok(())
    }

    fn copy_range(
        &self,
        dst: &mut Vec<f32>,
        dst_offset: usize,
        src: &Vec<f32>,
        src_offset: usize,
        len: usize,
    ) -> Result<()> {
        dst[dst_offset..][..len].copy_from_slice(&src[src_offset..][..len]);
        Ok(())
    }

    fn group_norm(
        &self,
        out: &mut Vec<f32>,
        x: &Vec<f32>,
        gamma: &Vec<f32>,
        beta: &Vec<f32>,
        _positions: usize,
        channels: usize,
        groups: usize,
        eps: f32,
        act: Activation,
    ) -> Result<()> {
        norm::group_norm(out, x, gamma, beta, channels, groups, eps, act);
        Ok(())
    }

    fn patchify(&self, out: &mut Vec<f32>, x: &Vec<f32>, dims: PatchDims) -> Result<()> {
        patch::patchify(out, x, dims);
        Ok(())
    }

    fn unpatchify(&self, out: &mut Vec<f32>, x: &Vec<f32>, dims: PatchDims) -> Result<()> {
        patch::unpatchify(out, x, dims);
        Ok(())
    }

    fn space_to_depth(&self, out: &mut Vec<f32>, x: &Vec<f32>, dims: ShuffleDims, group: usize) -> Result<()> {
        shuffle::space_to_depth(out, x, dims, group);
        Ok(())
    }

    fn depth_to_space(&self, out: &mut Vec<f32>, x: &Vec<f32>, dims: ShuffleDims, repeat: usize) -> Result<()> {
        shuffle::depth_to_space(out, x, dims, repeat);
        Ok(())
    }
}
