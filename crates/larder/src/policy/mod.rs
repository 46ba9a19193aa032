//! The HTTP caching rules larder implements, as small pure functions.
//!
//! Nothing in here performs IO, awaits, or reads the system clock: time is
//! always a parameter. Every rule is unit-tested beside it, with the RFC
//! section in the test's name or comment.

pub mod cache_control;
pub mod cache_status;
pub mod conditional;
pub mod date;
pub mod freshness;
pub mod headers;
pub mod key;
pub mod path;
pub mod range;
pub mod route;
pub mod storable;
pub mod targeted;

pub use cache_control::{CacheControl, FieldNames, MaxStale};
pub use cache_status::{CacheStatus, Fwd};
pub use route::{ClientCacheControl, Heuristic, KeyExtra, Mode, Policy};
pub use storable::NotStored;
