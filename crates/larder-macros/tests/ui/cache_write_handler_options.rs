// Without a `ttl` a handler is a write handler: options that shape stored
// responses mean nothing there.
#[larder::cache(namespace = "admin", vary = ["accept-language"])]
async fn write_with_vary() -> &'static str {
    "vary"
}

#[larder::cache(invalidates = ["items"], stale_if_error = "5m")]
async fn write_with_stale_window() -> &'static str {
    "stale"
}

#[larder::cache(invalidates = [""])]
async fn empty_namespace() -> &'static str {
    "empty"
}

#[larder::cache(invalidates = [items])]
async fn unquoted_namespace() -> &'static str {
    "unquoted"
}

#[larder::cache(ttl = "1m", origin_headers)]
async fn both() -> &'static str {
    "both"
}

fn main() {}
