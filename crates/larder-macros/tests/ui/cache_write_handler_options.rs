#[larder::cache(namespace = "items")]
async fn list_items() -> &'static str {
    "items"
}

#[larder::cache(ttl = "1m", origin_headers)]
async fn both() -> &'static str {
    "both"
}

fn main() {}
