//! The host side of our OFX test harness: property sets, parameter sets, effects, clips and
//! images as Rust objects whose addresses are the handles the plugin sees, and the suites the
//! plugin fetches (property, parameter, image effect, memory, message V1/V2, progress V1/V2,
//! multithread) as `extern "C"` functions over them. Strict where the spec is: a property read
//! before anyone set it, or read with another type, fails as a real host would.
//!
//! Variadic suite functions (paramGetValue, message, setPersistentMessage) cannot be defined in
//! stable Rust. On x86-64 System V a variadic call passes its pointer arguments in the same
//! registers as a fixed-argument call, so they are defined with the fixed arguments the plugin
//! passes (one out-pointer; one "%s" string) and cast to the variadic type. The harness is
//! therefore Linux x86-64 only, as the bundle it tests is.

#![allow(non_snake_case)] // suite fields keep their C names

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use sana::ofx::sys::*;

// ---- values and property sets -------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
pub enum V {
    Int(i32),
    Double(f64),
    Str(CString),
    Ptr(usize),
}

impl V {
    pub fn str(s: &str) -> V {
        V::Str(CString::new(s).unwrap())
    }
    fn kind(&self) -> &'static str {
        match self {
            V::Int(_) => "int",
            V::Double(_) => "double",
            V::Str(_) => "string",
            V::Ptr(_) => "pointer",
        }
    }
}

/// A property set. Its address is the `OfxPropertySetHandle` the plugin sees.
#[derive(Default)]
pub struct Props {
    pub map: Mutex<HashMap<String, Vec<V>>>,
}

impl Props {
    pub fn boxed(values: &[(&CStr, Vec<V>)]) -> Box<Props> {
        let p = Box::<Props>::default();
        for (k, v) in values {
            p.set(k, v.clone());
        }
        p
    }
    pub fn handle(&self) -> OfxPropertySetHandle {
        self as *const Props as OfxPropertySetHandle
    }
    pub fn set(&self, name: &CStr, values: Vec<V>) {
        self.map.lock().unwrap().insert(name.to_str().unwrap().to_string(), values);
    }
    pub fn get(&self, name: &CStr) -> Option<Vec<V>> {
        self.map.lock().unwrap().get(name.to_str().unwrap()).cloned()
    }
    pub fn int(&self, name: &CStr) -> Option<i32> {
        match self.get(name)?.first()? {
            V::Int(v) => Some(*v),
            _ => None,
        }
    }
    pub fn doubles(&self, name: &CStr) -> Option<Vec<f64>> {
        self.get(name)?.iter().map(|v| if let V::Double(d) = v { Some(*d) } else { None }).collect()
    }
    pub fn string(&self, name: &CStr) -> Option<String> {
        self.strings(name)?.into_iter().next()
    }
    pub fn strings(&self, name: &CStr) -> Option<Vec<String>> {
        self.get(name)?
            .iter()
            .map(|v| if let V::Str(s) = v { Some(s.to_string_lossy().into_owned()) } else { None })
            .collect()
    }
    pub fn copy(&self) -> Box<Props> {
        Box::new(Props { map: Mutex::new(self.map.lock().unwrap().clone()) })
    }
}

/// SAFETY (all suite functions below): handles are addresses of our own boxed objects that the
/// harness keeps alive for the duration of every action; names are NUL-terminated.
unsafe fn props<'a>(h: OfxPropertySetHandle) -> &'a Props {
    &*(h as *const Props)
}

unsafe fn name_of(p: *const c_char) -> String {
    CStr::from_ptr(p).to_string_lossy().into_owned()
}

unsafe fn prop_set(h: OfxPropertySetHandle, name: *const c_char, index: c_int, v: V) -> OfxStatus {
    if h.is_null() || index < 0 {
        return kOfxStatErrBadHandle;
    }
    let mut map = props(h).map.lock().unwrap();
    let values = map.entry(name_of(name)).or_default();
    if let Some(first) = values.first() {
        if first.kind() != v.kind() {
            return kOfxStatErrValue;
        }
    }
    let i = index as usize;
    if values.len() <= i {
        values.resize(i + 1, v.clone());
    }
    values[i] = v;
    kOfxStatOK
}

unsafe fn prop_get(h: OfxPropertySetHandle, name: *const c_char, index: c_int) -> Result<V, OfxStatus> {
    if h.is_null() {
        return Err(kOfxStatErrBadHandle);
    }
    let map = props(h).map.lock().unwrap();
    let values = map.get(&name_of(name)).ok_or(kOfxStatErrUnknown)?;
    values.get(index as usize).cloned().ok_or(kOfxStatErrBadIndex)
}

unsafe extern "C" fn propSetPointer(h: OfxPropertySetHandle, n: *const c_char, i: c_int, v: *mut c_void) -> OfxStatus {
    prop_set(h, n, i, V::Ptr(v as usize))
}
unsafe extern "C" fn propSetString(h: OfxPropertySetHandle, n: *const c_char, i: c_int, v: *const c_char) -> OfxStatus {
    prop_set(h, n, i, V::Str(CStr::from_ptr(v).to_owned()))
}
unsafe extern "C" fn propSetDouble(h: OfxPropertySetHandle, n: *const c_char, i: c_int, v: f64) -> OfxStatus {
    prop_set(h, n, i, V::Double(v))
}
unsafe extern "C" fn propSetInt(h: OfxPropertySetHandle, n: *const c_char, i: c_int, v: c_int) -> OfxStatus {
    prop_set(h, n, i, V::Int(v))
}
unsafe extern "C" fn propSetDoubleN(h: OfxPropertySetHandle, n: *const c_char, c: c_int, v: *const f64) -> OfxStatus {
    for i in 0..c {
        let s = prop_set(h, n, i, V::Double(*v.add(i as usize)));
        if s != kOfxStatOK {
            return s;
        }
    }
    kOfxStatOK
}
unsafe extern "C" fn propSetIntN(h: OfxPropertySetHandle, n: *const c_char, c: c_int, v: *const c_int) -> OfxStatus {
    for i in 0..c {
        let s = prop_set(h, n, i, V::Int(*v.add(i as usize)));
        if s != kOfxStatOK {
            return s;
        }
    }
    kOfxStatOK
}
unsafe extern "C" fn propGetPointer(
    h: OfxPropertySetHandle,
    n: *const c_char,
    i: c_int,
    v: *mut *mut c_void,
) -> OfxStatus {
    match prop_get(h, n, i) {
        Ok(V::Ptr(p)) => {
            *v = p as *mut c_void;
            kOfxStatOK
        }
        Ok(_) => kOfxStatErrValue,
        Err(s) => s,
    }
}
unsafe extern "C" fn propGetString(
    h: OfxPropertySetHandle,
    n: *const c_char,
    i: c_int,
    v: *mut *mut c_char,
) -> OfxStatus {
    if h.is_null() {
        return kOfxStatErrBadHandle;
    }
    // the pointer must outlive this call: hand out the stored CString's buffer
    let map = props(h).map.lock().unwrap();
    match map.get(&name_of(n)).and_then(|vs| vs.get(i as usize)) {
        Some(V::Str(s)) => {
            *v = s.as_ptr() as *mut c_char;
            kOfxStatOK
        }
        Some(_) => kOfxStatErrValue,
        None => kOfxStatErrUnknown,
    }
}
unsafe extern "C" fn propGetDouble(h: OfxPropertySetHandle, n: *const c_char, i: c_int, v: *mut f64) -> OfxStatus {
    match prop_get(h, n, i) {
        Ok(V::Double(d)) => {
            *v = d;
            kOfxStatOK
        }
        Ok(_) => kOfxStatErrValue,
        Err(s) => s,
    }
}
unsafe extern "C" fn propGetInt(h: OfxPropertySetHandle, n: *const c_char, i: c_int, v: *mut c_int) -> OfxStatus {
    match prop_get(h, n, i) {
        Ok(V::Int(d)) => {
            *v = d;
            kOfxStatOK
        }
        Ok(_) => kOfxStatErrValue,
        Err(s) => s,
    }
}
unsafe extern "C" fn propGetDoubleN(h: OfxPropertySetHandle, n: *const c_char, c: c_int, v: *mut f64) -> OfxStatus {
    for i in 0..c {
        let s = propGetDouble(h, n, i, v.add(i as usize));
        if s != kOfxStatOK {
            return s;
        }
    }
    kOfxStatOK
}
unsafe extern "C" fn propGetIntN(h: OfxPropertySetHandle, n: *const c_char, c: c_int, v: *mut c_int) -> OfxStatus {
    for i in 0..c {
        let s = propGetInt(h, n, i, v.add(i as usize));
        if s != kOfxStatOK {
            return s;
        }
    }
    kOfxStatOK
}
unsafe extern "C" fn propReset(_: OfxPropertySetHandle, _: *const c_char) -> OfxStatus {
    kOfxStatErrUnsupported
}
unsafe extern "C" fn propGetDimension(h: OfxPropertySetHandle, n: *const c_char, count: *mut c_int) -> OfxStatus {
    match props(h).map.lock().unwrap().get(&name_of(n)) {
        Some(vs) => {
            *count = vs.len() as c_int;
            kOfxStatOK
        }
        None => kOfxStatErrUnknown,
    }
}

pub static PROPERTY_SUITE: OfxPropertySuiteV1 = OfxPropertySuiteV1 {
    propSetPointer: Some(propSetPointer),
    propSetString: Some(propSetString),
    propSetDouble: Some(propSetDouble),
    propSetInt: Some(propSetInt),
    propSetPointerN: None,
    propSetStringN: None,
    propSetDoubleN: Some(propSetDoubleN),
    propSetIntN: Some(propSetIntN),
    propGetPointer: Some(propGetPointer),
    propGetString: Some(propGetString),
    propGetDouble: Some(propGetDouble),
    propGetInt: Some(propGetInt),
    propGetPointerN: None,
    propGetStringN: None,
    propGetDoubleN: Some(propGetDoubleN),
    propGetIntN: Some(propGetIntN),
    propReset: Some(propReset),
    propGetDimension: Some(propGetDimension),
};

// ---- parameters ---------------------------------------------------------------------------

pub struct Param {
    pub name: String,
    pub ty: String,
    pub props: Box<Props>,
    pub value: Mutex<V>,
}

#[derive(Default)]
pub struct ParamSet {
    pub props: Box<Props>,
    // boxed: a parameter's address is its handle and must not move when the Vec grows
    #[allow(clippy::vec_box)]
    pub params: Mutex<Vec<Box<Param>>>,
}

impl ParamSet {
    pub fn find(&self, name: &str) -> Option<*const Param> {
        self.params.lock().unwrap().iter().find(|p| p.name == name).map(|p| &**p as *const Param)
    }

    /// An instance's parameters: the descriptor's, each at its default.
    pub fn instantiate(&self) -> Box<ParamSet> {
        let set = Box::<ParamSet>::default();
        for p in self.params.lock().unwrap().iter() {
            let props = p.props.copy();
            let value = props.get(kOfxParamPropDefault).and_then(|v| v.first().cloned()).unwrap_or(V::Int(0));
            set.params.lock().unwrap().push(Box::new(Param {
                name: p.name.clone(),
                ty: p.ty.clone(),
                props,
                value: Mutex::new(value),
            }));
        }
        set
    }
}

unsafe extern "C" fn paramDefine(
    set: OfxParamSetHandle,
    ty: *const c_char,
    name: *const c_char,
    out: *mut OfxPropertySetHandle,
) -> OfxStatus {
    let set = &*(set as *const ParamSet);
    let name = name_of(name);
    if set.find(&name).is_some() {
        return kOfxStatErrExists;
    }
    let ty = name_of(ty);
    let props = Props::boxed(&[(kOfxParamPropType, vec![V::str(&ty)]), (kOfxPropName, vec![V::str(&name)])]);
    let param = Box::new(Param { name, ty, props, value: Mutex::new(V::Int(0)) });
    if !out.is_null() {
        *out = param.props.handle();
    }
    set.params.lock().unwrap().push(param);
    kOfxStatOK
}

unsafe extern "C" fn paramGetHandle(
    set: OfxParamSetHandle,
    name: *const c_char,
    out: *mut OfxParamHandle,
    props_out: *mut OfxPropertySetHandle,
) -> OfxStatus {
    let set = &*(set as *const ParamSet);
    match set.find(&name_of(name)) {
        Some(p) => {
            *out = p as OfxParamHandle;
            if !props_out.is_null() {
                *props_out = (*p).props.handle();
            }
            kOfxStatOK
        }
        None => kOfxStatErrUnknown,
    }
}

unsafe extern "C" fn paramSetGetPropertySet(set: OfxParamSetHandle, out: *mut OfxPropertySetHandle) -> OfxStatus {
    *out = (*(set as *const ParamSet)).props.handle();
    kOfxStatOK
}

unsafe extern "C" fn paramGetPropertySet(p: OfxParamHandle, out: *mut OfxPropertySetHandle) -> OfxStatus {
    *out = (*(p as *const Param)).props.handle();
    kOfxStatOK
}

/// paramGetValue(handle, out): the one out-pointer the single-valued types take (see the
/// module note on variadics).
unsafe extern "C" fn param_get_value(p: OfxParamHandle, out: *mut c_void) -> OfxStatus {
    let p = &*(p as *const Param);
    let value = p.value.lock().unwrap();
    match (&*value, p.ty.as_bytes()) {
        (V::Int(v), b"OfxParamTypeInteger" | b"OfxParamTypeChoice" | b"OfxParamTypeBoolean") => {
            *(out as *mut c_int) = *v
        }
        (V::Double(v), b"OfxParamTypeDouble") => *(out as *mut f64) = *v,
        // the string stays alive in the parameter until its value changes
        (V::Str(s), b"OfxParamTypeString") => *(out as *mut *const c_char) = s.as_ptr(),
        _ => return kOfxStatErrValue,
    }
    kOfxStatOK
}

type ParamGetValue = unsafe extern "C" fn(OfxParamHandle, ...) -> OfxStatus;

pub fn parameter_suite() -> OfxParameterSuiteV1 {
    // SAFETY: see the module note: x86-64 SysV passes the plugin's one variadic pointer argument
    // where a fixed second argument would be.
    let get_value: ParamGetValue = unsafe {
        std::mem::transmute::<unsafe extern "C" fn(OfxParamHandle, *mut c_void) -> OfxStatus, ParamGetValue>(
            param_get_value,
        )
    };
    OfxParameterSuiteV1 {
        paramDefine: Some(paramDefine),
        paramGetHandle: Some(paramGetHandle),
        paramSetGetPropertySet: Some(paramSetGetPropertySet),
        paramGetPropertySet: Some(paramGetPropertySet),
        paramGetValue: Some(get_value),
        paramGetValueAtTime: None,
        paramGetDerivative: None,
        paramGetIntegral: None,
        // the harness changes values directly (`Effect::set_param`), as a user edit would
        paramSetValue: None,
        paramSetValueAtTime: None,
        paramGetNumKeys: None,
        paramGetKeyTime: None,
        paramGetKeyIndex: None,
        paramDeleteKey: None,
        paramDeleteAllKeys: None,
        paramCopy: None,
        paramEditBegin: None,
        paramEditEnd: None,
    }
}

// ---- effects, clips, images ---------------------------------------------------------------

/// A frame the harness serves on an input clip: RGBA f32, `width × height`, bottom row first.
pub type Plate = Box<dyn Fn(f64) -> Option<(usize, usize, Vec<f32>)> + Send + Sync>;

pub struct Image {
    pub props: Box<Props>,
    pub pixels: Vec<f32>,
    pub time: f64,
}

/// An output image the plugin released: time, RGBA pixels, pixel bounds.
pub type Written = (f64, Vec<f32>, [i32; 4]);

pub struct Clip {
    pub name: String,
    pub props: Box<Props>,
    /// Output images are allocated at these pixel bounds (the harness sets them from the RoD).
    pub bounds: Mutex<[i32; 4]>,
    pub plate: Mutex<Option<Plate>>,
    // boxed: an image's property set address is its handle
    #[allow(clippy::vec_box)]
    pub live: Mutex<Vec<Box<Image>>>,
    /// Released output images, in release order: what the plugin wrote.
    pub written: Mutex<Vec<Written>>,
}

impl Clip {
    pub fn new(name: &str, props: Box<Props>) -> Box<Clip> {
        Box::new(Clip {
            name: name.to_string(),
            props,
            bounds: Mutex::new([0; 4]),
            plate: Mutex::new(None),
            live: Mutex::new(Vec::new()),
            written: Mutex::new(Vec::new()),
        })
    }
}

/// A clip leaves CLIPS when it is freed, also when a failing test unwinds past its instance:
/// clipReleaseImage must never look at a freed clip.
impl Drop for Clip {
    fn drop(&mut self) {
        let me = self as *const Clip as usize;
        CLIPS.lock().unwrap_or_else(|e| e.into_inner()).retain(|&p| p != me);
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub kind: String,
    pub id: String,
    pub text: String,
}

/// A descriptor or an instance. Its address is the `OfxImageEffectHandle`.
#[derive(Default)]
pub struct Effect {
    pub props: Box<Props>,
    pub params: Box<ParamSet>,
    // boxed: a clip's address is its handle
    #[allow(clippy::vec_box)]
    pub clips: Mutex<Vec<Box<Clip>>>,
    pub persistent: Mutex<Option<Message>>,
    pub messages: Mutex<Vec<Message>>,
    /// What `abort` returns.
    pub abort: AtomicBool,
    /// progressUpdate answers "cancel" (kOfxStatReplyNo) from this many updates on (0 = never).
    pub cancel_after_updates: AtomicUsize,
    pub progress: Mutex<Vec<f64>>,
    pub progress_started: AtomicUsize,
    pub progress_ended: AtomicUsize,
}

impl Effect {
    pub fn handle(&self) -> OfxImageEffectHandle {
        self as *const Effect as OfxImageEffectHandle
    }

    pub fn clip(&self, name: &str) -> Option<*const Clip> {
        self.clips.lock().unwrap().iter().find(|c| c.name == name).map(|c| &**c as *const Clip)
    }

    pub fn set_param(&self, name: &str, value: V) {
        let p = self.params.find(name).unwrap_or_else(|| panic!("no parameter `{name}`"));
        // SAFETY: the parameter lives in this effect's boxed set.
        *unsafe { &*p }.value.lock().unwrap() = match value {
            V::Str(s) => V::Str(s),
            other => other,
        };
    }
}

unsafe fn effect<'a>(h: OfxImageEffectHandle) -> &'a Effect {
    &*(h as *const Effect)
}

unsafe extern "C" fn getPropertySet(e: OfxImageEffectHandle, out: *mut OfxPropertySetHandle) -> OfxStatus {
    if e.is_null() {
        return kOfxStatErrBadHandle;
    }
    *out = effect(e).props.handle();
    kOfxStatOK
}

unsafe extern "C" fn getParamSet(e: OfxImageEffectHandle, out: *mut OfxParamSetHandle) -> OfxStatus {
    if e.is_null() {
        return kOfxStatErrBadHandle;
    }
    *out = &*effect(e).params as *const ParamSet as OfxParamSetHandle;
    kOfxStatOK
}

unsafe extern "C" fn clipDefine(
    e: OfxImageEffectHandle,
    name: *const c_char,
    out: *mut OfxPropertySetHandle,
) -> OfxStatus {
    let e = effect(e);
    let name = name_of(name);
    if e.clip(&name).is_some() {
        return kOfxStatErrExists;
    }
    let clip = Clip::new(&name, Props::boxed(&[(kOfxPropName, vec![V::str(&name)])]));
    *out = clip.props.handle();
    e.clips.lock().unwrap().push(clip);
    kOfxStatOK
}

unsafe extern "C" fn clipGetHandle(
    e: OfxImageEffectHandle,
    name: *const c_char,
    out: *mut OfxImageClipHandle,
    props_out: *mut OfxPropertySetHandle,
) -> OfxStatus {
    match effect(e).clip(&name_of(name)) {
        Some(c) => {
            *out = c as OfxImageClipHandle;
            if !props_out.is_null() {
                *props_out = (*c).props.handle();
            }
            kOfxStatOK
        }
        None => kOfxStatErrUnknown,
    }
}

unsafe extern "C" fn clipGetPropertySet(c: OfxImageClipHandle, out: *mut OfxPropertySetHandle) -> OfxStatus {
    *out = (*(c as *const Clip)).props.handle();
    kOfxStatOK
}

unsafe extern "C" fn clipGetImage(
    c: OfxImageClipHandle,
    time: OfxTime,
    _region: *const OfxRectD,
    out: *mut OfxPropertySetHandle,
) -> OfxStatus {
    let clip = &*(c as *const Clip);
    let (bounds, pixels) = match &*clip.plate.lock().unwrap() {
        Some(plate) => match plate(time) {
            Some((w, h, px)) => ([0, 0, w as i32, h as i32], px),
            None => return kOfxStatFailed, // no image at that time
        },
        None => {
            let b = *clip.bounds.lock().unwrap();
            let n = ((b[2] - b[0]) * (b[3] - b[1]) * 4).max(0) as usize;
            // NaN: anything the plugin leaves unwritten shows up in the checks
            (b, vec![f32::NAN; n])
        }
    };
    let mut image = Box::new(Image { props: Box::default(), pixels, time });
    let row_bytes = (bounds[2] - bounds[0]) * 16;
    image.props = Props::boxed(&[
        (kOfxImagePropData, vec![V::Ptr(image.pixels.as_mut_ptr() as usize)]),
        (kOfxImagePropBounds, bounds.iter().map(|v| V::Int(*v)).collect()),
        (kOfxImagePropRegionOfDefinition, bounds.iter().map(|v| V::Int(*v)).collect()),
        (kOfxImagePropRowBytes, vec![V::Int(row_bytes)]),
        (kOfxImageEffectPropPixelDepth, vec![V::Str(kOfxBitDepthFloat.to_owned())]),
        (kOfxImageEffectPropComponents, vec![V::Str(kOfxImageComponentRGBA.to_owned())]),
        (kOfxImageEffectPropPreMultiplication, vec![V::Str(kOfxImageOpaque.to_owned())]),
        (kOfxImageEffectPropRenderScale, vec![V::Double(1.0), V::Double(1.0)]),
        (kOfxImagePropPixelAspectRatio, vec![V::Double(1.0)]),
        (kOfxImagePropField, vec![V::Str(kOfxImageFieldNone.to_owned())]),
        (kOfxImagePropUniqueIdentifier, vec![V::str(&format!("{}@{time}", clip.name))]),
    ]);
    *out = image.props.handle();
    clip.live.lock().unwrap().push(image);
    kOfxStatOK
}

/// Every clip of every effect the harness made, so clipReleaseImage can find the image's clip.
pub static CLIPS: Mutex<Vec<usize>> = Mutex::new(Vec::new());

unsafe extern "C" fn clipReleaseImage(h: OfxPropertySetHandle) -> OfxStatus {
    for &c in CLIPS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let clip = &*(c as *const Clip);
        let mut live = clip.live.lock().unwrap();
        if let Some(i) = live.iter().position(|img| img.props.handle() == h) {
            let image = live.remove(i);
            if clip.plate.lock().unwrap().is_none() {
                let bounds = image.props.get(kOfxImagePropBounds).unwrap();
                let b: Vec<i32> = bounds.iter().map(|v| if let V::Int(i) = v { *i } else { 0 }).collect();
                clip.written.lock().unwrap().push((image.time, image.pixels, [b[0], b[1], b[2], b[3]]));
            }
            return kOfxStatOK;
        }
    }
    kOfxStatErrBadHandle
}

unsafe extern "C" fn clipGetRegionOfDefinition(c: OfxImageClipHandle, time: OfxTime, out: *mut OfxRectD) -> OfxStatus {
    let clip = &*(c as *const Clip);
    let b = match &*clip.plate.lock().unwrap() {
        Some(plate) => match plate(time) {
            Some((w, h, _)) => [0, 0, w as i32, h as i32],
            None => return kOfxStatFailed,
        },
        None => *clip.bounds.lock().unwrap(),
    };
    *out = OfxRectD { x1: b[0] as f64, y1: b[1] as f64, x2: b[2] as f64, y2: b[3] as f64 };
    kOfxStatOK
}

unsafe extern "C" fn abort(e: OfxImageEffectHandle) -> c_int {
    effect(e).abort.load(Ordering::SeqCst) as c_int
}

pub static IMAGE_EFFECT_SUITE: OfxImageEffectSuiteV1 = OfxImageEffectSuiteV1 {
    getPropertySet: Some(getPropertySet),
    getParamSet: Some(getParamSet),
    clipDefine: Some(clipDefine),
    clipGetHandle: Some(clipGetHandle),
    clipGetPropertySet: Some(clipGetPropertySet),
    clipGetImage: Some(clipGetImage),
    clipReleaseImage: Some(clipReleaseImage),
    clipGetRegionOfDefinition: Some(clipGetRegionOfDefinition),
    abort: Some(abort),
    // image memory is not something our plugin asks for
    imageMemoryAlloc: None,
    imageMemoryFree: None,
    imageMemoryLock: None,
    imageMemoryUnlock: None,
};

// ---- messages, progress, memory, threads ---------------------------------------------------

/// message(handle, type, id, "%s", text): the plugin always formats through "%s".
unsafe fn read_message(kind: *const c_char, id: *const c_char, fmt: *const c_char, arg: *const c_char) -> Message {
    let fmt = name_of(fmt);
    let text = if fmt == "%s" && !arg.is_null() { name_of(arg) } else { fmt };
    Message { kind: name_of(kind), id: if id.is_null() { String::new() } else { name_of(id) }, text }
}

unsafe extern "C" fn message(
    h: *mut c_void,
    kind: *const c_char,
    id: *const c_char,
    fmt: *const c_char,
    arg: *const c_char,
) -> OfxStatus {
    let m = read_message(kind, id, fmt, arg);
    if !h.is_null() {
        effect(h as OfxImageEffectHandle).messages.lock().unwrap().push(m);
    }
    kOfxStatOK
}

unsafe extern "C" fn set_persistent_message(
    h: *mut c_void,
    kind: *const c_char,
    id: *const c_char,
    fmt: *const c_char,
    arg: *const c_char,
) -> OfxStatus {
    if h.is_null() {
        return kOfxStatErrBadHandle;
    }
    *effect(h as OfxImageEffectHandle).persistent.lock().unwrap() = Some(read_message(kind, id, fmt, arg));
    kOfxStatOK
}

unsafe extern "C" fn clearPersistentMessage(h: *mut c_void) -> OfxStatus {
    *effect(h as OfxImageEffectHandle).persistent.lock().unwrap() = None;
    kOfxStatOK
}

type MessageFn = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, *const c_char, ...) -> OfxStatus;
type FixedMessageFn =
    unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, *const c_char, *const c_char) -> OfxStatus;

fn variadic(f: FixedMessageFn) -> MessageFn {
    // SAFETY: see the module note on variadics (x86-64 SysV, pointer arguments only).
    unsafe { std::mem::transmute::<FixedMessageFn, MessageFn>(f) }
}

pub fn message_suite_v1() -> OfxMessageSuiteV1 {
    OfxMessageSuiteV1 { message: Some(variadic(message)) }
}

pub fn message_suite_v2() -> OfxMessageSuiteV2 {
    OfxMessageSuiteV2 {
        message: Some(variadic(message)),
        setPersistentMessage: Some(variadic(set_persistent_message)),
        clearPersistentMessage: Some(clearPersistentMessage),
    }
}

unsafe extern "C" fn progressStartV1(h: *mut c_void, _label: *const c_char) -> OfxStatus {
    effect(h as OfxImageEffectHandle).progress_started.fetch_add(1, Ordering::SeqCst);
    kOfxStatOK
}
unsafe extern "C" fn progressStartV2(h: *mut c_void, _m: *const c_char, _id: *const c_char) -> OfxStatus {
    progressStartV1(h, std::ptr::null())
}
unsafe extern "C" fn progressUpdate(h: *mut c_void, p: f64) -> OfxStatus {
    let e = effect(h as OfxImageEffectHandle);
    let mut log = e.progress.lock().unwrap();
    log.push(p);
    let cancel_after = e.cancel_after_updates.load(Ordering::SeqCst);
    if cancel_after > 0 && log.len() >= cancel_after {
        return kOfxStatReplyNo;
    }
    kOfxStatOK
}
unsafe extern "C" fn progressEnd(h: *mut c_void) -> OfxStatus {
    effect(h as OfxImageEffectHandle).progress_ended.fetch_add(1, Ordering::SeqCst);
    kOfxStatOK
}

pub static PROGRESS_SUITE_V1: OfxProgressSuiteV1 = OfxProgressSuiteV1 {
    progressStart: Some(progressStartV1),
    progressUpdate: Some(progressUpdate),
    progressEnd: Some(progressEnd),
};
pub static PROGRESS_SUITE_V2: OfxProgressSuiteV2 = OfxProgressSuiteV2 {
    progressStart: Some(progressStartV2),
    progressUpdate: Some(progressUpdate),
    progressEnd: Some(progressEnd),
};

unsafe extern "C" fn memoryAlloc(_: *mut c_void, n: usize, out: *mut *mut c_void) -> OfxStatus {
    let layout = std::alloc::Layout::from_size_align(n.max(1) + 16, 16).unwrap();
    let p = std::alloc::alloc(layout);
    if p.is_null() {
        return kOfxStatErrMemory;
    }
    // the size lives in front of the block so memoryFree can rebuild the layout
    *(p as *mut usize) = n.max(1) + 16;
    *out = p.add(16) as *mut c_void;
    kOfxStatOK
}
unsafe extern "C" fn memoryFree(p: *mut c_void) -> OfxStatus {
    let base = (p as *mut u8).sub(16);
    let size = *(base as *mut usize);
    std::alloc::dealloc(base, std::alloc::Layout::from_size_align(size, 16).unwrap());
    kOfxStatOK
}
pub static MEMORY_SUITE: OfxMemorySuiteV1 =
    OfxMemorySuiteV1 { memoryAlloc: Some(memoryAlloc), memoryFree: Some(memoryFree) };

/// multiThread on the calling thread, one "thread": the minimal legal host.
unsafe extern "C" fn multiThread(f: OfxThreadFunctionV1, n: c_uint, arg: *mut c_void) -> OfxStatus {
    if let Some(f) = f {
        for i in 0..n.max(1) {
            f(i, n.max(1), arg);
        }
    }
    kOfxStatOK
}
unsafe extern "C" fn multiThreadNumCPUs(n: *mut c_uint) -> OfxStatus {
    *n = 1;
    kOfxStatOK
}
unsafe extern "C" fn multiThreadIndex(i: *mut c_uint) -> OfxStatus {
    *i = 0;
    kOfxStatOK
}
unsafe extern "C" fn multiThreadIsSpawnedThread() -> c_int {
    0
}
pub static MULTI_THREAD_SUITE: OfxMultiThreadSuiteV1 = OfxMultiThreadSuiteV1 {
    multiThread: Some(multiThread),
    multiThreadNumCPUs: Some(multiThreadNumCPUs),
    multiThreadIndex: Some(multiThreadIndex),
    multiThreadIsSpawnedThread: Some(multiThreadIsSpawnedThread),
    // host mutexes: our plugin uses its own locks and never fetches these
    mutexCreate: None,
    mutexDestroy: None,
    mutexLock: None,
    mutexUnLock: None,
    mutexTryLock: None,
};
