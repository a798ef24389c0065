//! `struct lttng_handle`: the (session, domain) pair that channel and event
//! commands are addressed to, created for one command and destroyed after.

use crate::domain::{BufferType, Domain};
use crate::error::{Error, ErrorCode, Result};
use crate::lock;
use crate::session::Session;
use crate::sys;
use std::ptr::NonNull;

/// Owns a `struct lttng_handle`.
pub(crate) struct Handle(NonNull<sys::lttng_handle>);

impl Handle {
    /// A handle on `session` in `domain` with `buffers`.
    pub(crate) fn new(session: &Session, domain: Domain, buffers: BufferType) -> Result<Handle> {
        let mut raw_domain = domain.to_sys(buffers);
        let raw = {
            let _guard = lock::lock();
            // SAFETY: the session name is a valid C string and raw_domain a
            // valid domain; both are copied into the new handle.
            unsafe { sys::lttng_create_handle(session.c_name().as_ptr(), &mut raw_domain) }
        };
        NonNull::new(raw).map(Handle).ok_or_else(|| {
            Error::new(
                ErrorCode::NoMemory,
                format!(
                    "creating a {} handle on session {:?}",
                    domain.label(),
                    session.name()
                ),
            )
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::lttng_handle {
        self.0.as_ptr()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _guard = lock::lock();
        // SAFETY: owned, freed only here.
        unsafe { sys::lttng_destroy_handle(self.0.as_ptr()) }
    }
}
