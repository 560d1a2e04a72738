//! A property set handle with typed get/set. Every failure names the property and the operation,
//! so a host missing a property we need is reported as such rather than as a bare status code.

use std::ffi::{c_char, c_void, CStr, CString};

use super::error::{OfxError, OfxResult};
use super::sys::*;

#[derive(Clone, Copy)]
pub struct PropSet {
    handle: OfxPropertySetHandle,
    suite: &'static OfxPropertySuiteV1,
}

// SAFETY: a property set handle is an opaque host token; the OFX threading rules (not Rust's) say
// which actions may touch which sets, and we only use a set inside the action that gave it.
unsafe impl Send for PropSet {}

macro_rules! suite_fn {
    ($self:ident, $f:ident) => {
        $self.suite.$f.ok_or(OfxError::MissingFunction { suite: "property", function: stringify!($f) })?
    };
}

impl PropSet {
    pub fn new(handle: OfxPropertySetHandle, suite: &'static OfxPropertySuiteV1) -> Self {
        PropSet { handle, suite }
    }

    pub fn handle(&self) -> OfxPropertySetHandle {
        self.handle
    }

    fn check(name: &CStr, op: &'static str, status: OfxStatus) -> OfxResult<()> {
        if status == kOfxStatOK {
            Ok(())
        } else {
            Err(OfxError::property(name, op, status))
        }
    }

    pub fn get_int(&self, name: &CStr, index: i32) -> OfxResult<i32> {
        let f = suite_fn!(self, propGetInt);
        let mut v = 0;
        // SAFETY: valid handle from the host, NUL-terminated name, out-pointer to a live int.
        Self::check(name, "get int", unsafe { f(self.handle, name.as_ptr(), index, &mut v) })?;
        Ok(v)
    }

    pub fn get_double(&self, name: &CStr, index: i32) -> OfxResult<f64> {
        let f = suite_fn!(self, propGetDouble);
        let mut v = 0.0;
        // SAFETY: as in get_int.
        Self::check(name, "get double", unsafe { f(self.handle, name.as_ptr(), index, &mut v) })?;
        Ok(v)
    }

    pub fn get_doubles<const N: usize>(&self, name: &CStr) -> OfxResult<[f64; N]> {
        let f = suite_fn!(self, propGetDoubleN);
        let mut v = [0.0; N];
        // SAFETY: out-buffer of exactly N doubles, the count passed.
        Self::check(name, "get doubles", unsafe { f(self.handle, name.as_ptr(), N as i32, v.as_mut_ptr()) })?;
        Ok(v)
    }

    pub fn get_ints<const N: usize>(&self, name: &CStr) -> OfxResult<[i32; N]> {
        let f = suite_fn!(self, propGetIntN);
        let mut v = [0; N];
        // SAFETY: out-buffer of exactly N ints, the count passed.
        Self::check(name, "get ints", unsafe { f(self.handle, name.as_ptr(), N as i32, v.as_mut_ptr()) })?;
        Ok(v)
    }

    pub fn get_string(&self, name: &CStr, index: i32) -> OfxResult<String> {
        let f = suite_fn!(self, propGetString);
        let mut p: *mut c_char = std::ptr::null_mut();
        // SAFETY: out-pointer to a live char pointer; the host keeps the string alive at least
        // until the next call on this set, and we copy it at once.
        Self::check(name, "get string", unsafe { f(self.handle, name.as_ptr(), index, &mut p) })?;
        if p.is_null() {
            return Ok(String::new());
        }
        // SAFETY: non-null, NUL-terminated by the OFX contract.
        Ok(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    }

    pub fn get_pointer(&self, name: &CStr, index: i32) -> OfxResult<*mut c_void> {
        let f = suite_fn!(self, propGetPointer);
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: out-pointer to a live pointer.
        Self::check(name, "get pointer", unsafe { f(self.handle, name.as_ptr(), index, &mut p) })?;
        Ok(p)
    }

    pub fn set_int(&self, name: &CStr, index: i32, value: i32) -> OfxResult<()> {
        let f = suite_fn!(self, propSetInt);
        // SAFETY: valid handle and name.
        Self::check(name, "set int", unsafe { f(self.handle, name.as_ptr(), index, value) })
    }

    pub fn set_double(&self, name: &CStr, index: i32, value: f64) -> OfxResult<()> {
        let f = suite_fn!(self, propSetDouble);
        // SAFETY: valid handle and name.
        Self::check(name, "set double", unsafe { f(self.handle, name.as_ptr(), index, value) })
    }

    pub fn set_doubles(&self, name: &CStr, values: &[f64]) -> OfxResult<()> {
        let f = suite_fn!(self, propSetDoubleN);
        // SAFETY: `values` holds exactly the count passed.
        Self::check(name, "set doubles", unsafe { f(self.handle, name.as_ptr(), values.len() as i32, values.as_ptr()) })
    }

    pub fn set_string(&self, name: &CStr, index: i32, value: &str) -> OfxResult<()> {
        let f = suite_fn!(self, propSetString);
        let value = CString::new(value)?;
        // SAFETY: the host copies the string during the call.
        Self::check(name, "set string", unsafe { f(self.handle, name.as_ptr(), index, value.as_ptr()) })
    }

    pub fn set_cstr(&self, name: &CStr, index: i32, value: &CStr) -> OfxResult<()> {
        let f = suite_fn!(self, propSetString);
        // SAFETY: the host copies the string during the call.
        Self::check(name, "set string", unsafe { f(self.handle, name.as_ptr(), index, value.as_ptr()) })
    }

    /// Several string values (supported contexts, pixel depths, page children), index by index.
    pub fn set_cstrs(&self, name: &CStr, values: &[&CStr]) -> OfxResult<()> {
        for (i, v) in values.iter().enumerate() {
            self.set_cstr(name, i as i32, v)?;
        }
        Ok(())
    }

    pub fn set_pointer(&self, name: &CStr, index: i32, value: *mut c_void) -> OfxResult<()> {
        let f = suite_fn!(self, propSetPointer);
        // SAFETY: valid handle and name; the host stores the pointer value only.
        Self::check(name, "set pointer", unsafe { f(self.handle, name.as_ptr(), index, value) })
    }
}

/// For properties some hosts lack on some objects (Nuke has no sequential-render property on the
/// descriptor, older Resolve no plugin description): a failed property call is not an error
/// there. Other errors still propagate.
pub fn allow_missing(result: OfxResult<()>) -> OfxResult<()> {
    match result {
        Err(OfxError::Property { .. }) => Ok(()),
        other => other,
    }
}
