//! One SANA-Video transformer block (MODEL.md §2.3; diffusers 0.42.1
//! `SanaVideoTransformerBlock`): gated linear self-attention, un-gated cross-attention to the
//! caption, gated Mix-FFN with temporal conv.

use crate::backend::{self as ops, Activation, Backend, Modulation, RopeTables, Tensor, Write};
use crate::engine::weights::WeightLoader;
use crate::error::Result;

use super::config::DitConfig;

/// Modulation slots of a block's (6, D) table, in checkpoint order.
pub const SHIFT_MSA: usize = 0;
pub const SCALE_MSA: usize = 1;
pub const GATE_MSA: usize = 2;
pub const SHIFT_MLP: usize = 3;
pub const SCALE_MLP: usize = 4;
pub const GATE_MLP: usize = 5;

/// diffusers `Attention` builds its across-head RMSNorms with eps 1e-5 whatever the config says.
pub const QK_NORM_EPS: f32 = 1e-5;
/// diffusers `SanaLinearAttnProcessor3_0` denominator eps (the original Sana code uses 1e-8).
pub const LINEAR_ATTN_EPS: f32 = 1e-15;

pub struct SelfAttention<B: Backend> {
    /// to_q | to_k | to_v stacked: (3D, D)
    qkv: Tensor<B>,
    qkv_bias: Option<Tensor<B>>,
    norm_q: Tensor<B>,
    norm_k: Tensor<B>,
    out: Tensor<B>,
    out_bias: Tensor<B>,
}

pub struct CrossAttention<B: Backend> {
    q: Tensor<B>,
    q_bias: Tensor<B>,
    k: Tensor<B>,
    k_bias: Tensor<B>,
    v: Tensor<B>,
    v_bias: Tensor<B>,
    norm_q: Tensor<B>,
    norm_k: Tensor<B>,
    out: Tensor<B>,
    out_bias: Tensor<B>,
}

pub struct MixFfn<B: Backend> {
    inverted: Tensor<B>,      // (2F, D)
    inverted_bias: Tensor<B>, // (2F)
    depth: Tensor<B>,         // (9, 2F): tap-major
    depth_bias: Tensor<B>,    // (2F)
    point: Tensor<B>,         // (D, F)
    temporal: Tensor<B>,      // (D, 3D): [W_0 | W_1 | W_2] side by side
}

pub struct Block<B: Backend> {
    scale_shift_table: Tensor<B>, // (6, D)
    attn1: SelfAttention<B>,
    attn2: CrossAttention<B>,
    ff: MixFfn<B>,
    heads: usize,
    cross_heads: usize,
    norm_eps: f32,
}

/// Activations of one block, allocated once per (B, N, L) and reused by every block and step.
pub struct BlockScratch<B: Backend> {
    normed: Tensor<B>, // (B, N, D): adaLN outputs, then the cross-attention query
    attn: Tensor<B>,   // (B, N, D)
    proj: Tensor<B>,   // (B, N, D)
    k: Tensor<B>,      // (B, L, D)
    k_normed: Tensor<B>,
    v: Tensor<B>, // (B, L, D)
    /// The widest activations — q|k|v (B, N, 3D) and the Mix-FFN's (B, N, 2F) and (B, N, F) —
    /// are allocated where they are used and dropped right after: on CUDA they come from the
    /// stream-ordered pool, so the attention's scratch and the FFN's reuse the same memory
    /// instead of both being resident (the forward's peak, BENCHMARKS.md).
    dims: [usize; 4],
}

impl<B: Backend> BlockScratch<B> {
    pub fn new(be: &B, cfg: &DitConfig, b: usize, n: usize, l: usize) -> Result<Self> {
        let d = cfg.inner_dim();
        Ok(BlockScratch {
            normed: Tensor::empty(be, &[b, n, d])?,
            attn: Tensor::empty(be, &[b, n, d])?,
            proj: Tensor::empty(be, &[b, n, d])?,
            k: Tensor::empty(be, &[b, l, d])?,
            k_normed: Tensor::empty(be, &[b, l, d])?,
            v: Tensor::empty(be, &[b, l, d])?,
            dims: [b, n, d, cfg.ffn_hidden()],
        })
    }
}

impl<B: Backend> Block<B> {
    /// Loads `transformer_blocks.{i}` (MODEL.md §2.9).
    pub fn load(w: &WeightLoader<B>, cfg: &DitConfig) -> Result<Self> {
        let d = cfg.inner_dim();
        let f = cfg.ffn_hidden();
        let a1 = w.pp("attn1");
        let qkv_bias =
            if cfg.attention_bias { Some(a1.concat(&["to_q.bias", "to_k.bias", "to_v.bias"], &[d])?) } else { None };
        let attn1 = SelfAttention {
            qkv: a1.concat(&["to_q.weight", "to_k.weight", "to_v.weight"], &[d, d])?,
            qkv_bias,
            norm_q: a1.tensor("norm_q.weight", &[d])?,
            norm_k: a1.tensor("norm_k.weight", &[d])?,
            out: a1.tensor("to_out.0.weight", &[d, d])?,
            out_bias: a1.tensor("to_out.0.bias", &[d])?,
        };
        let a2 = w.pp("attn2");
        let attn2 = CrossAttention {
            q: a2.tensor("to_q.weight", &[d, d])?,
            q_bias: a2.tensor("to_q.bias", &[d])?,
            k: a2.tensor("to_k.weight", &[d, cfg.cross_attention_dim])?,
            k_bias: a2.tensor("to_k.bias", &[d])?,
            v: a2.tensor("to_v.weight", &[d, cfg.cross_attention_dim])?,
            v_bias: a2.tensor("to_v.bias", &[d])?,
            norm_q: a2.tensor("norm_q.weight", &[d])?,
            norm_k: a2.tensor("norm_k.weight", &[d])?,
            out: a2.tensor("to_out.0.weight", &[d, d])?,
            out_bias: a2.tensor("to_out.0.bias", &[d])?,
        };
        let ffw = w.pp("ff");
        let ff = MixFfn {
            // 1×1 convs are matrix products: (out, in, 1, 1) viewed as (out, in)
            inverted: ffw.tensor_as("conv_inverted.weight", &[2 * f, d, 1, 1], &[2 * f, d])?,
            inverted_bias: ffw.tensor("conv_inverted.bias", &[2 * f])?,
            depth: depthwise_taps(&ffw, 2 * f)?,
            depth_bias: ffw.tensor("conv_depth.bias", &[2 * f])?,
            point: ffw.tensor_as("conv_point.weight", &[d, f, 1, 1], &[d, f])?,
            temporal: temporal_taps(&ffw, d)?,
        };
        Ok(Block {
            scale_shift_table: w.tensor("scale_shift_table", &[6, d])?,
            attn1,
            attn2,
            ff,
            heads: cfg.num_attention_heads,
            cross_heads: cfg.num_cross_attention_heads,
            norm_eps: cfg.norm_eps as f32,
        })
    }

    /// x (B, N, D) in place. `mod_emb` (B·M, 6D) is the projected timestep, `caption` (B, L, D),
    /// `key_bias` (B, L), `grid` the token grid (T', H', W').
    #[allow(clippy::too_many_arguments)] // the block's inputs, named as in diffusers
    pub fn forward(
        &self,
        be: &B,
        x: &mut Tensor<B>,
        mod_emb: &Tensor<B>,
        per_token: bool,
        caption: &Tensor<B>,
        key_bias: &B::Table,
        rope: &RopeTables<B>,
        grid: [usize; 3],
        s: &mut BlockScratch<B>,
    ) -> Result<()> {
        let m = Modulation { table: &self.scale_shift_table, emb: mod_emb, emb_chunks: 6, per_token };

        // (1) self-attention: x += gate_msa · attn1(LN(x)·(1 + scale_msa) + shift_msa)
        let a = &self.attn1;
        let [b, n, d, ffn] = s.dims;
        ops::ada_layer_norm(be, &mut s.normed, x, &m, SHIFT_MSA, SCALE_MSA, self.norm_eps)?;
        let mut qkv = Tensor::empty(be, &[b, n, 3 * d])?;
        ops::linear(be, &mut qkv, &s.normed, &a.qkv, a.qkv_bias.as_ref(), Activation::Identity, Write::Overwrite)?;
        ops::relu_linear_attention(
            be,
            &mut s.attn,
            &qkv,
            &a.norm_q,
            &a.norm_k,
            rope,
            self.heads,
            QK_NORM_EPS,
            LINEAR_ATTN_EPS,
        )?;
        drop(qkv);
        ops::linear(be, &mut s.proj, &s.attn, &a.out, Some(&a.out_bias), Activation::Identity, Write::Overwrite)?;
        ops::gated_residual(be, x, &s.proj, &m, GATE_MSA)?;

        // (2) cross-attention on the un-normed x, residual without gate
        let c = &self.attn2;
        ops::linear(be, &mut s.proj, x, &c.q, Some(&c.q_bias), Activation::Identity, Write::Overwrite)?;
        ops::rms_norm(be, &mut s.normed, &s.proj, &c.norm_q, QK_NORM_EPS)?;
        ops::linear(be, &mut s.k, caption, &c.k, Some(&c.k_bias), Activation::Identity, Write::Overwrite)?;
        ops::rms_norm(be, &mut s.k_normed, &s.k, &c.norm_k, QK_NORM_EPS)?;
        ops::linear(be, &mut s.v, caption, &c.v, Some(&c.v_bias), Activation::Identity, Write::Overwrite)?;
        ops::cross_attention(be, &mut s.attn, &s.normed, &s.k_normed, &s.v, key_bias, self.cross_heads)?;
        ops::linear(be, x, &s.attn, &c.out, Some(&c.out_bias), Activation::Identity, Write::Accumulate)?;

        // (3) Mix-FFN: x += gate_mlp · ffn(LN(x)·(1 + scale_mlp) + shift_mlp)
        let f = &self.ff;
        ops::ada_layer_norm(be, &mut s.normed, x, &m, SHIFT_MLP, SCALE_MLP, self.norm_eps)?;
        // conv_inverted's SiLU is applied by depthwise3x3_glu as it reads `hidden`
        let inverted = Some(&f.inverted_bias);
        let mut hidden = Tensor::empty(be, &[b, n, 2 * ffn])?;
        ops::linear(be, &mut hidden, &s.normed, &f.inverted, inverted, Activation::Identity, Write::Overwrite)?;
        let mut glu = Tensor::empty(be, &[b, n, ffn])?;
        ops::depthwise3x3_glu(be, &mut glu, &hidden, &f.depth, &f.depth_bias, grid)?;
        drop(hidden);
        ops::point_temporal_residual(be, &mut s.attn, &glu, &f.point, &f.temporal, grid)?;
        drop(glu);
        ops::gated_residual(be, x, &s.attn, &m, GATE_MLP)
    }
}

/// `ff.conv_temp.weight` (D_out, D_in, 3, 1) as (D_out, 3·D_in) with the taps side by side:
/// row o is [W_0[o] | W_1[o] | W_2[o]], so the temporal conv is one product over the three
/// shifted copies of its input laid side by side (or three products over column blocks).
fn temporal_taps<B: Backend>(w: &WeightLoader<B>, d: usize) -> Result<Tensor<B>> {
    let stored = w.host("conv_temp.weight", &[d, d, 3, 1])?;
    let mut taps = vec![0.0f32; 3 * d * d];
    for o in 0..d {
        for i in 0..d {
            for k in 0..3 {
                taps[o * 3 * d + k * d + i] = stored[(o * d + i) * 3 + k];
            }
        }
    }
    Tensor::from_vec(w.backend(), &[d, 3 * d], taps)
}

/// `ff.conv_depth.weight` (2F, 1, 3, 3) as (9, 2F): the taps of neighbouring channels side by
/// side, so a kernel reads a channel pair's tap with one load.
fn depthwise_taps<B: Backend>(w: &WeightLoader<B>, channels: usize) -> Result<Tensor<B>> {
    let stored = w.host("conv_depth.weight", &[channels, 1, 3, 3])?;
    let mut taps = vec![0.0f32; 9 * channels];
    for c in 0..channels {
        for k in 0..9 {
            taps[k * channels + c] = stored[c * 9 + k];
        }
    }
    Tensor::from_vec(w.backend(), &[9, channels], taps)
}
