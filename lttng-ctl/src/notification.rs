//! LTTng 2.13 notifications: a channel to the session daemon's notification
//! endpoint, subscribed to triggers' conditions, from which notifications
//! are received within a bound, each decoded into a plain value (the
//! trigger's name and owner, and the values its capture descriptors
//! captured at the event).
//!
//! # Bounds and the process-wide lock
//! A notification channel is liblttng-ctl's own connection, with its own
//! mutex: subscribing and receiving touch only the channel's state, never
//! the library's global connection state. So, unlike every other call of
//! this crate, [`NotificationChannel::subscribe`] and
//! [`NotificationChannel::next`] do not hold the process-wide lock while
//! they wait on the session daemon (holding it would stall every other
//! liblttng-ctl caller of the process, and the engine's child processes, for as long
//! as the daemon takes). Creating the channel takes it (liblttng-ctl reads
//! the tracing group there) and so does decoding a notification.
//!
//! liblttng-ctl's own receive (`lttng_notification_channel_get_next_notification`)
//! blocks without a bound. [`NotificationChannel::next`] never calls it
//! before a message is there: it waits with `poll(2)` on the channel's
//! socket for at most the timeout, then lets liblttng-ctl read the
//! message that arrived (`lttng_notification_channel_has_pending_notification`
//! reads only when the socket is readable). The socket is not in
//! liblttng-ctl's public API: it is read from the channel's 2.13 layout
//! (`struct lttng_notification_channel { pthread_mutex_t lock; int socket; ... }`,
//! include/lttng/notification/channel-internal.h) and used only once
//! `fstat` says it is a Unix socket; otherwise (another layout) the wait
//! falls back to asking liblttng-ctl every [`FALLBACK_INTERVAL`], which is
//! bounded too.
//!
//! # Who gets what
//! The session daemon sends a client only the notifications of triggers
//! owned by the client's uid (root included: root's channel hears only
//! root's triggers), of the conditions it subscribed to.

use crate::error::{Error, ErrorCode, Result};
use crate::trigger::{decode_captures, CaptureExpr, Trigger, TriggerRef};
use crate::{lock, sys};
use std::ffi::{c_char, c_int, c_uint, CStr};
use std::os::fd::{BorrowedFd, RawFd};
use std::ptr::{self, NonNull};
use std::time::{Duration, Instant};

/// How often the wait asks liblttng-ctl when the channel's socket could not
/// be found.
pub const FALLBACK_INTERVAL: Duration = Duration::from_millis(20);

/// Longest string value kept from a capture, in bytes (longer ones are cut).
pub const MAX_STRING_VALUE: usize = 4096;
/// Most elements kept from a captured array.
pub const MAX_ARRAY_VALUES: usize = 64;

/// One captured value (`lttng_event_field_value`).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// An unsigned integer (or unsigned enumeration).
    Unsigned(u64),
    /// A signed integer (or signed enumeration).
    Signed(i64),
    /// A floating point number.
    Real(f64),
    /// A string (cut at [`MAX_STRING_VALUE`] bytes).
    String(String),
    /// An array (at most [`MAX_ARRAY_VALUES`] elements; `None`: unavailable).
    Array(Vec<Option<FieldValue>>),
}

impl FieldValue {
    /// The value as an integer, when it is one that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            FieldValue::Signed(v) => Some(v),
            FieldValue::Unsigned(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as an unsigned integer, when it is a non-negative one.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            FieldValue::Unsigned(v) => Some(v),
            FieldValue::Signed(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
}

/// One capture descriptor of the trigger and what it captured at the event
/// (`None`: unavailable, e.g. a field the event does not have).
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    /// The capture descriptor.
    pub expr: CaptureExpr,
    /// Its value.
    pub value: Option<FieldValue>,
}

/// A notification, decoded: which trigger fired, whose it is, and what it
/// captured. Nothing in it is vouched for by anyone but the traced process
/// for the captured values (the tracer runs inside it).
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The trigger's name (`None`: anonymous).
    pub trigger_name: Option<String>,
    /// The trigger's owner, as the session daemon says.
    pub owner_uid: u32,
    /// The capture descriptors and their values, in the descriptors' order
    /// (empty for any other condition than event-rule-matches).
    pub captured: Vec<Captured>,
}

impl Notification {
    /// The value captured by the descriptor `expr`, if the trigger has it
    /// and the value was available.
    pub fn value_of(&self, expr: &CaptureExpr) -> Option<&FieldValue> {
        self.captured
            .iter()
            .find(|c| &c.expr == expr)
            .and_then(|c| c.value.as_ref())
    }
}

/// What a wait for a notification gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A notification.
    Notification(Notification),
    /// The session daemon dropped notifications for this client (its queue
    /// for the client was full): how many is not said.
    Dropped,
    /// Nothing came within the timeout.
    Timeout,
}

/// A connection to the session daemon's notification endpoint.
pub struct NotificationChannel {
    raw: NonNull<sys::lttng_notification_channel>,
    /// The channel's socket, when found (see the module's documentation).
    socket: Option<RawFd>,
}

// SAFETY: the channel is a heap object guarded by its own mutex, with no
// thread affinity; it is used through `&mut self` only.
unsafe impl Send for NotificationChannel {}

fn channel_error(status: sys::lttng_notification_channel_status, context: String) -> Error {
    use sys::lttng_notification_channel_status as S;
    let (code, message) = match status {
        S::LTTNG_NOTIFICATION_CHANNEL_STATUS_CLOSED => (
            ErrorCode::NoSessionDaemon,
            "the notification channel is closed",
        ),
        S::LTTNG_NOTIFICATION_CHANNEL_STATUS_ALREADY_SUBSCRIBED => {
            (ErrorCode::Invalid, "already subscribed to this condition")
        }
        S::LTTNG_NOTIFICATION_CHANNEL_STATUS_UNKNOWN_CONDITION => (
            ErrorCode::Invalid,
            "the session daemon does not know this condition",
        ),
        S::LTTNG_NOTIFICATION_CHANNEL_STATUS_INVALID => (ErrorCode::Invalid, "invalid argument"),
        S::LTTNG_NOTIFICATION_CHANNEL_STATUS_UNSUPPORTED_VERSION => (
            ErrorCode::Fatal,
            "the session daemon speaks another notification protocol version",
        ),
        S::LTTNG_NOTIFICATION_CHANNEL_STATUS_INTERRUPTED => (ErrorCode::Cancelled, "interrupted"),
        _ => (ErrorCode::Fatal, "notification channel error"),
    };
    Error::with_message(
        code,
        format!("{message} (notification channel status {})", status.0),
        context,
    )
}

impl NotificationChannel {
    /// Connects to the notification endpoint of the session daemon this
    /// process talks to: root's (`/var/run/lttng/sessiond-notification`)
    /// for root and members of the tracing group, else the user's own.
    pub fn connect() -> Result<NotificationChannel> {
        let raw = {
            let _guard = lock::lock();
            // SAFETY: the endpoint is a static object of liblttng-ctl; the
            // call connects and handshakes, returning NULL on failure.
            unsafe {
                sys::lttng_notification_channel_create(
                    sys::lttng_session_daemon_notification_endpoint,
                )
            }
        };
        let raw = NonNull::new(raw).ok_or_else(|| {
            Error::with_message(
                ErrorCode::NoSessionDaemon,
                "no session daemon answered on its notification endpoint",
                "connecting a notification channel",
            )
        })?;
        Ok(NotificationChannel {
            raw,
            socket: find_socket(raw),
        })
    }

    /// Whether the wait polls the channel's socket (true with liblttng-ctl
    /// 2.13's layout) rather than asking liblttng-ctl every
    /// [`FALLBACK_INTERVAL`].
    pub fn polls_socket(&self) -> bool {
        self.socket.is_some()
    }

    fn subscribe_raw(&mut self, condition: *const sys::lttng_condition, what: &str) -> Result<()> {
        if condition.is_null() {
            return Err(Error::with_message(
                ErrorCode::InvalidTrigger,
                "the trigger has no condition",
                format!("subscribing to {what}"),
            ));
        }
        // SAFETY: the channel is live and exclusively borrowed; the
        // condition is live for the call (the caller's borrow); it is
        // serialized and sent, not kept.
        let status =
            unsafe { sys::lttng_notification_channel_subscribe(self.raw.as_ptr(), condition) };
        if status == sys::lttng_notification_channel_status::LTTNG_NOTIFICATION_CHANNEL_STATUS_OK {
            Ok(())
        } else {
            Err(channel_error(status, format!("subscribing to {what}")))
        }
    }

    /// Subscribes to the condition of a listed trigger: notifications of
    /// every trigger of the channel's uid with an equal condition come.
    pub fn subscribe(&mut self, trigger: &TriggerRef<'_>) -> Result<()> {
        let what = format!(
            "the condition of trigger {:?}",
            trigger.info().name.unwrap_or_default()
        );
        self.subscribe_raw(trigger.condition_ptr(), &what)
    }

    /// Subscribes to the condition of a trigger built in this process.
    pub fn subscribe_built(&mut self, trigger: &Trigger) -> Result<()> {
        self.subscribe_raw(trigger.condition_ptr(), "a trigger's condition")
    }

    /// The next notification, waiting at most `timeout` for one to come.
    ///
    /// Once a message has started to arrive, liblttng-ctl reads it whole:
    /// a session daemon that sends half a message and stops would hold
    /// this call (the daemon is root's or the caller's own, trusted as
    /// every other call of this crate trusts it).
    pub fn next(&mut self, timeout: Duration) -> Result<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.pending()? {
                return self.take();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Received::Timeout);
            }
            match self.socket {
                Some(fd) => {
                    // SAFETY: the channel owns the socket for as long as it
                    // lives; the borrow ends with this call.
                    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
                    let mut fds = [rustix_poll_fd(fd)];
                    let ms = left.as_millis().clamp(1, c_int::MAX as u128) as c_int;
                    // SAFETY: one valid pollfd.
                    let ret = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
                    if ret < 0 {
                        let err = std::io::Error::last_os_error();
                        if err.kind() != std::io::ErrorKind::Interrupted {
                            return Err(Error::with_message(
                                ErrorCode::Fatal,
                                format!("poll: {err}"),
                                "waiting for a notification",
                            ));
                        }
                    }
                }
                None => std::thread::sleep(left.min(FALLBACK_INTERVAL)),
            }
        }
    }

    /// Whether a notification (or a "dropped" message) is queued, reading
    /// one message from the socket only when it is readable.
    fn pending(&mut self) -> Result<bool> {
        let mut pending = false;
        // SAFETY: live channel, valid out-pointer.
        let status = unsafe {
            sys::lttng_notification_channel_has_pending_notification(
                self.raw.as_ptr(),
                &mut pending,
            )
        };
        if status == sys::lttng_notification_channel_status::LTTNG_NOTIFICATION_CHANNEL_STATUS_OK {
            Ok(pending)
        } else {
            Err(channel_error(
                status,
                "looking for a pending notification".into(),
            ))
        }
    }

    /// Takes the queued notification (there is one: `pending` said so, so
    /// liblttng-ctl does not read the socket).
    fn take(&mut self) -> Result<Received> {
        use sys::lttng_notification_channel_status as S;
        let mut raw: *mut sys::lttng_notification = ptr::null_mut();
        // SAFETY: live channel, valid out-pointer; on OK we own the
        // notification.
        let status = unsafe {
            sys::lttng_notification_channel_get_next_notification(self.raw.as_ptr(), &mut raw)
        };
        match status {
            S::LTTNG_NOTIFICATION_CHANNEL_STATUS_OK => {
                let raw = NonNull::new(raw).ok_or_else(|| {
                    Error::with_message(
                        ErrorCode::Fatal,
                        "liblttng-ctl returned no notification",
                        "receiving a notification",
                    )
                })?;
                let decoded = {
                    let _guard = lock::lock();
                    // SAFETY: owned and live until destroyed just below.
                    unsafe { decode_notification(raw.as_ptr()) }
                };
                // SAFETY: owned, destroyed once.
                unsafe { sys::lttng_notification_destroy(raw.as_ptr()) };
                Ok(Received::Notification(decoded))
            }
            S::LTTNG_NOTIFICATION_CHANNEL_STATUS_NOTIFICATIONS_DROPPED => Ok(Received::Dropped),
            other => Err(channel_error(other, "receiving a notification".into())),
        }
    }
}

impl Drop for NotificationChannel {
    fn drop(&mut self) {
        // SAFETY: owned, destroyed once (closes its socket).
        unsafe { sys::lttng_notification_channel_destroy(self.raw.as_ptr()) };
    }
}

fn rustix_poll_fd(fd: BorrowedFd<'_>) -> libc::pollfd {
    use std::os::fd::AsRawFd;
    libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }
}

/// The channel's socket, read from liblttng-ctl 2.13's layout and kept only
/// when it is a Unix stream socket (see the module's documentation).
fn find_socket(raw: NonNull<sys::lttng_notification_channel>) -> Option<RawFd> {
    // SAFETY: the channel was just created by liblttng-ctl 2.13, whose
    // struct starts with a pthread_mutex_t followed by the socket's int;
    // both are within the allocation. The value is checked below before
    // being used as a descriptor.
    let fd = unsafe {
        raw.as_ptr()
            .cast::<u8>()
            .add(std::mem::size_of::<libc::pthread_mutex_t>())
            .cast::<c_int>()
            .read_unaligned()
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: fstat and getsockopt only read the descriptor table entry
    // (any int is safe to pass); the out-pointers are valid.
    let (is_socket, domain, kind) = unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        let is_socket =
            libc::fstat(fd, &mut stat) == 0 && stat.st_mode & libc::S_IFMT == libc::S_IFSOCK;
        let mut domain: c_int = -1;
        let mut kind: c_int = -1;
        let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&mut domain as *mut c_int).cast(),
            &mut len,
        );
        len = std::mem::size_of::<c_int>() as libc::socklen_t;
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut kind as *mut c_int).cast(),
            &mut len,
        );
        (is_socket, domain, kind)
    };
    (is_socket && domain == libc::AF_UNIX && kind == libc::SOCK_STREAM).then_some(fd)
}

/// Decodes a notification.
///
/// # Safety
/// `notification` must be live; the lock must be held.
unsafe fn decode_notification(notification: *mut sys::lttng_notification) -> Notification {
    // SAFETY: for the whole body, `notification` is live; its trigger,
    // condition and evaluation live as long as it.
    unsafe {
        let trigger = sys::lttng_notification_get_trigger(notification);
        let (trigger_name, owner_uid) = if trigger.is_null() {
            (None, u32::MAX)
        } else {
            let mut name: *const c_char = ptr::null();
            let name = (sys::lttng_trigger_get_name(trigger, &mut name)
                == sys::lttng_trigger_status::LTTNG_TRIGGER_STATUS_OK
                && !name.is_null())
            .then(|| CStr::from_ptr(name).to_string_lossy().into_owned());
            let mut uid: sys::uid_t = u32::MAX;
            if sys::lttng_trigger_get_owner_uid(trigger, &mut uid)
                != sys::lttng_trigger_status::LTTNG_TRIGGER_STATUS_OK
            {
                uid = u32::MAX;
            }
            (name, uid)
        };
        let condition = sys::lttng_notification_get_condition(notification);
        let exprs = if condition.is_null() {
            Vec::new()
        } else {
            decode_captures(condition)
        };
        let evaluation = sys::lttng_notification_get_evaluation(notification);
        let mut values: *const sys::lttng_event_field_value = ptr::null();
        let has_values = !evaluation.is_null()
            && sys::lttng_evaluation_get_type(evaluation)
                == sys::lttng_condition_type::LTTNG_CONDITION_TYPE_EVENT_RULE_MATCHES
            && sys::lttng_evaluation_event_rule_matches_get_captured_values(
                evaluation,
                &mut values,
            ) == sys::lttng_evaluation_event_rule_matches_status::LTTNG_EVALUATION_EVENT_RULE_MATCHES_STATUS_OK
            && !values.is_null();
        let captured = exprs
            .into_iter()
            .enumerate()
            .map(|(i, expr)| Captured {
                expr,
                value: if has_values {
                    element(values, i as c_uint).and_then(|v| decode_value(v, 0))
                } else {
                    None
                },
            })
            .collect();
        Notification {
            trigger_name,
            owner_uid,
            captured,
        }
    }
}

/// Element `index` of the array value `array`, if available.
///
/// # Safety
/// `array` must be live.
unsafe fn element(
    array: *const sys::lttng_event_field_value,
    index: c_uint,
) -> Option<*const sys::lttng_event_field_value> {
    let mut length: c_uint = 0;
    let mut elem: *const sys::lttng_event_field_value = ptr::null();
    // SAFETY: `array` is live (caller's contract); valid out-pointers.
    unsafe {
        if sys::lttng_event_field_value_array_get_length(array, &mut length)
            != sys::lttng_event_field_value_status::LTTNG_EVENT_FIELD_VALUE_STATUS_OK
            || index >= length
        {
            return None;
        }
        (sys::lttng_event_field_value_array_get_element_at_index(array, index, &mut elem)
            == sys::lttng_event_field_value_status::LTTNG_EVENT_FIELD_VALUE_STATUS_OK
            && !elem.is_null())
        .then_some(elem)
    }
}

/// Decodes one value (arrays to one level of nesting, within the bounds).
///
/// # Safety
/// `value` must be live.
unsafe fn decode_value(
    value: *const sys::lttng_event_field_value,
    depth: u32,
) -> Option<FieldValue> {
    use sys::lttng_event_field_value_status as St;
    use sys::lttng_event_field_value_type as T;
    const OK: St = St::LTTNG_EVENT_FIELD_VALUE_STATUS_OK;
    // SAFETY: `value` is live (caller's contract) and each getter matches
    // its type.
    unsafe {
        match sys::lttng_event_field_value_get_type(value) {
            T::LTTNG_EVENT_FIELD_VALUE_TYPE_UNSIGNED_INT
            | T::LTTNG_EVENT_FIELD_VALUE_TYPE_UNSIGNED_ENUM => {
                let mut v = 0u64;
                (sys::lttng_event_field_value_unsigned_int_get_value(value, &mut v) == OK)
                    .then_some(FieldValue::Unsigned(v))
            }
            T::LTTNG_EVENT_FIELD_VALUE_TYPE_SIGNED_INT
            | T::LTTNG_EVENT_FIELD_VALUE_TYPE_SIGNED_ENUM => {
                let mut v = 0i64;
                (sys::lttng_event_field_value_signed_int_get_value(value, &mut v) == OK)
                    .then_some(FieldValue::Signed(v))
            }
            T::LTTNG_EVENT_FIELD_VALUE_TYPE_REAL => {
                let mut v = 0f64;
                (sys::lttng_event_field_value_real_get_value(value, &mut v) == OK)
                    .then_some(FieldValue::Real(v))
            }
            T::LTTNG_EVENT_FIELD_VALUE_TYPE_STRING => {
                let mut p: *const c_char = ptr::null();
                if sys::lttng_event_field_value_string_get_value(value, &mut p) != OK || p.is_null()
                {
                    return None;
                }
                let bytes = CStr::from_ptr(p).to_bytes();
                let cut = &bytes[..bytes.len().min(MAX_STRING_VALUE)];
                Some(FieldValue::String(
                    String::from_utf8_lossy(cut).into_owned(),
                ))
            }
            T::LTTNG_EVENT_FIELD_VALUE_TYPE_ARRAY if depth == 0 => {
                let mut length: c_uint = 0;
                if sys::lttng_event_field_value_array_get_length(value, &mut length) != OK {
                    return None;
                }
                let kept = (length as usize).min(MAX_ARRAY_VALUES) as c_uint;
                Some(FieldValue::Array(
                    (0..kept)
                        .map(|i| element(value, i).and_then(|e| decode_value(e, depth + 1)))
                        .collect(),
                ))
            }
            _ => None,
        }
    }
}
