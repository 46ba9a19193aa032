//! The shared store: Redis, standalone or cluster, on redis-rs.
//!
//! One multiplexed, auto-reconnecting connection per store (a
//! `ConnectionManager` for a single node, the async cluster client for a
//! cluster). Every command is bounded by a timeout, and a circuit breaker
//! stops sending commands to a Redis that keeps failing, then probes it
//! again after a cool-down: a dead or slow Redis costs a request at most
//! one timeout, and usually nothing.
//!
//! A store that is watched ([`Store::watch`]) opens one more connection
//! per master, for RESP3 client tracking (see `redis_watch.rs`).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::{Lease, Store, StoreError, StoreFuture, Watch, Watcher, LEASE_MARK};
use crate::clock::millis;

const STORE: &str = "redis";

// A child module, so that it reads the store's private parts.
#[path = "redis_watch.rs"]
mod watch;
use watch::Tracker;

/// A [`Store`] on Redis, shared by every instance of an application.
///
/// ```no_run
/// # async fn run() -> Result<(), larder::store::StoreError> {
/// use std::time::Duration;
/// use larder::store::RedisStore;
/// use larder::Cache;
///
/// // One node; AUTH and TLS come through the URL (`rediss://user:pass@host`).
/// let store = RedisStore::builder("redis://127.0.0.1:6379")
///     .command_timeout(Duration::from_millis(50))
///     .build()?;
/// // A cluster: the seed nodes after `redis+cluster://`.
/// let cluster = RedisStore::builder("redis+cluster://10.0.0.1:7000,10.0.0.2:7000").build()?;
/// let cache = Cache::builder().store(store).build();
/// # let _ = (cluster, cache);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
}

struct Shared {
    target: Target,
    command_timeout: Duration,
    connect_timeout: Duration,
    max_value_bytes: usize,
    conn: RwLock<Option<Conn>>,
    connecting: AtomicBool,
    /// Breaker-clock milliseconds of the last connection attempt.
    last_attempt: AtomicU64,
    breaker: Breaker,
    /// Client tracking for [`Store::watch`]: its own connections.
    tracker: Tracker,
}

// Built once per store; the size gap between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
enum Target {
    Single(redis::Client),
    /// The client, and the seed nodes (where the watcher finds the masters).
    Cluster(redis::cluster::ClusterClient, Vec<redis::ConnectionInfo>),
}

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Builds a [`RedisStore`].
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    url: String,
    command_timeout: Duration,
    connect_timeout: Duration,
    max_value_bytes: usize,
    failures_to_open: u32,
    cool_down: Duration,
}

impl RedisStore {
    /// Starts building a store for `url`: `redis://`, `rediss://` (TLS, with
    /// the `redis-tls` feature), or `redis+cluster://host:port,host:port`
    /// (and `rediss+cluster://`) for a cluster's seed nodes. Credentials and
    /// the database number come through the URL as redis-rs reads them.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            command_timeout: Duration::from_millis(50),
            connect_timeout: Duration::from_millis(500),
            max_value_bytes: 4 << 20,
            failures_to_open: 5,
            cool_down: Duration::from_secs(2),
        }
    }

    /// True while the circuit breaker keeps commands away from Redis.
    pub fn is_open(&self) -> bool {
        self.shared.breaker.is_open()
    }

    /// Commands not sent because the breaker was open.
    pub fn skipped(&self) -> u64 {
        self.shared.breaker.skipped.load(Ordering::Relaxed)
    }

    /// True while changes are being reported to the store's watchers
    /// ([`Store::watch`]): a tracking connection is up on every master with
    /// client tracking on. False before anyone watches, while reconnecting,
    /// and for good on a server that refuses tracking (no RESP3, no
    /// broadcast mode), which the log says once.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), larder::store::StoreError> {
    /// use larder::store::RedisStore;
    ///
    /// let store = RedisStore::builder("redis://127.0.0.1:6379").connect().await?;
    /// // Nobody watches yet: no tracking connection is open.
    /// assert!(!store.watching());
    /// # Ok(()) }
    /// ```
    pub fn watching(&self) -> bool {
        self.shared.tracker.active()
    }
}

impl RedisStoreBuilder {
    /// The longest a command may take before it counts as failed (and the
    /// request is served as a miss). Default 50 ms.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The longest a connection attempt may take. Default 500 ms. Requests
    /// never wait for it: until a connection exists they are misses.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Values larger than this are not written (the engine counts them as
    /// not stored, too large). Default 4 MiB.
    pub fn max_value_bytes(mut self, max: usize) -> Self {
        self.max_value_bytes = max;
        self
    }

    /// The circuit breaker: after `failures` consecutive failed commands,
    /// send none for `cool_down`, then let one probe through. Default 5
    /// failures, 2 s.
    pub fn circuit_breaker(mut self, failures: u32, cool_down: Duration) -> Self {
        self.failures_to_open = failures.max(1);
        self.cool_down = cool_down;
        self
    }

    /// Builds the store. It connects in the background (at once when called
    /// inside a tokio runtime, else on first use): an application starts
    /// even while Redis is down, and requests are misses until it answers.
    /// Fails only on a URL that cannot be used, saying what is wrong with it.
    pub fn build(self) -> Result<RedisStore, StoreError> {
        let store = self.build_idle()?;
        if tokio::runtime::Handle::try_current().is_ok() {
            store.shared.connect_in_background();
        }
        Ok(store)
    }

    fn build_idle(self) -> Result<RedisStore, StoreError> {
        let target = target(&self.url)?;
        Ok(RedisStore {
            shared: Arc::new(Shared {
                target,
                command_timeout: self.command_timeout,
                connect_timeout: self.connect_timeout,
                max_value_bytes: self.max_value_bytes,
                conn: RwLock::new(None),
                connecting: AtomicBool::new(false),
                last_attempt: AtomicU64::new(0),
                breaker: Breaker::new(self.failures_to_open, self.cool_down),
                tracker: Tracker::new(),
            }),
        })
    }

    /// Builds the store and connects now, for applications that would
    /// rather not start without Redis (and for tests). The error says why
    /// the connection failed.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let store = self.build_idle()?;
        let shared = &store.shared;
        let conn = tokio::time::timeout(shared.connect_timeout, shared.connect())
            .await
            .map_err(|_| StoreError::timeout(STORE, shared.connect_timeout))?
            .map_err(|e| StoreError::new(STORE, format!("cannot connect: {e}")))?;
        *shared.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(conn);
        Ok(store)
    }
}

fn target(url: &str) -> Result<Target, StoreError> {
    let bad = |why: String| StoreError::new(STORE, format!("invalid Redis URL {url:?}: {why}"));
    let cluster = url
        .strip_prefix("redis+cluster://")
        .map(|rest| ("redis", rest))
        .or_else(|| {
            url.strip_prefix("rediss+cluster://")
                .map(|rest| ("rediss", rest))
        });
    match cluster {
        None => redis::Client::open(url)
            .map(Target::Single)
            .map_err(|e| bad(e.to_string())),
        Some((scheme, rest)) => {
            // `user:pass@h1:p1,h2:p2/db`: credentials apply to every node.
            let (auth, hosts) = match rest.rsplit_once('@') {
                Some((auth, hosts)) => (format!("{auth}@"), hosts),
                None => (String::new(), rest),
            };
            let nodes: Vec<String> = hosts
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(|h| format!("{scheme}://{auth}{h}"))
                .collect();
            if nodes.is_empty() {
                return Err(bad("a cluster URL needs at least one host:port".into()));
            }
            let seeds = nodes
                .iter()
                .map(|n| redis::IntoConnectionInfo::into_connection_info(n.as_str()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            ClusterClientBuilder::new(nodes)
                .build()
                .map(|client| Target::Cluster(client, seeds))
                .map_err(|e| bad(e.to_string()))
        }
    }
}

impl Shared {
    fn conn(self: &Arc<Self>) -> Option<Conn> {
        let conn = self.conn.read().unwrap_or_else(|e| e.into_inner()).clone();
        // A store watched before any runtime ran starts its tracking here.
        self.tracker.ensure_started(self);
        if conn.is_none() {
            self.connect_in_background();
        }
        conn
    }

    /// Starts one connection attempt, unless one is running or the last
    /// began less than a cool-down ago: a dead Redis is not dialled at
    /// request rate.
    fn connect_in_background(self: &Arc<Self>) {
        let now = self.breaker.now();
        let last = self.last_attempt.load(Ordering::Acquire);
        if last != 0 && now.saturating_sub(last) < millis(self.breaker.cool_down) {
            return;
        }
        if self.connecting.swap(true, Ordering::AcqRel) {
            return;
        }
        self.last_attempt.store(now, Ordering::Release);
        let shared = self.clone();
        tokio::spawn(async move {
            let result = tokio::time::timeout(shared.connect_timeout, shared.connect()).await;
            match result {
                Ok(Ok(conn)) => {
                    *shared.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(conn);
                    tracing::info!("larder: connected to Redis");
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "larder: cannot connect to Redis; serving misses")
                }
                Err(_) => tracing::warn!("larder: connecting to Redis timed out; serving misses"),
            }
            shared.connecting.store(false, Ordering::Release);
        });
    }

    async fn connect(&self) -> redis::RedisResult<Conn> {
        match &self.target {
            Target::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.connect_timeout))
                    // Commands are bounded by our own timeout (`run`); a
                    // second timer per command would only cost.
                    .set_response_timeout(None)
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                let manager = client.get_connection_manager_with_config(config).await?;
                Ok(Conn::Single(manager))
            }
            Target::Cluster(client, _) => Ok(Conn::Cluster(client.get_async_connection().await?)),
        }
    }

    /// Runs one command (or pipeline) under the timeout and the breaker.
    async fn run<T, F, Fut>(self: &Arc<Self>, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        if !self.breaker.allow() {
            return Err(StoreError::unavailable(STORE, "circuit breaker open"));
        }
        let Some(conn) = self.conn() else {
            return Err(StoreError::unavailable(STORE, "not connected"));
        };
        match tokio::time::timeout(self.command_timeout, op(conn)).await {
            Ok(Ok(value)) => {
                self.breaker.success();
                Ok(value)
            }
            Ok(Err(e)) if is_foreign_data(&e) => {
                // Redis answered: the key holds something larder did not
                // write. Not an outage, so not a strike against the breaker.
                self.breaker.success();
                Err(StoreError::corrupt(STORE, e.to_string()))
            }
            Ok(Err(e)) => {
                self.breaker.failure();
                Err(StoreError::new(STORE, e.to_string()))
            }
            Err(_) => {
                self.breaker.failure();
                Err(StoreError::timeout(STORE, self.command_timeout))
            }
        }
    }
}

/// Takes a lease unless a live one holds the key; answers the holder's
/// value if it does. Only a string that starts with larder's mark and
/// expires is a live lease: foreign bytes, a value without expiry or a
/// value of another type is replaced, and the script answers 1 to say so
/// (nil: granted). One key, so it runs on any cluster node that owns the
/// slot.
const LEASE: &str = r"
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'string' then
  local current = redis.call('GET', KEYS[1])
  if string.sub(current, 1, #ARGV[3]) == ARGV[3] and redis.call('PTTL', KEYS[1]) >= 0 then
    return current
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if kind == 'none' then return false end
return 1
";

/// Ends a lease only if the caller still holds it: deletes it, or with a
/// replacement value keeps that for the given time.
const END_LEASE: &str = r"
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then return 0 end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
";

/// Adds a member to a tag index and keeps the index at least as long as
/// the member (PTTL, not PEXPIRE NX/GT: any Redis version). Answers -1 if
/// the key holds something other than a set (nothing is changed), 0 if
/// the member was there already, else the set's new size.
const INDEX_ADD: &str = r"
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'set' and kind ~= 'none' then return -1 end
local added = redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
if added == 0 then return 0 end
return redis.call('SCARD', KEYS[1])
";

/// Deletes a tag index that is not a set; answers 1 if it did.
const REPAIR_INDEX: &str = r"
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'set' or kind == 'none' then return 0 end
redis.call('DEL', KEYS[1])
return 1
";

/// Puts a counter back unless the key holds one: answers the counter, as
/// a string (Lua numbers would round a large one).
const REPAIR_COUNTER: &str = r"
if redis.call('TYPE', KEYS[1]).ok == 'string' then
  local current = redis.call('GET', KEYS[1])
  if string.match(current, '^[1-9]%d*$') and (#current < 19 or (#current == 19 and current <= '9223372036854775807')) then
    return current
  end
  if current == '0' then return current end
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
";

/// Puts a member back into a tag index that still exists (one purged or
/// expired meanwhile is not brought back).
const ADD_BACK: &str = r"
if redis.call('TYPE', KEYS[1]).ok ~= 'set' then return 0 end
return redis.call('SADD', KEYS[1], ARGV[1])
";

/// A tag index is pruned each time it grows by this many members: a
/// sample of twice as many is checked, and the members whose keys are gone
/// leave it. That keeps the dead members of a busy tag's index to about as
/// many as its live ones, for two `EXISTS` per member added.
const PRUNE_EVERY: u64 = 128;

/// Whether Redis refused a command because of what the key holds (another
/// type, a counter that is not a number) rather than because it is unwell.
fn is_foreign_data(e: &redis::RedisError) -> bool {
    match e.code() {
        Some("WRONGTYPE") => true,
        Some("ERR") => e
            .detail()
            .is_some_and(|d| d.contains("not an integer") || d.contains("overflow")),
        _ => false,
    }
}

/// A counter as Redis keeps one: a decimal integer, 0 to `i64::MAX`, no
/// sign, no leading zero.
fn parse_counter(value: &[u8]) -> Option<u64> {
    let canonical = !value.is_empty()
        && value.iter().all(u8::is_ascii_digit)
        && (value == b"0" || value[0] != b'0');
    if !canonical {
        return None;
    }
    let n: u64 = std::str::from_utf8(value).ok()?.parse().ok()?;
    (n <= i64::MAX as u64).then_some(n)
}

fn script(cell: &'static std::sync::OnceLock<redis::Script>, src: &str) -> &'static redis::Script {
    cell.get_or_init(|| redis::Script::new(src))
}

/// A command with room for its arguments (`args` of them, `data` bytes
/// in all besides the name): one allocation each for its two buffers,
/// where `redis::cmd` grows them as arguments arrive (a store key is 60
/// bytes or more, a value kilobytes).
fn command(name: &str, args: usize, data: usize) -> redis::Cmd {
    let mut cmd = redis::Cmd::with_capacity(args + 1, name.len() + data);
    cmd.arg(name);
    cmd
}

fn px(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Store for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Bytes>> {
        Box::pin(async move {
            let value: Option<Vec<u8>> = self
                .shared
                .run(|mut c| async move {
                    command("GET", 1, key.len())
                        .arg(key)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            Ok(value.map(Bytes::from))
        })
    }

    /// One `MGET`: one round trip for a URI's index and its variant, which
    /// share a hash slot.
    fn get_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, Vec<Option<Bytes>>> {
        Box::pin(async move {
            let values: Vec<Option<Vec<u8>>> = self
                .shared
                .run(|mut c| async move {
                    {
                        let data = keys.iter().map(String::len).sum();
                        command("MGET", keys.len(), data)
                            .arg(keys)
                            .query_async(&mut c)
                            .await
                    }
                })
                .await?;
            Ok(values.into_iter().map(|v| v.map(Bytes::from)).collect())
        })
    }

    fn put<'a>(&'a self, key: &'a str, value: Bytes, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if value.len() > self.shared.max_value_bytes {
                return Err(StoreError::too_large(STORE, value.len()));
            }
            self.shared
                .run(|mut c| async move {
                    // "PX" and at most 20 digits.
                    command("SET", 4, key.len() + value.len() + 22)
                        .arg(key)
                        .arg(value.as_ref())
                        .arg("PX")
                        .arg(px(ttl))
                        .query_async::<()>(&mut c)
                        .await
                })
                .await
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.shared
                .run(|mut c| async move { redis::cmd("DEL").arg(key).query_async::<()>(&mut c).await })
                .await
        })
    }

    fn index_add<'a>(
        &'a self,
        index: &'a str,
        member: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        Box::pin(async move {
            let size: i64 = self
                .shared
                .run(|mut c| async move {
                    script(&SCRIPT, INDEX_ADD)
                        .key(index)
                        .arg(member)
                        .arg(px(ttl))
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            if size < 0 {
                return Err(StoreError::corrupt(
                    STORE,
                    format!("the tag index {index} is not a set"),
                ));
            }
            let size = size as u64;
            if size >= 2 * PRUNE_EVERY && size % PRUNE_EVERY == 0 {
                // Beside the fill, not in its way.
                let (store, index) = (self.clone(), index.to_owned());
                tokio::spawn(async move { store.prune(&index).await });
            }
            Ok(())
        })
    }

    fn index_purge<'a>(&'a self, index: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let mut purged = 0;
            loop {
                // SPOP takes members out atomically: an entry indexed while
                // the purge runs is either purged or stays indexed.
                let members: Vec<String> = self
                    .shared
                    .run(|mut c| async move {
                        redis::cmd("SPOP")
                            .arg(index)
                            .arg(500)
                            .query_async(&mut c)
                            .await
                    })
                    .await?;
                if members.is_empty() {
                    return Ok(purged);
                }
                // Members live in different slots on a cluster: one DEL each.
                for member in &members {
                    self.delete(member).await?;
                }
                purged += members.len() as u64;
            }
        })
    }

    fn incr<'a>(&'a self, key: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let n: i64 = self
                .shared
                .run(|mut c| async move { redis::cmd("INCR").arg(key).query_async(&mut c).await })
                .await?;
            u64::try_from(n).map_err(|_| not_a_counter(key))
        })
    }

    fn counter<'a>(&'a self, key: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            let value: Option<Vec<u8>> = self
                .shared
                .run(|mut c| async move {
                    command("GET", 1, key.len())
                        .arg(key)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            match value {
                None => Ok(0),
                Some(v) => parse_counter(&v).ok_or_else(|| not_a_counter(key)),
            }
        })
    }

    fn repair_counter<'a>(&'a self, key: &'a str, value: u64) -> StoreFuture<'a, u64> {
        static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        Box::pin(async move {
            let now: Vec<u8> = self
                .shared
                .run(|mut c| async move {
                    script(&SCRIPT, REPAIR_COUNTER)
                        .key(key)
                        .arg(value)
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            parse_counter(&now).ok_or_else(|| not_a_counter(key))
        })
    }

    fn repair_index<'a>(&'a self, index: &'a str) -> StoreFuture<'a, bool> {
        static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        Box::pin(async move {
            let deleted: i64 = self
                .shared
                .run(|mut c| async move {
                    script(&SCRIPT, REPAIR_INDEX)
                        .key(index)
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            Ok(deleted == 1)
        })
    }

    /// Reports changes through RESP3 client tracking in broadcast mode, on
    /// a connection of its own per master (see [`RedisStore::watching`]).
    /// The watcher is restored once tracking covers `prefix` on every
    /// master, lost at once when a tracking connection drops or stops
    /// answering, and restored again once it is back. Every change is
    /// reported, this store's own writes too. A server that refuses
    /// tracking never restores it: the answer is still
    /// [`Watch::Watching`], since that is only known later.
    fn watch(&self, prefix: &str, watcher: Weak<dyn Watcher>) -> Watch {
        self.shared.tracker.add(prefix, watcher);
        self.shared.tracker.ensure_started(&self.shared);
        Watch::Watching
    }

    fn lease<'a>(&'a self, key: &'a str, holder: Bytes, ttl: Duration) -> StoreFuture<'a, Lease> {
        static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        Box::pin(async move {
            let answer: Value = self
                .shared
                .run(|mut c| async move {
                    script(&SCRIPT, LEASE)
                        .key(key)
                        .arg(holder.as_ref())
                        .arg(px(ttl))
                        .arg(LEASE_MARK)
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            match answer {
                Value::Nil => Ok(Lease::Granted),
                Value::Int(_) => Ok(Lease::Repaired),
                Value::BulkString(v) => Ok(Lease::Held(Bytes::from(v))),
                other => Err(StoreError::new(
                    STORE,
                    format!("unexpected answer to the lease script: {other:?}"),
                )),
            }
        })
    }

    fn end_lease<'a>(
        &'a self,
        key: &'a str,
        holder: Bytes,
        then: Option<(Bytes, Duration)>,
    ) -> StoreFuture<'a, bool> {
        static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        Box::pin(async move {
            let (value, ttl) = match &then {
                Some((v, ttl)) => (v.as_ref(), px(*ttl)),
                None => (&b""[..], 0),
            };
            let ended: i64 = self
                .shared
                .run(|mut c| async move {
                    script(&SCRIPT, END_LEASE)
                        .key(key)
                        .arg(holder.as_ref())
                        .arg(value)
                        .arg(ttl)
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            Ok(ended == 1)
        })
    }
}

fn not_a_counter(key: &str) -> StoreError {
    StoreError::corrupt(STORE, format!("{key} does not hold a counter"))
}

impl RedisStore {
    /// Removes from a tag index the members whose keys are gone (expired,
    /// evicted, deleted), from a random sample of twice [`PRUNE_EVERY`].
    /// Best effort: a failed command ends it, and the next prune tries
    /// again.
    async fn prune(&self, index: &str) {
        let sample: Vec<String> = match self
            .shared
            .run(|mut c| async move {
                redis::cmd("SRANDMEMBER")
                    .arg(index)
                    .arg(2 * PRUNE_EVERY)
                    .query_async(&mut c)
                    .await
            })
            .await
        {
            Ok(sample) => sample,
            Err(_) => return,
        };
        let mut gone = Vec::new();
        // Members live in different slots on a cluster: one EXISTS each.
        for member in sample {
            match self.exists(&member).await {
                Ok(false) => gone.push(member),
                Ok(true) => {}
                Err(_) => return,
            }
        }
        if gone.is_empty() {
            return;
        }
        let removed = self
            .shared
            .run(|mut c| {
                let gone = &gone;
                async move {
                    redis::cmd("SREM")
                        .arg(index)
                        .arg(gone)
                        .query_async::<()>(&mut c)
                        .await
                }
            })
            .await;
        if removed.is_err() {
            return;
        }
        // A member filled again between its EXISTS and the SREM was added
        // to the set (a no-op) before the SREM took it out: look once more,
        // and put back those that are there now. A fill after this look
        // adds its own member after storing it.
        static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
        for member in gone {
            if let Ok(true) = self.exists(&member).await {
                let _ = self
                    .shared
                    .run(|mut c| {
                        let member = &member;
                        async move {
                            script(&SCRIPT, ADD_BACK)
                                .key(index)
                                .arg(member)
                                .invoke_async::<()>(&mut c)
                                .await
                        }
                    })
                    .await;
            }
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.shared
            .run(|mut c| async move { redis::cmd("EXISTS").arg(key).query_async(&mut c).await })
            .await
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.shared.target {
            Target::Single(_) => "single",
            Target::Cluster(..) => "cluster",
        };
        f.debug_struct("RedisStore")
            .field("target", &kind)
            .field("command_timeout", &self.shared.command_timeout)
            .field("open", &self.is_open())
            .finish_non_exhaustive()
    }
}

/// A circuit breaker: closed (commands flow), open (none are sent until the
/// cool-down ends), half-open (one probe decides).
struct Breaker {
    failures_to_open: u32,
    cool_down: Duration,
    base: Instant,
    consecutive: AtomicU32,
    /// Milliseconds since `base` until which the breaker is open; 0 = closed.
    open_until: AtomicU64,
    probing: AtomicBool,
    skipped: AtomicU64,
}

impl Breaker {
    fn new(failures_to_open: u32, cool_down: Duration) -> Self {
        Breaker {
            failures_to_open,
            cool_down,
            base: Instant::now(),
            consecutive: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            skipped: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        // +1 so that "open until 0" can mean closed.
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
    }

    fn is_open(&self) -> bool {
        self.open_until.load(Ordering::Acquire) != 0
    }

    fn allow(&self) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        // Cooled down: exactly one caller probes.
        if self.now() >= until && !self.probing.swap(true, Ordering::AcqRel) {
            return true;
        }
        self.skipped.fetch_add(1, Ordering::Relaxed);
        false
    }

    fn success(&self) {
        // Every successful command comes here: read before writing, so a
        // healthy breaker's cache lines stay shared between cores.
        if self.consecutive.load(Ordering::Acquire) != 0 {
            self.consecutive.store(0, Ordering::Release);
        }
        if self.open_until.load(Ordering::Acquire) != 0
            && self.open_until.swap(0, Ordering::AcqRel) != 0
        {
            tracing::info!("larder: Redis answers again; circuit breaker closed");
        }
        if self.probing.load(Ordering::Acquire) {
            self.probing.store(false, Ordering::Release);
        }
    }

    fn failure(&self) {
        let failures = self.consecutive.fetch_add(1, Ordering::AcqRel) + 1;
        let probe_failed = self.probing.swap(false, Ordering::AcqRel);
        if probe_failed || failures >= self.failures_to_open {
            let until = self.now().saturating_add(millis(self.cool_down));
            if self.open_until.swap(until, Ordering::AcqRel) == 0 {
                tracing::warn!(
                    failures,
                    "larder: Redis keeps failing; circuit breaker open"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_after_consecutive_failures_and_probes_once() {
        let b = Breaker::new(3, Duration::ZERO);
        assert!(b.allow());
        b.failure();
        b.failure();
        assert!(!b.is_open());
        b.success(); // a success resets the count
        b.failure();
        b.failure();
        assert!(!b.is_open());
        b.failure();
        assert!(b.is_open());
        // Cool-down zero: the next caller probes, the others are held back.
        assert!(b.allow());
        assert!(!b.allow());
        assert_eq!(b.skipped.load(Ordering::Relaxed), 1);
        // A failed probe re-opens; a successful one closes.
        b.failure();
        assert!(b.is_open());
        assert!(b.allow());
        b.success();
        assert!(!b.is_open());
        assert!(b.allow() && b.allow());
    }

    #[test]
    fn breaker_stays_open_during_the_cool_down() {
        let b = Breaker::new(1, Duration::from_secs(3600));
        b.failure();
        assert!(!b.allow());
        assert!(!b.allow());
        assert_eq!(b.skipped.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn counters_are_what_incr_keeps_and_nothing_else() {
        assert_eq!(parse_counter(b"0"), Some(0));
        assert_eq!(parse_counter(b"42"), Some(42));
        assert_eq!(parse_counter(b"9223372036854775807"), Some(i64::MAX as u64));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b"007",
            b"1.5",
            b" 1",
            b"x1",
            b"9223372036854775808",
            b"18446744073709551616",
        ] {
            assert_eq!(
                parse_counter(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn urls_choose_single_or_cluster_and_bad_ones_say_why() {
        assert!(matches!(
            target("redis://127.0.0.1:6379/2"),
            Ok(Target::Single(_))
        ));
        assert!(matches!(
            target("redis+cluster://127.0.0.1:7000, 127.0.0.1:7001"),
            Ok(Target::Cluster(..))
        ));
        assert!(matches!(
            target("redis+cluster://:secret@127.0.0.1:7000"),
            Ok(Target::Cluster(..))
        ));
        let err = target("redis+cluster://").err().unwrap().to_string();
        assert!(err.contains("at least one host"), "{err}");
        let err = target("http://nope").err().unwrap().to_string();
        assert!(err.contains("invalid Redis URL"), "{err}");
    }
}
