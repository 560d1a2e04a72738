//! The driving side of the harness: finds and builds the bundle, dlopens its binary, and calls
//! the plugin's actions in the order a host does (load, describe, describe in context, create
//! instance, clip preferences, region of definition, frames needed, render, instance changed,
//! destroy, unload).

use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use sana::ofx::sys::*;

use super::host::*;

/// The host's own property set and the OfxHost struct the plugin gets in setHost.
struct HostStatics {
    props: Box<Props>,
    host: Box<OfxHost>,
    parameter: Box<OfxParameterSuiteV1>,
    message_v1: Box<OfxMessageSuiteV1>,
    message_v2: Box<OfxMessageSuiteV2>,
}
// SAFETY: written once at creation, then only read (the property map has its own lock).
unsafe impl Send for HostStatics {}
// SAFETY: as above.
unsafe impl Sync for HostStatics {}

static HOST: OnceLock<HostStatics> = OnceLock::new();

/// fetchSuite: every suite our plugin asks for, and NULL for any other name or version.
unsafe extern "C" fn fetch_suite(_host: OfxPropertySetHandle, name: *const c_char, version: c_int) -> *const c_void {
    let h = HOST.get().expect("host created before fetchSuite");
    let name = CStr::from_ptr(name);
    let suite: *const c_void = match (name.to_bytes(), version) {
        (b"OfxPropertySuite", 1) => &PROPERTY_SUITE as *const _ as _,
        (b"OfxParameterSuite", 1) => &*h.parameter as *const _ as _,
        (b"OfxImageEffectSuite", 1) => &IMAGE_EFFECT_SUITE as *const _ as _,
        (b"OfxMemorySuite", 1) => &MEMORY_SUITE as *const _ as _,
        (b"OfxMessageSuite", 1) => &*h.message_v1 as *const _ as _,
        (b"OfxMessageSuite", 2) => &*h.message_v2 as *const _ as _,
        (b"OfxProgressSuite", 1) => &PROGRESS_SUITE_V1 as *const _ as _,
        (b"OfxProgressSuite", 2) => &PROGRESS_SUITE_V2 as *const _ as _,
        (b"OfxMultiThreadSuite", 1) => &MULTI_THREAD_SUITE as *const _ as _,
        _ => std::ptr::null(),
    };
    suite
}

fn host() -> &'static HostStatics {
    HOST.get_or_init(|| {
        let s = |v: &CStr| V::Str(v.to_owned());
        let props = Props::boxed(&[
            (kOfxPropName, vec![V::str("org.sana-ofx.testhost")]),
            (kOfxPropLabel, vec![V::str("sana-ofx test host")]),
            (kOfxPropAPIVersion, vec![V::Int(1), V::Int(5)]),
            (kOfxImageEffectHostPropIsBackground, vec![V::Int(0)]),
            (kOfxImageEffectPropSupportsOverlays, vec![V::Int(0)]),
            (kOfxImageEffectPropSupportsMultiResolution, vec![V::Int(1)]),
            (kOfxImageEffectPropSupportsTiles, vec![V::Int(1)]),
            (kOfxImageEffectPropTemporalClipAccess, vec![V::Int(1)]),
            (kOfxImageEffectPropSupportsMultipleClipDepths, vec![V::Int(0)]),
            (kOfxImageEffectPropSupportedComponents, vec![s(kOfxImageComponentRGBA)]),
            (
                kOfxImageEffectPropSupportedContexts,
                vec![
                    s(kOfxImageEffectContextGenerator),
                    s(kOfxImageEffectContextFilter),
                    s(kOfxImageEffectContextGeneral),
                ],
            ),
            (kOfxImageEffectPropSupportedPixelDepths, vec![s(kOfxBitDepthFloat)]),
            (kOfxImageEffectInstancePropSequentialRender, vec![V::Int(2)]),
            (kOfxParamHostPropSupportsStringAnimation, vec![V::Int(0)]),
            (kOfxImageEffectPropCudaRenderSupported, vec![V::str("false")]),
        ]);
        let mut statics = HostStatics {
            host: Box::new(OfxHost { host: std::ptr::null_mut(), fetchSuite: Some(fetch_suite) }),
            props,
            parameter: Box::new(parameter_suite()),
            message_v1: Box::new(message_suite_v1()),
            message_v2: Box::new(message_suite_v2()),
        };
        statics.host.host = statics.props.handle();
        statics
    })
}

/// One test at a time drives the plugin: the host pointer and suites are process-wide in the
/// plugin, as in a real host process.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The bundle built by `bundle/build.sh` from this build's cdylib, under target/tmp; the
/// cache folder the plugin writes to is set here too, before the plugin's first render.
pub fn bundle() -> &'static Path {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        // under target/tmp, replaced on every run: the bundle holds a full copy of the cdylib
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ofx-harness");
        // a fresh latent cache: the tests count the entries their renders add
        let _ = std::fs::remove_dir_all(root.join("latents"));
        std::fs::create_dir_all(&root).unwrap();
        // set before the plugin's first render reads it (first use, under `exclusive`)
        std::env::set_var("SANA_CACHE_DIR", root.join("latents"));
        let lib = built_cdylib();
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let status = std::process::Command::new("bash")
            .arg(manifest.join("bundle/build.sh"))
            .arg("--lib")
            .arg(&lib)
            .arg(&root)
            .status()
            .expect("running bundle/build.sh");
        assert!(status.success(), "bundle/build.sh --lib {} {} failed", lib.display(), root.display());
        root.join("SanaVideo.ofx.bundle")
    })
}

/// `libsana.so` of this build: `SANA_OFX_LIB` if set, else beside the test executable's
/// `deps/` folder (cargo builds the cdylib with the tests).
fn built_cdylib() -> PathBuf {
    if let Ok(p) = std::env::var("SANA_OFX_LIB") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    // `cargo test` rebuilds deps/libsana.so with the tests but only `cargo build` refreshes the
    // uplifted target/<profile>/libsana.so: take the newer, never a stale plugin
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    [deps.join("libsana.so"), deps.parent().unwrap().join("libsana.so")]
        .into_iter()
        .filter(|p| p.is_file())
        .max_by_key(modified)
        .unwrap_or_else(|| {
            panic!("no libsana.so beside {}: build the library first (cargo build --lib)", deps.display())
        })
}

/// The plugin binary, loaded once per test process (hosts keep it loaded too).
pub struct Binary {
    _lib: libloading::Library,
    pub count: c_int,
    plugins: Vec<&'static OfxPlugin>,
}

pub fn binary() -> &'static Binary {
    static BINARY: OnceLock<Binary> = OnceLock::new();
    BINARY.get_or_init(|| {
        let path = bundle().join("Contents/Linux-x86-64/SanaVideo.ofx");
        // SAFETY: our own cdylib; its initialisers only set up Rust statics.
        let lib =
            unsafe { libloading::Library::new(&path) }.unwrap_or_else(|e| panic!("dlopen {}: {e}", path.display()));
        // SAFETY: the OFX entry point signatures.
        let (count, plugins) = unsafe {
            let count: libloading::Symbol<unsafe extern "C" fn() -> c_int> = lib.get(b"OfxGetNumberOfPlugins").unwrap();
            let get: libloading::Symbol<unsafe extern "C" fn(c_int) -> *mut OfxPlugin> =
                lib.get(b"OfxGetPlugin").unwrap();
            let n = count();
            let plugins = (0..n).map(|i| &*get(i)).collect::<Vec<_>>();
            (n, plugins)
        };
        Binary { _lib: lib, count, plugins }
    })
}

// SAFETY: OfxPlugin structs are immutable statics in the loaded binary.
unsafe impl Send for Binary {}
// SAFETY: as above.
unsafe impl Sync for Binary {}

impl Binary {
    pub fn plugin(&self, identifier: &str) -> Plugin {
        let p = self
            .plugins
            .iter()
            .find(|p| unsafe { CStr::from_ptr(p.pluginIdentifier) }.to_str() == Ok(identifier))
            .unwrap_or_else(|| panic!("no plugin `{identifier}` in the bundle"));
        Plugin { p }
    }

    pub fn identifiers(&self) -> Vec<String> {
        // SAFETY: identifiers are NUL-terminated static strings of the binary.
        self.plugins
            .iter()
            .map(|p| unsafe { CStr::from_ptr(p.pluginIdentifier) }.to_string_lossy().into_owned())
            .collect()
    }
}

#[derive(Clone, Copy)]
pub struct Plugin {
    pub p: &'static OfxPlugin,
}

impl Plugin {
    /// setHost then Load, as every host does before anything else.
    pub fn load(&self) -> OfxStatus {
        let h = host();
        // SAFETY: setHost takes the host struct that lives for the whole test process.
        unsafe { (self.p.setHost.unwrap())(&*h.host as *const OfxHost as *mut OfxHost) };
        self.action(kOfxActionLoad, std::ptr::null(), None, None)
    }

    pub fn unload(&self) -> OfxStatus {
        self.action(kOfxActionUnload, std::ptr::null(), None, None)
    }

    pub fn action(
        &self,
        action: &CStr,
        handle: *const c_void,
        in_args: Option<&Props>,
        out_args: Option<&Props>,
    ) -> OfxStatus {
        let h = |p: Option<&Props>| p.map_or(std::ptr::null_mut(), |p| p.handle());
        // SAFETY: the plugin's mainEntry with handles to live harness objects.
        unsafe { (self.p.mainEntry.unwrap())(action.as_ptr(), handle, h(in_args), h(out_args)) }
    }

    /// Describe: a fresh descriptor.
    pub fn describe(&self) -> (OfxStatus, Box<Effect>) {
        let d = Box::<Effect>::default();
        d.props.set(kOfxPropType, vec![V::str("OfxTypeImageEffect")]);
        let status = self.action(kOfxActionDescribe, d.handle() as *const c_void, None, None);
        (status, d)
    }

    /// DescribeInContext on a copy of the described properties, as hosts do per context.
    pub fn describe_in_context(&self, described: &Effect, context: &CStr) -> (OfxStatus, Box<Effect>) {
        let d = Box::new(Effect { props: described.props.copy(), ..Default::default() });
        let in_args = Props::boxed(&[(kOfxImageEffectPropContext, vec![V::Str(context.to_owned())])]);
        let status =
            self.action(kOfxImageEffectActionDescribeInContext, d.handle() as *const c_void, Some(&in_args), None);
        (status, d)
    }

    /// CreateInstance from a context descriptor: its parameters at their defaults, its clips
    /// (unconnected unless a plate is attached later), a 1920×1080 square-pixel project.
    pub fn create_instance(&self, descriptor: &Effect, context: &CStr) -> (OfxStatus, Box<Effect>) {
        let props = descriptor.props.copy();
        props.set(kOfxPropType, vec![V::str("OfxTypeImageEffectInstance")]);
        props.set(kOfxImageEffectPropContext, vec![V::Str(context.to_owned())]);
        props.set(kOfxPropIsInteractive, vec![V::Int(0)]);
        props.set(kOfxImageEffectPropProjectSize, vec![V::Double(1920.0), V::Double(1080.0)]);
        props.set(kOfxImageEffectPropProjectExtent, vec![V::Double(1920.0), V::Double(1080.0)]);
        props.set(kOfxImageEffectPropProjectOffset, vec![V::Double(0.0), V::Double(0.0)]);
        props.set(kOfxImageEffectPropProjectPixelAspectRatio, vec![V::Double(1.0)]);
        props.set(kOfxImageEffectInstancePropEffectDuration, vec![V::Double(100.0)]);
        props.set(kOfxImageEffectInstancePropSequentialRender, vec![V::Int(0)]);
        props.set(kOfxImageEffectPropFrameRate, vec![V::Double(16.0)]);
        let instance = Box::new(Effect { props, params: descriptor.params.instantiate(), ..Default::default() });
        for c in descriptor.clips.lock().unwrap().iter() {
            let props = c.props.copy();
            props.set(kOfxImageClipPropConnected, vec![V::Int(0)]);
            props.set(kOfxImageEffectPropPixelDepth, vec![V::Str(kOfxBitDepthFloat.to_owned())]);
            props.set(kOfxImageEffectPropComponents, vec![V::Str(kOfxImageComponentRGBA.to_owned())]);
            props.set(kOfxImageClipPropFieldOrder, vec![V::Str(kOfxImageFieldNone.to_owned())]);
            props.set(kOfxImageEffectPropFrameRange, vec![V::Double(1.0), V::Double(100.0)]);
            let clip = Clip::new(&c.name, props);
            CLIPS.lock().unwrap().push(&*clip as *const Clip as usize);
            instance.clips.lock().unwrap().push(clip);
        }
        let status = self.action(kOfxActionCreateInstance, instance.handle() as *const c_void, None, None);
        (status, instance)
    }

    pub fn destroy_instance(&self, instance: Box<Effect>) -> OfxStatus {
        // the clips leave CLIPS when `instance` drops (host.rs `Drop for Clip`)
        self.action(kOfxActionDestroyInstance, instance.handle() as *const c_void, None, None)
    }

    /// An instance action with `in_args`; returns the status and the out-args the plugin set.
    pub fn call(&self, instance: &Effect, action: &CStr, in_args: &[(&CStr, Vec<V>)]) -> (OfxStatus, Box<Props>) {
        let in_args = Props::boxed(in_args);
        let out_args = Box::<Props>::default();
        let status = self.action(action, instance.handle() as *const c_void, Some(&in_args), Some(&out_args));
        (status, out_args)
    }

    /// Region of definition at `time` (render scale 1).
    pub fn region_of_definition(&self, instance: &Effect, time: f64) -> (OfxStatus, Option<Vec<f64>>) {
        let (status, out) = self.call(
            instance,
            kOfxImageEffectActionGetRegionOfDefinition,
            &[
                (kOfxPropTime, vec![V::Double(time)]),
                (kOfxImageEffectPropRenderScale, vec![V::Double(1.0), V::Double(1.0)]),
            ],
        );
        (status, out.doubles(kOfxImageEffectPropRegionOfDefinition))
    }

    /// Render one frame as a host does: RoD → output image bounds, then the Render action.
    pub fn render(&self, instance: &Effect, time: f64) -> OfxStatus {
        let (status, rod) = self.region_of_definition(instance, time);
        if status != kOfxStatOK {
            return status;
        }
        let rod = rod.expect("RoD set");
        let bounds = [rod[0] as i32, rod[1] as i32, rod[2] as i32, rod[3] as i32];
        let output = instance.clip("Output").expect("Output clip");
        // SAFETY: the clip lives in `instance`.
        *unsafe { &*output }.bounds.lock().unwrap() = bounds;
        let window: Vec<V> = bounds.iter().map(|v| V::Int(*v)).collect();
        self.call(
            instance,
            kOfxImageEffectActionRender,
            &[
                (kOfxPropTime, vec![V::Double(time)]),
                (kOfxImageEffectPropRenderWindow, window),
                (kOfxImageEffectPropRenderScale, vec![V::Double(1.0), V::Double(1.0)]),
                (kOfxImageEffectPropFieldToRender, vec![V::Str(kOfxImageFieldNone.to_owned())]),
                (kOfxImageEffectPropSequentialRenderStatus, vec![V::Int(0)]),
                (kOfxImageEffectPropInteractiveRenderStatus, vec![V::Int(0)]),
                (kOfxImageEffectPropRenderQualityDraft, vec![V::Int(0)]),
            ],
        )
        .0
    }

    /// A user edit of `param`: Begin/InstanceChanged/End, as hosts wrap it.
    pub fn instance_changed(&self, instance: &Effect, param: &str, value: V) -> OfxStatus {
        instance.set_param(param, value);
        let reason = vec![V::Str(kOfxChangeUserEdited.to_owned())];
        self.call(instance, kOfxActionBeginInstanceChanged, &[(kOfxPropChangeReason, reason.clone())]);
        let (status, _) = self.call(
            instance,
            kOfxActionInstanceChanged,
            &[
                (kOfxPropType, vec![V::Str(kOfxTypeParameter.to_owned())]),
                (kOfxPropName, vec![V::str(param)]),
                (kOfxPropChangeReason, reason.clone()),
                (kOfxPropTime, vec![V::Double(1.0)]),
                (kOfxImageEffectPropRenderScale, vec![V::Double(1.0), V::Double(1.0)]),
            ],
        );
        self.call(instance, kOfxActionEndInstanceChanged, &[(kOfxPropChangeReason, reason)]);
        status
    }
}

/// Attaches a plate to an input clip: connected, frames `first..=last`, served by `plate`.
pub fn connect_plate(instance: &Effect, clip: &str, first: f64, last: f64, plate: Plate) {
    let c = instance.clip(clip).unwrap_or_else(|| panic!("no clip `{clip}`"));
    // SAFETY: the clip lives in `instance`.
    let c = unsafe { &*c };
    c.props.set(kOfxImageClipPropConnected, vec![V::Int(1)]);
    c.props.set(kOfxImageEffectPropFrameRange, vec![V::Double(first), V::Double(last)]);
    *c.plate.lock().unwrap() = Some(plate);
}
