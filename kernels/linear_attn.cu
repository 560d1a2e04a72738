// ReLU linear attention with 3D RoPE (MODEL.md §2.4–2.5), from the fused qkv projection.
//
//   φq = ReLU(RMSNorm(q)·w_q), φk = ReLU(RMSNorm(k)·w_k)   (RMS over all heads of a token)
//   q̃ = RoPE(φq), k̃ = RoPE(φk)                              (interleaved channel pairs)
//   S = Σ_j v_j k̃_jᵀ (d×d), z = Σ_j φk_j (d)                 per (sample, head), f32
//   out_i = S q̃_i / (φq_i · z + eps)
//
// The two reductions over tokens are matrix products, so they run on the TF32 tensor cores
// (cuBLASLt, src/backend/cuda/linear_attn.rs) between the kernels here:
//   linear_attn_inv_rms_bf16   grid B·N, 256 threads: 1/rms of each token's q and k rows.
//   linear_attn_features_bf16  grid (padded_n/32, B), 256 threads: writes q̃ (f32, head-major
//                              (B, H, padded_n, d)) and k̃, v (f32, (B, H, chunks, d, R): the
//                              token axis cut into chunks of R rows and made the contiguous one,
//                              padding rows zero), so the state product is one strided-batched
//                              GEMM over (sample, head, chunk) reducing over a contiguous axis;
//                              adds this block's 32 tokens of φk into z.
//   linear_attn_reduce_state   grid (⌈d²/256⌉, B·H): S = Σ over chunks of the partial states.
//   linear_attn_finish_bf16    grid B·N, 256 threads (a warp per head for den = φq·z),
//                              out = num / (den + eps).
// Per call, per token: reads qkv (6·D bytes) twice and q once more, writes 12·D bytes of f32
// features and reads them back in the products, writes and reads 4·D bytes of f32 numerators,
// writes D·2 bytes of output. v1 (CUDA-core state and output kernels, f32 atomics on S) took
// 1.93 ms per block at 720p on the H200; see BENCHMARKS.md.
#include "common.cuh"

static constexpr int kThreads = 256;
static constexpr int kFeatureTokens = 32;
static constexpr int kMaxHeadDim = 128;

// inv_rms[row] = (1/rms(q_row), 1/rms(k_row))
extern "C" __global__ void __launch_bounds__(kThreads) linear_attn_inv_rms_bf16(const LinearAttnParams p) {
    const int d_model = p.heads * p.head_dim;
    const bf16* row = dptr<const bf16>(p.qkv) + (int64_t)blockIdx.x * 3 * d_model;
    float sq = 0.0f, sk = 0.0f;
    for (int c = threadIdx.x; c < d_model; c += blockDim.x) {
        const float q = to_f32(row[c]), k = to_f32(row[d_model + c]);
        sq += q * q;
        sk += k * k;
    }
    sq = block_sum(sq);
    sk = block_sum(sk);
    if (threadIdx.x == 0) {
        float* out = dptr<float>(p.inv_rms) + 2 * (int64_t)blockIdx.x;
        out[0] = rsqrtf(sq / d_model + p.norm_eps);
        out[1] = rsqrtf(sk / d_model + p.norm_eps);
    }
}

// φ = ReLU(x·inv_rms·w) of a channel pair.
__device__ __forceinline__ float2 feature_pair(__nv_bfloat162 x, __nv_bfloat162 w, float inv_rms) {
    const float2 xf = __bfloat1622float2(x), wf = __bfloat1622float2(w);
    return make_float2(fmaxf(xf.x * inv_rms * wf.x, 0.0f), fmaxf(xf.y * inv_rms * wf.y, 0.0f));
}

// (a·cos − b·sin, a·sin + b·cos)
__device__ __forceinline__ float2 rotate(float2 v, float c, float s) {
    return make_float2(v.x * c - v.y * s, v.x * s + v.y * c);
}

// Block (tokens t0..t0+31 of sample b), one head at a time: q̃ is written token-major
// (B, H, padded_n, d); k̃ and v go through a shared-memory transpose and are written
// channel-major per chunk, (B, H, chunks, d, R), so the state product reduces over a contiguous
// axis. R is a multiple of 32, so a block never straddles two chunks; blocks past N write the
// zero padding rows.
extern "C" __global__ void __launch_bounds__(kThreads) linear_attn_features_bf16(const LinearAttnParams p) {
    __shared__ float k_s[kMaxHeadDim][kFeatureTokens + 1];
    __shared__ float v_s[kMaxHeadDim][kFeatureTokens + 1];
    __shared__ float z_s[kMaxHeadDim];
    const int d = p.head_dim, half = d / 2, d_model = p.heads * d, pairs = d_model / 2;
    const int b = blockIdx.y, t0 = blockIdx.x * kFeatureTokens;
    const int count = max(0, min(kFeatureTokens, p.n - t0));
    const int rows = p.padded_n / p.chunks;  // R
    const int chunk = t0 / rows, r0 = t0 % rows;
    const __nv_bfloat162* __restrict__ qkv = dptr<const __nv_bfloat162>(p.qkv);
    const __nv_bfloat162* __restrict__ norm_q = dptr<const __nv_bfloat162>(p.norm_q);
    const __nv_bfloat162* __restrict__ norm_k = dptr<const __nv_bfloat162>(p.norm_k);
    const float2* __restrict__ inv_rms_all = dptr<const float2>(p.inv_rms);
    const float* __restrict__ cos_t = dptr<const float>(p.cos);
    const float* __restrict__ sin_t = dptr<const float>(p.sin);
    float2* __restrict__ q_rot = dptr<float2>(p.q_rot);
    for (int h = 0; h < p.heads; ++h) {
        for (int c = threadIdx.x; c < d; c += blockDim.x) z_s[c] = 0.0f;
        __syncthreads();
        for (int item = threadIdx.x; item < kFeatureTokens * half; item += blockDim.x) {
            const int t = item / half, pair = item % half, c = 2 * pair;
            float2 kr = make_float2(0.0f, 0.0f), vv = make_float2(0.0f, 0.0f);
            if (t < count) {
                const int64_t token = (int64_t)b * p.n + t0 + t;
                const int i = h * half + pair;  // pair index within the token
                const __nv_bfloat162* row = qkv + token * 3 * pairs;
                const float2 inv_rms = inv_rms_all[token];
                const int64_t angle = (int64_t)(t0 + t) * half + pair;
                const float cs = cos_t[angle], sn = sin_t[angle];
                const float2 fq = feature_pair(row[i], norm_q[i], inv_rms.x);
                const float2 fk = feature_pair(row[pairs + i], norm_k[i], inv_rms.y);
                q_rot[(((int64_t)b * p.heads + h) * p.padded_n + t0 + t) * half + pair] = rotate(fq, cs, sn);
                kr = rotate(fk, cs, sn);
                vv = __bfloat1622float2(row[2 * pairs + i]);
                atomicAdd(&z_s[c], fk.x);
                atomicAdd(&z_s[c + 1], fk.y);
            }
            k_s[c][t] = kr.x;
            k_s[c + 1][t] = kr.y;
            v_s[c][t] = vv.x;
            v_s[c + 1][t] = vv.y;
        }
        __syncthreads();
        // (c, t) with t fastest: 32 consecutive floats per channel row of the chunk
        const int64_t base = ((((int64_t)b * p.heads + h) * p.chunks + chunk) * d) * rows + r0;
        for (int e = threadIdx.x; e < d * kFeatureTokens; e += blockDim.x) {
            const int c = e / kFeatureTokens, t = e % kFeatureTokens;
            dptr<float>(p.k_rot)[base + (int64_t)c * rows + t] = k_s[c][t];
            dptr<float>(p.v)[base + (int64_t)c * rows + t] = v_s[c][t];
        }
        if (count > 0)
            for (int c = threadIdx.x; c < d; c += blockDim.x)
                atomicAdd(&dptr<float>(p.k_sum)[((int64_t)b * p.heads + h) * d + c], z_s[c]);
        __syncthreads();
    }
}

extern "C" __global__ void __launch_bounds__(kThreads) linear_attn_finish_bf16(const LinearAttnParams p) {
    extern __shared__ float den[];  // [heads]
    const int d = p.head_dim, half = d / 2, d_model = p.heads * d, pairs = d_model / 2;
    const int64_t token = blockIdx.x;
    const int b = (int)(token / p.n);
    const __nv_bfloat162* row = dptr<const __nv_bfloat162>(p.qkv) + token * 3 * pairs;
    const float inv_rms = dptr<const float>(p.inv_rms)[2 * token];
    const float* z = dptr<const float>(p.k_sum) + (int64_t)b * p.heads * d;
    // one warp per head: den[h] = Σ_c φq[c]·z[c] over the head's channels
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int h = warp; h < p.heads; h += blockDim.x / 32) {
        float acc = 0.0f;
        for (int j = lane; j < half; j += 32) {
            const int i = h * half + j;
            const float2 fq = feature_pair(row[i], dptr<const __nv_bfloat162>(p.norm_q)[i], inv_rms);
            acc += fq.x * z[2 * i] + fq.y * z[2 * i + 1];
        }
        acc = warp_sum(acc);
        if (lane == 0) den[h] = acc;
    }
    __syncthreads();
    // num is head-major (B, H, padded N, d)
    const int t = (int)(token % p.n);
    const float2* num = dptr<const float2>(p.num);
    __nv_bfloat162* out = dptr<__nv_bfloat162>(p.out) + token * pairs;
    for (int i = threadIdx.x; i < pairs; i += blockDim.x) {
        const int h = i / half;
        const float inv = 1.0f / (den[h] + p.attn_eps);
        const float2 v = num[(((int64_t)b * p.heads + h) * p.padded_n + t) * half + i % half];
        out[i] = __floats2bfloat162_rn(v.x * inv, v.y * inv);
    }
}

// S[b, h] = Σ_chunk partial[b, h, chunk] (each d×d); grid (⌈d²/256⌉, B·H), one element per
// thread, so the chunk loads of all threads are in flight together.
extern "C" __global__ void __launch_bounds__(kThreads) linear_attn_reduce_state(const LinearAttnParams p) {
    const int dd = p.head_dim * p.head_dim;
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= dd) return;
    const float* partial = dptr<const float>(p.partial) + (int64_t)blockIdx.y * p.chunks * dd + e;
    float acc = 0.0f;
#pragma unroll 8
    for (int c = 0; c < p.chunks; ++c) acc += partial[(int64_t)c * dd];
    dptr<float>(p.state)[(int64_t)blockIdx.y * dd + e] = acc;
}
