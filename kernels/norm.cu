// Norms, adaLN modulation, gated residual and standalone activations (MODEL.md §2.3, §2.8),
// and the two norms of the text encoder's f32 residual stream (MODEL.md §4): the pre-norm that
// reads it (rms_norm_f32_input_bf16) and the post-norm added into it (normed_residual_f32_bf16).
//
// Shapes: rows of width D (D = 2240 in the released transformer, 2304 in Gemma-2-2B). The norms
// of bf16 rows of 16-byte chunks up to 2304 wide (both of those) hold the row in registers,
// a warp per row (`*_wide_bf16`); others take one block of 256 threads per row (grid = rows), or
// a warp per row up to 1024 wide; grid-stride elementwise loops otherwise.
// All statistics in f32. Bytes per call: the norms read each row 3 times (two statistic passes +
// output; the row is 4.5 KB in bf16, 9 KB in f32, and stays in L1) and write it once; the
// elementwise ops read 2 and write 1 element. normed_residual reads y (bf16) twice and w once,
// and reads and writes the f32 residual once: 12 bytes and ~5 FLOPs per element.
#include "common.cuh"

static constexpr int kNormThreads = 256;

// rsqrt(mean(x²) + eps) of one row x[0..dim), elements strided over the block; in every thread
template <class T>
__device__ __forceinline__ float block_inv_rms(const T* x, int dim, float eps) {
    float ss = 0.0f;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        const float v = to_f32(x[c]);
        ss += v * v;
    }
    return rsqrtf(block_sum(ss) / dim + eps);
}

// out = act(x · rsqrt(mean(x²) + eps) · (weight_offset + w)), row blockIdx.x; x bf16 or f32
template <class In>
__device__ __forceinline__ void rms_norm_row(const RmsNormParams& p) {
    const In* x = dptr<const In>(p.x) + (int64_t)blockIdx.x * p.dim;
    bf16* out = dptr<bf16>(p.out) + (int64_t)blockIdx.x * p.dim;
    const bf16* w = dptr<const bf16>(p.w);
    const float r = block_inv_rms(x, p.dim, p.eps);
    for (int c = threadIdx.x; c < p.dim; c += blockDim.x)
        out[c] = to_bf16(activate(p.act, to_f32(x[c]) * r * (p.weight_offset + to_f32(w[c]))));
}

extern "C" __global__ void __launch_bounds__(kNormThreads) rms_norm_bf16(const RmsNormParams p) {
    rms_norm_row<bf16>(p);
}

// The same for narrow rows (dim ≤ 1024: the autoencoders' 96..512 channels, millions of rows):
// one warp per row, 8 rows per block, no block-wide barriers; x bf16 or f32.
template <class In>
__device__ __forceinline__ void rms_norm_narrow_row(const RmsNormParams& p) {
    const int row = blockIdx.x * (kNormThreads / 32) + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= p.rows) return;
    const In* x = dptr<const In>(p.x) + (int64_t)row * p.dim;
    bf16* out = dptr<bf16>(p.out) + (int64_t)row * p.dim;
    const bf16* w = dptr<const bf16>(p.w);
    float ss = 0.0f;
    for (int c = lane; c < p.dim; c += 32) {
        const float v = to_f32(x[c]);
        ss += v * v;
    }
    const float r = rsqrtf(warp_sum(ss) / p.dim + p.eps);
    for (int c = lane; c < p.dim; c += 32)
        out[c] = to_bf16(activate(p.act, to_f32(x[c]) * r * (p.weight_offset + to_f32(w[c]))));
}

extern "C" __global__ void __launch_bounds__(kNormThreads) rms_norm_narrow_bf16(const RmsNormParams p) {
    rms_norm_narrow_row<bf16>(p);
}

// Rows of 16-byte chunks held in registers, a warp per row (D % 8 = 0, D ≤ 32·kWideChunks·8 =
// 2304: the transformer's 2240, Gemma's 2304): one read of the row instead of three, and warp
// shuffles instead of block barriers. The block-per-row kernels above took 2.5–3× the memory time
// on the transformer's 19,360 × 2240 activations. 9 chunks per lane (12 until 2026-12-02, for
// D ≤ 3072, which no model uses) leave rms_norm_wide_bf16 at 78 registers: three blocks per SM.
static constexpr int kWideChunks = 9;

__device__ __forceinline__ void unpack8(const uint4& u, float (&f)[8]) {
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
        const float2 v = __bfloat1622float2(h[e]);
        f[2 * e] = v.x;
        f[2 * e + 1] = v.y;
    }
}

__device__ __forceinline__ uint4 pack8(const float (&f)[8]) {
    uint4 u;
    __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&u);
#pragma unroll
    for (int e = 0; e < 4; ++e) h[e] = __floats2bfloat162_rn(f[2 * e], f[2 * e + 1]);
    return u;
}

// the lane's chunks lane, lane + 32, … of a row (zeros past `chunks`)
__device__ __forceinline__ void load_row_chunks(uint4 (&v)[kWideChunks], const bf16* row, int chunks, int lane) {
    const uint4* src = reinterpret_cast<const uint4*>(row);
#pragma unroll
    for (int j = 0; j < kWideChunks; ++j) {
        const int c = lane + 32 * j;
        v[j] = c < chunks ? src[c] : make_uint4(0, 0, 0, 0);
    }
}

extern "C" __global__ void __launch_bounds__(kNormThreads, 3) rms_norm_wide_bf16(const RmsNormParams p) {
    const int row = blockIdx.x * (kNormThreads / 32) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= p.rows) return;
    const int chunks = p.dim / 8;
    uint4 v[kWideChunks];
    load_row_chunks(v, dptr<const bf16>(p.x) + (int64_t)row * p.dim, chunks, lane);
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < kWideChunks; ++j) {
        float f[8];
        unpack8(v[j], f);
#pragma unroll
        for (int e = 0; e < 8; ++e) ss += f[e] * f[e];
    }
    const float r = rsqrtf(warp_sum(ss) / p.dim + p.eps);
    const uint4* w = dptr<const uint4>(p.w);
    uint4* out = reinterpret_cast<uint4*>(dptr<bf16>(p.out) + (int64_t)row * p.dim);
#pragma unroll
    for (int j = 0; j < kWideChunks; ++j) {
        const int c = lane + 32 * j;
        if (c >= chunks) break;
        float f[8], wf[8];
        unpack8(v[j], f);
        unpack8(w[c], wf);
#pragma unroll
        for (int e = 0; e < 8; ++e) f[e] = activate(p.act, f[e] * r * (p.weight_offset + wf[e]));
        out[c] = pack8(f);
    }
}

// rms_norm reading an f32 residual stream, writing bf16 for the next product: a block per row
// for the text encoder's pre-norms (at most a few thousand rows of 2304), a warp per row for the
// LTX-2 autoencoder's norm + SiLU (millions of rows of 128..1024 channels).
extern "C" __global__ void __launch_bounds__(kNormThreads) rms_norm_f32_input_bf16(const RmsNormParams p) {
    rms_norm_row<float>(p);
}

extern "C" __global__ void __launch_bounds__(kNormThreads) rms_norm_narrow_f32_input_bf16(const RmsNormParams p) {
    rms_norm_narrow_row<float>(p);
}

// x = y or x += y (p.accumulate), x f32, y bf16: 8 elements a step (16 bytes of y, 32 of x)
// where the length allows, one at a time for the tail. Bound by memory: 6 or 10 bytes an element.
extern "C" __global__ void __launch_bounds__(kNormThreads) add_f32_bf16(const AddF32Params p) {
    float* x = dptr<float>(p.x);
    const bf16* y = dptr<const bf16>(p.y);
    const int64_t stride = (int64_t)gridDim.x * blockDim.x, first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t vectors = p.len / 8;
    for (int64_t i = first; i < vectors; i += stride) {
        float f[8];
        unpack8(reinterpret_cast<const uint4*>(y)[i], f);
        float4* dst = reinterpret_cast<float4*>(x + 8 * i);
        if (p.accumulate) {
            const float4 a = dst[0], b = dst[1];
            f[0] += a.x, f[1] += a.y, f[2] += a.z, f[3] += a.w, f[4] += b.x, f[5] += b.y, f[6] += b.z, f[7] += b.w;
        }
        dst[0] = make_float4(f[0], f[1], f[2], f[3]);
        dst[1] = make_float4(f[4], f[5], f[6], f[7]);
    }
    for (int64_t i = 8 * vectors + first; i < p.len; i += stride) x[i] = (p.accumulate ? x[i] : 0.0f) + to_f32(y[i]);
}

// x += y · rsqrt(mean(y²) + eps) · (weight_offset + w): a post-norm added straight into the f32
// residual x (the normed value never rounds to bf16); y (the projection's output) and w bf16.
// One block per row.
extern "C" __global__ void __launch_bounds__(kNormThreads) normed_residual_f32_bf16(const NormedResidualParams p) {
    float* x = dptr<float>(p.x) + (int64_t)blockIdx.x * p.dim;
    const bf16* y = dptr<const bf16>(p.y) + (int64_t)blockIdx.x * p.dim;
    const bf16* w = dptr<const bf16>(p.w);
    const float r = block_inv_rms(y, p.dim, p.eps);
    for (int c = threadIdx.x; c < p.dim; c += blockDim.x)
        x[c] += to_f32(y[c]) * r * (p.weight_offset + to_f32(w[c]));
}

// The two vectors a modulation slot adds for one token row: table[k] and emb[row'][k mod E].
struct ModRow {
    const __nv_bfloat162* table;
    const __nv_bfloat162* emb;
};

__device__ __forceinline__ ModRow mod_row(const ModParams& m, int k, int row, int n_tokens, int d) {
    const int emb_row = m.per_token ? row : row / n_tokens;
    return {dptr<const __nv_bfloat162>(m.table) + (int64_t)k * d / 2,
            dptr<const __nv_bfloat162>(m.emb) + ((int64_t)emb_row * m.emb_chunks + k % m.emb_chunks) * d / 2};
}

__device__ __forceinline__ float2 mod_at(const ModRow& r, int pair) {
    const float2 t = __bfloat1622float2(r.table[pair]), e = __bfloat1622float2(r.emb[pair]);
    return make_float2(t.x + e.x, t.y + e.y);
}

// out = LayerNorm(x; no affine) · (1 + m[scale]) + m[shift]. One block per token row, bf16x2
// accesses (D even; the launcher checks).
extern "C" __global__ void __launch_bounds__(kNormThreads) ada_layer_norm_bf16(const AdaLayerNormParams p) {
    const int row = blockIdx.x, pairs = p.d / 2;
    const __nv_bfloat162* x = dptr<const __nv_bfloat162>(p.x) + (int64_t)row * pairs;
    __nv_bfloat162* out = dptr<__nv_bfloat162>(p.out) + (int64_t)row * pairs;
    float s = 0.0f;
    for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
        const float2 v = __bfloat1622float2(x[i]);
        s += v.x + v.y;
    }
    const float mean = block_sum(s) / p.d;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
        const float2 v = __bfloat1622float2(x[i]);
        ss += (v.x - mean) * (v.x - mean) + (v.y - mean) * (v.y - mean);
    }
    const float inv_std = rsqrtf(block_sum(ss) / p.d + p.eps);
    const ModRow shift = mod_row(p.m, p.shift, row, p.n, p.d), scale = mod_row(p.m, p.scale, row, p.n, p.d);
    for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
        const float2 v = __bfloat1622float2(x[i]), sh = mod_at(shift, i), sc = mod_at(scale, i);
        out[i] = __floats2bfloat162_rn((v.x - mean) * inv_std * (1.0f + sc.x) + sh.x,
                                       (v.y - mean) * inv_std * (1.0f + sc.y) + sh.y);
    }
}

// ada_layer_norm_bf16 with the row in registers (rows of 16-byte chunks, D ≤ 2304): a warp per
// row, the two-pass statistics from registers.
extern "C" __global__ void __launch_bounds__(kNormThreads) ada_layer_norm_wide_bf16(const AdaLayerNormParams p) {
    const int row = blockIdx.x * (kNormThreads / 32) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= p.b * p.n) return;
    const int chunks = p.d / 8;
    uint4 v[kWideChunks];
    load_row_chunks(v, dptr<const bf16>(p.x) + (int64_t)row * p.d, chunks, lane);
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < kWideChunks; ++j) {
        float f[8];
        unpack8(v[j], f);
#pragma unroll
        for (int e = 0; e < 8; ++e) s += f[e];
    }
    const float mean = warp_sum(s) / p.d;
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < kWideChunks; ++j) {
        if (lane + 32 * j >= chunks) break;  // the zero padding is not centred
        float f[8];
        unpack8(v[j], f);
#pragma unroll
        for (int e = 0; e < 8; ++e) ss += (f[e] - mean) * (f[e] - mean);
    }
    const float inv_std = rsqrtf(warp_sum(ss) / p.d + p.eps);
    const ModRow shift = mod_row(p.m, p.shift, row, p.n, p.d), scale = mod_row(p.m, p.scale, row, p.n, p.d);
    const uint4 *sh_t = reinterpret_cast<const uint4*>(shift.table), *sh_e = reinterpret_cast<const uint4*>(shift.emb);
    const uint4 *sc_t = reinterpret_cast<const uint4*>(scale.table), *sc_e = reinterpret_cast<const uint4*>(scale.emb);
    uint4* out = reinterpret_cast<uint4*>(dptr<bf16>(p.out) + (int64_t)row * p.d);
#pragma unroll
    for (int j = 0; j < kWideChunks; ++j) {
        const int c = lane + 32 * j;
        if (c >= chunks) break;
        float f[8], a[8], b[8], g[8], h[8];
        unpack8(v[j], f);
        unpack8(sh_t[c], a);
        unpack8(sh_e[c], b);
        unpack8(sc_t[c], g);
        unpack8(sc_e[c], h);
#pragma unroll
        for (int e = 0; e < 8; ++e) f[e] = (f[e] - mean) * inv_std * (1.0f + (g[e] + h[e])) + (a[e] + b[e]);
        out[c] = pack8(f);
    }
}

// x += m[gate] · y. One block per token row, bf16x2 accesses.
extern "C" __global__ void __launch_bounds__(kNormThreads) gated_residual_bf16(const GatedResidualParams p) {
    const int row = blockIdx.x, pairs = p.d / 2;
    __nv_bfloat162* x = dptr<__nv_bfloat162>(p.x) + (int64_t)row * pairs;
    const __nv_bfloat162* y = dptr<const __nv_bfloat162>(p.y) + (int64_t)row * pairs;
    const ModRow gate = mod_row(p.m, p.gate, row, p.n, p.d);
    for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
        const float2 xv = __bfloat1622float2(x[i]), yv = __bfloat1622float2(y[i]), g = mod_at(gate, i);
        x[i] = __floats2bfloat162_rn(xv.x + g.x * yv.x, xv.y + g.y * yv.y);
    }
}

// out = act(x), elementwise; out may alias x.
extern "C" __global__ void __launch_bounds__(kNormThreads) activation_bf16(const ActivationParams p) {
    const bf16* x = dptr<const bf16>(p.x);
    bf16* out = dptr<bf16>(p.out);
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < p.len; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = to_bf16(activate(p.act, to_f32(x[i])));
}

// ---- GroupNorm (the LTX-2 latent upsampler, MODEL.md §8.3) --------------------------------
// x (rows, C) channels-last, G groups of C/G consecutive channels; statistics span the whole
// clip (every row), so three launches: (1) each block takes `rows_per_block` rows, each thread
// one channel at a time down those rows (threads read consecutive channels of a row: coalesced),
// and adds its (Σx, Σx²) into the group's shared slot once per channel; the block writes its
// partials (blocks, G, 2); (2) one block folds the partials in f64 into mean and 1/√(var + eps)
// per group; (3) an elementwise pass normalises, applies γ, β and the activation.
// Bytes per call: x read twice, out written once (2+2+2 bytes/element); ~5 FLOPs/element.
// Variance as E[x²] − mean² from f32 per-block partials (≤ 64 K elements each) folded in f64:
// exact enough for bf16 activations whose mean is not many times their spread.
static constexpr int kMaxGroups = 128;

// partial[blockIdx, g] = (Σ x, Σ x²) over this block's rows and group g's channels
extern "C" __global__ void __launch_bounds__(kNormThreads) group_norm_partials_bf16(const GroupNormParams p) {
    __shared__ float s_sum[kMaxGroups], s_sq[kMaxGroups];
    for (int g = threadIdx.x; g < p.groups; g += blockDim.x) s_sum[g] = s_sq[g] = 0.0f;
    __syncthreads();
    const int per = p.channels / p.groups;
    const int64_t row0 = (int64_t)blockIdx.x * p.rows_per_block;
    const int64_t left = (int64_t)p.rows - row0;
    const int rows = left < p.rows_per_block ? (int)left : p.rows_per_block;
    const bf16* x = dptr<const bf16>(p.x) + row0 * p.channels;
    for (int c = threadIdx.x; c < p.channels; c += blockDim.x) {
        float a = 0.0f, b = 0.0f;
        for (int r = 0; r < rows; ++r) {
            const float v = to_f32(x[(int64_t)r * p.channels + c]);
            a += v;
            b += v * v;
        }
        atomicAdd(&s_sum[c / per], a);
        atomicAdd(&s_sq[c / per], b);
    }
    __syncthreads();
    float* partial = dptr<float>(p.partial) + (int64_t)blockIdx.x * p.groups * 2;
    for (int g = threadIdx.x; g < p.groups; g += blockDim.x) {
        partial[2 * g] = s_sum[g];
        partial[2 * g + 1] = s_sq[g];
    }
}

// stats[g] = (mean, 1/√(var + eps)) with mean = Σx / n, var = Σx² / n − mean², n = rows · C/G
extern "C" __global__ void __launch_bounds__(kNormThreads) group_norm_stats(const GroupNormParams p) {
    const float* partial = dptr<const float>(p.partial);
    float* stats = dptr<float>(p.stats);
    const double count = (double)p.rows * (p.channels / p.groups);
    for (int g = threadIdx.x; g < p.groups; g += blockDim.x) {
        double s = 0.0, ss = 0.0;
        for (int b = 0; b < p.blocks; ++b) {
            s += partial[((int64_t)b * p.groups + g) * 2];
            ss += partial[((int64_t)b * p.groups + g) * 2 + 1];
        }
        const double mean = s / count;
        const double var = fmax(ss / count - mean * mean, 0.0);
        stats[2 * g] = (float)mean;
        stats[2 * g + 1] = (float)(1.0 / sqrt(var + (double)p.eps));
    }
}

// out[r, c] = act((x[r, c] − mean_g) · inv_g · γ[c] + β[c]), g = c / (C/G)
extern "C" __global__ void __launch_bounds__(kNormThreads) group_norm_apply_bf16(const GroupNormParams p) {
    const int per = p.channels / p.groups;
    const int64_t total = (int64_t)p.rows * p.channels;
    const bf16* x = dptr<const bf16>(p.x);
    bf16* out = dptr<bf16>(p.out);
    const bf16* gamma = dptr<const bf16>(p.gamma);
    const bf16* beta = dptr<const bf16>(p.beta);
    const float* stats = dptr<const float>(p.stats);
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int c = (int)(i % p.channels), g = c / per;
        const float v = (to_f32(x[i]) - stats[2 * g]) * stats[2 * g + 1] * to_f32(gamma[c]) + to_f32(beta[c]);
        out[i] = to_bf16(activate(p.act, v));
    }
}
