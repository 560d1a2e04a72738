//! The kernel images build.rs embedded (fatbins, or sources for NVRTC), loaded once per device,
//! and the launch helper every launcher uses.

use std::collections::HashMap;
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::Ptx;

use super::error::{CudaError, DriverContext};

pub enum KernelImage {
    /// Compiled by nvcc at build time for sm_80/86/89/90 (+ compute_90 PTX).
    Fatbin(&'static [u8]),
    /// Source text, compiled by NVRTC at first use (build machine had no nvcc).
    Source(&'static str),
}

include!(concat!(env!("OUT_DIR"), "/kernels.rs"));

/// Every `extern "C"` entry point, by name.
pub struct Kernels {
    functions: HashMap<&'static str, CudaFunction>,
}

const ENTRY_POINTS: &[&str] = &[
    "rms_norm_bf16",
    "ada_layer_norm_bf16",
    "gated_residual_bf16",
    "activation_bf16",
    "linear_attn_inv_rms_bf16",
    "linear_attn_features_bf16",
    "linear_attn_finish_bf16",
    "linear_attn_reduce_state",
    "cross_attention_bf16",
    "depthwise3x3_glu_bf16",
    "temporal_concat_bf16",
    "patchify_bf16",
    "unpatchify_bf16",
];

impl Kernels {
    pub fn load(ctx: &Arc<CudaContext>) -> Result<Self, CudaError> {
        let mut modules = Vec::new();
        for (name, image) in KERNEL_IMAGES {
            let ptx = match image {
                KernelImage::Fatbin(bytes) => Ptx::from_binary(bytes.to_vec()),
                KernelImage::Source(src) => compile_with_nvrtc(ctx, name, src)?,
            };
            modules.push(ctx.load_module(ptx).during("loading kernel module")?);
        }
        let mut functions = HashMap::new();
        for &entry in ENTRY_POINTS {
            let f = modules
                .iter()
                .find_map(|m| m.load_function(entry).ok())
                .ok_or_else(|| CudaError::MissingKernel { name: entry.to_string() })?;
            functions.insert(entry, f);
        }
        Ok(Kernels { functions })
    }

    pub fn get(&self, name: &'static str) -> Result<&CudaFunction, CudaError> {
        self.functions.get(name).ok_or_else(|| CudaError::MissingKernel { name: name.to_string() })
    }

    /// Launches `name` with its params struct as the single argument.
    pub fn launch<P: DeviceRepr>(
        &self,
        stream: &CudaStream,
        name: &'static str,
        cfg: LaunchConfig,
        params: &P,
    ) -> Result<(), CudaError> {
        let f = self.get(name)?;
        let mut builder = stream.launch_builder(f);
        builder.arg(params);
        // SAFETY: every kernel takes exactly one by-value params struct whose layout P mirrors
        // (params.rs); the launchers check sizes so the kernel stays within the buffers P names.
        unsafe { builder.launch(cfg) }.during(name)?;
        Ok(())
    }
}

/// NVRTC fallback: the headers are inlined (NVRTC has no include path to kernels/), cuda_bf16.h
/// comes from the CUDA installation NVRTC finds.
fn compile_with_nvrtc(ctx: &Arc<CudaContext>, name: &str, src: &str) -> Result<Ptx, CudaError> {
    let strip = |s: &str| -> String {
        s.lines().filter(|l| !l.trim_start().starts_with("#include \"")).collect::<Vec<_>>().join("\n")
    };
    let full = format!("{}\n{}\n{}", strip(PARAMS_H), strip(COMMON_CUH), strip(src));
    let (major, minor) = ctx.compute_capability().during("reading compute capability")?;
    let mut include_paths = Vec::new();
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Ok(home) = std::env::var(var) {
            include_paths.push(format!("{home}/include"));
        }
    }
    include_paths.push("/usr/local/cuda/include".into());
    let opts = cudarc::nvrtc::CompileOptions {
        arch: Some(Box::leak(format!("compute_{major}{minor}").into_boxed_str())),
        include_paths,
        options: vec!["-std=c++17".into()],
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(full, opts)
        .map_err(|e| CudaError::Nvrtc { module: name.to_string(), log: format!("{e:?}") })
}

/// Blocks of `threads` for a grid-stride loop over `total` elements (capped: each thread loops).
pub fn grid_stride(total: usize, threads: u32) -> LaunchConfig {
    let blocks = total.div_ceil(threads as usize).clamp(1, 132 * 32) as u32;
    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (threads, 1, 1), shared_mem_bytes: 0 }
}
