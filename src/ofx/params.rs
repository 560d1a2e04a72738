//! Parameters as name/label/hint triples with a kind, described on pages, and read back by name
//! at render time. Groups both effects share (model folder, colourspace, seed) are one function
//! each, so the two effects cannot drift apart on them.

use std::ffi::{c_char, CStr, CString};

use super::error::{OfxError, OfxResult};
use super::props::{allow_missing, PropSet};
use super::suites::Suites;
use super::sys::*;

/// How a string parameter is edited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringMode {
    MultiLine,
    Directory,
}

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    String { mode: StringMode, default: &'static str },
    Int { default: i32, min: i32, max: i32 },
    Double { default: f64, min: f64, max: f64 },
    Choice { options: &'static [&'static str], default: i32 },
    Bool { default: bool },
}

/// One parameter: script name (what projects store: never rename), label, hint, page, kind.
#[derive(Clone, Copy, Debug)]
pub struct ParamDef {
    pub name: &'static CStr,
    pub label: &'static str,
    pub hint: &'static str,
    pub page: &'static str,
    pub kind: Kind,
}

// ---- shared groups --------------------------------------------------------------------------

pub const MODEL_FOLDER: &CStr = c"modelFolder";
pub const SEED: &CStr = c"seed";
pub const PROMPT: &CStr = c"prompt";
pub const STEPS: &CStr = c"steps";
pub const OUTPUT_COLOURSPACE: &CStr = c"outputColourspace";
pub const INPUT_COLOURSPACE: &CStr = c"inputColourspace";

/// Colourspace choices: hosts pass scene-linear light, the models expect display-referred sRGB
/// (DESIGN.md §7). Index order is stored in projects: only append.
pub const COLOURSPACES: &[&str] = &["Linear (converted to/from sRGB)", "sRGB (passed as is)"];

pub fn model_folder(page: &'static str) -> ParamDef {
    ParamDef {
        name: MODEL_FOLDER,
        label: "Model Folder",
        hint: "A diffusers SANA-Video folder (model_index.json, transformer/, vae/, text_encoder/, tokenizer/, \
               scheduler/). Nothing is downloaded: see the README for where to get the weights.",
        page,
        kind: Kind::String { mode: StringMode::Directory, default: "" },
    }
}

pub const DEVICE: &CStr = c"device";
/// Index order is stored in projects: only append.
pub const DEVICES: &[&str] = &["CUDA GPU 0", "CPU (reference backend, slow)"];

pub fn device(page: &'static str) -> ParamDef {
    ParamDef {
        name: DEVICE,
        label: "Device",
        hint: "Where the model runs. CPU works without an NVIDIA driver but is very slow at real sizes.",
        page,
        kind: Kind::Choice { options: DEVICES, default: 0 },
    }
}

/// Where an effect runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Cuda(usize),
    Cpu,
}

/// How frames are handed to (or read from) the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colourspace {
    /// The host's pixels are scene-linear: convert to/from sRGB for the model.
    Linear,
    /// Already display-referred: pass as is.
    Srgb,
}

impl Values {
    pub fn device(&self) -> OfxResult<Device> {
        Ok(match self.choice(DEVICE)? {
            1 => Device::Cpu,
            _ => Device::Cuda(0),
        })
    }

    pub fn colourspace(&self, name: &CStr) -> OfxResult<Colourspace> {
        Ok(if self.choice(name)? == 1 { Colourspace::Srgb } else { Colourspace::Linear })
    }

    /// Model Folder, checked to be an existing folder: the message says what to point it at.
    pub fn model_folder(&self) -> OfxResult<std::path::PathBuf> {
        let folder = self.string(MODEL_FOLDER)?.trim();
        if folder.is_empty() {
            return Err(OfxError::Setting(
                "Model Folder is empty: set it to a diffusers SANA-Video folder (model_index.json, transformer/, vae/, \
                 text_encoder/, tokenizer/)"
                    .into(),
            ));
        }
        let path = std::path::PathBuf::from(folder);
        if !path.is_dir() {
            return Err(OfxError::Setting(format!(
                "Model Folder `{}` does not exist or is not a folder: point it at a diffusers SANA-Video folder",
                path.display()
            )));
        }
        Ok(path)
    }

    /// The prompt, trimmed; empty is an error.
    pub fn prompt(&self) -> OfxResult<String> {
        let prompt = self.string(PROMPT)?.trim().to_string();
        if prompt.is_empty() {
            return Err(OfxError::Setting("Prompt is empty: describe the clip".into()));
        }
        Ok(prompt)
    }
}

pub fn seed(page: &'static str) -> ParamDef {
    ParamDef {
        name: SEED,
        label: "Seed",
        hint: "Seed of the initial noise: the same seed and settings give the same clip.",
        page,
        kind: Kind::Int { default: 42, min: 0, max: i32::MAX },
    }
}

pub fn colourspace(name: &'static CStr, label: &'static str, page: &'static str) -> ParamDef {
    ParamDef {
        name,
        label,
        hint: "Linear: the host's pixels are scene-linear and are converted to/from sRGB for the model. sRGB: \
               pixels are already display-referred and pass unchanged. (SANA Base reads its Image input with \
               its Output Colourspace.)",
        page,
        kind: Kind::Choice { options: COLOURSPACES, default: 0 },
    }
}

// ---- describe -------------------------------------------------------------------------------

/// Defines `defs` in the descriptor's parameter set, then one page per distinct `page` in order.
pub fn describe(suites: &Suites, effect: OfxImageEffectHandle, defs: &[ParamDef]) -> OfxResult<()> {
    let param_set = param_set(suites, effect)?;
    for def in defs {
        define(suites, param_set, def)?;
    }
    let mut pages: Vec<&'static str> = Vec::new();
    for def in defs {
        if !pages.contains(&def.page) {
            pages.push(def.page);
        }
    }
    for page in &pages {
        let name = CString::new(format!("page{}", page.replace(' ', "")))?;
        let props = define_raw(suites, param_set, kOfxParamTypePage, &name)?;
        props.set_string(kOfxPropLabel, 0, page)?;
        for (i, def) in defs.iter().filter(|d| d.page == *page).enumerate() {
            props.set_cstr(kOfxParamPropPageChild, i as i32, def.name)?;
        }
    }
    Ok(())
}

pub fn param_set(suites: &Suites, effect: OfxImageEffectHandle) -> OfxResult<OfxParamSetHandle> {
    let f = suites
        .effect
        .getParamSet
        .ok_or(OfxError::MissingFunction { suite: "image effect", function: "getParamSet" })?;
    let mut set: OfxParamSetHandle = std::ptr::null_mut();
    // SAFETY: effect handle from the host for this action, out-pointer to a live handle.
    let status = unsafe { f(effect, &mut set) };
    if status != kOfxStatOK || set.is_null() {
        return Err(OfxError::property(c"(effect parameter set)", "getParamSet", status));
    }
    Ok(set)
}

fn define_raw(suites: &Suites, set: OfxParamSetHandle, ty: &CStr, name: &CStr) -> OfxResult<PropSet> {
    let f =
        suites.param.paramDefine.ok_or(OfxError::MissingFunction { suite: "parameter", function: "paramDefine" })?;
    let mut props: OfxPropertySetHandle = std::ptr::null_mut();
    // SAFETY: descriptor param set from this describe action; the host copies the names.
    let status = unsafe { f(set, ty.as_ptr(), name.as_ptr(), &mut props) };
    if status != kOfxStatOK || props.is_null() {
        return Err(OfxError::Param { name: name.to_string_lossy().into_owned(), op: "define", status });
    }
    Ok(PropSet::new(props, suites.prop))
}

fn define(suites: &Suites, set: OfxParamSetHandle, def: &ParamDef) -> OfxResult<()> {
    let ty = match def.kind {
        Kind::String { .. } => kOfxParamTypeString,
        Kind::Int { .. } => kOfxParamTypeInteger,
        Kind::Double { .. } => kOfxParamTypeDouble,
        Kind::Choice { .. } => kOfxParamTypeChoice,
        Kind::Bool { .. } => kOfxParamTypeBoolean,
    };
    let p = define_raw(suites, set, ty, def.name)?;
    p.set_string(kOfxPropLabel, 0, def.label)?;
    p.set_string(kOfxParamPropHint, 0, def.hint)?;
    p.set_cstr(kOfxParamPropScriptName, 0, def.name)?;
    // every parameter changes the whole generated clip: no animation (numeric types animate by
    // default, Resolve animates booleans), and hosts drop every cached frame on a change
    allow_missing(p.set_int(kOfxParamPropAnimates, 0, 0))?;
    allow_missing(p.set_cstr(kOfxParamPropCacheInvalidation, 0, kOfxParamInvalidateAll))?;
    match def.kind {
        Kind::String { mode, default } => {
            let mode = match mode {
                StringMode::MultiLine => kOfxParamStringIsMultiLine,
                StringMode::Directory => kOfxParamStringIsDirectoryPath,
            };
            p.set_cstr(kOfxParamPropStringMode, 0, mode)?;
            if mode == kOfxParamStringIsDirectoryPath {
                allow_missing(p.set_int(kOfxParamPropStringFilePathExists, 0, 1))?;
            }
            p.set_string(kOfxParamPropDefault, 0, default)?;
        }
        Kind::Int { default, min, max } => {
            p.set_int(kOfxParamPropDefault, 0, default)?;
            // Resolve needs both the hard and the display range, else an Int is stuck at (0, 0)
            p.set_int(kOfxParamPropMin, 0, min)?;
            p.set_int(kOfxParamPropMax, 0, max)?;
            p.set_int(kOfxParamPropDisplayMin, 0, min)?;
            p.set_int(kOfxParamPropDisplayMax, 0, max.min(min.saturating_add(1000)))?;
        }
        Kind::Double { default, min, max } => {
            p.set_double(kOfxParamPropDefault, 0, default)?;
            p.set_double(kOfxParamPropMin, 0, min)?;
            p.set_double(kOfxParamPropMax, 0, max)?;
            p.set_double(kOfxParamPropDisplayMin, 0, min)?;
            p.set_double(kOfxParamPropDisplayMax, 0, max)?;
        }
        Kind::Choice { options, default } => {
            for (i, option) in options.iter().enumerate() {
                p.set_string(kOfxParamPropChoiceOption, i as i32, option)?;
            }
            p.set_int(kOfxParamPropDefault, 0, default)?;
        }
        Kind::Bool { default } => p.set_int(kOfxParamPropDefault, 0, default as i32)?,
    }
    Ok(())
}

// ---- instance values ------------------------------------------------------------------------

/// A parameter's value at render time.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    String(String),
    Int(i32),
    Double(f64),
    Choice(i32),
    Bool(bool),
}

/// Reads the values of `defs` from an instance's parameter set, in order.
pub fn read_all(suites: &Suites, effect: OfxImageEffectHandle, defs: &[ParamDef]) -> OfxResult<Values> {
    let set = param_set(suites, effect)?;
    let values = defs.iter().map(|def| read(suites, set, def)).collect::<OfxResult<Vec<_>>>()?;
    Ok(Values { names: defs.iter().map(|d| d.name).collect(), values })
}

fn read(suites: &Suites, set: OfxParamSetHandle, def: &ParamDef) -> OfxResult<(Value, String)> {
    let name = def.name.to_string_lossy().into_owned();
    let handle_fn = suites
        .param
        .paramGetHandle
        .ok_or(OfxError::MissingFunction { suite: "parameter", function: "paramGetHandle" })?;
    let get = suites
        .param
        .paramGetValue
        .ok_or(OfxError::MissingFunction { suite: "parameter", function: "paramGetValue" })?;
    let mut handle: OfxParamHandle = std::ptr::null_mut();
    // SAFETY: instance param set, NUL-terminated name, out-pointer to a live handle.
    let status = unsafe { handle_fn(set, def.name.as_ptr(), &mut handle, std::ptr::null_mut()) };
    if status != kOfxStatOK || handle.is_null() {
        return Err(OfxError::Param { name, op: "get handle", status });
    }
    let check = |status: OfxStatus| {
        if status == kOfxStatOK {
            Ok(())
        } else {
            Err(OfxError::Param { name: name.clone(), op: "get value", status })
        }
    };
    // SAFETY (each call): paramGetValue's variadic out-argument has the C type the OFX spec gives
    // for the parameter type (int* for Integer/Choice/Boolean, double* for Double, char** for
    // String, the string owned by the host and copied at once).
    let value = match def.kind {
        Kind::String { .. } => {
            let mut p: *const c_char = std::ptr::null();
            check(unsafe { get(handle, &mut p as *mut *const c_char) })?;
            let s =
                if p.is_null() { String::new() } else { unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned() };
            Value::String(s)
        }
        Kind::Int { .. } | Kind::Choice { .. } | Kind::Bool { .. } => {
            let mut v: i32 = 0;
            check(unsafe { get(handle, &mut v as *mut i32) })?;
            match def.kind {
                Kind::Choice { .. } => Value::Choice(v),
                Kind::Bool { .. } => Value::Bool(v != 0),
                _ => Value::Int(v),
            }
        }
        Kind::Double { .. } => {
            let mut v: f64 = 0.0;
            check(unsafe { get(handle, &mut v as *mut f64) })?;
            Value::Double(v)
        }
    };
    Ok((value, def.label.to_string()))
}

/// The values of one render, looked up by script name; errors name the parameter's label.
pub struct Values {
    names: Vec<&'static CStr>,
    values: Vec<(Value, String)>,
}

impl Values {
    fn find(&self, name: &CStr) -> OfxResult<&(Value, String)> {
        self.names.iter().position(|n| *n == name).map(|i| &self.values[i]).ok_or_else(|| {
            OfxError::Setting(format!("internal: no parameter `{}` on this effect", name.to_string_lossy()))
        })
    }

    fn wrong(&self, name: &CStr, expected: &str) -> OfxError {
        OfxError::Setting(format!("parameter `{}` is not {expected}", name.to_string_lossy()))
    }

    pub fn string(&self, name: &CStr) -> OfxResult<&str> {
        match self.find(name)? {
            (Value::String(s), _) => Ok(s),
            _ => Err(self.wrong(name, "a string")),
        }
    }

    pub fn int(&self, name: &CStr) -> OfxResult<i32> {
        match self.find(name)? {
            (Value::Int(v), _) => Ok(*v),
            _ => Err(self.wrong(name, "an integer")),
        }
    }

    /// An integer that must be at least `min`, with the label in the error.
    pub fn count(&self, name: &CStr, min: i32) -> OfxResult<usize> {
        let v = self.int(name)?;
        if v < min {
            let (_, label) = self.find(name)?;
            return Err(OfxError::Setting(format!("{label} is {v}: expected at least {min}")));
        }
        Ok(v as usize)
    }

    pub fn double(&self, name: &CStr) -> OfxResult<f64> {
        match self.find(name)? {
            (Value::Double(v), _) => Ok(*v),
            _ => Err(self.wrong(name, "a number")),
        }
    }

    pub fn bool(&self, name: &CStr) -> OfxResult<bool> {
        match self.find(name)? {
            (Value::Bool(v), _) => Ok(*v),
            _ => Err(self.wrong(name, "a boolean")),
        }
    }

    pub fn choice(&self, name: &CStr) -> OfxResult<i32> {
        match self.find(name)? {
            (Value::Choice(v), _) => Ok(*v),
            _ => Err(self.wrong(name, "a choice")),
        }
    }

    /// Every value, labelled, into a hash: the clip cache key of an instance.
    pub fn hash_into(&self, key: &mut crate::engine::cache::KeyBuilder) {
        for (name, (value, _)) in self.names.iter().zip(&self.values) {
            let label = name.to_string_lossy();
            match value {
                Value::String(s) => key.str(&label, s),
                Value::Int(v) | Value::Choice(v) => key.u64(&label, *v as i64 as u64),
                Value::Double(v) => key.f64(&label, *v),
                Value::Bool(v) => key.u64(&label, *v as u64),
            };
        }
    }
}
