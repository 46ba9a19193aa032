use axum::http::{HeaderMap, Method, Uri, Version};

type H = HeaderMap;

#[larder::cache(ttl = "1m")]
#[allow(clippy::too_many_arguments)]
async fn seventeen(
    _1: Method, _2: Uri, _3: Version, _4: H, _5: H, _6: H, _7: H, _8: H,
    _9: H, _10: H, _11: H, _12: H, _13: H, _14: H, _15: H, _16: H, _17: H,
) -> &'static str {
    "one more than axum takes"
}

fn main() {}
