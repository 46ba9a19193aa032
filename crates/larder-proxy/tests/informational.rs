//! 1xx responses (RFC 9110 §15.2: a proxy MUST forward them): a raw TCP
//! upstream sends `103 Early Hints` or `100 Continue` before its final
//! response, and a raw client reads the bytes the proxy sends.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::proxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

const EARLY_HINTS: &str = "HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n";
const FINAL: &str =
    "HTTP/1.1 200 OK\r\ncache-control: public, max-age=60\r\ncontent-length: 5\r\n\r\nfinal";

/// An upstream that answers every request with `interim`, then waits for
/// `go` before the final response: the interim response must reach the
/// client while the final one does not exist yet.
struct Hinting {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    go: Arc<Notify>,
}

impl Hinting {
    async fn start(interim: &'static str) -> Hinting {
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
                    while let Some(head) = read_until(&mut stream, b"\r\n\r\n").await {
                        counted.fetch_add(1, Ordering::SeqCst);
                        let length = content_length(&head);
                        if length > 0 && read_exactly(&mut stream, length).await.is_none() {
                            return;
                        }
                        if stream.write_all(interim.as_bytes()).await.is_err() {
                            return;
                        }
                        told.notified().await;
                        if stream.write_all(FINAL.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Hinting { addr, requests, go }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .to_ascii_lowercase()
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0)
}

/// Reads until `end` has come; what was read, or `None` on close.
async fn read_until(stream: &mut TcpStream, end: &[u8]) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(end) {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        bytes.push(byte[0]);
    }
    Some(bytes)
}

async fn read_exactly(stream: &mut TcpStream, n: usize) -> Option<Vec<u8>> {
    let mut bytes = vec![0u8; n];
    stream.read_exact(&mut bytes).await.ok()?;
    Some(bytes)
}

/// Bounds each read of the client: a hang fails the test.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = Option<T>>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within 10 s"))
        .unwrap_or_else(|| panic!("{what}: the connection closed"))
}

#[tokio::test]
async fn early_hints_reach_the_client_before_the_final_response_and_are_never_stored() {
    let up = Hinting::start(EARLY_HINTS).await;
    let p = proxy(&up.url(), "", "").await;
    let mut client = TcpStream::connect(p.addr()).await.unwrap();
    client
        .write_all(b"GET /page HTTP/1.1\r\nhost: app.example\r\n\r\n")
        .await
        .unwrap();
    // The 103 comes while the upstream holds its final response back.
    let hints = bounded("the 103", read_until(&mut client, b"\r\n\r\n")).await;
    let hints = String::from_utf8(hints).unwrap();
    assert!(hints.starts_with("HTTP/1.1 103 Early Hints\r\n"), "{hints}");
    assert!(hints.contains("link: </style.css>; rel=preload"), "{hints}");
    up.go.notify_one();
    let head = bounded("the final head", read_until(&mut client, b"\r\n\r\n")).await;
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(
        !head.contains("link:"),
        "the 103's fields are not the final response's: {head}"
    );
    let body = bounded(
        "the body",
        read_exactly(&mut client, content_length(head.as_bytes())),
    )
    .await;
    assert_eq!(body, b"final");
    // Stored as the final response was: the hit has no 103 and no Link.
    client
        .write_all(b"GET /page HTTP/1.1\r\nhost: app.example\r\n\r\n")
        .await
        .unwrap();
    let head = bounded("the hit", read_until(&mut client, b"\r\n\r\n")).await;
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(
        head.starts_with("http/1.1 200 ok\r\n"),
        "no 1xx before a hit: {head}"
    );
    assert!(head.contains("cache-status: larder; hit"), "{head}");
    assert!(!head.contains("link:"), "{head}");
    assert_eq!(up.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_upstreams_100_continue_reaches_the_client() {
    let up = Hinting::start("HTTP/1.1 100 Continue\r\n\r\n").await;
    let p = proxy(&up.url(), "", "").await;
    let mut client = TcpStream::connect(p.addr()).await.unwrap();
    client
        .write_all(b"POST /form HTTP/1.1\r\nhost: app.example\r\ncontent-length: 3\r\n\r\nabc")
        .await
        .unwrap();
    let interim = bounded("the 100", read_until(&mut client, b"\r\n\r\n")).await;
    let interim = String::from_utf8(interim).unwrap();
    assert!(
        interim.starts_with("HTTP/1.1 100 Continue\r\n"),
        "{interim}"
    );
    up.go.notify_one();
    let head = bounded("the final head", read_until(&mut client, b"\r\n\r\n")).await;
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 200 OK\r\n"));
}

#[tokio::test]
async fn an_http_1_0_client_gets_no_1xx() {
    // RFC 9110 §15.2: a server MUST NOT send a 1xx response to an HTTP/1.0 client.
    let up = Hinting::start(EARLY_HINTS).await;
    let p = proxy(&up.url(), "", "").await;
    let mut client = TcpStream::connect(p.addr()).await.unwrap();
    client
        .write_all(b"GET /old HTTP/1.0\r\nhost: app.example\r\n\r\n")
        .await
        .unwrap();
    up.go.notify_one();
    let head = bounded("the final head", read_until(&mut client, b"\r\n\r\n")).await;
    let head = String::from_utf8(head).unwrap();
    let status = head.lines().next().unwrap();
    assert!(
        status.ends_with(" 200 OK"),
        "the final response first: {head}"
    );
}
