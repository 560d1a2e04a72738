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
mod sampler;
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
    type Fence = ();

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

    fn download_pieces(
        &self,
        buf: &Vec<f32>,
        _align: usize,
        visit: &mut dyn FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<()> {
        visit(0, buf) // already on the host: no copy
    }

    fn alloc_table(&self, len: usize) -> Result<Vec<f32>> {
        Ok(vec![0.0; len])
    }

    fn upload_table(&self, host: Vec<f32>) -> Result<Vec<f32>> {
        Ok(host)
    }

    fn download_table(&self, table: &Vec<f32>) -> Result<Vec<f32>> {
        Ok(table.clone())
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

    fn rms_norm_f32_input(
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
        // Buf and Table are both f32 here: the plain RMSNorm, so the numbers match it exactly
        norm::rms_norm(out, x, w, rows, dim, eps, weight.offset(), act);
        Ok(())
    }

    fn add_f32(&self, x: &mut Vec<f32>, y: &Vec<f32>, write: Write) -> Result<()> {
        match write {
            Write::Overwrite => x.copy_from_slice(y),
            Write::Accumulate => x.iter_mut().zip(y).for_each(|(x, y)| *x += y),
        }
        Ok(())
    }

    fn normed_residual_f32(
        &self,
        x: &mut Vec<f32>,
        y: &Vec<f32>,
        w: &Vec<f32>,
        _rows: usize,
        dim: usize,
        eps: f32,
        weight: NormWeight,
    ) -> Result<()> {
        norm::normed_residual_f32(x, y, w, dim, eps, weight.offset());
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

    fn point_temporal_residual(
        &self,
        out: &mut Vec<f32>,
        glu: &Vec<f32>,
        p: &Vec<f32>,
        w: &Vec<f32>,
        f: usize,
        dims: GridDims,
    ) -> Result<()> {
        let rows = dims.b * dims.t * dims.h * dims.w;
        let mut z = vec![0.0; rows * dims.c];
        linear::linear(
            &mut z,
            glu,
            p,
            None,
            LinearDims { rows, k: f, n: dims.c },
            Activation::Identity,
            Write::Overwrite,
        );
        mix_ffn::temporal_conv3_residual(out, &z, w, dims);
        Ok(())
    }

    fn gather_rows(&self, out: &mut Vec<f32>, table: &Vec<f32>, ids: &[u32], dim: usize, scale: f32) -> Result<()> {
        decoder::gather_rows(out, table, ids, dim, scale);
        Ok(())
    }

    fn gather_rows_f32(&self, out: &mut Vec<f32>, table: &Vec<f32>, ids: &[u32], dim: usize, scale: f32) -> Result<()> {
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

    fn fence(&self) -> Result<()> {
        Ok(())
    }

    fn wait(&self, _: &()) -> Result<()> {
        Ok(())
    }

    fn table_to_tensor(&self, out: &mut Vec<f32>, x: &Vec<f32>) -> Result<()> {
        sampler::table_to_tensor(out, x);
        Ok(())
    }

    fn guided_velocity(&self, out: &mut Vec<f32>, model_out: &Vec<f32>, scale: f32) -> Result<()> {
        sampler::guided_velocity(out, model_out, scale);
        Ok(())
    }

    fn lincomb_tables(&self, out: &mut Vec<f32>, keep: f32, terms: &[(f32, &Vec<f32>)]) -> Result<()> {
        let terms: Vec<(f32, &[f32])> = terms.iter().map(|&(c, t)| (c, t.as_slice())).collect();
        sampler::lincomb(out, keep, &terms);
        Ok(())
    }

    fn copy_table_range(
        &self,
        dst: &mut Vec<f32>,
        dst_offset: usize,
        src: &Vec<f32>,
        src_offset: usize,
        len: usize,
    ) -> Result<()> {
        self.copy_range(dst, dst_offset, src, src_offset, len)
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
        write: Write,
    ) -> Result<()> {
        conv::conv3d(out, x, w, bias.map(|b| b.as_slice()), dims, write);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{self as ops, Tensor};
    use crate::engine::weights::splitmix64;

    fn uniform(n: usize, seed: u64, centre: f32) -> Vec<f32> {
        let mut state = seed;
        (0..n).map(|_| centre + ((splitmix64(&mut state) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)).collect()
    }

    fn assert_same_bits(what: &str, got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{what}: lengths differ");
        if let Some(i) = got.iter().zip(want).position(|(a, b)| a.to_bits() != b.to_bits()) {
            panic!("{what}: element {i} is {} where the composite ops give {}", got[i], want[i]);
        }
    }

    /// The f32-residual ops on the CPU are the composite ops the text encoder used before, bit
    /// for bit, so its CPU numbers (and the fixture tests at 1e-5) do not move:
    /// gather_rows_f32 = gather_rows, rms_norm_f32_input = rms_norm_weighted, and
    /// normed_residual_f32 = rms_norm_weighted into a scratch tensor, then add.
    #[test]
    fn f32_residual_ops_equal_the_composite_ops() {
        let be = Cpu;
        for (case, &(rows, d)) in [(1, 7), (13, 32), (154, 512), (3, 2304)].iter().enumerate() {
            for weight in [NormWeight::Plain, NormWeight::OnePlus] {
                let seed = 0x7265_7364 + 10 * case as u64;
                let (x, y, w) =
                    (uniform(rows * d, seed, 0.5), uniform(rows * d, seed + 1, 0.0), uniform(d, seed + 2, 0.0));
                let tensor = |shape: &[usize], v: &[f32]| Tensor::from_host(&be, shape, v).unwrap();
                let (xt, yt, wt) = (tensor(&[rows, d], &x), tensor(&[rows, d], &y), tensor(&[d], &w));
                let eps = 1e-6;
                let name = format!("({rows}, {d}) {weight:?}");

                let mut want = Tensor::empty(&be, &[rows, d]).unwrap();
                ops::rms_norm_weighted(&be, &mut want, &xt, &wt, eps, weight).unwrap();
                let mut got = Tensor::empty(&be, &[rows, d]).unwrap();
                ops::rms_norm_f32_input(&be, &mut got, &x, &wt, eps, weight).unwrap();
                assert_same_bits(&format!("rms_norm_f32_input {name}"), &got.buf, &want.buf);

                let mut normed = Tensor::empty(&be, &[rows, d]).unwrap();
                ops::rms_norm_weighted(&be, &mut normed, &yt, &wt, eps, weight).unwrap();
                let mut want_x = tensor(&[rows, d], &x);
                ops::add(&be, &mut want_x, &normed).unwrap();
                let mut got_x = x.clone();
                ops::normed_residual_f32(&be, &mut got_x, &yt, &wt, eps, weight).unwrap();
                assert_same_bits(&format!("normed_residual_f32 {name}"), &got_x, &want_x.buf);
            }
            let vocab = 11;
            let table = Tensor::from_host(&be, &[vocab, d], &uniform(vocab * d, 99 + case as u64, 0.0)).unwrap();
            let ids: Vec<u32> = (0..rows).map(|r| ((r * 7 + 3) % vocab) as u32).collect();
            let scale = (d as f64).sqrt() as f32;
            let mut want = Tensor::empty(&be, &[rows, d]).unwrap();
            ops::gather_rows(&be, &mut want, &table, &ids, scale).unwrap();
            let mut got = vec![f32::NAN; rows * d];
            ops::gather_rows_f32(&be, &mut got, &table, &ids, scale).unwrap();
            assert_same_bits(&format!("gather_rows_f32 ({rows}, {d})"), &got, &want.buf);
        }
    }

    /// A residual stream of the wrong size is refused before any backend code runs, naming the
    /// op, the operand and the size expected.
    #[test]
    fn f32_residual_ops_name_a_wrong_size() {
        let be = Cpu;
        let (rows, d) = (5, 8);
        let y = Tensor::from_host(&be, &[rows, d], &uniform(rows * d, 1, 0.0)).unwrap();
        let w = Tensor::from_host(&be, &[d], &uniform(d, 2, 0.0)).unwrap();
        let mut short = vec![0.0; rows * d - 1];
        let mut out = Tensor::empty(&be, &[rows, d]).unwrap();
        let table = Tensor::from_host(&be, &[3, d], &uniform(3 * d, 3, 0.0)).unwrap();
        let errors = [
            ops::rms_norm_f32_input(&be, &mut out, &short, &w, 1e-6, NormWeight::OnePlus).unwrap_err(),
            ops::normed_residual_f32(&be, &mut short, &y, &w, 1e-6, NormWeight::OnePlus).unwrap_err(),
            ops::gather_rows_f32(&be, &mut short, &table, &[0, 1, 2, 1, 0], 1.0).unwrap_err(),
        ];
        for (e, op) in errors.iter().zip(["rms_norm_f32_input", "normed_residual_f32", "gather_rows_f32"]) {
            let msg = e.to_string();
            assert!(msg.starts_with(op) && msg.contains("holds 39 values, expected") && msg.contains("= 40"), "{msg}");
        }
        let wrong_w = Tensor::from_host(&be, &[d + 1], &uniform(d + 1, 4, 0.0)).unwrap();
        let mut x = vec![0.0; rows * d];
        let msg =
            ops::normed_residual_f32(&be, &mut x, &y, &wrong_w, 1e-6, NormWeight::OnePlus).unwrap_err().to_string();
        assert!(msg.contains("weight has shape [9], expected [8]"), "{msg}");
    }
}
