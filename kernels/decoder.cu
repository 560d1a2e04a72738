// The Gemma-2 text encoder's ops (MODEL.md §4; CPU twin src/backend/cpu/decoder.rs):
// embedding lookup (into bf16, or into the f32 residual stream), rotate-half RoPE, causal
// grouped-query attention with soft-capping and a sliding window, and the elementwise product and
// sum. First versions, written for correctness:
// the attention is one warp per (query, head) with an online softmax over the visible keys
// (O(L²·d) per head on the CUDA cores), fine for the ≤ ~600 tokens of a prompt; a tiled tensor-core
// kernel is the next step once it is measured (BENCHMARKS.md).
#include "common.cuh"

static constexpr int kThreads = 256;
static constexpr int kMaxHeadDim = 256;  // Gemma-2-2B: 256

// out[r] = table[ids[r]] · scale, the product in f32, stored as Out (bf16, or f32 for a residual
// stream); the table is bf16
template <class Out>
__device__ __forceinline__ void gather_rows(const GatherParams& p) {
    const int64_t total = (int64_t)p.rows * p.dim;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = i / p.dim, c = i % p.dim;
        const uint32_t id = dptr<const uint32_t>(p.ids)[r];
        dptr<Out>(p.out)[i] = from_f32<Out>(to_f32(dptr<const bf16>(p.table)[(int64_t)id * p.dim + c]) * p.scale);
    }
}

extern "C" __global__ void __launch_bounds__(kThreads) gather_rows_bf16(const GatherParams p) {
    gather_rows<bf16>(p);
}

extern "C" __global__ void __launch_bounds__(kThreads) gather_rows_f32_bf16(const GatherParams p) {
    gather_rows<float>(p);
}

// out[c] = x[c]·cos − x[c+h]·sin, out[c+h] = x[c+h]·cos + x[c]·sin, h = hd/2, per head and row
extern "C" __global__ void __launch_bounds__(kThreads) rope_rotate_half_bf16(const RopeHalfParams p) {
    const int half = p.head_dim / 2;
    const int64_t total = (int64_t)p.rows * p.heads * half;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int c = (int)(i % half);
        const int64_t rh = i / half;  // row·heads + head
        const int64_t row = rh / p.heads;
        const int pos = (int)(row % p.l);
        const float cs = dptr<const float>(p.cos)[(int64_t)pos * half + c];
        const float sn = dptr<const float>(p.sin)[(int64_t)pos * half + c];
        const bf16* x = dptr<const bf16>(p.x) + rh * p.head_dim;
        bf16* out = dptr<bf16>(p.out) + rh * p.head_dim;
        const float a = to_f32(x[c]), b = to_f32(x[c + half]);
        out[c] = to_bf16(a * cs - b * sn);
        out[c + half] = to_bf16(b * cs + a * sn);
    }
}

// One warp per (query i, head h, sample b): online softmax over the visible keys
// j ∈ [max(0, i+1−window), i] with key_mask ≠ 0; scores ·scale, soft-capped when softcap > 0.
// A query that sees no key gets the mean of all L values (transformers' eager attention gives a
// uniform softmax over an all-minimum row, MODEL.md §12.5).
extern "C" __global__ void __launch_bounds__(32) causal_attention_bf16(const CausalAttnParams p) {
    const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z, lane = threadIdx.x;
    const int hd = p.head_dim, kvh = h / (p.heads / p.kv_heads);
    const int q_width = p.heads * hd, kv_width = p.kv_heads * hd;
    static constexpr int kPerLane = kMaxHeadDim / 32;
    const bf16* q = dptr<const bf16>(p.q) + ((int64_t)b * p.l + i) * q_width + h * hd;
    float qv[kPerLane], acc[kPerLane];
#pragma unroll
    for (int e = 0; e < kPerLane; ++e) {
        const int c = lane + 32 * e;
        qv[e] = c < hd ? to_f32(q[c]) : 0.0f;
        acc[e] = 0.0f;
    }
    const float* mask = dptr<const float>(p.key_mask) + (int64_t)b * p.l;
    const int first = p.window > 0 ? max(0, i + 1 - p.window) : 0;
    float m = neg_inf(), total = 0.0f;
    int seen = 0;
    for (int j = first; j <= i; ++j) {
        if (mask[j] == 0.0f) continue;
        ++seen;
        const bf16* k = dptr<const bf16>(p.k) + ((int64_t)b * p.l + j) * kv_width + kvh * hd;
        float dot = 0.0f;
#pragma unroll
        for (int e = 0; e < kPerLane; ++e) {
            const int c = lane + 32 * e;
            if (c < hd) dot += qv[e] * to_f32(k[c]);
        }
        float s = warp_sum(dot) * p.scale;
        if (p.softcap > 0.0f) s = tanhf(s / p.softcap) * p.softcap;
        const float m_new = fmaxf(m, s);
        const float correction = __expf(m - m_new), w = __expf(s - m_new);
        total = total * correction + w;
        const bf16* v = dptr<const bf16>(p.v) + ((int64_t)b * p.l + j) * kv_width + kvh * hd;
#pragma unroll
        for (int e = 0; e < kPerLane; ++e) {
            const int c = lane + 32 * e;
            acc[e] = acc[e] * correction + (c < hd ? w * to_f32(v[c]) : 0.0f);
        }
        m = m_new;
    }
    if (seen == 0) {  // the mean of all values of this sample
        for (int j = 0; j < p.l; ++j) {
            const bf16* v = dptr<const bf16>(p.v) + ((int64_t)b * p.l + j) * kv_width + kvh * hd;
#pragma unroll
            for (int e = 0; e < kPerLane; ++e) {
                const int c = lane + 32 * e;
                if (c < hd) acc[e] += to_f32(v[c]);
            }
        }
        total = (float)p.l;
    }
    bf16* out = dptr<bf16>(p.out) + ((int64_t)b * p.l + i) * q_width + h * hd;
    const float inv = 1.0f / total;
#pragma unroll
    for (int e = 0; e < kPerLane; ++e) {
        const int c = lane + 32 * e;
        if (c < hd) out[c] = to_bf16(acc[e] * inv);
    }
}

// out = a · b (op 0) or out = a + b (op 1), elementwise; out may alias a.
extern "C" __global__ void __launch_bounds__(kThreads) binary_bf16(const BinaryParams p) {
    const bf16* a = dptr<const bf16>(p.a);
    const bf16* b = dptr<const bf16>(p.b);
    bf16* out = dptr<bf16>(p.out);
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < p.len; i += (int64_t)gridDim.x * blockDim.x) {
        const float x = to_f32(a[i]), y = to_f32(b[i]);
        out[i] = to_bf16(p.op == 0 ? x * y : x + y);
    }
}
