//! Micro-benchmarks on the device; they change nothing the engine runs.
//! `sana bench gemm`: every algorithm cuBLASLt's heuristic offers for a product shape, timed
//! against each other: does the heuristic's first choice (the one [`super::blas::Blas::gemm`]
//! always takes) leave speed behind? `sana bench conv`: each convolution path on the
//! autoencoders' shapes: does [`Cuda::conv_path`] pick the fastest?

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::CudaSlice;
use half::bf16;

use super::blas::{Epilogue, Gemm};
use super::conv::ConvPath;
use super::error::DriverContext;
use super::Cuda;
use crate::backend::{ConvDims, Write};
use crate::error::Result;

/// One product shape of a model, row-major (m × k) · (n × k)ᵀ.
#[derive(Clone, Copy, Debug)]
pub struct GemmShape {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub bias: bool,
    /// Adds into the output (beta = 1), as the residual products do.
    pub accumulate: bool,
}

/// One algorithm's timing: its rank in the heuristic's list, median milliseconds per product,
/// TFLOP/s, the heuristic's wave estimate and the algorithm's configuration
/// (`Algorithm::config`).
#[derive(Clone, Debug)]
pub struct GemmTiming {
    pub rank: usize,
    pub median_ms: f64,
    pub tflops: f64,
    pub waves: f32,
    pub config: [u32; 7],
}

/// One convolution path's timing on one shape: median milliseconds per conv, TFLOP/s (counted
/// over the output positions × taps × C_in × C_out, padding included as the product computes it),
/// and whether it is the path the engine takes.
#[derive(Clone, Debug)]
pub struct ConvTiming {
    pub path: ConvPath,
    pub chosen: bool,
    pub median_ms: f64,
    pub tflops: f64,
}

impl Cuda {
    /// Device buffer of deterministic noise in [-0.5, 0.5) (not zeros: the tensor cores draw
    /// less power on zeros, which flatters a timing).
    fn bench_noise(&self, len: usize, salt: u64) -> Result<CudaSlice<bf16>> {
        let mut state = salt;
        let host: Vec<bf16> = (0..len)
            .map(|_| {
                let u = (crate::engine::weights::splitmix64(&mut state) >> 40) as f32 / (1u64 << 24) as f32;
                bf16::from_f32(u - 0.5)
            })
            .collect();
        self.stream.clone_htod(&host).during("uploading benchmark operands").map_err(|e| self.err(e))
    }

    /// Median milliseconds of one `run`: 3 warm-up calls, then 5 samples of `iters` calls between
    /// two events.
    fn median_ms(&self, iters: usize, mut run: impl FnMut() -> Result<()>) -> Result<f64> {
        let event = || {
            self.ctx
                .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                .during("creating a timing event")
                .map_err(|e| self.err(e))
        };
        for _ in 0..3 {
            run()?;
        }
        let mut samples = Vec::with_capacity(5);
        for _ in 0..5 {
            let (start, end) = (event()?, event()?);
            start.record(&self.stream).during("recording a timing event").map_err(|e| self.err(e))?;
            for _ in 0..iters {
                run()?;
            }
            end.record(&self.stream).during("recording a timing event").map_err(|e| self.err(e))?;
            end.synchronize().during("waiting for a timing event").map_err(|e| self.err(e))?;
            let ms = start.elapsed_ms(&end).during("reading a timing event").map_err(|e| self.err(e))? as f64;
            samples.push(ms / iters.max(1) as f64);
        }
        samples.sort_by(f64::total_cmp);
        Ok(samples[samples.len() / 2])
    }

    /// Times the heuristic's first `candidates` algorithms for `shape` ([`Self::median_ms`] each).
    pub fn bench_gemm(&self, shape: GemmShape, candidates: usize, iters: usize) -> Result<Vec<GemmTiming>> {
        let GemmShape { m, n, k, bias, accumulate } = shape;
        let a = self.bench_noise(m * k, 1)?;
        let b = self.bench_noise(n * k, 2)?;
        let c = self.bench_noise(m * n, 3)?;
        let bias_buf = self.bench_noise(n, 4)?;
        let mut g = Gemm::linear(m, n, k, self.ptr(&a), self.ptr(&b), self.ptr(&c));
        g.accumulate = accumulate;
        if bias {
            g.epilogue = Epilogue::Bias(self.ptr(&bias_buf));
        }
        let algorithms = self.blas.algorithms(&g, candidates).map_err(|e| self.err(e))?;
        let mut timings = Vec::with_capacity(algorithms.len());
        for (rank, algorithm) in algorithms.iter().enumerate() {
            let median_ms = self.median_ms(iters, || self.blas.gemm_with(&g, algorithm).map_err(|e| self.err(e)))?;
            timings.push(GemmTiming {
                rank,
                median_ms,
                tflops: 2.0 * (m * n * k) as f64 / (median_ms * 1e-3) / 1e12,
                waves: algorithm.waves,
                config: algorithm.config(),
            });
        }
        Ok(timings)
    }

    /// Times every path that can compute `d` ([`Self::conv_paths`]) with bias, [`Self::median_ms`]
    /// each.
    pub fn bench_conv(&self, d: ConvDims, iters: usize) -> Result<Vec<ConvTiming>> {
        let [t, h, w] = d.output();
        let x = self.bench_noise(d.input.iter().product::<usize>() * d.c_in, 1)?;
        let weights = self.bench_noise(d.c_out * d.taps() * d.c_in, 2)?;
        let bias = self.bench_noise(d.c_out, 3)?;
        let mut out = self.bench_noise(t * h * w * d.c_out, 4)?;
        let chosen = self.conv_path(&d);
        let paths = self.conv_paths(&d);
        let flops = 2.0 * (t * h * w) as f64 * (d.taps() * d.c_in * d.c_out) as f64;
        let mut timings = Vec::with_capacity(paths.len());
        for path in paths {
            let median_ms = self.median_ms(iters, || {
                self.conv3d_on_path(path, &mut out, &x, &weights, Some(&bias), d, Write::Overwrite)
            })?;
            timings.push(ConvTiming {
                path,
                chosen: path == chosen,
                median_ms,
                tflops: flops / (median_ms * 1e-3) / 1e12,
            });
        }
        Ok(timings)
    }
}
