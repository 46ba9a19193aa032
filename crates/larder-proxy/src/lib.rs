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

use std::net::SocketAddr;
use std::sync::Arc;

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
    let upstream = upstream::Upstream::new(&config).map_err(StartError)?;
    let (stop, stopped) = watch::channel(false);
    let tunnels = upgrade::Tunnels::new(stopped.clone());
    let proxy = Arc::new(proxy::Proxy {
        cache: cache.clone(),
        routes: config.routes.clone(),
        upstream,
        access_log: config.access_log,
        underscores_in_headers: config.underscores_in_headers,
        tls: config.tls.is_some(),
        tunnels: tunnels.clone(),
        client_body_timeout: config.client_body_timeout,
    });
    let grace = config.shutdown_timeout;
    let mut settings = listener::Settings::new(config.max_connections, grace);
    settings.max_requests_per_connection = config.max_requests_per_connection;
    settings.h2c = config.h2c;
    settings.header_read_timeout = config.client_header_timeout;
    settings.keepalive_timeout = config.client_keepalive_timeout;
    settings.tunnels = Some(tunnels);
    #[cfg(feature = "tls")]
    {
        settings.tls = server_tls.clone();
    }
    let mut tasks = Vec::new();
    let serving = listener::serve(listener, proxy, settings, stopped.clone(), "proxy");
    tasks.push(tokio::spawn(serving));
    if let (Some(listener), Some(admin)) = (admin_listener, &config.admin) {
        let admin: admin::SharedAdmin = Arc::new(admin::Admin {
            cache: cache.clone(),
            routes: config.routes.clone(),
            token: admin::TokenDigest::new(&admin.token),
        });
        // A few operators' connections; its own limit, so that a flood of
        // clients on the proxy's listener never locks them out.
        let settings = listener::Settings::new(64, grace);
        let serving = listener::serve(listener, admin, settings, stopped, "admin");
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
    })
}

impl listener::Handler for proxy::Proxy {
    type Body = proxy::ProxyBody;

    async fn call(
        self: Arc<Self>,
        request: http::Request<hyper::body::Incoming>,
        peer: SocketAddr,
        interim: Option<activity::InterimSender>,
    ) -> http::Response<Self::Body> {
        self.handle(request, peer, interim).await
    }
}

impl listener::Handler for admin::Admin {
    type Body = http_body_util::Full<bytes::Bytes>;

    async fn call(
        self: Arc<Self>,
        request: http::Request<hyper::body::Incoming>,
        _peer: SocketAddr,
        _interim: Option<activity::InterimSender>,
    ) -> http::Response<Self::Body> {
        self.handle(request).await
    }
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| StartError(format!("cannot {what} on {addr}: {e}")))
}
