//! larder as a caching reverse proxy: the engine of the `larder` crate in
//! front of any HTTP backend, with RFC 9111 shared-cache semantics by
//! default and Redis as the store a fleet of proxies shares.
//!
//! The `larder` binary is a thin CLI over [`run`]; tests and embedders call
//! it directly:
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let config = larder_proxy::Config::parse(
//!     r#"
//!     [server]
//!     upstream = "http://127.0.0.1:8000"
//!     listen = "127.0.0.1:8080"
//!     "#,
//!     "inline",
//! )?;
//! let proxy = larder_proxy::run(config).await?;
//! println!("listening on {}", proxy.addr());
//! larder_proxy::shutdown::signal().await;
//! proxy.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod activity;
pub mod admin;
pub mod config;
pub mod listener;
mod metrics;
mod pool;
mod proxy;
pub mod routes;
pub mod shutdown;
pub mod target;
mod timeout;
#[cfg(feature = "tls")]
mod tls;
mod upgrade;
pub mod upstream;
mod woken;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use larder::{Cache, MemoryStore};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{Config, ConfigError};

/// Why the proxy could not start.
///
/// ```
/// let err = larder_proxy::StartError::new("cannot listen on 127.0.0.1:80: permission denied");
/// assert!(err.to_string().contains("cannot listen"));
/// ```
#[derive(Debug)]
pub struct StartError(String);

impl StartError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        StartError(message.into())
    }
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// A value the listeners read per request and a reload replaces whole:
/// requests already answering keep the one they took. Reading it takes
/// no lock: one reference count, as cloning an `Arc`.
#[derive(Debug)]
pub(crate) struct Current<T>(arc_swap::ArcSwap<T>);

impl<T> Current<T> {
    fn new(value: T) -> Current<T> {
        Current(arc_swap::ArcSwap::from_pointee(value))
    }

    /// The value now.
    pub(crate) fn get(&self) -> Arc<T> {
        self.0.load_full()
    }

    fn set(&self, value: T) {
        self.0.store(Arc::new(value));
    }
}

/// A running proxy: where it listens, and how to stop it.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    cache: Cache,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    #[cfg(feature = "tls")]
    tls: Option<Arc<tls::ServerTls>>,
    proxy: Arc<Current<proxy::Proxy>>,
    admin: Option<admin::SharedAdmin>,
    tunnels: Arc<upgrade::Tunnels>,
    /// The configuration in force, to tell what a reload changes.
    config: Mutex<Config>,
}

/// What [`Running::reload`] did: the settings it applied, and those that
/// changed but keep their old value until the proxy is restarted.
///
/// ```
/// let r = larder_proxy::Reloaded::default();
/// assert!(r.applied.is_empty() && r.need_restart.is_empty());
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Changed and in force from the next request on.
    pub applied: Vec<&'static str>,
    /// Changed, but only a restart applies them: the listeners (`listen`,
    /// `[tls]` files, `h2c`, the client-side limits and timeouts, the admin
    /// address) and the store (`redis`, `memory_bytes` and the rest of
    /// `[cache]`'s store settings).
    pub need_restart: Vec<&'static str>,
}

impl Running {
    /// The address the proxy listens on (the real port when configured 0).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let text = "[server]\nupstream = \"http://127.0.0.1:9\"\nlisten = \"127.0.0.1:0\"\n";
    /// let proxy = larder_proxy::run(larder_proxy::Config::parse(text, "inline").unwrap()).await.unwrap();
    /// assert_ne!(proxy.addr().port(), 0);
    /// assert!(proxy.admin_addr().is_none()); // off unless configured
    /// assert_eq!(proxy.cache().stats().hits, 0);
    /// proxy.shutdown().await;
    /// # });
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin listener's address, when configured (see [`Running::addr`]).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The proxy's cache, for its stats or to purge from the same process
    /// (see [`Running::addr`]).
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Reads the listener's certificate and key files again (the binary
    /// does on SIGHUP): connections from now on get the new certificate,
    /// established ones keep theirs. On an error the current certificate
    /// stays and the error says which file. `Ok(false)`: no TLS listener.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let text = "[server]\nupstream = \"http://127.0.0.1:9\"\nlisten = \"127.0.0.1:0\"\n";
    /// let proxy = larder_proxy::run(larder_proxy::Config::parse(text, "inline").unwrap()).await.unwrap();
    /// assert!(!proxy.reload_tls().unwrap());
    /// proxy.shutdown().await;
    /// # });
    /// ```
    pub fn reload_tls(&self) -> Result<bool, StartError> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            tls.reload().map_err(StartError)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Applies a new configuration without dropping a connection: routes
    /// (TTLs, rules, targeted fields, stale windows), the upstream and its
    /// timeouts and pool, the access log, header forwarding, the client
    /// body timeout and the admin token take effect from the next request,
    /// on open connections too (a request being answered finishes under
    /// the old one). Settings of the listeners and of the store keep their
    /// current value and are named in [`Reloaded::need_restart`]. An
    /// error (an upstream TLS file that does not load) changes nothing.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let text = "[server]\nupstream = \"http://127.0.0.1:9\"\nlisten = \"127.0.0.1:0\"\n";
    /// let proxy = larder_proxy::run(larder_proxy::Config::parse(text, "inline").unwrap()).await.unwrap();
    /// let changed = format!("{text}[[route]]\nprefix = \"/api/\"\nttl = \"1m\"\n");
    /// let done = proxy.reload(larder_proxy::Config::parse(&changed, "inline").unwrap()).unwrap();
    /// assert_eq!(done.applied, ["routes"]);
    /// let moved = "[server]\nupstream = \"http://127.0.0.1:9\"\nlisten = \"127.0.0.1:1\"\n";
    /// let done = proxy.reload(larder_proxy::Config::parse(moved, "inline").unwrap()).unwrap();
    /// assert_eq!(done.need_restart, ["listen"]);
    /// proxy.shutdown().await;
    /// # });
    /// ```
    pub fn reload(&self, new: Config) -> Result<Reloaded, StartError> {
        let mut current = self.config.lock().unwrap_or_else(|e| e.into_inner());
        let old = &*current;
        let mut done = Reloaded::default();
        let mut note = |changed: bool, list: bool, name: &'static str| {
            if changed {
                if list {
                    done.need_restart.push(name);
                } else {
                    done.applied.push(name);
                }
            }
        };
        // In force at once.
        note(
            format!("{:?}", old.routes) != format!("{:?}", new.routes),
            false,
            "routes",
        );
        note(old.upstream != new.upstream, false, "upstream");
        let upstream_settings = old.connect_timeout != new.connect_timeout
            || old.upstream_timeout != new.upstream_timeout
            || old.between_bytes_timeout != new.between_bytes_timeout
            || old.upstream_idle_timeout != new.upstream_idle_timeout
            || format!("{:?}", old.upstream_tls) != format!("{:?}", new.upstream_tls);
        note(upstream_settings, false, "upstream timeouts and TLS");
        note(old.access_log != new.access_log, false, "access_log");
        note(
            old.underscores_in_headers != new.underscores_in_headers,
            false,
            "underscores_in_headers",
        );
        note(
            old.client_body_timeout != new.client_body_timeout,
            false,
            "client_body_timeout",
        );
        let token = |c: &Config| c.admin.as_ref().map(|a| a.token.clone());
        let admin_listen = |c: &Config| c.admin.as_ref().map(|a| a.listen);
        note(
            self.admin.is_some()
                && admin_listen(old) == admin_listen(&new)
                && token(old) != token(&new),
            false,
            "admin token",
        );
        // Only a restart applies these.
        note(old.listen != new.listen, true, "listen");
        note(
            admin_listen(old) != admin_listen(&new),
            true,
            "[admin] listen",
        );
        note(
            format!("{:?}", old.tls) != format!("{:?}", new.tls),
            true,
            "[tls] (the certificate files themselves reload on SIGHUP)",
        );
        note(old.h2c != new.h2c, true, "h2c");
        note(
            old.max_connections != new.max_connections,
            true,
            "max_connections",
        );
        note(
            old.max_requests_per_connection != new.max_requests_per_connection,
            true,
            "max_requests_per_connection",
        );
        note(
            old.client_header_timeout != new.client_header_timeout,
            true,
            "client_header_timeout",
        );
        note(
            old.client_keepalive_timeout != new.client_keepalive_timeout,
            true,
            "client_keepalive_timeout",
        );
        note(
            old.shutdown_timeout != new.shutdown_timeout,
            true,
            "shutdown_timeout",
        );
        note(
            old.redis != new.redis || old.redis_timeout != new.redis_timeout,
            true,
            "redis (the store)",
        );
        let cache_settings = old.memory_bytes != new.memory_bytes
            || old.max_body_bytes != new.max_body_bytes
            || old.in_flight_bytes != new.in_flight_bytes
            || old.name != new.name
            || old.prefix != new.prefix
            || old.legacy_status_header != new.legacy_status_header
            || old.allowed_hosts != new.allowed_hosts;
        note(
            cache_settings,
            true,
            "[cache] memory_bytes, max_body_bytes, in_flight_bytes, name, prefix, \
             legacy_status_header, allowed_hosts",
        );

        // What stays keeps its old value: build the new state from the new
        // configuration with those put back.
        let mut applied = new;
        applied.listen = old.listen;
        applied.tls = old.tls.clone();
        applied.h2c = old.h2c;
        applied.max_connections = old.max_connections;
        applied.max_requests_per_connection = old.max_requests_per_connection;
        applied.client_header_timeout = old.client_header_timeout;
        applied.client_keepalive_timeout = old.client_keepalive_timeout;
        applied.shutdown_timeout = old.shutdown_timeout;
        applied.redis = old.redis.clone();
        applied.redis_timeout = old.redis_timeout;
        applied.memory_bytes = old.memory_bytes;
        applied.max_body_bytes = old.max_body_bytes;
        applied.in_flight_bytes = old.in_flight_bytes;
        applied.name = old.name.clone();
        applied.prefix = old.prefix.clone();
        applied.legacy_status_header = old.legacy_status_header.clone();
        applied.allowed_hosts = old.allowed_hosts.clone();
        if admin_listen(old) != admin_listen(&applied) {
            applied.admin = old.admin.clone();
        }
        let proxy = self.new_proxy(&applied)?;
        self.proxy.set(proxy);
        if let (Some(state), Some(admin)) = (&self.admin, &applied.admin) {
            state.set(admin::Admin {
                cache: self.cache.clone(),
                routes: applied.routes.clone(),
                token: admin::TokenDigest::new(&admin.token),
            });
        }
        *current = applied;
        Ok(done)
    }

    fn new_proxy(&self, config: &Config) -> Result<proxy::Proxy, StartError> {
        proxy_for(config, &self.cache, &self.tunnels)
    }

    /// Stops accepting connections, closes idle ones at once, lets
    /// in-flight requests finish within the configured shutdown timeout,
    /// and returns when all is closed (see [`Running::addr`]).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts the proxy (and its admin listener, when configured) and returns
/// once both listen. See the crate example and [`Running::addr`].
pub async fn run(config: Config) -> Result<Running, StartError> {
    // Before anything reports: `GET /metrics` renders what it records.
    let _ = metrics::handle();
    let mut builder = Cache::builder()
        .name(config.name.clone())
        .prefix(config.prefix.clone())
        .max_body_bytes(config.max_body_bytes)
        .in_flight_bytes(config.in_flight_bytes);
    builder = match &config.redis {
        Some(url) => {
            // Connects in the background: a Redis that is down at start is
            // a cache that misses, not a proxy that does not start.
            let store = larder::store::RedisStore::builder(url.as_str())
                .command_timeout(config.redis_timeout)
                .build()
                .map_err(|e| StartError(format!("--redis {url}: {e}")))?;
            builder.store(store)
        }
        None => builder.store(MemoryStore::new(config.memory_bytes)),
    };
    if let Some(name) = &config.legacy_status_header {
        builder = builder.legacy_status_header(name);
    }
    if let Some(hosts) = &config.allowed_hosts {
        builder = builder.allowed_hosts(hosts);
    }
    let cache = builder.build();

    let listener = bind(config.listen, "listen").await?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError(e.to_string()))?;
    let admin_listener = match &config.admin {
        Some(admin) => {
            if !admin.listen.ip().is_loopback() {
                // Purges and stats for anyone who can reach it and guess
                // or steal the token: say so where operators look.
                tracing::warn!(
                    admin = %admin.listen,
                    "the admin listener is not on a loopback address: keep it off public networks"
                );
            }
            Some(bind(admin.listen, "admin listen").await?)
        }
        None => None,
    };
    let admin_addr = admin_listener
        .as_ref()
        .map(|l| l.local_addr().map_err(|e| StartError(e.to_string())))
        .transpose()?;

    #[cfg(feature = "tls")]
    let server_tls = config
        .tls
        .as_ref()
        .map(tls::ServerTls::load)
        .transpose()
        .map_err(StartError)?;
    let (stop, stopped) = watch::channel(false);
    let tunnels = upgrade::Tunnels::new(stopped.clone());
    let proxy = Arc::new(Current::new(proxy_for(&config, &cache, &tunnels)?));
    let grace = config.shutdown_timeout;
    let mut settings = listener::Settings::new(config.max_connections, grace);
    settings.max_requests_per_connection = config.max_requests_per_connection;
    settings.h2c = config.h2c;
    settings.header_read_timeout = config.client_header_timeout;
    settings.keepalive_timeout = config.client_keepalive_timeout;
    settings.tunnels = Some(tunnels.clone());
    #[cfg(feature = "tls")]
    {
        settings.tls = server_tls.clone();
    }
    let mut tasks = Vec::new();
    let serving = listener::serve(listener, proxy.clone(), settings, stopped.clone(), "proxy");
    tasks.push(tokio::spawn(serving));
    let mut admin_state = None;
    if let (Some(listener), Some(admin)) = (admin_listener, &config.admin) {
        let state: admin::SharedAdmin = Arc::new(Current::new(admin::Admin {
            cache: cache.clone(),
            routes: config.routes.clone(),
            token: admin::TokenDigest::new(&admin.token),
        }));
        admin_state = Some(state.clone());
        let router = Arc::new(AdminRouter(admin::router(state)));
        // A few operators' connections; its own limit, so that a flood of
        // clients on the proxy's listener never locks them out.
        let settings = listener::Settings::new(64, grace);
        let serving = listener::serve(listener, router, settings, stopped, "admin");
        tasks.push(tokio::spawn(serving));
    }
    tracing::info!(
        %addr,
        upstream = %config.upstream,
        admin = ?admin_addr,
        store = if config.redis.is_some() { "redis" } else { "memory" },
        tls = config.tls.is_some(),
        max_connections = config.max_connections,
        "larder proxy listening"
    );
    Ok(Running {
        addr,
        admin_addr,
        cache,
        stop,
        tasks,
        #[cfg(feature = "tls")]
        tls: server_tls,
        proxy,
        admin: admin_state,
        tunnels,
        config: Mutex::new(config),
    })
}

/// Checks what the configuration names beyond its text, as [`run`] would
/// at start, without listening: the listener's certificate and key, the
/// upstream's CA and client certificate (`larder check` runs it).
///
/// ```
/// let text = "[server]\nupstream = \"http://127.0.0.1:8000\"\n";
/// assert!(larder_proxy::check(&larder_proxy::Config::parse(text, "inline").unwrap()).is_ok());
/// ```
pub fn check(config: &Config) -> Result<(), StartError> {
    #[cfg(feature = "tls")]
    if let Some(tls) = &config.tls {
        tls::ServerTls::load(tls).map_err(StartError)?;
    }
    upstream::Upstream::new(config).map_err(StartError)?;
    Ok(())
}

/// The proxy's request path for `config`, on `cache`.
fn proxy_for(
    config: &Config,
    cache: &Cache,
    tunnels: &Arc<upgrade::Tunnels>,
) -> Result<proxy::Proxy, StartError> {
    Ok(proxy::Proxy {
        cache: cache.clone(),
        routes: config.routes.clone(),
        upstream: upstream::Upstream::new(config).map_err(StartError)?,
        access_log: config.access_log,
        underscores_in_headers: config.underscores_in_headers,
        tls: config.tls.is_some(),
        tunnels: tunnels.clone(),
        client_body_timeout: config.client_body_timeout,
        // Another recorder (a program embedding the proxy installed its
        // own first) is read its own way: it gets everything.
        record_metrics: config.admin.is_some() || metrics::handle().is_none(),
    })
}

/// The admin router, as a listener's handler.
struct AdminRouter(axum::Router);

impl listener::Handler for Current<proxy::Proxy> {
    type Body = proxy::ProxyBody;

    async fn call(
        self: Arc<Self>,
        request: http::Request<hyper::body::Incoming>,
        peer: SocketAddr,
        interim: Option<activity::InterimSender>,
    ) -> http::Response<Self::Body> {
        // The proxy in force when the request came: a reload meanwhile
        // applies from the next request.
        let proxy = self.get();
        proxy.handle(request, peer, interim).await
    }
}

impl listener::Handler for AdminRouter {
    type Body = axum::body::Body;

    async fn call(
        self: Arc<Self>,
        request: http::Request<hyper::body::Incoming>,
        _peer: SocketAddr,
        _interim: Option<activity::InterimSender>,
    ) -> http::Response<Self::Body> {
        let mut router = self.0.clone();
        match tower_service::Service::call(&mut router, request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| StartError(format!("cannot {what} on {addr}: {e}")))
}
