// The spatial part of the Mix-FFN (MODEL.md §2.7 steps 1–3, after the conv_inverted GEMM):
// u = SiLU(x) (conv_inverted's activation, applied as inputs are read), y = dwconv3x3(u) + bias
// over 2F channels (zero padding 1, per frame), out = y[:F] · SiLU(y[F:]).
// Channels-last (frames, H, W, 2F) in, (frames, H, W, F) out; weights tap-major (9, 2F).
//
// Grid (⌈F/2 / 128⌉, ⌈H/2⌉, frames): a block owns two output rows of one frame for 256 channels
// (128 threads × a bf16x2 channel pair). Each thread walks its rows left to right with a 4×3
// window of SiLU'd inputs in registers (value and gate) and the next column's loads in flight,
// so every input is loaded (and SiLU'd) twice, not nine times, and the 36 weights once.
// Bytes per call: 2F·2 read (from L2 for the two other rows) + F·2 written per pixel;
// 2·2·9·2F FLOPs per pixel. temporal_concat_bf16 lays out the temporal conv's input for one
// K = 3C GEMM. Measured on the H200 (720p, B=2, F=6720): v1 (one thread per
// output element, 64-bit index math, 54 scalar loads per output pair) 3.0 ms; this version: see
// BENCHMARKS.md.
// v2 (one row per thread, no prefetch, IEEE division in SiLU): 2.4 ms.
#include "common.cuh"

static constexpr int kPairsPerBlock = 128;
static constexpr int kRowsPerThread = 2;
static constexpr int kWindowRows = kRowsPerThread + 2;

// silu() of both halves of a bf16 pair
__device__ __forceinline__ float2 silu2(__nv_bfloat162 v) {
    const float2 f = __bfloat1622float2(v);
    return make_float2(silu(f.x), silu(f.y));
}

extern "C" __global__ void __launch_bounds__(kPairsPerBlock) depthwise3x3_glu_bf16(const DepthwiseGluParams p) {
    const int f = p.f, pairs = f / 2, c2 = 2 * f;
    const int pair = blockIdx.x * kPairsPerBlock + threadIdx.x;
    if (pair >= pairs) return;
    const int y0 = blockIdx.y * kRowsPerThread, frame = blockIdx.z, width = p.w_;
    const int cv = 2 * pair, cg = f + 2 * pair;  // value and gate channel of this pair
    const __nv_bfloat162* w = dptr<const __nv_bfloat162>(p.w);
    float2 wv[9], wg[9];
#pragma unroll
    for (int k = 0; k < 9; ++k) {
        wv[k] = __bfloat1622float2(w[(k * c2 + cv) / 2]);
        wg[k] = __bfloat1622float2(w[(k * c2 + cg) / 2]);
    }
    const __nv_bfloat162* bias = dptr<const __nv_bfloat162>(p.bias);
    const float2 bv = __bfloat1622float2(bias[cv / 2]), bg = __bfloat1622float2(bias[cg / 2]);
    const bf16* x = dptr<const bf16>(p.x) + (int64_t)frame * p.h * width * c2;
    // raw input pair at (row, col), zero outside the frame (SiLU is applied once it arrives)
    auto load = [&](int row, int col, int c) -> __nv_bfloat162 {
        if (row < 0 || row >= p.h || col < 0 || col >= width) return __floats2bfloat162_rn(0.0f, 0.0f);
        return *reinterpret_cast<const __nv_bfloat162*>(x + ((int64_t)row * width + col) * c2 + c);
    };
    // window[r][k]: rows y0-1 .. y0+kRowsPerThread, columns col-1, col, col+1 (SiLU'd)
    float2 v[kWindowRows][3], g[kWindowRows][3];
    __nv_bfloat162 next_v[kWindowRows], next_g[kWindowRows];  // column col+2, in flight
#pragma unroll
    for (int r = 0; r < kWindowRows; ++r) {
        v[r][0] = g[r][0] = make_float2(0.0f, 0.0f);
        v[r][1] = silu2(load(y0 + r - 1, 0, cv));
        g[r][1] = silu2(load(y0 + r - 1, 0, cg));
        next_v[r] = load(y0 + r - 1, 1, cv);
        next_g[r] = load(y0 + r - 1, 1, cg);
    }
    __nv_bfloat162* out = dptr<__nv_bfloat162>(p.out) + (((int64_t)frame * p.h + y0) * width) * pairs + pair;
    for (int col = 0; col < width; ++col) {
#pragma unroll
        for (int r = 0; r < kWindowRows; ++r) {
            v[r][2] = silu2(next_v[r]);
            g[r][2] = silu2(next_g[r]);
            next_v[r] = load(y0 + r - 1, col + 2, cv);  // prefetch: consumed next iteration
            next_g[r] = load(y0 + r - 1, col + 2, cg);
        }
#pragma unroll
        for (int o = 0; o < kRowsPerThread; ++o) {
            if (y0 + o >= p.h) break;
            float2 av = bv, ag = bg;
#pragma unroll
            for (int r = 0; r < 3; ++r)
#pragma unroll
                for (int k = 0; k < 3; ++k) {
                    av.x += v[o + r][k].x * wv[r * 3 + k].x;
                    av.y += v[o + r][k].y * wv[r * 3 + k].y;
                    ag.x += g[o + r][k].x * wg[r * 3 + k].x;
                    ag.y += g[o + r][k].y * wg[r * 3 + k].y;
                }
            out[((int64_t)o * width + col) * pairs] = __floats2bfloat162_rn(av.x * silu(ag.x), av.y * silu(ag.y));
        }
#pragma unroll
        for (int r = 0; r < kWindowRows; ++r) {
            v[r][0] = v[r][1];
            v[r][1] = v[r][2];
            g[r][0] = g[r][1];
            g[r][1] = g[r][2];
        }
    }
}

// [x[t−1] | x[t] | x[t+1]] side by side (zero outside 0..T): the A operand that makes the
// temporal (3,1) conv one GEMM with K = 3C (MODEL.md §2.7 step 5). x (B, T, HW, C) →
// out (B·T·HW, 3C). 16-byte copies when C is a multiple of 8 (2240 is), element copies otherwise.
template <class Chunk>
__device__ __forceinline__ void temporal_concat(const TemporalConcatParams& p) {
    static constexpr int kPer = sizeof(Chunk) / sizeof(bf16);
    const int chunks = p.c / kPer;
    const int64_t total = (int64_t)p.b * p.t * p.hw * 3 * chunks;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int chunk = (int)(i % chunks);
        const int64_t rest = i / chunks;
        const int k = (int)(rest % 3);
        const int64_t token = rest / 3;  // (b, t, s) row-major
        const int s = (int)(token % p.hw);
        const int t = (int)((token / p.hw) % p.t);
        const int64_t b = token / ((int64_t)p.hw * p.t);
        const int src_t = t + k - 1;
        Chunk v{};
        if (src_t >= 0 && src_t < p.t)
            v = *reinterpret_cast<const Chunk*>(dptr<const bf16>(p.x) + (((b * p.t + src_t) * p.hw + s) * p.c) + chunk * kPer);
        *reinterpret_cast<Chunk*>(dptr<bf16>(p.out) + token * 3 * p.c + k * p.c + chunk * kPer) = v;
    }
}

extern "C" __global__ void __launch_bounds__(256) temporal_concat_bf16(const TemporalConcatParams p) {
    if (p.c % 8 == 0)
        temporal_concat<uint4>(p);
    else
        temporal_concat<unsigned short>(p);
}
