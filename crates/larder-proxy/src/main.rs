//! `larder`: a caching reverse proxy in front of any HTTP backend.
//!
//! ```text
//! larder serve --upstream http://127.0.0.1:8000 --listen 127.0.0.1:8080 [--redis redis://…] [--config larder.toml]
//! larder purge tag products          # through the admin listener
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use larder_proxy::config::Overrides;
use larder_proxy::Config;

#[derive(Parser)]
#[command(
    name = "larder",
    version,
    about = "A caching reverse proxy with RFC 9111 semantics"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Proxies and caches requests to an upstream.
    Serve {
        /// The backend, http://host:port (or `upstream` under [server]).
        #[arg(long)]
        upstream: Option<String>,
        /// Where clients connect [default: 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// A Redis URL for a store shared by every proxy (memory otherwise).
        #[arg(long)]
        redis: Option<String>,
        /// A TOML file: routes, timeouts, the admin listener.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Turns on the admin listener here (token from LARDER_ADMIN_TOKEN).
        #[arg(long)]
        admin_listen: Option<SocketAddr>,
    },
    /// Purges through a running proxy's admin listener.
    Purge {
        /// The admin listener's base URL.
        #[arg(long, default_value = "http://127.0.0.1:9090")]
        admin: String,
        /// The environment variable holding the bearer token.
        #[arg(long, default_value = "LARDER_ADMIN_TOKEN")]
        token_env: String,
        #[command(subcommand)]
        what: PurgeWhat,
    },
}

#[derive(Subcommand)]
enum PurgeWhat {
    /// Every stored variant of one absolute URL.
    Url {
        /// For example http://example.com/items?page=2 (the Host clients send).
        url: String,
        /// The namespace (default: the one its route uses).
        #[arg(long)]
        namespace: Option<String>,
    },
    /// Everything in a namespace.
    Namespace {
        /// The namespace.
        namespace: String,
    },
    /// Every entry with this tag.
    Tag {
        /// The tag (from a route, `Surrogate-Key` or `Cache-Tag`).
        tag: String,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    // Before the configuration is read: the default connection limit
    // comes from the open-file limit in force.
    larder_proxy::listener::raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("larder: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve {
            upstream,
            listen,
            redis,
            config,
            admin_listen,
        } => {
            let overrides = Overrides {
                listen,
                upstream,
                redis,
                admin_listen,
            };
            let (text, origin) = match &config {
                Some(path) => match std::fs::read_to_string(path) {
                    Ok(text) => (text, path.display().to_string()),
                    Err(e) => {
                        eprintln!("larder: cannot read {}: {e}", path.display());
                        return ExitCode::from(2);
                    }
                },
                None => (String::new(), "the command line".to_owned()),
            };
            let config = match Config::build(&text, &origin, &overrides) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("larder: invalid configuration: {e}");
                    return ExitCode::from(2);
                }
            };
            runtime.block_on(serve(config))
        }
        Command::Purge {
            admin,
            token_env,
            what,
        } => runtime.block_on(purge(&admin, &token_env, what)),
    }
}

async fn serve(config: Config) -> ExitCode {
    let running = match larder_proxy::run(config).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("larder: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut hangups = larder_proxy::shutdown::Hangups::new();
    let stop = larder_proxy::shutdown::signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            () = hangups.next() => {
                match running.reload_tls() {
                    Ok(true) => tracing::info!("SIGHUP: reloaded the TLS certificate"),
                    Ok(false) => tracing::info!("SIGHUP: no TLS listener to reload"),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: kept the current TLS certificate"),
                }
            }
        }
    }
    tracing::info!("shutting down: finishing in-flight requests");
    running.shutdown().await;
    ExitCode::SUCCESS
}

async fn purge(admin: &str, token_env: &str, what: PurgeWhat) -> ExitCode {
    let Ok(token) = std::env::var(token_env) else {
        eprintln!("larder: set {token_env} to the admin token");
        return ExitCode::from(2);
    };
    let escape = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let path = match &what {
        PurgeWhat::Url { url, namespace } => {
            let mut path = format!("/purge/url?url={}", escape(url));
            if let Some(ns) = namespace {
                path.push_str(&format!("&namespace={}", escape(ns)));
            }
            path
        }
        PurgeWhat::Namespace { namespace } => format!("/purge/namespace/{}", escape(namespace)),
        PurgeWhat::Tag { tag } => format!("/purge/tag/{}", escape(tag)),
    };
    let url = format!("{}{path}", admin.trim_end_matches('/'));
    let request = match http::Request::post(&url)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("larder: {url}: {e}");
            return ExitCode::from(2);
        }
    };
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = match client.request(request).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("larder: cannot reach the admin listener at {admin}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    println!("{}", String::from_utf8_lossy(&body).trim_end());
    if status.is_success() {
        ExitCode::SUCCESS
    } else {
        eprintln!("larder: purge failed: {status}");
        ExitCode::FAILURE
    }
}
