//! A cold-key stampede: many concurrent requests for one key that is not
//! cached yet, whose handler is slow (a database query). With coalescing
//! the handler runs once and everyone gets its answer; without, it runs
//! once per request.
//!
//! ```sh
//! cargo run --release -p larder --example stampede -- --concurrency 500 --handler-ms 50 --coalescing on
//! cargo run --release -p larder --example stampede -- --concurrency 500 --handler-ms 50 --coalescing off
//! ```
//!
//! It serves an axum app with the larder layer (memory store) on a free
//! loopback port, opens one HTTP/1.1 connection per request, then sends
//! every request at once, `--rounds` times (each round a new cold key). It
//! prints one line: `handler_calls=N p50_ms=X p99_ms=Y requests=M`,
//! latencies measured per request from the common start to the last byte.
//! `--pool N` gives the handler's "database" N connections (default: no
//! limit), so that queries beyond N queue as they would on a real pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use larder::{Cache, Policy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Args {
    concurrency: usize,
    handler: Duration,
    coalescing: bool,
    rounds: usize,
    pool: usize,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        concurrency: 500,
        handler: Duration::from_millis(50),
        coalescing: true,
        rounds: 3,
        pool: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--concurrency" => args.concurrency = number(value()?)? as usize,
            "--handler-ms" => args.handler = Duration::from_millis(number(value()?)?),
            "--rounds" => args.rounds = number(value()?)?.max(1) as usize,
            "--pool" => args.pool = number(value()?)? as usize,
            "--coalescing" => {
                args.coalescing = match value()?.as_str() {
                    "on" => true,
                    "off" => false,
                    other => return Err(format!("--coalescing takes on or off, not {other}")),
                }
            }
            other => return Err(format!(
                "unknown argument {other}; use --concurrency N --handler-ms MS --coalescing on|off --rounds R --pool N"
            )),
        }
    }
    Ok(args)
}

#[derive(Clone)]
struct Db {
    calls: Arc<AtomicUsize>,
    query: Duration,
    /// The database's connection pool: queries beyond it wait their turn.
    pool: Option<Arc<tokio::sync::Semaphore>>,
}

async fn report(State(db): State<Db>) -> String {
    db.calls.fetch_add(1, Ordering::SeqCst);
    let _connection = match &db.pool {
        Some(pool) => Some(pool.acquire().await.expect("pool open")),
        None => None,
    };
    tokio::time::sleep(db.query).await;
    "x".repeat(1024)
}

/// One GET over its own connection, opened before the burst so that the
/// burst measures the cache, not the listen backlog; the time from the
/// start signal to the last byte.
async fn fetch(
    addr: std::net::SocketAddr,
    path: String,
    start: Arc<tokio::sync::Barrier>,
) -> std::io::Result<Duration> {
    let mut stream = TcpStream::connect(addr).await?;
    start.wait().await;
    let start = Instant::now();
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    if !response.starts_with(b"HTTP/1.1 200") {
        return Err(std::io::Error::other("a request did not get 200"));
    }
    Ok(start.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("stampede: {e}");
            std::process::exit(2);
        }
    };
    let cache = Cache::builder().coalescing(args.coalescing).build();
    let db = Db {
        calls: Arc::new(AtomicUsize::new(0)),
        query: args.handler,
        pool: (args.pool > 0).then(|| Arc::new(tokio::sync::Semaphore::new(args.pool))),
    };
    let app = Router::new()
        .route(
            "/report/{round}",
            get(report).layer(cache.layer(Policy::ttl(Duration::from_secs(600)))),
        )
        .with_state(db.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut latencies = Vec::with_capacity(args.concurrency * args.rounds);
    for round in 0..args.rounds {
        let start = Arc::new(tokio::sync::Barrier::new(args.concurrency));
        let tasks: Vec<_> = (0..args.concurrency)
            .map(|_| tokio::spawn(fetch(addr, format!("/report/{round}"), start.clone())))
            .collect();
        for task in tasks {
            match task.await.expect("request task") {
                Ok(took) => latencies.push(took),
                Err(e) => {
                    eprintln!("stampede: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
    latencies.sort();
    println!(
        "handler_calls={} p50_ms={:.1} p99_ms={:.1} requests={}",
        db.calls.load(Ordering::SeqCst),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.len(),
    );
}
