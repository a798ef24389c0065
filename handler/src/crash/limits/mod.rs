//! What bounds one crash's cost, so that no user's crashes can use up what
//! other users' crashes need, even in a storm: the core rate limit per
//! program and per user, the snapshot budget (and each uid's share of it),
//! each uid's share of the crashes handled at once, the bound on a core
//! stream that stalls, and its remedy (aborting the FUSE connections the
//! dump waits on).

pub mod crash_share;
pub mod fuse_abort;
pub mod ratelimit;
pub mod snapshot_budget;
pub mod stall;
