//! larder: an HTTP response cache for Rust web services.
#![warn(missing_docs)]

pub mod clock;
mod engine;
pub mod entry;
mod layer;
pub mod policy;
pub mod store;

pub use engine::{
    Cache, CacheBody, CacheBuilder, Fill, Lookup, Stats, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MEMORY_BYTES,
};
pub use layer::{CacheLayer, CacheService};
pub use policy::{ClientCacheControl, Heuristic, NotStored, Policy};
pub use store::MemoryStore;
