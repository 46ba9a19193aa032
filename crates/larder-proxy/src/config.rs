//! The proxy's configuration: a TOML file, command-line flags over it, and
//! the typed [`Config`] the proxy runs with.
//!
//! Every mistake is found before the proxy starts, and reported with the
//! line and column it is on and what to write instead.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, StatusCode, Uri};
use larder::{Heuristic, Policy};
use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::routes::{Cookies, Pattern, Route, Routes, Rule};

/// The default address the proxy listens on.
///
/// ```
/// let c = larder_proxy::Config::parse("[server]\nupstream = \"http://127.0.0.1:8000\"\n", "inline").unwrap();
/// assert_eq!(c.listen.to_string(), larder_proxy::config::DEFAULT_LISTEN);
/// ```
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default targeted fields (RFC 9213), first match wins; `[cache]
/// targets = [...]` replaces them.
///
/// ```
/// assert_eq!(larder_proxy::config::DEFAULT_TARGETS[0], "larder-cache-control");
/// ```
pub const DEFAULT_TARGETS: [&str; 3] = [
    "larder-cache-control",
    "surrogate-control",
    "cdn-cache-control",
];

/// A configuration that could not be used, with where and why.
///
/// ```
/// let err = larder_proxy::Config::parse("[server]\nupstream = 8000\n", "larder.toml").unwrap_err();
/// assert!(err.to_string().contains("line 2"), "{err}");
/// ```
#[derive(Debug)]
pub struct ConfigError(String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// An error not tied to a place in a file (a flag, a missing value).
    ///
    /// ```
    /// let e = larder_proxy::ConfigError::new("--listen: not an address");
    /// assert_eq!(e.to_string(), "--listen: not an address");
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError(message.into())
    }
}

/// Everything the proxy runs with.
///
/// ```
/// let config = larder_proxy::Config::parse(
///     r#"
///     [server]
///     upstream = "http://127.0.0.1:8000"
///     listen = "127.0.0.1:0"
///     "#,
///     "inline",
/// )
/// .unwrap();
/// assert_eq!(config.upstream.to_string(), "http://127.0.0.1:8000/");
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// The backend: `http://host:port`, no path.
    pub upstream: Uri,
    /// A Redis (or `redis+cluster://`) URL for a store shared by every
    /// proxy; `None`: in memory.
    pub redis: Option<String>,
    /// The longest a Redis command may take (then the request goes on as
    /// a miss): the most Redis may add to a request.
    pub redis_timeout: Duration,
    /// In-memory capacity, when not on Redis.
    pub memory_bytes: u64,
    /// Largest body stored; larger ones stream through uncached.
    pub max_body_bytes: usize,
    /// The most memory all misses being streamed and stored hold together
    /// for storing; past it a miss streams on without being stored.
    pub in_flight_bytes: usize,
    /// Longest wait for a connection to the upstream (then 502).
    pub connect_timeout: Duration,
    /// Longest wait for the upstream's response headers, from sending the
    /// request: its first byte (then 504).
    pub upstream_timeout: Duration,
    /// Longest wait for the next bytes of the upstream's response body
    /// (nginx's `proxy_read_timeout`, Varnish's `between_bytes_timeout`):
    /// past it the response is abandoned. Zero: no limit.
    pub between_bytes_timeout: Duration,
    /// Longest wait for a client's request head, from its first byte.
    pub client_header_timeout: Duration,
    /// How long a client connection is kept open with no request
    /// (nginx's `keepalive_timeout`), from the end of the last response.
    pub client_keepalive_timeout: Duration,
    /// Longest wait for the next bytes of a client's request body (nginx's
    /// `client_body_timeout`), while the upstream reads it: then 408.
    /// Zero: no limit.
    pub client_body_timeout: Duration,
    /// How long in-flight requests get to finish on SIGTERM/SIGINT.
    pub shutdown_timeout: Duration,
    /// One log line per request, with the cache outcome.
    pub access_log: bool,
    /// Whether request fields whose names hold `_` reach the upstream
    /// (nginx's `underscores_in_headers`). Off: they are dropped, since
    /// CGI-style servers read `X_Forwarded_Host` as `X-Forwarded-Host`.
    pub underscores_in_headers: bool,
    /// The cache's name in `Cache-Status` (and in `Surrogate-Control` targets).
    pub name: String,
    /// The first part of every store key.
    pub prefix: String,
    /// An extra legacy status header, such as `x-cache`.
    pub legacy_status_header: Option<String>,
    /// Hosts the cache serves; others pass uncached. `None`: every host.
    pub allowed_hosts: Option<Vec<String>>,
    /// The rules: per-path routes and the default.
    pub routes: Routes,
    /// The admin listener, off unless configured.
    pub admin: Option<AdminConfig>,
    /// Most client connections open at once (default: from the open-file
    /// limit, [`crate::listener::default_max_connections`]).
    pub max_connections: usize,
    /// Requests served on one client connection before it is closed
    /// (nginx's `keepalive_requests`); 0: no limit.
    pub max_requests_per_connection: u64,
    /// HTTP/2 with prior knowledge (h2c) on a plain listener, beside HTTP/1.1.
    pub h2c: bool,
    /// How long an idle pooled upstream connection is kept: below the
    /// keep-alive of the servers behind (gunicorn 2 s, uvicorn and Node 5 s).
    pub upstream_idle_timeout: Duration,
    /// TLS to an `https://` upstream.
    pub upstream_tls: UpstreamTls,
    /// TLS on the listener; `None`: plain HTTP.
    pub tls: Option<ListenerTls>,
}

/// TLS on the listener: PEM files, read at start and on reload (SIGHUP).
///
/// ```
/// let c = larder_proxy::Config::parse(
///     "[server]\nupstream = \"http://127.0.0.1:8000\"\n[tls]\ncertificate = \"cert.pem\"\nkey = \"key.pem\"\n",
///     "inline",
/// )
/// .unwrap();
/// let tls = c.tls.unwrap();
/// assert_eq!(tls.certificate.to_str(), Some("cert.pem"));
/// assert!(tls.http2);
/// ```
#[derive(Debug, Clone)]
pub struct ListenerTls {
    /// The certificate chain, leaf first.
    pub certificate: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Offer HTTP/2 through ALPN (on unless turned off).
    pub http2: bool,
}

/// TLS to an `https://` upstream: whom to trust, and what to present.
///
/// ```
/// let c = larder_proxy::Config::parse("[server]\nupstream = \"http://127.0.0.1:8000\"\n", "inline").unwrap();
/// assert!(c.upstream_tls.ca.is_none()); // the system's roots
/// ```
#[derive(Debug, Clone, Default)]
pub struct UpstreamTls {
    /// CA certificates (PEM) to trust instead of the system's roots.
    pub ca: Option<PathBuf>,
    /// A client certificate chain (PEM) to present, with [`UpstreamTls::client_key`].
    pub client_certificate: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub client_key: Option<PathBuf>,
}

/// The default `upstream_idle_timeout`: 1 s, below every common backend's
/// keep-alive, so the proxy closes an idle connection before the upstream
/// does (reusing one the upstream just closed is a failed request).
///
/// ```
/// assert_eq!(larder_proxy::config::DEFAULT_UPSTREAM_IDLE_TIMEOUT.as_secs(), 1);
/// ```
pub const DEFAULT_UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// The default `redis_timeout`: 50 ms, the most Redis may add to a request.
///
/// ```
/// assert_eq!(larder_proxy::config::DEFAULT_REDIS_TIMEOUT.as_millis(), 50);
/// ```
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(50);

/// The default `between_bytes_timeout`: 60 s, as nginx's `proxy_read_timeout`.
///
/// ```
/// assert_eq!(larder_proxy::config::DEFAULT_BETWEEN_BYTES_TIMEOUT.as_secs(), 60);
/// ```
pub const DEFAULT_BETWEEN_BYTES_TIMEOUT: Duration = Duration::from_secs(60);

/// The default `client_header_timeout`: 30 s.
///
/// ```
/// assert_eq!(larder_proxy::config::DEFAULT_CLIENT_HEADER_TIMEOUT.as_secs(), 30);
/// ```
pub const DEFAULT_CLIENT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// The default `client_keepalive_timeout`: 75 s, as nginx's `keepalive_timeout`.
///
/// ```
/// assert_eq!(larder_proxy::config::DEFAULT_CLIENT_KEEPALIVE_TIMEOUT.as_secs(), 75);
/// ```
pub const DEFAULT_CLIENT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(75);

/// The default `client_body_timeout`: 60 s, as nginx's.
///
/// ```
/// assert_eq!(larder_proxy::config::DEFAULT_CLIENT_BODY_TIMEOUT.as_secs(), 60);
/// ```
pub const DEFAULT_CLIENT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// The default `max_requests_per_connection`, as nginx's `keepalive_requests`.
///
/// ```
/// assert_eq!(larder_proxy::config::DEFAULT_MAX_REQUESTS_PER_CONNECTION, 1000);
/// ```
pub const DEFAULT_MAX_REQUESTS_PER_CONNECTION: u64 = 1000;

/// The admin listener: purges, stats, metrics, health.
///
/// ```
/// let c = larder_proxy::Config::parse(
///     "[server]\nupstream = \"http://127.0.0.1:8000\"\n[admin]\nlisten = \"127.0.0.1:9090\"\ntoken = \"a-long-random-token-123\"\n",
///     "inline",
/// )
/// .unwrap();
/// assert_eq!(c.admin.unwrap().listen.port(), 9090);
/// ```
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Where it listens (keep it private).
    pub listen: SocketAddr,
    /// The bearer token every request but `/healthz` needs.
    pub token: String,
}

// ---- The file, as written ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    server: ServerSection,
    #[serde(default)]
    cache: CacheSection,
    admin: Option<toml::Spanned<AdminSection>>,
    tls: Option<toml::Spanned<TlsSection>>,
    #[serde(default, rename = "route")]
    routes: Vec<toml::Spanned<RouteSection>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    listen: Option<SocketAddr>,
    upstream: Option<UpstreamUrl>,
    redis: Option<String>,
    redis_timeout: Option<Seconds>,
    connect_timeout: Option<Seconds>,
    upstream_timeout: Option<Seconds>,
    between_bytes_timeout: Option<Seconds>,
    client_header_timeout: Option<Seconds>,
    client_keepalive_timeout: Option<Seconds>,
    client_body_timeout: Option<Seconds>,
    shutdown_timeout: Option<Seconds>,
    access_log: Option<bool>,
    underscores_in_headers: Option<bool>,
    max_connections: Option<toml::Spanned<usize>>,
    max_requests_per_connection: Option<u64>,
    h2c: Option<toml::Spanned<bool>>,
    upstream_idle_timeout: Option<Seconds>,
    upstream_ca: Option<PathBuf>,
    upstream_client_certificate: Option<PathBuf>,
    upstream_client_key: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    certificate: PathBuf,
    key: PathBuf,
    http2: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheSection {
    memory_bytes: Option<u64>,
    max_body_bytes: Option<usize>,
    in_flight_bytes: Option<usize>,
    name: Option<String>,
    prefix: Option<String>,
    legacy_status_header: Option<Header>,
    allowed_hosts: Option<Vec<String>>,
    targets: Option<Vec<Header>>,
    tags_from_headers: Option<bool>,
    honor_request_directives: Option<bool>,
    stale_if_error: Option<Seconds>,
    stale_while_revalidate: Option<Seconds>,
    heuristic: Option<HeuristicValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminSection {
    listen: SocketAddr,
    token: Option<String>,
    token_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSection {
    prefix: Option<String>,
    path: Option<String>,
    ttl: Option<Seconds>,
    namespace: Option<String>,
    #[serde(default)]
    vary: Vec<Header>,
    #[serde(default)]
    forward_headers: Vec<Header>,
    #[serde(default)]
    case_insensitive: bool,
    #[serde(default)]
    tags: Vec<String>,
    statuses: Option<Vec<Status>>,
    #[serde(default)]
    bypass: bool,
    honor_request_directives: Option<bool>,
    #[serde(default)]
    cookies: CookiesValue,
    #[serde(default)]
    allow_authorization: bool,
    stale_if_error: Option<Seconds>,
    stale_while_revalidate: Option<Seconds>,
    heuristic: Option<HeuristicValue>,
}

// ---- Values that check themselves, so errors point at them ----

/// A duration: `"90s"`, `"15m"`, `"1h30m"`, `"250ms"` or whole seconds.
#[derive(Debug, Clone, Copy)]
struct Seconds(Duration);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        let hint =
            "write a duration such as \"90s\", \"15m\", \"1h30m\", \"250ms\", or whole seconds";
        match Raw::deserialize(d).map_err(|_| de::Error::custom(hint))? {
            Raw::Int(s) => Ok(Seconds(Duration::from_secs(s))),
            Raw::Text(t) => parse_duration(&t)
                .map(Seconds)
                .ok_or_else(|| de::Error::custom(format!("{t:?} is not a duration; {hint}"))),
        }
    }
}

/// Parses `90s`, `15m`, `1h30m`, `250ms`, `2d`, or a bare number of seconds.
///
/// ```
/// use std::time::Duration;
/// use larder_proxy::config::parse_duration;
///
/// assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
/// assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
/// assert_eq!(parse_duration("soon"), None);
/// ```
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let part = match &rest[..unit] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            "d" => Duration::from_secs(n.checked_mul(86_400)?),
            _ => return None,
        };
        total = total.checked_add(part)?;
        rest = &rest[unit..];
    }
    Some(total)
}

#[derive(Debug, Clone)]
struct Header(HeaderName);

impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        HeaderName::from_bytes(text.as_bytes())
            .map(Header)
            .map_err(|_| de::Error::custom(format!("{text:?} is not a header field name")))
    }
}

#[derive(Debug, Clone, Copy)]
struct Status(StatusCode);

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u16::deserialize(d)?;
        StatusCode::from_u16(n)
            .ok()
            .filter(|s| !s.is_informational())
            .map(Status)
            .ok_or_else(|| de::Error::custom(format!("{n} is not a final status code (200-599)")))
    }
}

/// The proxy's heuristic freshness (RFC 9111 §4.2.2), on unless turned off:
/// 10% of `Date − Last-Modified`, at most a day, as Apache httpd and Squid.
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(larder_proxy::config::DEFAULT_HEURISTIC.percent, 10);
/// assert_eq!(larder_proxy::config::DEFAULT_HEURISTIC.cap, Duration::from_secs(86_400));
/// ```
pub const DEFAULT_HEURISTIC: Heuristic = Heuristic {
    percent: 10,
    cap: Duration::from_secs(24 * 3600),
};

/// `heuristic = true | false | { percent = 10, cap = "1d" }`.
#[derive(Debug, Clone, Copy)]
struct HeuristicValue(Option<Heuristic>);

impl<'de> Deserialize<'de> for HeuristicValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            percent: Option<u64>,
            cap: Option<Seconds>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Switch(bool),
            Table(Table),
        }
        let hint = "write heuristic = false (off), true (10% of the time since \
                    Last-Modified, at most \"1d\"), or { percent = 10, cap = \"1d\" }";
        match Raw::deserialize(d).map_err(|_| de::Error::custom(hint))? {
            Raw::Switch(false) => Ok(HeuristicValue(None)),
            Raw::Switch(true) => Ok(HeuristicValue(Some(DEFAULT_HEURISTIC))),
            Raw::Table(t) => {
                let percent = t.percent.unwrap_or(DEFAULT_HEURISTIC.percent.into());
                let percent = u8::try_from(percent)
                    .ok()
                    .filter(|p| (1..=100).contains(p))
                    .ok_or_else(|| {
                        de::Error::custom(format!(
                            "heuristic percent = {percent}: write 1 to 100 (or heuristic = false)"
                        ))
                    })?;
                let cap = t.cap.map_or(DEFAULT_HEURISTIC.cap, |c| c.0);
                Ok(HeuristicValue(Some(Heuristic { percent, cap })))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct CookiesValue(Cookies);

impl<'de> Deserialize<'de> for CookiesValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "bypass" => Ok(CookiesValue(Cookies::Bypass)),
            "strip" => Ok(CookiesValue(Cookies::Strip)),
            "vary" => Ok(CookiesValue(Cookies::Vary)),
            _ => Err(de::Error::custom(format!(
                "cookies = {text:?}: write \"bypass\" (the default), \"strip\" or \"vary\""
            ))),
        }
    }
}

#[derive(Debug, Clone)]
struct UpstreamUrl(Uri);

impl<'de> Deserialize<'de> for UpstreamUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_upstream(&text)
            .map(UpstreamUrl)
            .map_err(de::Error::custom)
    }
}

/// Checks an upstream URL: `http://host[:port]` or `https://host[:port]`
/// (with the `tls` feature), nothing after the authority.
///
/// ```
/// use larder_proxy::config::parse_upstream;
///
/// assert!(parse_upstream("http://127.0.0.1:8000").is_ok());
/// assert!(parse_upstream("https://api.internal").is_ok());
/// assert!(parse_upstream("ftp://example.com").is_err());
/// assert!(parse_upstream("127.0.0.1:8000").is_err());
/// ```
pub fn parse_upstream(text: &str) -> Result<Uri, String> {
    let hint = "write it as http://host:port, for example \"http://127.0.0.1:8000\"";
    let uri: Uri = text
        .parse()
        .map_err(|_| format!("upstream {text:?} is not a URL; {hint}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") if cfg!(feature = "tls") => {}
        Some("https") => {
            return Err(format!(
                "upstream {text:?}: this larder was built without the `tls` feature; \
                 build it with default features, or {hint}"
            ))
        }
        _ => return Err(format!("upstream {text:?} has no http:// scheme; {hint}")),
    }
    if uri.authority().is_none() {
        return Err(format!("upstream {text:?} has no host; {hint}"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "upstream {text:?} has a path; paths are forwarded as the client sent them, so {hint}"
        ));
    }
    Ok(uri)
}

// ---- From the file to the typed config ----

/// Values given on the command line; they win over the file.
///
/// ```
/// use larder_proxy::config::{Config, Overrides};
///
/// let flags = Overrides { upstream: Some("http://127.0.0.1:9000".into()), ..Overrides::default() };
/// let c = Config::build("[server]\nupstream = \"http://127.0.0.1:8000\"\n", "inline", &flags).unwrap();
/// assert_eq!(c.upstream.port_u16(), Some(9000));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--upstream`.
    pub upstream: Option<String>,
    /// `--redis`.
    pub redis: Option<String>,
    /// `--admin-listen`.
    pub admin_listen: Option<SocketAddr>,
}

impl Config {
    /// Parses a configuration file's text; `origin` names it in errors.
    ///
    /// ```
    /// let err = larder_proxy::Config::parse(
    ///     "[server]\nupstream = \"http://127.0.0.1:8000\"\n\n[[route]]\nprefix = \"/a\"\nttl = \"soon\"\n",
    ///     "larder.toml",
    /// )
    /// .unwrap_err();
    /// let text = err.to_string();
    /// assert!(text.contains("larder.toml") && text.contains("line 6"), "{text}");
    /// ```
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        Config::build(text, origin, &Overrides::default())
    }

    /// Parses a file's text (or none: `""`) with command-line overrides
    /// (see [`Overrides`] for an example).
    pub fn build(text: &str, origin: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        let file: File = toml::from_str(text).map_err(|e| {
            let place = e.span().map(|s| at(text, s.start)).unwrap_or_default();
            ConfigError(format!("{origin}{place}: {}", e.message()))
        })?;
        let here = |span: std::ops::Range<usize>| format!("{origin}{}", at(text, span.start));

        let server = file.server;
        let upstream = match &overrides.upstream {
            Some(flag) => {
                parse_upstream(flag).map_err(|e| ConfigError(format!("--upstream: {e}")))?
            }
            None => server.upstream.map(|u| u.0).ok_or_else(|| {
                ConfigError(format!(
                    "{origin}: no upstream; give --upstream http://127.0.0.1:8000 \
                     or write upstream = \"http://127.0.0.1:8000\" under [server]"
                ))
            })?,
        };
        let listen = overrides
            .listen
            .or(server.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("a valid default address"));

        let cache = file.cache;
        let name = cache.name.unwrap_or_else(|| "larder".to_owned());
        let targets: Vec<HeaderName> = match cache.targets {
            Some(list) => list.into_iter().map(|h| h.0).collect(),
            None => DEFAULT_TARGETS
                .iter()
                .map(|t| HeaderName::from_static(t))
                .collect(),
        };
        let defaults = Defaults {
            targets,
            tags_from_headers: cache.tags_from_headers.unwrap_or(true),
            // As nginx and Varnish: a client's no-cache does not replace a
            // fresh entry for everyone, unless the operator says so.
            honor_request_directives: cache.honor_request_directives.unwrap_or(false),
            stale_if_error: cache.stale_if_error.map(|s| s.0),
            stale_while_revalidate: cache.stale_while_revalidate.map(|s| s.0),
            heuristic: cache.heuristic.map_or(Some(DEFAULT_HEURISTIC), |h| h.0),
        };
        let mut routes = Vec::new();
        for spanned in file.routes {
            let span = spanned.span();
            let route = route(spanned.into_inner(), &defaults)
                .map_err(|why| ConfigError(format!("{}: [[route]]: {why}", here(span))))?;
            routes.push(route);
        }
        let default = Rule {
            policy: Arc::new(
                defaults
                    .policy(Policy::origin_headers(), defaults.heuristic)
                    .bypass_cookies(true),
            ),
            bypass: false,
            cookies: Cookies::Bypass,
            forward_headers: Arc::new([]),
        };

        let admin = match file.admin {
            None => overrides
                .admin_listen
                .map(|listen| (listen, None, None, None)),
            Some(spanned) => {
                let span = spanned.span();
                let a = spanned.into_inner();
                Some((
                    overrides.admin_listen.unwrap_or(a.listen),
                    a.token,
                    a.token_env,
                    Some(span),
                ))
            }
        };
        let admin = match admin {
            None => None,
            Some((listen, token, token_env, span)) => {
                let place = span.map_or_else(
                    || "--admin-listen".to_owned(),
                    |s| format!("{}: [admin]", here(s)),
                );
                let env = token_env.unwrap_or_else(|| "LARDER_ADMIN_TOKEN".to_owned());
                let token = match token {
                    Some(t) => t,
                    None => std::env::var(&env).map_err(|_| {
                        ConfigError(format!(
                            "{place}: the admin listener needs a token; set {env} \
                             (or token_env = \"NAME\" / token = \"...\" under [admin])"
                        ))
                    })?,
                };
                // Blanks are no secret: sixteen spaces are not a token.
                if token.chars().filter(|c| !c.is_whitespace()).count() < 16 {
                    return Err(ConfigError(format!(
                        "{place}: the admin token has fewer than 16 non-blank characters; use a long random one \
                         (for example: openssl rand -hex 32)"
                    )));
                }
                Some(AdminConfig { listen, token })
            }
        };

        if let Some(max) = &server.max_connections {
            if *max.get_ref() == 0 {
                return Err(ConfigError(format!(
                    "{}: max_connections = 0 would refuse every client; write 1 or more, \
                     or leave it out to derive it from the open-file limit",
                    here(max.span())
                )));
            }
        }
        if server.client_header_timeout.is_some_and(|t| t.0.is_zero()) {
            return Err(ConfigError(format!(
                "{origin}: client_header_timeout = 0 would close every connection before its \
                 request; write a duration such as \"30s\""
            )));
        }
        if let Some(h2c) = &server.h2c {
            if *h2c.get_ref() && !cfg!(feature = "http2") {
                return Err(ConfigError(format!(
                    "{}: h2c needs the `http2` feature, which this larder was built without",
                    here(h2c.span())
                )));
            }
        }
        let upstream_tls = UpstreamTls {
            ca: server.upstream_ca,
            client_certificate: server.upstream_client_certificate,
            client_key: server.upstream_client_key,
        };
        if upstream_tls.client_certificate.is_some() != upstream_tls.client_key.is_some() {
            return Err(ConfigError(format!(
                "{origin}: give both upstream_client_certificate and upstream_client_key, or neither"
            )));
        }
        let tls = match file.tls {
            None => None,
            Some(spanned) if !cfg!(feature = "tls") => {
                return Err(ConfigError(format!(
                    "{}: [tls] needs the `tls` feature, which this larder was built without",
                    here(spanned.span())
                )))
            }
            Some(spanned) => {
                let t = spanned.into_inner();
                Some(ListenerTls {
                    certificate: t.certificate,
                    key: t.key,
                    http2: t.http2.unwrap_or(true),
                })
            }
        };

        Ok(Config {
            listen,
            upstream,
            redis: overrides.redis.clone().or(server.redis),
            redis_timeout: server.redis_timeout.map_or(DEFAULT_REDIS_TIMEOUT, |s| s.0),
            memory_bytes: cache.memory_bytes.unwrap_or(256 << 20),
            max_body_bytes: cache
                .max_body_bytes
                .unwrap_or(larder::DEFAULT_MAX_BODY_BYTES),
            in_flight_bytes: cache
                .in_flight_bytes
                .unwrap_or(larder::DEFAULT_IN_FLIGHT_BYTES),
            connect_timeout: server
                .connect_timeout
                .map_or(Duration::from_secs(2), |s| s.0),
            upstream_timeout: server
                .upstream_timeout
                .map_or(Duration::from_secs(30), |s| s.0),
            between_bytes_timeout: server
                .between_bytes_timeout
                .map_or(DEFAULT_BETWEEN_BYTES_TIMEOUT, |s| s.0),
            client_header_timeout: server
                .client_header_timeout
                .map_or(DEFAULT_CLIENT_HEADER_TIMEOUT, |s| s.0),
            client_keepalive_timeout: server
                .client_keepalive_timeout
                .map_or(DEFAULT_CLIENT_KEEPALIVE_TIMEOUT, |s| s.0),
            client_body_timeout: server
                .client_body_timeout
                .map_or(DEFAULT_CLIENT_BODY_TIMEOUT, |s| s.0),
            shutdown_timeout: server
                .shutdown_timeout
                .map_or(Duration::from_secs(30), |s| s.0),
            access_log: server.access_log.unwrap_or(false),
            underscores_in_headers: server.underscores_in_headers.unwrap_or(false),
            name,
            prefix: cache.prefix.unwrap_or_else(|| "larder".to_owned()),
            legacy_status_header: cache.legacy_status_header.map(|h| h.0.as_str().to_owned()),
            allowed_hosts: cache.allowed_hosts,
            routes: Routes { routes, default },
            admin,
            max_connections: server.max_connections.map_or_else(
                || crate::listener::default_max_connections(crate::listener::open_file_limit()),
                |m| m.into_inner(),
            ),
            max_requests_per_connection: server
                .max_requests_per_connection
                .unwrap_or(DEFAULT_MAX_REQUESTS_PER_CONNECTION),
            h2c: server.h2c.is_some_and(|h| h.into_inner()),
            upstream_idle_timeout: server
                .upstream_idle_timeout
                .map_or(DEFAULT_UPSTREAM_IDLE_TIMEOUT, |s| s.0),
            upstream_tls,
            tls,
        })
    }
}

/// What every route shares unless it says otherwise.
struct Defaults {
    targets: Vec<HeaderName>,
    tags_from_headers: bool,
    honor_request_directives: bool,
    stale_if_error: Option<Duration>,
    stale_while_revalidate: Option<Duration>,
    /// For origin-headers routes; `None`: off.
    heuristic: Option<Heuristic>,
}

impl Defaults {
    fn policy(&self, base: Policy, heuristic: Option<Heuristic>) -> Policy {
        let mut policy = base
            .targeted(self.targets.clone())
            .tags_from_headers(self.tags_from_headers)
            .honor_request_directives(self.honor_request_directives);
        if let Some(h) = heuristic {
            // No effect on a ttl route, whose freshness is its own.
            policy = policy.heuristic(h);
        }
        if let Some(w) = self.stale_if_error {
            policy = policy.stale_if_error(w);
        }
        if let Some(w) = self.stale_while_revalidate {
            policy = policy.stale_while_revalidate(w);
        }
        policy
    }
}

fn route(r: RouteSection, defaults: &Defaults) -> Result<Route, String> {
    let pattern = match (r.prefix, r.path) {
        (Some(_), Some(_)) => {
            return Err("give prefix = \"/api/\" or path = \"/static/**\", not both".into())
        }
        (None, None) => {
            return Err(
                "say which paths it covers: prefix = \"/api/\" or path = \"/static/**\"".into(),
            )
        }
        (Some(p), None) => Pattern::Prefix(p),
        (None, Some(p)) => Pattern::Glob(p),
    };
    let text = match &pattern {
        Pattern::Prefix(p) | Pattern::Glob(p) => p,
    };
    if !text.starts_with('/') && !text.starts_with('*') {
        return Err(format!("the pattern {text:?} must start with '/'"));
    }
    let base = match r.ttl {
        // The proxy tells clients what the origin said, not its own TTL.
        Some(ttl) => Policy::ttl(ttl.0).client_cache_control(larder::ClientCacheControl::Untouched),
        None => Policy::origin_headers(),
    };
    if r.ttl.is_some() && r.heuristic.is_some() {
        return Err(
            "heuristic only applies to routes that follow the origin's headers; \
             this one has a ttl, which decides freshness alone"
                .into(),
        );
    }
    let heuristic = r.heuristic.map_or(defaults.heuristic, |h| h.0);
    let mut policy = defaults
        .policy(base, heuristic)
        .allow_authorization(r.allow_authorization)
        .bypass_cookies(r.cookies.0 == Cookies::Bypass);
    if let Some(ns) = r.namespace {
        if ns.is_empty() {
            return Err("namespace must not be empty".into());
        }
        policy = policy.namespace(ns);
    }
    let mut vary: Vec<HeaderName> = r.vary.into_iter().map(|h| h.0).collect();
    if r.cookies.0 == Cookies::Vary {
        vary.push(http::header::COOKIE);
    }
    // Keyed fields reach the upstream whatever their name: the key holds them.
    let mut forward_headers: Vec<HeaderName> = r.forward_headers.into_iter().map(|h| h.0).collect();
    forward_headers.extend(vary.iter().cloned());
    forward_headers.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    forward_headers.dedup();
    if !vary.is_empty() {
        policy = policy.vary(vary);
    }
    if !r.tags.is_empty() {
        policy = policy.tags(r.tags);
    }
    if let Some(statuses) = r.statuses {
        policy = policy.statuses(statuses.into_iter().map(|s| s.0));
    }
    if let Some(on) = r.honor_request_directives {
        policy = policy.honor_request_directives(on);
    }
    if let Some(w) = r.stale_if_error {
        policy = policy.stale_if_error(w.0);
    }
    if let Some(w) = r.stale_while_revalidate {
        policy = policy.stale_while_revalidate(w.0);
    }
    Ok(Route {
        pattern,
        case_insensitive: r.case_insensitive,
        rule: Rule {
            policy: Arc::new(policy),
            bypass: r.bypass,
            cookies: r.cookies.0,
            forward_headers: forward_headers.into(),
        },
    })
}

/// `", line L, column C"` for a byte offset.
fn at(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!(", line {line}, column {column}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: &str = "[server]\nupstream = \"http://127.0.0.1:8000\"\n";

    fn err(text: &str) -> String {
        Config::parse(text, "t.toml").unwrap_err().to_string()
    }

    #[test]
    fn a_minimal_file_gets_the_safe_defaults() {
        let c = Config::parse(UP, "t.toml").unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert!(c.admin.is_none());
        assert!(c.redis.is_none());
        // RFC 9111 §4.2.2, as Apache httpd and Squid: 10% of the time
        // since Last-Modified, at most a day.
        assert_eq!(
            c.routes.default.policy.mode(),
            &larder::policy::Mode::OriginHeaders {
                heuristic: Some(Heuristic {
                    percent: 10,
                    cap: Duration::from_secs(86_400)
                })
            }
        );
        assert_eq!(c.routes.default.cookies, Cookies::Bypass);
    }

    #[test]
    fn heuristic_is_set_per_route_or_for_all_9111_4_2_2() {
        use larder::policy::Mode;
        let heuristic = |c: &Config, path: &str| match c.routes.rule_for(path).policy.mode() {
            Mode::OriginHeaders { heuristic } => *heuristic,
            Mode::RouteTtl(_) => panic!("{path} is a ttl route"),
        };
        let c = Config::parse(
            &format!(
                "{UP}[[route]]\nprefix = \"/off\"\nheuristic = false\n\
                 [[route]]\nprefix = \"/on\"\nheuristic = true\n\
                 [[route]]\nprefix = \"/tuned\"\nheuristic = {{ percent = 25, cap = \"1h\" }}\n\
                 [[route]]\nprefix = \"/percent\"\nheuristic = {{ percent = 5 }}\n\
                 [[route]]\nprefix = \"/plain\"\n"
            ),
            "t.toml",
        )
        .unwrap();
        assert_eq!(heuristic(&c, "/off"), None);
        assert_eq!(heuristic(&c, "/on"), Some(DEFAULT_HEURISTIC));
        let tuned = Heuristic {
            percent: 25,
            cap: Duration::from_secs(3600),
        };
        assert_eq!(heuristic(&c, "/tuned"), Some(tuned));
        let five = Heuristic {
            percent: 5,
            ..DEFAULT_HEURISTIC
        };
        assert_eq!(heuristic(&c, "/percent"), Some(five));
        assert_eq!(heuristic(&c, "/plain"), Some(DEFAULT_HEURISTIC));
        assert_eq!(heuristic(&c, "/elsewhere"), Some(DEFAULT_HEURISTIC));
        // [cache] sets it for every route that does not say otherwise.
        let c = Config::parse(
            &format!(
                "{UP}[cache]\nheuristic = false\n\
                 [[route]]\nprefix = \"/on\"\nheuristic = {{ cap = \"10m\" }}\n\
                 [[route]]\nprefix = \"/plain\"\n"
            ),
            "t.toml",
        )
        .unwrap();
        assert_eq!(heuristic(&c, "/plain"), None);
        assert_eq!(heuristic(&c, "/elsewhere"), None);
        let ten_minutes = Heuristic {
            cap: Duration::from_secs(600),
            ..DEFAULT_HEURISTIC
        };
        assert_eq!(heuristic(&c, "/on"), Some(ten_minutes));
    }

    #[test]
    fn bad_heuristics_say_what_to_write() {
        let e = err(&format!(
            "{UP}[[route]]\nprefix = \"/a\"\nheuristic = \"10%\"\n"
        ));
        assert!(
            e.contains("line 5") && e.contains("heuristic = false"),
            "{e}"
        );
        let e = err(&format!(
            "{UP}[[route]]\nprefix = \"/a\"\nheuristic = {{ percent = 0 }}\n"
        ));
        assert!(e.contains("line 5") && e.contains("1 to 100"), "{e}");
        let e = err(&format!(
            "{UP}[[route]]\nprefix = \"/a\"\nheuristic = {{ percent = 300 }}\n"
        ));
        assert!(e.contains("1 to 100"), "{e}");
        let e = err(&format!(
            "{UP}[[route]]\nprefix = \"/a\"\nttl = \"1m\"\nheuristic = true\n"
        ));
        assert!(e.contains("line 3") && e.contains("has a ttl"), "{e}");
    }

    #[test]
    fn unknown_fields_are_named_with_their_line() {
        let e = err(&format!(
            "{UP}\n[[route]]\nprefix = \"/a\"\nttll = \"5m\"\n"
        ));
        assert!(e.contains("t.toml, line 6, column 1"), "{e}");
        assert!(e.contains("unknown field `ttll`"), "{e}");
    }

    #[test]
    fn bad_values_say_what_to_write() {
        let e = err(&format!("{UP}[[route]]\nprefix = \"/a\"\nttl = \"soon\"\n"));
        assert!(e.contains("line 5") && e.contains("\"15m\""), "{e}");
        let e = err(&format!(
            "{UP}[[route]]\nprefix = \"/a\"\ncookies = \"eat\"\n"
        ));
        assert!(e.contains("line 5") && e.contains("\"strip\""), "{e}");
        let e = err(&format!(
            "{UP}[[route]]\nprefix = \"/a\"\nvary = [\"bad header\"]\n"
        ));
        assert!(
            e.contains("line 5") && e.contains("not a header field name"),
            "{e}"
        );
        let e = err("[server]\nupstream = \"ftp://x\"\n");
        assert!(e.contains("line 2") && e.contains("http://"), "{e}");
        let e = err("[server]\nupstream = \"http://x/app\"\n");
        assert!(e.contains("has a path"), "{e}");
    }

    #[test]
    fn a_route_needs_exactly_one_pattern() {
        let e = err(&format!("{UP}\n[[route]]\nttl = \"5m\"\n"));
        assert!(e.contains("line 4") && e.contains("prefix = "), "{e}");
        let e = err(&format!("{UP}[[route]]\nprefix = \"/a\"\npath = \"/b\"\n"));
        assert!(e.contains("not both"), "{e}");
        let e = err(&format!("{UP}[[route]]\nprefix = \"a\"\n"));
        assert!(e.contains("must start with '/'"), "{e}");
    }

    #[test]
    fn no_upstream_says_how_to_give_one() {
        let e = err("");
        assert!(e.contains("--upstream"), "{e}");
    }

    #[test]
    fn syntax_errors_carry_the_line() {
        let e = err("[server\nupstream = 1\n");
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn flags_win_over_the_file() {
        let o = Overrides {
            upstream: Some("http://10.0.0.1:9000".into()),
            listen: Some("127.0.0.1:1".parse().unwrap()),
            ..Overrides::default()
        };
        let c = Config::build(UP, "t.toml", &o).unwrap();
        assert_eq!(c.upstream.authority().unwrap().as_str(), "10.0.0.1:9000");
        assert_eq!(c.listen.port(), 1);
    }

    #[test]
    fn routes_are_built_in_order_with_their_rules() {
        let c = Config::parse(
            &format!(
                "{UP}[[route]]\npath = \"/static/**\"\nttl = \"1h\"\ntags = [\"static\"]\n\
                 [[route]]\nprefix = \"/account\"\nbypass = true\n\
                 [[route]]\nprefix = \"/\"\ncookies = \"vary\"\nnamespace = \"site\"\n"
            ),
            "t.toml",
        )
        .unwrap();
        let r = &c.routes;
        assert_eq!(
            r.rule_for("/static/a/b.css").policy.mode(),
            &larder::policy::Mode::RouteTtl(Duration::from_secs(3600))
        );
        assert!(r.rule_for("/account/me").bypass);
        assert_eq!(r.rule_for("/x").cookies, Cookies::Vary);
        assert_eq!(r.rule_for("/x").policy.namespace_name(), "site");
    }

    #[test]
    fn the_readme_example_parses() {
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("```toml\n[server]")
            .expect("the README has the example")
            + 8;
        let text = &readme[start..start + readme[start..].find("```").unwrap()];
        let text = text.replace(
            "token_env = \"LARDER_ADMIN_TOKEN\"",
            "token = \"0123456789abcdef0123\"",
        );
        let c = Config::parse(&text, "README.md").unwrap();
        assert_eq!(c.routes.routes.len(), 3);
        assert!(c.admin.is_some() && c.redis.is_some() && c.access_log);
    }

    #[test]
    fn the_proxy_does_not_honour_request_directives_unless_told() {
        let c = Config::parse(
            &format!("{UP}[[route]]\nprefix = \"/a\"\n[[route]]\nprefix = \"/b\"\nhonor_request_directives = true\n"),
            "t.toml",
        )
        .unwrap();
        let honours = |path: &str| {
            let policy = &c.routes.rule_for(path).policy;
            **policy == (**policy).clone().honor_request_directives(true)
        };
        assert!(
            !honours("/a") && !honours("/x"),
            "nginx and Varnish's default"
        );
        assert!(honours("/b"));
        let c = Config::parse(
            &format!("{UP}[cache]\nhonor_request_directives = true\n"),
            "t.toml",
        )
        .unwrap();
        let policy = &c.routes.default.policy;
        assert_eq!(**policy, (**policy).clone().honor_request_directives(true));
    }

    #[test]
    fn a_route_forwards_its_vary_and_forward_headers_fields() {
        let c = Config::parse(
            &format!(
                "{UP}[[route]]\nprefix = \"/a\"\nvary = [\"x-forwarded-proto\"]\n\
                 forward_headers = [\"X-Forwarded-Prefix\", \"x-forwarded-proto\"]\ncase_insensitive = true\n"
            ),
            "t.toml",
        )
        .unwrap();
        let route = &c.routes.routes[0];
        assert!(route.case_insensitive);
        let names: Vec<&str> = route
            .rule
            .forward_headers
            .iter()
            .map(|n| n.as_str())
            .collect();
        assert_eq!(names, ["x-forwarded-prefix", "x-forwarded-proto"]);
        assert!(!c.underscores_in_headers, "nginx's default");
        let c = Config::parse(&format!("{UP}underscores_in_headers = true\n"), "t.toml").unwrap();
        assert!(c.underscores_in_headers);
    }

    #[test]
    fn connection_settings_have_production_defaults() {
        let c = Config::parse(UP, "t.toml").unwrap();
        assert_eq!(
            c.max_connections,
            crate::listener::default_max_connections(crate::listener::open_file_limit())
        );
        assert_eq!(c.max_requests_per_connection, 1000);
        assert_eq!(c.upstream_idle_timeout, Duration::from_secs(1));
        assert!(!c.h2c && c.tls.is_none());
        assert_eq!(c.between_bytes_timeout, Duration::from_secs(60));
        assert_eq!(c.client_header_timeout, Duration::from_secs(30));
        assert_eq!(c.client_keepalive_timeout, Duration::from_secs(75));
        assert_eq!(c.client_body_timeout, Duration::from_secs(60));
        assert_eq!(c.redis_timeout, Duration::from_millis(50));
        let c = Config::parse(&format!("{UP}redis_timeout = \"2s\"\n"), "t.toml").unwrap();
        assert_eq!(c.redis_timeout, Duration::from_secs(2));
        let c = Config::parse(
            &format!(
                "{UP}between_bytes_timeout = \"5s\"\nclient_header_timeout = \"2s\"\n\
                 client_keepalive_timeout = \"250ms\"\nclient_body_timeout = 0\n"
            ),
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.between_bytes_timeout, Duration::from_secs(5));
        assert_eq!(c.client_header_timeout, Duration::from_secs(2));
        assert_eq!(c.client_keepalive_timeout, Duration::from_millis(250));
        assert_eq!(c.client_body_timeout, Duration::ZERO);
        let c = Config::parse(
            &format!(
                "{UP}max_connections = 50\nmax_requests_per_connection = 0\n\
                 upstream_idle_timeout = \"300ms\"\n"
            ),
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.max_connections, 50);
        assert_eq!(c.max_requests_per_connection, 0);
        assert_eq!(c.upstream_idle_timeout, Duration::from_millis(300));
        let e = err(&format!("{UP}max_connections = 0\n"));
        assert!(e.contains("line 3") && e.contains("1 or more"), "{e}");
        let e = err(&format!("{UP}upstream_client_key = \"k.pem\"\n"));
        assert!(e.contains("both"), "{e}");
        let e = err(&format!("{UP}[tls]\ncertificate = \"c.pem\"\n"));
        assert!(e.contains("missing field `key`"), "{e}");
    }

    #[test]
    fn durations_parse_in_every_form() {
        let d = |s| parse_duration(s);
        assert_eq!(d("90"), Some(Duration::from_secs(90)));
        assert_eq!(d("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(d("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(d(""), None);
        assert_eq!(d("5 m"), None);
        assert_eq!(d("m"), None);
        assert_eq!(d("99999999999999999999d"), None);
    }

    #[test]
    fn the_admin_listener_needs_a_long_token() {
        let e = err(&format!(
            "{UP}[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"short\"\n"
        ));
        assert!(
            e.contains("line 3") && e.contains("16 non-blank characters"),
            "{e}"
        );
        for blank in [
            "                ",
            "   abc   def      ghi     ",
            "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t",
        ] {
            let e = err(&format!(
                "{UP}[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{blank}\"\n"
            ));
            assert!(e.contains("16 non-blank characters"), "{blank:?}: {e}");
        }
        let c = Config::parse(
            &format!("{UP}[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"0123456789abcdef\"\n"),
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.admin.unwrap().token, "0123456789abcdef");
        let e = err(&format!(
            "{UP}[admin]\nlisten = \"127.0.0.1:0\"\ntoken_env = \"LARDER_TEST_NO_SUCH_VAR\"\n"
        ));
        assert!(e.contains("set LARDER_TEST_NO_SUCH_VAR"), "{e}");
    }
}
