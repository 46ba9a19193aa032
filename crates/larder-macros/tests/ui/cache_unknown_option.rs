#[larder::cache(tll = "15m")]
async fn list_items() -> &'static str {
    "items"
}

#[larder::cache(ttl = "15m", colour = "blue")]
async fn list_colours() -> &'static str {
    "colours"
}

fn main() {}
