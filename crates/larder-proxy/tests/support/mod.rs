//! Copied from `crates/larder/tests/support`: a real `redis-server` per test.
#![allow(dead_code)]

pub mod redis;
