// Norms, adaLN modulation, gated residual and standalone activations (MODEL.md §2.3, §2.8).
//
// Shapes: rows of width D (D = 2240 in the released models). One block of 256 threads per row
// for the norms (grid = rows); grid-stride elementwise loops otherwise. All statistics in f32.
// Bytes per call: the norms read each row 3 times (two statistic passes + output; the row is
// 4.5 KB and stays in L1) and write it once; the elementwise ops read 2 and write 1 element.
#include "common.cuh"

static constexpr int kNormThreads = 256;

// out = act(x · rsqrt(mean(x²) + eps) · (weight_offset + w))
extern "C" __global__ void __launch_bounds__(kNormThreads) rms_norm_bf16(const RmsNormParams p) {
    const bf16* x = dptr<const bf16>(p.x) + (int64_t)blockIdx.x * p.dim;
    bf16* out = dptr<bf16>(p.out) + (int64_t)blockIdx.x * p.dim;
    const bf16* w = dptr<const bf16>(p.w);
    float ss = 0.0f;
    for (int c = threadIdx.x; c < p.dim; c += blockDim.x) {
        const float v = to_f32(x[c]);
        ss += v * v;
    }
    const float r = rsqrtf(block_sum(ss) / p.dim + p.eps);
    for (int c = threadIdx.x; c < p.dim; c += blockDim.x)
        out[c] = to_bf16(activate(p.act, to_f32(x[c]) * r * (p.weight_offset + to_f32(w[c]))));
}

// The same for narrow rows (dim ≤ 1024: the autoencoders' 96..512 channels, millions of rows):
// one warp per row, 8 rows per block, no block-wide barriers.
extern "C" __global__ void __launch_bounds__(kNormThreads) rms_norm_narrow_bf16(const RmsNormParams p) {
    const int row = blockIdx.x * (kNormThreads / 32) + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= p.rows) return;
    const bf16* x = dptr<const bf16>(p.x) + (int64_t)row * p.dim;
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
