//! The host and its suites, fetched once on Load and shared by both effects. Some hosts call Load
//! more than once (MLT) and every host may reload us after Unload, so Load refetches and replaces
//! the table rather than assuming it is empty.

use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::Arc;

use parking_lot::RwLock;

use super::error::{OfxError, OfxResult};
use super::sys::*;

/// The `OfxHost` the host handed to `setHost`; valid while the binary is loaded.
struct HostPtr(*mut OfxHost);
// SAFETY: the OFX spec makes the host struct and its fetchSuite valid for the life of the
// binary and callable from any thread; we only read it.
unsafe impl Send for HostPtr {}
// SAFETY: as above.
unsafe impl Sync for HostPtr {}

static HOST: RwLock<Option<HostPtr>> = RwLock::new(None);
static SUITES: RwLock<Option<Arc<Suites>>> = RwLock::new(None);

/// Every suite we use. The first three are required; the others are optional in the spec and
/// absent in some hosts (one test host has no progress suite), so each is an `Option`.
pub struct Suites {
    pub prop: &'static OfxPropertySuiteV1,
    pub param: &'static OfxParameterSuiteV1,
    pub effect: &'static OfxImageEffectSuiteV1,
    // Fetched on Load as the brief for the bundle asks; nothing allocates through the host or
    // spawns host threads yet (our own locks and Rust allocation serve today's paths).
    #[allow(dead_code)]
    pub memory: Option<&'static OfxMemorySuiteV1>,
    pub message_v2: Option<&'static OfxMessageSuiteV2>,
    pub message_v1: Option<&'static OfxMessageSuiteV1>,
    pub progress_v2: Option<&'static OfxProgressSuiteV2>,
    pub progress_v1: Option<&'static OfxProgressSuiteV1>,
    #[allow(dead_code)] // see `memory`
    pub thread: Option<&'static OfxMultiThreadSuiteV1>,
}

// SAFETY: suite tables are immutable host-owned function tables valid while the binary is
// loaded, callable from any thread (OFX 1.4 "Suites" chapter).
unsafe impl Send for Suites {}
// SAFETY: as above.
unsafe impl Sync for Suites {}

/// `setHost`: store the pointer only; the spec forbids calling the host from inside it.
pub fn set_host(host: *mut OfxHost) {
    *HOST.write() = (!host.is_null()).then_some(HostPtr(host));
}

/// Load: fetch every suite (again, if Load comes twice).
pub fn load() -> OfxResult<()> {
    let suites = {
        let host = HOST.read();
        let host =
            host.as_ref().ok_or(OfxError::MissingSuite { suite: "host (setHost was not called)", version: 0 })?;
        // SAFETY: `host.0` is the non-null OfxHost given to setHost, valid while we are loaded.
        unsafe { fetch_all(&*host.0)? }
    };
    *SUITES.write() = Some(Arc::new(suites));
    Ok(())
}

/// The suites fetched on Load.
pub fn suites() -> OfxResult<Arc<Suites>> {
    SUITES.read().clone().ok_or(OfxError::MissingSuite { suite: "any (the Load action was not called)", version: 0 })
}

/// SAFETY: `host` must be a valid OfxHost whose fetchSuite returns suites of the asked layout.
unsafe fn fetch_all(host: &OfxHost) -> OfxResult<Suites> {
    let fetch = host.fetchSuite.ok_or(OfxError::MissingFunction { suite: "host", function: "fetchSuite" })?;
    let get = |name: &CStr, version: i32| -> *const c_void {
        // SAFETY: fetchSuite with the host's own handle, as the spec requires.
        unsafe { fetch(host.host, name.as_ptr(), version) }
    };
    // SAFETY (all casts below): a non-null result of fetchSuite(name, version) points to that
    // suite's struct, which lives while the binary is loaded.
    let optional = |name: &CStr, version: i32| get(name, version);
    let required = |name: &'static CStr, version: i32| -> OfxResult<*const c_void> {
        let p = get(name, version);
        if p.is_null() {
            return Err(OfxError::MissingSuite { suite: name.to_str().unwrap_or("?"), version });
        }
        Ok(p)
    };
    let prop = &*(required(kOfxPropertySuite, 1)? as *const OfxPropertySuiteV1);
    Ok(Suites {
        prop,
        param: &*(required(kOfxParameterSuite, 1)? as *const OfxParameterSuiteV1),
        effect: &*(required(kOfxImageEffectSuite, 1)? as *const OfxImageEffectSuiteV1),
        memory: (optional(kOfxMemorySuite, 1) as *const OfxMemorySuiteV1).as_ref(),
        message_v2: (optional(kOfxMessageSuite, 2) as *const OfxMessageSuiteV2).as_ref(),
        message_v1: (optional(kOfxMessageSuite, 1) as *const OfxMessageSuiteV1).as_ref(),
        progress_v2: (optional(kOfxProgressSuite, 2) as *const OfxProgressSuiteV2).as_ref(),
        progress_v1: (optional(kOfxProgressSuite, 1) as *const OfxProgressSuiteV1).as_ref(),
        thread: (optional(kOfxMultiThreadSuite, 1) as *const OfxMultiThreadSuiteV1).as_ref(),
    })
}

/// Severity of a message on the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl Suites {
    /// A persistent message on the node (message suite V2); hosts without it, or with a NULL
    /// `setPersistentMessage` (Resolve 14 advertised V2 that way), get a V1 message instead.
    /// Failing to show a message is not itself an error worth failing a render over.
    pub fn set_persistent_message(&self, instance: *mut c_void, severity: Severity, text: &str) {
        let kind = match severity {
            Severity::Error => kOfxMessageError,
            Severity::Warning => kOfxMessageWarning,
        };
        let text = CString::new(text.replace('\0', " ")).unwrap_or_default();
        let id = c"sana";
        // messages go through "%s": the text may hold '%' (paths, percentages)
        let fmt = c"%s";
        if let Some(f) = self.message_v2.and_then(|m| m.setPersistentMessage) {
            // SAFETY: a V2 suite function called with an instance handle and a "%s" format
            // whose one variadic argument is a NUL-terminated string alive for the call.
            unsafe { f(instance, kind.as_ptr(), id.as_ptr(), fmt.as_ptr(), text.as_ptr() as *const c_char) };
        } else if let Some(f) = self.message_v1.and_then(|m| m.message) {
            // SAFETY: as above, for the V1 transient message.
            unsafe { f(instance, kind.as_ptr(), id.as_ptr(), fmt.as_ptr(), text.as_ptr() as *const c_char) };
        }
    }

    /// A log message (kOfxMessageLog): what a render did, for the host's log and for pipeline
    /// TDs ("took SANA Base's latents, no VAE encode"); never shown as a dialog.
    pub fn log_message(&self, instance: *mut c_void, text: &str) {
        let text = CString::new(text.replace('\0', " ")).unwrap_or_default();
        let message = self.message_v2.and_then(|m| m.message).or_else(|| self.message_v1.and_then(|m| m.message));
        if let Some(f) = message {
            // SAFETY: a message-suite function called with an instance handle and a "%s" format
            // whose one variadic argument is a NUL-terminated string alive for the call.
            unsafe {
                f(instance, kOfxMessageLog.as_ptr(), c"sana".as_ptr(), c"%s".as_ptr(), text.as_ptr() as *const c_char)
            };
        }
    }

    /// Clears our persistent message once its cause is gone (Nuke blocks renders until then).
    pub fn clear_persistent_message(&self, instance: *mut c_void) {
        if let Some(f) = self.message_v2.and_then(|m| m.clearPersistentMessage) {
            // SAFETY: V2 suite function with an instance handle.
            unsafe { f(instance) };
        }
    }
}
