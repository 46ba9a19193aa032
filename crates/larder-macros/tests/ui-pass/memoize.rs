//! `name::forget(args)` takes the key's arguments with their types as the
//! function gives them (relative paths included); `module = ..` names the
//! companion module when an item already has the function's name.

use serde::{Deserialize, Serialize};

pub mod ids {
    #[derive(serde::Serialize)]
    pub struct Id(pub u64);
}

#[derive(Serialize, Deserialize)]
struct Profile {
    name: String,
}

struct Pool;

#[larder::memoize(ttl = "5m", skip(pool))]
async fn profile<'a>(pool: &Pool, id: u64, name: &'a str) -> Profile {
    let _ = pool;
    Profile { name: format!("{id} {name}") }
}

#[larder::memoize(ttl = "5m")]
async fn by_id(id: self::ids::Id, (a, b): (u8, u8)) -> u64 {
    id.0 + u64::from(a) + u64::from(b)
}

/// An item of the function's name is already here.
mod settings {}

#[larder::memoize(ttl = "5m", module = settings_cache)]
async fn settings(user: String) -> String {
    user
}

#[tokio::main]
async fn main() {
    let _ = profile(&Pool, 7, "ann").await;
    profile::forget(7, "ann").await;
    profile::purge().await;
    by_id::forget(ids::Id(1), (2, 3)).await;
    let _ = settings("ann".to_owned()).await;
    settings_cache::forget("ann".to_owned()).await;
    settings_cache::purge().await;
}
