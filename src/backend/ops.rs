//! Shape-checked entry points over [`Tensor`]s: model code calls these, never the backend
//! methods directly, so every backend receives only consistent sizes. Each error names the op,
//! the operand and both shapes.

use super::{
    Activation, AttnDims, Backend, Buffer, ConvDims, GridDims, LinearDims, Modulation, NormWeight, PadMode, PatchDims,
    RopeTables, ShuffleDims, SubpixelOrder, Tensor, TokenDims, Write,
};
use crate::error::{Error, Result};

fn expect_shape<B: Backend>(op: &'static str, what: &str, t: &Tensor<B>, expected: &[usize]) -> Result<()> {
    if t.shape() != expected {
        return Err(Error::shape(op, format!("{what} has shape {:?}, expected {expected:?}", t.shape())));
    }
    Ok(())
}

/// A shapeless f32 buffer (a table, an f32 residual stream) must hold `expected` values.
fn expect_len(op: &'static str, what: &str, buf: &impl Buffer, expected: usize, formula: &str) -> Result<()> {
    if buf.len() != expected {
        return Err(Error::shape(op, format!("{what} holds {} values, expected {formula} = {expected}", buf.len())));
    }
    Ok(())
}

/// Splits a shape into (rows, last dim).
fn rows_last(op: &'static str, what: &str, shape: &[usize]) -> Result<(usize, usize)> {
    match shape.split_last() {
        Some((&last, lead)) => Ok((lead.iter().product(), last)),
        None => Err(Error::shape(op, format!("{what} is a scalar, expected at least one dimension"))),
    }
}

fn token_dims(op: &'static str, x: &[usize]) -> Result<TokenDims> {
    match *x {
        [b, n, d] => Ok(TokenDims { b, n, d }),
        _ => Err(Error::shape(op, format!("x has shape {x:?}, expected (B, N, D)"))),
    }
}

fn check_modulation<B: Backend>(op: &'static str, m: &Modulation<B>, dims: TokenDims, slots: &[usize]) -> Result<()> {
    let [k, d] = *m.table.shape() else {
        return Err(Error::shape(op, format!("modulation table has shape {:?}, expected (K, D)", m.table.shape())));
    };
    if d != dims.d || m.emb_chunks == 0 {
        return Err(Error::shape(
            op,
            format!("modulation table width {d} or emb chunks {} do not fit D = {}", m.emb_chunks, dims.d),
        ));
    }
    let rows = dims.b * if m.per_token { dims.n } else { 1 };
    expect_shape(op, "modulation emb", m.emb, &[rows, m.emb_chunks * dims.d])?;
    if let Some(&bad) = slots.iter().find(|&&s| s >= k) {
        return Err(Error::shape(op, format!("modulation slot {bad} out of range for a table of {k} rows")));
    }
    Ok(())
}

/// out (…, n) ← act(x (…, k) · wᵀ + bias) with w (n, k); `Write::Accumulate` adds into out.
pub fn linear<B: Backend>(
    be: &B,
    out: &mut Tensor<B>,
    x: &Tensor<B>,
    w: &Tensor<B>,
    bias: Option<&Tensor<B>>,
    act: Activation,
    write: Write,
) -> Result<()> {
    const OP: &str = "linear";
    let (rows, k) = rows_last(OP, "x", x.shape())?;
    let [n, wk] = *w.shape() else {
        return Err(Error::shape(OP, format!("weight has shape {:?}, expected (out, in)", w.shape())));
    };
    if wk != k {
        return Err(Error::shape(OP, format!("x has {k} features, weight expects {wk}")));
    }
    let out_shape: Vec<usize> = x.shape()[..x.shape().len() - 1].iter().copied().chain([n]).collect();
    expect_shape(OP, "out", out, &out_shape)?;
    if let Some(b) = bias {
        expect_shape(OP, "bias", b, &[n])?;
    }
    if write == Write::Accumulate && act != Activation::Identity {
        return Err(Error::shape(OP, "an activation cannot be applied to an accumulated output".to_string()));
    }
    be.linear(&mut out.buf, &x.buf, &w.buf, bias.map(|b| &b.buf), LinearDims { rows, k, n }, act, write)
}

pub fn activation<B: Backend>(be: &B, out: &mut Tensor<B>, x: &Tensor<B>, act: Activation) -> Result<()> {
    expect_shape("activation", "out", out, x.shape())?;
    be.activation(&mut out.buf, &x.buf, act)
}

/// RMSNorm over the last dimension with weight w (dim,).
pub fn rms_norm<B: Backend>(be: &B, out: &mut Tensor<B>, x: &Tensor<B>, w: &Tensor<B>, eps: f32) -> Result<()> {
    rms_norm_weighted(be, out, x, w, eps, NormWeight::Plain)
}

/// out ← act(RMSNorm(x) · w) over the last dimension (the autoencoders' norm + SiLU).
pub fn rms_norm_act<B: Backend>(
    be: &B,
    out: &mut Tensor<B>,
    x: &Tensor<B>,
    w: &Tensor<B>,
    eps: f32,
    act: Activation,
) -> Result<()> {
    rms_norm_checked(be, out, x, w, eps, NormWeight::Plain, act)
}

/// RMSNorm over the last dimension, weight applied as `weight` says (Gemma: 1 + w).
pub fn rms_norm_weighted<B: Backend>(
    be: &B,
    out: &mut Tensor<B>,
    x: &Tensor<B>,
    w: &Tensor<B>,
    eps: f32,
    weight: NormWeight,
) -> Result<()> {
    rms_norm_checked(be, out, x, w, eps, weight, Activation::Identity)
}

fn rms_norm_checked<B: Backend>(
    be: &B,
    out: &mut Tensor<B>,
    x: &Tensor<B>,
    w: &Tensor<B>,
    eps: f32,
    weight: NormWeight,
    act: Activation,
) -> Result<()> {
    const OP: &str = "rms_norm";
    let (rows, dim) = rows_last(OP, "x", x.shape())?;
    expect_shape(OP, "out", out, x.shape())?;
    expect_shape(OP, "weight", w, &[dim])?;
    be.rms_norm(&mut out.buf, &x.buf, &w.buf, rows, dim, eps, weight, act)
}

/// out (…, D) ← RMSNorm(x) with the weight applied as `weight` says, x the f32 residual stream
/// holding out's rows (rows·D values).
pub fn rms_norm_f32_input<B: Backend>(
    be: &B,
    out: &mut Tensor<B>,
    x: &B::Table,
    w: &Tensor<B>,
    eps: f32,
    weight: NormWeight,
) -> Result<()> {
    rms_norm_f32_input_act(be, out, x, w, eps, weight, Activation::Identity)
}

/// [`rms_norm_f32_input`] followed by `act`.
pub fn rms_norm_f32_input_act<B: Backend>(
    be: &B,
    out: &mut Tensor<B>,
    x: &B::Table,
    w: &Tensor<B>,
    eps: f32,
    weight: NormWeight,
    act: Activation,
) -> Result<()> {
    const OP: &str = "rms_norm_f32_input";
    let (rows, dim) = rows_last(OP, "out", out.shape())?;
    expect_len(OP, "x (f32)", x, rows * dim, "out's rows·D")?;
    expect_shape(OP, "weight", w, &[dim])?;
    be.rms_norm_f32_input(&mut out.buf, x, &w.buf, rows, dim, eps, weight, act)
}

/// x (f32, y's length) ← y or x + y as `write` says: an f32 residual stream taking a value in
/// the compute dtype.
pub fn add_f32<B: Backend>(be: &B, x: &mut B::Table, y: &Tensor<B>, write: Write) -> Result<()> {
    expect_len("add_f32", "x (f32)", x, y.len(), "y's length")?;
    be.add_f32(x, &y.buf, write)
}

/// x ← x + RMSNorm(y) (weight applied as `weight` says), y (…, D), x the f32 residual stream
/// holding y's rows (rows·D values).
pub fn normed_residual_f32<B: Backend>(
    be: &B,
    x: &mut B::Table,
    y: &Tensor<B>,
    w: &Tensor<B>,
    eps: f32,
    weight: NormWeight,
) -> Result<()> {
    const OP: &str = "normed_residual_f32";
    let (rows, dim) = rows_last(OP, "y", y.shape())?;
    expect_len(OP, "x (f32)", x, rows * dim, "y's rows·D")?;
    expect_shape(OP, "weight", w, &[dim])?;
    be.normed_residual_f32(x, &y.buf, &w.buf, rows, dim, eps, weight)
}

/// out ← LayerNorm(x) · (1 + m[scale]) + m[shift], x (B, N, D).
pub fn ada_layer_norm<B: Backend>(
    be: &B,
    out: &mut Tensor<B>,
    x: &Tensor<B>,
    m: &Modulation<B>,
    shift: usize,
    scale: usize,
    eps: f32,
) -> Result<()> {
    const OP: &str = "ada_layer_norm";
    let dims = token_dims(OP, x.shape())?;
    expect_shape(OP, "out", out, x.shape())?;
    check_modulation(OP, m, dims, &[shift, scale])?;
    be.ada_layer_norm(&mut out.buf, &x.buf, m, shift, scale, dims, eps)
}

/// x ← x + m[gate] · y, x and y (B, N, D).
pub fn gated_residual<B: Backend>(
    be: &B,
    x: &mut Tensor<B>,
    y: &Tensor<B>,
    m: &Modulation<B>,
    gate: usize,
) -> Result<()> {
    const OP: &str = "gated_residual";
    let dims = token_dims(OP, x.shape())?;
    expect_shape(OP, "y", y, x.shape())?;
    check_modulation(OP, m, dims, &[gate])?;
    be.gated_residual(&mut x.buf, &y.buf, m, gate, dims)
}

/// ReLU linear attention with RoPE; qkv (B, N, 3·D) → out (B, N, D), D = heads · head_dim.
#[allow(clippy::too_many_arguments)] // the op's natural inputs; see Backend::relu_linear_attention
pub fn relu_linear_attention<B: Backend>(
    be: &B,
    out: &mut Tensor<B>,
    qkv: &Tensor<B>,
    norm_q: &Tensor<B>,
    norm_k: &Tensor<B>,
    rope: &RopeTables<B>,
    heads: usize,
    norm_eps: f32,
    attn_eps: f32,
) -> Result<()> {
    const OP: &str = "relu_linear_attention";
    let TokenDims { b, n, d: d3 } = token_dims(OP, qkv.shape())?;
    if d3 % 3 != 0 || heads == 0 || (d3 / 3) % heads != 0 {
        return Err(Error::shape(OP, format!("qkv width {d3} is not 3 × heads ({heads}) × head_dim")));
    }
    let d = d3 / 3;
    let head_dim = d / heads;
    if !head_dim.is_multiple_of(2) {
        return Err(Error::shape(OP, format!("head_dim {head_dim} is odd; RoPE rotates channel pairs")));
    }
    expect_shape(OP, "out", out, &[b, n, d])?;
    expect_shape(OP, "norm_q", norm_q, &[d])?;
    expect_shape(OP, "norm_k", norm_k, &[d])?;
    for (name, table) in [("rope cos", &rope.cos), ("rope sin", &rope.sin)] {
        if table.len() != n * head_dim / 2 {
            return Err(Error::shape(
                OP,
                format!("{name} holds {} values, expected N·d/2 = {}", table.len(), n * head_dim / 2),
            ));
        }
    }
    let dims = AttnDims { b, n, l: n, heads, head_dim };
    be.relu_linear_attention(&mut out.buf, &qkv.buf, &norm_q.buf, &norm_k.buf, rope, dims, norm_eps, attn_eps)
}

/// Softmax attention; q (B, N, D), k and v (B, L, D), key_bias (B, L) → out (B, N, D).
pub fn cross_attention<B: Backend>(
    be: &B,
    out: &mut Tensor<B>,
    q: &Tensor<B>,
    k: &Tensor<B>,
    v: &Tensor<B>,
    key_bias: &B::Table,
    heads: usize,
) -> Result<()> {
    const OP: &str = "cross_attention";
    let TokenDims { b, n, d } = token_dims(OP, q.shape())?;
    let TokenDims { b: kb, n: l, d: kd } = token_dims(OP, k.shape())?;
    if kb != b || kd != d {
        return Err(Error::shape(OP, format!("k has shape {:?}, expected ({b}, L, {d})", k.shape())));
    }
    if heads == 0 || d % heads != 0 {
        return Err(Error::shape(OP, format!("width {d} is not a multiple of heads ({heads})")));
    }
    expect_shape(OP, "v", v, k.shape())?;
    if key_bias.len() != b * l {
        return Err(Error::shape(OP, format!("key_bias holds {} values, expected B·L = {}", key_bias.len(), b * l)));
    }
    expect_shape(OP, "out", out, q.shape())?;
    let dims = AttnDims { b, n, l, heads, head_dim: d / heads };
    be.cross_attention(&mut out.buf, &q.buf, &k.buf, &v.buf, key_bias, dims)
}

/// SiLU → depthwise 3×3 conv → GLU: x (B, T·H·W, 2F) on the grid (t, h, w), w (9, 2F) tap-major
/// → out (B, T·H·W, F).
pub fn depthwise3x3_glu<B: Backend>(
    be: &B,
    out: &mut Tensor<B>,
    x: &Tensor<B>,
    w: &Tensor<B>,
    bias: &Tensor<B>,
    grid: [usize; 3],
) -> Result<()> {
    const OP: &str = "depthwise3x3_glu";
    let TokenDims { b, n, d: c2 } = token_dims(OP, x.shape())?;
    let [t, h, wd] = grid;
    if t * h * wd != n || c2 % 2 != 0 {
        return Err(Error::shape(
            OP,
            format!("x {:?} does not fit grid {grid:?} with an even channel count", x.shape()),
        ));
    }
    expect_shape(OP, "weight", w, &[9, c2])?;
    expect_shape(OP, "bias", bias, &[c2])?;
    expect_shape(OP, "out", out, &[b, n, c2 / 2])?;
    be.depthwise3x3_glu(&mut out.buf, &x.buf, &w.buf, &bias.buf, GridDims { b, t, h, w: wd, c: c2 / 2 })
}

/// z = glu · pᵀ, out ← z + temporal conv3(z): the Mix-FFN's conv_point and temporal conv.
/// glu (B, T·H·W, F) on grid (t, h, w); p (C, F); w (C, 3C), taps side by side; out (B, T·H·W, C).
pub fn point_temporal_residual<B: Backend>(
    be: &B,
    out: &mut Tensor<B>,
    glu: &Tensor<B>,
    p: &Tensor<B>,
    w: &Tensor<B>,
    grid: [usize; 3],
) -> Result<()> {
    const OP: &str = "point_temporal_residual";
    let TokenDims { b, n, d: f } = token_dims(OP, glu.shape())?;
    let [t, h, wd] = grid;
    if t * h * wd != n {
        return Err(Error::shape(OP, format!("glu {:?} does not fit grid {grid:?}", glu.shape())));
    }
    let [c, pf] = *p.shape() else {
        return Err(Error::shape(OP, format!("conv_point weight has shape {:?}, expected (C, F)", p.shape())));
    };
    if pf != f {
        return Err(Error::shape(OP, format!("glu has {f} channels, conv_point weight expects {pf}")));
    }
    expect_shape(OP, "temporal weight", w, &[c, 3 * c])?;
    expect_shape(OP, "out", out, &[b, n, c])?;
    be.point_temporal_residual(&mut out.buf, &glu.buf, &p.buf, &w.buf, f, GridDims { b, t, h, w: wd, c })
}

/// (B, C, T, H, W) → (B, N, C·pt·ph·pw).
pub fn patchify<B: Backend>(be: &B, out: &mut Tensor<B>, x: &Tensor<B>, patch: [usize; 3]) -> Result<()> {
    const OP: &str = "patchify";
    let [b, c, t, h, w] = *x.shape() else {
        return Err(Error::shape(OP, format!("x has shape {:?}, expected (B, C, T, H, W)", x.shape())));
    };
    let dims = PatchDims { b, c, t, h, w, patch };
    if patch.contains(&0) || t % patch[0] != 0 || h % patch[1] != 0 || w % patch[2] != 0 {
        return Err(Error::shape(
            OP,
            format!("latent (T, H, W) = ({t}, {h}, {w}) is not a multiple of the patch {patch:?}"),
        ));
    }
    expect_shape(OP, "out", out, &[b, dims.tokens(), dims.features()])?;
    be.patchify(&mut out.buf, &x.buf, dims)
}

/// (B, N, pt·ph·pw·C) → (B, C, T, H, W) for the latent size `out` already has.
pub fn unpatchify<B: Backend>(be: &B, out: &mut Tensor<B>, x: &Tensor<B>, patch: [usize; 3]) -> Result<()> {
    const OP: &str = "unpatchify";
    let [b, c, t, h, w] = *out.shape() else {
        return Err(Error::shape(OP, format!("out has shape {:?}, expected (B, C, T, H, W)", out.shape())));
    };
    let dims = PatchDims { b, c, t, h, w, patch };
    expect_shape(OP, "x", x, &[b, dims.tokens(), dims.features()])?;
    be.unpatchify(&mut out.buf, &x.buf, dims)
}

/// out (rows, D) ← table[ids] · scale, table (V, D); ids are checked against V.
pub fn gather_rows<B: Backend>(be: &B, out: &mut Tensor<B>, table: &Tensor<B>, ids: &[u32], scale: f32) -> Result<()> {
    const OP: &str = "gather_rows";
    let d = embedding_width(OP, table, ids)?;
    expect_shape(OP, "out", out, &[ids.len(), d])?;
    be.gather_rows(&mut out.buf, &table.buf, ids, d, scale)
}

/// out (rows·D values, f32) ← table[ids] · scale, table (V, D): [`gather_rows`] starting an f32
/// residual stream.
pub fn gather_rows_f32<B: Backend>(
    be: &B,
    out: &mut B::Table,
    table: &Tensor<B>,
    ids: &[u32],
    scale: f32,
) -> Result<()> {
    const OP: &str = "gather_rows_f32";
    let d = embedding_width(OP, table, ids)?;
    expect_len(OP, "out (f32)", out, ids.len() * d, "ids·D")?;
    be.gather_rows_f32(out, &table.buf, ids, d, scale)
}

/// D of an embedding table (V, D), every id checked against V.
fn embedding_width<B: Backend>(op: &'static str, table: &Tensor<B>, ids: &[u32]) -> Result<usize> {
    let [vocab, d] = *table.shape() else {
        return Err(Error::shape(op, format!("table has shape {:?}, expected (V, D)", table.shape())));
    };
    if let Some(&bad) = ids.iter().find(|&&i| i as usize >= vocab) {
        return Err(Error::shape(op, format!("token id {bad} is outside the vocabulary of {vocab}")));
    }
    Ok(d)
}

/// Rotate-half RoPE on x (B, L, heads·hd) with tables (L, hd/2).
pub fn rope_rotate_half<B: Backend>(
    be: &B,
    out: &mut Tensor<B>,
    x: &Tensor<B>,
    rope: &RopeTables<B>,
    heads: usize,
) -> Result<()> {
    const OP: &str = "rope_rotate_half";
    let TokenDims { b, n, d } = token_dims(OP, x.shape())?;
    if heads == 0 || d % heads != 0 || !(d / heads).is_multiple_of(2) {
        return Err(Error::shape(OP, format!("width {d} is not heads ({heads}) × an even head_dim")));
    }
    let hd = d / heads;
    expect_shape(OP, "out", out, x.shape())?;
    for (name, table) in [("rope cos", &rope.cos), ("rope sin", &rope.sin)] {
        if table.len() != n * hd / 2 {
            return Err(Error::shape(
                OP,
                format!("{name} holds {} values, expected L·hd/2 = {}", table.len(), n * hd / 2),
            ));
        }
    }
    be.rope_rotate_half(&mut out.buf, &x.buf, rope, AttnDims { b, n, l: n, heads, head_dim: hd })
}

/// Causal (grouped-query) attention; q (B, L, H·hd), k and v (B, L, KV·hd), key_mask (B, L).
#[allow(clippy::too_many_arguments)] // the op's natural inputs; see Backend::causal_attention
pub fn causal_attention<B: Backend>(
    be: &B,
    out: &mut Tensor<B>,
    q: &Tensor<B>,
    k: &Tensor<B>,
    v: &Tensor<B>,
    key_mask: &B::Table,
    heads: usize,
    kv_heads: usize,
    scale: f32,
    softcap: Option<f32>,
    window: Option<usize>,
) -> Result<()> {
    const OP: &str = "causal_attention";
    let TokenDims { b, n, d } = token_dims(OP, q.shape())?;
    if heads == 0 || kv_heads == 0 || d % heads != 0 || !heads.is_multiple_of(kv_heads) {
        return Err(Error::shape(OP, format!("width {d}, {heads} heads, {kv_heads} kv heads do not divide")));
    }
    let hd = d / heads;
    expect_shape(OP, "k", k, &[b, n, kv_heads * hd])?;
    expect_shape(OP, "v", v, &[b, n, kv_heads * hd])?;
    expect_shape(OP, "out", out, q.shape())?;
    if key_mask.len() != b * n {
        return Err(Error::shape(OP, format!("key_mask holds {} values, expected B·L = {}", key_mask.len(), b * n)));
    }
    let dims = AttnDims { b, n, l: n, heads, head_dim: hd };
    be.causal_attention(&mut out.buf, &q.buf, &k.buf, &v.buf, key_mask, dims, kv_heads, scale, softcap, window)
}

pub fn multiply<B: Backend>(be: &B, out: &mut Tensor<B>, a: &Tensor<B>, b: &Tensor<B>) -> Result<()> {
    expect_shape("multiply", "b", b, a.shape())?;
    expect_shape("multiply", "out", out, a.shape())?;
    be.multiply(&mut out.buf, &a.buf, &b.buf)
}

pub fn add<B: Backend>(be: &B, x: &mut Tensor<B>, y: &Tensor<B>) -> Result<()> {
    expect_shape("add", "y", y, x.shape())?;
    be.add(&mut x.buf, &y.buf)
}

/// Stride, padding and input upsampling of a [`conv3d`]; the kernel size comes from the weight's
/// shape.
#[derive(Clone, Copy, Debug)]
pub struct ConvSpec {
    pub stride: [usize; 3],
    pub pad_before: [usize; 3],
    pub pad_after: [usize; 3],
    pub spatial_pad: PadMode,
    /// 2: the conv reads x nearest-upsampled ×2 in space (see [`ConvDims`]); 1: as it is.
    pub upsample: usize,
}

impl ConvSpec {
    /// Stride 1, `pad` zeros on both sides of each axis ("same" for odd kernels).
    pub fn same(pad: [usize; 3]) -> Self {
        ConvSpec { stride: [1; 3], pad_before: pad, pad_after: pad, spatial_pad: PadMode::Zeros, upsample: 1 }
    }
}

/// out (T', H', W', C_out) ← conv(x (T, H, W, C_in), w (C_out, kt, kh, kw, C_in)) + bias, or
/// out += … with [`Write::Accumulate`].
pub fn conv3d<B: Backend>(
    be: &B,
    out: &mut Tensor<B>,
    x: &Tensor<B>,
    w: &Tensor<B>,
    bias: Option<&Tensor<B>>,
    spec: ConvSpec,
    write: Write,
) -> Result<()> {
    const OP: &str = "conv3d";
    let [t, h, wd, c_in] = *x.shape() else {
        return Err(Error::shape(OP, format!("x has shape {:?}, expected (T, H, W, C)", x.shape())));
    };
    let [c_out, kt, kh, kw, wc] = *w.shape() else {
        return Err(Error::shape(OP, format!("weight has shape {:?}, expected (C_out, kt, kh, kw, C_in)", w.shape())));
    };
    if wc != c_in {
        return Err(Error::shape(OP, format!("x has {c_in} channels, weight expects {wc}")));
    }
    let dims = ConvDims {
        input: [t, h, wd],
        c_in,
        c_out,
        kernel: [kt, kh, kw],
        stride: spec.stride,
        pad_before: spec.pad_before,
        pad_after: spec.pad_after,
        spatial_pad: spec.spatial_pad,
        upsample: spec.upsample,
    };
    if spec.stride.contains(&0) {
        return Err(Error::shape(OP, format!("stride {:?} has a zero", spec.stride)));
    }
    if !matches!(spec.upsample, 1 | 2) {
        return Err(Error::shape(OP, format!("upsample is {}, expected 1 or 2", spec.upsample)));
    }
    if spec.spatial_pad == PadMode::Reflect {
        for axis in 1..3 {
            if spec.pad_before[axis].max(spec.pad_after[axis]) >= dims.grid()[axis] {
                return Err(Error::shape(
                    OP,
                    format!("reflect padding {:?} needs an input larger than {:?}", spec.pad_before, dims.grid()),
                ));
            }
        }
    }
    let [to, ho, wo] = dims.output();
    expect_shape(OP, "out", out, &[to, ho, wo, c_out])?;
    if let Some(b) = bias {
        expect_shape(OP, "bias", b, &[c_out])?;
    }
    be.conv3d(&mut out.buf, &x.buf, &w.buf, bias.map(|b| &b.buf), dims, write)
}

/// Frames `src_frame..src_frame + count` of src into dst from `dst_frame`: both (F, …) with the
/// same trailing shape.
pub fn copy_frames<B: Backend>(
    be: &B,
    dst: &mut Tensor<B>,
    dst_frame: usize,
    src: &Tensor<B>,
    src_frame: usize,
    count: usize,
) -> Result<()> {
    const OP: &str = "copy_frames";
    let (Some((&df, dtrail)), Some((&sf, strail))) = (dst.shape().split_first(), src.shape().split_first()) else {
        return Err(Error::shape(OP, "a scalar has no frames".to_string()));
    };
    if dtrail != strail {
        return Err(Error::shape(OP, format!("frames of {:?} and {:?} differ", dst.shape(), src.shape())));
    }
    if dst_frame + count > df || src_frame + count > sf {
        return Err(Error::shape(
            OP,
            format!("{count} frames from {src_frame} of {sf} into {dst_frame} of {df} run past the end"),
        ));
    }
    let frame: usize = dtrail.iter().product();
    be.copy_range(&mut dst.buf, dst_frame * frame, &src.buf, src_frame * frame, count * frame)
}

/// The shape checks shared by both reshuffles: x or out fine (T, H, W, C_fine), divisible by the
/// factors. Returns the dims for `c` fine channels.
fn shuffle_dims(
    op: &'static str,
    fine: &[usize],
    c: usize,
    factors: [usize; 3],
    order: SubpixelOrder,
) -> Result<ShuffleDims> {
    let [t, h, w, _] = *fine else {
        return Err(Error::shape(op, format!("fine clip has shape {fine:?}, expected (T, H, W, C)")));
    };
    if factors.contains(&0) || t % factors[0] != 0 || h % factors[1] != 0 || w % factors[2] != 0 {
        return Err(Error::shape(
            op,
            format!("(T, H, W) = ({t}, {h}, {w}) is not a multiple of the factors {factors:?}"),
        ));
    }
    Ok(ShuffleDims { fine: [t, h, w], c, factors, order })
}

/// out (T/st, H/sh, W/sw, C·st·sh·sw/group) ← space-to-depth of x (T, H, W, C), each output
/// channel the mean of `group` consecutive shuffled channels.
pub fn space_to_depth<B: Backend>(
    be: &B,
    out: &mut Tensor<B>,
    x: &Tensor<B>,
    factors: [usize; 3],
    order: SubpixelOrder,
    group: usize,
) -> Result<()> {
    const OP: &str = "space_to_depth";
    let c = x.shape().last().copied().unwrap_or(0);
    let dims = shuffle_dims(OP, x.shape(), c, factors, order)?;
    let shuffled = dims.coarse_channels();
    if group == 0 || shuffled % group != 0 {
        return Err(Error::shape(OP, format!("{shuffled} shuffled channels do not split into groups of {group}")));
    }
    let [to, ho, wo] = dims.coarse();
    expect_shape(OP, "out", out, &[to, ho, wo, shuffled / group])?;
    be.space_to_depth(&mut out.buf, &x.buf, dims, group)
}

/// out (T, H, W, C·repeat) ← depth-to-space of x (T/st, H/sh, W/sw, C·st·sh·sw), the C fine
/// channels tiled `repeat` times; (T, H, W) is out's.
pub fn depth_to_space<B: Backend>(
    be: &B,
    out: &mut Tensor<B>,
    x: &Tensor<B>,
    factors: [usize; 3],
    order: SubpixelOrder,
    repeat: usize,
) -> Result<()> {
    const OP: &str = "depth_to_space";
    let c_out = out.shape().last().copied().unwrap_or(0);
    if repeat == 0 || c_out % repeat != 0 {
        return Err(Error::shape(OP, format!("out has {c_out} channels, not a multiple of repeat {repeat}")));
    }
    let dims = shuffle_dims(OP, out.shape(), c_out / repeat, factors, order)?;
    let [to, ho, wo] = dims.coarse();
    expect_shape(OP, "x", x, &[to, ho, wo, dims.coarse_channels()])?;
    be.depth_to_space(&mut out.buf, &x.buf, dims, repeat)
}

/// out ← act(GroupNorm(x)·γ + β) over a channels-last clip x (…, C): statistics per group of
/// C/groups channels over every position (the whole clip, as PyTorch's 3D GroupNorm).
#[allow(clippy::too_many_arguments)] // the op's natural inputs; see Backend::group_norm
pub fn group_norm<B: Backend>(
    be: &B,
    out: &mut Tensor<B>,
    x: &Tensor<B>,
    gamma: &Tensor<B>,
    beta: &Tensor<B>,
    groups: usize,
    eps: f32,
    act: Activation,
) -> Result<()> {
    const OP: &str = "group_norm";
    let (positions, channels) = rows_last(OP, "x", x.shape())?;
    if groups == 0 || !channels.is_multiple_of(groups) {
        return Err(Error::shape(OP, format!("{channels} channels do not split into {groups} groups")));
    }
    expect_shape(OP, "out", out, x.shape())?;
    expect_shape(OP, "gamma", gamma, &[channels])?;
    expect_shape(OP, "beta", beta, &[channels])?;
    be.group_norm(&mut out.buf, &x.buf, &gamma.buf, &beta.buf, positions, channels, groups, eps, act)
}

// ---- the sampler's device-side steps (engine/sampler): latents as f32 tables ----------------

/// An f32 table into a tensor in the compute precision: `out` (a whole number of copies of x) ← x
/// repeated (the sampler's model batch; one copy where a resnet run's f32 stream rounds back).
pub fn table_to_tensor<B: Backend>(be: &B, out: &mut Tensor<B>, x: &B::Table) -> Result<()> {
    if x.is_empty() || !out.len().is_multiple_of(x.len()) {
        return Err(Error::shape(
            "table_to_tensor",
            format!("a model batch of {} values is no whole number of {}-value latents", out.len(), x.len()),
        ));
    }
    be.table_to_tensor(&mut out.buf, x)
}

/// `out` (n) ← the model output itself (n values) or u + scale·(c − u) of its halves (2n).
pub fn guided_velocity<B: Backend>(be: &B, out: &mut B::Table, model_out: &Tensor<B>, scale: f32) -> Result<()> {
    if model_out.len() != out.len() && model_out.len() != 2 * out.len() {
        return Err(Error::shape(
            "guided_velocity",
            format!(
                "a model output of {} values for a {}-value latent (expected 1 or 2 copies)",
                model_out.len(),
                out.len()
            ),
        ));
    }
    be.guided_velocity(out, &model_out.buf, scale)
}

/// `out` ← keep·out + Σ cᵢ·tᵢ, one to three terms of out's length; keep = 0 overwrites.
pub fn lincomb_tables<B: Backend>(be: &B, out: &mut B::Table, keep: f32, terms: &[(f32, &B::Table)]) -> Result<()> {
    if terms.is_empty() || terms.len() > 3 || terms.iter().any(|(_, t)| t.len() != out.len()) {
        let lens: Vec<usize> = terms.iter().map(|(_, t)| t.len()).collect();
        return Err(Error::shape(
            "lincomb_tables",
            format!("terms of lengths {lens:?} for a {}-value output (1 to 3 of the same length)", out.len()),
        ));
    }
    be.lincomb_tables(out, keep, terms)
}

/// dst[dst_offset..][..len] ← src[src_offset..][..len] between tables.
pub fn copy_table_range<B: Backend>(
    be: &B,
    dst: &mut B::Table,
    dst_offset: usize,
    src: &B::Table,
    src_offset: usize,
    len: usize,
) -> Result<()> {
    if dst_offset + len > dst.len() || src_offset + len > src.len() {
        return Err(Error::shape(
            "copy_table_range",
            format!(
                "{len} values from {src_offset} of {} into {dst_offset} of {} run past the end",
                src.len(),
                dst.len()
            ),
        ));
    }
    be.copy_table_range(dst, dst_offset, src, src_offset, len)
}
