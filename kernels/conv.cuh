// Device helpers of the conv kernels (kernels/conv.cu: mma.sync; kernels/conv_wgmma.cu: sm_90a
// wgmma): output-row decoding, tap indexing and the epilogue's write of a staged bf16 tile.
#pragma once
#include "common.cuh"

// Input index on one axis for output o and tap k, or -1 for a zero.
__device__ __forceinline__ int source_index(int o, int k, int stride, int before, int size, int reflect) {
    int i = o * stride + k - before;
    if (i >= 0 && i < size) return i;
    if (!reflect) return -1;
    return i < 0 ? -i : 2 * (size - 1) - i;
}

// The block's output rows m0 .. m0 + BM − 1 as (t, h, w) in shared memory, t = −1 for a row past
// the end (its taps then read zeros). The caller synchronises before reading them.
template <int BM, int kThreads>
__device__ __forceinline__ void decode_rows(const ConvGemmParams& p, int64_t m0, int* row_t, int* row_h, int* row_w) {
    const int64_t m_total = (int64_t)p.t_out * p.h_out * p.w_out;
    for (int r = threadIdx.x; r < BM; r += kThreads) {
        const int64_t m = m0 + r;
        const bool valid = m < m_total;
        const int64_t mm = valid ? m : 0;
        row_w[r] = (int)(mm % p.w_out);
        row_h[r] = (int)((mm / p.w_out) % p.h_out);
        row_t[r] = valid ? (int)(mm / ((int64_t)p.w_out * p.h_out)) : -1;
    }
}

// Channel 0 of the x position that tap (it, ih, iw) of output position (t, h, w) reads (through
// the nearest upsampling of up_shift), or nullptr where it reads padding or t < 0.
__device__ __forceinline__ const bf16* tap_source(const ConvGemmParams& p, const bf16* x, int t, int h, int w, int it, int ih,
                                                  int iw) {
    const int ti = t < 0 ? -1 : source_index(t, it, p.st, p.pt, p.t, 0);
    const int hi = source_index(h, ih, p.sh, p.ph, p.h << p.up_shift, p.reflect);
    const int wi = source_index(w, iw, p.sw, p.pw, p.w_in << p.up_shift, p.reflect);
    if (ti < 0 || hi < 0 || wi < 0) return nullptr;
    return x + (((int64_t)ti * p.h + (hi >> p.up_shift)) * p.w_in + (wi >> p.up_shift)) * p.c_in;
}

// a + b for 8 packed bf16 pairs, in f32, rounded once
__device__ __forceinline__ uint4 add_bf16x8(uint4 a, uint4 b) {
    auto add2 = [](uint32_t x, uint32_t y) {
        const float lo = __uint_as_float(x << 16) + __uint_as_float(y << 16);
        const float hi = __uint_as_float(x & 0xffff0000u) + __uint_as_float(y & 0xffff0000u);
        return pack_bf16x2(lo, hi);
    };
    return make_uint4(add2(a.x, b.x), add2(a.y, b.y), add2(a.z, b.z), add2(a.w, b.w));
}

// The epilogue's second half, shared by every implicit-GEMM kernel: the block's result tile,
// already rounded to bf16 in shared memory (c_s, BM × (BN + 8)), written so each thread moves 16
// contiguous bytes, added onto out where p.accumulate. out_row(r) is the output row of tile row
// r, or -1. The caller synchronises between staging the tile and this call.
template <int BM, int BN, int kThreads, typename RowFn>
__device__ __forceinline__ void write_staged_tile(const ConvGemmParams& p, const bf16* c_s, int n0, RowFn out_row) {
    constexpr int kLdc = BN + 8;
    const int tid = threadIdx.x;
    bf16* out = dptr<bf16>(p.out);
    const int n_valid = min(BN, p.c_out - n0);
    if (p.c_out % 8 == 0) {  // 16-byte rows of 8 channels
        for (int q = tid; q < BM * (BN / 8); q += kThreads) {
            const int r = q / (BN / 8), c = (q % (BN / 8)) * 8;
            const int64_t m = out_row(r);
            if (m >= 0 && c < n_valid) {
                uint4* dst = reinterpret_cast<uint4*>(out + m * p.c_out + n0 + c);
                uint4 v = *reinterpret_cast<const uint4*>(c_s + r * kLdc + c);
                if (p.accumulate) v = add_bf16x8(v, *dst);
                *dst = v;
            }
        }
    } else {
        for (int q = tid; q < BM * BN; q += kThreads) {
            const int r = q / BN, c = q % BN;
            const int64_t m = out_row(r);
            if (m >= 0 && c < n_valid) {
                bf16& o = out[m * p.c_out + n0 + c];
                o = p.accumulate ? to_bf16(to_f32(c_s[r * kLdc + c]) + to_f32(o)) : c_s[r * kLdc + c];
            }
        }
    }
}

