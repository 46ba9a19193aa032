//! The core crate's test support: a real `redis-server` per test. One
//! file, used by both crates' tests, so the two never drift apart.
#![allow(dead_code)]

#[path = "../../../larder/tests/support/redis.rs"]
pub mod redis;
