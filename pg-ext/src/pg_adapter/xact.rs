//! Transaction callbacks: clean up session state a failed applier step leaves behind.

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::pg_adapter::origin;

/// Registers the callback. Called once from `_PG_init`.
pub fn init() {
    // SAFETY: registering a callback with a static function and no argument is always valid.
    unsafe { pg_sys::RegisterXactCallback(Some(on_xact_event), std::ptr::null_mut()) };
}

#[pg_guard]
unsafe extern "C-unwind" fn on_xact_event(
    event: pg_sys::XactEvent::Type,
    _arg: *mut core::ffi::c_void,
) {
    if event == pg_sys::XactEvent::XACT_EVENT_ABORT
        || event == pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
    {
        origin::reset_after_abort();
    }
}
