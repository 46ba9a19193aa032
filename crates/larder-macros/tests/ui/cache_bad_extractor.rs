// A handler whose extractor axum cannot extract. Without help, axum's
// error is about the handler's type, the function the attribute made;
// `#[axum::debug_handler]` under the attribute names the argument.
use axum::{routing::get, Router};

struct NotAnExtractor;

#[larder::cache(ttl = "1m")]
async fn plain(_x: NotAnExtractor) -> &'static str {
    "plain"
}

#[larder::cache(ttl = "1m")]
#[axum::debug_handler]
async fn debugged(_x: NotAnExtractor) -> &'static str {
    "debugged"
}

fn main() {
    let _app: Router = Router::new().route("/plain", get(plain)).route("/debugged", get(debugged));
}
