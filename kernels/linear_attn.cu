// ReLU linear attention with 3D RoPE (MODEL.md §2.4–2.5), from the fused qkv projection.
//
//   φq = ReLU(RMSNorm(q)·w_q), φk = ReLU(RMSNorm(k)·w_k)   (RMS over all heads of a token)
//   q̃ = RoPE(φq), k̃ = RoPE(φk)                              (interleaved channel pairs)
//   S = Σ_j v_j k̃_jᵀ (d×d), z = Σ_j φk_j (d)                 per (sample, head), f32
//   out_i = S q̃_i / (φq_i · z + eps)
//
// Three launches:
//   linear_attn_inv_rms_bf16  grid B·N, 256 threads: 1/rms of each token's q and k rows.
//   linear_attn_state_bf16    grid (⌈N/tokens_per_block⌉, H, B), 256 threads as a 16×16 tile
//                             grid over (c1, c2) of S, each thread owning an 8×8 register tile
//                             (strided by 16); tokens staged 32 at a time in shared memory;
//                             partial S and z added to the f32 state with atomics.
//   linear_attn_out_bf16      grid (⌈N/64⌉, H, B), 256 threads as 16×16 over (token, c1), each
//                             thread a 4×8 register tile; S (f32, padded rows) and the 64 rotated
//                             queries in dynamic shared memory.
// Per call (B·N tokens, D = H·d): reads qkv twice (6·D·2 bytes per token), writes D·2 bytes per
// token; 4·N·D·d FLOPs per sample (state + output), on the CUDA cores in f32.
// head_dim ≤ 128 and even.
#include "common.cuh"

static constexpr int kThreads = 256;
static constexpr int kMaxHeadDim = 128;
static constexpr int kTile = kMaxHeadDim / 16;  // register tile edge (8)
static constexpr int kStateTokens = 32;         // tokens staged per step of the state kernel
static constexpr int kOutTokens = 64;           // tokens per block of the output kernel

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

// φ of channel pair (2i, 2i+1) of one head of one token, and its rotation by the pair's angle.
struct RotatedPair {
    float phi0, phi1, rot0, rot1;
};

__device__ __forceinline__ RotatedPair feature_pair(const bf16* x, const bf16* w, float inv_rms, float cos_a, float sin_a) {
    const float a = fmaxf(to_f32(x[0]) * inv_rms * to_f32(w[0]), 0.0f);
    const float b = fmaxf(to_f32(x[1]) * inv_rms * to_f32(w[1]), 0.0f);
    return {a, b, a * cos_a - b * sin_a, a * sin_a + b * cos_a};
}

extern "C" __global__ void __launch_bounds__(kThreads) linear_attn_state_bf16(const LinearAttnParams p) {
    __shared__ float v_s[kStateTokens][kMaxHeadDim];
    __shared__ float k_s[kStateTokens][kMaxHeadDim];
    __shared__ float z_s[kMaxHeadDim];
    const int d = p.head_dim, half = d / 2, d_model = p.heads * d;
    const int h = blockIdx.y, b = blockIdx.z;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const int first = blockIdx.x * p.tokens_per_block;
    const int last = min(first + p.tokens_per_block, p.n);
    // staging role: channel pair `pair` of tokens `group`, group + groups, ...
    const int groups = kThreads / half;  // half ≤ 64, so at least 4 groups
    const int pair = threadIdx.x % half, group = threadIdx.x / half;
    float z0 = 0.0f, z1 = 0.0f;
    float acc[kTile][kTile] = {};
    if (threadIdx.x < kMaxHeadDim) z_s[threadIdx.x] = 0.0f;

    for (int t0 = first; t0 < last; t0 += kStateTokens) {
        const int count = min(kStateTokens, last - t0);
        __syncthreads();  // the previous tile is consumed
        if (group < groups) {
            for (int t = group; t < count; t += groups) {
                const int64_t token = (int64_t)b * p.n + t0 + t;
                const bf16* row = dptr<const bf16>(p.qkv) + token * 3 * d_model;
                const float inv_rms = dptr<const float>(p.inv_rms)[2 * token + 1];
                const int64_t angle = (int64_t)(t0 + t) * half + pair;
                const RotatedPair k = feature_pair(row + d_model + h * d + 2 * pair, dptr<const bf16>(p.norm_k) + h * d + 2 * pair,
                                                   inv_rms, dptr<const float>(p.cos)[angle], dptr<const float>(p.sin)[angle]);
                k_s[t][2 * pair] = k.rot0;
                k_s[t][2 * pair + 1] = k.rot1;
                z0 += k.phi0;
                z1 += k.phi1;
                const bf16* v = row + 2 * d_model + h * d + 2 * pair;
                v_s[t][2 * pair] = to_f32(v[0]);
                v_s[t][2 * pair + 1] = to_f32(v[1]);
            }
        }
        __syncthreads();
        for (int t = 0; t < count; ++t) {
            float vr[kTile], kr[kTile];
#pragma unroll
            for (int i = 0; i < kTile; ++i) {
                vr[i] = v_s[t][ty + 16 * i];
                kr[i] = k_s[t][tx + 16 * i];
            }
#pragma unroll
            for (int i = 0; i < kTile; ++i)
#pragma unroll
                for (int j = 0; j < kTile; ++j) acc[i][j] += vr[i] * kr[j];
        }
    }
    if (group < groups) {
        atomicAdd(&z_s[2 * pair], z0);
        atomicAdd(&z_s[2 * pair + 1], z1);
    }
    __syncthreads();
    float* state = dptr<float>(p.state) + ((int64_t)b * p.heads + h) * d * d;
#pragma unroll
    for (int i = 0; i < kTile; ++i)
#pragma unroll
        for (int j = 0; j < kTile; ++j) {
            const int c1 = ty + 16 * i, c2 = tx + 16 * j;
            if (c1 < d && c2 < d) atomicAdd(&state[c1 * d + c2], acc[i][j]);
        }
    if (threadIdx.x < d) atomicAdd(&dptr<float>(p.k_sum)[((int64_t)b * p.heads + h) * d + threadIdx.x], z_s[threadIdx.x]);
}

// Dynamic shared memory: S (d rows of d+1 floats), q̃ (64 × d), den (64).
extern "C" __global__ void __launch_bounds__(kThreads) linear_attn_out_bf16(const LinearAttnParams p) {
    extern __shared__ float smem[];
    const int d = p.head_dim, half = d / 2, d_model = p.heads * d, stride = d + 1;
    const int h = blockIdx.y, b = blockIdx.z;
    float* s_s = smem;                          // [d][d+1]
    float* q_s = s_s + d * stride;              // [kOutTokens][d]
    float* den_s = q_s + kOutTokens * d;        // [kOutTokens]
    const int t0 = blockIdx.x * kOutTokens;
    const int count = min(kOutTokens, p.n - t0);
    const float* state = dptr<const float>(p.state) + ((int64_t)b * p.heads + h) * d * d;
    const float* z = dptr<const float>(p.k_sum) + ((int64_t)b * p.heads + h) * d;

    for (int i = threadIdx.x; i < d * d; i += kThreads) s_s[(i / d) * stride + i % d] = state[i];
    if (threadIdx.x < kOutTokens) den_s[threadIdx.x] = 0.0f;
    __syncthreads();
    for (int i = threadIdx.x; i < count * half; i += kThreads) {
        const int t = i / half, pair = i % half;
        const int64_t token = (int64_t)b * p.n + t0 + t;
        const bf16* row = dptr<const bf16>(p.qkv) + token * 3 * d_model;
        const int64_t angle = (int64_t)(t0 + t) * half + pair;
        const RotatedPair q = feature_pair(row + h * d + 2 * pair, dptr<const bf16>(p.norm_q) + h * d + 2 * pair,
                                           dptr<const float>(p.inv_rms)[2 * token], dptr<const float>(p.cos)[angle],
                                           dptr<const float>(p.sin)[angle]);
        q_s[t * d + 2 * pair] = q.rot0;
        q_s[t * d + 2 * pair + 1] = q.rot1;
        atomicAdd(&den_s[t], q.phi0 * z[2 * pair] + q.phi1 * z[2 * pair + 1]);
    }
    __syncthreads();

    // thread (ty, tx): tokens ty + 16·i (i < 4), channels c1 = tx + 16·j (j < 8)
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    static constexpr int kTokTile = kOutTokens / 16;
    float acc[kTokTile][kTile] = {};
    for (int c2 = 0; c2 < d; ++c2) {
        float qr[kTokTile], sr[kTile];
#pragma unroll
        for (int i = 0; i < kTokTile; ++i) qr[i] = q_s[min(ty + 16 * i, kOutTokens - 1) * d + c2];
#pragma unroll
        for (int j = 0; j < kTile; ++j) sr[j] = s_s[min(tx + 16 * j, d - 1) * stride + c2];
#pragma unroll
        for (int i = 0; i < kTokTile; ++i)
#pragma unroll
            for (int j = 0; j < kTile; ++j) acc[i][j] += qr[i] * sr[j];
    }
#pragma unroll
    for (int i = 0; i < kTokTile; ++i) {
        const int t = ty + 16 * i;
        if (t >= count) continue;
        const float inv_den = 1.0f / (den_s[t] + p.attn_eps);
        bf16* out = dptr<bf16>(p.out) + ((int64_t)b * p.n + t0 + t) * d_model + h * d;
#pragma unroll
        for (int j = 0; j < kTile; ++j) {
            const int c1 = tx + 16 * j;
            if (c1 < d) out[c1] = to_bf16(acc[i][j] * inv_den);
        }
    }
}
