//! CUDA driver, NVRTC and cuBLASLt failures, with the op that hit them; converted into the
//! library's `Error::Device` so they reach the artist as "device `cuda:0`: ...".

use cudarc::cublaslt::result::CublasError;
use cudarc::driver::DriverError;

#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    #[error("no NVIDIA driver (libcuda) could be loaded on this machine: install the NVIDIA driver, or choose the CPU device")]
    NoDriver,
    #[error("cuBLASLt (libcublasLt.so.13) could not be loaded: install the CUDA 13 runtime libraries (or put them on LD_LIBRARY_PATH)")]
    NoCublasLt,
    #[error("no CUDA device {ordinal}: this machine has {count}")]
    NoDevice { ordinal: usize, count: i32 },
    #[error("{op}: CUDA driver error {source}")]
    Driver {
        op: &'static str,
        #[source]
        source: DriverError,
    },
    #[error("{op}: cuBLASLt error {source:?}")]
    Blas { op: &'static str, source: CublasError },
    #[error("compiling kernels `{module}` with NVRTC: {log}")]
    Nvrtc { module: String, log: String },
    #[error("kernel `{name}` is not in the embedded kernel images (build.rs and kernels/ disagree)")]
    MissingKernel { name: String },
    #[error("{0}")]
    Unsupported(String),
}

pub(crate) trait DriverContext<T> {
    fn during(self, op: &'static str) -> Result<T, CudaError>;
}

impl<T> DriverContext<T> for Result<T, DriverError> {
    fn during(self, op: &'static str) -> Result<T, CudaError> {
        self.map_err(|source| CudaError::Driver { op, source })
    }
}

impl<T> DriverContext<T> for Result<T, CublasError> {
    fn during(self, op: &'static str) -> Result<T, CudaError> {
        self.map_err(|source| CudaError::Blas { op, source })
    }
}
