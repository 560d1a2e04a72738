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
// One thread per (row, tap, group of `vec` channels): the index arithmetic is paid once per
// group, and with C_in % 8 == 0 each thread moves 16 bytes (the autoencoders' 96..512 channels).
template <typename Chunk>
__device__ __forceinline__ void im2col_body(const ConvParams& p, const Chunk zero) {
    const int groups = p.c_in / (int)(sizeof(Chunk) / sizeof(bf16));
    const int taps = p.kt * p.kh * p.kw;
    const int64_t total = (int64_t)p.rows * taps * groups;
    const Chunk* x = dptr<const Chunk>(p.x);
    Chunk* cols = dptr<Chunk>(p.out);
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int g = (int)(i % groups);
        const int64_t rt = i / groups;
        int tap = (int)(rt % taps);
        const int row = (int)(p.row0 + rt / taps);
        const int iw = tap % p.kw; tap /= p.kw;
        const int ih = tap % p.kh;
        const int it = tap / p.kh;
        const int wo = row % p.w_out;
        const int ho = (row / p.w_out) % p.h_out;
        const int to = row / (p.w_out * p.h_out);
        const int ti = source_index(to, it, p.st, p.pt, p.t, 0);
        const int hi = source_index(ho, ih, p.sh, p.ph, p.h, p.reflect);
        const int wi = source_index(wo, iw, p.sw, p.pw, p.w_in, p.reflect);
        cols[i] = (ti < 0 || hi < 0 || wi < 0) ? zero : x[(((int64_t)ti * p.h + hi) * p.w_in + wi) * groups + g];
    }
}

extern "C" __global__ void __launch_bounds__(kThreads) im2col_bf16(const ConvParams p) {
    if (p.c_in % 8 == 0)
        im2col_body<uint4>(p, make_uint4(0, 0, 0, 0));
    else
        im2col_body<bf16>(p, __float2bfloat16(0.0f));
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
