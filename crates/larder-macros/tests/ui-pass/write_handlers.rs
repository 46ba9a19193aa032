//! What a write handler may say: nothing at all, a namespace, the other
//! namespaces it invalidates, a key function; and a handler that also
//! answers GETs keeps its `ttl` beside `invalidates`.

use axum::routing::{get, post};
use axum::{http::StatusCode, Router};

fn tenant(parts: &axum::http::request::Parts) -> String {
    parts.uri.path().to_owned()
}

#[larder::cache]
async fn bare() -> StatusCode {
    StatusCode::NO_CONTENT
}

#[larder::cache(namespace = "admin", invalidates = ["items", "search"], key_extra = tenant)]
async fn admin(body: String) -> (StatusCode, String) {
    (StatusCode::CREATED, body)
}

#[larder::cache(invalidates = "items")]
async fn one_namespace() -> StatusCode {
    StatusCode::OK
}

#[larder::cache(ttl = "1m", namespace = "items", invalidates = ["search"])]
async fn read_and_write() -> &'static str {
    "items"
}

fn main() {
    let _app: Router = Router::new()
        .route("/bare", post(bare))
        .route("/admin", post(admin).put(one_namespace))
        .route("/items", get(read_and_write).post(read_and_write));
}
