//! The OpenFX plugin layer: two effects, SANA Base and SANA Refine, in one binary
//! (`SanaVideo.ofx`), over the `openfx` crate's sys bindings with a thin safe layer of our own
//! (spec/OFX.md, DESIGN.md §7). The engine knows nothing of this module.
//!
//! - `entry`: the exported entry points and the one action dispatcher (catch_unwind, messages)
//! - `suites`, `props`, `params`, `effect`, `image`: the host's suites, property sets,
//!   parameters, effect/clip handles and images, each behind typed errors
//! - `base`, `refine`: each effect's identity card, parameters, clips and non-render actions
//! - `render`: whole-clip generation per parameter hash, served frame by frame

pub(crate) mod base;
pub(crate) mod effect;
pub(crate) mod entry;
pub(crate) mod error;
pub(crate) mod image;
pub(crate) mod params;
pub(crate) mod pixels;
pub(crate) mod props;
pub(crate) mod refine;
pub(crate) mod render;
pub(crate) mod suites;
pub mod sys;

use std::ffi::c_int;

use sys::{kOfxImageEffectPluginApi, kOfxImageEffectPluginApiVersion, OfxPlugin};

static BASE: OfxPlugin = OfxPlugin {
    pluginApi: kOfxImageEffectPluginApi.as_ptr(),
    apiVersion: kOfxImageEffectPluginApiVersion as c_int,
    pluginIdentifier: base::IDENTIFIER.as_ptr(),
    pluginVersionMajor: base::VERSION.0,
    pluginVersionMinor: base::VERSION.1,
    setHost: Some(entry::set_host),
    mainEntry: Some(entry::base_main),
};

static REFINE: OfxPlugin = OfxPlugin {
    pluginApi: kOfxImageEffectPluginApi.as_ptr(),
    apiVersion: kOfxImageEffectPluginApiVersion as c_int,
    pluginIdentifier: refine::IDENTIFIER.as_ptr(),
    pluginVersionMajor: refine::VERSION.0,
    pluginVersionMinor: refine::VERSION.1,
    setHost: Some(entry::set_host),
    mainEntry: Some(entry::refine_main),
};

/// Number of effects in the binary (OFX entry point).
#[no_mangle]
pub extern "C" fn OfxGetNumberOfPlugins() -> c_int {
    2
}

/// The `nth` effect (OFX entry point); the host never writes through the pointer.
#[no_mangle]
pub extern "C" fn OfxGetPlugin(nth: c_int) -> *mut OfxPlugin {
    match nth {
        0 => &BASE as *const OfxPlugin as *mut OfxPlugin,
        1 => &REFINE as *const OfxPlugin as *mut OfxPlugin,
        _ => std::ptr::null_mut(),
    }
}
