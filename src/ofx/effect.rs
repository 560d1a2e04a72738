//! Effect handles: property sets of effects and clips, clip definition, and the per-instance data
//! we hang on `kOfxPropInstanceData` (created in CreateInstance, freed in DestroyInstance).

use std::ffi::{c_void, CStr};
use std::sync::Arc;

use parking_lot::Mutex;

use super::error::{OfxError, OfxResult};
use super::props::PropSet;
use super::render::GeneratedClip;
use super::suites::Suites;
use super::sys::*;

pub fn effect_props(suites: &Suites, effect: OfxImageEffectHandle) -> OfxResult<PropSet> {
    let f = suites
        .effect
        .getPropertySet
        .ok_or(OfxError::MissingFunction { suite: "image effect", function: "getPropertySet" })?;
    let mut props: OfxPropertySetHandle = std::ptr::null_mut();
    // SAFETY: effect handle from the host for the current action; out-pointer to a live handle.
    let status = unsafe { f(effect, &mut props) };
    if status != kOfxStatOK || props.is_null() {
        return Err(OfxError::property(c"(effect property set)", "getPropertySet", status));
    }
    Ok(PropSet::new(props, suites.prop))
}

/// Defines a clip on a descriptor (DescribeInContext) and returns its properties.
pub fn define_clip(suites: &Suites, effect: OfxImageEffectHandle, name: &CStr) -> OfxResult<PropSet> {
    let f =
        suites.effect.clipDefine.ok_or(OfxError::MissingFunction { suite: "image effect", function: "clipDefine" })?;
    let mut props: OfxPropertySetHandle = std::ptr::null_mut();
    // SAFETY: descriptor handle of this DescribeInContext; the host copies the name.
    let status = unsafe { f(effect, name.as_ptr(), &mut props) };
    if status != kOfxStatOK || props.is_null() {
        return Err(OfxError::Clip {
            clip: name.to_string_lossy().into_owned(),
            problem: format!("clipDefine failed ({status})"),
        });
    }
    Ok(PropSet::new(props, suites.prop))
}

/// An instance's clip: its handle and properties.
pub struct Clip {
    pub name: &'static CStr,
    pub handle: OfxImageClipHandle,
    pub props: PropSet,
}

pub fn clip(suites: &Suites, effect: OfxImageEffectHandle, name: &'static CStr) -> OfxResult<Clip> {
    let f = suites
        .effect
        .clipGetHandle
        .ok_or(OfxError::MissingFunction { suite: "image effect", function: "clipGetHandle" })?;
    let mut handle: OfxImageClipHandle = std::ptr::null_mut();
    let mut props: OfxPropertySetHandle = std::ptr::null_mut();
    // SAFETY: instance handle of the current action; out-pointers to live handles.
    let status = unsafe { f(effect, name.as_ptr(), &mut handle, &mut props) };
    if status != kOfxStatOK || handle.is_null() || props.is_null() {
        return Err(OfxError::Clip {
            clip: name.to_string_lossy().into_owned(),
            problem: format!("the host has no such clip on this instance (status {status})"),
        });
    }
    Ok(Clip { name, handle, props: PropSet::new(props, suites.prop) })
}

impl Clip {
    pub fn connected(&self) -> bool {
        self.props.get_int(kOfxImageClipPropConnected, 0).unwrap_or(0) != 0
    }

    pub fn region_of_definition(&self, suites: &Suites, time: f64) -> OfxResult<OfxRectD> {
        let f = suites
            .effect
            .clipGetRegionOfDefinition
            .ok_or(OfxError::MissingFunction { suite: "image effect", function: "clipGetRegionOfDefinition" })?;
        let mut rect = OfxRectD { x1: 0.0, y1: 0.0, x2: 0.0, y2: 0.0 };
        // SAFETY: clip handle of this instance, out-pointer to a live rect.
        let status = unsafe { f(self.handle, time, &mut rect) };
        if status != kOfxStatOK {
            return Err(OfxError::Clip {
                clip: self.name.to_string_lossy().into_owned(),
                problem: format!("no region of definition at time {time} (status {status}): is it connected?"),
            });
        }
        Ok(rect)
    }
}

/// Which of our effects an instance is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EffectKind {
    Base,
    Refine,
}

/// What we keep per instance: the last generated clip, keyed by the hash of every parameter.
/// Frames are served from it in any order and on any thread.
pub struct Instance {
    pub kind: EffectKind,
    pub clip: Mutex<Option<Arc<GeneratedClip>>>,
}

pub fn create_instance(suites: &Suites, effect: OfxImageEffectHandle, kind: EffectKind) -> OfxResult<()> {
    let props = effect_props(suites, effect)?;
    let instance = Box::new(Instance { kind, clip: Mutex::new(None) });
    props.set_pointer(kOfxPropInstanceData, 0, Box::into_raw(instance) as *mut c_void)
}

/// The instance data set in CreateInstance; valid until DestroyInstance.
pub fn instance<'a>(suites: &Suites, effect: OfxImageEffectHandle) -> OfxResult<&'a Instance> {
    let p = effect_props(suites, effect)?.get_pointer(kOfxPropInstanceData, 0)?;
    // SAFETY: we stored a `Box<Instance>` there in CreateInstance and free it only in
    // DestroyInstance, after which the host makes no further calls on this handle.
    unsafe { (p as *const Instance).as_ref() }
        .ok_or_else(|| OfxError::Setting("this instance has no data: the host skipped CreateInstance".into()))
}

pub fn destroy_instance(suites: &Suites, effect: OfxImageEffectHandle) -> OfxResult<()> {
    let props = effect_props(suites, effect)?;
    let p = props.get_pointer(kOfxPropInstanceData, 0)?;
    if !p.is_null() {
        props.set_pointer(kOfxPropInstanceData, 0, std::ptr::null_mut())?;
        // SAFETY: the pointer came from Box::into_raw in create_instance and is cleared above, so
        // it is freed exactly once.
        drop(unsafe { Box::from_raw(p as *mut Instance) });
    }
    Ok(())
}
