// The old spellings, and other caches' words for `ttl`, name larder's.
#[larder::cache(ttl = "1m", cache_control = "no-cache")]
async fn a() -> &'static str {
    "a"
}

#[larder::cache(ttl = "1m", honor_request_cache_control = false)]
async fn b() -> &'static str {
    "b"
}

fn tenant(_: &axum::http::request::Parts) -> String {
    String::new()
}

#[larder::cache(ttl = "1m", key = tenant)]
async fn c() -> &'static str {
    "c"
}

#[larder::cache(expire = 60)]
async fn d() -> &'static str {
    "d"
}

#[larder::cache(timeout = 60)]
async fn e() -> &'static str {
    "e"
}

#[larder::memoize(expire = "5m")]
async fn f(n: u64) -> u64 {
    n
}

fn main() {}
