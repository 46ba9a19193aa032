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
/// Each option is one call on [`Policy`](../larder/policy/route/struct.Policy.html), under the same name (the
/// proxy's TOML uses it too); the attribute holds no caching rule of its
/// own. Mistakes are compile errors.
///
/// | option | meaning | `Policy` call |
/// | --- | --- | --- |
/// | `ttl = "15m"` | fresh for this long (see *Durations*); leave it out on a write handler | `Policy::ttl` (without it: `Policy::write`) |
/// | `origin_headers` | instead of `ttl`: freshness from the response's own headers (RFC 9111) | `Policy::origin_headers` |
/// | `namespace = "items"` | a group of routes purged together | `namespace` |
/// | `invalidates = ["items"]` | more namespaces a successful write invalidates its URI in, besides its own | `invalidates` |
/// | `vary = ["accept-language"]` | request headers that select different entries | `vary` |
/// | `tags = ["items"]` | tags stored with each entry | `tags` |
/// | `statuses = [200, 404]` | the statuses that may be stored (default 200) | `statuses` |
/// | `client_cache_control = "public, max-age=60"` | the `Cache-Control` clients get | `client_cache_control` |
/// | `stale_while_revalidate = "30s"`, `stale_if_error = "5m"` | stale windows when the response gives none; zero is off | `stale_while_revalidate`, `stale_if_error` |
/// | `early_refresh = "2s"` | refresh shortly before expiry, in the background, with a probability that grows as expiry nears; about how long the handler takes (off by default; zero is off) | `early_refresh` |
/// | `key_extra = path::to::tenant` | a `fn(&http::request::Parts) -> String` whose result is part of the key | `key_extra` |
/// | `honor_request_directives = false` | ignore the client's `Cache-Control: no-cache` and friends | `honor_request_directives` |
/// | `allow_authorization = true` | share responses to requests that carry `Authorization` | `allow_authorization` |
/// | `cache = "sessions"` | use the cache of that name, when an app has several | |
///
/// The old spellings `cache_control`, `key` and
/// `honor_request_cache_control` are errors that name the new ones, and
/// `expire` (fastapi-cache's word) and `timeout` (Django's) ask "did you
/// mean `ttl`?".
///
/// # Durations
///
/// `ttl`, the stale windows and `early_refresh` take text in
/// [humantime](https://docs.rs/humantime)'s grammar, as every face of
/// larder does ([`larder::parse_duration`](../larder/duration/fn.parse_duration.html)): `"250ms"`, `"90s"`, `"15m"`,
/// `"1h30m"`, `"1h 30m"`, `"2d"` (`"1m1m"` is two minutes); or an integer
/// of seconds such as `900`. They are kept to the millisecond, at most 68
/// years. A `ttl` of zero is an error; a zero window or `early_refresh` is
/// off.
///
/// Any other expression of type `std::time::Duration` is taken as it is,
/// and evaluated when the handler first runs:
///
/// ```no_run
/// use std::time::Duration;
///
/// const TTL: Duration = Duration::from_secs(15 * 60);
///
/// #[larder::cache(ttl = TTL, stale_if_error = Duration::from_secs(60 * 5))]
/// async fn report() -> &'static str {
///     "report"
/// }
/// ```
///
/// Literals are checked at compile time. An expression cannot be: a `ttl`
/// that comes to zero leaves the route uncached, and one error naming the
/// handler is logged when it first runs.
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
/// The handler's own extractors: `State`, `Path`, `Query`, `Json`,
/// headers, your own. They run before the cache is asked, on the request
/// as the client sent it, so a header extractor sees a `HEAD` or an
/// `If-None-Match` the cache will answer itself from the full response
/// the handler gives. The handler may return anything that implements
/// `IntoResponse`, `Result`s included; only what the policy allows (by
/// default a 200 without `Set-Cookie`, `private` or `no-store`) is
/// stored. The handler keeps its attributes, docs and visibility; it must
/// not be generic. Up to 16 extractors, as axum allows.
///
/// The function the attribute makes, the one the router calls, also takes
/// `larder::axum::CacheRequest`, an extractor that answers a hot-tier hit
/// or copies the method, URI and header fields for the cache, and takes
/// nothing, so a body extractor may still come last (a hit is sent only
/// after every extractor ran, so one that refuses the request still does).
/// It rides in a tuple with the handler's first argument, so the function
/// takes as many arguments as the handler, and axum's errors about a
/// handler that is not a `Handler` show it as
/// `fn((CacheRequest<__larder_route_name>, T), ..)`: `T` is the handler's
/// first argument. The attribute adds two hidden items beside the handler
/// (its route, and a type naming it), so it goes on a free function, not
/// one in an `impl` block.
/// `#[axum::debug_handler]` works above or below the attribute; below it
/// checks the handler as written, so its errors name your arguments:
///
/// ```no_run
/// use axum::extract::{Path, State};
///
/// #[derive(Clone)]
/// struct Db;
///
/// #[larder::cache(ttl = "15m")]
/// #[axum::debug_handler]
/// async fn item(State(_db): State<Db>, Path(id): Path<u32>) -> String {
///     format!("item {id}")
/// }
/// ```
///
/// # Write handlers
///
/// On a POST, PUT, PATCH or DELETE handler the attribute stores nothing: a
/// successful (2xx or 3xx) answer invalidates the URI's cached GET, and
/// that of a same-origin `Location` or `Content-Location` (RFC 9111 §4.4),
/// in the handler's namespace and in each one `invalidates` names. A write
/// handler needs no `ttl`: without one (and without `origin_headers`) it is
/// a write handler ([`Policy::write`](../larder/policy/route/struct.Policy.html#method.write)), and options that shape stored
/// responses (`vary`, `tags`, `statuses`, `client_cache_control`, the
/// stale windows, `early_refresh`, `honor_request_directives`,
/// `allow_authorization`) are compile errors
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
///     profile::forget(7).await; // forgets user 7's profile: the key's arguments
///     profile::purge().await; // forgets every stored profile
/// }
/// ```
///
/// # Options
///
/// - `ttl = "5m"` (required): how long a result is kept, as
///   `#[larder::cache]` takes it (`"250ms"`, `"90s"`, `"1h30m"`, seconds
///   such as `300`), or a constant expression of type `Duration` such as
///   `TTL` or `Duration::from_secs(60 * 5)` (it sets up a `static`); a
///   zero one, literal or constant, fails to compile.
/// - `namespace = "profiles"`: keys' namespace. Default `"default"`.
/// - `skip(pool, ..)`: arguments left out of the key, such as a pool or a
///   client. Every other argument must implement `serde::Serialize`; equal
///   arguments must serialize equally (a `HashMap`'s order does not).
/// - `cache = "name"`: the cache set up with `larder::init` under that name.
/// - `module = profile_cache`: the name of the module below, when an item
///   of the function's name is already there.
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
/// The attribute also makes a module of the function's name (or the one
/// `module` gives) beside it, with `forget(args)`, which forgets the result
/// stored for those arguments (the key's: `skip(..)` ones are not taken),
/// and `purge()`, which forgets every result the function stored. A module
/// needs the name in the type namespace: beside a `mod profile` or a
/// `struct profile`, the compiler says "the name `profile` is defined
/// multiple times"; `module = ..` is the way out. The module sees what the
/// function's module sees (`use super::*`, for the argument types and the
/// `ttl`), so declare the function at module level, not in a function
/// body. The attribute goes on free, non-generic `async fn`s.
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
