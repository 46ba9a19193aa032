//! The real `larder` binary: configuration errors stop the start with the
//! line and the reason, and `larder purge` talks to the admin listener.

mod common;

use std::process::Command;

fn larder() -> Command {
    Command::new(env!("CARGO_BIN_EXE_larder"))
}

fn config_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("larder-test-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn an_invalid_config_stops_the_start_with_its_line_and_reason() {
    let path = config_file(
        "bad",
        "[server]\nupstream = \"http://127.0.0.1:8000\"\n\n[[route]]\nprefix = \"/api/\"\nttl = \"ten minutes\"\n",
    );
    let out = larder()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "exits non-zero, without a panic"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 6, column 7"), "{stderr}");
    assert!(
        stderr.contains("\"ten minutes\" is not a duration"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_unknown_key_is_named() {
    let path = config_file(
        "unknown",
        "[server]\nupstream = \"http://127.0.0.1:8000\"\nlisten_on = \"x\"\n",
    );
    let out = larder()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 3") && stderr.contains("unknown field `listen_on`"),
        "{stderr}"
    );
}

#[test]
fn a_missing_upstream_says_how_to_give_one() {
    let out = larder().args(["serve"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--upstream"));
    let out = larder()
        .args(["serve", "--upstream", "localhost:8000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http://"));
}

#[test]
fn a_listen_address_in_use_fails_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = larder()
        .args([
            "serve",
            "--upstream",
            "http://127.0.0.1:9",
            "--listen",
            &addr,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen"));
}

#[tokio::test]
async fn larder_purge_calls_the_admin_listener() {
    let up = common::Upstream::start().await;
    let token = "purge-cli-token-0123456789";
    let p = common::proxy(
        &up.url(),
        "",
        &format!("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{token}\"\n"),
    )
    .await;
    common::get(p.addr(), "/tagged").await;
    let admin = format!("http://{}", p.admin_addr().unwrap());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_larder"))
        .args(["purge", "--admin", &admin, "tag", "product-1"])
        .env("LARDER_ADMIN_TOKEN", token)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"uris\":1"));
    assert!(!common::get(p.addr(), "/tagged")
        .await
        .cache_status()
        .contains("hit"));
    let wrong = tokio::process::Command::new(env!("CARGO_BIN_EXE_larder"))
        .args(["purge", "--admin", &admin, "tag", "product-1"])
        .env("LARDER_ADMIN_TOKEN", "not-the-token")
        .output()
        .await
        .unwrap();
    assert!(!wrong.status.success());
}

#[tokio::test]
async fn sigterm_stops_the_binary_cleanly_and_the_access_log_says_what_the_cache_did() {
    let up = common::Upstream::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = config_file(
        "access",
        &format!(
            "[server]\nupstream = \"{}\"\nlisten = \"127.0.0.1:{port}\"\naccess_log = true\n",
            up.url()
        ),
    );
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_larder"))
        .args(["serve", "--config"])
        .arg(&path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // Bounded wait for the listener.
    let mut up_yet = false;
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            up_yet = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(up_yet, "the binary listens");
    common::get(addr, "/items").await;
    assert!(common::get(addr, "/items")
        .await
        .cache_status()
        .contains("hit"));
    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("exits well within the guard")
        .unwrap();
    assert!(
        out.status.success(),
        "SIGTERM is a clean stop: {:?}",
        out.status
    );
    let log = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("larder::access"))
        .collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(
        lines[0].contains("fwd=uri-miss") && lines[0].contains("target=/items"),
        "{log}"
    );
    assert!(lines[1].contains("cache=\"larder; hit"), "{log}");
    assert!(log.contains("shutting down"), "{log}");
}

#[tokio::test]
async fn an_admin_listener_off_loopback_is_warned_about_at_startup() {
    use tokio::io::AsyncBufReadExt;
    let start = |admin: &str| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_larder"))
            .args(["serve", "--upstream", "http://127.0.0.1:9"])
            .args(["--listen", "127.0.0.1:0", "--admin-listen", admin])
            .env("LARDER_ADMIN_TOKEN", "startup-warning-token-0123")
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    // What the binary logs up to the line that says it listens.
    async fn until_listening(child: &mut tokio::process::Child) -> String {
        let stderr = child.stderr.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let mut log = String::new();
        let read = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                log.push_str(&line);
                log.push('\n');
                if line.contains("larder proxy listening") {
                    break;
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), read)
            .await
            .expect("the binary starts within the guard");
        log
    }
    let mut open = start("0.0.0.0:0");
    let log = until_listening(&mut open).await;
    assert!(
        log.contains("WARN") && log.contains("not on a loopback address"),
        "{log}"
    );
    open.kill().await.unwrap();
    let mut local = start("127.0.0.1:0");
    let log = until_listening(&mut local).await;
    assert!(!log.contains("loopback"), "{log}");
    local.kill().await.unwrap();
}
