//! The core crate's test support: a real `redis-server` per test, the same
//! file the core crate's and the proxy's tests use.
#![allow(dead_code)]

#[path = "../../../larder/tests/support/redis.rs"]
pub mod redis;
