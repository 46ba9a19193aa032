// The companion module `profile::{purge, forget}` needs the function's
// name in the type namespace: beside an item of that name, `module = ..`
// names it otherwise (see ui-pass/memoize.rs).
mod profile {}

#[larder::memoize(ttl = "5m")]
async fn profile(id: u64) -> String {
    format!("user {id}")
}

fn main() {}
