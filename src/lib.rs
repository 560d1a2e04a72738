//! sana-ofx: SANA-Video two-stage generation as a CPU/CUDA engine, an OpenFX plugin and the `sana`
//! CLI. See README.md for the map of modules.

pub mod backend;
pub mod engine;
pub mod error;
pub mod io;
pub mod ofx;
pub mod testing;

pub use error::{Error, Result};
