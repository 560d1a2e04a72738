//! Errors of the plugin layer. Each says which property, parameter, clip or file it is about and
//! what was expected, because its text becomes the persistent message an artist reads on the node.

use std::ffi::CStr;

use super::sys::*;

#[derive(Debug, thiserror::Error)]
pub enum OfxError {
    #[error("the host has no {suite} suite (version {version}); SANA needs it to run")]
    MissingSuite { suite: &'static str, version: i32 },

    #[error("the host's {suite} suite has no `{function}` function")]
    MissingFunction { suite: &'static str, function: &'static str },

    #[error("host property `{name}`: {op} failed with OFX status {status} ({})", status_name(*status))]
    Property { name: String, op: &'static str, status: OfxStatus },

    #[error("parameter `{name}`: {op} failed with OFX status {status} ({})", status_name(*status))]
    Param { name: String, op: &'static str, status: OfxStatus },

    #[error("clip `{clip}`: {problem}")]
    Clip { clip: String, problem: String },

    #[error("{0}")]
    Setting(String),

    #[error("{0}")]
    NotBuilt(&'static str),

    #[error(transparent)]
    Engine(#[from] crate::Error),

    /// The host asked us to stop (abort, or Cancel on the progress bar): fail quietly.
    #[error("render aborted by the host")]
    Aborted,
}

impl OfxError {
    pub fn property(name: &CStr, op: &'static str, status: OfxStatus) -> Self {
        OfxError::Property { name: name.to_string_lossy().into_owned(), op, status }
    }

    /// The status a failed action returns: memory exhaustion lets the host purge and retry.
    pub fn status(&self) -> OfxStatus {
        match self {
            OfxError::MissingSuite { .. } => kOfxStatErrMissingHostFeature,
            _ => kOfxStatFailed,
        }
    }
}

impl From<std::ffi::NulError> for OfxError {
    fn from(e: std::ffi::NulError) -> Self {
        OfxError::Setting(format!("text with a NUL byte at {} cannot be passed to the host", e.nul_position()))
    }
}

// the OFX C names, matched as constants
#[allow(non_upper_case_globals)]
pub fn status_name(status: OfxStatus) -> &'static str {
    match status {
        kOfxStatOK => "OK",
        kOfxStatFailed => "failed",
        kOfxStatErrFatal => "fatal",
        kOfxStatErrUnknown => "unknown property or object",
        kOfxStatErrMissingHostFeature => "missing host feature",
        kOfxStatErrUnsupported => "unsupported",
        kOfxStatErrExists => "already exists",
        kOfxStatErrFormat => "wrong format",
        kOfxStatErrMemory => "out of memory",
        kOfxStatErrBadHandle => "bad handle",
        kOfxStatErrBadIndex => "bad index",
        kOfxStatErrValue => "bad value",
        kOfxStatReplyYes => "reply yes",
        kOfxStatReplyNo => "reply no",
        kOfxStatReplyDefault => "reply default",
        _ => "other",
    }
}

pub type OfxResult<T> = std::result::Result<T, OfxError>;
