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
/// targeted = [...]` (`Policy::targeted`) replaces them.
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
    /// Each route's rule in words, in order, for [`Config::describe`].
    descriptions: Vec<String>,
    /// The default rule in words.
    default_description: String,
    /// The targeted fields, in words.
    targeted: String,
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

/// The default `connect_timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The default `upstream_timeout`.
const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// The default `shutdown_timeout`.
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// The default `memory_bytes`: 256 MiB.
const DEFAULT_MEMORY_BYTES: u64 = 256 << 20;

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
    listen: Option<ListenAddr>,
    upstream: Option<UpstreamUrl>,
    redis: Option<toml::Spanned<String>>,
    redis_timeout: Option<Timeout>,
    connect_timeout: Option<Timeout>,
    upstream_timeout: Option<Timeout>,
    between_bytes_timeout: Option<Seconds>,
    client_header_timeout: Option<Timeout>,
    client_keepalive_timeout: Option<Timeout>,
    client_body_timeout: Option<Seconds>,
    shutdown_timeout: Option<Timeout>,
    access_log: Option<bool>,
    underscores_in_headers: Option<bool>,
    max_connections: Option<toml::Spanned<usize>>,
    max_requests_per_connection: Option<u64>,
    h2c: Option<toml::Spanned<bool>>,
    upstream_idle_timeout: Option<Timeout>,
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
    memory_bytes: Option<toml::Spanned<Size>>,
    max_body_bytes: Option<Size>,
    in_flight_bytes: Option<Size>,
    name: Option<String>,
    prefix: Option<String>,
    legacy_status_header: Option<Header>,
    allowed_hosts: Option<Vec<String>>,
    targeted: Option<Vec<Header>>,
    tags_from_headers: Option<bool>,
    honor_request_directives: Option<bool>,
    stale_if_error: Option<Seconds>,
    stale_while_revalidate: Option<Seconds>,
    heuristic: Option<HeuristicValue>,
    // Old spellings, kept to say what they are called now.
    targets: Option<toml::Spanned<de::IgnoredAny>>,
    honor_request_cache_control: Option<toml::Spanned<de::IgnoredAny>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminSection {
    listen: ListenAddr,
    token: Option<String>,
    token_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSection {
    prefix: Option<String>,
    path: Option<String>,
    ttl: Option<toml::Spanned<Seconds>>,
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
    // Old spellings and other caches' words, kept to say what larder calls them.
    honor_request_cache_control: Option<toml::Spanned<de::IgnoredAny>>,
    expire: Option<toml::Spanned<de::IgnoredAny>>,
    timeout: Option<toml::Spanned<de::IgnoredAny>>,
}

// ---- Values that check themselves, so errors point at them ----

/// A duration: a string in humantime's grammar (`"90s"`, `"15m"`,
/// `"1h 30m"`, `"250ms"`), or an integer of seconds.
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
            format!("write a duration such as {DURATION_EXAMPLES}, or a whole number of seconds");
        match Raw::deserialize(d).map_err(|_| de::Error::custom(hint))? {
            Raw::Int(s) => Ok(Seconds(Duration::from_secs(s))),
            Raw::Text(t) => parse_duration(&t).map(Seconds).map_err(de::Error::custom),
        }
    }
}

/// A timeout or interval: a [`Seconds`] that must not be zero (checked
/// where its option's name is known), with where it was written.
type Timeout = toml::Spanned<Seconds>;

const DURATION_EXAMPLES: &str = r#""90s", "15m", "1h30m" or "250ms""#;

/// Parses a duration in humantime's grammar, the one every face of larder
/// shares (`"250ms"`, `"90s"`, `"1m1m"`, `"1h 30m"`, `"2days"`, `"0s"`); a
/// bare number is not one (in TOML, write an integer for seconds). The
/// error says what to write.
///
/// ```
/// use std::time::Duration;
/// use larder_proxy::config::parse_duration;
///
/// assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// let err = parse_duration("soon").unwrap_err();
/// assert!(err.starts_with("\"soon\" is not a duration: "), "{err}");
/// assert!(err.ends_with(r#"write one such as "90s", "15m", "1h30m" or "250ms""#), "{err}");
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    // The grammar, limits and words every face of larder shares.
    larder::parse_duration(text).map_err(|e| e.to_string())
}

/// A size in bytes: an integer, or a string with a unit (`"256MiB"`,
/// `"64KiB"`, `"1GB"`).
#[derive(Debug, Clone, Copy)]
struct Size(u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d).map_err(|_| de::Error::custom(SIZE_HINT))? {
            Raw::Int(n) => Ok(Size(n)),
            Raw::Text(t) => parse_size(&t).map(Size).map_err(de::Error::custom),
        }
    }
}

impl Size {
    fn usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

const SIZE_HINT: &str =
    r#"write a size such as "256MiB", "64KiB" or "1GB", or a whole number of bytes"#;

/// Parses a size: a whole number with an optional unit, `B`, the binary
/// `KiB` `MiB` `GiB` `TiB` (1024) or the decimal `KB` `MB` `GB` `TB`
/// (1000), in any case, with or without a space between.
///
/// ```
/// use larder_proxy::config::parse_size;
///
/// assert_eq!(parse_size("256MiB"), Ok(256 << 20));
/// assert_eq!(parse_size("64 KiB"), Ok(64 << 10));
/// assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
/// assert_eq!(parse_size("512"), Ok(512));
/// assert!(parse_size("lots").unwrap_err().contains(r#""256MiB""#));
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = trimmed.split_at(digits);
    let bad = |why: &str| format!("{text:?} is not a size: {why}; {SIZE_HINT}");
    let n: u64 = number
        .parse()
        .map_err(|_| bad("it needs a whole number first"))?;
    let scale: u64 = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(bad(
                "the unit is not B, KiB, MiB, GiB, TiB, KB, MB, GB or TB",
            ))
        }
    };
    n.checked_mul(scale).ok_or_else(|| bad("it is too large"))
}

/// An address to listen on, as written.
#[derive(Debug, Clone, Copy)]
struct ListenAddr(SocketAddr);

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_listen(&text)
            .map(ListenAddr)
            .map_err(de::Error::custom)
    }
}

/// Parses an address to listen on: `ip:port`, or `host:port` for a name
/// this machine resolves (`localhost:8080`; its IPv4 address when it has
/// one). A port alone says what to write instead.
///
/// ```
/// use larder_proxy::config::parse_listen;
///
/// assert_eq!(parse_listen("127.0.0.1:8080").unwrap().port(), 8080);
/// assert!(parse_listen("localhost:8080").unwrap().ip().is_loopback());
/// let err = parse_listen("8080").unwrap_err();
/// assert!(err.contains(r#"write "127.0.0.1:8080""#), "{err}");
/// ```
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let port = text.strip_prefix(':').unwrap_or(text);
    if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{text:?} is a port without an address: write \"127.0.0.1:{port}\" \
             (this machine only) or \"0.0.0.0:{port}\" (every interface)"
        ));
    }
    let hint = "write ip:port or host:port, for example \"127.0.0.1:8080\"";
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("{text:?} has no port: {hint}"));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!("{text:?} is not an address to listen on: {hint}"));
    }
    use std::net::ToSocketAddrs;
    let found: Vec<SocketAddr> = (host, port.parse::<u16>().unwrap_or(0))
        .to_socket_addrs()
        .map_err(|e| format!("{text:?}: cannot resolve {host:?} ({e}); {hint}"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| format!("{text:?}: {host:?} resolves to no address; {hint}"))
}

/// Checks a Redis URL before the proxy starts, and says what to write
/// when it cannot be used: `redis://[user:password@]host[:port][/db]`,
/// `rediss://` (TLS, with the `redis-tls` feature),
/// `redis+cluster://host:port,host:port` (and `rediss+cluster://`), or
/// `redis+unix:///path/to/socket`.
///
/// ```
/// use larder_proxy::config::check_redis_url;
///
/// assert!(check_redis_url("redis://10.0.0.5:6379/2").is_ok());
/// assert!(check_redis_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7000").is_ok());
/// let err = check_redis_url("10.0.0.5:6379").unwrap_err();
/// assert!(err.contains(r#"write "redis://10.0.0.5:6379""#), "{err}");
/// ```
pub fn check_redis_url(url: &str) -> Result<(), String> {
    let forms = "write redis://host:6379 (rediss:// for TLS, \
                 redis+cluster://host:7000,host:7001 for a cluster)";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(if url.contains(':') && !url.contains(char::is_whitespace) {
            format!("{url:?} is not a Redis URL: write \"redis://{url}\"")
        } else {
            format!("{url:?} is not a Redis URL: {forms}")
        });
    };
    let (tls, cluster) = match scheme {
        "redis" => (false, false),
        "rediss" => (true, false),
        "redis+cluster" => (false, true),
        "rediss+cluster" => (true, true),
        "redis+unix" | "unix" => {
            if rest.is_empty() {
                return Err(format!(
                    "{url:?} names no socket: write redis+unix:///path/to/redis.sock"
                ));
            }
            return Ok(());
        }
        other => {
            return Err(format!(
                "{url:?} is not a Redis URL ({other}:// is not a Redis scheme): {forms}"
            ))
        }
    };
    if tls && !cfg!(feature = "redis-tls") {
        return Err(format!(
            "{url:?}: {scheme}:// is Redis over TLS, which needs the `redis-tls` feature, \
             and this larder was built without it; build it with `--features redis-tls` \
             (cargo install larder-proxy --features redis-tls), or use redis:// on a private network"
        ));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let hosts: Vec<&str> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    if hosts.is_empty() {
        return Err(format!("{url:?} has no host: {forms}"));
    }
    if hosts.len() > 1 && !cluster {
        return Err(format!(
            "{url:?} names several hosts: for a cluster write \
             {scheme}+cluster://{}",
            hosts.join(",")
        ));
    }
    for host in &hosts {
        let port = match host.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((_, after)) => after.strip_prefix(':'),
                None => return Err(format!("{url:?}: {host:?} opens a [ without closing it")),
            },
            None => host.rsplit_once(':').map(|(_, p)| p),
        };
        if let Some(port) = port {
            if port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(format!(
                    "{url:?}: the port {port:?} is not a port number (1-65535); \
                     write host:6379"
                ));
            }
        }
    }
    if let Some(path) = tail.strip_prefix('/') {
        let db = path.split(['?', '#']).next().unwrap_or("");
        if !db.is_empty() && db.parse::<u32>().is_err() {
            return Err(format!(
                "{url:?}: the database after the host is {db:?}, not a number; \
                 write redis://host:6379/2 (or no /db for database 0)"
            ));
        }
    }
    Ok(())
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
                if cap.is_zero() {
                    return Err(de::Error::custom(
                        "a heuristic cap of zero stores nothing: write a cap such as \"1d\", \
                         or heuristic = false to turn the heuristic off",
                    ));
                }
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
    /// The effective configuration in words: where it listens, what it
    /// forwards to, its store, and every route's rule in the order they
    /// are tried (what `larder check` prints). A Redis password is not
    /// shown.
    ///
    /// ```
    /// let c = larder_proxy::Config::parse(
    ///     "[server]\nupstream = \"http://127.0.0.1:8000\"\n[[route]]\nprefix = \"/api/\"\nttl = \"90s\"\n",
    ///     "inline",
    /// )
    /// .unwrap();
    /// let text = c.describe();
    /// assert!(text.contains("1. prefix \"/api/\": ttl 1m 30s"), "{text}");
    /// assert!(text.contains("default: origin headers"), "{text}");
    /// ```
    pub fn describe(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let d = |t: Duration| humantime::format_duration(t).to_string();
        let _ = writeln!(out, "listen     {}", self.listen);
        let _ = writeln!(out, "upstream   {}", self.upstream);
        let _ = match &self.redis {
            Some(url) => writeln!(
                out,
                "store      redis {} (redis_timeout {})",
                redact(url),
                d(self.redis_timeout)
            ),
            None => writeln!(out, "store      memory, {}", bytes(self.memory_bytes)),
        };
        let _ = writeln!(
            out,
            "bodies     stored up to {} each, {} in flight at most",
            bytes(self.max_body_bytes as u64),
            bytes(self.in_flight_bytes as u64)
        );
        let _ = writeln!(
            out,
            "timeouts   connect {}, upstream {}, between bytes {}, client header {}, \
             keep-alive {}, client body {}, shutdown {}",
            d(self.connect_timeout),
            d(self.upstream_timeout),
            off_if_zero(self.between_bytes_timeout),
            d(self.client_header_timeout),
            d(self.client_keepalive_timeout),
            off_if_zero(self.client_body_timeout),
            d(self.shutdown_timeout)
        );
        let _ = match &self.admin {
            Some(a) => writeln!(out, "admin      {}", a.listen),
            None => writeln!(out, "admin      off"),
        };
        let _ = match &self.tls {
            Some(t) => writeln!(
                out,
                "tls        {} with {}{}",
                t.certificate.display(),
                t.key.display(),
                if t.http2 { ", HTTP/2 through ALPN" } else { "" }
            ),
            None => writeln!(
                out,
                "tls        off{}",
                if self.h2c { " (h2c on)" } else { "" }
            ),
        };
        let _ = writeln!(out, "targeted   {}", self.targeted);
        let _ = writeln!(out, "routes (first match wins):");
        for (n, route) in self.descriptions.iter().enumerate() {
            let _ = writeln!(out, "  {}. {route}", n + 1);
        }
        let _ = writeln!(
            out,
            "  default: {}; cookies bypass",
            self.default_description
        );
        out
    }

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
            .or(server.listen.map(|l| l.0))
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("a valid default address"));

        let cache = file.cache;
        renamed(
            &here,
            cache.targets,
            "targets",
            "targeted = [\"surrogate-control\"]",
        )?;
        renamed(
            &here,
            cache.honor_request_cache_control,
            "honor_request_cache_control",
            "honor_request_directives = true",
        )?;
        let name = cache.name.unwrap_or_else(|| "larder".to_owned());
        let targets: Vec<HeaderName> = match cache.targeted {
            Some(list) => list.into_iter().map(|h| h.0).collect(),
            None => DEFAULT_TARGETS
                .iter()
                .map(|t| HeaderName::from_static(t))
                .collect(),
        };
        let targeted = targets
            .iter()
            .map(HeaderName::as_str)
            .collect::<Vec<_>>()
            .join(", ");
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
        let mut descriptions = Vec::new();
        for spanned in file.routes {
            let span = spanned.span();
            let mut r = spanned.into_inner();
            renamed(
                &here,
                r.honor_request_cache_control.take(),
                "honor_request_cache_control",
                "honor_request_directives = true",
            )?;
            for (word, spanned) in [("expire", r.expire.take()), ("timeout", r.timeout.take())] {
                if let Some(at) = spanned {
                    return Err(ConfigError(format!(
                        "{}: unknown field `{word}`: did you mean `ttl`? \
                         (ttl = \"15m\": how long the route's responses are cached)",
                        here(at.span())
                    )));
                }
            }
            if let Some(ttl) = &r.ttl {
                if ttl.get_ref().0.is_zero() {
                    return Err(ConfigError(format!(
                        "{}: a ttl of zero caches nothing: give a positive duration such as \"15m\", \
                         or leave this route uncached",
                        here(ttl.span())
                    )));
                }
            }
            let (route, description) = route(r, &defaults)
                .map_err(|why| ConfigError(format!("{}: [[route]]: {why}", here(span))))?;
            routes.push(route);
            descriptions.push(description);
        }
        let default_description = defaults.describe(None, defaults.heuristic);
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
                    overrides.admin_listen.unwrap_or(a.listen.0),
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
        let timeout = |value: Option<Timeout>, name: &str, default: Duration| match value {
            None => Ok(default),
            Some(t) if t.get_ref().0.is_zero() => Err(ConfigError(format!(
                "{}: {name} = 0: a timeout of zero would fail everything it bounds; \
                 write a positive duration such as \"{}\" (the default)",
                here(t.span()),
                humantime::format_duration(default)
            ))),
            Some(t) => Ok(t.into_inner().0),
        };
        let redis_timeout = timeout(server.redis_timeout, "redis_timeout", DEFAULT_REDIS_TIMEOUT)?;
        let connect_timeout = timeout(
            server.connect_timeout,
            "connect_timeout",
            DEFAULT_CONNECT_TIMEOUT,
        )?;
        let upstream_timeout = timeout(
            server.upstream_timeout,
            "upstream_timeout",
            DEFAULT_UPSTREAM_TIMEOUT,
        )?;
        let client_header_timeout = timeout(
            server.client_header_timeout,
            "client_header_timeout",
            DEFAULT_CLIENT_HEADER_TIMEOUT,
        )?;
        let client_keepalive_timeout = timeout(
            server.client_keepalive_timeout,
            "client_keepalive_timeout",
            DEFAULT_CLIENT_KEEPALIVE_TIMEOUT,
        )?;
        let shutdown_timeout = timeout(
            server.shutdown_timeout,
            "shutdown_timeout",
            DEFAULT_SHUTDOWN_TIMEOUT,
        )?;
        let upstream_idle_timeout = timeout(
            server.upstream_idle_timeout,
            "upstream_idle_timeout",
            DEFAULT_UPSTREAM_IDLE_TIMEOUT,
        )?;
        let redis = match (&overrides.redis, server.redis) {
            (Some(flag), _) => {
                check_redis_url(flag).map_err(|e| ConfigError(format!("--redis: {e}")))?;
                Some(flag.clone())
            }
            (None, Some(url)) => {
                check_redis_url(url.get_ref())
                    .map_err(|e| ConfigError(format!("{}: redis = {e}", here(url.span()))))?;
                Some(url.into_inner())
            }
            (None, None) => None,
        };
        let memory_bytes = match cache.memory_bytes {
            None => DEFAULT_MEMORY_BYTES,
            Some(m) if m.get_ref().0 == 0 => {
                return Err(ConfigError(format!(
                    "{}: memory_bytes = 0 would store nothing; write a size such as \"256MiB\"",
                    here(m.span())
                )))
            }
            Some(m) => m.into_inner().0,
        };
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
            redis,
            redis_timeout,
            memory_bytes,
            max_body_bytes: cache
                .max_body_bytes
                .map_or(larder::DEFAULT_MAX_BODY_BYTES, Size::usize),
            in_flight_bytes: cache
                .in_flight_bytes
                .map_or(larder::DEFAULT_IN_FLIGHT_BYTES, Size::usize),
            connect_timeout,
            upstream_timeout,
            between_bytes_timeout: server
                .between_bytes_timeout
                .map_or(DEFAULT_BETWEEN_BYTES_TIMEOUT, |s| s.0),
            client_header_timeout,
            client_keepalive_timeout,
            client_body_timeout: server
                .client_body_timeout
                .map_or(DEFAULT_CLIENT_BODY_TIMEOUT, |s| s.0),
            shutdown_timeout,
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
            upstream_idle_timeout,
            upstream_tls,
            tls,
            descriptions,
            default_description,
            targeted,
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
    /// How a route with this ttl (or none) and heuristic decides freshness,
    /// and the stale windows it has from `[cache]`, for `larder check`.
    fn describe(&self, ttl: Option<Duration>, heuristic: Option<Heuristic>) -> String {
        let mut text = match (ttl, heuristic) {
            (Some(ttl), _) => format!("ttl {}", humantime::format_duration(ttl)),
            (None, Some(h)) => format!(
                "origin headers (heuristic {}% of the time since Last-Modified, at most {})",
                h.percent,
                humantime::format_duration(h.cap)
            ),
            (None, None) => "origin headers (explicit freshness only)".to_owned(),
        };
        for (name, window) in [
            ("stale_if_error", self.stale_if_error),
            ("stale_while_revalidate", self.stale_while_revalidate),
        ] {
            if let Some(w) = window.filter(|w| !w.is_zero()) {
                text.push_str(&format!("; {name} {}", humantime::format_duration(w)));
            }
        }
        if self.honor_request_directives {
            text.push_str("; honor_request_directives = true");
        }
        text
    }

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

fn route(r: RouteSection, defaults: &Defaults) -> Result<(Route, String), String> {
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
    let ttl = r.ttl.map(|t| t.into_inner().0);
    let base = match ttl {
        // The proxy tells clients what the origin said, not its own TTL.
        Some(ttl) => Policy::ttl(ttl).client_cache_control(larder::ClientCacheControl::Untouched),
        None => Policy::origin_headers(),
    };
    if ttl.is_some() && r.heuristic.is_some() {
        return Err(
            "heuristic only applies to routes that follow the origin's headers; \
             this one has a ttl, which decides freshness alone"
                .into(),
        );
    }
    let heuristic = r.heuristic.map_or(defaults.heuristic, |h| h.0);
    let mut description = match &pattern {
        Pattern::Prefix(p) => format!("prefix {p:?}"),
        Pattern::Glob(p) => format!("path {p:?}"),
    };
    if r.case_insensitive {
        description.push_str(" (any case)");
    }
    description.push_str(": ");
    if r.bypass {
        description.push_str("bypass (forwarded uncached)");
    } else {
        let mut parts = vec![defaults.describe(ttl, heuristic)];
        let list = |names: &[Header]| {
            names
                .iter()
                .map(|h| h.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(ns) = &r.namespace {
            parts.push(format!("namespace {ns:?}"));
        }
        if !r.vary.is_empty() {
            parts.push(format!("vary {}", list(&r.vary)));
        }
        parts.push(
            match r.cookies.0 {
                Cookies::Bypass => "cookies bypass",
                Cookies::Strip => "cookies strip",
                Cookies::Vary => "cookies vary",
            }
            .to_owned(),
        );
        if let Some(on) = r.honor_request_directives {
            if on != defaults.honor_request_directives {
                parts.push(format!("honor_request_directives = {on}"));
            }
        }
        for (name, window) in [
            ("stale_if_error", r.stale_if_error),
            ("stale_while_revalidate", r.stale_while_revalidate),
        ] {
            if let Some(w) = window {
                parts.push(if w.0.is_zero() {
                    format!("{name} off")
                } else {
                    format!("{name} {}", humantime::format_duration(w.0))
                });
            }
        }
        if let Some(statuses) = &r.statuses {
            let codes: Vec<String> = statuses.iter().map(|s| s.0.as_u16().to_string()).collect();
            parts.push(format!("statuses {}", codes.join(", ")));
        }
        if !r.tags.is_empty() {
            parts.push(format!("tags {}", r.tags.join(", ")));
        }
        if !r.forward_headers.is_empty() {
            parts.push(format!("forward_headers {}", list(&r.forward_headers)));
        }
        if r.allow_authorization {
            parts.push("allow_authorization".to_owned());
        }
        description.push_str(&parts.join("; "));
    }
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
    let route = Route {
        pattern,
        case_insensitive: r.case_insensitive,
        rule: Rule {
            policy: Arc::new(policy),
            bypass: r.bypass,
            cookies: r.cookies.0,
            forward_headers: forward_headers.into(),
        },
    };
    Ok((route, description))
}

/// An old or foreign spelling, written where larder has its own word: an
/// error that names the key to write.
fn renamed(
    here: &dyn Fn(std::ops::Range<usize>) -> String,
    found: Option<toml::Spanned<de::IgnoredAny>>,
    old: &str,
    new: &str,
) -> Result<(), ConfigError> {
    match found {
        None => Ok(()),
        Some(at) => {
            let key = new.split(' ').next().unwrap_or(new);
            Err(ConfigError(format!(
                "{}: `{old}` is now called `{key}`: write {new}",
                here(at.span())
            )))
        }
    }
}

/// A Redis URL without its password.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) if at > scheme.len() => {
            let hosts = &url[at + 1..];
            let user = rest.split_once(':').map_or("", |(u, _)| u);
            let user = if user.contains('@') { "" } else { user };
            format!("{scheme}://{user}:***@{hosts}")
        }
        _ => url.to_owned(),
    }
}

/// A byte count in the largest binary unit that divides it.
fn bytes(n: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} bytes")
}

fn off_if_zero(t: Duration) -> String {
    if t.is_zero() {
        "none".to_owned()
    } else {
        humantime::format_duration(t).to_string()
    }
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
    fn durations_parse_in_humantimes_grammar_and_integers_are_seconds() {
        let d = |s| parse_duration(s).ok();
        assert_eq!(d("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(d("1m1m"), Some(Duration::from_secs(120)));
        assert_eq!(d("1h 30m"), Some(Duration::from_secs(5400)));
        assert_eq!(d("0s"), Some(Duration::ZERO));
        assert_eq!(d("90"), None, "a bare number in a string has no unit");
        assert_eq!(d(""), None);
        assert_eq!(d("99999999999999999999d"), None);
        let e = parse_duration("ten minutes").unwrap_err();
        assert!(
            e.starts_with("\"ten minutes\" is not a duration: ")
                && e.ends_with(r#"; write one such as "90s", "15m", "1h30m" or "250ms""#),
            "{e}"
        );
        let c = Config::parse(&format!("{UP}connect_timeout = 3\n"), "t.toml").unwrap();
        assert_eq!(c.connect_timeout, Duration::from_secs(3));
        let e = err(&format!("{UP}connect_timeout = 1.5\n"));
        assert!(
            e.contains("line 3") && e.contains("whole number of seconds"),
            "{e}"
        );
    }

    #[test]
    fn zero_ttls_and_timeouts_are_errors_and_zero_stale_windows_are_off() {
        let e = err(&format!("{UP}[[route]]\nprefix = \"/a\"\nttl = \"0s\"\n"));
        assert!(
            e.contains("line 5") && e.contains("a ttl of zero caches nothing"),
            "{e}"
        );
        assert!(err(&format!("{UP}[[route]]\nprefix = \"/a\"\nttl = 0\n")).contains("zero"));
        for name in [
            "redis_timeout",
            "connect_timeout",
            "upstream_timeout",
            "client_header_timeout",
            "client_keepalive_timeout",
            "shutdown_timeout",
            "upstream_idle_timeout",
        ] {
            let e = err(&format!("{UP}{name} = \"0ms\"\n"));
            assert!(
                e.contains("line 3") && e.contains(&format!("{name} = 0")),
                "{name}: {e}"
            );
        }
        // Documented as "0: no limit".
        let c = Config::parse(
            &format!("{UP}between_bytes_timeout = 0\nclient_body_timeout = \"0s\"\n"),
            "t.toml",
        )
        .unwrap();
        assert!(c.between_bytes_timeout.is_zero() && c.client_body_timeout.is_zero());
        // A zero window is the same as none.
        let c = Config::parse(
            &format!(
                "{UP}[cache]\nstale_if_error = \"5m\"\n[[route]]\nprefix = \"/a\"\nstale_if_error = \"0s\"\n"
            ),
            "t.toml",
        )
        .unwrap();
        let off = (*c.routes.rule_for("/a").policy).clone();
        assert_eq!(off, off.clone().stale_if_error(Duration::ZERO));
        let e = err(&format!(
            "{UP}[[route]]\nprefix = \"/a\"\nheuristic = {{ cap = \"0s\" }}\n"
        ));
        assert!(e.contains("heuristic = false"), "{e}");
    }

    #[test]
    fn sizes_take_units_or_bytes() {
        let c = Config::parse(
            &format!(
                "{UP}[cache]\nmemory_bytes = \"256MiB\"\nmax_body_bytes = \"64KiB\"\nin_flight_bytes = \"1GB\"\n"
            ),
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.memory_bytes, 256 << 20);
        assert_eq!(c.max_body_bytes, 64 << 10);
        assert_eq!(c.in_flight_bytes, 1_000_000_000);
        let c = Config::parse(&format!("{UP}[cache]\nmax_body_bytes = 1024\n"), "t.toml").unwrap();
        assert_eq!(c.max_body_bytes, 1024);
        for bad in ["\"256M\"", "\"lots\"", "-1", "1.5"] {
            let e = err(&format!("{UP}[cache]\nmemory_bytes = {bad}\n"));
            assert!(
                e.contains("line 4") && e.contains(r#""256MiB", "64KiB" or "1GB""#),
                "{bad}: {e}"
            );
        }
        let e = err(&format!("{UP}[cache]\nmemory_bytes = 0\n"));
        assert!(e.contains("would store nothing"), "{e}");
        assert!(parse_size("99999999TiB").unwrap_err().contains("too large"));
    }

    #[test]
    fn old_and_foreign_names_say_what_larder_calls_them() {
        let e = err(&format!(
            "{UP}[[route]]\nprefix = \"/a\"\nhonor_request_cache_control = true\n"
        ));
        assert!(
            e.contains("line 5")
                && e.contains(
                    "`honor_request_cache_control` is now called `honor_request_directives`"
                ),
            "{e}"
        );
        let e = err(&format!(
            "{UP}[cache]\nhonor_request_cache_control = true\n"
        ));
        assert!(e.contains("honor_request_directives = true"), "{e}");
        let e = err(&format!("{UP}[cache]\ntargets = [\"surrogate-control\"]\n"));
        assert!(
            e.contains("line 4") && e.contains("now called `targeted`"),
            "{e}"
        );
        for word in ["expire", "timeout"] {
            let e = err(&format!("{UP}[[route]]\nprefix = \"/a\"\n{word} = 60\n"));
            assert!(
                e.contains("line 5")
                    && e.contains(&format!("unknown field `{word}`: did you mean `ttl`?")),
                "{e}"
            );
        }
        let c = Config::parse(
            &format!("{UP}[cache]\ntargeted = [\"surrogate-control\"]\n"),
            "t.toml",
        )
        .unwrap();
        assert!(c.describe().contains("targeted   surrogate-control\n"));
    }

    #[test]
    fn listen_addresses_say_what_to_write() {
        let e = err("[server]\nupstream = \"http://127.0.0.1:8000\"\nlisten = \"8080\"\n");
        assert!(
            e.contains("line 3") && e.contains(r#"write "127.0.0.1:8080""#),
            "{e}"
        );
        let e = err("[server]\nupstream = \"http://127.0.0.1:8000\"\nlisten = \":8080\"\n");
        assert!(e.contains(r#""0.0.0.0:8080""#), "{e}");
        let e = err("[server]\nupstream = \"http://127.0.0.1:8000\"\nlisten = \"here\"\n");
        assert!(e.contains("has no port"), "{e}");
        let c = Config::parse(
            "[server]\nupstream = \"http://127.0.0.1:8000\"\nlisten = \"localhost:0\"\n",
            "t.toml",
        )
        .unwrap();
        assert!(c.listen.ip().is_loopback());
        let e = err(&format!(
            "{UP}[admin]\nlisten = \"9090\"\ntoken = \"0123456789abcdef\"\n"
        ));
        assert!(e.contains("line 4") && e.contains("127.0.0.1:9090"), "{e}");
    }

    #[test]
    fn redis_urls_are_checked_in_larders_words_with_their_line() {
        let e = err(&format!("{UP}redis = \"10.0.0.5:6379\"\n"));
        assert!(
            e.contains("t.toml, line 3") && e.contains(r#"write "redis://10.0.0.5:6379""#),
            "{e}"
        );
        for (url, says) in [
            ("http://10.0.0.5", "not a Redis scheme"),
            ("redis://", "has no host"),
            ("redis://h:port", "not a port number"),
            ("redis://h:6379/cache", "not a number"),
            ("redis://a:1,b:2", "redis+cluster://a:1,b:2"),
            ("redis+unix://", "redis+unix:///path"),
        ] {
            let e = check_redis_url(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
        }
        for url in [
            "redis://127.0.0.1",
            "redis://:secret@127.0.0.1:6379/2",
            "redis://[::1]:6379",
            "redis+cluster://h1:7000, h2:7001",
            "redis+unix:///run/redis.sock",
        ] {
            assert_eq!(check_redis_url(url), Ok(()), "{url}");
        }
        let tls = check_redis_url("rediss://h:6380");
        if cfg!(feature = "redis-tls") {
            assert_eq!(tls, Ok(()));
        } else {
            let e = tls.unwrap_err();
            assert!(e.contains("`redis-tls` feature"), "{e}");
        }
        let o = Overrides {
            redis: Some("localhost".into()),
            ..Overrides::default()
        };
        let e = Config::build(UP, "t.toml", &o).unwrap_err().to_string();
        assert!(e.starts_with("--redis: "), "{e}");
        assert_eq!(
            redact("redis://user:secret@h:6379/2"),
            "redis://user:***@h:6379/2"
        );
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
