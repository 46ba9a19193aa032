//! The README's first command, run for real: the quickstart example's
//! binary (built by `cargo test` with the tests), over TCP.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/examples/quickstart`, beside this test's `deps/`.
fn quickstart() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join("quickstart");
    assert!(path.exists(), "cargo test builds examples: {path:?}");
    path
}

fn free_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// One HTTP/1.1 exchange on a fresh connection: (status line, body).
fn exchange(addr: &str, method: &str, path: &str) -> std::io::Result<(String, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status = head.lines().next().unwrap_or("").to_owned();
    Ok((status, body.to_owned()))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(addr: &str) -> Server {
    let child = Command::new(quickstart())
        .env("LARDER_QUICKSTART_ADDR", addr)
        .env_remove("LARDER_REDIS_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    // A hang guard, not a timing assertion.
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the quickstart never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

#[test]
fn stats_answer_json_and_a_handler_purges_by_tag() {
    let addr = free_addr();
    let _server = start(&addr);
    exchange(&addr, "GET", "/items").unwrap();
    exchange(&addr, "GET", "/items").unwrap();
    let (status, body) = exchange(&addr, "GET", "/stats").unwrap();
    assert!(status.contains("200"), "{status}");
    let stats: serde_json::Value = serde_json::from_str(body.trim()).expect("JSON");
    assert_eq!(stats["misses"], 1, "{stats}");
    assert_eq!(stats["hits"], 1, "{stats}");
    assert_eq!(stats["hit_ratio"], 0.5, "{stats}");
    let (_, purged) = exchange(&addr, "POST", "/purge").unwrap();
    assert!(purged.contains("purged 1"), "{purged}");
    let (_, body) = exchange(&addr, "GET", "/stats").unwrap();
    let stats: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    exchange(&addr, "GET", "/items").unwrap();
    let (_, after) = exchange(&addr, "GET", "/stats").unwrap();
    let after: serde_json::Value = serde_json::from_str(after.trim()).unwrap();
    assert_eq!(
        after["misses"],
        stats["misses"].as_u64().unwrap() + 1,
        "purged: a miss again"
    );
}

#[test]
fn a_taken_port_exits_with_a_hint_not_a_panic() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(quickstart())
        .env("LARDER_QUICKSTART_ADDR", &addr)
        .env_remove("LARDER_REDIS_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");
    assert!(stderr.contains("LARDER_QUICKSTART_ADDR"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
