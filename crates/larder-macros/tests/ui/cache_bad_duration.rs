use std::time::Duration;

#[larder::cache(ttl = "15 parsecs")]
async fn a() -> &'static str {
    "a"
}

#[larder::cache(ttl = 15m)]
async fn b() -> &'static str {
    "b"
}

#[larder::cache(ttl = "15")]
async fn c() -> &'static str {
    "c"
}

#[larder::cache(ttl = "0s")]
async fn d() -> &'static str {
    "d"
}

#[larder::cache(ttl = "1500us")]
async fn e() -> &'static str {
    "e"
}

#[larder::cache(ttl = 60 * 5)]
async fn f() -> &'static str {
    "f"
}

// An expression is any `Duration`: the compiler checks its type.
#[larder::cache(ttl = "15m".to_owned())]
async fn g() -> &'static str {
    "g"
}

#[larder::cache(ttl = "1m", stale_if_error = Duration::from_secs(60).as_secs())]
async fn h() -> &'static str {
    "h"
}

#[larder::memoize(ttl = "69y")]
async fn i(n: u64) -> u64 {
    n
}

fn main() {}
