//! `#[axum::debug_handler]` goes above or below the attribute: below, it
//! checks the handler as written; above, the wrapper takes the handler's
//! own arguments, so its checks still hold.

use axum::extract::{Path, State};
use axum::{routing::get, Json, Router};

#[derive(Clone)]
struct Db;

#[larder::cache(ttl = "15m")]
#[axum::debug_handler]
async fn below(State(_db): State<Db>, Path(id): Path<u32>) -> String {
    format!("item {id}")
}

#[axum::debug_handler]
#[larder::cache(ttl = "15m")]
async fn above(State(_db): State<Db>, Path(id): Path<u32>) -> String {
    format!("item {id}")
}

#[axum::debug_handler(state = Db)]
#[larder::cache(namespace = "items")]
async fn above_with_body(Json(name): Json<String>) -> String {
    name
}

#[larder::cache(ttl = "15m")]
#[axum::debug_handler]
async fn below_without_arguments() -> &'static str {
    "items"
}

fn main() {
    let _app: Router = Router::new()
        .route("/below/{id}", get(below))
        .route("/above/{id}", get(above))
        .route("/items", get(below_without_arguments).post(above_with_body))
        .with_state(Db);
}
