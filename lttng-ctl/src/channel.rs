//! Channels: the ring buffers of a session in one domain, and the builder
//! that enables them (`lttng_channel_create` + `lttng_enable_channel`).

use crate::domain::{BufferType, Domain};
use crate::error::{check_ret, Error, ErrorCode, Result};
use crate::handle::Handle;
use crate::lock;
use crate::name;
use crate::session::Session;
use crate::sys;
use std::ptr::NonNull;
use std::time::Duration;

/// A channel of a session, known by its name, domain and buffer scheme
/// (what [`crate::EventBuilder::enable`] needs to address it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Channel {
    name: String,
    domain: Domain,
    buffer_type: BufferType,
}

impl Channel {
    /// A handle on an existing channel `name` in `domain`, with that domain's
    /// default buffer scheme. Nothing is checked until it is used.
    pub fn new(name: &str, domain: Domain) -> Channel {
        Channel {
            name: name.to_owned(),
            domain,
            buffer_type: domain.default_buffer_type(),
        }
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The channel's domain.
    pub fn domain(&self) -> Domain {
        self.domain
    }

    /// The channel's buffer scheme.
    pub fn buffer_type(&self) -> BufferType {
        self.buffer_type
    }
}

/// Enables a channel in a session, with its buffer settings.
///
/// Unset settings take LTTng's defaults for the domain (and, for overwrite
/// mode, for the session type: snapshot sessions overwrite).
///
/// ```no_run
/// use lttng_ctl::{BufferType, ChannelBuilder, Domain, Session};
/// let session = Session::from_name("flight-recorder")?;
/// let channel = ChannelBuilder::new("crash", Domain::UserSpace)
///     .overwrite()
///     .subbuf_size(64 * 1024)
///     .num_subbuf(8)
///     .buffer_type(BufferType::PerUid)
///     .enable(&session)?;
/// # Ok::<(), lttng_ctl::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelBuilder {
    name: String,
    domain: Domain,
    buffer_type: Option<BufferType>,
    overwrite: Option<bool>,
    subbuf_size: Option<u64>,
    num_subbuf: Option<u64>,
    switch_timer: Option<Duration>,
}

impl ChannelBuilder {
    /// A channel called `name` (at most 255 bytes) in `domain`.
    pub fn new(name: &str, domain: Domain) -> ChannelBuilder {
        ChannelBuilder {
            name: name.to_owned(),
            domain,
            buffer_type: None,
            overwrite: None,
            subbuf_size: None,
            num_subbuf: None,
            switch_timer: None,
        }
    }

    /// When the buffers are full, overwrite the oldest events (flight
    /// recorder).
    pub fn overwrite(mut self) -> ChannelBuilder {
        self.overwrite = Some(true);
        self
    }

    /// When the buffers are full, discard new events.
    pub fn discard(mut self) -> ChannelBuilder {
        self.overwrite = Some(false);
        self
    }

    /// The size of each sub-buffer in bytes: a power of two, at least the
    /// page size (the session daemon checks).
    pub fn subbuf_size(mut self, bytes: u64) -> ChannelBuilder {
        self.subbuf_size = Some(bytes);
        self
    }

    /// The number of sub-buffers per ring buffer: a power of two (the
    /// session daemon checks).
    pub fn num_subbuf(mut self, count: u64) -> ChannelBuilder {
        self.num_subbuf = Some(count);
        self
    }

    /// Who owns the buffers: per user or per process in user space, global
    /// in the kernel (the default is per user, resp. global).
    pub fn buffer_type(mut self, buffer_type: BufferType) -> ChannelBuilder {
        self.buffer_type = Some(buffer_type);
        self
    }

    /// Flushes the current sub-buffer at this period, so that a snapshot
    /// holds events up to at most this long ago even in a quiet channel
    /// (microsecond resolution; at most `u32::MAX` µs).
    pub fn switch_timer(mut self, period: Duration) -> ChannelBuilder {
        self.switch_timer = Some(period);
        self
    }

    /// Enables the channel in `session` (creating it if needed).
    pub fn enable(&self, session: &Session) -> Result<Channel> {
        let buffer_type = self
            .buffer_type
            .unwrap_or_else(|| self.domain.default_buffer_type());
        let context = || {
            format!(
                "enabling {} channel {:?} in session {:?}",
                self.domain.label(),
                self.name,
                session.name()
            )
        };
        let invalid = |message: String| Error::with_message(ErrorCode::Invalid, message, context());
        let buffers_fit = match self.domain {
            Domain::UserSpace => buffer_type != BufferType::Global,
            Domain::Kernel => buffer_type == BufferType::Global,
        };
        if !buffers_fit {
            return Err(invalid(format!(
                "{buffer_type:?} buffers are not available in the {} domain",
                self.domain.label()
            )));
        }
        if self.name.is_empty() {
            return Err(invalid("the channel name is empty".into()));
        }
        // liblttng-ctl divides by the sub-buffer size before any check.
        if self.subbuf_size == Some(0) || self.num_subbuf == Some(0) {
            return Err(invalid(
                "the sub-buffer size and count must not be zero".into(),
            ));
        }
        let switch_timer_us = self
            .switch_timer
            .map(|period| {
                u32::try_from(period.as_micros())
                    .map_err(|_| invalid(format!("switch timer period {period:?} is too long")))
            })
            .transpose()?;

        let channel = RawChannel::new(self.domain, buffer_type, &context)?;
        {
            // SAFETY: the channel is live and owned; only its plain fields
            // are written here.
            let raw = unsafe { &mut *channel.0.as_ptr() };
            name::write(&mut raw.name, &self.name, "channel name")?;
            if let Some(overwrite) = self.overwrite {
                raw.attr.overwrite = i32::from(overwrite);
            }
            if let Some(bytes) = self.subbuf_size {
                raw.attr.subbuf_size = bytes;
            }
            if let Some(count) = self.num_subbuf {
                raw.attr.num_subbuf = count;
            }
            if let Some(us) = switch_timer_us {
                raw.attr.switch_timer_interval = us;
            }
        }
        let handle = Handle::new(session, self.domain, buffer_type)?;
        let ret = {
            let _guard = lock::lock();
            // SAFETY: handle and channel are live and owned; liblttng-ctl
            // copies the channel.
            unsafe { sys::lttng_enable_channel(handle.as_ptr(), channel.0.as_ptr()) }
        };
        check_ret(ret, context)?;
        Ok(Channel {
            name: self.name.clone(),
            domain: self.domain,
            buffer_type,
        })
    }
}

/// Owns a `struct lttng_channel` (with its extended attributes).
struct RawChannel(NonNull<sys::lttng_channel>);

impl RawChannel {
    fn new(
        domain: Domain,
        buffers: BufferType,
        context: &dyn Fn() -> String,
    ) -> Result<RawChannel> {
        let mut raw_domain = domain.to_sys(buffers);
        let raw = {
            let _guard = lock::lock();
            // SAFETY: raw_domain is valid for the call; the returned channel
            // is owned (NULL for an invalid domain/buffer pair or no memory).
            unsafe { sys::lttng_channel_create(&mut raw_domain) }
        };
        NonNull::new(raw)
            .map(RawChannel)
            .ok_or_else(|| Error::new(ErrorCode::NoMemory, context()))
    }
}

impl Drop for RawChannel {
    fn drop(&mut self) {
        let _guard = lock::lock();
        // SAFETY: owned, freed only here.
        unsafe { sys::lttng_channel_destroy(self.0.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enable_error(builder: ChannelBuilder) -> Error {
        let session = Session::from_name("ctl-unit-never-created").unwrap();
        builder.enable(&session).unwrap_err()
    }

    #[test]
    fn invalid_settings_are_rejected_before_reaching_liblttng_ctl() {
        let err = enable_error(ChannelBuilder::new("c", Domain::UserSpace).subbuf_size(0));
        assert_eq!(err.code(), ErrorCode::Invalid);
        let err = enable_error(
            ChannelBuilder::new("c", Domain::UserSpace).buffer_type(BufferType::Global),
        );
        assert_eq!(err.code(), ErrorCode::Invalid);
        let err =
            enable_error(ChannelBuilder::new("c", Domain::Kernel).buffer_type(BufferType::PerUid));
        assert_eq!(err.code(), ErrorCode::Invalid);
        let err = enable_error(ChannelBuilder::new(&"c".repeat(256), Domain::UserSpace));
        assert_eq!(err.code(), ErrorCode::Invalid);
        assert!(err.message().contains("at most 255"), "{err}");
        let err = enable_error(
            ChannelBuilder::new("c", Domain::UserSpace).switch_timer(Duration::from_secs(5000)),
        );
        assert_eq!(err.code(), ErrorCode::Invalid);
    }
}
