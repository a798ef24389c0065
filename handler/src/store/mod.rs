//! The crash store that the crash path, the tools and `status` share: the
//! core directory (opened component by component and trusted only when
//! root's), the crash record's schema (the same types to write and to
//! read), the crash's report in a file beside its record, finding the crashes in the directory with the caller's rights,
//! retention by age, the directory's size limit and free-space floor, and
//! the ledger that rate limits and budgets are counted in.

pub mod coredir;
pub mod crashes;
pub mod ledger;
pub mod record;
pub mod record_read;
pub mod report_file;
pub mod retention;
pub mod space;
