//! Enabling events in a channel: all of them, or those whose name matches a
//! pattern, optionally filtered by log level (`lttng_enable_event`).

use crate::channel::Channel;
use crate::domain::Domain;
use crate::error::{check_ret, Error, ErrorCode, Result};
use crate::handle::Handle;
use crate::lock;
use crate::name;
use crate::session::Session;
use crate::sys;
use std::ffi::CString;
use std::ptr::NonNull;

/// Which log levels of user-space tracepoints are recorded.
///
/// Levels are lttng-ust's (`TRACE_EMERG` = 0 ... `TRACE_DEBUG` = 14, see
/// [`sys::lttng_loglevel`]); a lower number is more severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LogLevelFilter {
    /// Any level (and tracepoints without one).
    #[default]
    Any,
    /// This level and every more severe one (`--loglevel`).
    AtLeastAsSevereAs(i32),
    /// Exactly this level (`--loglevel-only`).
    Exactly(i32),
}

/// Enables events in a channel.
///
/// ```no_run
/// use lttng_ctl::{Channel, Domain, EventBuilder, LogLevelFilter, Session};
/// let session = Session::from_name("flight-recorder")?;
/// let channel = Channel::new("crash", Domain::UserSpace);
/// EventBuilder::named("my_app:*")
///     .log_level(LogLevelFilter::AtLeastAsSevereAs(4))
///     .enable(&session, &channel)?;
/// # Ok::<(), lttng_ctl::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBuilder {
    pattern: String,
    log_level: LogLevelFilter,
}

impl EventBuilder {
    /// Every tracepoint of the channel's domain (in the kernel domain: every
    /// tracepoint, not system calls).
    pub fn all() -> EventBuilder {
        EventBuilder::named("*")
    }

    /// The tracepoints whose name matches `pattern` (`*` matches any
    /// characters; at most 255 bytes).
    pub fn named(pattern: &str) -> EventBuilder {
        EventBuilder {
            pattern: pattern.to_owned(),
            log_level: LogLevelFilter::Any,
        }
    }

    /// Records only events with these log levels (user space only).
    pub fn log_level(mut self, filter: LogLevelFilter) -> EventBuilder {
        self.log_level = filter;
        self
    }

    /// Enables the events in `channel` of `session`.
    ///
    /// As with `lttng enable-event`, the session daemon creates the channel
    /// with default settings when the session has no channel of that name.
    pub fn enable(&self, session: &Session, channel: &Channel) -> Result<()> {
        let context = || {
            format!(
                "enabling events {:?} in {} channel {:?} of session {:?}",
                self.pattern,
                channel.domain().label(),
                channel.name(),
                session.name()
            )
        };
        if self.pattern.is_empty() {
            return Err(Error::with_message(
                ErrorCode::Invalid,
                "the event name pattern is empty",
                context(),
            ));
        }
        if channel.domain() == Domain::Kernel && self.log_level != LogLevelFilter::Any {
            return Err(Error::with_message(
                ErrorCode::Invalid,
                "log levels only exist in the user-space domain",
                context(),
            ));
        }
        let channel_name =
            name::cstring(channel.name(), Some(name::CHANNEL_NAME_MAX), "channel name")?;
        let event = RawEvent::new(&context)?;
        {
            // SAFETY: the event is live and owned; only its plain fields are
            // written here.
            let raw = unsafe { &mut *event.0.as_ptr() };
            raw.type_ = sys::lttng_event_type::LTTNG_EVENT_TRACEPOINT;
            name::write(&mut raw.name, &self.pattern, "event name pattern")?;
            let (kind, level) = match self.log_level {
                LogLevelFilter::Any => (sys::lttng_loglevel_type::LTTNG_EVENT_LOGLEVEL_ALL, -1),
                LogLevelFilter::AtLeastAsSevereAs(level) => {
                    (sys::lttng_loglevel_type::LTTNG_EVENT_LOGLEVEL_RANGE, level)
                }
                LogLevelFilter::Exactly(level) => {
                    (sys::lttng_loglevel_type::LTTNG_EVENT_LOGLEVEL_SINGLE, level)
                }
            };
            raw.loglevel_type = kind;
            raw.loglevel = level;
        }
        let handle = Handle::new(session, channel.domain(), channel.buffer_type())?;
        let ret = enable(&handle, &event, &channel_name);
        check_ret(ret, context).map(drop)
    }
}

fn enable(handle: &Handle, event: &RawEvent, channel_name: &CString) -> i32 {
    let _guard = lock::lock();
    // SAFETY: handle and event are live and owned, channel_name a valid C
    // string; liblttng-ctl only reads them.
    unsafe { sys::lttng_enable_event(handle.as_ptr(), event.0.as_ptr(), channel_name.as_ptr()) }
}

/// Owns a `struct lttng_event` (with its extended part).
struct RawEvent(NonNull<sys::lttng_event>);

impl RawEvent {
    fn new(context: &dyn Fn() -> String) -> Result<RawEvent> {
        let raw = {
            let _guard = lock::lock();
            // SAFETY: no arguments; returns an owned, zeroed event or NULL.
            unsafe { sys::lttng_event_create() }
        };
        NonNull::new(raw)
            .map(RawEvent)
            .ok_or_else(|| Error::new(ErrorCode::NoMemory, context()))
    }
}

impl Drop for RawEvent {
    fn drop(&mut self) {
        let _guard = lock::lock();
        // SAFETY: owned, freed only here.
        unsafe { sys::lttng_event_destroy(self.0.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_event_rules_are_rejected_before_reaching_liblttng_ctl() {
        let session = Session::from_name("ctl-unit-never-created").unwrap();
        let user = Channel::new("c", Domain::UserSpace);
        let err = EventBuilder::named(&"e".repeat(256))
            .enable(&session, &user)
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Invalid);
        assert!(err.message().contains("at most 255"), "{err}");
        let err = EventBuilder::named("").enable(&session, &user).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Invalid);
        let kernel = Channel::new("c", Domain::Kernel);
        let err = EventBuilder::all()
            .log_level(LogLevelFilter::Exactly(3))
            .enable(&session, &kernel)
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Invalid);
    }
}
