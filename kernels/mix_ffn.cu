// The spatial part of the Mix-FFN (MODEL.md §2.7 steps 2–3): depthwise 3×3 conv (zero padding 1,
// per frame) + bias over 2F channels, then the GLU: out = y[:F] · SiLU(y[F:]).
// Channels-last (frames, H, W, 2F) in, (frames, H, W, F) out. One thread per output element
// (grid-stride), consecutive threads on consecutive channels so every load is coalesced.
// Bytes: 2F·2 read (each input element is read by 9 neighbours, from L1/L2) + F·2 written per
// pixel; 36 FLOPs per output. The temporal (3,1) conv is three shifted GEMMs in cuBLASLt.
#include "common.cuh"

static constexpr int kThreads = 256;

extern "C" __global__ void __launch_bounds__(kThreads) depthwise3x3_glu_bf16(const DepthwiseGluParams p) {
    const int f = p.f, c2 = 2 * f;
    const int64_t total = (int64_t)p.frames * p.h * p.w_ * f;
    const bf16* x = dptr<const bf16>(p.x);
    const bf16* w = dptr<const bf16>(p.w);
    const bf16* bias = dptr<const bf16>(p.bias);
    bf16* out = dptr<bf16>(p.out);
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const int c = (int)(i % f);
        const int64_t pixel = i / f;
        const int xx = (int)(pixel % p.w_), yy = (int)((pixel / p.w_) % p.h);
        const int64_t frame = pixel / ((int64_t)p.w_ * p.h);
        float value = to_f32(bias[c]), gate = to_f32(bias[f + c]);
#pragma unroll
        for (int ky = 0; ky < 3; ++ky) {
            const int sy = yy + ky - 1;
            if (sy < 0 || sy >= p.h) continue;
#pragma unroll
            for (int kx = 0; kx < 3; ++kx) {
                const int sx = xx + kx - 1;
                if (sx < 0 || sx >= p.w_) continue;
                const bf16* src = x + ((frame * p.h + sy) * p.w_ + sx) * c2;
                value += to_f32(src[c]) * to_f32(w[c * 9 + ky * 3 + kx]);
                gate += to_f32(src[f + c]) * to_f32(w[(f + c) * 9 + ky * 3 + kx]);
            }
        }
        out[i] = to_bf16(value * silu(gate));
    }
}
