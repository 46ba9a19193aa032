//! Timeouts on both sides: an upstream that stalls before its headers or
//! in the middle of its body (a raw TCP server that does exactly that),
//! requests coalesced on a stalled fill, and clients that hold a
//! connection without sending (idle keep-alive, a head that never ends, a
//! body that stops). Every wait is bounded by the configured timeout plus
//! a margin; nothing measures how fast anything was.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{get, proxy, raw, Upstream};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the raw upstream does once it has read a request head.
#[derive(Clone, Copy)]
enum Stall {
    /// Nothing: no status line, no headers, the connection kept open.
    BeforeHeaders,
    /// A cacheable chunked 200 and one chunk, then nothing.
    MidBody,
}

/// A raw TCP upstream that reads request heads and stalls as told; it
/// counts the requests it read.
struct Stalling {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl Stalling {
    async fn start(stall: Stall) -> Stalling {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let counted = counted.clone();
                tokio::spawn(async move {
                    if read_head(&mut stream).await.is_none() {
                        return;
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    if let Stall::MidBody = stall {
                        let head = "HTTP/1.1 200 OK\r\ncache-control: public, max-age=60\r\n\
                                    transfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n";
                        let _ = stream.write_all(head.as_bytes()).await;
                    }
                    // Held open, silent, until the proxy gives up on it.
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            return;
                        }
                    }
                });
            }
        });
        Stalling { addr, requests }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads up to the end of a request head.
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    while !bytes.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&buf[..n]);
    }
    Some(bytes)
}

/// Sends a GET and reads its body whole, or says where it broke.
async fn fetch(addr: SocketAddr, path: &str) -> Result<bytes::Bytes, String> {
    let request = http::Request::get(format!("http://{addr}{path}"))
        .header("host", "app.example")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = common::client()
        .request(request)
        .await
        .map_err(|e| format!("no response: {e}"))?;
    let body = response.into_body().collect().await;
    body.map(|b| b.to_bytes())
        .map_err(|e| format!("body broke off: {e}"))
}

/// How long past a configured timeout a test waits before calling it a
/// hang: generous, for a loaded machine.
const MARGIN: Duration = Duration::from_secs(5);

#[tokio::test]
async fn an_upstream_without_headers_is_a_504_that_says_so() {
    let up = Stalling::start(Stall::BeforeHeaders).await;
    let p = proxy(&up.url(), "upstream_timeout = \"1s\"\n", "").await;
    let got = tokio::time::timeout(Duration::from_secs(1) + MARGIN, get(p.addr(), "/a"))
        .await
        .expect("answered within upstream_timeout and a margin");
    assert_eq!(got.status, 504);
    let status = got.cache_status();
    assert!(
        status.contains("fwd=uri-miss") && status.contains("detail=upstream-timeout"),
        "{status}"
    );
    assert!(
        got.text().contains("did not answer in time"),
        "{}",
        got.text()
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_502_that_says_so() {
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = proxy(&format!("http://127.0.0.1:{port}"), "", "").await;
    let got = get(p.addr(), "/a").await;
    assert_eq!(got.status, 502);
    assert!(
        got.cache_status().contains("detail=upstream-failed"),
        "{}",
        got.cache_status()
    );
}

#[tokio::test]
async fn a_body_that_stalls_after_the_headers_is_aborted() {
    let up = Stalling::start(Stall::MidBody).await;
    let p = proxy(&up.url(), "between_bytes_timeout = \"1s\"\n", "").await;
    for _ in 0..2 {
        let request = http::Request::get(format!("http://{}/mid", p.addr()))
            .header("host", "app.example")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let exchange = async {
            // The head and the first bytes come as the upstream sent them...
            let response = common::client().request(request).await.expect("a head");
            assert_eq!(response.status(), 200);
            let mut body = response.into_body();
            let first = body.frame().await.expect("a frame").expect("data");
            assert_eq!(first.into_data().unwrap(), "first");
            // ...then the body is cut short, never ended as if complete.
            body.collect().await
        };
        let ended = tokio::time::timeout(Duration::from_secs(1) + MARGIN, exchange)
            .await
            .expect("ended within between_bytes_timeout and a margin");
        assert!(ended.is_err(), "cut short, not complete: {ended:?}");
    }
    // Nothing was stored: the second request went upstream again.
    assert_eq!(up.requests(), 2);
}

#[tokio::test]
async fn followers_of_a_stalled_fill_get_its_answer_at_once() {
    let up = Stalling::start(Stall::BeforeHeaders).await;
    // coalesce_wait is 30 s: a follower held for it would fail the bound.
    let p = proxy(&up.url(), "upstream_timeout = \"2s\"\n", "").await;
    let addr = p.addr();
    let requests: Vec<_> = (0..20)
        .map(|_| tokio::spawn(async move { get(addr, "/stalled").await }))
        .collect();
    let all = async {
        let mut answers = Vec::new();
        for request in requests {
            answers.push(request.await.unwrap());
        }
        answers
    };
    let answers = tokio::time::timeout(Duration::from_secs(2) + MARGIN, all)
        .await
        .expect("every request answered within upstream_timeout and a margin");
    for got in &answers {
        assert_eq!(got.status, 504, "{}", got.cache_status());
        assert!(got.cache_status().contains("detail=upstream-timeout"));
    }
    assert_eq!(
        up.requests(),
        1,
        "the followers got the leader's answer; none fetched after it"
    );
}

#[tokio::test]
async fn a_stale_entry_stands_in_for_a_stalled_upstream() {
    // One upstream: its first connection answers once and closes, every
    // later one stalls before its headers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let answers = std::mem::replace(&mut first, false);
            tokio::spawn(async move {
                if read_head(&mut stream).await.is_none() {
                    return;
                }
                if answers {
                    let reply =
                        "HTTP/1.1 200 OK\r\ncache-control: max-age=1, stale-if-error=600\r\n\
                                 connection: close\r\ncontent-length: 5\r\n\r\nstale";
                    let _ = stream.write_all(reply.as_bytes()).await;
                    return;
                }
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                }
            });
        }
    });
    let p = proxy(&format!("http://{addr}"), "upstream_timeout = \"1s\"\n", "").await;
    assert_eq!(get(p.addr(), "/s").await.text(), "stale");
    // Past the one-second lifetime (a wait, not a measurement).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let got = tokio::time::timeout(Duration::from_secs(1) + MARGIN, get(p.addr(), "/s"))
        .await
        .expect("bounded");
    assert_eq!(got.status, 200);
    assert_eq!(got.text(), "stale");
    assert!(
        got.cache_status().contains("fwd=stale"),
        "{}",
        got.cache_status()
    );
}

/// Whether the peer closed `stream` (EOF or reset) within `bound`.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let reading = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(bound, reading).await.is_ok()
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_client_keepalive_timeout() {
    let up = Upstream::start().await;
    // The header timeout is far above the wait: only the idle one can close it.
    let p = proxy(
        &up.url(),
        "client_keepalive_timeout = \"500ms\"\nclient_header_timeout = \"60s\"\n",
        "",
    )
    .await;
    let mut stream = TcpStream::connect(p.addr()).await.unwrap();
    stream
        .write_all(b"GET /k HTTP/1.1\r\nhost: app.example\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&head).contains("body of /k") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the response comes before the close");
        head.extend_from_slice(&buf[..n]);
    }
    assert!(
        closed_within(&mut stream, Duration::from_millis(500) + MARGIN).await,
        "closed once idle past client_keepalive_timeout"
    );
}

#[tokio::test]
async fn a_request_head_that_never_ends_is_closed_after_client_header_timeout() {
    let up = Upstream::start().await;
    let p = proxy(
        &up.url(),
        "client_keepalive_timeout = \"60s\"\nclient_header_timeout = \"500ms\"\n",
        "",
    )
    .await;
    let mut stream = TcpStream::connect(p.addr()).await.unwrap();
    stream
        .write_all(b"GET /h HTTP/1.1\r\nhost: app.exa")
        .await
        .unwrap();
    assert!(
        closed_within(&mut stream, Duration::from_millis(500) + MARGIN).await,
        "closed once the head took longer than client_header_timeout"
    );
    // A kept-alive connection gets the header timeout from the next
    // request's first byte, not its keep-alive time.
    let mut stream = TcpStream::connect(p.addr()).await.unwrap();
    stream
        .write_all(b"GET /h HTTP/1.1\r\nhost: app.example\r\n\r\n")
        .await
        .unwrap();
    let got = raw_until(&mut stream, "body of /h").await;
    assert!(got, "the first request is answered");
    stream.write_all(b"GET /h HTTP/1.1\r\nho").await.unwrap();
    assert!(closed_within(&mut stream, Duration::from_millis(500) + MARGIN).await);
}

/// Reads `stream` until `text` has come; false when it closes first.
async fn raw_until(stream: &mut TcpStream, text: &str) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(text) {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    true
}

#[tokio::test]
async fn a_request_body_that_stalls_is_a_408() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "client_body_timeout = \"500ms\"\n", "").await;
    let mut stream = TcpStream::connect(p.addr()).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nhost: app.example\r\ncontent-length: 10\r\n\r\nabc")
        .await
        .unwrap();
    let answered = tokio::time::timeout(Duration::from_millis(500) + MARGIN, async {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return seen,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                return seen;
            }
        }
    })
    .await
    .expect("answered within client_body_timeout and a margin");
    let head = String::from_utf8_lossy(&answered).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 408"), "{head}");
    assert!(head.contains("detail=client-timeout"), "{head}");
}

#[tokio::test]
async fn generated_errors_carry_cache_status() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    // Two Host lines: refused before the cache (RFC 9112 §3.2).
    let got = raw(
        p.addr(),
        "GET /x HTTP/1.1\r\nhost: a.example\r\nhost: b.example\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(got.status, 400);
    assert!(
        got.cache_status().contains("fwd=bypass")
            && got.cache_status().contains("detail=bad-request"),
        "{}",
        got.cache_status()
    );
}

#[tokio::test]
async fn followers_of_a_fill_that_stalls_mid_body_get_its_failure_at_once() {
    let up = Stalling::start(Stall::MidBody).await;
    let p = proxy(&up.url(), "between_bytes_timeout = \"2s\"\n", "").await;
    let addr = p.addr();
    let requests: Vec<_> = (0..20)
        .map(|_| tokio::spawn(async move { fetch(addr, "/stalls").await }))
        .collect();
    let all = async {
        let mut answers = Vec::new();
        for request in requests {
            answers.push(request.await.unwrap());
        }
        answers
    };
    let answers = tokio::time::timeout(Duration::from_secs(2) + MARGIN, all)
        .await
        .expect("every request ended within between_bytes_timeout and a margin");
    // The leader's client had its head and first bytes: its body is cut
    // short. Each follower, whose head was not sent, gets the 504.
    let cut = answers.iter().filter(|a| a.is_err()).count();
    let timeouts = answers
        .iter()
        .filter(|a| {
            a.as_ref()
                .is_ok_and(|b| b.starts_with(b"504 Gateway Timeout"))
        })
        .count();
    assert_eq!((cut, timeouts), (1, 19), "{answers:?}");
    assert_eq!(up.requests(), 1, "no follower fetched after the leader");
}
