#[larder::cache(ttl = "1m", vary = ["Accept Language"])]
async fn a() -> &'static str {
    "a"
}

#[larder::cache(ttl = "1m", statuses = [200, 42])]
async fn b() -> &'static str {
    "b"
}

#[larder::cache(ttl = "1m", key_extra = "tenant")]
async fn c() -> &'static str {
    "c"
}

fn main() {}
