//! `Store::watch` on Redis: changes made by anyone (another store, a
//! redis-cli) under a watched prefix are reported; losing the tracking
//! connection is reported at once and recovered from; a cluster reports
//! every master's keys. Real redis-server processes, bounded waits.
#![cfg(feature = "redis")]

mod support;

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use larder::store::{RedisStore, Store, Watch, Watcher};
use support::redis::{RedisCluster, RedisServer};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Changed(String),
    Lost,
    Restored,
}

/// A watcher that writes down what it is told, in order.
#[derive(Default)]
struct Log(Mutex<Vec<Event>>);

impl Watcher for Log {
    fn changed(&self, key: &[u8]) {
        let key = String::from_utf8_lossy(key).into_owned();
        self.0.lock().unwrap().push(Event::Changed(key));
    }
    fn lost(&self) {
        self.0.lock().unwrap().push(Event::Lost);
    }
    fn restored(&self) {
        self.0.lock().unwrap().push(Event::Restored);
    }
}

impl Log {
    fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    fn changed(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Changed(k) => Some(k),
                _ => None,
            })
            .collect()
    }

    /// Only the lost/restored transitions, in order.
    fn transitions(&self) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|e| !matches!(e, Event::Changed(_)))
            .collect()
    }

    fn saw(&self, key: &str) -> bool {
        self.changed().iter().any(|k| k == key)
    }
}

fn watch(store: &RedisStore, prefix: &str) -> Arc<Log> {
    let log = Arc::new(Log::default());
    let weak: Weak<dyn Watcher> = Arc::downgrade(&log) as Weak<dyn Watcher>;
    assert_eq!(store.watch(prefix, weak), Watch::Watching);
    log
}

/// Polls until `ready`, failing the test after a generous bound.
async fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn store(url: &str) -> RedisStore {
    RedisStore::builder(url)
        .command_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connects to the test redis-server")
}

fn ttl() -> Duration {
    Duration::from_secs(60)
}

/// The ids of the tracking connections open on a node.
fn tracking_ids(server: &RedisServer) -> Vec<String> {
    let list = server.cli(&["CLIENT", "LIST"]).unwrap_or_default();
    list.lines()
        .filter(|l| l.contains("name=larder-watch"))
        .filter_map(|l| {
            l.split(' ')
                .find_map(|f| f.strip_prefix("id="))
                .map(str::to_owned)
        })
        .collect()
}

/// Writes `key` through `store` and waits until `log` hears of it: every
/// report sent before it has arrived too (one connection, in order).
async fn fence(store: &RedisStore, log: &Log, key: &str) {
    store
        .put(key, Bytes::from_static(b"fence"), ttl())
        .await
        .unwrap();
    wait_for(key, || log.saw(key)).await;
}

#[tokio::test]
async fn changes_by_another_store_and_by_redis_cli_are_reported_and_only_under_the_prefix() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = store(&server.url()).await;
    assert!(!a.watching(), "nobody watches yet");
    let log = watch(&a, "app:");
    wait_for("tracking on", || a.watching()).await;
    assert_eq!(log.transitions(), [Event::Restored]);

    let b = store(&server.url()).await;
    let v = Bytes::from_static(b"v");
    b.put("app:put", v.clone(), ttl()).await.unwrap();
    b.put("app:deleted", v.clone(), ttl()).await.unwrap();
    b.delete("app:deleted").await.unwrap();
    b.incr("app:ns:items:gen").await.unwrap();
    b.put("app:tagged", v.clone(), ttl()).await.unwrap();
    b.index_add("app:tag:t", "app:tagged", ttl()).await.unwrap();
    assert_eq!(b.index_purge("app:tag:t").await.unwrap(), 1);
    b.put("other:put", v.clone(), ttl()).await.unwrap();
    b.delete("other:put").await.unwrap();
    server.cli(&["SET", "app:by-cli", "1"]).unwrap();
    server.cli(&["SET", "elsewhere:by-cli", "1"]).unwrap();
    fence(&b, &log, "app:fence").await;

    let seen = log.changed();
    let times = |key: &str| seen.iter().filter(|k| *k == key).count();
    assert!(times("app:put") >= 1, "{seen:?}");
    assert!(times("app:ns:items:gen") >= 1, "{seen:?}");
    assert!(times("app:by-cli") >= 1, "{seen:?}");
    // Written, then deleted (by `delete`, by the tag purge): told twice.
    assert!(times("app:deleted") >= 2, "{seen:?}");
    assert!(times("app:tagged") >= 2, "{seen:?}");
    assert!(seen.iter().all(|k| k.starts_with("app:")), "{seen:?}");
    // A's own writes come back to it as well: NOLOOP has nothing to
    // suppress on a connection that never writes.
    fence(&a, &log, "app:own-write").await;
    assert_eq!(log.transitions(), [Event::Restored]);
}

#[tokio::test]
async fn killing_the_tracking_connection_is_lost_at_once_then_restored() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    if server.port == 0 {
        return; // an external server: CLIENT LIST may show others' clients
    }
    let a = store(&server.url()).await;
    let log = watch(&a, "app:");
    wait_for("tracking on", || a.watching()).await;
    let ids = tracking_ids(&server);
    assert_eq!(ids.len(), 1, "one tracking connection: {ids:?}");
    server.cli(&["CLIENT", "KILL", "ID", &ids[0]]).unwrap();
    wait_for("lost", || log.transitions().contains(&Event::Lost)).await;
    wait_for("restored again", || {
        log.transitions() == [Event::Restored, Event::Lost, Event::Restored]
    })
    .await;
    assert!(a.watching());
    let new_ids = tracking_ids(&server);
    assert_eq!(new_ids.len(), 1, "{new_ids:?}");
    assert_ne!(new_ids, ids, "a new connection");
    // Tracking covers the prefix again.
    server.cli(&["SET", "app:after-kill", "1"]).unwrap();
    wait_for("a change after the reconnect", || log.saw("app:after-kill")).await;
}

#[tokio::test]
async fn a_restarted_server_is_lost_then_restored() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    if server.port == 0 {
        return; // cannot restart an external server
    }
    let a = store(&server.url()).await;
    let log = watch(&a, "app:");
    wait_for("tracking on", || a.watching()).await;
    server.kill();
    wait_for("lost", || !a.watching() && log.transitions().len() == 2).await;
    assert_eq!(log.transitions(), [Event::Restored, Event::Lost]);
    server.restart();
    wait_for("restored", || a.watching()).await;
    assert_eq!(
        log.transitions(),
        [Event::Restored, Event::Lost, Event::Restored]
    );
    server.cli(&["SET", "app:after-restart", "1"]).unwrap();
    wait_for("a change after the restart", || {
        log.saw("app:after-restart")
    })
    .await;
}

#[tokio::test]
async fn a_flush_means_everything_changed() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = store(&server.url()).await;
    let log = watch(&a, "app:");
    wait_for("tracking on", || a.watching()).await;
    a.put("app:x", Bytes::from_static(b"x"), ttl())
        .await
        .unwrap();
    server.cli(&["FLUSHALL"]).unwrap();
    wait_for("lost and restored", || log.transitions().len() == 3).await;
    assert_eq!(
        log.transitions(),
        [Event::Restored, Event::Lost, Event::Restored]
    );
    assert!(a.watching());
}

#[tokio::test]
async fn watchers_added_later_are_covered_overlapping_prefixes_too() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = store(&server.url()).await;
    let first = watch(&a, "app:items:");
    wait_for("tracking on", || a.watching()).await;

    // A disjoint prefix is added to the live connection: the first
    // watcher is not disturbed.
    let second = watch(&a, "other:");
    wait_for("second restored", || {
        second.transitions() == [Event::Restored]
    })
    .await;
    server.cli(&["SET", "other:k", "1"]).unwrap();
    wait_for("other:k", || second.saw("other:k")).await;
    assert_eq!(first.transitions(), [Event::Restored]);
    assert!(!first.saw("other:k"));

    // A prefix under a tracked one is covered already.
    let third = watch(&a, "app:items:deep:");
    wait_for("third restored", || {
        third.transitions() == [Event::Restored]
    })
    .await;
    assert_eq!(first.transitions(), [Event::Restored]);

    // A shorter prefix overlaps a tracked one, which a broadcast
    // connection refuses: everyone is lost, then tracked anew.
    let fourth = watch(&a, "app:");
    wait_for("fourth restored", || {
        fourth.transitions() == [Event::Restored]
    })
    .await;
    wait_for("first restored again", || {
        first.transitions() == [Event::Restored, Event::Lost, Event::Restored]
    })
    .await;
    assert!(a.watching());
    server.cli(&["SET", "app:session", "1"]).unwrap();
    server.cli(&["SET", "app:items:deep:1", "1"]).unwrap();
    server.cli(&["SET", "other:k2", "1"]).unwrap();
    wait_for("all three keys", || {
        fourth.saw("app:session")
            && fourth.saw("app:items:deep:1")
            && third.saw("app:items:deep:1")
            && first.saw("app:items:deep:1")
            && second.saw("other:k2")
    })
    .await;
    assert!(!first.saw("app:session"), "outside its prefix");
    assert_eq!(tracking_ids(&server).len(), 1);
}

#[tokio::test]
async fn a_server_that_refuses_tracking_is_never_restored_and_requests_still_work() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    if server.port == 0 {
        return; // no ACL changes on an external server
    }
    // A user who may do everything but client tracking, as on a server
    // without it.
    server
        .cli(&[
            "ACL",
            "SETUSER",
            "limited",
            "on",
            ">secret",
            "~*",
            "&*",
            "+@all",
            "-client|tracking",
        ])
        .unwrap();
    let url = format!("redis://limited:secret@127.0.0.1:{}", server.port);
    let a = store(&url).await;
    let log = watch(&a, "app:");
    // The refusal comes back in one round trip; give it many.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!a.watching());
    assert!(log.transitions().is_empty(), "{:?}", log.events());
    a.put("app:k", Bytes::from_static(b"v"), ttl())
        .await
        .unwrap();
    assert_eq!(
        a.get("app:k").await.unwrap(),
        Some(Bytes::from_static(b"v"))
    );
    assert!(!a.watching());
}

#[tokio::test]
async fn dropping_the_store_closes_the_tracking_connection() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    if server.port == 0 {
        return;
    }
    let a = store(&server.url()).await;
    let log = watch(&a, "app:");
    wait_for("tracking on", || a.watching()).await;
    assert_eq!(tracking_ids(&server).len(), 1);
    drop(a);
    wait_for("the tracking connection closed", || {
        tracking_ids(&server).is_empty()
    })
    .await;
    drop(log);
}

#[tokio::test]
async fn a_cluster_reports_writes_on_every_master() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let a = store(&cluster.url()).await;
    let log = watch(&a, "app:");
    wait_for("tracking on every master", || a.watching()).await;
    for node in &cluster.nodes {
        assert_eq!(tracking_ids(node).len(), 1, "node {}", node.port);
    }
    let b = store(&cluster.url()).await;
    // Many hash tags: keys in slots on all three masters.
    let keys: Vec<String> = (0..30).map(|i| format!("app:{{t{i}}}:k")).collect();
    for key in &keys {
        b.put(key, Bytes::from_static(b"v"), ttl()).await.unwrap();
    }
    b.put("other:{t1}", Bytes::from_static(b"v"), ttl())
        .await
        .unwrap();
    wait_for("every key", || keys.iter().all(|k| log.saw(k))).await;
    for key in &keys {
        b.delete(key).await.unwrap();
    }
    wait_for("every delete", || {
        let seen = log.changed();
        keys.iter()
            .all(|k| seen.iter().filter(|s| *s == k).count() >= 2)
    })
    .await;
    assert!(!log.saw("other:{t1}"));

    // One master's tracking connection killed: lost, then restored.
    let node = &cluster.nodes[1];
    let ids = tracking_ids(node);
    node.cli(&["CLIENT", "KILL", "ID", &ids[0]]).unwrap();
    wait_for("lost then restored", || {
        log.transitions() == [Event::Restored, Event::Lost, Event::Restored]
    })
    .await;
    assert!(a.watching());
}
