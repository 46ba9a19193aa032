use axum::extract::State;

#[larder::cache(ttl = "15m")]
async fn list_items<S: Clone>(State(_state): State<S>) -> &'static str {
    "items"
}

#[larder::cache(ttl = "15m")]
async fn list_others(_body: impl Into<String>) -> &'static str {
    "others"
}

fn main() {}
