// Video convolutions for the autoencoders (MODEL.md §3; CPU twin backend/cpu/conv.rs).
//
// A convolution is im2col into a bounded slab of rows + one cuBLASLt product per slab (the
// launcher in backend/cuda/conv.rs): rows are output positions, columns taps x input channels
// (channel fastest, as the weights are stored). The slab round-trips through L2/HBM, which a
// fused implicit-GEMM kernel would avoid (issue 5's remaining work); the product itself runs on
// the tensor cores.
#include <mma.h>
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

// ---- implicit GEMM ------------------------------------------------------------------------
// out (M = T'·H'·W' rows, C_out) = A (M, K) · Wᵀ with A's row m the taps of output position m,
// never materialised: each K-step (one tap, 32 input channels) gathers a 128 × 32 tile of A
// straight from x into shared memory (cp.async, zero-filled where a tap reads padding) next to a
// 96 × 32 tile of W, and 8 warps multiply them on the bf16 tensor cores (WMMA, f32 accumulate).
// Three stages in flight hide the gather latency. 96 output channels per block divide the
// autoencoders' 96/192/384; other counts waste the tile's tail. Needs C_in % 32 == 0 (so a
// K-step never straddles two taps and every 16-byte copy is aligned).

namespace igemm {
constexpr int kBM = 128, kBN = 96, kBK = 32, kStages = 3;
constexpr int kLd = kBK + 8;        // smem row stride (bf16): 80 bytes, off the 128-byte bank period
constexpr int kLdc = kBN + 4;       // epilogue row stride (f32)
constexpr int kThreads = 256;       // 8 warps: 4 along M (32 rows each) × 2 along N (48 columns each)
constexpr int kStageElems = (kBM + kBN) * kLd;
}  // namespace igemm

extern "C" __global__ void __launch_bounds__(igemm::kThreads) conv3d_igemm_bf16(const ConvGemmParams p) {
    using namespace nvcuda;
    using namespace igemm;
    extern __shared__ __align__(128) unsigned char smem_raw[];
    bf16* stages = reinterpret_cast<bf16*>(smem_raw);
    const int tid = threadIdx.x, warp = tid / 32;
    const int64_t m_total = (int64_t)p.t_out * p.h_out * p.w_out;
    const int64_t m0 = (int64_t)blockIdx.x * kBM;
    const int n0 = blockIdx.y * kBN;
    const int taps = p.kt * p.kh * p.kw, cblocks = p.c_in / kBK;
    const int k_dim = taps * p.c_in, steps = taps * cblocks;
    const bf16* x = dptr<const bf16>(p.x);
    const bf16* w = dptr<const bf16>(p.w);

    // this thread's two A chunks: rows tid/4 and tid/4 + 64, 8 channels at (tid % 4)·8
    const int a_chunk = (tid % 4) * 8;
    int a_to[2], a_ho[2], a_wo[2];
    bool a_valid[2];
    for (int i = 0; i < 2; ++i) {
        const int64_t m = m0 + tid / 4 + i * 64;
        a_valid[i] = m < m_total;
        const int64_t mm = a_valid[i] ? m : 0;
        a_wo[i] = (int)(mm % p.w_out);
        a_ho[i] = (int)((mm / p.w_out) % p.h_out);
        a_to[i] = (int)(mm / ((int64_t)p.w_out * p.h_out));
    }

    auto load_stage = [&](int step, int slot) {
        bf16* a_s = stages + slot * kStageElems;
        bf16* b_s = a_s + kBM * kLd;
        const int tap = step / cblocks, c0 = (step % cblocks) * kBK;
        const int iw = tap % p.kw, ih = (tap / p.kw) % p.kh, it = tap / (p.kw * p.kh);
        for (int i = 0; i < 2; ++i) {
            const int ti = source_index(a_to[i], it, p.st, p.pt, p.t, 0);
            const int hi = source_index(a_ho[i], ih, p.sh, p.ph, p.h, p.reflect);
            const int wi = source_index(a_wo[i], iw, p.sw, p.pw, p.w_in, p.reflect);
            const bool ok = a_valid[i] && ti >= 0 && hi >= 0 && wi >= 0;
            const bf16* src = ok ? x + (((int64_t)ti * p.h + hi) * p.w_in + wi) * p.c_in + c0 + a_chunk : x;
            cp_async16(a_s + (tid / 4 + i * 64) * kLd + a_chunk, src, ok);
        }
        for (int q = tid; q < kBN * 4; q += igemm::kThreads) {
            const int n = q / 4, kc = (q % 4) * 8, co = n0 + n;
            const bool ok = co < p.c_out;
            const bf16* src = ok ? w + (int64_t)co * k_dim + (int64_t)tap * p.c_in + c0 + kc : w;
            cp_async16(b_s + n * kLd + kc, src, ok);
        }
    };

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][3];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
    const int wm = (warp % 4) * 32, wn = (warp / 4) * 48;

    for (int s = 0; s < kStages - 1; ++s) {
        if (s < steps) load_stage(s, s);
        cp_async_commit();
    }
    for (int step = 0; step < steps; ++step) {
        // the group of `step` has landed once at most kStages - 2 newer groups are pending
        cp_async_wait<kStages - 2>();
        __syncthreads();
        // refill the slot consumed in the previous iteration (every warp is past it now)
        const int next = step + kStages - 1;
        if (next < steps) load_stage(next, next % kStages);
        cp_async_commit();
        const bf16* a_s = stages + (step % kStages) * kStageElems;
        const bf16* b_s = a_s + kBM * kLd;
        for (int kk = 0; kk < kBK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> a[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> b[3];
            for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(a[i], a_s + (wm + i * 16) * kLd + kk, kLd);
            for (int j = 0; j < 3; ++j) wmma::load_matrix_sync(b[j], b_s + (wn + j * 16) * kLd + kk, kLd);
            for (int i = 0; i < 2; ++i)
                for (int j = 0; j < 3; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
        }
    }
    cp_async_wait<0>();
    __syncthreads();  // every warp done with the stages: reuse them for the f32 tile
    float* c_s = reinterpret_cast<float*>(smem_raw);
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j)
            wmma::store_matrix_sync(c_s + (wm + i * 16) * kLdc + wn + j * 16, acc[i][j], kLdc, wmma::mem_row_major);
    __syncthreads();
    bf16* out = dptr<bf16>(p.out);
    const bf16* bias = dptr<const bf16>(p.bias);
    for (int idx = tid; idx < kBM * kBN; idx += igemm::kThreads) {
        const int r = idx / kBN, c = idx % kBN;
        const int64_t m = m0 + r;
        const int co = n0 + c;
        if (m < m_total && co < p.c_out)
            out[m * p.c_out + co] = to_bf16(c_s[r * kLdc + c] + (p.bias ? to_f32(bias[co]) : 0.0f));
    }
}
