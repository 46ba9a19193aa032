//! `larder`: a caching reverse proxy in front of any HTTP backend.
//!
//! ```text
//! larder serve --upstream http://127.0.0.1:8000 --listen 127.0.0.1:8080 [--redis redis://…] [--config larder.toml]
//! larder check --config larder.toml   # parse, validate, print the effective routes; exit 0 or 2
//! larder purge tag products           # through the admin listener
//! larder stats                        # the admin listener's counters, as a table
//! ```
//!
//! Every `serve` and `check` flag can come from the environment instead
//! (`LARDER_UPSTREAM`, `LARDER_LISTEN`, `LARDER_REDIS`, `LARDER_CONFIG`,
//! `LARDER_ADMIN_LISTEN`); `purge` and `stats` read `LARDER_ADMIN`; the
//! log format is `--log-format` or `LARDER_LOG_FORMAT`. A flag wins over
//! its variable, and both over the file. SIGHUP reloads the file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use clap::{Args, Parser, Subcommand, ValueEnum};
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
    /// How log lines look: `text`, or `json` (one object a line).
    #[arg(
        long,
        global = true,
        env = "LARDER_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line, for log collectors.
    Json,
}

/// What `serve` and `check` read: the file and the flags over it.
#[derive(Args)]
struct ServeArgs {
    /// The backend, `http://host:port` (or `upstream` under `[server]`).
    #[arg(long, env = "LARDER_UPSTREAM")]
    upstream: Option<String>,
    /// Where clients connect, `ip:port` or `host:port` (default: 127.0.0.1:8080).
    #[arg(long, env = "LARDER_LISTEN", value_parser = listen_flag)]
    listen: Option<SocketAddr>,
    /// A Redis URL for a store shared by every proxy (memory otherwise).
    #[arg(long, env = "LARDER_REDIS")]
    redis: Option<String>,
    /// A TOML file: routes, timeouts, the admin listener (read again on SIGHUP).
    #[arg(long, env = "LARDER_CONFIG")]
    config: Option<PathBuf>,
    /// Turns on the admin listener here (token from `LARDER_ADMIN_TOKEN`).
    #[arg(long, env = "LARDER_ADMIN_LISTEN", value_parser = listen_flag)]
    admin_listen: Option<SocketAddr>,
}

/// Where `purge` and `stats` find the admin listener.
#[derive(Args)]
struct AdminArgs {
    /// The admin listener: a URL, or `host:port`.
    #[arg(
        long,
        global = true,
        env = "LARDER_ADMIN",
        default_value = "http://127.0.0.1:9090",
        value_parser = admin_flag
    )]
    admin: String,
    /// The environment variable holding the bearer token.
    #[arg(long, global = true, default_value = "LARDER_ADMIN_TOKEN")]
    token_env: String,
}

#[derive(Subcommand)]
enum Command {
    /// Proxies and caches requests to an upstream.
    Serve(ServeArgs),
    /// Reads and checks the configuration as `serve` would, prints the
    /// effective settings and routes, and exits: 0 when it is valid, 2
    /// when it is not (as `nginx -t`).
    Check(ServeArgs),
    /// Purges through a running proxy's admin listener.
    Purge {
        #[command(flatten)]
        admin: AdminArgs,
        #[command(subcommand)]
        what: PurgeWhat,
    },
    /// Prints a running proxy's counters (the admin listener's `/stats`).
    Stats {
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Subcommand)]
enum PurgeWhat {
    /// Every stored variant of one absolute URL.
    Url {
        /// For example `http://example.com/items?page=2` (the Host clients send).
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

fn listen_flag(text: &str) -> Result<SocketAddr, String> {
    larder_proxy::config::parse_listen(text)
}

/// `http://host:port` from a URL or a bare `host:port` (or a port: this
/// machine).
fn admin_flag(text: &str) -> Result<String, String> {
    let text = text.trim().trim_end_matches('/');
    if let Some(rest) = text.strip_prefix("http://") {
        if rest.is_empty() {
            return Err("it names no host: write http://127.0.0.1:9090 or 127.0.0.1:9090".into());
        }
        return Ok(text.to_owned());
    }
    if text.contains("://") {
        return Err(format!(
            "{text:?}: the admin listener speaks plain HTTP: write http://host:port or host:port"
        ));
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(format!("http://127.0.0.1:{text}"));
    }
    let url = format!("http://{text}");
    match url.parse::<http::Uri>() {
        Ok(uri) if uri.host().is_some() && matches!(uri.path(), "" | "/") => Ok(url),
        _ => Err(format!(
            "{text:?} is not an address: write host:port (127.0.0.1:9090) or a URL (http://127.0.0.1:9090)"
        )),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
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
        Command::Serve(args) => {
            let source = Source::new(args);
            let config = match source.read() {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("larder: invalid configuration: {e}");
                    return ExitCode::from(2);
                }
            };
            runtime.block_on(serve(config, source))
        }
        Command::Check(args) => {
            let source = Source::new(args);
            let checked = source.read().and_then(|config| {
                let _in_runtime = runtime.enter();
                larder_proxy::check(&config)
                    .map(|()| config)
                    .map_err(|e| e.to_string())
            });
            match checked {
                Ok(config) => {
                    println!("{}: the configuration is valid", source.origin());
                    print!("{}", config.describe());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("larder: invalid configuration: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Purge { admin, what } => {
            runtime.block_on(purge(&admin.admin, &admin.token_env, what))
        }
        Command::Stats { admin } => runtime.block_on(stats(&admin.admin, &admin.token_env)),
    }
}

/// Where the configuration comes from: the file (read again on SIGHUP)
/// and the flags over it.
struct Source {
    path: Option<PathBuf>,
    overrides: Overrides,
}

impl Source {
    fn new(args: ServeArgs) -> Source {
        Source {
            path: args.config,
            overrides: Overrides {
                listen: args.listen,
                upstream: args.upstream,
                redis: args.redis,
                admin_listen: args.admin_listen,
            },
        }
    }

    fn origin(&self) -> String {
        match &self.path {
            Some(path) => path.display().to_string(),
            None => "the command line".to_owned(),
        }
    }

    fn read(&self) -> Result<Config, String> {
        let text = match &self.path {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            None => String::new(),
        };
        Config::build(&text, &self.origin(), &self.overrides).map_err(|e| e.to_string())
    }
}

async fn serve(config: Config, source: Source) -> ExitCode {
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
            () = hangups.next() => reload(&running, &source),
        }
    }
    tracing::info!("shutting down: finishing in-flight requests");
    running.shutdown().await;
    ExitCode::SUCCESS
}

/// SIGHUP: the file again, then the certificate files. A configuration
/// that does not parse changes nothing.
fn reload(running: &larder_proxy::Running, source: &Source) {
    match source.read() {
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: the configuration is invalid; kept the current one")
        }
        Ok(config) => match running.reload(config) {
            Err(e) => tracing::error!(error = %e, "SIGHUP: kept the current configuration"),
            Ok(done) => {
                if done.applied.is_empty() {
                    tracing::info!("SIGHUP: reloaded the configuration; nothing changed");
                } else {
                    tracing::info!(
                        applied = done.applied.join(", "),
                        "SIGHUP: reloaded the configuration"
                    );
                }
                if !done.need_restart.is_empty() {
                    tracing::warn!(
                        settings = done.need_restart.join("; "),
                        "SIGHUP: these changed but need a restart to apply; \
                         they keep their current values"
                    );
                }
            }
        },
    }
    match running.reload_tls() {
        Ok(true) => tracing::info!("SIGHUP: reloaded the TLS certificate"),
        Ok(false) => {}
        Err(e) => tracing::error!(error = %e, "SIGHUP: kept the current TLS certificate"),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Calls the admin listener; the answer's status and body, or why it
/// could not be reached (already said on stderr).
async fn call_admin(
    method: http::Method,
    admin: &str,
    path: &str,
    token_env: &str,
) -> Result<(http::StatusCode, String), ExitCode> {
    let Ok(token) = std::env::var(token_env) else {
        eprintln!("larder: set {token_env} to the admin token");
        return Err(ExitCode::from(2));
    };
    let url = format!("{admin}{path}");
    let request = match http::Request::builder()
        .method(method)
        .uri(&url)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("larder: {url}: {e}");
            return Err(ExitCode::from(2));
        }
    };
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = match client.request(request).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("larder: cannot reach the admin listener at {admin}: {e}");
            return Err(ExitCode::FAILURE);
        }
    };
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok((status, String::from_utf8_lossy(&body).trim_end().to_owned()))
}

/// Says why the admin listener refused, from its `{"error": "..."}`.
fn refused(what: &str, status: http::StatusCode, body: &str) -> ExitCode {
    let why = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.to_owned());
    eprintln!("larder: {what} failed: {status}: {why}");
    ExitCode::FAILURE
}

async fn purge(admin: &str, token_env: &str, what: PurgeWhat) -> ExitCode {
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
    match call_admin(http::Method::POST, admin, &path, token_env).await {
        Err(code) => code,
        Ok((status, body)) if status.is_success() => {
            println!("{body}");
            ExitCode::SUCCESS
        }
        Ok((status, body)) => refused("purge", status, &body),
    }
}

async fn stats(admin: &str, token_env: &str) -> ExitCode {
    match call_admin(http::Method::GET, admin, "/stats", token_env).await {
        Err(code) => code,
        Ok((status, body)) if status.is_success() => match stats_table(&body) {
            Some(table) => {
                print!("{table}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("larder: the admin listener's /stats is not the JSON expected: {body}");
                ExitCode::FAILURE
            }
        },
        Ok((status, body)) => refused("stats", status, &body),
    }
}

/// The counters most read first, in this order; any others after them.
const COUNTERS: [&str; 13] = [
    "hits",
    "stale_hits",
    "collapsed",
    "misses",
    "bypasses",
    "stores",
    "refreshes",
    "revalidated",
    "not_modified",
    "invalidations",
    "store_errors",
    "corrupt_entries",
    "repaired",
];

/// `/stats` as a two-column table: the counters, the hit ratio, then the
/// responses not stored by reason.
fn stats_table(body: &str) -> Option<String> {
    use std::fmt::Write;
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let map = value.as_object()?;
    let mut rows: Vec<(String, String)> = Vec::new();
    let number = |v: &serde_json::Value| match v {
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    for name in COUNTERS {
        if let Some(v) = map.get(name).and_then(number) {
            rows.push((name.to_owned(), v));
        }
    }
    for (name, v) in map {
        if name == "hit_ratio" {
            if let Some(ratio) = v.as_f64() {
                rows.push((name.clone(), format!("{:.1}%", ratio * 100.0)));
            }
        } else if !COUNTERS.contains(&name.as_str()) {
            if let Some(v) = number(v) {
                rows.push((name.clone(), v));
            }
        }
    }
    if !map.contains_key("hit_ratio") {
        // As `larder::Stats::hit_ratio`: hits, stale hits and collapsed
        // requests over those and misses (bypasses never tried the cache).
        let n = |name: &str| {
            map.get(name)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
        };
        let served = n("hits") + n("stale_hits") + n("collapsed");
        let tried = served + n("misses");
        let ratio = if tried == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}%", served as f64 * 100.0 / tried as f64)
        };
        rows.push(("hit_ratio".to_owned(), ratio));
    }
    let mut groups: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (name, v) in map {
        if let Some(inner) = v.as_object() {
            let inner: Vec<(String, String)> = inner
                .iter()
                .filter_map(|(k, v)| number(v).map(|v| (k.clone(), v)))
                .collect();
            groups.push((name.clone(), inner));
        }
    }
    let width = rows
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .chain(
            groups
                .iter()
                .flat_map(|(_, g)| g.iter().map(|(k, v)| k.len() + v.len() + 2)),
        )
        .max()
        .unwrap_or(0)
        + 2;
    let mut out = String::new();
    for (name, v) in &rows {
        let _ = writeln!(out, "{name}{v:>w$}", w = width - name.len());
    }
    for (group, inner) in &groups {
        let _ = writeln!(out, "{}:", group.replace('_', " "));
        for (name, v) in inner {
            let _ = writeln!(out, "  {name}{v:>w$}", w = width - name.len() - 2);
        }
    }
    Some(out)
}
