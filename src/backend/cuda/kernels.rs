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

/// Modules built for one architecture alone (build.rs `ARCH_SPECIFIC`): (module, the compute
/// capability they run on, NVRTC's architecture for them). Skipped on every other device.
const ARCH_SPECIFIC: &[(&str, (i32, i32), &str)] = &[("conv_wgmma", (9, 0), "compute_90a")];

/// Entry points of the `ARCH_SPECIFIC` modules: present only on their devices ([`Kernels::has`]).
pub(super) const SM90_ENTRY_POINTS: &[&str] =
    &["conv3d_wgmma_m128_n256_bf16", "conv3d_wgmma_m256_n128_bf16", "conv3d_wgmma_m128_n128_bf16"];

pub(super) const ENTRY_POINTS: &[&str] = &[
    "rms_norm_bf16",
    "rms_norm_narrow_bf16",
    "rms_norm_wide_bf16",
    "rms_norm_f32_input_bf16",
    "rms_norm_narrow_f32_input_bf16",
    "add_f32_bf16",
    "normed_residual_f32_bf16",
    "group_norm_partials_bf16",
    "group_norm_stats",
    "group_norm_apply_bf16",
    "ada_layer_norm_bf16",
    "ada_layer_norm_wide_bf16",
    "gated_residual_bf16",
    "activation_bf16",
    "linear_attn_inv_rms_bf16",
    "linear_attn_state_bf16",
    "linear_attn_output_bf16",
    "linear_attn_reduce_state",
    "cross_attention_bf16",
    "depthwise3x3_glu_bf16",
    "depthwise3x3_glu_any_bf16",
    "temporal_shift_bf16",
    "gather_rows_bf16",
    "gather_rows_f32_bf16",
    "rope_rotate_half_bf16",
    "causal_attention_bf16",
    "binary_bf16",
    "table_to_tensor_bf16",
    "guided_velocity_f32",
    "lincomb_f32",
    "patchify_bf16",
    "unpatchify_bf16",
    "im2col_bf16",
    "conv3d_igemm_m128_n64_k32_bf16",
    "conv3d_igemm_m128_n96_k32_bf16",
    "conv3d_igemm_m128_n128_k32_bf16",
    "conv3d_igemm_m128_n64_k64_bf16",
    "conv3d_igemm_m128_n96_k64_bf16",
    "conv3d_igemm_m128_n128_k64_bf16",
    "conv3d_igemm_m128_n64_k16_bf16",
    "conv3d_igemm_m128_n96_k16_bf16",
    "conv3d_igemm_m128_n128_k16_bf16",
    "conv3d_igemm_m256_n64_k64_bf16",
    "conv3d_igemm_m256_n96_k64_bf16",
    "conv3d_igemm_m256_n128_k64_bf16",
    "conv3d_halo_m128_n64_k32_bf16",
    "conv3d_halo_m128_n96_k32_bf16",
    "conv3d_halo_m128_n128_k32_bf16",
    "softmax_rows_bf16",
    "space_to_depth_bf16",
    "depth_to_space_bf16",
];

impl Kernels {
    pub fn load(ctx: &Arc<CudaContext>) -> Result<Self, CudaError> {
        let (major, minor) = ctx.compute_capability().during("reading compute capability")?;
        let mut modules = Vec::new();
        for (name, image) in KERNEL_IMAGES {
            let specific = ARCH_SPECIFIC.iter().find(|(m, ..)| m == name);
            if specific.is_some_and(|&(_, cc, _)| cc != (major, minor)) {
                continue;
            }
            let ptx = match image {
                KernelImage::Fatbin(bytes) => Ptx::from_binary(bytes.to_vec()),
                KernelImage::Source(src) => {
                    let arch = specific.map_or(format!("compute_{major}{minor}"), |&(.., arch)| arch.to_string());
                    compile_with_nvrtc(&arch, name, src)?
                }
            };
            modules.push(ctx.load_module(ptx).during("loading kernel module")?);
        }
        let find = |entry: &str| modules.iter().find_map(|m| m.load_function(entry).ok());
        let mut functions = HashMap::new();
        for &entry in ENTRY_POINTS {
            let f = find(entry).ok_or_else(|| CudaError::MissingKernel { name: entry.to_string() })?;
            functions.insert(entry, f);
        }
        for &entry in SM90_ENTRY_POINTS {
            if let Some(f) = find(entry) {
                functions.insert(entry, f);
            }
        }
        Ok(Kernels { functions })
    }

    /// Whether `name` was loaded: always for [`ENTRY_POINTS`], on their devices for the
    /// architecture-specific ones.
    pub fn has(&self, name: &str) -> bool {
        self.functions.contains_key(name)
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

/// NVRTC fallback: the headers are inlined (NVRTC has no include path to kernels/), params.h,
/// common.cuh and conv.cuh in that order; cuda_bf16.h and mma.h come from the CUDA installation
/// (`CUDA_HOME`, `CUDA_PATH`, /usr/local/cuda).
fn compile_with_nvrtc(arch: &str, name: &str, src: &str) -> Result<Ptx, CudaError> {
    let strip = |s: &str| -> String {
        s.lines().filter(|l| !l.trim_start().starts_with("#include \"")).collect::<Vec<_>>().join("\n")
    };
    let full = format!("{}\n{}\n{}\n{}", strip(PARAMS_H), strip(COMMON_CUH), strip(CONV_CUH), strip(src));
    let mut include_paths = Vec::new();
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Ok(home) = std::env::var(var) {
            include_paths.push(format!("{home}/include"));
        }
    }
    include_paths.push("/usr/local/cuda/include".into());
    let opts = cudarc::nvrtc::CompileOptions {
        // cudarc wants a 'static arch string; one small leak per distinct architecture and module
        arch: Some(Box::leak(arch.to_string().into_boxed_str())),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The run-time compilation path (builds without nvcc) compiles every kernel, checked without
    /// a GPU wherever the NVRTC library is installed (CI installs it with nvcc).
    #[test]
    fn every_kernel_compiles_with_nvrtc() {
        // SAFETY: only probes whether the shared library can be loaded.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            eprintln!("skipped: no NVRTC library (libnvrtc.so.13) on this machine");
            return;
        }
        let mut ptx = String::new();
        for (name, src) in KERNEL_SOURCES {
            let arch = ARCH_SPECIFIC.iter().find(|(m, ..)| m == name).map_or("compute_90", |&(.., arch)| arch);
            let p = compile_with_nvrtc(arch, name, src).unwrap_or_else(|e| panic!("{e}"));
            ptx.push_str(&p.to_src());
        }
        for entry in ENTRY_POINTS.iter().chain(SM90_ENTRY_POINTS) {
            assert!(ptx.contains(&format!(".entry {entry}")), "NVRTC output lacks {entry}");
        }
    }
}
