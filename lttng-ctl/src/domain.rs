//! Tracing domains and buffer ownership schemes, and their mapping to
//! `struct lttng_domain`.

use crate::sys;

/// The tracer a channel or event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Domain {
    /// lttng-ust: user-space tracepoints of instrumented programs.
    UserSpace,
    /// lttng-modules: the Linux kernel tracer (needs the kernel modules and a
    /// root session daemon started without `--no-kernel`).
    Kernel,
}

impl Domain {
    /// The C value of this domain.
    pub fn raw(self) -> sys::lttng_domain_type {
        match self {
            Domain::UserSpace => sys::lttng_domain_type::LTTNG_DOMAIN_UST,
            Domain::Kernel => sys::lttng_domain_type::LTTNG_DOMAIN_KERNEL,
        }
    }

    /// A short name for messages.
    pub fn label(self) -> &'static str {
        match self {
            Domain::UserSpace => "user space",
            Domain::Kernel => "kernel",
        }
    }

    /// The buffer scheme LTTng uses when none is asked for: per-user buffers
    /// in user space, global buffers in the kernel.
    pub fn default_buffer_type(self) -> BufferType {
        match self {
            Domain::UserSpace => BufferType::PerUid,
            Domain::Kernel => BufferType::Global,
        }
    }

    /// The `struct lttng_domain` for this domain with `buffers`.
    pub(crate) fn to_sys(self, buffers: BufferType) -> sys::lttng_domain {
        sys::lttng_domain {
            type_: self.raw(),
            buf_type: buffers.raw(),
            ..Default::default()
        }
    }
}

/// Who owns a channel's ring buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BufferType {
    /// One set of buffers per Unix user (user space only); they outlive the
    /// traced processes, which is what a flight recorder needs to keep the
    /// events of a process that crashed.
    PerUid,
    /// One set of buffers per process (user space only); they go away with
    /// the process unless the session keeps them.
    PerPid,
    /// One system-wide set of buffers (kernel only).
    Global,
}

impl BufferType {
    /// The C value of this scheme.
    pub fn raw(self) -> sys::lttng_buffer_type {
        match self {
            BufferType::PerUid => sys::lttng_buffer_type::LTTNG_BUFFER_PER_UID,
            BufferType::PerPid => sys::lttng_buffer_type::LTTNG_BUFFER_PER_PID,
            BufferType::Global => sys::lttng_buffer_type::LTTNG_BUFFER_GLOBAL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_map_to_the_c_values() {
        let domain = Domain::UserSpace.to_sys(BufferType::PerPid);
        assert_eq!(domain.type_, sys::lttng_domain_type::LTTNG_DOMAIN_UST);
        assert_eq!(
            domain.buf_type,
            sys::lttng_buffer_type::LTTNG_BUFFER_PER_PID
        );
        let domain = Domain::Kernel.to_sys(BufferType::Global);
        assert_eq!(domain.type_, sys::lttng_domain_type::LTTNG_DOMAIN_KERNEL);
        assert_eq!(domain.buf_type, sys::lttng_buffer_type::LTTNG_BUFFER_GLOBAL);
    }
}
