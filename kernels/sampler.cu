// The denoising loop's elementwise work on the device (engine/sampler; CPU twin
// backend/cpu/sampler.rs): the latents stay in f32 device tables between steps, so a step moves
// nothing to or from the host and the next transformer pass is queued behind the solver update.
#include "common.cuh"

static constexpr int kThreads = 256;

// out (bf16, len) = x (f32, n) repeated: the model batch [x, x] of classifier-free guidance.
extern "C" __global__ void __launch_bounds__(kThreads) table_to_tensor_bf16(const SamplerParams p) {
    const float* x = dptr<const float>(p.a);
    bf16* out = dptr<bf16>(p.out);
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < p.len; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = to_bf16(x[i % p.n]);
}

// out (f32, n) = u + scale·(c − u) from the model output [u; c] (bf16, 2n), or the output itself
// when terms == 1 (no guidance). The params carry the scale in `keep` and the copies in `terms`.
extern "C" __global__ void __launch_bounds__(kThreads) guided_velocity_f32(const SamplerParams p) {
    const bf16* m = dptr<const bf16>(p.a);
    float* out = dptr<float>(p.out);
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < p.n; i += (int64_t)gridDim.x * blockDim.x) {
        const float u = to_f32(m[i]);
        out[i] = p.terms == 1 ? u : u + p.keep * (to_f32(m[p.n + i]) - u);
    }
}

// out (f32, n) = keep·out + ca·a + cb·b + cc·c over the first `terms` operands; keep == 0 does not
// read out (it may hold anything). out may be one of the operands.
extern "C" __global__ void __launch_bounds__(kThreads) lincomb_f32(const SamplerParams p) {
    const float* a = dptr<const float>(p.a);
    const float* b = dptr<const float>(p.b);
    const float* c = dptr<const float>(p.c);
    float* out = dptr<float>(p.out);
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < p.n; i += (int64_t)gridDim.x * blockDim.x) {
        float v = p.keep == 0.0f ? 0.0f : p.keep * out[i];
        v += p.ca * a[i];
        if (p.terms > 1) v += p.cb * b[i];
        if (p.terms > 2) v += p.cc * c[i];
        out[i] = v;
    }
}
