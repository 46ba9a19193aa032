//! Watching a Redis store's keys: RESP3 client tracking in broadcast mode.
//!
//! Each store that is watched keeps one more connection per master (one
//! for a single node), in RESP3, with `CLIENT TRACKING ON BCAST PREFIX …`
//! for every watched prefix. The server pushes an `invalidate` message
//! for each key written, deleted, expired or evicted under a prefix, by
//! any client, and those keys go to the watchers straight from the
//! connection's reader (no queue between them, so nothing is reordered).
//!
//! Why a connection of its own rather than tracking on the one the store
//! reads with: that connection is a `ConnectionManager` (or the cluster
//! client's node connections) that reconnects by itself, and a new
//! connection starts without tracking; the store's coherence would hang
//! on noticing every such reconnect. A connection owned here is dialled,
//! pinged and replaced here, and its loss is known at once. The cost:
//! `NOLOOP` has nothing to suppress (this connection never writes), so
//! the store's own writes are reported back to it too.
//!
//! A server that refuses broadcast tracking (Dragonfly has no BCAST) or
//! RESP3 (before Redis 6) is reported once in the log and never restored:
//! the engine keeps its copies for a short, bounded time only.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, ProtocolVersion, PushInfo, PushKind,
    Value,
};
use tokio::sync::Notify;

use super::{Shared, Target};
use crate::store::{Watcher, Watchers};

/// How often each tracking connection is pinged: a connection that stops
/// answering (a half-open socket, a partition) is lost within about this
/// plus the ping's timeout.
const HEARTBEAT: Duration = Duration::from_millis(500);
/// A cluster's masters are read again every this many heartbeats: a new
/// master (resharding) must be tracked too.
const TOPOLOGY_EVERY: u32 = 10;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// After the server refused tracking: it may be upgraded or reconfigured,
/// so it is asked again, rarely.
const REFUSED_RETRY: Duration = Duration::from_secs(60);
/// The name the tracking connections give themselves (`CLIENT LIST`).
pub(super) const CLIENT_NAME: &str = "larder-watch";

/// The watch side of a [`RedisStore`](super::RedisStore): who watches
/// which prefix, and whether tracking is on now.
pub(super) struct Tracker {
    inner: Arc<Inner>,
    /// Someone watches: the task should run.
    wanted: AtomicBool,
    started: AtomicBool,
}

struct Inner {
    /// Watchers whose prefix the live tracking covers (or covered, before
    /// a loss): told `lost` and `restored` with it.
    tracked: Watchers,
    /// Watchers added since, not yet covered: they stay lost until their
    /// prefix is tracked on every node.
    pending: Mutex<Vec<Entry>>,
    /// Lost/restored transitions, and which connection generation is
    /// live. Held while telling watchers, so that a `lost` from a reader
    /// can never overtake the `restored` it makes obsolete.
    state: Mutex<State>,
    active: AtomicBool,
    /// Wakes the tracking task: a watcher added, a connection lost, the
    /// store dropped.
    wake: Notify,
    closed: AtomicBool,
    warned: AtomicBool,
    /// Invalidation pushes handled (for tests and stats).
    pushes: AtomicU64,
}

/// A watcher and the prefix it watches.
type Entry = (String, Weak<dyn Watcher>);

#[derive(Default)]
struct State {
    /// The generation whose connections count; pushes from older ones
    /// (being dropped) are not believed when they say "disconnected".
    generation: u64,
    active: bool,
}

impl Tracker {
    pub(super) fn new() -> Self {
        Tracker {
            inner: Arc::new(Inner {
                tracked: Watchers::default(),
                pending: Mutex::new(Vec::new()),
                state: Mutex::new(State::default()),
                active: AtomicBool::new(false),
                wake: Notify::new(),
                closed: AtomicBool::new(false),
                warned: AtomicBool::new(false),
                pushes: AtomicU64::new(0),
            }),
            wanted: AtomicBool::new(false),
            started: AtomicBool::new(false),
        }
    }

    /// Adds a watcher; it is restored once its prefix is tracked.
    pub(super) fn add(&self, prefix: &str, watcher: Weak<dyn Watcher>) {
        lock(&self.inner.pending).push((prefix.to_owned(), watcher));
        self.wanted.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }

    /// True while every node's tracking connection is up with tracking on.
    pub(super) fn active(&self) -> bool {
        self.inner.active.load(Ordering::Acquire)
    }

    /// Starts the tracking task once someone watches and a runtime runs.
    /// Cheap enough to call on every command.
    pub(super) fn ensure_started(&self, shared: &Arc<Shared>) {
        if self.started.load(Ordering::Relaxed) || !self.wanted.load(Ordering::Acquire) {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(shared);
        let inner = self.inner.clone();
        tokio::spawn(run(weak, inner));
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// A new generation of connections begins; the old one is dead.
    fn begin(&self) -> u64 {
        let mut state = lock(&self.state);
        state.generation += 1;
        state.generation
    }

    /// Tracking is on for `generation` on every node: the watchers in
    /// `covered` join the tracked ones, and all are restored. Answers
    /// false if the generation died meanwhile.
    fn go_live(&self, generation: u64, covered: Vec<Entry>) -> bool {
        let mut state = lock(&self.state);
        if state.generation != generation {
            drop(state);
            lock(&self.pending).extend(covered);
            return false;
        }
        for (prefix, w) in covered {
            self.tracked.add(&prefix, w);
        }
        state.active = true;
        self.active.store(true, Ordering::Release);
        self.tracked.restored();
        true
    }

    /// Newly covered watchers, while live: restored one by one.
    fn cover(&self, generation: u64, covered: Vec<Entry>) -> bool {
        let state = lock(&self.state);
        if state.generation != generation || !state.active {
            drop(state);
            lock(&self.pending).extend(covered);
            return false;
        }
        for (prefix, w) in covered {
            let now = w.upgrade();
            self.tracked.add(&prefix, w);
            if let Some(w) = now {
                w.restored();
            }
        }
        true
    }

    /// `generation` broke: whoever was told "restored" is told "lost",
    /// before anything else happens.
    fn lose(&self, generation: u64) {
        let mut state = lock(&self.state);
        if state.generation != generation {
            return;
        }
        state.generation += 1;
        if std::mem::replace(&mut state.active, false) {
            self.active.store(false, Ordering::Release);
            self.tracked.lost();
        }
        drop(state);
        self.wake.notify_one();
    }

    /// The server dropped everything it tracked (FLUSHALL, FLUSHDB): every
    /// key may have changed. Tracking itself goes on.
    fn everything_changed(&self, generation: u64) {
        let state = lock(&self.state);
        if state.generation == generation && state.active {
            self.tracked.lost();
            self.tracked.restored();
        }
    }

    /// Called from a tracking connection's reader, for every push.
    fn on_push(&self, generation: u64, info: PushInfo) {
        match info.kind {
            PushKind::Invalidate => {
                self.pushes.fetch_add(1, Ordering::Relaxed);
                match info.data.first() {
                    Some(Value::Array(keys)) | Some(Value::Set(keys)) => {
                        for key in keys {
                            if let Value::BulkString(key) = key {
                                self.changed(key);
                            } else if let Value::SimpleString(key) = key {
                                self.changed(key.as_bytes());
                            }
                        }
                    }
                    // A null list of keys: the server flushed.
                    Some(Value::Nil) | None => self.everything_changed(generation),
                    Some(other) => {
                        tracing::debug!(?other, "larder: unexpected invalidate push; all changed");
                        self.everything_changed(generation);
                    }
                }
            }
            PushKind::Disconnection => self.lose(generation),
            // Redirects are not used; anything else says tracking is in a
            // state this code does not know, so trust nothing.
            PushKind::Other(ref kind) if kind == "tracking-redir-broken" => self.lose(generation),
            _ => {}
        }
    }

    fn changed(&self, key: &[u8]) {
        self.tracked.changed(key);
        let pending = lock(&self.pending);
        for (prefix, w) in pending.iter() {
            if key.starts_with(prefix.as_bytes()) {
                if let Some(w) = w.upgrade() {
                    w.changed(key);
                }
            }
        }
    }

    fn warn_once(&self, why: &str) {
        if !self.warned.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                reason = why,
                "larder: Redis cannot report changes (client tracking); hot-tier copies stay short-lived"
            );
        }
    }
}

/// Why setting tracking up failed.
enum SetupError {
    /// The server answered no (no RESP3, no tracking, no BCAST): asking
    /// again soon would get the same answer.
    Refused(String),
    /// The network, a timeout, a node down: try again soon.
    Transient(String),
}

impl From<redis::RedisError> for SetupError {
    fn from(e: redis::RedisError) -> Self {
        // A server error reply (as opposed to IO or a timeout) is the
        // server's word on what it supports.
        if e.code().is_some() && !e.is_connection_dropped() && !e.is_timeout() {
            SetupError::Refused(e.to_string())
        } else {
            SetupError::Transient(e.to_string())
        }
    }
}

/// One generation of tracking connections, one per master.
struct Live {
    generation: u64,
    nodes: Vec<(ConnectionAddr, MultiplexedConnection)>,
    /// The prefixes tracked, as sent (none overlapping).
    prefixes: Vec<String>,
}

/// The tracking task: connects, keeps the connections alive, covers new
/// prefixes, reconnects with backoff. Ends when the store is dropped.
async fn run(store: Weak<Shared>, inner: Arc<Inner>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        if inner.closed() {
            return;
        }
        let generation = inner.begin();
        let covered: Vec<_> = std::mem::take(&mut *lock(&inner.pending));
        let wanted = minimal(
            inner
                .tracked
                .prefixes()
                .into_iter()
                .chain(covered.iter().map(|(p, _)| p.clone())),
        );
        match setup(&store, &inner, generation, wanted).await {
            Ok(Some(mut live)) => {
                if inner.go_live(generation, covered) {
                    backoff = BACKOFF_MIN;
                    tracing::info!(
                        nodes = live.nodes.len(),
                        prefixes = ?live.prefixes,
                        "larder: Redis client tracking on; changes are reported"
                    );
                    steady(&store, &inner, &mut live).await;
                }
                // Dropping `live` closes the connections; their
                // disconnection pushes belong to a dead generation.
            }
            Ok(None) => {
                lock(&inner.pending).extend(covered);
                return;
            }
            Err(SetupError::Refused(why)) => {
                lock(&inner.pending).extend(covered);
                inner.warn_once(&why);
                backoff = REFUSED_RETRY;
            }
            Err(SetupError::Transient(why)) => {
                lock(&inner.pending).extend(covered);
                tracing::debug!(error = %why, "larder: Redis client tracking not on yet; retrying");
            }
        }
        inner.lose(generation);
        if inner.closed() {
            return;
        }
        // Woken early only by the store being dropped or a new watcher.
        let _ = tokio::time::timeout(jitter(backoff), inner.wake.notified()).await;
        backoff = (backoff * 2).min(BACKOFF_MAX).max(backoff);
    }
}

/// Connects to every master and turns tracking on. `Ok(None)`: the store
/// is gone.
async fn setup(
    store: &Weak<Shared>,
    inner: &Arc<Inner>,
    generation: u64,
    prefixes: Vec<String>,
) -> Result<Option<Live>, SetupError> {
    let Some(shared) = store.upgrade() else {
        return Ok(None);
    };
    let timeout = shared.connect_timeout.max(Duration::from_millis(200));
    let seeds = seeds(&shared);
    drop(shared);
    let masters = match &seeds {
        Seeds::Single(info) => vec![(**info).clone()],
        Seeds::Cluster(seeds) => bounded(timeout, masters(seeds, timeout)).await??,
    };
    let mut nodes = Vec::with_capacity(masters.len());
    for info in masters {
        let addr = info.addr().clone();
        let conn = bounded(timeout, track(info, inner, generation, &prefixes)).await??;
        nodes.push((addr, conn));
    }
    Ok(Some(Live {
        generation,
        nodes,
        prefixes,
    }))
}

/// Pings, covers new watchers, and watches the topology until this
/// generation breaks or the store is dropped.
async fn steady(store: &Weak<Shared>, inner: &Arc<Inner>, live: &mut Live) {
    let mut beats = 0u32;
    loop {
        let _ = tokio::time::timeout(HEARTBEAT, inner.wake.notified()).await;
        if inner.closed() || store.strong_count() == 0 {
            return;
        }
        if lock(&inner.state).generation != live.generation {
            return;
        }
        let added: Vec<_> = std::mem::take(&mut *lock(&inner.pending));
        if !added.is_empty() && !add_prefixes(inner, live, added).await {
            return;
        }
        for (_, conn) in live.nodes.iter_mut() {
            let pong = bounded(HEARTBEAT * 2, async {
                redis::cmd("PING").query_async::<Value>(conn).await
            })
            .await;
            if !matches!(pong, Ok(Ok(_))) {
                tracing::info!("larder: a Redis tracking connection stopped answering");
                return;
            }
        }
        beats += 1;
        if beats % TOPOLOGY_EVERY == 0 && !same_masters(store, live).await {
            tracing::info!("larder: the Redis cluster's masters changed; tracking again");
            return;
        }
    }
}

/// Covers newly added watchers on the live connections: a prefix already
/// covered needs nothing, a disjoint one is added to every node; one that
/// would overlap a tracked prefix cannot be added to a broadcast
/// connection, so the generation ends and all are tracked anew. Answers
/// false when the generation must end.
async fn add_prefixes(inner: &Arc<Inner>, live: &mut Live, added: Vec<Entry>) -> bool {
    let mut fresh: Vec<String> = Vec::new();
    for (prefix, _) in &added {
        if covers(&live.prefixes, prefix) || covers(&fresh, prefix) {
            continue;
        }
        let overlaps = live.prefixes.iter().any(|p| p.starts_with(prefix.as_str()));
        if overlaps {
            lock(&inner.pending).extend(added);
            return false;
        }
        fresh.retain(|p| !p.starts_with(prefix.as_str()));
        fresh.push(prefix.clone());
    }
    if !fresh.is_empty() {
        let mut cmd = redis::cmd("CLIENT");
        cmd.arg("TRACKING").arg("ON").arg("BCAST");
        for p in &fresh {
            cmd.arg("PREFIX").arg(p);
        }
        for (_, conn) in live.nodes.iter_mut() {
            let ok = bounded(HEARTBEAT * 2, cmd.query_async::<()>(conn)).await;
            if !matches!(ok, Ok(Ok(()))) {
                lock(&inner.pending).extend(added);
                return false;
            }
        }
        live.prefixes.extend(fresh);
    }
    inner.cover(live.generation, added)
}

/// Opens one RESP3 connection to `info` whose pushes go to `inner`, and
/// turns broadcast tracking on for `prefixes`.
async fn track(
    info: ConnectionInfo,
    inner: &Arc<Inner>,
    generation: u64,
    prefixes: &[String],
) -> Result<MultiplexedConnection, SetupError> {
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    let client = redis::Client::open(info.set_redis_settings(settings))?;
    let sink = inner.clone();
    let config = AsyncConnectionConfig::new()
        .set_response_timeout(None)
        .set_push_sender(
            move |push: PushInfo| -> Result<(), std::convert::Infallible> {
                sink.on_push(generation, push);
                Ok(())
            },
        );
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(CLIENT_NAME)
        .query_async::<()>(&mut conn)
        .await?;
    let mut cmd = redis::cmd("CLIENT");
    cmd.arg("TRACKING").arg("ON").arg("BCAST");
    for p in prefixes.iter().filter(|p| !p.is_empty()) {
        cmd.arg("PREFIX").arg(p);
    }
    cmd.query_async::<()>(&mut conn)
        .await
        .map_err(|e| SetupError::Refused(format!("CLIENT TRACKING ON BCAST was refused: {e}")))?;
    Ok(conn)
}

enum Seeds {
    Single(Box<ConnectionInfo>),
    Cluster(Vec<ConnectionInfo>),
}

fn seeds(shared: &Shared) -> Seeds {
    match &shared.target {
        Target::Single(client) => Seeds::Single(Box::new(client.get_connection_info().clone())),
        Target::Cluster(_, seeds) => Seeds::Cluster(seeds.clone()),
    }
}

/// The cluster's masters, from the first seed that answers `CLUSTER SLOTS`.
async fn masters(
    seeds: &[ConnectionInfo],
    timeout: Duration,
) -> Result<Vec<ConnectionInfo>, SetupError> {
    let mut last = SetupError::Transient("no seed node".into());
    for seed in seeds {
        let attempt = async {
            let client = redis::Client::open(seed.clone())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            let slots: Value = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async(&mut conn)
                .await?;
            Ok::<_, SetupError>(slots)
        };
        match bounded(timeout, attempt).await {
            Ok(Ok(slots)) => {
                let addrs = master_addrs(&slots, seed.addr());
                if addrs.is_empty() {
                    last = SetupError::Transient("CLUSTER SLOTS named no master".into());
                    continue;
                }
                return Ok(addrs
                    .into_iter()
                    .map(|addr| seed.clone().set_addr(addr))
                    .collect());
            }
            Ok(Err(e)) => last = e,
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The masters' addresses in a `CLUSTER SLOTS` reply: each range is
/// `[start, end, [host, port, id, …], replicas…]`. A node that reports no
/// host (`""`, `"?"`) is on the seed's host. TLS settings are the seed's.
fn master_addrs(slots: &Value, seed: &ConnectionAddr) -> Vec<ConnectionAddr> {
    let mut out = BTreeSet::new();
    let Value::Array(ranges) = slots else {
        return Vec::new();
    };
    for range in ranges {
        let Value::Array(parts) = range else { continue };
        let Some(Value::Array(master)) = parts.get(2) else {
            continue;
        };
        let host = match master.first() {
            Some(Value::BulkString(h)) => String::from_utf8_lossy(h).into_owned(),
            Some(Value::SimpleString(h)) => h.clone(),
            _ => continue,
        };
        let Some(Value::Int(port)) = master.get(1) else {
            continue;
        };
        let Ok(port) = u16::try_from(*port) else {
            continue;
        };
        out.insert((host, port));
    }
    out.into_iter()
        .map(|(host, port)| {
            let (seed_host, addr) = match seed {
                ConnectionAddr::TcpTls {
                    host,
                    insecure,
                    tls_params,
                    ..
                } => (host.clone(), Some((*insecure, tls_params.clone()))),
                ConnectionAddr::Tcp(host, _) => (host.clone(), None),
                _ => (String::new(), None),
            };
            let host = if host.is_empty() || host == "?" {
                seed_host
            } else {
                host
            };
            match addr {
                Some((insecure, tls_params)) => ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure,
                    tls_params,
                },
                None => ConnectionAddr::Tcp(host, port),
            }
        })
        .collect()
}

/// Whether the cluster's masters are still the ones tracked (a single
/// node always is). Not knowing counts as the same: the pings decide.
async fn same_masters(store: &Weak<Shared>, live: &Live) -> bool {
    let Some(shared) = store.upgrade() else {
        return true;
    };
    let Seeds::Cluster(seeds) = seeds(&shared) else {
        return true;
    };
    let timeout = shared.connect_timeout.max(Duration::from_millis(200));
    drop(shared);
    let Ok(Ok(now)) = bounded(timeout, masters(&seeds, timeout)).await else {
        return true;
    };
    let now: BTreeSet<String> = now.iter().map(|i| i.addr().to_string()).collect();
    let tracked: BTreeSet<String> = live.nodes.iter().map(|(a, _)| a.to_string()).collect();
    now == tracked
}

/// The prefixes to send: one that starts with another is covered by it
/// (a broadcast connection refuses overlapping prefixes), and the empty
/// prefix covers all.
fn minimal(prefixes: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut all: Vec<String> = prefixes.into_iter().collect();
    all.sort();
    all.dedup();
    let mut out: Vec<String> = Vec::new();
    for p in all {
        // Sorted: a prefix of `p` sorts before it.
        if !covers(&out, &p) {
            out.push(p);
        }
    }
    out
}

fn covers(tracked: &[String], prefix: &str) -> bool {
    tracked.iter().any(|t| prefix.starts_with(t.as_str()))
}

async fn bounded<T>(
    limit: Duration,
    f: impl std::future::Future<Output = T>,
) -> Result<T, SetupError> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| SetupError::Transient(format!("no answer within {limit:?}")))
}

/// Spreads a fleet's reconnects after a Redis restart.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    d + d.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_prefixes_collapse_to_the_shortest() {
        let got = minimal([
            "app:a:".into(),
            "app:".into(),
            "other:".into(),
            "app:".into(),
        ]);
        assert_eq!(got, ["app:", "other:"]);
        assert_eq!(minimal(["".into(), "app:".into()]), [""]);
        assert!(covers(&["app:".into()], "app:x"));
        assert!(!covers(&["app:x".into()], "app:"));
    }

    #[test]
    fn cluster_slots_name_each_master_once() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let range = |a: i64, b: i64, master: Value| {
            Value::Array(vec![
                Value::Int(a),
                Value::Int(b),
                master,
                node("10.0.0.9", 1),
            ])
        };
        let slots = Value::Array(vec![
            range(0, 10, node("127.0.0.1", 7000)),
            range(11, 20, node("", 7001)),
            range(21, 30, node("127.0.0.1", 7000)),
            Value::Array(vec![Value::Int(1)]),
        ]);
        let seed = ConnectionAddr::Tcp("localhost".into(), 7000);
        let got: Vec<String> = master_addrs(&slots, &seed)
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(got, ["localhost:7001", "127.0.0.1:7000"]);
        assert!(master_addrs(&Value::Nil, &seed).is_empty());
    }
}
