//! SIGTERM/SIGINT (stop after a final pass) and SIGUSR1 (a pass now) for `state run`.
//!
//! `unsafe` is needed once, to install the handlers with `signal(2)`; the handlers only store to
//! atomics, which is async-signal-safe, and the loop polls them.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static SYNC_NOW: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_sync(_: libc::c_int) {
    SYNC_NOW.store(true, Ordering::SeqCst);
}

/// Installs the handlers.
pub fn install() {
    let stop = on_stop as extern "C" fn(libc::c_int) as *const () as libc::sighandler_t;
    let sync = on_sync as extern "C" fn(libc::c_int) as *const () as libc::sighandler_t;
    // SAFETY: the handlers are async-signal-safe (atomic stores only).
    unsafe {
        libc::signal(libc::SIGTERM, stop);
        libc::signal(libc::SIGINT, stop);
        libc::signal(libc::SIGUSR1, sync);
    }
}

/// True once SIGTERM or SIGINT arrived.
pub fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// True once per SIGUSR1.
pub fn take_sync_request() -> bool {
    SYNC_NOW.swap(false, Ordering::SeqCst)
}
