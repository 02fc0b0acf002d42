//! The source tables as typed versions (`source`), the warehouse rows (`warehouse`), and
//! the mappings from one to the other (`mapping`); ../shared/spec/README.md is the
//! contract, and the comments cite its rules.

use time::{Date, Time};

mod mapping;
mod source;
mod warehouse;

pub use mapping::*;
pub use source::*;
pub use warehouse::*;

/// `last_updated` (or `created_at`) split as the warehouse stores it.
pub type Stamp = (Date, Time);
