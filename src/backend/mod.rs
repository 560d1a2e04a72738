//! Tensor storage and the ops the models are written against.
//!
//! Model code is written once, generic over [`Backend`]; each backend (the f32 CPU reference in
//! `cpu/`, bf16 CUDA in `cuda/`) implements every op with the same name, the same argument order (outputs,
//! inputs, weights, dimensions) and the same meaning. Ops take whole buffers plus a small dims
//! struct; [`Tensor`] carries shapes so the checks in `ops.rs` are written once for all backends,
//! before any backend code runs.
//!
//! Outputs are caller-owned, so a model can allocate its activations once per shape and reuse them
//! across steps. (Today the transformer allocates them once per forward; on CUDA they come from
//! the stream-ordered pool, which keeps its memory, so no driver allocation happens after the
//! first step.)

pub mod cpu;
pub mod cuda;
mod ops;
mod tensor;

pub use ops::*;
pub use tensor::Tensor;

use crate::error::Result;

/// Elementwise activation applied after a matrix product or on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Identity,
    /// x · sigmoid(x)
    Silu,
    /// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) — PyTorch `gelu(approximate="tanh")`
    GeluTanh,
}

/// How an RMSNorm applies its learned weight: `x̂·w`, or Gemma's `x̂·(1 + w)` (the 1 added in
/// f32 inside the op, so a bf16 weight near 0 keeps its precision).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormWeight {
    Plain,
    OnePlus,
}

impl NormWeight {
    pub fn offset(self) -> f32 {
        match self {
            NormWeight::Plain => 0.0,
            NormWeight::OnePlus => 1.0,
        }
    }
}

/// Whether an op replaces its output or adds into it (a residual connection, or one term of an
/// accumulated product such as the shifted GEMMs of the temporal convolution).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    Overwrite,
    Accumulate,
}

/// Device memory for one tensor. The element type is the backend's choice (f32 on the CPU).
pub trait Buffer: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// adaLN modulation vectors: `table` (K, D) from the checkpoint plus `emb` (B·M, E·D), the
/// embedded timestep, where M = 1 (one timestep per sample) or N (one per token).
/// Vector k of token (b, n) is `table[k] + emb[b·M + (M==1 ? 0 : n)][k mod E]`.
/// Blocks use E = K = 6 (shift, scale, gate for attention and for the FFN); the final layer uses
/// E = 1, K = 2: both its shift and its scale add the same embedded timestep (MODEL.md §2.2 step 6).
pub struct Modulation<'a, B: Backend> {
    pub table: &'a Tensor<B>,
    pub emb: &'a Tensor<B>,
    pub emb_chunks: usize,
    pub per_token: bool,
}

/// Rotary tables for the 3D RoPE, one row per token: `cos`, `sin` (N, d/2), the angle of channel
/// pair (2i, 2i+1) of every head (MODEL.md §2.5). Kept in f32 on every backend.
pub struct RopeTables<B: Backend> {
    pub cos: B::Table,
    pub sin: B::Table,
}

// ---- dims structs: what a backend needs besides the buffers -----------------------------------

/// out (rows, n) ← act(x (rows, k) · wᵀ + bias), w (n, k) as stored by PyTorch `nn.Linear`.
#[derive(Clone, Copy, Debug)]
pub struct LinearDims {
    pub rows: usize,
    pub k: usize,
    pub n: usize,
}

/// B samples of N tokens of width D.
#[derive(Clone, Copy, Debug)]
pub struct TokenDims {
    pub b: usize,
    pub n: usize,
    pub d: usize,
}

/// Multi-head attention shapes: B samples, N query tokens, L key tokens, Hh heads of width d.
#[derive(Clone, Copy, Debug)]
pub struct AttnDims {
    pub b: usize,
    pub n: usize,
    pub l: usize,
    pub heads: usize,
    pub head_dim: usize,
}

/// A channels-last video grid: B samples, T frames, H×W positions, C channels.
#[derive(Clone, Copy, Debug)]
pub struct GridDims {
    pub b: usize,
    pub t: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

/// How a convolution pads the spatial borders. The temporal axis always pads with zeros: causal
/// video convs that pad the past otherwise (LTX-2 replicates the first frame) build those frames
/// themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadMode {
    Zeros,
    /// PyTorch `reflect`: index −1 reads 1, index H reads H − 2.
    Reflect,
}

/// A 3D convolution over one channels-last clip: x (T, H, W, C_in) → out (T', H', W', C_out),
/// w (C_out, kt·kh·kw·C_in) tap-major with the input channel fastest (the checkpoint's
/// (C_out, C_in, kt, kh, kw) permuted at load), so each output position is one row of an implicit
/// GEMM over [taps × C_in]. With `upsample` = 2 the conv reads x nearest-upsampled ×2 in space
/// (the Wan decoder's `Upsample` + 3×3 conv) without the upsampled copy ever being made: padding,
/// strides and taps then apply to the (T, 2H, 2W) grid.
#[derive(Clone, Copy, Debug)]
pub struct ConvDims {
    /// (T, H, W) of x as stored.
    pub input: [usize; 3],
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: [usize; 3],
    pub stride: [usize; 3],
    /// Padding before / after on (t, h, w).
    pub pad_before: [usize; 3],
    pub pad_after: [usize; 3],
    pub spatial_pad: PadMode,
    /// Nearest spatial upsampling of x before the conv: 1 (none) or 2.
    pub upsample: usize,
}

impl ConvDims {
    /// (T, H, W) of the grid the taps read: x's, upsampled in space.
    pub fn grid(&self) -> [usize; 3] {
        let [t, h, w] = self.input;
        [t, h * self.upsample, w * self.upsample]
    }

    /// (T', H', W') of the output.
    pub fn output(&self) -> [usize; 3] {
        let grid = self.grid();
        std::array::from_fn(|i| {
            let padded = grid[i] + self.pad_before[i] + self.pad_after[i];
            if padded < self.kernel[i] {
                0
            } else {
                (padded - self.kernel[i]) / self.stride[i] + 1
            }
        })
    }

    pub fn taps(&self) -> usize {
        self.kernel.iter().product()
    }
}

/// Patchify / unpatchify between (B, C, T, H, W) and tokens (B, N, C·pt·ph·pw).
#[derive(Clone, Copy, Debug)]
pub struct PatchDims {
    pub b: usize,
    pub c: usize,
    pub t: usize,
    pub h: usize,
    pub w: usize,
    pub patch: [usize; 3],
}

impl PatchDims {
    pub fn grid(&self) -> [usize; 3] {
        [self.t / self.patch[0], self.h / self.patch[1], self.w / self.patch[2]]
    }
    pub fn tokens(&self) -> usize {
        self.grid().iter().product()
    }
    pub fn features(&self) -> usize {
        self.c * self.patch.iter().product::<usize>()
    }
}

/// The order of the sub-position indices inside one space-to-depth channel block: channel
/// ((c·st + it)·s1 + i1)·s2 + i2 of the coarse clip holds fine channel c at sub-position
/// (it, ih, iw), with (s1, i1, s2, i2) = (sh, ih, sw, iw) for `Thw`, (sw, iw, sh, ih) for `Twh`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubpixelOrder {
    /// (c, it, ih, iw): LTX-2's down- and upsamplers (MODEL.md §3.2).
    Thw,
    /// (c, it, iw, ih), w before h: LTX-2's 4×4 input patchify and output unpatchify.
    Twh,
}

/// Space-to-depth between a fine channels-last clip (T, H, W, C) and a coarse one
/// (T/st, H/sh, W/sw, C·st·sh·sw): `fine` = (T, H, W), `c` = C, `factors` = (st, sh, sw).
#[derive(Clone, Copy, Debug)]
pub struct ShuffleDims {
    pub fine: [usize; 3],
    pub c: usize,
    pub factors: [usize; 3],
    pub order: SubpixelOrder,
}

impl ShuffleDims {
    /// (T/st, H/sh, W/sw).
    pub fn coarse(&self) -> [usize; 3] {
        std::array::from_fn(|i| self.fine[i] / self.factors[i])
    }

    /// Channels of the coarse clip before any grouping: C·st·sh·sw.
    pub fn coarse_channels(&self) -> usize {
        self.c * self.factors.iter().product::<usize>()
    }
}

/// The ops the models need. Each backend implements each op once; shapes are already checked by
/// the wrappers in `ops.rs`, so implementations may index freely within the stated sizes.
pub trait Backend: Send + Sync + Sized + 'static {
    /// Activations and weights, in the backend's compute dtype (f32 on the CPU, bf16 on CUDA).
    type Buf: Buffer;
    /// f32 device memory on every backend: small host-computed tables that must keep f32
    /// precision (RoPE angles, mask biases), and the storage of an f32 residual stream (the text
    /// encoder's, which would lose precision over 26 layers of bf16 adds; see
    /// [`Backend::normed_residual_f32`]).
    type Table: Buffer;
    /// A point in the backend's op queue ([`Backend::fence`]).
    type Fence;

    /// "cpu" or "cuda:0 (NVIDIA H200)", for logs and reports.
    fn name(&self) -> String;
    /// A buffer of `len` elements with unspecified contents.
    fn alloc(&self, len: usize) -> Result<Self::Buf>;
    fn upload(&self, host: &[f32]) -> Result<Self::Buf>;
    /// Like `upload`, taking ownership (the CPU backend keeps the vector without copying it).
    fn upload_vec(&self, host: Vec<f32>) -> Result<Self::Buf> {
        self.upload(&host)
    }
    fn download(&self, buf: &Self::Buf) -> Result<Vec<f32>>;
    /// `buf`'s values in order, in pieces of a whole multiple of `align` values (the last piece
    /// holds the rest): `visit(offset, values)`. For results too large to copy whole into a
    /// second host buffer (a decoded 704×1280×81 clip is 219 M values): the caller places each
    /// piece where it belongs.
    fn download_pieces(
        &self,
        buf: &Self::Buf,
        align: usize,
        visit: &mut dyn FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<()> {
        let _ = align; // one piece holds everything
        visit(0, &self.download(buf)?)
    }
    /// A buffer of `len` values that `fill(offset, piece)` writes piece by piece (pieces as in
    /// `download_pieces`): the upload counterpart, so a clip goes from the caller's layout to the
    /// device without a full-size host copy in between.
    fn upload_pieces(
        &self,
        len: usize,
        align: usize,
        fill: &mut dyn FnMut(usize, &mut [f32]) -> Result<()>,
    ) -> Result<Self::Buf> {
        let _ = align;
        let mut host = vec![0.0; len];
        fill(0, &mut host)?;
        self.upload_vec(host)
    }
    /// An f32 buffer of `len` elements with unspecified contents (an f32 residual stream that its
    /// first op overwrites).
    fn alloc_table(&self, len: usize) -> Result<Self::Table>;
    fn upload_table(&self, host: Vec<f32>) -> Result<Self::Table>;
    fn download_table(&self, table: &Self::Table) -> Result<Vec<f32>>;

    /// Bytes one element of `Buf` takes (memory estimates: 4 for f32, 2 for bf16).
    fn element_bytes(&self) -> usize {
        4
    }
    /// Bytes new buffers can still take on the device, where the backend can tell (memory
    /// budgets, e.g. whether a VAE decode must tile); `None` where it cannot (the CPU's host
    /// memory is not measured).
    fn available_memory(&self) -> Option<usize> {
        None
    }

    /// out ← act(x · wᵀ + bias) (or out += …).
    #[allow(clippy::too_many_arguments)] // mirrors the kernel's parameter struct
    fn linear(
        &self,
        out: &mut Self::Buf,
        x: &Self::Buf,
        w: &Self::Buf,
        bias: Option<&Self::Buf>,
        dims: LinearDims,
        act: Activation,
        write: Write,
    ) -> Result<()>;

    /// out ← act(x), elementwise.
    fn activation(&self, out: &mut Self::Buf, x: &Self::Buf, act: Activation) -> Result<()>;

    /// RMSNorm over rows of width `dim`: out ← act(x · rsqrt(mean(x²) + eps) · (offset + w)), the
    /// offset 0 or 1 as `weight` says (mean of squares in f32 or better). The activation is fused
    /// because the autoencoders follow every norm with SiLU.
    #[allow(clippy::too_many_arguments)] // mirrors the kernel's parameter struct
    fn rms_norm(
        &self,
        out: &mut Self::Buf,
        x: &Self::Buf,
        w: &Self::Buf,
        rows: usize,
        dim: usize,
        eps: f32,
        weight: NormWeight,
        act: Activation,
    ) -> Result<()>;

    /// out ← LayerNorm(x; no affine, eps) · (1 + m[scale]) + m[shift]  (MODEL.md §2.3).
    #[allow(clippy::too_many_arguments)] // mirrors the kernel's parameter struct
    fn ada_layer_norm(
        &self,
        out: &mut Self::Buf,
        x: &Self::Buf,
        m: &Modulation<Self>,
        shift: usize,
        scale: usize,
        dims: TokenDims,
        eps: f32,
    ) -> Result<()>;

    /// [`Backend::rms_norm`] reading an f32 residual stream x (rows, dim) and writing the compute
    /// dtype: out ← act(x · rsqrt(mean(x²) + eps) · (offset + w)). The pre-norms of the text
    /// encoder (no activation), whose output feeds the projections, and the LTX-2 autoencoder's
    /// norm + SiLU before each resnet's first conv.
    #[allow(clippy::too_many_arguments)] // mirrors the kernel's parameter struct
    fn rms_norm_f32_input(
        &self,
        out: &mut Self::Buf,
        x: &Self::Table,
        w: &Self::Buf,
        rows: usize,
        dim: usize,
        eps: f32,
        weight: NormWeight,
        act: Activation,
    ) -> Result<()>;

    /// x ← y (`Write::Overwrite`) or x + y (`Write::Accumulate`), x an f32 residual stream of
    /// y's length, y in the compute dtype: the sum in f32, never rounded to the compute dtype.
    fn add_f32(&self, x: &mut Self::Table, y: &Self::Buf, write: Write) -> Result<()>;

    /// x ← x + y · rsqrt(mean(y²) + eps) · (offset + w) over rows of width `dim`: a post-norm
    /// added into an f32 residual stream x (rows, dim), y (rows, dim) in the compute dtype (the
    /// projection's output). Mean of squares in f32 or better; the normed value is added as it
    /// is, not rounded to the compute dtype first.
    #[allow(clippy::too_many_arguments)] // mirrors the kernel's parameter struct
    fn normed_residual_f32(
        &self,
        x: &mut Self::Table,
        y: &Self::Buf,
        w: &Self::Buf,
        rows: usize,
        dim: usize,
        eps: f32,
        weight: NormWeight,
    ) -> Result<()>;

    /// x ← x + m[gate] · y  (gated residual, MODEL.md §2.3).
    fn gated_residual(
        &self,
        x: &mut Self::Buf,
        y: &Self::Buf,
        m: &Modulation<Self>,
        gate: usize,
        dims: TokenDims,
    ) -> Result<()>;

    /// ReLU linear attention with RoPE (MODEL.md §2.4–2.5). qkv (B, N, 3·Hh·d) holds q | k | v of
    /// each token, before the across-head RMSNorm of q and k; out (B, N, Hh·d) head-major.
    #[allow(clippy::too_many_arguments)] // mirrors the kernel's parameter struct
    fn relu_linear_attention(
        &self,
        out: &mut Self::Buf,
        qkv: &Self::Buf,
        norm_q: &Self::Buf,
        norm_k: &Self::Buf,
        rope: &RopeTables<Self>,
        dims: AttnDims,
        norm_eps: f32,
        attn_eps: f32,
    ) -> Result<()>;

    /// Softmax attention of q (B, N, Hh·d) over k, v (B, L, Hh·d), scale 1/√d, plus an additive
    /// key bias (B, L) table (0 for kept tokens, −10000 for padding, as diffusers builds it).
    #[allow(clippy::too_many_arguments)] // mirrors the kernel's parameter struct
    fn cross_attention(
        &self,
        out: &mut Self::Buf,
        q: &Self::Buf,
        k: &Self::Buf,
        v: &Self::Buf,
        key_bias: &Self::Table,
        dims: AttnDims,
    ) -> Result<()>;

    /// The spatial stage of the Mix-FFN (MODEL.md §2.7 steps 1–3, after the conv_inverted
    /// product): u = SiLU(x); y = dwconv3x3(u) + bias on 2F channels (zero padding 1, per frame);
    /// out = y[..F] · SiLU(y[F..]). x (B·T, H, W, 2F) channels-last, before conv_inverted's SiLU
    /// (applied here as inputs are read, saving a pass over the widest activation);
    /// w (9, 2F) tap-major (ky·3 + kx), out (B·T, H, W, F); `dims.c` = F.
    fn depthwise3x3_glu(
        &self,
        out: &mut Self::Buf,
        x: &Self::Buf,
        w: &Self::Buf,
        bias: &Self::Buf,
        dims: GridDims,
    ) -> Result<()>;

    /// The Mix-FFN's tail (MODEL.md §2.7 steps 4–5): z = glu · pᵀ (conv_point, no bias), then
    /// out ← z + Σ_k W[:, :, k] · z[t + k − 1] (zero padded in t), the temporal (3,1) conv with
    /// its internal residual. glu (B, T, H·W, F), p (C, F), w (C, 3·C) = [W_0 | W_1 | W_2] (the
    /// checkpoint's (C, C, 3, 1) permuted at load), out (B, T, H·W, C); `dims.c` = C. One op, so
    /// that a backend can write z straight into the operand of the conv's one K = 3C product.
    #[allow(clippy::too_many_arguments)] // the two products' operands
    fn point_temporal_residual(
        &self,
        out: &mut Self::Buf,
        glu: &Self::Buf,
        p: &Self::Buf,
        w: &Self::Buf,
        f: usize,
        dims: GridDims,
    ) -> Result<()>;

    /// out[r] ← table[ids[r]] · scale: an embedding lookup (rows of width D; ids on the host).
    fn gather_rows(&self, out: &mut Self::Buf, table: &Self::Buf, ids: &[u32], dim: usize, scale: f32) -> Result<()>;

    /// [`Backend::gather_rows`] into an f32 residual stream: out[r] ← table[ids[r]] · scale, the
    /// product in f32 and kept in f32 (the table stays in the compute dtype).
    fn gather_rows_f32(
        &self,
        out: &mut Self::Table,
        table: &Self::Buf,
        ids: &[u32],
        dim: usize,
        scale: f32,
    ) -> Result<()>;

    /// Rotate-half RoPE (the Llama/Gemma layout) on every head of (B, L, heads·hd):
    /// out[c] = x[c]·cos_c − x[c + hd/2]·sin_c, out[c + hd/2] = x[c + hd/2]·cos_c + x[c]·sin_c for
    /// c < hd/2, with the angle tables (L, hd/2) of token position l.
    fn rope_rotate_half(
        &self,
        out: &mut Self::Buf,
        x: &Self::Buf,
        rope: &RopeTables<Self>,
        dims: AttnDims,
    ) -> Result<()>;

    /// Causal softmax attention with grouped K/V heads (`dims.heads` query heads share
    /// `kv_heads`), optional logit soft-capping (s ← cap·tanh(s/cap), before the mask), an
    /// optional sliding window (key j visible from query i iff i − j < window) and a key mask
    /// table (B, L): 1 keep, 0 padding. q (B, L, H·hd), k and v (B, L, KV·hd), out (B, L, H·hd).
    #[allow(clippy::too_many_arguments)] // mirrors the kernel's parameter struct
    fn causal_attention(
        &self,
        out: &mut Self::Buf,
        q: &Self::Buf,
        k: &Self::Buf,
        v: &Self::Buf,
        key_mask: &Self::Table,
        dims: AttnDims,
        kv_heads: usize,
        scale: f32,
        softcap: Option<f32>,
        window: Option<usize>,
    ) -> Result<()>;

    /// out ← a · b, elementwise.
    fn multiply(&self, out: &mut Self::Buf, a: &Self::Buf, b: &Self::Buf) -> Result<()>;

    /// x ← x + y, elementwise.
    fn add(&self, x: &mut Self::Buf, y: &Self::Buf) -> Result<()>;

    /// A 3D convolution (see [`ConvDims`]): out ← conv(x, w) + bias, or out += conv(x, w) + bias
    /// with [`Write::Accumulate`] (a residual added by the conv itself, with no separate pass).
    fn conv3d(
        &self,
        out: &mut Self::Buf,
        x: &Self::Buf,
        w: &Self::Buf,
        bias: Option<&Self::Buf>,
        dims: ConvDims,
        write: Write,
    ) -> Result<()>;

    /// Marks the ops queued so far; [`Backend::wait`] returns once they have all finished (a
    /// denoising loop keeps one step queued ahead of the device). The CPU runs each op as it is
    /// called: its fences are already passed.
    fn fence(&self) -> Result<Self::Fence>;
    fn wait(&self, fence: &Self::Fence) -> Result<()>;
    /// An f32 table into a buffer in the compute precision: out (a multiple of x's length) = x
    /// repeated (the sampler's [x, x] batch of classifier-free guidance or x alone; one copy where
    /// a resnet run's f32 residual stream rounds back).
    fn table_to_tensor(&self, out: &mut Self::Buf, x: &Self::Table) -> Result<()>;
    /// out (n) ← the model output: itself when it holds one batch of n (no guidance), else
    /// u + scale·(c − u) of its two halves [u; c] (classifier-free guidance).
    fn guided_velocity(&self, out: &mut Self::Table, model_out: &Self::Buf, scale: f32) -> Result<()>;
    /// out ← keep·out + Σ cᵢ·tᵢ over one to three `terms` of out's length (the solver updates);
    /// keep = 0 overwrites out without reading it.
    fn lincomb_tables(&self, out: &mut Self::Table, keep: f32, terms: &[(f32, &Self::Table)]) -> Result<()>;
    /// dst[dst_offset..][..len] ← src[src_offset..][..len] between tables (a pinned latent frame).
    fn copy_table_range(
        &self,
        dst: &mut Self::Table,
        dst_offset: usize,
        src: &Self::Table,
        src_offset: usize,
        len: usize,
    ) -> Result<()>;

    /// dst[dst_offset..][..len] ← src[src_offset..][..len]: frames moved between clips (the
    /// temporal caches of causal convolutions, concatenation along time).
    fn copy_range(
        &self,
        dst: &mut Self::Buf,
        dst_offset: usize,
        src: &Self::Buf,
        src_offset: usize,
        len: usize,
    ) -> Result<()>;

    /// Space-to-depth with a group mean: x (T, H, W, C) fine → out (T/st, H/sh, W/sw, C·P/group),
    /// P = st·sh·sw, out[.., j] = mean of the shuffled channels j·group .. (j + 1)·group (see
    /// [`SubpixelOrder`]; group 1 = the plain reshuffle). LTX-2's patchify and downsamplers.
    fn space_to_depth(&self, out: &mut Self::Buf, x: &Self::Buf, dims: ShuffleDims, group: usize) -> Result<()>;

    /// Depth-to-space with channel tiling: x (T/st, H/sh, W/sw, C·P) coarse → out (T, H, W, C·repeat),
    /// out[.., j] = the fine channel j mod C (torch `repeat` on channels; repeat 1 = the plain
    /// reshuffle). LTX-2's upsamplers (and their residual path) and the output unpatchify.
    fn depth_to_space(&self, out: &mut Self::Buf, x: &Self::Buf, dims: ShuffleDims, repeat: usize) -> Result<()>;

    /// GroupNorm over a channels-last clip x (P positions, C) (PyTorch `GroupNorm(groups, C)` on a
    /// (1, C, T, H, W) tensor): per group of C/groups channels, mean and biased variance over all
    /// P positions and those channels (f64 or f32 partials), then out ← act((x − μ)/√(σ² + eps)·γ + β).
    #[allow(clippy::too_many_arguments)] // mirrors the kernel's parameter struct
    fn group_norm(
        &self,
        out: &mut Self::Buf,
        x: &Self::Buf,
        gamma: &Self::Buf,
        beta: &Self::Buf,
        positions: usize,
        channels: usize,
        groups: usize,
        eps: f32,
        act: Activation,
    ) -> Result<()>;

    /// (B, C, T, H, W) → tokens (B, N, C·pt·ph·pw), tokens in (t, h, w) order, features in
    /// (c, it, ih, iw) order — the layout that makes a stride=kernel Conv3d a matrix product.
    fn patchify(&self, out: &mut Self::Buf, x: &Self::Buf, dims: PatchDims) -> Result<()>;

    /// tokens (B, N, pt·ph·pw·C), features in (it, ih, iw, c) order → (B, C, T, H, W)
    /// (the unpatchify of MODEL.md §2.2 step 7; note the channel is fastest here).
    fn unpatchify(&self, out: &mut Self::Buf, x: &Self::Buf, dims: PatchDims) -> Result<()>;
}
