//! The CUDA backend: bf16 activations and weights, f32 accumulation, one stream per engine,
//! cuBLASLt for the matrix products and our kernels (kernels/*.cu) for everything else.
//!
//! The driver is loaded at run time (cudarc `dynamic-loading`), so the library loads on machines
//! without NVIDIA software; `Cuda::new` then fails with a clear error instead.

pub mod bench;
mod blas;
mod conv;
mod cross_attn;
mod decoder;
pub mod error;
pub mod kernels;
mod linear;
mod linear_attn;
mod mix_ffn;
mod norm;
mod params;
mod patch;
pub mod profile;
mod sampler;
mod shuffle;

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaEvent, CudaSlice, CudaStream, DevicePtr, PinnedHostSlice};
use half::bf16;
use rayon::prelude::*;

use super::{
    Activation, AttnDims, Backend, Buffer, ConvDims, GridDims, LinearDims, Modulation, NormWeight, PatchDims,
    RopeTables, ShuffleDims, TokenDims, Write,
};
use crate::error::{Error, Result};
use blas::Blas;
pub use conv::ConvPath;
pub use error::CudaError;
use error::DriverContext;
use kernels::Kernels;
use params::DevPtr;

/// Values one rayon task converts between bf16 and f32 on the host.
const CONVERT_CHUNK: usize = 1 << 16;
/// Values per piece of a streamed copy (`download_pieces`, `upload_pieces`): through one page-locked
/// stage of this many bf16 values (16 MiB), so a 219 M-value clip needs neither a second
/// full-size host buffer nor the driver's slower pageable path.
const STAGE_VALUES: usize = 8 << 20;
/// Below this many values a streamed copy is one plain copy (the stage would not pay).
const STREAM_MIN_VALUES: usize = 1 << 16;

/// The streamed copies' page-locked stage and f32 piece buffer ([`Cuda::with_staging`]).
#[derive(Default)]
struct Staging {
    pinned: Option<PinnedHostSlice<bf16>>,
    values: Vec<f32>,
}

/// The piece length of a streamed copy: the largest multiple of `align` within `STAGE_VALUES`,
/// at least `align`.
fn staged_piece(align: usize) -> usize {
    let align = align.max(1);
    (STAGE_VALUES / align).max(1) * align
}

/// dst[i] = f(src[i]) over the rayon pool, `CONVERT_CHUNK` values per task.
fn convert_in_parallel<S: Sync, D: Send>(src: &[S], dst: &mut [D], f: impl Fn(&S) -> D + Sync) {
    dst.par_chunks_mut(CONVERT_CHUNK).zip(src.par_chunks(CONVERT_CHUNK)).for_each(|(d, s)| {
        for (d, s) in d.iter_mut().zip(s) {
            *d = f(s);
        }
    });
}

impl Buffer for CudaSlice<bf16> {
    fn len(&self) -> usize {
        CudaSlice::len(self)
    }
}

impl Buffer for CudaSlice<f32> {
    fn len(&self) -> usize {
        CudaSlice::len(self)
    }
}

pub struct Cuda {
    ordinal: usize,
    name: String,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: Blas,
    kernels: Kernels,
    profiler: profile::Profiler,
    /// Dynamic shared memory one block may opt in to (227 KB on sm_90, 99 KB on sm_86/89).
    max_block_smem: usize,
    /// Streaming multiprocessors: grids are sized in whole waves of resident blocks.
    sm_count: usize,
    staging: parking_lot::Mutex<Staging>,
}

impl Cuda {
    /// Opens device `ordinal`, loads the kernels and cuBLASLt.
    pub fn new(ordinal: usize) -> Result<Self> {
        Self::open(ordinal).map_err(|e| device_error(ordinal, e))
    }

    fn open(ordinal: usize) -> std::result::Result<Self, CudaError> {
        // SAFETY: only probes whether the shared libraries can be loaded.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(CudaError::NoDriver);
        }
        if !unsafe { cudarc::cublaslt::sys::is_culib_present() } {
            return Err(CudaError::NoCublasLt);
        }
        let count = CudaContext::device_count().during("counting CUDA devices")?;
        if ordinal as i32 >= count {
            return Err(CudaError::NoDevice { ordinal, count });
        }
        let ctx = CudaContext::new(ordinal).during("creating the CUDA context")?;
        // One stream, ordered by construction: cudarc's per-buffer event tracking is not needed
        // and would get in the way of graph capture.
        // SAFETY: every buffer of this backend is used on `stream` only.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().during("creating the engine stream")?;
        keep_pool_memory(&ctx)?;
        let name = format!("cuda:{ordinal} ({})", ctx.name().during("reading the device name")?);
        let blas = Blas::new(stream.clone())?;
        let kernels = Kernels::load(&ctx)?;
        let smem_attr = cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN;
        let max_block_smem = ctx.attribute(smem_attr).during("reading the shared-memory limit")? as usize;
        let sm_attr = cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT;
        let sm_count = ctx.attribute(sm_attr).during("reading the multiprocessor count")? as usize;
        let profiler = profile::Profiler::from_env();
        Ok(Cuda {
            ordinal,
            name,
            ctx,
            stream,
            blas,
            kernels,
            profiler,
            max_block_smem,
            sm_count,
            staging: Default::default(),
        })
    }

    /// Waits for all queued work (pipeline boundaries, timing).
    pub fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().during("synchronizing the stream").map_err(|e| self.err(e))
    }

    /// (free, total) device memory in bytes.
    pub fn memory(&self) -> Result<(usize, usize)> {
        self.ctx.mem_get_info().during("reading device memory").map_err(|e| self.err(e))
    }

    /// High-water mark of device memory taken from the stream-ordered pool (weights,
    /// activations, scratch, cuBLASLt workspace) since the last `reset_peak_memory`.
    pub fn peak_memory(&self) -> Result<usize> {
        pool_attribute(&self.ctx, cudarc::driver::sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH, None)
            .map(|v| v as usize)
            .map_err(|e| self.err(e))
    }

    pub fn reset_peak_memory(&self) -> Result<()> {
        pool_attribute(&self.ctx, cudarc::driver::sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH, Some(0))
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// cuBLASLt heuristic queries so far (each distinct product shape should cost one).
    pub fn heuristic_queries(&self) -> usize {
        self.blas.heuristic_queries.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    fn err(&self, e: CudaError) -> Error {
        device_error(self.ordinal, e)
    }

    fn ptr<T>(&self, s: &CudaSlice<T>) -> DevPtr {
        let (p, _guard) = s.device_ptr(&self.stream);
        p
    }

    /// Scratch memory from the stream's pool (cuMemAllocAsync: no device-wide sync, reused).
    fn scratch<T: cudarc::driver::DeviceRepr>(&self, len: usize) -> Result<CudaSlice<T>> {
        // SAFETY: scratch is fully written by the kernel that uses it before it is read.
        unsafe { self.stream.alloc::<T>(len.max(1)) }.during("allocating scratch").map_err(|e| self.err(e))
    }

    /// Runs `f` on the streamed-copy staging (a page-locked bf16 stage and an f32 piece buffer,
    /// both at least `piece` long), allocating or growing it first. Kept between calls: a fresh
    /// cuMemHostAlloc and fresh page faults per copy cost milliseconds a denoising step. `f` must
    /// not start another streamed copy (the staging is locked while it runs).
    fn with_staging<T>(&self, piece: usize, f: impl FnOnce(&mut [bf16], &mut [f32]) -> Result<T>) -> Result<T> {
        let mut staging = self.staging.lock();
        let Staging { pinned, values } = &mut *staging;
        if pinned.as_ref().is_none_or(|p| p.len() < piece) {
            // free the old stage before pinning a larger one
            *pinned = None;
            // SAFETY: the stage is written (by a copy or a conversion) before any of it is read.
            // Flags 0: cached memory, not cudarc's default write-combined, which the CPU reads
            // back very slowly.
            let stage = unsafe { self.ctx.alloc_pinned_with_flags::<bf16>(piece.max(STAGE_VALUES), 0) }
                .during("allocating a page-locked copy stage")
                .map_err(|e| self.err(e))?;
            *pinned = Some(stage);
        }
        if values.len() < piece {
            values.resize(piece.max(STAGE_VALUES), 0.0);
        }
        let stage = match pinned.as_mut() {
            Some(stage) => stage.as_mut_slice().during("waiting for the copy stage").map_err(|e| self.err(e))?,
            None => unreachable!("the stage was allocated above"),
        };
        f(stage, values)
    }
}

/// The device's default stream-ordered pool keeps what it has reserved instead of returning it
/// at every synchronisation, so a denoising loop reuses the same memory without driver calls
/// (an arena in effect, sized by the first step).
fn keep_pool_memory(ctx: &Arc<CudaContext>) -> std::result::Result<(), CudaError> {
    pool_attribute(ctx, cudarc::driver::sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, Some(u64::MAX))
        .map(|_| ())
}

/// Reads (value None) or writes a u64 attribute of the device's default memory pool.
fn pool_attribute(
    ctx: &Arc<CudaContext>,
    attr: cudarc::driver::sys::CUmemPool_attribute,
    value: Option<u64>,
) -> std::result::Result<u64, CudaError> {
    use cudarc::driver::sys;
    ctx.bind_to_thread().during("binding the CUDA context")?;
    let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
    let mut v = value.unwrap_or(0);
    // SAFETY: out-pointers to live locals; the attribute is a cuuint64_t for both used here.
    unsafe {
        sys::cuDeviceGetDefaultMemPool(&mut pool, ctx.cu_device()).result().during("reading the memory pool")?;
        match value {
            Some(_) => sys::cuMemPoolSetAttribute(pool, attr, &mut v as *mut u64 as _).result(),
            None => sys::cuMemPoolGetAttribute(pool, attr, &mut v as *mut u64 as _).result(),
        }
        .during("memory pool attribute")?;
    }
    Ok(v)
}

/// The bf16x2 kernels need an even channel count.
fn even(op: &'static str, what: &str, n: usize) -> Result<()> {
    if !n.is_multiple_of(2) {
        return Err(Error::shape(op, format!("{what} = {n} is odd; the CUDA kernels read channel pairs")));
    }
    Ok(())
}

fn device_error(ordinal: usize, e: CudaError) -> Error {
    Error::Device { device: format!("cuda:{ordinal}"), reason: e.to_string() }
}

impl Backend for Cuda {
    type Buf = CudaSlice<bf16>;
    type Table = CudaSlice<f32>;
    type Fence = CudaEvent;

    fn element_bytes(&self) -> usize {
        2
    }

    /// The device's free memory plus what the stream-ordered pool holds but does not use (the
    /// pool keeps freed memory: see `keep_pool_memory`); `None` if the driver cannot say.
    fn available_memory(&self) -> Option<usize> {
        use cudarc::driver::sys::CUmemPool_attribute as A;
        let (free, _) = self.memory().ok()?;
        let reserved = pool_attribute(&self.ctx, A::CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, None).ok()?;
        let used = pool_attribute(&self.ctx, A::CU_MEMPOOL_ATTR_USED_MEM_CURRENT, None).ok()?;
        Some(free.saturating_add(reserved.saturating_sub(used) as usize))
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn alloc(&self, len: usize) -> Result<CudaSlice<bf16>> {
        self.scratch(len)
    }

    // The bf16 <-> f32 conversions run in parallel: a decoded 704×1280×81 clip is 219 M values.
    fn upload(&self, host: &[f32]) -> Result<CudaSlice<bf16>> {
        let converted: Vec<bf16> = host.par_iter().with_min_len(CONVERT_CHUNK).map(|&v| bf16::from_f32(v)).collect();
        self.stream.clone_htod(&converted).during("uploading").map_err(|e| self.err(e))
    }

    fn download(&self, buf: &CudaSlice<bf16>) -> Result<Vec<f32>> {
        let host = self.stream.clone_dtoh(buf).during("downloading").map_err(|e| self.err(e))?;
        Ok(host.par_iter().with_min_len(CONVERT_CHUNK).map(|v| v.to_f32()).collect())
    }

    fn download_pieces(
        &self,
        buf: &CudaSlice<bf16>,
        align: usize,
        visit: &mut dyn FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<()> {
        let len = buf.len();
        if len < STREAM_MIN_VALUES {
            return visit(0, &self.download(buf)?);
        }
        let piece = staged_piece(align).min(len);
        self.with_staging(piece, |pinned, values| {
            for start in (0..len).step_by(piece) {
                let n = piece.min(len - start);
                let host = &mut pinned[..n];
                self.stream
                    .memcpy_dtoh(&buf.slice(start..start + n), host)
                    .during("downloading")
                    .map_err(|e| self.err(e))?;
                // a plain slice of page-locked memory: the copy is truly asynchronous, so wait
                self.synchronize()?;
                convert_in_parallel(host, &mut values[..n], |v| v.to_f32());
                visit(start, &values[..n])?;
            }
            Ok(())
        })
    }

    fn upload_pieces(
        &self,
        len: usize,
        align: usize,
        fill: &mut dyn FnMut(usize, &mut [f32]) -> Result<()>,
    ) -> Result<CudaSlice<bf16>> {
        if len < STREAM_MIN_VALUES {
            let mut host = vec![0.0; len];
            fill(0, &mut host)?;
            return self.upload_vec(host);
        }
        let mut out = self.alloc(len)?;
        let piece = staged_piece(align).min(len);
        self.with_staging(piece, |pinned, values| {
            for start in (0..len).step_by(piece) {
                let n = piece.min(len - start);
                fill(start, &mut values[..n])?;
                convert_in_parallel(&values[..n], &mut pinned[..n], |&v| bf16::from_f32(v));
                let mut dst = out.slice_mut(start..start + n);
                self.stream.memcpy_htod(&pinned[..n], &mut dst).during("uploading").map_err(|e| self.err(e))?;
                // the stage is refilled next: wait for the (truly asynchronous) copy out of it
                self.synchronize()?;
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn alloc_table(&self, len: usize) -> Result<CudaSlice<f32>> {
        self.scratch(len)
    }

    fn upload_table(&self, host: Vec<f32>) -> Result<CudaSlice<f32>> {
        self.stream.clone_htod(&host).during("uploading a table").map_err(|e| self.err(e))
    }

    fn download_table(&self, table: &CudaSlice<f32>) -> Result<Vec<f32>> {
        self.stream.clone_dtoh(table).during("downloading a table").map_err(|e| self.err(e))
    }

    fn linear(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        bias: Option<&CudaSlice<bf16>>,
        dims: LinearDims,
        act: Activation,
        write: Write,
    ) -> Result<()> {
        self.timed(
            || format!("linear {}x{}->{} {act:?}", dims.rows, dims.k, dims.n),
            || self.launch_linear(out, x, w, bias, dims, act, write).map_err(|e| self.err(e)),
        )
    }

    fn activation(&self, out: &mut CudaSlice<bf16>, x: &CudaSlice<bf16>, act: Activation) -> Result<()> {
        self.timed(
            || format!("activation {act:?}"),
            || self.launch_activation(self.ptr(out), self.ptr(x), out.len(), act).map_err(|e| self.err(e)),
        )
    }

    fn rms_norm(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        rows: usize,
        dim: usize,
        eps: f32,
        weight: NormWeight,
        act: Activation,
    ) -> Result<()> {
        self.timed(
            || format!("rms_norm {rows}x{dim}"),
            || self.launch_rms_norm(out, x, w, rows, dim, eps, weight.offset(), act).map_err(|e| self.err(e)),
        )
    }

    fn rms_norm_f32_input(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<f32>,
        w: &CudaSlice<bf16>,
        rows: usize,
        dim: usize,
        eps: f32,
        weight: NormWeight,
        act: Activation,
    ) -> Result<()> {
        self.timed(
            || format!("rms_norm_f32_input {rows}x{dim}"),
            || self.launch_rms_norm_f32_input(out, x, w, rows, dim, eps, weight.offset(), act).map_err(|e| self.err(e)),
        )
    }

    fn add_f32(&self, x: &mut CudaSlice<f32>, y: &CudaSlice<bf16>, write: Write) -> Result<()> {
        self.timed(|| format!("add_f32 {}", y.len()), || self.launch_add_f32(x, y, write).map_err(|e| self.err(e)))
    }

    fn normed_residual_f32(
        &self,
        x: &mut CudaSlice<f32>,
        y: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        rows: usize,
        dim: usize,
        eps: f32,
        weight: NormWeight,
    ) -> Result<()> {
        self.timed(
            || format!("normed_residual_f32 {rows}x{dim}"),
            || self.launch_normed_residual_f32(x, y, w, rows, dim, eps, weight.offset()).map_err(|e| self.err(e)),
        )
    }

    fn ada_layer_norm(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        m: &Modulation<Self>,
        shift: usize,
        scale: usize,
        dims: TokenDims,
        eps: f32,
    ) -> Result<()> {
        even("ada_layer_norm", "D", dims.d)?;
        self.timed(
            || "ada_layer_norm".into(),
            || self.launch_ada_layer_norm(out, x, m, shift, scale, dims, eps).map_err(|e| self.err(e)),
        )
    }

    fn gated_residual(
        &self,
        x: &mut CudaSlice<bf16>,
        y: &CudaSlice<bf16>,
        m: &Modulation<Self>,
        gate: usize,
        dims: TokenDims,
    ) -> Result<()> {
        even("gated_residual", "D", dims.d)?;
        self.timed(
            || "gated_residual".into(),
            || self.launch_gated_residual(x, y, m, gate, dims).map_err(|e| self.err(e)),
        )
    }

    fn relu_linear_attention(
        &self,
        out: &mut CudaSlice<bf16>,
        qkv: &CudaSlice<bf16>,
        norm_q: &CudaSlice<bf16>,
        norm_k: &CudaSlice<bf16>,
        rope: &RopeTables<Self>,
        dims: AttnDims,
        norm_eps: f32,
        attn_eps: f32,
    ) -> Result<()> {
        self.timed(
            || "relu_linear_attention".into(),
            || self.launch_linear_attention(out, qkv, norm_q, norm_k, rope, dims, norm_eps, attn_eps),
        )
    }

    fn cross_attention(
        &self,
        out: &mut CudaSlice<bf16>,
        q: &CudaSlice<bf16>,
        k: &CudaSlice<bf16>,
        v: &CudaSlice<bf16>,
        key_bias: &CudaSlice<f32>,
        dims: AttnDims,
    ) -> Result<()> {
        self.timed(
            || format!("cross_attention L={}", dims.l),
            || self.launch_cross_attention(out, q, k, v, key_bias, dims),
        )
    }

    fn depthwise3x3_glu(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        bias: &CudaSlice<bf16>,
        dims: GridDims,
    ) -> Result<()> {
        even("depthwise3x3_glu", "F", dims.c)?;
        self.timed(
            || "depthwise3x3_glu".into(),
            || self.launch_depthwise3x3_glu(out, x, w, bias, dims).map_err(|e| self.err(e)),
        )
    }

    fn point_temporal_residual(
        &self,
        out: &mut CudaSlice<bf16>,
        glu: &CudaSlice<bf16>,
        p: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        f: usize,
        dims: GridDims,
    ) -> Result<()> {
        self.timed(
            || "point_temporal_residual".into(),
            || self.launch_point_temporal_residual(out, glu, p, w, f, dims).map_err(|e| self.err(e)),
        )
    }

    fn gather_rows(
        &self,
        out: &mut CudaSlice<bf16>,
        table: &CudaSlice<bf16>,
        ids: &[u32],
        dim: usize,
        scale: f32,
    ) -> Result<()> {
        self.timed(
            || "gather_rows".into(),
            || self.launch_gather_rows(out, table, ids, dim, scale).map_err(|e| self.err(e)),
        )
    }

    fn gather_rows_f32(
        &self,
        out: &mut CudaSlice<f32>,
        table: &CudaSlice<bf16>,
        ids: &[u32],
        dim: usize,
        scale: f32,
    ) -> Result<()> {
        self.timed(
            || "gather_rows_f32".into(),
            || self.launch_gather_rows_f32(out, table, ids, dim, scale).map_err(|e| self.err(e)),
        )
    }

    fn rope_rotate_half(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        rope: &RopeTables<Self>,
        dims: AttnDims,
    ) -> Result<()> {
        self.timed(
            || "rope_rotate_half".into(),
            || self.launch_rope_rotate_half(out, x, rope, dims).map_err(|e| self.err(e)),
        )
    }

    fn causal_attention(
        &self,
        out: &mut CudaSlice<bf16>,
        q: &CudaSlice<bf16>,
        k: &CudaSlice<bf16>,
        v: &CudaSlice<bf16>,
        key_mask: &CudaSlice<f32>,
        dims: AttnDims,
        kv_heads: usize,
        scale: f32,
        softcap: Option<f32>,
        window: Option<usize>,
    ) -> Result<()> {
        self.timed(
            || format!("causal_attention L={}", dims.n),
            || self.launch_causal_attention(out, q, k, v, key_mask, dims, kv_heads, scale, softcap, window),
        )
    }

    fn multiply(&self, out: &mut CudaSlice<bf16>, a: &CudaSlice<bf16>, b: &CudaSlice<bf16>) -> Result<()> {
        let (o, a, b, len) = (self.ptr(out), self.ptr(a), self.ptr(b), out.len());
        self.timed(|| "multiply".into(), || self.launch_binary(o, a, b, len, 0).map_err(|e| self.err(e)))
    }

    fn add(&self, x: &mut CudaSlice<bf16>, y: &CudaSlice<bf16>) -> Result<()> {
        let (o, y, len) = (self.ptr(x), self.ptr(y), x.len());
        self.timed(|| "add".into(), || self.launch_binary(o, o, y, len, 1).map_err(|e| self.err(e)))
    }

    fn conv3d(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        w: &CudaSlice<bf16>,
        bias: Option<&CudaSlice<bf16>>,
        dims: ConvDims,
        write: Write,
    ) -> Result<()> {
        self.timed(
            || format!("conv3d {:?}x{}->{} k{:?} up{}", dims.input, dims.c_in, dims.c_out, dims.kernel, dims.upsample),
            || self.launch_conv3d(out, x, w, bias, dims, write).map_err(|e| self.err(e)),
        )
    }

    fn fence(&self) -> Result<CudaEvent> {
        let event = self
            .ctx
            .new_event(Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DISABLE_TIMING))
            .during("creating a fence")
            .map_err(|e| self.err(e))?;
        event.record(&self.stream).during("recording a fence").map_err(|e| self.err(e))?;
        Ok(event)
    }

    fn wait(&self, fence: &CudaEvent) -> Result<()> {
        fence.synchronize().during("waiting for a fence").map_err(|e| self.err(e))
    }

    fn table_to_tensor(&self, out: &mut CudaSlice<bf16>, x: &CudaSlice<f32>) -> Result<()> {
        self.timed(|| "table_to_tensor".into(), || self.launch_table_to_tensor(out, x).map_err(|e| self.err(e)))
    }

    fn guided_velocity(&self, out: &mut CudaSlice<f32>, model_out: &CudaSlice<bf16>, scale: f32) -> Result<()> {
        self.timed(
            || "guided_velocity".into(),
            || self.launch_guided_velocity(out, model_out, scale).map_err(|e| self.err(e)),
        )
    }

    fn lincomb_tables(&self, out: &mut CudaSlice<f32>, keep: f32, terms: &[(f32, &CudaSlice<f32>)]) -> Result<()> {
        self.timed(|| "lincomb_tables".into(), || self.launch_lincomb(out, keep, terms).map_err(|e| self.err(e)))
    }

    fn copy_table_range(
        &self,
        dst: &mut CudaSlice<f32>,
        dst_offset: usize,
        src: &CudaSlice<f32>,
        src_offset: usize,
        len: usize,
    ) -> Result<()> {
        self.copy_device_range(dst, dst_offset, src, src_offset, len).map_err(|e| self.err(e))
    }

    fn copy_range(
        &self,
        dst: &mut CudaSlice<bf16>,
        dst_offset: usize,
        src: &CudaSlice<bf16>,
        src_offset: usize,
        len: usize,
    ) -> Result<()> {
        self.copy_device_range(dst, dst_offset, src, src_offset, len).map_err(|e| self.err(e))
    }

    fn group_norm(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        gamma: &CudaSlice<bf16>,
        beta: &CudaSlice<bf16>,
        positions: usize,
        channels: usize,
        groups: usize,
        eps: f32,
        act: Activation,
    ) -> Result<()> {
        if groups > norm::GROUP_NORM_MAX_GROUPS {
            let max = norm::GROUP_NORM_MAX_GROUPS;
            return Err(Error::shape("group_norm (cuda)", format!("{groups} groups: the kernel takes at most {max}")));
        }
        self.timed(
            || format!("group_norm {positions}x{channels}/{groups}"),
            || {
                self.launch_group_norm(out, x, gamma, beta, positions, channels, groups, eps, act)
                    .map_err(|e| self.err(e))
            },
        )
    }

    fn patchify(&self, out: &mut CudaSlice<bf16>, x: &CudaSlice<bf16>, dims: PatchDims) -> Result<()> {
        self.launch_patch("patchify_bf16", out, x, dims).map_err(|e| self.err(e))
    }

    fn unpatchify(&self, out: &mut CudaSlice<bf16>, x: &CudaSlice<bf16>, dims: PatchDims) -> Result<()> {
        self.launch_patch("unpatchify_bf16", out, x, dims).map_err(|e| self.err(e))
    }

    fn space_to_depth(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        dims: ShuffleDims,
        group: usize,
    ) -> Result<()> {
        self.timed(
            || format!("space_to_depth {:?}x{} /{:?}", dims.fine, dims.c, dims.factors),
            || self.launch_shuffle("space_to_depth_bf16", out, x, dims, group).map_err(|e| self.err(e)),
        )
    }

    fn depth_to_space(
        &self,
        out: &mut CudaSlice<bf16>,
        x: &CudaSlice<bf16>,
        dims: ShuffleDims,
        repeat: usize,
    ) -> Result<()> {
        self.timed(
            || format!("depth_to_space {:?}x{} *{:?}", dims.fine, dims.c, dims.factors),
            || self.launch_shuffle("depth_to_space_bf16", out, x, dims, repeat).map_err(|e| self.err(e)),
        )
    }
}
