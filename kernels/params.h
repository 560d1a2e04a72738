// Kernel parameter structs, passed by value as each kernel's single argument (one `globals`
// struct per launch, as ThunderKittens does). src/backend/cuda/params.rs mirrors this file field
// for field (#[repr(C)]); a test there checks the sizes. Pointers are device addresses (u64).
#pragma once
#ifdef __CUDACC_RTC__
// NVRTC ships no C library headers
typedef unsigned long long uint64_t;
typedef long long int64_t;
typedef unsigned int uint32_t;
typedef int int32_t;
#else
#include <stdint.h>
#endif

// Activation codes (backend::Activation).
#define ACT_IDENTITY 0
#define ACT_SILU 1
#define ACT_GELU_TANH 2

// adaLN modulation: vector k of token (b, n) = table[k] + emb[(b*M + (per_token ? n : 0))][k % emb_chunks].
typedef struct {
    uint64_t table;      // bf16 (K, D)
    uint64_t emb;        // bf16 (B*M, emb_chunks*D)
    int32_t emb_chunks;
    int32_t per_token;
} ModParams;

typedef struct {
    uint64_t out, x;     // bf16, may alias (in place)
    int64_t len;
    int32_t act;
    int32_t pad;
} ActivationParams;

typedef struct {
    uint64_t out, x, w;  // bf16 (rows, dim); (rows, dim) bf16, f32 for rms_norm_f32_input; bf16 (dim)
    int32_t rows, dim;
    float eps;
    float weight_offset;  // 0: x̂·w; 1: Gemma's x̂·(1 + w)
    int32_t act;          // ACT_*, applied to the normalised value (the autoencoders' norm + SiLU)
    int32_t pad;
} RmsNormParams;

// x += RMSNorm(y) · (weight_offset + w), the post-norm added into an f32 residual stream.
typedef struct {
    uint64_t x, y, w;    // f32 (rows, dim) updated in place; bf16 (rows, dim); bf16 (dim)
    int32_t rows, dim;
    float eps;
    float weight_offset;  // 0: ŷ·w; 1: Gemma's ŷ·(1 + w)
} NormedResidualParams;

// x = y or x += y: an f32 residual stream taking a bf16 value (the LTX-2 autoencoder's resnets).
typedef struct {
    uint64_t x, y;       // f32 (len) updated in place; bf16 (len)
    int64_t len;
    int32_t accumulate;  // 0: x = y; 1: x += y
    int32_t pad;
} AddF32Params;

typedef struct {
    uint64_t out, x;     // bf16 (B, N, D)
    ModParams m;
    int32_t shift, scale;
    int32_t b, n, d;
    float eps;
} AdaLayerNormParams;

typedef struct {
    uint64_t x, y;       // bf16 (B, N, D); x updated in place
    ModParams m;
    int32_t gate;
    int32_t b, n, d;
} GatedResidualParams;

typedef struct {
    uint64_t qkv;        // bf16 (B, N, 3D): q | k | v per token
    uint64_t norm_q, norm_k;  // bf16 (D)
    uint64_t cos, sin;   // f32 (N, head_dim/2)
    uint64_t inv_rms;    // f32 (B*N, 2): 1/rms of q and k rows
    uint64_t partial;    // f32 (B, H, chunks, dp, dp): per-chunk states
    uint64_t partial_z;  // f32 (B, H, chunks, dp): per-chunk Σ φk
    uint64_t state;      // f16 (B, H, dp, dp): S with each row divided by its largest |entry|
    uint64_t row_scale;  // f32 (B, H, dp): that largest |entry| of each row of S
    uint64_t z;          // f32 (B, H, dp): z = Σ φk
    uint64_t out;        // bf16 (B, N, D)
    int32_t b, n, heads, head_dim;
    int32_t padded_head_dim;   // dp = ⌈head_dim/16⌉·16
    int32_t chunks, chunk_rows;  // state: token axis cut into `chunks` runs of `chunk_rows` (a multiple of 32)
    int32_t out_rows;            // output: tokens per block (a multiple of 16)
    float norm_eps, attn_eps;
} LinearAttnParams;

typedef struct {
    uint64_t q;          // bf16 (B, N, D)
    uint64_t k, v;       // bf16 (B, L, D)
    uint64_t key_bias;   // f32 (B, L): additive, per key
    uint64_t out;        // bf16 (B, N, D)
    int32_t b, n, l, heads, head_dim;
    int32_t padded_head_dim, padded_l;  // ⌈d/16⌉·16, ⌈L/32⌉·32
    float scale;
} CrossAttnParams;

typedef struct {
    uint64_t out, x, w, bias;  // bf16 out (frames, H, W, F); x (frames, H, W, 2F); w (9, 2F); bias (2F)
    int32_t frames, h, w_, f;
} DepthwiseGluParams;

typedef struct {
    uint64_t buf;        // bf16 (B·T·HW, 3C), its middle third written
    int32_t b, t, hw, c;
} TemporalShiftParams;

typedef struct {
    uint64_t out, x;     // bf16
    int32_t b, c, t, h, w;
    int32_t pt, ph, pw;
} PatchParams;

// Space-to-depth / depth-to-space between a fine clip (t, h, w, c) and a coarse one
// (t/st, h/sh, w/sw, c·st·sh·sw), channels last; `order` 0 = (c, it, ih, iw), 1 = (c, it, iw, ih);
// `k` = the group averaged by space_to_depth or the channel tiling of depth_to_space.
typedef struct {
    uint64_t out, x;     // bf16
    int32_t t, h, w, c;
    int32_t st, sh, sw;
    int32_t order, k, pad;
} ShuffleParams;

typedef struct {
    uint64_t out, table, ids;  // bf16 (rows, dim) (f32 for gather_rows_f32), bf16 (V, dim), u32 (rows)
    int32_t rows, dim;
    float scale;
    int32_t pad;
} GatherParams;

typedef struct {
    uint64_t out, x;     // bf16 (rows, heads·hd), rows = B·L
    uint64_t cos, sin;   // f32 (L, hd/2)
    int32_t rows, l, heads, head_dim;
} RopeHalfParams;

typedef struct {
    uint64_t out, q, k, v;  // bf16 (B, L, H·hd), (B, L, KV·hd) ×2
    uint64_t key_mask;      // f32 (B, L): 1 keep, 0 padding
    int32_t b, l, heads, kv_heads, head_dim;
    int32_t window;         // 0: no sliding window
    float scale, softcap;   // softcap 0: none
} CausalAttnParams;

typedef struct {
    uint64_t out, a, b;  // bf16 (len)
    int64_t len;
    int32_t op;          // 0: a·b, 1: a + b
    int32_t pad;
} BinaryParams;

// im2col of a 3D convolution over one channels-last clip (backend::ConvDims): `out` receives
// `rows` rows of (kt*kh*kw*C_in) from output row `row0`. up_shift: log2 of the spatial nearest
// upsampling the taps read x through (0 or 1); t, h, w_in are x's stored sizes.
typedef struct {
    uint64_t out, x;           // bf16 (rows, kt*kh*kw*Ci), (T,H,W,Ci)
    int64_t row0;
    int32_t rows, up_shift;
    int32_t t, h, w_in, c_in;
    int32_t t_out, h_out, w_out, c_out;
    int32_t kt, kh, kw, reflect;
    int32_t st, sh, sw, pt;    // strides; pt: zeros before frame 0
    int32_t ph, pw;            // spatial padding before (after is implied by the output size)
} ConvParams;

// Row softmax of attention scores (the large-attention path of cross_attention).
typedef struct {
    uint64_t probs, scores, key_bias;  // bf16 (rows, cols), f32 (rows, cols), f32 (cols)
    int32_t rows, cols;
    float scale;
    int32_t pad;
} SoftmaxParams;

// Implicit-GEMM 3D convolution over one channels-last clip (backend::ConvDims), C_in a multiple
// of the K-step (16, 32 or 64).
typedef struct {
    uint64_t out, x, w, bias;  // bf16 (T',H',W',Co), (T,H,W,Ci), (Co, kt*kh*kw*Ci), (Co) or 0
    int32_t t, h, w_in, c_in;
    int32_t t_out, h_out, w_out, c_out;
    int32_t kt, kh, kw, reflect;
    int32_t st, sh, sw, pt;    // strides; pt: zeros before frame 0
    int32_t ph, pw;            // spatial padding before
    int32_t up_shift;          // log2 of the spatial upsampling of x (0 or 1), as in ConvParams
    int32_t accumulate;        // 1: out += conv (the residual read in the epilogue)
    int32_t tile_w;            // halo-tiled kernel: output positions per patch row (16, 32 or 64)
    int32_t pad;
} ConvGemmParams;

// GroupNorm over channels-last rows (backend::Backend::group_norm): three launches sharing it.
typedef struct {
    uint64_t out, x, gamma, beta;  // bf16 (rows, C), (rows, C), (C), (C)
    uint64_t partial;              // f32 (blocks, groups, 2): Σx, Σx² of each block's rows
    uint64_t stats;                // f32 (groups, 2): mean, 1/√(var + eps)
    int32_t rows, channels, groups, rows_per_block;
    int32_t blocks, act;
    float eps;
    int32_t pad;
} GroupNormParams;

// The sampler's elementwise ops (kernels/sampler.cu): operands a, b, c and coefficients as each
// kernel says; n values per latent, len values of a model batch.
typedef struct {
    uint64_t out, a, b, c;
    int64_t len, n;
    float keep, ca, cb, cc;
    int32_t terms, pad;
} SamplerParams;
