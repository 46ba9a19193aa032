//! Durations in humantime's grammar, integers of seconds, and any
//! `Duration` expression: a const, a const fn call, a function call.

use std::time::Duration;

use axum::{routing::get, Router};

const TTL: Duration = Duration::from_secs(15 * 60);

fn from_config() -> Duration {
    Duration::from_millis(1_500)
}

mod config {
    pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(30);
}

#[larder::cache(ttl = "250ms", stale_while_revalidate = "1m1m", early_refresh = "0s")]
async fn fast() -> &'static str {
    "fast"
}

#[larder::cache(ttl = "1h 30m", stale_if_error = 0)]
async fn spaced() -> &'static str {
    "spaced"
}

#[larder::cache(ttl = TTL, stale_while_revalidate = config::WINDOW)]
async fn constant() -> &'static str {
    "constant"
}

#[larder::cache(ttl = Duration::from_secs(60 * 5), stale_if_error = from_config())]
async fn computed() -> &'static str {
    "computed"
}

#[larder::memoize(ttl = TTL)]
async fn memo_constant(n: u64) -> u64 {
    n
}

#[larder::memoize(ttl = Duration::from_secs(60 * 5))]
async fn memo_computed(n: u64) -> u64 {
    n
}

#[larder::memoize(ttl = self::config::WINDOW)]
async fn memo_self_path(n: u64) -> u64 {
    n
}

fn main() {
    let _app: Router = Router::new()
        .route("/fast", get(fast))
        .route("/spaced", get(spaced))
        .route("/constant", get(constant))
        .route("/computed", get(computed));
    let _ = (memo_constant(1), memo_computed(2), memo_self_path(3));
}
