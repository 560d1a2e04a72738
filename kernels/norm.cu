// Norms, adaLN modulation, gated residual and standalone activations (MODEL.md §2.3, §2.8).
//
// Shapes: rows of width D (D = 2240 in the released models). One block of 256 threads per row
// for the norms (grid = rows); grid-stride elementwise loops otherwise. All statistics in f32.
// Bytes per call: the norms read each row 3 times (two statistic passes + output; the row is
// 4.5 KB and stays in L1) and write it once; the elementwise ops read 2 and write 1 element.
#include "common.cuh"

static constexpr int kNormThreads = 256;

// out = x · rsqrt(mean(x²) + eps) · w
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
    for (int c = threadIdx.x; c < p.dim; c += blockDim.x) out[c] = to_bf16(to_f32(x[c]) * r * to_f32(w[c]));
}

// out = LayerNorm(x; no affine) · (1 + m[scale]) + m[shift]
extern "C" __global__ void __launch_bounds__(kNormThreads) ada_layer_norm_bf16(const AdaLayerNormParams p) {
    const int64_t row = blockIdx.x;
    const bf16* x = dptr<const bf16>(p.x) + row * p.d;
    bf16* out = dptr<bf16>(p.out) + row * p.d;
    float s = 0.0f;
    for (int c = threadIdx.x; c < p.d; c += blockDim.x) s += to_f32(x[c]);
    const float mean = block_sum(s) / p.d;
    float ss = 0.0f;
    for (int c = threadIdx.x; c < p.d; c += blockDim.x) {
        const float v = to_f32(x[c]) - mean;
        ss += v * v;
    }
    const float inv_std = rsqrtf(block_sum(ss) / p.d + p.eps);
    for (int c = threadIdx.x; c < p.d; c += blockDim.x) {
        const float normed = (to_f32(x[c]) - mean) * inv_std;
        const float scale = modulation(p.m, p.scale, row, p.n, p.d, c);
        const float shift = modulation(p.m, p.shift, row, p.n, p.d, c);
        out[c] = to_bf16(normed * (1.0f + scale) + shift);
    }
}

// x += m[gate] · y
extern "C" __global__ void __launch_bounds__(kNormThreads) gated_residual_bf16(const GatedResidualParams p) {
    const int64_t total = (int64_t)p.b * p.n * p.d;
    bf16* x = dptr<bf16>(p.x);
    const bf16* y = dptr<const bf16>(p.y);
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t row = i / p.d;
        const int c = (int)(i % p.d);
        const float g = modulation(p.m, p.gate, row, p.n, p.d, c);
        x[i] = to_bf16(to_f32(x[i]) + g * to_f32(y[i]));
    }
}

// out = act(x), elementwise; out may alias x.
extern "C" __global__ void __launch_bounds__(kNormThreads) activation_bf16(const ActivationParams p) {
    const bf16* x = dptr<const bf16>(p.x);
    bf16* out = dptr<bf16>(p.out);
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < p.len; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = to_bf16(activate(p.act, to_f32(x[i])));
}
