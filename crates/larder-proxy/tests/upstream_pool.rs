//! The pooled upstream connections against raw-socket upstreams that
//! close idle connections: a request on a connection the upstream has
//! just closed is sent again on a new one when that is safe (RFC 9110
//! §9.2.2), never otherwise, and idle connections are closed by the proxy
//! before the upstream would.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{proxy, send};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the raw upstream treats its connections.
#[derive(Clone, Copy)]
enum Mode {
    /// Answers a connection's first request; reads the next one and
    /// resets the connection without answering: the upstream closed it
    /// just as the proxy reused it.
    DropReused,
    /// Answers every request with keep-alive, then closes at once (a
    /// backend whose keep-alive is shorter than the proxy's).
    CloseAfterAnswer,
    /// Answers and keeps the connection until the proxy closes it.
    Keep,
}

#[derive(Default)]
struct Seen {
    /// Requests read, per method.
    gets: AtomicUsize,
    puts: AtomicUsize,
    posts: AtomicUsize,
    /// Requests read and dropped unanswered (on a reused connection).
    dropped: AtomicUsize,
    /// Connections the proxy opened, and those it closed itself.
    connections: AtomicUsize,
    closed_by_proxy: AtomicUsize,
}

/// Reads one request (head and `Content-Length` body); its method, or
/// `None` when the connection ends first.
async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<String> {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buffer.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    buffer.drain(..head_end + length);
    Some(head.split(' ').next().unwrap_or("").to_uppercase())
}

async fn raw_upstream(mode: Mode) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let seen = counts.clone();
            seen.connections.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut served = 0;
                loop {
                    let Some(method) = read_request(&mut stream, &mut buffer).await else {
                        seen.closed_by_proxy.fetch_add(1, Ordering::SeqCst);
                        return;
                    };
                    match method.as_str() {
                        "GET" => &seen.gets,
                        "PUT" => &seen.puts,
                        "POST" => &seen.posts,
                        _ => &seen.dropped,
                    }
                    .fetch_add(1, Ordering::SeqCst);
                    if matches!(mode, Mode::DropReused) && served > 0 {
                        seen.dropped.fetch_add(1, Ordering::SeqCst);
                        // A reset, as a closed socket gets for data in flight.
                        let _ = stream.set_zero_linger();
                        return;
                    }
                    let body = format!("{method} answered");
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncache-control: no-store\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                    served += 1;
                    if matches!(mode, Mode::CloseAfterAnswer) {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn idempotent_requests_on_a_connection_the_upstream_just_closed_are_sent_again() {
    let (addr, seen) = raw_upstream(Mode::DropReused).await;
    let p = proxy(&format!("http://{addr}"), "", "").await;
    let body = "x".repeat(2000);
    for n in 0..40 {
        let (method, path) = if n % 2 == 0 {
            ("GET", format!("/get/{n}"))
        } else {
            ("PUT", format!("/put/{n}"))
        };
        let sent = if method == "PUT" { body.as_str() } else { "" };
        let got = send(p.addr(), method, &path, &[], sent).await;
        assert_eq!(got.status, 200, "{method} {path}: {}", got.text());
        assert_eq!(got.text(), format!("{method} answered"));
    }
    assert!(
        seen.dropped.load(Ordering::SeqCst) > 0,
        "the proxy reused connections that the upstream then dropped"
    );
    assert_eq!(
        seen.gets.load(Ordering::SeqCst) + seen.puts.load(Ordering::SeqCst),
        40 + seen.dropped.load(Ordering::SeqCst),
        "each dropped request was sent exactly once more"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn a_post_on_a_connection_the_upstream_just_closed_is_not_sent_again_9110_9_2_2() {
    let (addr, seen) = raw_upstream(Mode::DropReused).await;
    let p = proxy(&format!("http://{addr}"), "", "").await;
    let mut failed = 0;
    for n in 0..20 {
        assert_eq!(
            send(p.addr(), "GET", &format!("/warm/{n}"), &[], "")
                .await
                .status,
            200
        );
        let got = send(p.addr(), "POST", "/order", &[], "one order").await;
        if got.status == 502 {
            failed += 1;
        } else {
            assert_eq!(got.status, 200, "{}", got.text());
        }
    }
    let posts = seen.posts.load(Ordering::SeqCst);
    assert_eq!(posts, 20, "no POST reached the upstream twice");
    assert!(failed > 0, "some POSTs went out on a reused connection");
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_closing_idle_connections_after_each_answer_gives_no_502() {
    let (addr, _seen) = raw_upstream(Mode::CloseAfterAnswer).await;
    let p = proxy(&format!("http://{addr}"), "", "").await;
    let proxy_addr = p.addr();
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            tokio::spawn(async move {
                for n in 0..50 {
                    let (method, body) = if n % 3 == 0 {
                        ("PUT", "data")
                    } else {
                        ("GET", "")
                    };
                    let got = send(proxy_addr, method, &format!("/r/{t}/{n}"), &[], body).await;
                    assert_eq!(got.status, 200, "{method} /r/{t}/{n}: {}", got.text());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    p.shutdown().await;
}

#[tokio::test]
async fn idle_upstream_connections_are_closed_by_the_proxy_first() {
    let (addr, seen) = raw_upstream(Mode::Keep).await;
    let p = proxy(
        &format!("http://{addr}"),
        "upstream_idle_timeout = \"200ms\"\n",
        "",
    )
    .await;
    assert_eq!(send(p.addr(), "GET", "/a", &[], "").await.status, 200);
    // The upstream never closes it; the proxy does once it has been idle.
    let mut closed = false;
    for _ in 0..1000 {
        if seen.closed_by_proxy.load(Ordering::SeqCst) == 1 {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        closed,
        "the idle upstream connection was closed by the proxy"
    );
    p.shutdown().await;
}
