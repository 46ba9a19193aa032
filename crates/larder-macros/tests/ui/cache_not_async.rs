#[larder::cache(ttl = "15m")]
fn list_items() -> &'static str {
    "items"
}

fn main() {}
