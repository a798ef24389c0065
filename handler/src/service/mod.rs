//! The crash service on the kernel's coredump socket (`serve`): its
//! listening socket, passed by systemd, held by `serve --hold`'s holder,
//! or its own (`listen`, `hold`); the queue that gives each uid its share
//! of the workers (`fair_queue`); the line between the service and the
//! process each crash is handled in (`relay`), and that process started
//! before its crash comes (`spare`); the probe that tells whether a
//! service answers (`probe`); the submitter of the spool's crashes, run
//! as its own user (`submitter`); the live cores taken on the notifications
//! of LTTng triggers (`live_events`), each user's waiting in turn for a
//! dump slot (`live_queue`), within per-second bounds (`rate_window`).
//! Each crash goes down the same crash path as the pipe's.

pub mod fair_queue;
pub mod hold;
pub mod listen;
pub mod live_events;
pub mod live_queue;
pub mod probe;
pub mod rate_window;
pub mod relay;
pub mod serve;
pub mod spare;
pub mod submitter;
pub mod user_notifications;
