//! How long a write on one instance takes to reach another instance's
//! watcher: store B writes a key, store A (watching the prefix through
//! RESP3 client tracking) is told `changed(key)`.
//!
//! ```sh
//! redis-server --port 6390 --save '' --appendonly no &
//! cargo run --release -p larder --features redis --example watch_latency -- \
//!     --url redis://127.0.0.1:6390 --samples 5000
//! ```
//!
//! Writes one key at a time (no load beside it) and prints one line:
//! `samples=N report_p50_us=X report_p99_us=Y set_p50_us=Z set_p99_us=W`,
//! where `report` runs from just before B's `SET` is sent to A's watcher
//! being called, and `set` is B's `SET` round trip, for scale. A cluster
//! URL (`redis+cluster://…`) works too.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use larder::store::{RedisStore, Store, Watcher};
use tokio::sync::mpsc;

struct Timed(Mutex<mpsc::UnboundedSender<(Vec<u8>, Instant)>>);

impl Watcher for Timed {
    fn changed(&self, key: &[u8]) {
        let now = Instant::now();
        let _ = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send((key.to_vec(), now));
    }
    fn lost(&self) {
        eprintln!("watch_latency: tracking lost");
    }
    fn restored(&self) {}
}

fn percentile(sorted: &[Duration], p: f64) -> u128 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_micros()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut url = "redis://127.0.0.1:6379".to_owned();
    let mut samples = 2000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--url" => url = args.next().ok_or("--url needs a value")?,
            "--samples" => samples = args.next().ok_or("--samples needs a value")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let connect = |url: &str| {
        RedisStore::builder(url)
            .command_timeout(Duration::from_secs(2))
            .connect()
    };
    let a = connect(&url).await?;
    let b = connect(&url).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let watcher = Arc::new(Timed(Mutex::new(tx)));
    let weak: Weak<dyn Watcher> = Arc::downgrade(&watcher) as Weak<dyn Watcher>;
    a.watch("latency:", weak);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !a.watching() {
        if Instant::now() > deadline {
            return Err("client tracking did not come on within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let value = Bytes::from(vec![b'x'; 1024]);
    let (mut report, mut set) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    for i in 0..samples {
        let key = format!("latency:{{k{}}}", i % 512);
        let start = Instant::now();
        b.put(&key, value.clone(), Duration::from_secs(60)).await?;
        set.push(start.elapsed());
        let told = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some((k, at)) = rx.recv().await {
                if k == key.as_bytes() {
                    return Some(at);
                }
            }
            None
        })
        .await;
        match told {
            Ok(Some(at)) => report.push(at.duration_since(start)),
            _ => return Err(format!("no report of {key} within 2 s").into()),
        }
    }
    report.sort();
    set.sort();
    println!(
        "samples={} report_p50_us={} report_p99_us={} set_p50_us={} set_p99_us={}",
        report.len(),
        percentile(&report, 0.5),
        percentile(&report, 0.99),
        percentile(&set, 0.5),
        percentile(&set, 0.99),
    );
    Ok(())
}
