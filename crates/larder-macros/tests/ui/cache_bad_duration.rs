#[larder::cache(ttl = "15 minutes")]
async fn a() -> &'static str {
    "a"
}

#[larder::cache(ttl = 15m)]
async fn b() -> &'static str {
    "b"
}

#[larder::cache(ttl = "30m1h")]
async fn c() -> &'static str {
    "c"
}

#[larder::cache(ttl = "0s")]
async fn d() -> &'static str {
    "d"
}

fn main() {}
