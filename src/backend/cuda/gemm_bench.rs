//! `sana bench gemm`: every algorithm cuBLASLt's heuristic offers for a product shape, timed
//! against each other on the device. It answers whether the heuristic's first choice (the one
//! [`super::blas::Blas::gemm`] always takes) leaves speed behind; it changes nothing the engine
//! runs.

use cudarc::driver::sys::CUevent_flags;
use half::bf16;

use super::blas::{Epilogue, Gemm};
use super::error::DriverContext;
use super::Cuda;
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

impl Cuda {
    /// Times the heuristic's first `candidates` algorithms for `shape`: `iters` products per
    /// sample between two events, the median of 5 samples, after 3 warm-up products. Operands
    /// are filled with deterministic noise (not zeros: the tensor cores draw less power on zeros).
    pub fn bench_gemm(&self, shape: GemmShape, candidates: usize, iters: usize) -> Result<Vec<GemmTiming>> {
        let GemmShape { m, n, k, bias, accumulate } = shape;
        let noise = |len: usize, salt: u64| -> Result<cudarc::driver::CudaSlice<bf16>> {
            let mut state = salt;
            let host: Vec<bf16> = (0..len)
                .map(|_| {
                    let u = (crate::engine::weights::splitmix64(&mut state) >> 40) as f32 / (1u64 << 24) as f32;
                    bf16::from_f32(u - 0.5)
                })
                .collect();
            self.stream.clone_htod(&host).during("uploading benchmark operands").map_err(|e| self.err(e))
        };
        let a = noise(m * k, 1)?;
        let b = noise(n * k, 2)?;
        let c = noise(m * n, 3)?;
        let bias_buf = noise(n, 4)?;
        let mut g = Gemm::linear(m, n, k, self.ptr(&a), self.ptr(&b), self.ptr(&c));
        g.accumulate = accumulate;
        if bias {
            g.epilogue = Epilogue::Bias(self.ptr(&bias_buf));
        }
        let algorithms = self.blas.algorithms(&g, candidates).map_err(|e| self.err(e))?;
        let event = || self.ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).during("creating a timing event");
        let mut timings = Vec::with_capacity(algorithms.len());
        for (rank, algorithm) in algorithms.iter().enumerate() {
            let run = || self.blas.gemm_with(&g, algorithm).map_err(|e| self.err(e));
            for _ in 0..3 {
                run()?;
            }
            let mut samples = Vec::with_capacity(5);
            for _ in 0..5 {
                let (start, end) = (event().map_err(|e| self.err(e))?, event().map_err(|e| self.err(e))?);
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
            let median_ms = samples[samples.len() / 2];
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
}
