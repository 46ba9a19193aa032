//! Test helpers that start real servers.
#![allow(dead_code)]

pub mod redis;
