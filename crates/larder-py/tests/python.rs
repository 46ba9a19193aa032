//! The Python package, tested by `cargo test`: this builds the extension
//! into a virtualenv under the target directory (`maturin develop`) and
//! runs its pytest suite (`tests/py`), and then checks that a Python app, a
//! Rust app and the `larder` proxy share one Redis: same keys, same
//! entries, same purges.
//!
//! The virtualenv (`<target>/larder-py/venv`) is made on first use with the
//! packages of `tests/requirements.txt` from PyPI, and reused while that
//! file is unchanged. Without Python (or its `venv` module) the tests skip,
//! saying why, unless `LARDER_TEST_REQUIRE_PYTHON=1` (CI) makes that a
//! failure. `LARDER_PYTHON` names another interpreter.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use larder::store::RedisStore;
use larder::Cache;
use support::redis::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CRATE: &str = env!("CARGO_MANIFEST_DIR");

/// The virtualenv with the extension built into it, once per test binary.
struct Venv {
    python: PathBuf,
}

fn require() -> bool {
    std::env::var("LARDER_TEST_REQUIRE_PYTHON").is_ok_and(|v| v == "1")
}

/// The virtualenv, or `None` (after saying why) when Python is missing and
/// not required.
fn venv() -> Option<&'static Venv> {
    static VENV: OnceLock<Option<Venv>> = OnceLock::new();
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    VENV.get_or_init(setup).as_ref()
}

fn setup() -> Option<Venv> {
    let interpreter = std::env::var("LARDER_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let found = Command::new(&interpreter)
        .args(["-c", "import venv, ensurepip"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        let why = format!(
            "{interpreter} with the venv module is not installed (Debian: apt-get install python3-venv)"
        );
        assert!(!require(), "LARDER_TEST_REQUIRE_PYTHON=1 but {why}");
        eprintln!("skipping the Python package's tests: {why}");
        return None;
    }
    let dir = target_dir().join("larder-py");
    let venv = dir.join("venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run(
            Command::new(&interpreter).args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        );
    }
    let requirements = Path::new(CRATE).join("tests/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).expect("tests/requirements.txt");
    let stamp = venv.join("larder-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        run(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                ])
                .arg(&requirements),
            "pip install -r tests/requirements.txt",
        );
        std::fs::write(&stamp, &wanted).expect("write the requirements stamp");
    }
    // Its own target directory: the outer cargo may hold this one's lock.
    run(
        Command::new(venv.join("bin/maturin"))
            .args(["develop", "--quiet", "--target-dir"])
            .arg(dir.join("cargo"))
            .current_dir(CRATE)
            .env("VIRTUAL_ENV", &venv)
            .env("PATH", path_with(&venv.join("bin"))),
        "maturin develop",
    );
    Some(Venv { python })
}

/// The target directory this test binary was built in (`CARGO_TARGET_DIR`
/// honoured): `<target>/<profile>/deps/python-<hash>`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .expect("the test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    if let Some(path) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(paths).expect("PATH")
}

fn run(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_python_package_passes_its_pytest_suite() {
    let Some(venv) = venv() else { return };
    let out = Command::new(&venv.python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/py"])
        .current_dir(CRATE)
        .output()
        .expect("run pytest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // Exit code 5 is "no tests collected": a failure too.
    assert!(out.status.success(), "pytest failed ({})", out.status);
    assert!(stdout.contains(" passed"), "pytest ran no test");
}

/// One HTTP/1.1 exchange: status, header fields (names lowercased), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn cache_status(&self) -> &str {
        self.header("cache-status")
    }
}

async fn request(port: u16, method: &str, target: &str, host: &str) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let length = if method == "GET" {
        ""
    } else {
        "Content-Length: 0\r\n"
    };
    let head =
        format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n{length}Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("an answer within 30 s")
        .expect("read");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// The Python test app (`tests/py/apps/views.py`) under uvicorn.
struct PythonApp {
    child: Child,
    port: u16,
}

impl Drop for PythonApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn start_python_app(venv: &Venv, redis: &str, calls: &Path) -> PythonApp {
    let port = free_port();
    let child = Command::new(&venv.python)
        .args([
            "-m",
            "uvicorn",
            "views:app",
            "--app-dir",
            "tests/py/apps",
            "--host",
            "127.0.0.1",
        ])
        .args(["--port", &port.to_string(), "--log-level", "warning"])
        .current_dir(CRATE)
        .env("LARDER_TEST_REDIS", redis)
        .env("LARDER_TEST_CALLS", calls)
        .spawn()
        .expect("start uvicorn");
    let app = PythonApp { child, port };
    until(&format!("the Python app on {port}"), || async {
        TcpStream::connect(("127.0.0.1", port)).await.is_ok()
            && !request(port, "GET", "/items?t=warm-up", "warm.example")
                .await
                .cache_status()
                .contains("bypass")
    })
    .await;
    app
}

/// Waits, bounded, until `ready` holds.
async fn until<F, Fut>(what: &str, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not become ready within 30 s");
}

/// The Rust app: the same route as the Python app's `GET /items`, under
/// `#[larder::cache]` with the same namespace and tag.
#[larder::cache(ttl = "15m", namespace = "items", tags = ["items"])]
async fn rust_items() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    RUST_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        "{\"made by\":\"rust\"}",
    )
}

static RUST_CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

async fn serve(router: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_app_a_rust_app_and_the_proxy_share_one_redis() {
    let Some(venv) = tokio::task::spawn_blocking(venv).await.unwrap() else {
        return;
    };
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url();
    let calls = std::env::temp_dir().join(format!("larder-py-shared-{}.log", std::process::id()));
    std::fs::write(&calls, "").unwrap();
    let python = start_python_app(venv, &url, &calls).await;

    let store = RedisStore::builder(url.as_str())
        .connect()
        .await
        .expect("redis");
    let cache = Cache::builder().store(store).build();
    let rust = serve(
        Router::new()
            .route("/items", get(rust_items))
            .layer(cache.extension()),
    )
    .await;

    // The proxy's origin counts what reaches it: hits must not.
    let origin_hits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = origin_hits.clone();
    let origin = serve(Router::new().fallback(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { "from the origin" }
    }))
    .await;
    let config = format!(
        "[server]\nupstream = \"http://127.0.0.1:{origin}\"\nlisten = \"127.0.0.1:0\"\nredis = \"{url}\"\n\n\
         [[route]]\nprefix = \"/items\"\nnamespace = \"items\"\nttl = \"15m\"\n"
    );
    let proxy = larder_proxy::run(larder_proxy::Config::parse(&config, "inline").unwrap())
        .await
        .expect("the proxy starts");
    let proxy_port = proxy.addr().port();
    until("the proxy's Redis store", || async {
        !request(proxy_port, "GET", "/items?t=warm-up-proxy", "warm.example")
            .await
            .cache_status()
            .contains("bypass")
    })
    .await;
    origin_hits.store(0, std::sync::atomic::Ordering::SeqCst);
    let host = "shop.example";

    // Python stores; Rust and the proxy hit the same entry.
    let made = request(python.port, "GET", "/items?t=py", host).await;
    assert_eq!(made.status, 200);
    assert!(
        made.cache_status().contains("stored"),
        "{}",
        made.cache_status()
    );
    assert!(
        made.body.contains("\"items\":[\"apple\",\"pear\"]"),
        "{}",
        made.body
    );
    let from_rust = request(rust, "GET", "/items?t=py", host).await;
    assert!(
        from_rust.cache_status().starts_with("larder; hit"),
        "the Rust app did not find the Python app's entry: {}",
        from_rust.cache_status()
    );
    assert_eq!(from_rust.body, made.body);
    assert_eq!(from_rust.header("etag"), made.header("etag"));
    let from_proxy = request(proxy_port, "GET", "/items?t=py", host).await;
    assert!(
        from_proxy.cache_status().starts_with("larder; hit"),
        "{}",
        from_proxy.cache_status()
    );
    assert_eq!(from_proxy.body, made.body);
    assert_eq!(RUST_CALLS.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(origin_hits.load(std::sync::atomic::Ordering::SeqCst), 0);

    // Rust stores; Python hits it without running its view.
    let rust_made = request(rust, "GET", "/items?t=rs", host).await;
    assert!(rust_made.cache_status().contains("stored"));
    let from_python = request(python.port, "GET", "/items?t=rs", host).await;
    assert!(
        from_python.cache_status().starts_with("larder; hit"),
        "the Python app did not find the Rust app's entry: {}",
        from_python.cache_status()
    );
    assert_eq!(from_python.body, "{\"made by\":\"rust\"}");
    let python_calls = std::fs::read_to_string(&calls).unwrap();
    assert!(!python_calls.contains("items:rs"), "{python_calls}");

    // A tag purge from the Python app removes the Rust app's entry too.
    let purged = request(python.port, "POST", "/purge/tag/items", host).await;
    assert_eq!(purged.status, 200, "{}", purged.body);
    let after = request(rust, "GET", "/items?t=rs", host).await;
    assert!(
        !after.cache_status().contains("hit"),
        "{}",
        after.cache_status()
    );
    assert_eq!(RUST_CALLS.load(std::sync::atomic::Ordering::SeqCst), 2);
    proxy.shutdown().await;
    drop(python);
    let _ = std::fs::remove_file(&calls);
}
