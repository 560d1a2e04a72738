//! The OFX 1.5 C API as the `openfx` crate's bindgen output has it, gathered in one namespace
//! (the crate's own umbrella module is private). Only `sys`: DESIGN.md §3 and spec/OFX.md say why
//! not its unstable `low` layer.

pub use openfx::sys::generic::core::*;
pub use openfx::sys::generic::property::*;
pub use openfx::sys::image_effect_v1::gpu_render::*;
pub use openfx::sys::image_effect_v1::image_effect::*;
pub use openfx::sys::image_effect_v1::memory::*;
pub use openfx::sys::image_effect_v1::message::*;
pub use openfx::sys::image_effect_v1::multi_thread::*;
pub use openfx::sys::image_effect_v1::param::*;
pub use openfx::sys::image_effect_v1::progress::*;
