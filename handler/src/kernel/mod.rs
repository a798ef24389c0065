//! The model of the kernel's crash settings, which `install`, `serve`,
//! `status`, `demo` and the tools share: `core_pattern` and
//! `core_pipe_limit` as files, the handler's core_pattern lines, the
//! backup of what was there before, the sysctl.d persistence, the other
//! crash handlers of the machine (and who owns core_pattern after the next
//! boot), and the kernel's bound on FUSE requests.

pub mod backup;
pub mod fuse_timeout;
pub mod other_handlers;
pub mod pattern;
pub mod persist;
pub mod settings;
