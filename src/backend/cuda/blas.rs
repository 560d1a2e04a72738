//! The one cuBLASLt wrapper: every large matrix product (projections, the FFN's 1×1 convs, the
//! temporal conv taps, the cross-attention score and value products) goes through [`Blas::gemm`].
//! It speaks row-major, checks alignment up front, sets the bias / GELU epilogue, and caches the
//! heuristic's algorithm per shape (llm.c `matmul_cublaslt` has the same shape).
//!
//! Every product is row-major C (m×n) = A (m×k) · Bᵀ with B (n×k) (the `nn.Linear` layout), which
//! is column-major Cᵀ (n×m) = B · Aᵀ: cuBLAS's first operand is our B, its second our A, and no
//! data moves.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Arc;

use cudarc::cublaslt::{result, sys};
use cudarc::driver::{CudaSlice, CudaStream, DevicePtr};
use parking_lot::Mutex;

use super::error::{CudaError, DriverContext};
use super::params::DevPtr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutType {
    Bf16,
    F32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Epilogue {
    None,
    /// + bias[n] (bf16)
    Bias(DevPtr),
    /// GELU_tanh(· + bias[n])
    GeluBias(DevPtr),
}

/// One (optionally strided-batched) product. Strides and leading dimensions in elements.
#[derive(Clone, Copy, Debug)]
pub struct Gemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: DevPtr,
    pub lda: usize,
    pub b: DevPtr,
    pub ldb: usize,
    pub c: DevPtr,
    pub ldc: usize,
    pub out: OutType,
    /// C ← A·op(B) (+ C when true)
    pub accumulate: bool,
    /// With `accumulate`: add this matrix instead of C's own contents, rows `ld_addend` apart
    /// (C's `ldc` when `None`).
    pub addend: Option<DevPtr>,
    pub ld_addend: Option<usize>,
    pub epilogue: Epilogue,
    pub batch: usize,
    pub stride_a: usize,
    pub stride_b: usize,
    pub stride_c: usize,
    /// B stored (k × n) row-major (a right-hand matrix as is, e.g. the values of attention)
    /// instead of the `nn.Linear` (n × k).
    pub b_is_k_by_n: bool,
}

impl Gemm {
    /// A single product with tightly packed rows.
    pub fn linear(m: usize, n: usize, k: usize, a: DevPtr, b: DevPtr, c: DevPtr) -> Self {
        Gemm {
            m,
            n,
            k,
            a,
            lda: k,
            b,
            ldb: k,
            c,
            ldc: n,
            out: OutType::Bf16,
            accumulate: false,
            addend: None,
            ld_addend: None,
            epilogue: Epilogue::None,
            batch: 1,
            stride_a: 0,
            stride_b: 0,
            stride_c: 0,
            b_is_k_by_n: false,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct AlgoKey {
    m: usize,
    n: usize,
    k: usize,
    lda: usize,
    ldb: usize,
    ldc: usize,
    ld_addend: usize,
    out: OutType,
    epilogue: u8,
    batch: usize,
    strides: [usize; 3],
    align: [u32; 3],
    b_is_k_by_n: bool,
}

const WORKSPACE_BYTES: usize = 32 << 20;

pub struct Blas {
    handle: sys::cublasLtHandle_t,
    workspace: CudaSlice<u8>,
    stream: Arc<CudaStream>,
    algos: Mutex<HashMap<AlgoKey, sys::cublasLtMatmulAlgo_t>>,
    /// Heuristic queries made (cache misses), for the profile report.
    pub heuristic_queries: std::sync::atomic::AtomicUsize,
}

// SAFETY: the handle is only used under the engine's single stream; cuBLASLt handles may be used
// from any thread as long as calls are not concurrent on one stream, which `Cuda` serialises.
unsafe impl Send for Blas {}
unsafe impl Sync for Blas {}

impl Drop for Blas {
    fn drop(&mut self) {
        // SAFETY: the handle was created by create_handle and is destroyed once.
        let _ = unsafe { result::destroy_handle(self.handle) };
    }
}

/// Largest power of two (≤ 256) dividing the address and every stride in bytes.
fn alignment(ptr: DevPtr, elem: usize, lds: &[usize]) -> u32 {
    let mut bytes = ptr | 256;
    for &ld in lds {
        bytes |= (ld * elem) as u64 | 256;
    }
    1u32 << bytes.trailing_zeros().min(8)
}

impl Blas {
    pub fn new(stream: Arc<CudaStream>) -> Result<Self, CudaError> {
        let handle = result::create_handle().during("creating the cuBLASLt handle")?;
        // SAFETY: uninitialised scratch for cuBLASLt, never read by us.
        let workspace = unsafe { stream.alloc::<u8>(WORKSPACE_BYTES) }.during("allocating the cuBLASLt workspace")?;
        Ok(Blas { handle, workspace, stream, algos: Mutex::new(HashMap::new()), heuristic_queries: Default::default() })
    }

    pub fn gemm(&self, g: &Gemm) -> Result<(), CudaError> {
        let plan = Plan::new(g)?;
        let cached = self.algos.lock().get(&plan.key).copied();
        let algo = match cached {
            Some(a) => a,
            None => {
                self.heuristic_queries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let found = self.heuristic(&plan, 1)?;
                let algo = found.first().ok_or(CudaError::Blas {
                    op: "cuBLASLt heuristic (no algorithm for this shape/alignment)",
                    source: result::CublasError(sys::cublasStatus_t::CUBLAS_STATUS_NOT_SUPPORTED),
                })?;
                self.algos.lock().insert(plan.key, algo.algo);
                algo.algo
            }
        };
        self.run(g, &plan, &algo)
    }

    /// The heuristic's first `count` algorithms for `g`, best first by its own estimate: for
    /// `sana bench gemm`, which times them against each other ([`Blas::gemm`] always takes the
    /// first, so that every machine with the same GPU and library computes the same sums).
    pub fn algorithms(&self, g: &Gemm, count: usize) -> Result<Vec<Algorithm>, CudaError> {
        let plan = Plan::new(g)?;
        Ok(self.heuristic(&plan, count)?.into_iter().map(|r| Algorithm { algo: r.algo, waves: r.wavesCount }).collect())
    }

    /// `g` with a given algorithm instead of the cached heuristic choice (benchmarks only).
    pub fn gemm_with(&self, g: &Gemm, algorithm: &Algorithm) -> Result<(), CudaError> {
        let plan = Plan::new(g)?;
        self.run(g, &plan, &algorithm.algo)
    }

    fn heuristic(&self, plan: &Plan, count: usize) -> Result<Vec<sys::cublasLtMatmulHeuristicResult_t>, CudaError> {
        let op = "cuBLASLt heuristic";
        // SAFETY: the preference is created and destroyed here; the descriptors are the plan's,
        // alive for this call; `results` has room for `count` entries.
        unsafe {
            let pref = result::create_matmul_pref().during(op)?;
            let set_pref =
                |attr, value: u64| result::set_matmul_pref_attribute(pref, attr, &value as *const u64 as _, 8);
            use sys::cublasLtMatmulPreferenceAttributes_t as P;
            set_pref(P::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, WORKSPACE_BYTES as u64).during(op)?;
            let set_align =
                |attr, value: u32| result::set_matmul_pref_attribute(pref, attr, &value as *const u32 as _, 4);
            let align = plan.key.align;
            set_align(P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align[1]).during(op)?;
            set_align(P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align[0]).during(op)?;
            set_align(P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align[2]).during(op)?;
            set_align(P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align[2]).during(op)?;
            let mut results = vec![std::mem::zeroed::<sys::cublasLtMatmulHeuristicResult_t>(); count.max(1)];
            let mut found = 0i32;
            let status = sys::cublasLtMatmulAlgoGetHeuristic(
                self.handle,
                plan.desc,
                plan.l1,
                plan.l2,
                plan.l_addend.unwrap_or(plan.lc),
                plan.lc,
                pref,
                results.len() as i32,
                results.as_mut_ptr(),
                &mut found,
            )
            .result();
            result::destroy_matmul_pref(pref).during(op)?;
            status.during(op)?;
            results.truncate(found.max(0) as usize);
            Ok(results)
        }
    }

    fn run(&self, g: &Gemm, plan: &Plan, algo: &sys::cublasLtMatmulAlgo_t) -> Result<(), CudaError> {
        let alpha = 1.0f32;
        let beta = if g.accumulate { 1.0f32 } else { 0.0f32 };
        let (ws, _ws_guard) = self.workspace.device_ptr(&self.stream);
        // SAFETY: the device pointers come from live buffers whose sizes the launchers checked
        // against m, n, k, leading dimensions and strides; the plan's descriptors describe them.
        unsafe {
            result::matmul(
                self.handle,
                plan.desc,
                &alpha as *const f32 as _,
                &beta as *const f32 as _,
                g.b as *const c_void,
                plan.l1,
                g.a as *const c_void,
                plan.l2,
                g.addend.unwrap_or(g.c) as *const c_void,
                plan.l_addend.unwrap_or(plan.lc),
                g.c as *mut c_void,
                plan.lc,
                algo,
                ws as *mut c_void,
                WORKSPACE_BYTES,
                self.stream.cu_stream() as _,
            )
            .during("cuBLASLt matmul")
        }
    }
}

/// One heuristic choice of cuBLASLt, as [`Blas::algorithms`] lists them.
#[derive(Clone, Copy)]
pub struct Algorithm {
    algo: sys::cublasLtMatmulAlgo_t,
    /// The heuristic's estimate of waves over the SMs.
    pub waves: f32,
}

impl Algorithm {
    /// (algorithm id, tile id, stages id, split-K, reduction scheme, CTA swizzling, cluster
    /// shape id): what tells two choices apart in a benchmark log.
    pub fn config(&self) -> [u32; 7] {
        use sys::cublasLtMatmulAlgoConfigAttributes_t as A;
        let get = |attr| {
            let mut v = 0u32;
            let mut written = 0usize;
            // SAFETY: reads one ≤ 4-byte attribute of a live algorithm struct into `v`.
            let status = unsafe {
                sys::cublasLtMatmulAlgoConfigGetAttribute(&self.algo, attr, &mut v as *mut u32 as _, 4, &mut written)
            };
            if status == sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
                v
            } else {
                u32::MAX
            }
        };
        [
            get(A::CUBLASLT_ALGO_CONFIG_ID),
            get(A::CUBLASLT_ALGO_CONFIG_TILE_ID),
            get(A::CUBLASLT_ALGO_CONFIG_STAGES_ID),
            get(A::CUBLASLT_ALGO_CONFIG_SPLITK_NUM),
            get(A::CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME),
            get(A::CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING),
            get(A::CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID),
        ]
    }
}

/// A product's cuBLASLt descriptors (operation and matrix layouts), destroyed on drop.
struct Plan {
    desc: sys::cublasLtMatmulDesc_t,
    l1: sys::cublasLtMatrixLayout_t,
    l2: sys::cublasLtMatrixLayout_t,
    lc: sys::cublasLtMatrixLayout_t,
    /// The addend's layout where its rows are spaced differently from the output's.
    l_addend: Option<sys::cublasLtMatrixLayout_t>,
    key: AlgoKey,
}

impl Drop for Plan {
    fn drop(&mut self) {
        // SAFETY: each descriptor was created by Plan::new and is destroyed once.
        unsafe {
            for l in [Some(self.l1), Some(self.l2), Some(self.lc), self.l_addend].into_iter().flatten() {
                if !l.is_null() {
                    let _ = result::destroy_matrix_layout(l);
                }
            }
            let _ = result::destroy_matmul_desc(self.desc);
        }
    }
}

impl Plan {
    fn new(g: &Gemm) -> Result<Self, CudaError> {
        let op = "cuBLASLt matmul descriptors";
        let bf16 = sys::cudaDataType::CUDA_R_16BF;
        // bf16 operands on the bf16 tensor cores, f32 accumulation
        let (in_type, in_elem, compute) = (bf16, 2, sys::cublasComputeType_t::CUBLAS_COMPUTE_32F);
        let out_type = match g.out {
            OutType::Bf16 => bf16,
            OutType::F32 => sys::cudaDataType::CUDA_R_32F,
        };
        let out_elem = if g.out == OutType::F32 { 4 } else { 2 };
        let ld_addend = g.ld_addend.unwrap_or(g.ldc);
        let align = [
            alignment(g.a, in_elem, &[g.lda, g.stride_a]),
            alignment(g.b, in_elem, &[g.ldb, g.stride_b]),
            alignment(g.c | g.addend.unwrap_or(0), out_elem, &[g.ldc, ld_addend, g.stride_c]),
        ];
        // cuBLAS operand 1 = our B, (n × k) row-major = column-major (k × n), transposed;
        // operand 2 = our A, (m × k) row-major = column-major (k × m), as is.
        // (k × n) row-major is column-major (n × k): used as is.
        let (op1_trans, op1_rows, op1_cols) = if g.b_is_k_by_n { (0i32, g.n, g.k) } else { (1i32, g.k, g.n) };
        let (epilogue, bias) = match g.epilogue {
            Epilogue::None => (sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_DEFAULT, 0),
            Epilogue::Bias(p) => (sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_BIAS, p),
            Epilogue::GeluBias(p) => (sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_GELU_BIAS, p),
        };
        let epi = epilogue as u32;
        let key = AlgoKey {
            m: g.m,
            n: g.n,
            k: g.k,
            lda: g.lda,
            ldb: g.ldb,
            ldc: g.ldc,
            ld_addend,
            out: g.out,
            epilogue: epi as u8,
            batch: g.batch,
            strides: [g.stride_a, g.stride_b, g.stride_c],
            align,
            b_is_k_by_n: g.b_is_k_by_n,
        };
        let null = std::ptr::null_mut();
        // SAFETY: descriptors are created here and owned by the plan (destroyed on drop, also
        // when a later step fails); attribute values point at locals that outlive each call.
        unsafe {
            let desc = result::create_matmul_desc(compute, sys::cudaDataType::CUDA_R_32F).during(op)?;
            let mut plan = Plan { desc, l1: null, l2: null, lc: null, l_addend: None, key };
            let set_desc =
                |attr, value: *const c_void, size| result::set_matmul_desc_attribute(desc, attr, value, size);
            let transb = 0i32;
            use sys::cublasLtMatmulDescAttributes_t as D;
            set_desc(D::CUBLASLT_MATMUL_DESC_TRANSA, &op1_trans as *const _ as _, 4).during(op)?;
            set_desc(D::CUBLASLT_MATMUL_DESC_TRANSB, &transb as *const _ as _, 4).during(op)?;
            set_desc(D::CUBLASLT_MATMUL_DESC_EPILOGUE, &epi as *const _ as _, 4).during(op)?;
            if bias != 0 {
                set_desc(D::CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias as *const _ as _, 8).during(op)?;
                let bias_type = bf16 as u32;
                set_desc(D::CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type as *const _ as _, 4).during(op)?;
            }
            let layout = |ty,
                          rows: usize,
                          cols: usize,
                          ld: usize,
                          stride: usize|
             -> Result<sys::cublasLtMatrixLayout_t, CudaError> {
                let l = result::create_matrix_layout(ty, rows as u64, cols as u64, ld as i64).during(op)?;
                if g.batch > 1 {
                    let count = g.batch as i32;
                    let stride = stride as i64;
                    use sys::cublasLtMatrixLayoutAttribute_t as L;
                    let set =
                        |attr, value: *const c_void, size| result::set_matrix_layout_attribute(l, attr, value, size);
                    let set_all = set(L::CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count as *const _ as _, 4)
                        .and_then(|_| set(L::CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride as *const _ as _, 8));
                    if let Err(e) = set_all {
                        let _ = result::destroy_matrix_layout(l);
                        return Err(e).during(op);
                    }
                }
                Ok(l)
            };
            plan.l1 = layout(in_type, op1_rows, op1_cols, g.ldb, g.stride_b)?;
            plan.l2 = layout(in_type, g.k, g.m, g.lda, g.stride_a)?;
            plan.lc = layout(out_type, g.n, g.m, g.ldc, g.stride_c)?;
            if ld_addend != g.ldc {
                plan.l_addend = Some(layout(out_type, g.n, g.m, ld_addend, g.stride_c)?);
            }
            Ok(plan)
        }
    }
}
