//! The foundation every other folder builds on, and which uses none of
//! them: turning what a crashing process chose into safe text and file
//! names, text for people, the log (syslog and the record's copy), files
//! created so that nothing planted can redirect them, POSIX ACLs, whether
//! only root can change a path, the configuration and its parser, and the
//! runner of programs exec'd as a crash's user.

pub mod acl;
pub mod config;
pub mod config_parse;
pub mod human;
pub mod live_config;
pub mod path_presence;
pub mod safefile;
pub mod sanitize;
pub mod syslog;
pub mod trusted_path;
pub mod user_child;
