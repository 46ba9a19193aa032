//! larder: an HTTP response cache for Rust web services.
#![warn(missing_docs)]

pub mod policy;

pub use policy::Policy;
