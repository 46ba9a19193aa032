//! Starts a real `redis-server` (or a three-master Redis Cluster) on free
//! loopback ports, persistence off, for one test, and stops it afterwards.
//!
//! Without a `redis-server` binary (and without `LARDER_TEST_REDIS_URL`) the
//! helpers return `None` after printing why, so the test can skip, unless
//! `LARDER_TEST_REQUIRE_REDIS=1` makes that a failure (CI sets it).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One `redis-server` process, killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
    external: Option<String>,
}

fn require() -> bool {
    std::env::var("LARDER_TEST_REQUIRE_REDIS").is_ok_and(|v| v == "1")
}

fn skip(why: &str) -> Option<RedisServer> {
    assert!(!require(), "LARDER_TEST_REQUIRE_REDIS=1 but {why}");
    eprintln!("skipping: {why} (install redis-server or set LARDER_TEST_REDIS_URL)");
    None
}

fn have(binary: &str) -> bool {
    Command::new(binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A port that is free now, and whose cluster bus port (+10000) is too.
pub fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    // Bounded: a server that never comes up fails the test, it does not hang it.
    for _ in 0..500 {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not become ready");
}

fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

impl RedisServer {
    /// Starts a standalone server, or returns `None` (after printing why)
    /// when Redis is not available and not required.
    pub fn start() -> Option<RedisServer> {
        if let Ok(url) = std::env::var("LARDER_TEST_REDIS_URL") {
            return Some(RedisServer {
                port: 0,
                child: None,
                dir: PathBuf::new(),
                external: Some(url),
            });
        }
        if !have("redis-server") {
            return skip("no redis-server binary on PATH");
        }
        Some(Self::spawn(free_port(), &[]))
    }

    fn spawn(port: u16, extra: &[&str]) -> RedisServer {
        let dir = std::env::temp_dir().join(format!("larder-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = RedisServer {
            port,
            child: None,
            dir,
            external: None,
        };
        server.launch(extra);
        server
    }

    /// Starts a server that speaks only TLS, with a self-signed certificate
    /// made for it (clients must not verify: `rediss://…/#insecure`).
    pub fn start_tls() -> Option<RedisServer> {
        if !have("redis-server") {
            return skip("no redis-server binary on PATH");
        }
        if Command::new("openssl").arg("version").output().is_err() {
            return skip("no openssl binary to make a test certificate");
        }
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("larder-redis-tls-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let made = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(made.success(), "openssl could not make a test certificate");
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--tls-auth-clients",
                "no",
            ])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&cert)
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        wait_until("redis-server (TLS)", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Some(RedisServer {
            port,
            child: Some(child),
            dir,
            external: Some(format!("rediss://127.0.0.1:{port}/#insecure")),
        })
    }

    fn launch(&mut self, extra: &[&str]) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let port = self.port;
        wait_until("redis-server", || {
            cli(port, &["PING"]).is_some_and(|o| o.contains("PONG"))
        });
    }

    pub fn url(&self) -> String {
        match &self.external {
            Some(url) => url.clone(),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    fn signal(&self, sig: &str) {
        let pid = self
            .child
            .as_ref()
            .expect("a server this helper started")
            .id();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Kills the server; `restart` brings it back on the same port, empty.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.launch(&[]);
    }

    /// Runs a redis-cli command against this server.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        cli(self.port, args)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_ref() {
            // A paused server cannot die of SIGKILL until it is continued? It
            // can; but continue it anyway so it exits cleanly if signals race.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A three-master Redis Cluster, torn down on drop.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> Option<RedisCluster> {
        if !have("redis-server") || !have("redis-cli") {
            skip("no redis-server/redis-cli binary on PATH")?;
        }
        // A free port can be taken between its probe and the server's bind
        // (other tests start servers too): a failed creation is tried again
        // on new ports, a bounded number of times.
        for _ in 0..2 {
            if let Some(cluster) = Self::create() {
                return Some(cluster);
            }
        }
        Some(Self::create().expect("redis-cli --cluster create failed three times"))
    }

    fn create() -> Option<RedisCluster> {
        let config = |port: u16| format!("nodes-{port}.conf");
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let file = config(port);
            nodes.push(RedisServer::spawn(
                port,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &file,
                    "--cluster-node-timeout",
                    "2000",
                ],
            ));
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let status = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli runs");
        if !status.success() {
            return None; // the nodes are dropped, so stopped
        }
        for node in &nodes {
            wait_until("cluster state ok", || {
                node.cli(&["CLUSTER", "INFO"])
                    .is_some_and(|o| o.contains("cluster_state:ok"))
            });
        }
        Some(RedisCluster { nodes })
    }

    /// The node URLs, comma-separated after a `redis+cluster://` scheme
    /// (the form `RedisStore` accepts).
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }
}
