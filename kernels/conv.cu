// Video convolutions for the autoencoders (MODEL.md §3; CPU twin backend/cpu/conv.rs).
//
// A convolution is im2col into a bounded slab of rows + one cuBLASLt product per slab (the
// launcher in backend/cuda/conv.rs): rows are output positions, columns taps x input channels
// (channel fastest, as the weights are stored). The slab round-trips through L2/HBM, which a
// fused implicit-GEMM kernel would avoid (issue 5's remaining work); the product itself runs on
// the tensor cores.
#include "common.cuh"

static constexpr int kThreads = 256;

// Input index on one axis for output o and tap k, or -1 for a zero.
__device__ __forceinline__ int source_index(int o, int k, int stride, int before, int size, int reflect) {
    int i = o * stride + k - before;
    if (i >= 0 && i < size) return i;
    if (!reflect) return -1;
    return i < 0 ? -i : 2 * (size - 1) - i;
}

// cols (rows, kt*kh*kw*C_in) for output rows [row0, row0 + rows): zeros where a tap reads padding.
extern "C" __global__ void __launch_bounds__(kThreads) im2col_bf16(const ConvParams p) {
    const int k_dim = p.kt * p.kh * p.kw * p.c_in;
    const int64_t total = (int64_t)p.rows * k_dim;
    const bf16* x = dptr<const bf16>(p.x);
    bf16* cols = dptr<bf16>(p.out);
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t row = p.row0 + i / k_dim;
        int k = (int)(i % k_dim);
        const int c = k % p.c_in; k /= p.c_in;
        const int iw = k % p.kw; k /= p.kw;
        const int ih = k % p.kh;
        const int it = k / p.kh;
        const int wo = (int)(row % p.w_out);
        const int ho = (int)((row / p.w_out) % p.h_out);
        const int to = (int)(row / ((int64_t)p.w_out * p.h_out));
        const int ti = source_index(to, it, p.st, p.pt, p.t, 0);
        const int hi = source_index(ho, ih, p.sh, p.ph, p.h, p.reflect);
        const int wi = source_index(wo, iw, p.sw, p.pw, p.w_in, p.reflect);
        cols[i] = (ti < 0 || hi < 0 || wi < 0) ? __float2bfloat16(0.0f)
                                               : x[(((int64_t)ti * p.h + hi) * p.w_in + wi) * p.c_in + c];
    }
}

extern "C" __global__ void __launch_bounds__(kThreads) upsample_nearest2x_bf16(const UpsampleParams p) {
    const int64_t total = (int64_t)p.frames * 2 * p.h * 2 * p.w * p.c;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i;
        const int c = (int)(r % p.c); r /= p.c;
        const int wo = (int)(r % (2 * p.w)); r /= 2 * p.w;
        const int ho = (int)(r % (2 * p.h)); r /= 2 * p.h;
        const int64_t f = r;
        dptr<bf16>(p.out)[i] = dptr<const bf16>(p.x)[((f * p.h + ho / 2) * p.w + wo / 2) * p.c + c];
    }
}
