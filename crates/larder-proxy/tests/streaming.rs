//! A miss streams to its client while it is stored: a raw TCP upstream
//! sends its head and a first chunk, then holds the rest until the test
//! says; the client must have the first chunk by then.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::proxy;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// An upstream that answers each request with a cacheable chunked body:
/// `first`, then (once told) `chunks` chunks of `size` bytes.
struct Held {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    go: Arc<Notify>,
}

impl Held {
    async fn start(chunks: usize, size: usize) -> Held {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let go = Arc::new(Notify::new());
        let (counted, told) = (requests.clone(), go.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let (counted, told) = (counted.clone(), told.clone());
                tokio::spawn(async move {
                    while read_head(&mut stream).await {
                        counted.fetch_add(1, Ordering::SeqCst);
                        let head = "HTTP/1.1 200 OK\r\ncache-control: public, max-age=60\r\n\
                                    transfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n";
                        if stream.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        told.notified().await;
                        let chunk = format!("{size:x}\r\n{}\r\n", "x".repeat(size));
                        for _ in 0..chunks {
                            if stream.write_all(chunk.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        if stream.write_all(b"0\r\n\r\n").await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Held { addr, requests, go }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Lets every held response (now and later) go on.
    fn release_all(&self) {
        for _ in 0..64 {
            self.go.notify_one();
        }
    }
}

async fn read_head(stream: &mut TcpStream) -> bool {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => bytes.push(byte[0]),
            _ => return false,
        }
    }
    true
}

const BOUND: Duration = Duration::from_secs(10);

/// GETs `path` and returns the response's body as it streams.
async fn open(addr: SocketAddr, path: &str) -> (http::response::Parts, hyper::body::Incoming) {
    let request = http::Request::get(format!("http://{addr}{path}"))
        .header("host", "app.example")
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    let response = tokio::time::timeout(BOUND, common::client().request(request))
        .await
        .expect("a head within the bound")
        .expect("a response");
    response.into_parts()
}

async fn rest(body: hyper::body::Incoming) -> Bytes {
    tokio::time::timeout(BOUND, body.collect())
        .await
        .expect("the body within the bound")
        .expect("the body whole")
        .to_bytes()
}

#[tokio::test]
async fn a_miss_reaches_its_client_before_the_upstream_has_sent_it_all_and_is_stored() {
    let up = Held::start(3, 1000).await;
    let p = proxy(&up.url(), "", "").await;
    let (head, mut body) = open(p.addr(), "/s").await;
    assert_eq!(head.status, 200);
    // The upstream holds the rest back: the first chunk came without it.
    let first = tokio::time::timeout(BOUND, body.frame())
        .await
        .expect("the first chunk while the upstream holds the rest")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "first");
    up.release_all();
    let all = rest(body).await;
    assert_eq!(all.len(), 3000);
    // Stored whole before the body ended: the next request is a hit.
    let (head, body) = open(p.addr(), "/s").await;
    let status = head.headers["cache-status"].to_str().unwrap();
    assert!(status.contains("hit"), "{status}");
    assert_eq!(rest(body).await.len(), 5 + 3000);
    assert_eq!(up.requests(), 1);
}

#[tokio::test]
async fn a_body_over_max_body_bytes_reaches_the_client_whole_and_is_not_stored() {
    let up = Held::start(4, 512).await;
    up.release_all();
    let p = proxy(&up.url(), "", "[cache]\nmax_body_bytes = 1024\n").await;
    for _ in 0..2 {
        let (_, body) = open(p.addr(), "/big").await;
        assert_eq!(rest(body).await.len(), 5 + 4 * 512, "never cut for storing");
        up.release_all();
    }
    assert_eq!(up.requests(), 2, "too large to store: fetched again");
}

#[tokio::test]
async fn past_the_in_flight_budget_a_miss_streams_on_unstored() {
    let up = Held::start(4, 100).await;
    up.release_all();
    let p = proxy(
        &up.url(),
        "",
        "[cache]\nmax_body_bytes = 100000\nin_flight_bytes = 200\n",
    )
    .await;
    for _ in 0..2 {
        let (_, body) = open(p.addr(), "/budget").await;
        assert_eq!(rest(body).await.len(), 5 + 400);
        up.release_all();
    }
    assert_eq!(up.requests(), 2, "not stored past the budget");
}

#[tokio::test]
async fn requests_coalesced_on_a_streaming_miss_get_the_stored_entry() {
    let up = Held::start(2, 1000).await;
    let p = proxy(&up.url(), "", "").await;
    let addr = p.addr();
    let (_, mut leader) = open(addr, "/c").await;
    let first = tokio::time::timeout(BOUND, leader.frame()).await.unwrap();
    assert!(first.is_some());
    let followers: Vec<_> = (0..10)
        .map(|_| {
            tokio::spawn(async move {
                let (head, body) = open(addr, "/c").await;
                (head, rest(body).await)
            })
        })
        .collect();
    // Wait, bounded, until the followers are in (they do not reach the upstream).
    tokio::time::sleep(Duration::from_millis(200)).await;
    up.release_all();
    assert_eq!(rest(leader).await.len(), 2000);
    for follower in followers {
        let (head, body) = tokio::time::timeout(BOUND, follower)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(body.len(), 5 + 2000);
        let status = head.headers["cache-status"].to_str().unwrap();
        assert!(
            status.contains("collapsed") || status.contains("hit"),
            "{status}"
        );
    }
    assert_eq!(up.requests(), 1);
}
