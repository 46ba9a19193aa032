//! The `#[larder::cache]` and `#[larder::memoize]` attributes. Use them
//! through `larder` with its `macros` feature; their expansions name
//! `::larder`, so the crate must be a direct dependency under that name.
#![warn(missing_docs)]

mod cache;
mod duration;
mod memoize;
mod options;
mod signature;

use proc_macro::TokenStream;

/// Caches an axum handler's responses: the per-view cache decorator, like
/// Django's `cache_page` or fastapi-cache's `@cache`, done at compile time.
/// The handler stays exactly as written.
///
/// ```no_run
/// use axum::extract::{Path, State};
/// use axum::{routing::get, Json, Router};
/// use larder::Cache;
///
/// #[derive(Clone)]
/// struct Db;
///
/// /// Every item: the body runs once per 15 minutes, whoever asks.
/// #[larder::cache(ttl = "15m", namespace = "items")]
/// async fn list_items(State(_db): State<Db>) -> Json<Vec<String>> {
///     Json(vec!["apple".into(), "pear".into()]) // imagine a slow query
/// }
///
/// /// One item, in the client's language: one entry per Accept-Language.
/// #[larder::cache(ttl = "1h30m", namespace = "items", vary = ["accept-language"])]
/// async fn item(Path(id): Path<u32>) -> Result<String, (axum::http::StatusCode, String)> {
///     Ok(format!("item {id}"))
/// }
///
/// #[tokio::main]
/// async fn main() {
///     // The counterpart of FastAPICache.init: set the cache up once.
///     larder::init(Cache::builder().build()).expect("one default cache");
///     let app = Router::new()
///         .route("/items", get(list_items))
///         .route("/items/{id}", get(item))
///         .with_state(Db);
///     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
///     axum::serve(listener, app).await.unwrap();
/// }
/// ```
///
/// # Options
///
/// Each option is one call on [`Policy`](../larder/struct.Policy.html); the
/// attribute holds no caching rule of its own. Mistakes are compile errors.
///
/// | option | meaning | `Policy` call |
/// | --- | --- | --- |
/// | `ttl = "15m"` | fresh for this long: `"90s"`, `"1h30m"`, `"2d"`, or seconds such as `900`; leave it out on a write handler | `Policy::ttl` (without it: `Policy::write`) |
/// | `origin_headers` | instead of `ttl`: freshness from the response's own headers (RFC 9111) | `Policy::origin_headers` |
/// | `namespace = "items"` | a group of routes purged together | `namespace` |
/// | `invalidates = ["items"]` | more namespaces a successful write invalidates its URI in, besides its own | `invalidates` |
/// | `vary = ["accept-language"]` | request headers that select different entries | `vary` |
/// | `tags = ["items"]` | tags stored with each entry | `tags` |
/// | `statuses = [200, 404]` | the statuses that may be stored (default 200) | `statuses` |
/// | `cache_control = "public, max-age=60"` | the `Cache-Control` clients get | `client_cache_control` |
/// | `stale_while_revalidate = "30s"`, `stale_if_error = "5m"` | stale windows when the response gives none | `stale_while_revalidate`, `stale_if_error` |
/// | `early_refresh = "2s"` | refresh shortly before expiry, in the background, with a probability that grows as expiry nears; about how long the handler takes (off by default) | `early_refresh` |
/// | `key = path::to::tenant` | a `fn(&http::request::Parts) -> String` whose result is part of the key | `key_extra` |
/// | `honor_request_cache_control = false` | ignore the client's `Cache-Control: no-cache` and friends | `honor_request_directives` |
/// | `allow_authorization = true` | share responses to requests that carry `Authorization` | `allow_authorization` |
/// | `cache = "sessions"` | use the cache of that name, when an app has several | |
///
/// # Where the cache comes from
///
/// From the request, when a layer put it there: `.layer(cache.extension())`
/// (or `cache.layer(..)`) on the router. Else from `larder::init(cache)`,
/// set once at startup. `cache = "name"` picks the cache built with
/// `Cache::builder().name("name")`. With no cache at all the handler still
/// runs, uncached, and one error naming the handler is logged.
///
/// # What the handler sees
///
/// The generated handler takes a hidden extractor first (it reads the
/// method, URI and header fields, and takes nothing, so a body extractor may
/// still come last), then the handler's own extractors: `State`, `Path`,
/// `Query`, `Json`, headers, your own. They run before the cache is asked,
/// on the request as the client sent it, so a header extractor sees a
/// `HEAD` or an `If-None-Match` the cache will answer itself from the full
/// response the handler gives. The handler may return anything that
/// implements `IntoResponse`, `Result`s included; only what the policy
/// allows (by default a 200 without `Set-Cookie`, `private` or `no-store`)
/// is stored. The handler keeps its attributes, docs and visibility; it
/// must not be generic.
///
/// # Write handlers
///
/// On a POST, PUT, PATCH or DELETE handler the attribute stores nothing: a
/// successful (2xx or 3xx) answer invalidates the URI's cached GET, and
/// that of a same-origin `Location` or `Content-Location` (RFC 9111 §4.4),
/// in the handler's namespace and in each one `invalidates` names. A write
/// handler needs no `ttl`: without one (and without `origin_headers`) it is
/// a write handler ([`Policy::write`](../larder/struct.Policy.html#method.write)),
/// and options that shape stored responses (`vary`, `tags`, `statuses`,
/// `cache_control`, the stale windows, `early_refresh`,
/// `honor_request_cache_control`, `allow_authorization`) are compile errors
/// there. The attribute cannot see which methods the router sends the
/// handler, so a `ttl` is not refused: a write ignores it (it stores
/// nothing), and a GET sent to the same handler is cached with it. A GET
/// that reaches a handler without a `ttl` runs uncached, and one warning
/// naming the handler says so.
///
/// ```no_run
/// use axum::extract::Json;
/// use axum::{http::StatusCode, routing::{get, post}, Router};
///
/// #[larder::cache(ttl = "15m", namespace = "items")]
/// async fn list_items() -> Json<Vec<String>> {
///     Json(vec!["apple".into()])
/// }
///
/// /// In namespace `admin`; its success also removes `/items` from `items`.
/// #[larder::cache(namespace = "admin", invalidates = ["items"])]
/// async fn add_item(Json(name): Json<String>) -> StatusCode {
///     let _ = name; // imagine an INSERT
///     StatusCode::CREATED
/// }
///
/// let app: Router = Router::new().route("/items", get(list_items).post(add_item));
/// ```
#[proc_macro_attribute]
pub fn cache(attr: TokenStream, item: TokenStream) -> TokenStream {
    or_error(cache::expand(attr.into(), item.clone().into()), item)
}

/// Keeps an async function's results in the cache, keyed by its arguments.
///
/// ```
/// use larder::Cache;
/// use serde::{Deserialize, Serialize};
///
/// struct Pool; // a database pool: not part of the key
///
/// #[derive(Serialize, Deserialize)]
/// struct Profile {
///     id: u64,
///     name: String,
/// }
///
/// #[larder::memoize(ttl = "5m", namespace = "profiles", skip(pool))]
/// async fn profile(pool: &Pool, id: u64) -> Result<Profile, String> {
///     let _ = pool; // imagine a slow query
///     Ok(Profile { id, name: format!("user {id}") })
/// }
///
/// #[tokio::main]
/// async fn main() {
///     larder::init(Cache::builder().build()).expect("one default cache");
///     let pool = Pool;
///     let first = profile(&pool, 7).await.unwrap(); // runs the query
///     let again = profile(&pool, 7).await.unwrap(); // from the cache
///     assert_eq!(first.name, again.name);
///     profile::purge().await; // forgets every stored profile
/// }
/// ```
///
/// # Options
///
/// - `ttl = "5m"` (required): how long a result is kept; `"90s"`, `"1h30m"`,
///   `"2d"`, or seconds such as `300`.
/// - `namespace = "profiles"`: keys' namespace. Default `"default"`.
/// - `skip(pool, ..)`: arguments left out of the key, such as a pool or a
///   client. Every other argument must implement `serde::Serialize`; equal
///   arguments must serialize equally (a `HashMap`'s order does not).
/// - `cache = "name"`: the cache set up with `larder::init` under that name.
///
/// # Behaviour
///
/// The function body runs once for equal arguments within the TTL.
/// Concurrent calls with equal arguments run it once and share its result.
/// The result is stored as JSON, so it must implement `Serialize` and
/// `Deserialize`; when the function returns a `Result`, only `Ok` values
/// are stored. The cache is the one given to `larder::init`; without one,
/// and when the store fails, the function runs uncached (an error is
/// logged, never returned).
///
/// The attribute also makes a module of the function's name with
/// `purge()`, which forgets every result the function stored. It goes on
/// free, non-generic `async fn`s.
#[proc_macro_attribute]
pub fn memoize(attr: TokenStream, item: TokenStream) -> TokenStream {
    or_error(memoize::expand(attr.into(), item.clone().into()), item)
}

/// On a mistake: the error, and the function as written, so that code
/// using it does not add errors of its own to the one that matters.
fn or_error(expanded: syn::Result<proc_macro2::TokenStream>, item: TokenStream) -> TokenStream {
    match expanded {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            let mut tokens: TokenStream = error.into_compile_error().into();
            tokens.extend(item);
            tokens
        }
    }
}
