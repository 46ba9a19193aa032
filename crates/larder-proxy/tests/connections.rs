//! Client connections: the connection limit and its reserve, accept
//! errors under a low open-file limit (the real binary, its limit lowered
//! before it starts), the per-connection request limit, and stopping with
//! and without requests in flight.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{get, proxy, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads one response with a `Content-Length` body off `stream`: its head
/// (lowercased) and body. `None` when the connection ends first.
async fn read_response(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while bytes.len() < head_end + length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&buf[..n]);
    }
    Some((head, bytes[head_end..head_end + length].to_vec()))
}

/// Whether the peer closed `stream` (EOF or reset) within `bound`.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(bound, stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_closes_the_oldest_instead_of_starving_clients() {
    let up = Upstream::start().await;
    // The header read timeout (30 s) is far above every wait below: only
    // the connection limit can close the idle connections in time.
    let p = proxy(&up.url(), "max_connections = 16\n", "").await;
    let mut idle = Vec::new();
    for i in 0..64 {
        // A keep-alive client that never sends anything.
        idle.push(TcpStream::connect(p.addr()).await.unwrap());
        if i % 8 == 7 {
            let got = get(p.addr(), &format!("/during?n={i}")).await;
            assert_eq!(
                got.status, 200,
                "a normal client is served during the flood"
            );
        }
    }
    for n in 0..5 {
        let got = get(p.addr(), &format!("/after?n={n}")).await;
        assert_eq!(got.status, 200);
    }
    // The proxy made room by closing the oldest: all but the newest
    // sixteen (the limit) at most are closed, well before their header
    // read timeout.
    let checks = idle
        .iter_mut()
        .map(|s| closed_within(s, Duration::from_secs(15)));
    let closed = futures_util::future::join_all(checks)
        .await
        .into_iter()
        .filter(|c| *c)
        .count();
    assert!(
        closed >= 64 - 16,
        "only {closed} of 64 idle connections closed"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn a_connection_is_closed_after_its_last_allowed_request() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "max_requests_per_connection = 3\n", "").await;
    let mut stream = TcpStream::connect(p.addr()).await.unwrap();
    for n in 1..=3 {
        stream
            .write_all(b"GET /items HTTP/1.1\r\nhost: app.example\r\n\r\n")
            .await
            .unwrap();
        let (head, body) =
            tokio::time::timeout(Duration::from_secs(30), read_response(&mut stream))
                .await
                .expect("answered within the bound")
                .expect("a whole response");
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert_eq!(body, b"body of /items");
        assert_eq!(
            head.contains("connection: close"),
            n == 3,
            "request {n}: {head}"
        );
    }
    assert!(
        closed_within(&mut stream, Duration::from_secs(30)).await,
        "the proxy closes the connection after the third response"
    );
    // Unlimited with 0.
    let p0 = proxy(&up.url(), "max_requests_per_connection = 0\n", "").await;
    let mut stream = TcpStream::connect(p0.addr()).await.unwrap();
    for _ in 0..5 {
        stream
            .write_all(b"GET /items HTTP/1.1\r\nhost: app.example\r\n\r\n")
            .await
            .unwrap();
        let (head, _) = read_response(&mut stream).await.unwrap();
        assert!(!head.contains("connection: close"), "{head}");
    }
    p.shutdown().await;
    p0.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_connections_at_once_and_waits_for_requests_in_flight() {
    let up = Upstream::start().await;
    // A grace and a header timeout far longer than any wait below: only
    // requests in flight may hold the shutdown, not a head half sent.
    let p = proxy(
        &up.url(),
        "shutdown_timeout = \"10m\"\nclient_header_timeout = \"10m\"\n",
        "",
    )
    .await;
    // Idle keep-alive after a request, silent, and halfway through a head.
    let mut kept = TcpStream::connect(p.addr()).await.unwrap();
    kept.write_all(b"GET /items HTTP/1.1\r\nhost: app.example\r\n\r\n")
        .await
        .unwrap();
    read_response(&mut kept).await.unwrap();
    let mut silent = TcpStream::connect(p.addr()).await.unwrap();
    let mut partial = TcpStream::connect(p.addr()).await.unwrap();
    partial
        .write_all(b"GET /items HTTP/1.1\r\nho")
        .await
        .unwrap();
    // A request on a later connection, answered: by then the half head's
    // connection task has run and read it, and hyper's graceful close
    // alone would wait for the rest of that head (client_header_timeout).
    let mut probe = TcpStream::connect(p.addr()).await.unwrap();
    probe
        .write_all(b"GET /items HTTP/1.1\r\nhost: app.example\r\n\r\n")
        .await
        .unwrap();
    read_response(&mut probe).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), p.shutdown())
        .await
        .expect("nothing in flight: the shutdown does not wait for the grace");
    for s in [&mut kept, &mut silent, &mut partial, &mut probe] {
        assert!(closed_within(s, Duration::from_secs(30)).await);
    }

    // With a request in flight (the upstream takes 1.5 s), the shutdown
    // waits for its answer.
    let p = proxy(&up.url(), "shutdown_timeout = \"10m\"\n", "").await;
    let addr: SocketAddr = p.addr();
    let slow = tokio::spawn(async move { get(addr, "/slow").await });
    for _ in 0..1500 {
        if up.gets("/slow") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(up.gets("/slow"), 1, "the request reached the upstream");
    tokio::time::timeout(Duration::from_secs(60), p.shutdown())
        .await
        .expect("the shutdown ends once the request is answered");
    let got = slow.await.unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.text(), "slow");
}

/// The real binary with its open-file limit (soft and hard) lowered to
/// `nofile` before it starts, as `ulimit -n` would; its log lines are
/// collected as they come.
struct Binary {
    child: tokio::process::Child,
    addr: SocketAddr,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Binary {
    async fn start(nofile: u64, config: &str) -> Binary {
        use tokio::io::AsyncBufReadExt;
        let path = std::env::temp_dir().join(format!(
            "larder-conn-{}-{nofile}-{}.toml",
            std::process::id(),
            config.len()
        ));
        std::fs::write(&path, config).unwrap();
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_larder"));
        command
            .args(["serve", "--config"])
            .arg(&path)
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        // SAFETY: setrlimit is async-signal-safe; nothing else runs here.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: nofile as libc::rlim_t,
                    rlim_max: nofile as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().unwrap();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                log.lock().unwrap().push_str(&format!("{line}\n"));
                if let Some(rest) = line.split("addr=").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap();
                    return addr.parse::<SocketAddr>().unwrap();
                }
            }
            panic!("the binary ended before listening: {}", log.lock().unwrap());
        })
        .await
        .expect("the binary starts within the guard");
        let collected = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                collected.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Binary { child, addr, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// Opens `flood` idle connections to `binary`, and every tenth one sends
/// a normal request, which must be answered 200 within the bound.
async fn flood_and_serve(binary: &Binary, flood: usize, path: impl Fn(usize) -> String) -> usize {
    let mut idle = Vec::new();
    let mut served = 0;
    for i in 0..flood {
        match TcpStream::connect(binary.addr).await {
            Ok(s) => idle.push(s),
            // The backlog is full while the proxy is at its limit: the
            // flood's own attempt fails, not the normal clients'.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
        if i % 10 == 9 {
            let got = get(binary.addr, &path(i)).await;
            assert_eq!(
                got.status,
                200,
                "request during the flood ({i} idle connections): {}\n{}",
                got.text(),
                binary.log()
            );
            served += 1;
        }
    }
    served
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_low_open_file_limit_idle_connections_beyond_it_never_starve_clients() {
    let up = Upstream::start().await;
    // 128 descriptors: the default limit is (128 - 64) / 2 = 32 clients.
    let binary = Binary::start(
        128,
        &format!(
            "[server]\nupstream = \"{}\"\nlisten = \"127.0.0.1:0\"\n",
            up.url()
        ),
    )
    .await;
    assert!(
        binary.log().contains("max_connections=32"),
        "{}",
        binary.log()
    );
    // More idle connections than the process has descriptors; misses, so
    // each normal request also needs an upstream connection.
    let served = flood_and_serve(&binary, 300, |i| format!("/miss?n={i}")).await;
    assert_eq!(served, 30);
    let log = binary.log();
    assert!(!log.contains("accept failed"), "{log}");
    drop(binary.child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_accept_loop_backs_off_closes_the_oldest_and_logs_rarely() {
    let up = Upstream::start().await;
    // A limit set above what the descriptors allow: accept fails with
    // EMFILE, and the proxy must neither spin nor log per attempt.
    let binary = Binary::start(
        96,
        &format!(
            "[server]\nupstream = \"{}\"\nlisten = \"127.0.0.1:0\"\nmax_connections = 5000\n",
            up.url()
        ),
    )
    .await;
    // Stored before the flood: hits need no upstream descriptor.
    assert_eq!(get(binary.addr, "/items").await.status, 200);
    let started = std::time::Instant::now();
    let served = flood_and_serve(&binary, 300, |_| "/items".to_owned()).await;
    assert_eq!(served, 30);
    let log = binary.log();
    let lines = log.matches("accept failed").count();
    assert!(
        lines >= 1,
        "the flood ran the process out of descriptors: {log}"
    );
    // At most one line per 5 s (plus the first).
    let bound = started.elapsed().as_secs() / 5 + 2;
    assert!(
        lines as u64 <= bound,
        "{lines} accept-failure lines in {:?}: {log}",
        started.elapsed()
    );
    drop(binary.child);
}

#[tokio::test]
async fn sigterm_with_idle_connections_exits_at_once() {
    let up = Upstream::start().await;
    let mut binary = Binary::start(
        1024,
        &format!(
            "[server]\nupstream = \"{}\"\nlisten = \"127.0.0.1:0\"\nshutdown_timeout = \"10m\"\n",
            up.url()
        ),
    )
    .await;
    let mut kept = TcpStream::connect(binary.addr).await.unwrap();
    kept.write_all(b"GET /items HTTP/1.1\r\nhost: app.example\r\n\r\n")
        .await
        .unwrap();
    read_response(&mut kept).await.unwrap();
    let _silent = TcpStream::connect(binary.addr).await.unwrap();
    let pid = binary.child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(Duration::from_secs(60), binary.child.wait())
        .await
        .expect("exits long before the 10-minute grace")
        .unwrap();
    assert!(status.success(), "{status:?}");
}
