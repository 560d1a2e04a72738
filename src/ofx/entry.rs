//! The one dispatcher: matches the action name, runs it inside `catch_unwind`, and turns every
//! error or panic into an OFX status plus a persistent message on the node. No panic crosses the
//! FFI boundary (it would take the host down with us). Unknown actions reply default, as the
//! OpenFX `Examples/Basic/basic.cpp` does.

use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::effect::{create_instance, destroy_instance, instance, EffectKind};
use super::error::{OfxError, OfxResult};
use super::props::PropSet;
use super::suites::{self, Severity, Suites};
use super::sys::*;
use super::{base, refine, render};

/// What an action did: handled, or left to the host's default behaviour.
enum Reply {
    Handled,
    Default,
}

pub unsafe extern "C" fn base_main(
    action: *const c_char,
    handle: *const c_void,
    in_args: OfxPropertySetHandle,
    out_args: OfxPropertySetHandle,
) -> OfxStatus {
    main_entry(EffectKind::Base, action, handle, in_args, out_args)
}

pub unsafe extern "C" fn refine_main(
    action: *const c_char,
    handle: *const c_void,
    in_args: OfxPropertySetHandle,
    out_args: OfxPropertySetHandle,
) -> OfxStatus {
    main_entry(EffectKind::Refine, action, handle, in_args, out_args)
}

pub unsafe extern "C" fn set_host(host: *mut OfxHost) {
    // storing a pointer cannot panic; nothing to catch
    suites::set_host(host);
}

/// Actions whose handle is an instance (a message can be shown on its node).
fn is_instance_action(action: &CStr) -> bool {
    ![kOfxActionLoad, kOfxActionUnload, kOfxActionDescribe, kOfxImageEffectActionDescribeInContext].contains(&action)
}

fn main_entry(
    kind: EffectKind,
    action: *const c_char,
    handle: *const c_void,
    in_args: OfxPropertySetHandle,
    out_args: OfxPropertySetHandle,
) -> OfxStatus {
    if action.is_null() {
        return kOfxStatErrBadHandle;
    }
    // SAFETY: the host passes the action as a NUL-terminated string (one of the kOfx*Action names).
    let action = unsafe { CStr::from_ptr(action) };
    let effect = handle as OfxImageEffectHandle;
    let outcome = catch_unwind(AssertUnwindSafe(|| dispatch(kind, action, effect, in_args, out_args)));
    let error = match outcome {
        Ok(Ok(Reply::Handled)) => return kOfxStatOK,
        Ok(Ok(Reply::Default)) => return kOfxStatReplyDefault,
        Ok(Err(e)) => e,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            OfxError::Setting(format!(
                "internal error in {} ({what}); please report it with the steps that led here",
                action.to_string_lossy()
            ))
        }
    };
    report(action, effect, &error);
    error.status()
}

/// Posts the error on the node (instance actions only; an abort is not an error to show).
fn report(action: &CStr, effect: OfxImageEffectHandle, error: &OfxError) {
    if matches!(error, OfxError::Aborted) || effect.is_null() || !is_instance_action(action) {
        return;
    }
    let Ok(suites) = suites::suites() else { return };
    // a panic while reporting must not escape either
    let _ = catch_unwind(AssertUnwindSafe(|| {
        suites.set_persistent_message(effect as *mut c_void, Severity::Error, &error.to_string());
    }));
}

fn dispatch(
    kind: EffectKind,
    action: &CStr,
    effect: OfxImageEffectHandle,
    in_args: OfxPropertySetHandle,
    out_args: OfxPropertySetHandle,
) -> OfxResult<Reply> {
    if action == kOfxActionLoad {
        suites::load()?;
        return Ok(Reply::Handled);
    }
    if action == kOfxActionUnload {
        // suites stay valid while the binary is loaded; a later Load refetches them
        return Ok(Reply::Handled);
    }
    let suites = suites::suites()?;
    let suites: &Suites = &suites;
    let args = |h: OfxPropertySetHandle| PropSet::new(h, suites.prop);
    match action.to_bytes() {
        b"OfxActionDescribe" => match kind {
            EffectKind::Base => base::describe(suites, effect)?,
            EffectKind::Refine => refine::describe(suites, effect)?,
        },
        b"OfxImageEffectActionDescribeInContext" => {
            let context = args(in_args).get_string(kOfxImageEffectPropContext, 0)?;
            match kind {
                EffectKind::Base => base::describe_in_context(suites, effect, &context)?,
                EffectKind::Refine => refine::describe_in_context(suites, effect)?,
            }
        }
        b"OfxActionCreateInstance" => create_instance(suites, effect, kind)?,
        b"OfxActionDestroyInstance" => destroy_instance(suites, effect)?,
        b"OfxImageEffectActionGetClipPreferences" => match kind {
            EffectKind::Base => base::clip_preferences(&args(out_args))?,
            EffectKind::Refine => refine::clip_preferences(&args(out_args))?,
        },
        b"OfxImageEffectActionGetRegionOfDefinition" => match kind {
            EffectKind::Base => base::region_of_definition(suites, effect, &args(out_args))?,
            EffectKind::Refine => refine::region_of_definition(suites, effect, &args(in_args), &args(out_args))?,
        },
        b"OfxImageEffectActionGetRegionsOfInterest" => match kind {
            EffectKind::Base => return Ok(Reply::Default),
            EffectKind::Refine => refine::regions_of_interest(suites, effect, &args(in_args), &args(out_args))?,
        },
        b"OfxImageEffectActionGetTimeDomain" => match kind {
            EffectKind::Base => base::time_domain(suites, effect, &args(out_args))?,
            // a filter's time domain is its input's: the host default
            EffectKind::Refine => return Ok(Reply::Default),
        },
        b"OfxImageEffectActionGetFramesNeeded" => match kind {
            EffectKind::Base => base::frames_needed(suites, effect, &args(out_args))?,
            EffectKind::Refine => refine::frames_needed(suites, effect, &args(in_args), &args(out_args))?,
        },
        b"OfxImageEffectActionIsIdentity" => return Ok(Reply::Default),
        b"OfxImageEffectActionRender" => render::render(suites, effect, &args(in_args))?,
        b"OfxActionInstanceChanged" => {
            // a changed parameter may fix what the last message complained about (Nuke blocks
            // renders while a persistent error stands); the next render says so again if not
            instance(suites, effect)?;
            suites.clear_persistent_message(effect as *mut c_void);
        }
        _ => return Ok(Reply::Default),
    }
    Ok(Reply::Handled)
}
