//! LTTng 2.13 triggers: building them (an event-rule-matches condition on a
//! user-space tracepoint name pattern, session actions), registering them
//! under a name, listing them decoded, and unregistering them.
//!
//! Triggers live in the session daemon and belong to the user that registered
//! them (root sees everyone's). The objects here are liblttng-ctl's own,
//! reference-counted ones: [`EventRule`], [`Condition`], [`Action`] and
//! [`Trigger`] own one reference each; [`TriggerList`] owns a listing and
//! lends its entries as [`TriggerRef`]s that cannot outlive it.
//!
//! Building objects never talks to the session daemon; [`register_trigger`],
//! [`TriggerList::fetch`], [`TriggerRef::unregister`] and the by-name helpers
//! do.

use crate::error::{check_code, check_ret, Error, ErrorCode, Result};
use crate::{lock, name, sys};
use std::ffi::{c_char, c_uint, CStr};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

/// A C string returned through an out-parameter, copied; `None` when the
/// getter reports anything but success (typically "unset").
fn out_string<S: PartialEq>(ok: S, get: impl FnOnce(*mut *const c_char) -> S) -> Option<String> {
    let mut out: *const c_char = ptr::null();
    if get(&mut out) != ok || out.is_null() {
        return None;
    }
    // SAFETY: liblttng-ctl returned OK with a non-NULL pointer to a
    // NUL-terminated string owned by the object, which the caller keeps alive
    // for the duration of this copy.
    Some(
        unsafe { CStr::from_ptr(out) }
            .to_string_lossy()
            .into_owned(),
    )
}

fn invalid(message: impl Into<String>, context: impl Into<String>) -> Error {
    Error::with_message(ErrorCode::Invalid, message, context)
}

fn out_of_memory(context: impl Into<String>) -> Error {
    Error::new(ErrorCode::NoMemory, context)
}

/// An event rule (owned reference).
pub struct EventRule(NonNull<sys::lttng_event_rule>);

// SAFETY: the rule is a heap object with an atomic reference count and no
// thread affinity; every access goes through the process-wide lock.
unsafe impl Send for EventRule {}

impl EventRule {
    /// A rule matching user-space (lttng-ust) tracepoints whose name matches
    /// `pattern` (`*` is a wildcard, as in `lttng enable-event -u`).
    pub fn user_tracepoint(pattern: &str) -> Result<EventRule> {
        let context = || format!("creating a user-space tracepoint event rule for {pattern:?}");
        let c_pattern = name::cstring(pattern, None, "tracepoint name pattern")?;
        let _guard = lock::lock();
        // SAFETY: plain constructor; NULL on allocation failure.
        let rule = NonNull::new(unsafe { sys::lttng_event_rule_user_tracepoint_create() })
            .ok_or_else(|| out_of_memory(context()))?;
        // SAFETY: `rule` is a live user-tracepoint rule; the pattern is copied.
        let status = unsafe {
            sys::lttng_event_rule_user_tracepoint_set_name_pattern(
                rule.as_ptr(),
                c_pattern.as_ptr(),
            )
        };
        if status != sys::lttng_event_rule_status::LTTNG_EVENT_RULE_STATUS_OK {
            // SAFETY: we own the only reference and never use it again.
            unsafe { sys::lttng_event_rule_destroy(rule.as_ptr()) };
            return Err(invalid(
                format!(
                    "liblttng-ctl rejected the name pattern (status {})",
                    status.0
                ),
                context(),
            ));
        }
        Ok(EventRule(rule))
    }

    /// Sets the rule's filter expression (`lttng add-trigger ... --filter`,
    /// e.g. `tag == "x"`); the session daemon checks its syntax when the
    /// trigger is registered.
    pub fn set_filter(&mut self, filter: &str) -> Result<()> {
        let c_filter = name::cstring(filter, None, "filter expression")?;
        let _guard = lock::lock();
        // SAFETY: the rule is live and exclusively borrowed; the filter is
        // copied.
        let status = unsafe {
            sys::lttng_event_rule_user_tracepoint_set_filter(self.0.as_ptr(), c_filter.as_ptr())
        };
        if status == sys::lttng_event_rule_status::LTTNG_EVENT_RULE_STATUS_OK {
            Ok(())
        } else {
            Err(invalid(
                format!("liblttng-ctl rejected the filter (status {})", status.0),
                format!("setting the filter {filter:?}"),
            ))
        }
    }
}

impl Drop for EventRule {
    fn drop(&mut self) {
        let _guard = lock::lock();
        // SAFETY: we own one reference, released exactly once.
        unsafe { sys::lttng_event_rule_destroy(self.0.as_ptr()) };
    }
}

/// A trigger condition (owned reference).
pub struct Condition(NonNull<sys::lttng_condition>);

// SAFETY: as for EventRule.
unsafe impl Send for Condition {}

impl Condition {
    /// "An event matching `rule` happened" (`event-rule-matches`). The
    /// condition takes its own reference on the rule.
    pub fn event_rule_matches(rule: &EventRule) -> Result<Condition> {
        let _guard = lock::lock();
        // SAFETY: `rule` is live; the condition takes its own reference.
        let condition = unsafe { sys::lttng_condition_event_rule_matches_create(rule.0.as_ptr()) };
        NonNull::new(condition)
            .map(Condition)
            .ok_or_else(|| out_of_memory("creating an event-rule-matches condition"))
    }

    /// Appends a capture descriptor to an event-rule-matches condition:
    /// each notification of its trigger carries the expression's value at
    /// the event (`lttng add-trigger ... --capture EXPR`).
    pub fn capture(&mut self, expr: &CaptureExpr) -> Result<()> {
        let context = || format!("appending the capture descriptor {expr}");
        let raw = build_event_expr(expr, &context)?;
        let _guard = lock::lock();
        // SAFETY: both live; on success the condition takes ownership of
        // the expression (event-rule-matches.c: "Ownership of `expr` is
        // transferred to the condition").
        let status = unsafe {
            sys::lttng_condition_event_rule_matches_append_capture_descriptor(
                self.0.as_ptr(),
                raw.as_ptr(),
            )
        };
        if status != sys::lttng_condition_status::LTTNG_CONDITION_STATUS_OK {
            // SAFETY: not transferred on failure; we still own it.
            unsafe { sys::lttng_event_expr_destroy(raw.as_ptr()) };
            return Err(invalid(
                format!(
                    "liblttng-ctl refused the capture descriptor (status {})",
                    status.0
                ),
                context(),
            ));
        }
        Ok(())
    }

    /// The condition's capture descriptors, in order (empty for any other
    /// condition than event-rule-matches).
    pub fn captures(&self) -> Vec<CaptureExpr> {
        let _guard = lock::lock();
        // SAFETY: the condition is live for the duration of the call.
        unsafe { decode_captures(self.0.as_ptr()) }
    }
}

/// A capture descriptor's expression (`lttng_event_expr`), as
/// `lttng add-trigger --capture` writes it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CaptureExpr {
    /// `NAME`: a field of the event's payload.
    PayloadField(String),
    /// `$ctx.NAME`: a statically-known context field (`vpid`, `pid_ns`,
    /// `procname`...), computed by the tracer in the traced process.
    ContextField(String),
    /// `$app.PROVIDER:TYPE`: an application-specific context field.
    AppContextField {
        /// The provider's name.
        provider: String,
        /// The context type's name.
        type_name: String,
    },
    /// Anything else (an array element), as liblttng-ctl's type number.
    Other(i32),
}

impl std::fmt::Display for CaptureExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureExpr::PayloadField(name) => write!(f, "{name}"),
            CaptureExpr::ContextField(name) => write!(f, "$ctx.{name}"),
            CaptureExpr::AppContextField {
                provider,
                type_name,
            } => write!(f, "$app.{provider}:{type_name}"),
            CaptureExpr::Other(ty) => write!(f, "(expression of type {ty})"),
        }
    }
}

/// A new `lttng_event_expr` for `expr`, owned by the caller.
fn build_event_expr(
    expr: &CaptureExpr,
    context: &dyn Fn() -> String,
) -> Result<NonNull<sys::lttng_event_expr>> {
    let raw = match expr {
        CaptureExpr::PayloadField(name) => {
            let c_name = name::cstring(name, None, "payload field name")?;
            let _guard = lock::lock();
            // SAFETY: the name is copied; NULL on failure.
            unsafe { sys::lttng_event_expr_event_payload_field_create(c_name.as_ptr()) }
        }
        CaptureExpr::ContextField(name) => {
            let c_name = name::cstring(name, None, "context field name")?;
            let _guard = lock::lock();
            // SAFETY: as above.
            unsafe { sys::lttng_event_expr_channel_context_field_create(c_name.as_ptr()) }
        }
        CaptureExpr::AppContextField {
            provider,
            type_name,
        } => {
            let c_provider = name::cstring(provider, None, "context provider name")?;
            let c_type = name::cstring(type_name, None, "context type name")?;
            let _guard = lock::lock();
            // SAFETY: as above.
            unsafe {
                sys::lttng_event_expr_app_specific_context_field_create(
                    c_provider.as_ptr(),
                    c_type.as_ptr(),
                )
            }
        }
        CaptureExpr::Other(_) => {
            return Err(invalid(
                "only payload, context and application context fields can be built",
                context(),
            ))
        }
    };
    NonNull::new(raw).ok_or_else(|| invalid("liblttng-ctl refused the expression", context()))
}

/// Decodes one capture descriptor's expression.
///
/// # Safety
/// `expr` must be live; the lock must be held.
unsafe fn decode_event_expr(expr: *const sys::lttng_event_expr) -> CaptureExpr {
    use sys::lttng_event_expr_type as X;
    let text = |p: *const c_char| {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: getters return NUL-terminated strings inside the live
            // expression, or NULL (handled above).
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    // SAFETY: `expr` is live and each getter matches its type.
    unsafe {
        match sys::lttng_event_expr_get_type(expr) {
            X::LTTNG_EVENT_EXPR_TYPE_EVENT_PAYLOAD_FIELD => CaptureExpr::PayloadField(text(
                sys::lttng_event_expr_event_payload_field_get_name(expr),
            )),
            X::LTTNG_EVENT_EXPR_TYPE_CHANNEL_CONTEXT_FIELD => CaptureExpr::ContextField(text(
                sys::lttng_event_expr_channel_context_field_get_name(expr),
            )),
            X::LTTNG_EVENT_EXPR_TYPE_APP_SPECIFIC_CONTEXT_FIELD => CaptureExpr::AppContextField {
                provider: text(
                    sys::lttng_event_expr_app_specific_context_field_get_provider_name(expr),
                ),
                type_name: text(
                    sys::lttng_event_expr_app_specific_context_field_get_type_name(expr),
                ),
            },
            other => CaptureExpr::Other(other.0),
        }
    }
}

/// The capture descriptors of `condition` (none unless event-rule-matches).
///
/// # Safety
/// `condition` must be live; the lock must be held.
pub(crate) unsafe fn decode_captures(condition: *const sys::lttng_condition) -> Vec<CaptureExpr> {
    // SAFETY: `condition` is live (caller's contract); descriptors live as
    // long as it.
    unsafe {
        if sys::lttng_condition_get_type(condition)
            != sys::lttng_condition_type::LTTNG_CONDITION_TYPE_EVENT_RULE_MATCHES
        {
            return Vec::new();
        }
        let mut count: c_uint = 0;
        if sys::lttng_condition_event_rule_matches_get_capture_descriptor_count(
            condition, &mut count,
        ) != sys::lttng_condition_status::LTTNG_CONDITION_STATUS_OK
        {
            return Vec::new();
        }
        (0..count)
            .map(|i| {
                let expr = sys::lttng_condition_event_rule_matches_get_capture_descriptor_at_index(
                    condition, i,
                );
                if expr.is_null() {
                    CaptureExpr::Other(-1)
                } else {
                    decode_event_expr(expr)
                }
            })
            .collect()
    }
}

impl Drop for Condition {
    fn drop(&mut self) {
        let _guard = lock::lock();
        // SAFETY: we own one reference, released exactly once.
        unsafe { sys::lttng_condition_destroy(self.0.as_ptr()) };
    }
}

/// Where a snapshot-session action writes its snapshot when it does not use
/// the session's own snapshot output.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActionSnapshotOutput {
    /// Control URL: an absolute local path (or `file://` URL) or a
    /// `net://`/`net6://` URL of an lttng-relayd.
    pub ctrl_url: String,
    /// Data URL, for `tcp://` control URLs; liblttng-ctl fills it for the
    /// other forms.
    pub data_url: Option<String>,
    /// The output's name (used as the snapshot directory's prefix).
    pub name: Option<String>,
    /// Maximum size of the snapshot in bytes.
    pub max_size: Option<u64>,
}

/// The decoded form of one action, as listed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionInfo {
    /// `snapshot-session`, with the action's own output if it has one.
    SnapshotSession {
        /// The session to snapshot.
        session: String,
        /// The action's own snapshot output; `None`: the session's.
        output: Option<ActionSnapshotOutput>,
    },
    /// `stop-session`.
    StopSession {
        /// The session to stop.
        session: String,
    },
    /// `start-session`.
    StartSession {
        /// The session to start.
        session: String,
    },
    /// `rotate-session`.
    RotateSession {
        /// The session to rotate.
        session: String,
    },
    /// `notify`: tell the notification channel's clients.
    Notify,
    /// An action this crate does not decode.
    Other {
        /// Its `lttng_action_type` value.
        action_type: i32,
    },
}

impl ActionInfo {
    /// The session the action works on, if it names one.
    pub fn session(&self) -> Option<&str> {
        match self {
            ActionInfo::SnapshotSession { session, .. }
            | ActionInfo::StopSession { session }
            | ActionInfo::StartSession { session }
            | ActionInfo::RotateSession { session } => Some(session),
            ActionInfo::Notify | ActionInfo::Other { .. } => None,
        }
    }
}

/// A trigger action (owned reference): one session action, or a list.
pub struct Action(NonNull<sys::lttng_action>);

// SAFETY: as for EventRule.
unsafe impl Send for Action {}

type SetSessionName =
    unsafe extern "C" fn(*mut sys::lttng_action, *const c_char) -> sys::lttng_action_status;

impl Action {
    fn session_action(
        what: &str,
        session: &str,
        create: unsafe extern "C" fn() -> *mut sys::lttng_action,
        set_session_name: SetSessionName,
    ) -> Result<Action> {
        let context = || format!("creating a {what} action on session {session:?}");
        let c_session = name::cstring(
            session,
            Some(sys::LTTNG_NAME_MAX as usize - 1),
            "session name",
        )?;
        let _guard = lock::lock();
        // SAFETY: plain constructor; NULL on allocation failure.
        let action = NonNull::new(unsafe { create() }).ok_or_else(|| out_of_memory(context()))?;
        // SAFETY: `action` is live and of the type `set_session_name` expects;
        // the name is copied.
        let status = unsafe { set_session_name(action.as_ptr(), c_session.as_ptr()) };
        if status != sys::lttng_action_status::LTTNG_ACTION_STATUS_OK {
            // SAFETY: we own the only reference and never use it again.
            unsafe { sys::lttng_action_destroy(action.as_ptr()) };
            return Err(invalid(
                format!(
                    "liblttng-ctl rejected the session name (status {})",
                    status.0
                ),
                context(),
            ));
        }
        Ok(Action(action))
    }

    /// `snapshot-session`: record a snapshot of `session` to its own
    /// snapshot output.
    pub fn snapshot_session(session: &str) -> Result<Action> {
        Action::session_action(
            "snapshot-session",
            session,
            sys::lttng_action_snapshot_session_create,
            sys::lttng_action_snapshot_session_set_session_name,
        )
    }

    /// `snapshot-session` recording to `output` instead of the session's
    /// snapshot output.
    pub fn snapshot_session_to(session: &str, output: &ActionSnapshotOutput) -> Result<Action> {
        let action = Action::snapshot_session(session)?;
        let raw_output = build_snapshot_output(output)?;
        let guard = lock::lock();
        // SAFETY: both are live; on success the action takes ownership of the
        // output (snapshot-session.c: "Ownership has been transferred").
        let status = unsafe {
            sys::lttng_action_snapshot_session_set_output(action.0.as_ptr(), raw_output.as_ptr())
        };
        if status != sys::lttng_action_status::LTTNG_ACTION_STATUS_OK {
            // SAFETY: not transferred on failure; we still own it.
            unsafe { sys::lttng_snapshot_output_destroy(raw_output.as_ptr()) };
            // `action` takes the lock when dropped.
            drop(guard);
            return Err(invalid(
                format!(
                    "liblttng-ctl rejected the snapshot output (status {})",
                    status.0
                ),
                format!("setting the output of the snapshot-session action on {session:?}"),
            ));
        }
        drop(guard);
        Ok(action)
    }

    /// `stop-session`.
    pub fn stop_session(session: &str) -> Result<Action> {
        Action::session_action(
            "stop-session",
            session,
            sys::lttng_action_stop_session_create,
            sys::lttng_action_stop_session_set_session_name,
        )
    }

    /// `start-session`.
    pub fn start_session(session: &str) -> Result<Action> {
        Action::session_action(
            "start-session",
            session,
            sys::lttng_action_start_session_create,
            sys::lttng_action_start_session_set_session_name,
        )
    }

    /// `rotate-session`.
    pub fn rotate_session(session: &str) -> Result<Action> {
        Action::session_action(
            "rotate-session",
            session,
            sys::lttng_action_rotate_session_create,
            sys::lttng_action_rotate_session_set_session_name,
        )
    }

    /// `notify`: the session daemon tells the clients of its notification
    /// channel that subscribed to the trigger's condition
    /// ([`crate::notification`]).
    pub fn notify() -> Result<Action> {
        let _guard = lock::lock();
        // SAFETY: plain constructor; NULL on allocation failure.
        NonNull::new(unsafe { sys::lttng_action_notify_create() })
            .map(Action)
            .ok_or_else(|| out_of_memory("creating a notify action"))
    }

    /// A list running `actions` in order. The list takes its own reference
    /// on each; lists cannot be nested (liblttng-ctl refuses it).
    pub fn list(actions: &[Action]) -> Result<Action> {
        if actions.is_empty() {
            return Err(invalid(
                "an action list needs at least one action",
                "creating an action list",
            ));
        }
        let _guard = lock::lock();
        // SAFETY: plain constructor; NULL on allocation failure.
        let list = NonNull::new(unsafe { sys::lttng_action_list_create() })
            .ok_or_else(|| out_of_memory("creating an action list"))?;
        for (index, action) in actions.iter().enumerate() {
            // SAFETY: both are live; the list takes its own reference.
            let status =
                unsafe { sys::lttng_action_list_add_action(list.as_ptr(), action.0.as_ptr()) };
            if status != sys::lttng_action_status::LTTNG_ACTION_STATUS_OK {
                // SAFETY: we own the only reference to the list.
                unsafe { sys::lttng_action_destroy(list.as_ptr()) };
                return Err(invalid(
                    format!(
                        "liblttng-ctl refused action #{index} (status {}); lists cannot contain lists",
                        status.0
                    ),
                    "creating an action list",
                ));
            }
        }
        Ok(Action(list))
    }

    /// The decoded actions (a list is flattened into its members).
    pub fn info(&self) -> Vec<ActionInfo> {
        let _guard = lock::lock();
        // SAFETY: the action is live for the duration of the call.
        unsafe { decode_actions(self.0.as_ptr()) }
    }
}

impl Drop for Action {
    fn drop(&mut self) {
        let _guard = lock::lock();
        // SAFETY: we own one reference, released exactly once.
        unsafe { sys::lttng_action_destroy(self.0.as_ptr()) };
    }
}

/// A new `lttng_snapshot_output` describing `output`, owned by the caller.
fn build_snapshot_output(
    output: &ActionSnapshotOutput,
) -> Result<NonNull<sys::lttng_snapshot_output>> {
    let context = format!("building a snapshot output for {:?}", output.ctrl_url);
    let url = name::cstring(&output.ctrl_url, Some(4095), "snapshot output URL")?;
    let data_url = output
        .data_url
        .as_deref()
        .map(|u| name::cstring(u, Some(4095), "snapshot data URL"))
        .transpose()?;
    let out_name = output
        .name
        .as_deref()
        .map(|n| {
            name::cstring(
                n,
                Some(sys::LTTNG_NAME_MAX as usize - 1),
                "snapshot output name",
            )
        })
        .transpose()?;
    let _guard = lock::lock();
    // SAFETY: plain constructor; NULL on allocation failure.
    let raw = NonNull::new(unsafe { sys::lttng_snapshot_output_create() })
        .ok_or_else(|| out_of_memory(context.clone()))?;
    let p = raw.as_ptr();
    let is_local = output.ctrl_url.starts_with('/') || output.ctrl_url.starts_with("file://");
    // SAFETY: for each call, `p` is a live output; strings are copied.
    let ret = unsafe {
        match (&data_url, is_local) {
            (Some(data), _) => {
                sys::lttng_snapshot_output_set_network_urls(url.as_ptr(), data.as_ptr(), p)
            }
            (None, true) => sys::lttng_snapshot_output_set_local_path(url.as_ptr(), p),
            (None, false) => sys::lttng_snapshot_output_set_network_url(url.as_ptr(), p),
        }
    };
    let mut result = check_ret(ret, || context.clone()).map(drop);
    if result.is_ok() {
        if let Some(n) = &out_name {
            // SAFETY: as above.
            let ret = unsafe { sys::lttng_snapshot_output_set_name(n.as_ptr(), p) };
            result = check_ret(ret, || context.clone()).map(drop);
        }
    }
    if result.is_ok() {
        if let Some(size) = output.max_size {
            // SAFETY: as above.
            let ret = unsafe { sys::lttng_snapshot_output_set_size(size, p) };
            result = check_ret(ret, || context.clone()).map(drop);
        }
    }
    match result {
        Ok(()) => Ok(raw),
        Err(e) => {
            // SAFETY: we own it and never use it again.
            unsafe { sys::lttng_snapshot_output_destroy(p) };
            Err(e)
        }
    }
}

/// Decodes a snapshot output an action carries.
///
/// # Safety
/// `output` must be live; the lock must be held.
unsafe fn decode_snapshot_output(
    output: *const sys::lttng_snapshot_output,
) -> ActionSnapshotOutput {
    let text = |p: *const c_char| {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: getters return NUL-terminated strings inside the live
            // output, or NULL (handled above).
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    // SAFETY: `output` is live (caller's contract).
    let (ctrl, data, out_name, size) = unsafe {
        (
            text(sys::lttng_snapshot_output_get_ctrl_url(output)),
            text(sys::lttng_snapshot_output_get_data_url(output)),
            text(sys::lttng_snapshot_output_get_name(output)),
            sys::lttng_snapshot_output_get_maxsize(output),
        )
    };
    ActionSnapshotOutput {
        ctrl_url: ctrl,
        data_url: (!data.is_empty()).then_some(data),
        name: (!out_name.is_empty()).then_some(out_name),
        // liblttng-ctl's "unset" maximum size is all ones (and 0 means the
        // same to the session daemon).
        max_size: (size != u64::MAX && size != 0).then_some(size),
    }
}

/// Decodes one non-list action.
///
/// # Safety
/// `action` must be live; the lock must be held.
unsafe fn decode_action(action: *const sys::lttng_action) -> ActionInfo {
    use sys::lttng_action_status as St;
    use sys::lttng_action_type as Ty;
    // SAFETY: for the whole body, `action` is live and each getter matches its type.
    unsafe {
        let ty = sys::lttng_action_get_type(action);
        let session =
            |get: unsafe extern "C" fn(*const sys::lttng_action, *mut *const c_char) -> St| {
                out_string(St::LTTNG_ACTION_STATUS_OK, |out| get(action, out)).unwrap_or_default()
            };
        match ty {
            Ty::LTTNG_ACTION_TYPE_SNAPSHOT_SESSION => {
                let mut output: *const sys::lttng_snapshot_output = ptr::null();
                let has_output = sys::lttng_action_snapshot_session_get_output(action, &mut output)
                    == St::LTTNG_ACTION_STATUS_OK
                    && !output.is_null();
                ActionInfo::SnapshotSession {
                    session: session(sys::lttng_action_snapshot_session_get_session_name),
                    output: has_output.then(|| decode_snapshot_output(output)),
                }
            }
            Ty::LTTNG_ACTION_TYPE_STOP_SESSION => ActionInfo::StopSession {
                session: session(sys::lttng_action_stop_session_get_session_name),
            },
            Ty::LTTNG_ACTION_TYPE_START_SESSION => ActionInfo::StartSession {
                session: session(sys::lttng_action_start_session_get_session_name),
            },
            Ty::LTTNG_ACTION_TYPE_ROTATE_SESSION => ActionInfo::RotateSession {
                session: session(sys::lttng_action_rotate_session_get_session_name),
            },
            Ty::LTTNG_ACTION_TYPE_NOTIFY => ActionInfo::Notify,
            other => ActionInfo::Other {
                action_type: other.0,
            },
        }
    }
}

/// Decodes an action, flattening a list.
///
/// # Safety
/// `action` must be live; the lock must be held.
unsafe fn decode_actions(action: *const sys::lttng_action) -> Vec<ActionInfo> {
    // SAFETY: for the whole body, `action` is live; list members live as long as
    // the list.
    unsafe {
        if sys::lttng_action_get_type(action) != sys::lttng_action_type::LTTNG_ACTION_TYPE_LIST {
            return vec![decode_action(action)];
        }
        let mut count: c_uint = 0;
        if sys::lttng_action_list_get_count(action, &mut count)
            != sys::lttng_action_status::LTTNG_ACTION_STATUS_OK
        {
            return Vec::new();
        }
        (0..count)
            .filter_map(|i| {
                let member = sys::lttng_action_list_get_at_index(action, i);
                (!member.is_null()).then(|| decode_action(member))
            })
            .collect()
    }
}

/// The decoded form of a condition, as listed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionInfo {
    /// `event-rule-matches` on a user-space tracepoint rule.
    UserTracepoint {
        /// The tracepoint name pattern (`*` is a wildcard).
        name_pattern: String,
        /// The filter expression, if any.
        filter: Option<String>,
        /// Name patterns excluded from the match.
        exclusions: Vec<String>,
        /// Whether the rule restricts log levels.
        has_log_level_rule: bool,
    },
    /// Any other condition or event rule, described in words.
    Other {
        /// What kind of condition it is, in words.
        description: String,
    },
}

/// Decodes a condition.
///
/// # Safety
/// `condition` must be live; the lock must be held.
unsafe fn decode_condition(condition: *const sys::lttng_condition) -> ConditionInfo {
    use sys::lttng_condition_type as C;
    use sys::lttng_event_rule_status as R;
    use sys::lttng_event_rule_type as E;
    // SAFETY: for the whole body, `condition` is live; the rule it lends lives as
    // long as it; each getter matches the type checked before it.
    unsafe {
        let other = |what: &str| ConditionInfo::Other {
            description: what.to_string(),
        };
        let description = match sys::lttng_condition_get_type(condition) {
            C::LTTNG_CONDITION_TYPE_EVENT_RULE_MATCHES => {
                let mut rule: *const sys::lttng_event_rule = ptr::null();
                if sys::lttng_condition_event_rule_matches_get_rule(condition, &mut rule)
                    != sys::lttng_condition_status::LTTNG_CONDITION_STATUS_OK
                    || rule.is_null()
                {
                    return other("event-rule-matches (rule unreadable)");
                }
                match sys::lttng_event_rule_get_type(rule) {
                    E::LTTNG_EVENT_RULE_TYPE_USER_TRACEPOINT => {
                        let name_pattern = out_string(R::LTTNG_EVENT_RULE_STATUS_OK, |out| {
                            sys::lttng_event_rule_user_tracepoint_get_name_pattern(rule, out)
                        })
                        .unwrap_or_default();
                        let filter = out_string(R::LTTNG_EVENT_RULE_STATUS_OK, |out| {
                            sys::lttng_event_rule_user_tracepoint_get_filter(rule, out)
                        });
                        let mut count: c_uint = 0;
                        let exclusions = if sys::lttng_event_rule_user_tracepoint_get_name_pattern_exclusion_count(rule, &mut count)
                            == R::LTTNG_EVENT_RULE_STATUS_OK
                        {
                            (0..count)
                                .filter_map(|i| {
                                    out_string(R::LTTNG_EVENT_RULE_STATUS_OK, |out| {
                                        sys::lttng_event_rule_user_tracepoint_get_name_pattern_exclusion_at_index(rule, i, out)
                                    })
                                })
                                .collect()
                        } else {
                            Vec::new()
                        };
                        let mut level_rule: *const sys::lttng_log_level_rule = ptr::null();
                        let has_log_level_rule =
                            sys::lttng_event_rule_user_tracepoint_get_log_level_rule(
                                rule,
                                &mut level_rule,
                            ) == R::LTTNG_EVENT_RULE_STATUS_OK;
                        return ConditionInfo::UserTracepoint {
                            name_pattern,
                            filter,
                            exclusions,
                            has_log_level_rule,
                        };
                    }
                    E::LTTNG_EVENT_RULE_TYPE_KERNEL_TRACEPOINT => {
                        "event-rule-matches (kernel tracepoint)"
                    }
                    E::LTTNG_EVENT_RULE_TYPE_KERNEL_SYSCALL => {
                        "event-rule-matches (kernel syscall)"
                    }
                    E::LTTNG_EVENT_RULE_TYPE_KERNEL_KPROBE => "event-rule-matches (kernel kprobe)",
                    E::LTTNG_EVENT_RULE_TYPE_KERNEL_UPROBE => "event-rule-matches (kernel uprobe)",
                    E::LTTNG_EVENT_RULE_TYPE_JUL_LOGGING => "event-rule-matches (JUL logging)",
                    E::LTTNG_EVENT_RULE_TYPE_LOG4J_LOGGING => "event-rule-matches (log4j logging)",
                    E::LTTNG_EVENT_RULE_TYPE_PYTHON_LOGGING => {
                        "event-rule-matches (Python logging)"
                    }
                    _ => "event-rule-matches (unknown rule)",
                }
            }
            C::LTTNG_CONDITION_TYPE_SESSION_CONSUMED_SIZE => "session-consumed-size",
            C::LTTNG_CONDITION_TYPE_BUFFER_USAGE_HIGH => "buffer-usage-high",
            C::LTTNG_CONDITION_TYPE_BUFFER_USAGE_LOW => "buffer-usage-low",
            C::LTTNG_CONDITION_TYPE_SESSION_ROTATION_ONGOING => "session-rotation-ongoing",
            C::LTTNG_CONDITION_TYPE_SESSION_ROTATION_COMPLETED => "session-rotation-completed",
            _ => "unknown condition",
        };
        other(description)
    }
}

/// A decoded trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerInfo {
    /// `None` for an anonymous trigger.
    pub name: Option<String>,
    /// The user the trigger belongs to (and whose rights its actions use).
    pub owner_uid: u32,
    /// When the trigger fires.
    pub condition: ConditionInfo,
    /// The actions, a list flattened in order.
    pub actions: Vec<ActionInfo>,
}

/// Decodes a trigger.
///
/// # Safety
/// `trigger` must be live; the lock must be held.
unsafe fn decode_trigger(trigger: *const sys::lttng_trigger) -> TriggerInfo {
    use sys::lttng_trigger_status as T;
    // SAFETY: for the whole body, `trigger` is live; its condition and action live
    // as long as it.
    unsafe {
        let name = out_string(T::LTTNG_TRIGGER_STATUS_OK, |out| {
            sys::lttng_trigger_get_name(trigger, out)
        });
        let mut owner_uid: sys::uid_t = u32::MAX;
        // An unregistered trigger has no owner yet; u32::MAX (-1, "no user")
        // stands for that.
        let _ = sys::lttng_trigger_get_owner_uid(trigger, &mut owner_uid);
        let condition = sys::lttng_trigger_get_const_condition(trigger);
        let action = sys::lttng_trigger_get_const_action(trigger);
        TriggerInfo {
            name,
            owner_uid,
            condition: if condition.is_null() {
                ConditionInfo::Other {
                    description: "no condition".into(),
                }
            } else {
                decode_condition(condition)
            },
            actions: if action.is_null() {
                Vec::new()
            } else {
                decode_actions(action)
            },
        }
    }
}

/// A trigger built in this process (owned reference), before or after
/// registration.
pub struct Trigger(NonNull<sys::lttng_trigger>);

// SAFETY: as for EventRule.
unsafe impl Send for Trigger {}

impl Trigger {
    /// The trigger's condition, borrowed.
    pub(crate) fn condition_ptr(&self) -> *const sys::lttng_condition {
        let _guard = lock::lock();
        // SAFETY: the trigger is live; its condition lives as long as it.
        unsafe { sys::lttng_trigger_get_const_condition(self.0.as_ptr()) }
    }

    /// A trigger running `action` when `condition` is met; it takes its own
    /// references on both.
    pub fn new(condition: &Condition, action: &Action) -> Result<Trigger> {
        let _guard = lock::lock();
        // SAFETY: both live; the trigger takes its own references.
        let trigger = unsafe { sys::lttng_trigger_create(condition.0.as_ptr(), action.0.as_ptr()) };
        NonNull::new(trigger)
            .map(Trigger)
            .ok_or_else(|| out_of_memory("creating a trigger"))
    }

    /// Makes the trigger belong to `uid` when registered. Only root may
    /// register a trigger for another user.
    pub fn set_owner_uid(&mut self, uid: u32) -> Result<()> {
        let _guard = lock::lock();
        // SAFETY: the trigger is live and exclusively borrowed.
        let status = unsafe { sys::lttng_trigger_set_owner_uid(self.0.as_ptr(), uid) };
        if status == sys::lttng_trigger_status::LTTNG_TRIGGER_STATUS_OK {
            Ok(())
        } else {
            Err(invalid(
                format!("liblttng-ctl refused the owner (status {})", status.0),
                format!("setting the owner of a trigger to uid {uid}"),
            ))
        }
    }

    /// Registers the trigger in the session daemon under `name`.
    /// A trigger can be registered once; the daemon refuses a name its
    /// owner already uses with [`ErrorCode::TriggerExists`].
    pub fn register(&mut self, name: &str) -> Result<()> {
        let c_name = name::cstring(name, None, "trigger name")?;
        let _guard = lock::lock();
        // SAFETY: the trigger is live and exclusively borrowed; the name is
        // copied.
        let code =
            unsafe { sys::lttng_register_trigger_with_name(self.0.as_ptr(), c_name.as_ptr()) };
        check_code(code, || format!("registering trigger {name:?}"))
    }

    /// The decoded trigger.
    pub fn info(&self) -> TriggerInfo {
        let _guard = lock::lock();
        // SAFETY: the trigger is live for the duration of the call.
        unsafe { decode_trigger(self.0.as_ptr()) }
    }
}

impl Drop for Trigger {
    fn drop(&mut self) {
        let _guard = lock::lock();
        // SAFETY: we own one reference, released exactly once.
        unsafe { sys::lttng_trigger_destroy(self.0.as_ptr()) };
    }
}

/// The triggers the session daemon shows the caller: their own, or every
/// user's for root.
pub struct TriggerList {
    list: NonNull<sys::lttng_triggers>,
    len: usize,
}

// SAFETY: as for EventRule.
unsafe impl Send for TriggerList {}

impl TriggerList {
    /// Asks the session daemon for the triggers.
    pub fn fetch() -> Result<TriggerList> {
        let _guard = lock::lock();
        let mut raw: *mut sys::lttng_triggers = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; on success we own the list.
        let code = unsafe { sys::lttng_list_triggers(&mut raw) };
        check_code(code, || "listing triggers".to_string())?;
        let list = NonNull::new(raw).ok_or_else(|| out_of_memory("listing triggers"))?;
        let mut count: c_uint = 0;
        // SAFETY: the list is live.
        let status = unsafe { sys::lttng_triggers_get_count(list.as_ptr(), &mut count) };
        if status != sys::lttng_trigger_status::LTTNG_TRIGGER_STATUS_OK {
            // SAFETY: we own it and never use it again.
            unsafe { sys::lttng_triggers_destroy(list.as_ptr()) };
            return Err(Error::with_message(
                ErrorCode::Fatal,
                format!("could not count the listed triggers (status {})", status.0),
                "listing triggers",
            ));
        }
        Ok(TriggerList {
            list,
            len: count as usize,
        })
    }

    /// How many triggers were listed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no trigger was listed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The trigger at `index`, borrowed from the list.
    pub fn get(&self, index: usize) -> Option<TriggerRef<'_>> {
        if index >= self.len {
            return None;
        }
        let _guard = lock::lock();
        // SAFETY: the list is live and index < count.
        let trigger =
            unsafe { sys::lttng_triggers_get_at_index(self.list.as_ptr(), index as c_uint) };
        NonNull::new(trigger.cast_mut()).map(|ptr| TriggerRef {
            ptr,
            _list: PhantomData,
        })
    }

    /// The listed triggers, in the daemon's order.
    pub fn iter(&self) -> impl Iterator<Item = TriggerRef<'_>> {
        (0..self.len).filter_map(|i| self.get(i))
    }

    /// The listed trigger owned by `owner_uid` and named `name`.
    pub fn find(&self, owner_uid: u32, name: &str) -> Option<TriggerRef<'_>> {
        self.iter().find(|t| {
            let info = t.info();
            info.owner_uid == owner_uid && info.name.as_deref() == Some(name)
        })
    }
}

impl Drop for TriggerList {
    fn drop(&mut self) {
        let _guard = lock::lock();
        // SAFETY: we own the list; its entries (TriggerRefs) cannot outlive it.
        unsafe { sys::lttng_triggers_destroy(self.list.as_ptr()) };
    }
}

/// A trigger of a [`TriggerList`], valid while the list is.
pub struct TriggerRef<'list> {
    ptr: NonNull<sys::lttng_trigger>,
    _list: PhantomData<&'list TriggerList>,
}

impl TriggerRef<'_> {
    /// The trigger's condition, borrowed (NULL never: a listed trigger has
    /// one).
    pub(crate) fn condition_ptr(&self) -> *const sys::lttng_condition {
        let _guard = lock::lock();
        // SAFETY: the trigger is live; its condition lives as long as it.
        unsafe { sys::lttng_trigger_get_const_condition(self.ptr.as_ptr()) }
    }

    /// The capture descriptors of the trigger's condition, in order.
    pub fn captures(&self) -> Vec<CaptureExpr> {
        let condition = self.condition_ptr();
        if condition.is_null() {
            return Vec::new();
        }
        let _guard = lock::lock();
        // SAFETY: live as long as the borrowed list.
        unsafe { decode_captures(condition) }
    }

    /// The decoded trigger.
    pub fn info(&self) -> TriggerInfo {
        let _guard = lock::lock();
        // SAFETY: the trigger lives as long as the borrowed list.
        unsafe { decode_trigger(self.ptr.as_ptr()) }
    }

    /// Unregisters this trigger from the session daemon. Its owner, or
    /// root, may do so.
    pub fn unregister(&self) -> Result<()> {
        let info = self.info();
        let _guard = lock::lock();
        // SAFETY: the trigger is live; liblttng-ctl copies it before sending.
        let ret = unsafe { sys::lttng_unregister_trigger(self.ptr.as_ptr()) };
        check_ret(ret, || {
            format!(
                "unregistering trigger {:?} of uid {}",
                info.name.as_deref().unwrap_or("(anonymous)"),
                info.owner_uid
            )
        })
        .map(drop)
    }
}

/// Registers a trigger named `name` running `action` when `condition` is
/// met, owned by the caller.
pub fn register_trigger(name: &str, condition: &Condition, action: &Action) -> Result<()> {
    Trigger::new(condition, action)?.register(name)
}

/// The decoded triggers the session daemon shows the caller.
pub fn list_triggers() -> Result<Vec<TriggerInfo>> {
    Ok(TriggerList::fetch()?.iter().map(|t| t.info()).collect())
}

/// The caller's effective uid: the owner liblttng-ctl gives the triggers it
/// registers, and the uid the session daemon sees this process as.
pub fn caller_uid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// Unregisters the caller's trigger named `name`.
pub fn unregister_trigger(name: &str) -> Result<()> {
    unregister_trigger_of(caller_uid(), name)
}

/// Unregisters the trigger named `name` owned by `owner_uid` (root may
/// remove other users' triggers). [`ErrorCode::TriggerNotFound`] when there
/// is none.
pub fn unregister_trigger_of(owner_uid: u32, name: &str) -> Result<()> {
    let list = TriggerList::fetch()?;
    let found = list.find(owner_uid, name).ok_or_else(|| {
        Error::new(
            ErrorCode::TriggerNotFound,
            format!("unregistering trigger {name:?} of uid {owner_uid}"),
        )
    })?;
    found.unregister()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern_of(info: &TriggerInfo) -> &str {
        match &info.condition {
            ConditionInfo::UserTracepoint { name_pattern, .. } => name_pattern,
            other => panic!("unexpected condition {other:?}"),
        }
    }

    #[test]
    fn built_triggers_decode_to_what_was_asked() {
        let rule = EventRule::user_tracepoint("my_app:crash*").unwrap();
        let condition = Condition::event_rule_matches(&rule).unwrap();
        let output = ActionSnapshotOutput {
            ctrl_url: "/tmp/lttng-ctl-trigger-test".into(),
            data_url: None,
            name: Some("out".into()),
            max_size: Some(1 << 20),
        };
        let actions = [
            Action::snapshot_session("s1").unwrap(),
            Action::snapshot_session_to("s2", &output).unwrap(),
            Action::stop_session("s1").unwrap(),
            Action::start_session("s3").unwrap(),
            Action::rotate_session("s4").unwrap(),
        ];
        let list = Action::list(&actions).unwrap();
        drop(actions);
        let trigger = Trigger::new(&condition, &list).unwrap();
        drop((rule, condition, list));
        let info = trigger.info();
        assert_eq!(info.name, None);
        assert_eq!(pattern_of(&info), "my_app:crash*");
        assert_eq!(info.actions.len(), 5);
        assert_eq!(
            info.actions[0],
            ActionInfo::SnapshotSession {
                session: "s1".into(),
                output: None
            }
        );
        match &info.actions[1] {
            ActionInfo::SnapshotSession {
                session,
                output: Some(out),
            } => {
                assert_eq!(session, "s2");
                assert!(
                    out.ctrl_url.ends_with("/tmp/lttng-ctl-trigger-test"),
                    "{out:?}"
                );
                assert_eq!(out.name.as_deref(), Some("out"));
                assert_eq!(out.max_size, Some(1 << 20));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            info.actions[2],
            ActionInfo::StopSession {
                session: "s1".into()
            }
        );
        assert_eq!(info.actions[3].session(), Some("s3"));
        assert_eq!(
            info.actions[4],
            ActionInfo::RotateSession {
                session: "s4".into()
            }
        );
    }

    #[test]
    fn bad_names_are_refused_before_reaching_liblttng_ctl() {
        assert_eq!(
            Action::snapshot_session(&"x".repeat(300))
                .err()
                .map(|e| e.code()),
            Some(ErrorCode::Invalid)
        );
        assert!(EventRule::user_tracepoint("a\0b").is_err());
        assert!(Action::list(&[]).is_err());
    }

    #[test]
    fn lists_cannot_nest() {
        let inner = Action::list(&[Action::stop_session("s").unwrap()]).unwrap();
        let err = Action::list(&[inner]).err().unwrap();
        assert_eq!(err.code(), ErrorCode::Invalid);
    }
}
