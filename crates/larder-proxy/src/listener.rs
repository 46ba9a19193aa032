//! Accepting and serving client connections: the connection limit and its
//! reserve, accept errors, the per-connection request limit, the protocol
//! each connection speaks (HTTP/1.1, h2c, TLS with ALPN), and stopping.
//!
//! The accounting is per connection, never per request: accepting one
//! takes a lock and an atomic, ending one gives them back. A request only
//! bumps a counter its connection owns.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

use crate::activity::{Activity, Expired, Interim, InterimSender, Tracked, Watched};
use crate::woken::OnWake;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What answers a listener's requests (the proxy, the admin endpoints).
pub(crate) trait Handler: Send + Sync + 'static {
    /// The response body.
    type Body: http_body::Body<Data = Bytes> + Send + Unpin + 'static;

    /// Answers one request from `peer`; `interim` sends 1xx responses to
    /// it (HTTP/1.1 requests only).
    fn call(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
        interim: Option<InterimSender>,
    ) -> impl Future<Output = Response<Self::Body>> + Send + 'static;
}

/// How a listener serves its connections.
#[derive(Clone)]
pub(crate) struct Settings {
    /// Most client connections open at once (tunnels included); at the
    /// limit the listener stops accepting until one ends.
    pub max_connections: usize,
    /// Requests served on one connection before it is closed; 0: no limit.
    pub max_requests_per_connection: u64,
    /// How long in-flight requests get once told to stop.
    pub grace: Duration,
    /// A client that never finishes its headers cannot hold a connection
    /// (and a task) forever: from a new connection, or from the first
    /// byte of a request on a kept-alive one.
    pub header_read_timeout: Duration,
    /// How long a connection is kept with no request, from the end of the
    /// last response.
    pub keepalive_timeout: Duration,
    /// HTTP/2 with prior knowledge on a plain listener.
    pub h2c: bool,
    /// TLS on this listener (and HTTP/2 through ALPN).
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<crate::tls::ServerTls>>,
    /// Connections that are no longer HTTP (upgraded to a tunnel) but
    /// still hold descriptors: they count against `max_connections`.
    pub tunnels: Option<Arc<crate::upgrade::Tunnels>>,
}

impl Settings {
    /// The listener's settings with everything else at its default.
    pub(crate) fn new(max_connections: usize, grace: Duration) -> Settings {
        Settings {
            max_connections: max_connections.max(1),
            max_requests_per_connection: 0,
            grace,
            header_read_timeout: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(75),
            h2c: false,
            #[cfg(feature = "tls")]
            tls: None,
            tunnels: None,
        }
    }

    /// Where the reserve starts: from here on, every accepted connection
    /// asks the oldest open one to close, so that a flood of idle
    /// keep-alive connections makes room for new clients instead of
    /// starving them. The last sixteenth of the limit, at least one.
    pub(crate) fn reserve_from(&self) -> usize {
        self.max_connections
            - (self.max_connections / 16)
                .max(1)
                .min(self.max_connections - 1)
    }
}

/// The longest wait for a TLS handshake to finish.
#[cfg(feature = "tls")]
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often accept errors are logged, at most.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(5);
/// The first and the longest pause after an accept error that says the
/// process or the system is out of descriptors or memory.
const BACKOFF_FIRST: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// At the limit, how long to wait for a connection asked to close before
/// asking the next oldest (the first may be busy finishing a response).
const AT_LIMIT_TICK: Duration = Duration::from_millis(50);

/// How long a new connection is safe from being closed to make room: a
/// client that has just connected has not sent its request yet, and
/// closing it then would fail it. Against a flood that reopens what is
/// closed, this bounds how fast the listener cycles connections (the
/// limit per this time), so that a client's connection lives long enough
/// to be served.
const YOUNG: Duration = Duration::from_millis(100);

/// One open connection, as the registry sees it.
struct Slot {
    /// Asks the connection to close: at once when idle, after its current
    /// response otherwise.
    close: Notify,
    opened: Instant,
}

/// The open connections, oldest first.
struct Registry {
    next: u64,
    slots: BTreeMap<u64, Arc<Slot>>,
}

/// The open connections of one listener.
struct Connections {
    registry: Mutex<Registry>,
    open: AtomicUsize,
    /// Notified whenever a connection ends.
    ended: Notify,
}

impl Connections {
    fn new() -> Arc<Connections> {
        Arc::new(Connections {
            registry: Mutex::new(Registry {
                next: 0,
                slots: BTreeMap::new(),
            }),
            open: AtomicUsize::new(0),
            ended: Notify::new(),
        })
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Registers a new connection; dropping the guard unregisters it.
    fn register(self: &Arc<Self>) -> Guard {
        let slot = Arc::new(Slot {
            close: Notify::new(),
            opened: Instant::now(),
        });
        let id = {
            let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
            let id = registry.next;
            registry.next += 1;
            registry.slots.insert(id, slot.clone());
            id
        };
        self.open.fetch_add(1, Ordering::AcqRel);
        Guard {
            connections: self.clone(),
            id,
            slot,
        }
    }

    /// Asks the oldest open connection to close, unless it is younger
    /// than `young`; whether one was asked. It leaves the registry (it is
    /// on its way out), so the next call asks the next oldest.
    fn close_oldest(&self, young: Duration) -> bool {
        let oldest = {
            let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
            match registry.slots.first_key_value() {
                Some((_, slot)) if slot.opened.elapsed() >= young => registry.slots.pop_first(),
                _ => None,
            }
        };
        match oldest {
            Some((_, slot)) => {
                slot.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Asks every open connection to close.
    fn close_all(&self) {
        let slots = {
            let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut registry.slots)
        };
        for slot in slots.values() {
            slot.close.notify_one();
        }
    }

    /// Waits until no connection is open.
    async fn all_ended(&self) {
        loop {
            let ended = self.ended.notified();
            let mut ended = pin!(ended);
            ended.as_mut().enable();
            if self.open() == 0 {
                return;
            }
            ended.await;
        }
    }
}

/// A registered connection; ends its registration when dropped.
struct Guard {
    connections: Arc<Connections>,
    id: u64,
    slot: Arc<Slot>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        {
            let mut registry = self
                .connections
                .registry
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            registry.slots.remove(&self.id);
        }
        self.connections.open.fetch_sub(1, Ordering::AcqRel);
        self.connections.ended.notify_waiters();
    }
}

/// Whether an accept error says the process (EMFILE) or the system
/// (ENFILE) is out of descriptors, or the kernel out of memory: waiting
/// helps, retrying at once only spins.
fn is_exhaustion(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        true
    }
}

/// Logs accept errors at most once per [`ACCEPT_LOG_EVERY`], with how many
/// there were since the last line.
struct AcceptErrors {
    last: Option<Instant>,
    since: u64,
}

impl AcceptErrors {
    fn note(&mut self, e: &std::io::Error, what: &'static str, open: usize) {
        self.since += 1;
        if self.last.is_some_and(|at| at.elapsed() < ACCEPT_LOG_EVERY) {
            return;
        }
        tracing::warn!(
            error = %e,
            what,
            open,
            errors = self.since,
            "accept failed; closing the oldest connection and backing off"
        );
        self.last = Some(Instant::now());
        self.since = 0;
    }
}

/// Accepts connections on `listener` and serves them with `handler` until
/// `stop` turns true; then stops accepting, closes the connections that
/// have no request in flight at once, asks the others to close once their
/// current response is sent, and waits for them at most `settings.grace`.
pub(crate) async fn serve<H>(
    listener: TcpListener,
    handler: Arc<H>,
    settings: Settings,
    mut stop: watch::Receiver<bool>,
    what: &'static str,
) where
    H: Handler,
    <H::Body as http_body::Body>::Error: Into<BoxError>,
{
    let connections = Connections::new();
    let settings = Arc::new(settings);
    let (kill, killed) = watch::channel(false);
    let reserve_from = settings.reserve_from();
    let tunnels = settings.tunnels.clone();
    let in_use = || connections.open() + tunnels.as_ref().map_or(0, |t| t.open());
    let mut errors = AcceptErrors {
        last: None,
        since: 0,
    };
    let mut backoff = BACKOFF_FIRST;
    'accepting: loop {
        // At the limit: accept nothing until a connection ends, asking the
        // oldest to close meanwhile (new clients wait in the backlog
        // instead of taking descriptors the open ones need).
        while in_use() >= settings.max_connections {
            let ended = connections.ended.notified();
            let mut ended = pin!(ended);
            ended.as_mut().enable();
            if in_use() < settings.max_connections {
                break;
            }
            connections.close_oldest(YOUNG);
            tokio::select! {
                () = ended => {}
                () = tokio::time::sleep(AT_LIMIT_TICK) => {}
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break 'accepting;
                    }
                }
            }
        }
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) if is_exhaustion(&e) => {
                        // Out of descriptors: one closed connection gives
                        // one back; retrying at once would only spin.
                        connections.close_oldest(YOUNG);
                        errors.note(&e, what, in_use());
                        tokio::select! {
                            () = tokio::time::sleep(backoff) => {}
                            changed = stop.changed() => {
                                if changed.is_err() || *stop.borrow() {
                                    break 'accepting;
                                }
                            }
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue;
                    }
                    Err(e) => {
                        // One connection's trouble (reset before accept):
                        // the next is unaffected.
                        tracing::debug!(error = %e, what, "accept failed");
                        continue;
                    }
                };
                backoff = BACKOFF_FIRST;
                if in_use() >= reserve_from {
                    connections.close_oldest(YOUNG);
                }
                let guard = connections.register();
                let handler = handler.clone();
                let settings = settings.clone();
                let killed = killed.clone();
                tokio::spawn(async move {
                    connection(stream, peer, guard, handler, &settings, killed).await;
                });
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    drop(listener);
    connections.close_all();
    if tokio::time::timeout(settings.grace, connections.all_ended())
        .await
        .is_err()
    {
        tracing::warn!(
            what,
            grace = ?settings.grace,
            "in-flight requests did not finish in time; closing them"
        );
        let _ = kill.send(true);
    }
}

/// A hyper connection that can be asked to finish gracefully.
trait Graceful: Future {
    fn close(self: Pin<&mut Self>);
}

impl<I, S> Graceful for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<Incoming>,
    S::Error: Into<BoxError>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S::ResBody: http_body::Body + 'static,
    <S::ResBody as http_body::Body>::Error: Into<BoxError>,
{
    fn close(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

#[cfg(feature = "http2")]
impl<I, S, E> Graceful for hyper::server::conn::http2::Connection<I, S, E>
where
    S: hyper::service::HttpService<Incoming>,
    S::Error: Into<BoxError>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S::ResBody: http_body::Body + 'static,
    <S::ResBody as http_body::Body>::Error: Into<BoxError>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, S::ResBody>,
{
    fn close(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

#[cfg(feature = "http2")]
impl<I, S, E, B> Graceful for hyper_util::server::conn::auto::UpgradeableConnection<'_, I, S, E>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    S::Future: 'static,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: http_body::Body + 'static,
    B::Error: Into<BoxError>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn close(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Serves `conn` until it ends; when its slot is told to close, or it has
/// been idle past the keep-alive timeout, closes it gracefully and lets it
/// finish, unless the listener's grace runs out. One that takes too long
/// to send a request head is dropped.
/// How long a closing connection with no request in flight may take to
/// end by itself (flush what it wrote) before it is dropped.
const NOTHING_OWED_FLUSH: std::time::Duration = std::time::Duration::from_secs(1);

async fn drive<C, E>(
    conn: C,
    slot: &Slot,
    mut killed: watch::Receiver<bool>,
    peer: SocketAddr,
    activity: &Activity,
    settings: &Settings,
) where
    C: Graceful<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut conn = pin!(conn);
    let keepalive = settings.keepalive_timeout;
    let header = settings.header_read_timeout;
    // The task wakes for each request the connection reads: the other two
    // branches are polled only when their own wake-up came (`woken.rs`),
    // and the connection first, without `select!`'s random draw.
    let close = pin!(slot.close.notified());
    let close = OnWake::new(close);
    let watchdog = pin!(crate::activity::watchdog(activity, keepalive, header));
    let watchdog = OnWake::new(watchdog);
    let ended = tokio::select! {
        biased;
        ended = conn.as_mut() => Some(ended),
        () = close => None,
        expired = watchdog => {
            if expired == Expired::Header {
                tracing::debug!(%peer, ?header, "no request head within client_header_timeout; closing");
                return;
            }
            None
        }
    };
    let ended = match ended {
        Some(ended) => ended,
        None => {
            conn.as_mut().close();
            // With no request in flight nothing is owed: a head the client
            // is still sending (hyper's close waits for it) is dropped once
            // what was written has had a moment to flush, not after
            // client_header_timeout.
            let owed = activity.in_flight();
            tokio::select! {
                ended = conn.as_mut() => ended,
                _ = killed.wait_for(|k| *k) => return,
                // Closing waits for a head being read to end: not forever.
                _ = crate::activity::watchdog(activity, keepalive, header) => return,
                () = tokio::time::sleep(NOTHING_OWED_FLUSH), if !owed => return,
            }
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}

/// A handler's response, its body telling the connection when it ends.
type Answered<H> = Response<Tracked<<H as Handler>::Body>>;

/// The service hyper calls for each request of one connection: the
/// handler, with the connection's request limit applied. `Connection:
/// close` on HTTP/1.1 (hyper then closes after the response); on HTTP/2
/// the connection is asked to close (GOAWAY once its streams end).
fn service<H: Handler>(
    handler: Arc<H>,
    peer: SocketAddr,
    limit: u64,
    slot: Arc<Slot>,
    activity: Arc<Activity>,
    interim: Option<Arc<Interim>>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Answered<H>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<Answered<H>, std::convert::Infallible>> + Send + 'static,
> + Send
       + 'static {
    // Owned by the connection: no other connection reads it.
    let served = Cell::new(0u64);
    hyper::service::service_fn(move |request: Request<Incoming>| {
        // RFC 9110 §15.2: never a 1xx to an HTTP/1.0 client.
        let sender = interim
            .as_ref()
            .filter(|_| request.version() == http::Version::HTTP_11)
            .map(Interim::open);
        let interim = sender
            .as_ref()
            .zip(interim.as_ref())
            .map(|(sender, interim)| (interim.clone(), sender.request()));
        let n = served.get() + 1;
        served.set(n);
        let last = limit != 0 && n >= limit;
        let h2 = request.version() == http::Version::HTTP_2;
        // Ended when the response body ends: until then the connection is
        // not idle, however long the response takes.
        let answering = activity.begin();
        let answer = handler.clone().call(request, peer, sender);
        let slot = last.then(|| slot.clone());
        async move {
            let response = answer.await;
            if let Some((interim, request)) = interim {
                interim.close(request);
            }
            let mut response = response.map(|body| Tracked::new(body, answering));
            if let Some(slot) = slot {
                if h2 {
                    slot.close.notify_one();
                } else {
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
            }
            Ok(response)
        }
    })
}

fn http1() -> hyper::server::conn::http1::Builder {
    let mut http = hyper::server::conn::http1::Builder::new();
    // hyper's header timeout is off: the watchdog (`activity.rs`) runs
    // `client_header_timeout` itself, from the first byte of a head
    // rather than from the moment the connection went idle. hyper's would
    // reset a timer on every request head, a cost per request for a bound
    // (keep-alive plus header timeout) the watchdog already keeps.
    http.header_read_timeout(None);
    http
}

#[cfg(all(feature = "tls", feature = "http2"))]
fn http2() -> hyper::server::conn::http2::Builder<hyper_util::rt::TokioExecutor> {
    let mut http = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
    // Each stream may take an upstream connection: bound them per client.
    http.timer(TokioTimer::new()).max_concurrent_streams(128);
    http
}

/// Serves one accepted connection in the protocol it speaks.
async fn connection<H>(
    stream: TcpStream,
    peer: SocketAddr,
    guard: Guard,
    handler: Arc<H>,
    settings: &Settings,
    killed: watch::Receiver<bool>,
) where
    H: Handler,
    <H::Body as http_body::Body>::Error: Into<BoxError>,
{
    let _ = stream.set_nodelay(true);
    let slot = guard.slot.clone();
    let activity = Activity::new();
    let interim = Arc::new(Interim::default());
    let svc = |interim: Option<Arc<Interim>>| {
        service(
            handler.clone(),
            peer,
            settings.max_requests_per_connection,
            slot.clone(),
            activity.clone(),
            interim,
        )
    };
    #[cfg(feature = "tls")]
    if let Some(tls) = &settings.tls {
        let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream));
        let stream = tokio::select! {
            done = handshake => match done {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, %peer, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            },
            // Evicted or stopped before it said anything.
            () = slot.close.notified() => return,
        };
        #[cfg(feature = "http2")]
        if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
            // hyper's HTTP/2 server cannot send 1xx: none are forwarded.
            let io = TokioIo::new(Watched::new(stream, activity.clone()));
            let conn = http2().serve_connection(io, svc(None));
            drive(conn, &slot, killed, peer, &activity, settings).await;
            return;
        }
        let io = TokioIo::new(Watched::new(stream, activity.clone()).with_interim(interim.clone()));
        let conn = http1()
            .serve_connection(io, svc(Some(interim)))
            .with_upgrades();
        drive(conn, &slot, killed, peer, &activity, settings).await;
        return;
    }
    let io = TokioIo::new(Watched::new(stream, activity.clone()).with_interim(interim.clone()));
    #[cfg(feature = "http2")]
    if settings.h2c {
        let mut auto =
            hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        // As `http1`: the watchdog runs the header timeout.
        auto.http1().header_read_timeout(None);
        auto.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(128);
        // HTTP/1.1 requests on it get their 1xx; HTTP/2 ones do not.
        let conn = auto.serve_connection_with_upgrades(io, svc(Some(interim)));
        drive(conn, &slot, killed, peer, &activity, settings).await;
        return;
    }
    let conn = http1()
        .serve_connection(io, svc(Some(interim)))
        .with_upgrades();
    drive(conn, &slot, killed, peer, &activity, settings).await;
    drop(guard);
}

/// The open-file limit (`RLIMIT_NOFILE`, soft), when the platform has one.
pub(crate) fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the struct we own and reads nothing else.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return None;
        }
        if limit.rlim_cur == libc::RLIM_INFINITY {
            return None;
        }
        // rlim_t is u64 on Linux and macOS, not on every unix.
        #[allow(clippy::useless_conversion)]
        limit.rlim_cur.try_into().ok()
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Raises the soft open-file limit to the hard one (as Go's runtime does
/// at start): a soft limit of 1024 with a hard one far above is the usual
/// default and would cap a proxy at a few hundred connections. Returns the
/// limit now in force.
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as in `open_file_limit`; setrlimit reads the struct we own.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            if limit.rlim_cur < limit.rlim_max {
                let mut raised = limit;
                // macOS refuses more than OPEN_MAX whatever the hard limit says.
                raised.rlim_cur = limit.rlim_max.min(1 << 20);
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        if limit.rlim_cur == libc::RLIM_INFINITY {
            return None;
        }
        // rlim_t is u64 on Linux and macOS, not on every unix.
        #[allow(clippy::useless_conversion)]
        limit.rlim_cur.try_into().ok()
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Descriptors kept out of the connection limit: listeners, Redis,
/// stdio, the runtime's own, files.
const FIXED_DESCRIPTORS: u64 = 64;

/// The default `max_connections` for an open-file limit: what is left
/// after 64 descriptors (listeners, Redis, stdio, files), halved so that every client connection can
/// have an upstream connection beside it; 16 at least. 10,000 without a
/// limit.
///
/// ```
/// use larder_proxy::listener::default_max_connections;
///
/// assert_eq!(default_max_connections(Some(1024)), 480);
/// assert_eq!(default_max_connections(Some(20)), 16);
/// assert_eq!(default_max_connections(None), 10_000);
/// ```
pub fn default_max_connections(open_file_limit: Option<u64>) -> usize {
    match open_file_limit {
        Some(limit) => {
            let left = limit.saturating_sub(FIXED_DESCRIPTORS) / 2;
            usize::try_from(left).unwrap_or(usize::MAX).max(16)
        }
        None => 10_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_the_last_sixteenth_at_least_one() {
        let from = |max| Settings::new(max, Duration::ZERO).reserve_from();
        assert_eq!(from(480), 450);
        assert_eq!(from(16), 15);
        assert_eq!(from(2), 1);
        assert_eq!(from(1), 1);
    }

    #[test]
    fn the_oldest_connection_is_asked_to_close_first() {
        let connections = Connections::new();
        let a = connections.register();
        let b = connections.register();
        assert_eq!(connections.open(), 2);
        // A connection just opened is not closed to make room.
        assert!(!connections.close_oldest(Duration::from_secs(3600)));
        assert!(connections.close_oldest(Duration::ZERO));
        // `a` was told (a stored permit), `b` was not.
        let told = |g: &Guard| {
            let n = g.slot.close.notified();
            let mut n = pin!(n);
            n.as_mut().enable()
        };
        assert!(told(&a));
        assert!(!told(&b));
        drop(a);
        assert_eq!(connections.open(), 1);
        assert!(connections.close_oldest(Duration::ZERO));
        assert!(told(&b));
        assert!(
            !connections.close_oldest(Duration::ZERO),
            "none left to ask"
        );
        drop(b);
        assert_eq!(connections.open(), 0);
    }
}
