// Device helpers of the conv kernels (kernels/conv.cu: mma.sync; kernels/conv_wgmma.cu: sm_90a
// wgmma): tap indexing and the epilogue's write of a staged bf16 tile.
#pragma once
#include "common.cuh"

// Input index on one axis for output o and tap k, or -1 for a zero.
__device__ __forceinline__ int source_index(int o, int k, int stride, int before, int size, int reflect) {
    int i = o * stride + k - before;
    if (i >= 0 && i < size) return i;
    if (!reflect) return -1;
    return i < 0 ? -i : 2 * (size - 1) - i;
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

