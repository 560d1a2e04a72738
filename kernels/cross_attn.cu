// Masked softmax of the cross-attention scores (MODEL.md §2.6). The two products around it
// (Q·Kᵀ into f32 scores, P·V) run in cuBLASLt, batched over heads; this kernel turns one row of
// L raw scores into probabilities: p = softmax(s·scale + key_bias), in f32, stored as bf16.
// One warp per row (L ≤ 1024, so ≤ 32 values per lane); grid = ⌈rows / 8⌉ blocks of 256.
// Bytes: 4·L read + 2·L written per row.
#include "common.cuh"

static constexpr int kThreads = 256;
static constexpr int kMaxPerLane = 32;

extern "C" __global__ void __launch_bounds__(kThreads) masked_softmax_f32_bf16(const MaskedSoftmaxParams p) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t row = (int64_t)blockIdx.x * (kThreads / 32) + warp;
    if (row >= p.rows) return;
    const float* s = dptr<const float>(p.scores) + row * p.l;
    const float* bias = dptr<const float>(p.key_bias);
    float v[kMaxPerLane];
    float max_v = -INFINITY;
#pragma unroll
    for (int i = 0; i < kMaxPerLane; ++i) {
        const int j = lane + 32 * i;
        v[i] = j < p.l ? s[j] * p.scale + bias[j] : -INFINITY;
        max_v = fmaxf(max_v, v[i]);
    }
    for (int o = 16; o > 0; o >>= 1) max_v = fmaxf(max_v, __shfl_xor_sync(0xffffffffu, max_v, o));
    float total = 0.0f;
#pragma unroll
    for (int i = 0; i < kMaxPerLane; ++i) {
        v[i] = (lane + 32 * i) < p.l ? __expf(v[i] - max_v) : 0.0f;
        total += v[i];
    }
    const float inv = 1.0f / warp_sum(total);
    bf16* out = dptr<bf16>(p.probs) + row * p.l;
#pragma unroll
    for (int i = 0; i < kMaxPerLane; ++i) {
        const int j = lane + 32 * i;
        if (j < p.l) out[j] = to_bf16(v[i] * inv);
    }
}
