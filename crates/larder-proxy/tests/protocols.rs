//! The protocols real traffic uses: WebSocket upgrades through the proxy
//! (a real echo upstream and client), `https://` upstreams (a test CA
//! made here with `openssl`), TLS on the listener with HTTP/2 through
//! ALPN and its certificate reloaded, h2c with prior knowledge, and one
//! cache key whatever the version.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{get, proxy, Upstream};
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};

const GUARD: Duration = Duration::from_secs(30);

// ---- A test CA and the certificates it signs, made with openssl ----

struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// A new CA in a fresh directory.
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("larder-pki-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki { dir };
        pki.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=larder test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        pki
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("openssl is installed (CI installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// A leaf for `localhost` and 127.0.0.1 named `name` (`name.pem`,
    /// `name.key`), for servers and clients alike.
    fn leaf(&self, name: &str) -> (PathBuf, PathBuf) {
        std::fs::write(
            self.path(&format!("{name}.ext")),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .unwrap();
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ]);
        (
            self.path(&format!("{name}.pem")),
            self.path(&format!("{name}.key")),
        )
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(self.path("ca.pem")).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        roots
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn chain(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn key(path: &Path) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_file(path).unwrap()
}

/// A TLS client trusting the test CA, offering `alpn`.
fn tls_client(pki: &Pki, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(pki.roots())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    pki: &Pki,
    addr: SocketAddr,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(GUARD, tls_client(pki, alpn).connect(name, tcp))
        .await
        .expect("handshake within the guard")
        .expect("the proxy's certificate is trusted")
}

/// An HTTP/2 request over `io` (TLS or h2c prior knowledge).
async fn h2_get<I>(io: I, uri: &str, headers: &[(&str, &str)]) -> Response<Bytes>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .expect("an HTTP/2 connection");
    tokio::spawn(conn);
    let mut request = Request::get(uri);
    for (n, v) in headers {
        request = request.header(*n, *v);
    }
    let response = tokio::time::timeout(
        GUARD,
        send.send_request(request.body(Empty::<Bytes>::new()).unwrap()),
    )
    .await
    .expect("answered within the guard")
    .expect("a response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Response::from_parts(parts, body)
}

/// An HTTP/1.1 request over `io`, on a connection kept for more.
type H1 = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn h1_connection<I>(io: I) -> H1
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

async fn h1_get(send: &mut H1, path: &str) -> Response<Bytes> {
    let request = Request::get(path)
        .header("host", "app.example")
        .body(Empty::new())
        .unwrap();
    let response = tokio::time::timeout(GUARD, send.send_request(request))
        .await
        .expect("answered within the guard")
        .expect("a response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Response::from_parts(parts, body)
}

fn cache_status(r: &Response<Bytes>) -> &str {
    r.headers()
        .get("cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn tls_section(cert: &Path, key: &Path) -> String {
    format!(
        "[tls]\ncertificate = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    )
}

// ---- TLS on the listener, HTTP/2, h2c ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_clients_get_http2_through_alpn_and_share_entries_with_http1_over_tls() {
    let pki = Pki::new("listener");
    let (cert, key) = pki.leaf("proxy");
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", &tls_section(&cert, &key)).await;

    let tls = tls_connect(&pki, p.addr(), &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let first = h2_get(tls, "https://App.Example/items?x=1", &[]).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.version(), Version::HTTP_2);
    assert_eq!(first.body(), "body of /items");
    assert!(cache_status(&first).contains("fwd=uri-miss"), "{first:?}");
    // The upstream got HTTP/1.1 with the authority as Host, and was told
    // the client came over TLS.
    let seen = up.last_headers("/items");
    assert_eq!(seen["host"], "app.example");
    assert_eq!(seen["x-forwarded-proto"], "https");
    assert!(
        seen["via"].to_str().unwrap().starts_with("2 larder"),
        "{seen:?}"
    );

    // HTTP/1.1 over TLS, `Host: app.example`: the same key.
    let tls = tls_connect(&pki, p.addr(), &[b"http/1.1"]).await;
    let mut h1 = h1_connection(tls).await;
    let second = h1_get(&mut h1, "/items?x=1").await;
    assert_eq!(second.version(), Version::HTTP_11);
    assert!(cache_status(&second).contains("hit"), "{second:?}");
    assert_eq!(up.gets("/items"), 1);

    // An authority and a Host that disagree: malformed (RFC 9113 §8.3.1).
    let tls = tls_connect(&pki, p.addr(), &[b"h2"]).await;
    let conflict = h2_get(
        tls,
        "https://app.example/items?x=1",
        &[("host", "evil.example")],
    )
    .await;
    assert_eq!(conflict.status(), StatusCode::BAD_REQUEST);
    p.shutdown().await;
}

#[tokio::test]
async fn h2c_with_prior_knowledge_is_keyed_as_http1_with_host() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "h2c = true\n", "").await;
    let tcp = TcpStream::connect(p.addr()).await.unwrap();
    let first = h2_get(tcp, "http://app.example/items?h2c", &[]).await;
    assert_eq!(first.version(), Version::HTTP_2);
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(up.last_headers("/items")["x-forwarded-proto"], "http");
    // HTTP/1.1 on the same listener, same URL: a hit.
    let second = common::send(p.addr(), "GET", "/items?h2c", &[], "").await;
    assert!(second.cache_status().contains("hit"), "{second:?}");
    assert_eq!(up.gets("/items"), 1);
    p.shutdown().await;

    // Without h2c, the listener speaks HTTP/1.1 only.
    let p = proxy(&up.url(), "", "").await;
    let tcp = TcpStream::connect(p.addr()).await.unwrap();
    let refused = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(tcp),
    )
    .await;
    if let Ok((mut send, conn)) = refused {
        tokio::spawn(conn);
        let request = Request::get("http://app.example/items")
            .body(Empty::new())
            .unwrap();
        assert!(tokio::time::timeout(GUARD, send.send_request(request))
            .await
            .expect("refused within the guard")
            .is_err());
    }
    p.shutdown().await;
}

#[tokio::test]
async fn the_binary_reloads_its_certificate_on_sighup_for_new_connections_only() {
    let pki = Pki::new("reload");
    let (first_cert, first_key) = pki.leaf("first");
    let (second_cert, second_key) = pki.leaf("second");
    let cert = pki.path("live.pem");
    let key = pki.path("live.key");
    std::fs::copy(&first_cert, &cert).unwrap();
    std::fs::copy(&first_key, &key).unwrap();
    let up = Upstream::start().await;
    let port = common::binary::free_port();
    let config = pki.path("larder.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nupstream = \"{}\"\nlisten = \"127.0.0.1:{port}\"\n{}",
            up.url(),
            tls_section(&cert, &key)
        ),
    )
    .unwrap();
    let mut serving =
        common::binary::Serving::spawn(common::binary::serve().arg("--config").arg(&config));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut listening = false;
    for _ in 0..1500 {
        if TcpStream::connect(addr).await.is_ok() {
            listening = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(listening, "the binary listens");
    let presented = |tls: &tokio_rustls::client::TlsStream<TcpStream>| {
        tls.get_ref().1.peer_certificates().unwrap()[0]
            .as_ref()
            .to_vec()
    };
    let first_der = chain(&first_cert)[0].as_ref().to_vec();
    let second_der = chain(&second_cert)[0].as_ref().to_vec();

    let old = tls_connect(&pki, addr, &[b"http/1.1"]).await;
    assert_eq!(presented(&old), first_der);
    let mut old = h1_connection(old).await;
    assert_eq!(h1_get(&mut old, "/items").await.status(), StatusCode::OK);

    std::fs::copy(&second_cert, &cert).unwrap();
    std::fs::copy(&second_key, &key).unwrap();
    serving.hangup();
    // The reload is asynchronous: new connections get the new
    // certificate within the bound.
    let mut renewed = false;
    for _ in 0..1500 {
        let tls = tls_connect(&pki, addr, &[b"http/1.1"]).await;
        if presented(&tls) == second_der {
            renewed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(renewed, "a new connection gets the new certificate");
    // The established connection keeps its session and keeps working.
    assert_eq!(h1_get(&mut old, "/items").await.status(), StatusCode::OK);
    // A broken file on reload keeps the current certificate.
    std::fs::write(&key, "not a key").unwrap();
    serving.hangup();
    serving
        .wait_for("kept the current TLS certificate", 1)
        .await;
    let tls = tls_connect(&pki, addr, &[b"http/1.1"]).await;
    assert_eq!(presented(&tls), second_der);
    assert!(serving.running(), "still running");
}

// ---- https:// upstreams ----

/// What the TLS upstream saw.
#[derive(Default)]
struct TlsSeen {
    server_names: Mutex<Vec<Option<String>>>,
    client_certificates: AtomicUsize,
}

/// An upstream speaking TLS with `cert`, requiring a client certificate
/// from the test CA when `client_auth`; answers `secure` (cacheable).
async fn tls_upstream(
    pki: &Pki,
    cert: &Path,
    key_file: &Path,
    client_auth: bool,
) -> (u16, Arc<TlsSeen>) {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if client_auth {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(pki.roots()),
            provider(),
        )
        .build()
        .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(chain(cert), key(key_file))
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(TlsSeen::default());
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let record = record.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let (_, session) = tls.get_ref();
                record
                    .server_names
                    .lock()
                    .unwrap()
                    .push(session.server_name().map(str::to_owned));
                if session.peer_certificates().is_some() {
                    record.client_certificates.fetch_add(1, Ordering::SeqCst);
                }
                let service = hyper::service::service_fn(|_request| async {
                    Ok::<_, std::convert::Infallible>(
                        Response::builder()
                            .header("cache-control", "max-age=60")
                            .body(Full::new(Bytes::from_static(b"secure")))
                            .unwrap(),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn an_https_upstream_is_verified_against_the_configured_ca_with_sni() {
    let pki = Pki::new("upstream");
    let (cert, key_file) = pki.leaf("upstream");
    let (port, seen) = tls_upstream(&pki, &cert, &key_file, false).await;
    let upstream = format!("https://localhost:{port}");
    let ca = format!("upstream_ca = \"{}\"\n", pki.path("ca.pem").display());
    let p = proxy(&upstream, &ca, "").await;
    let got = get(p.addr(), "/s").await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.text(), "secure");
    assert_eq!(
        seen.server_names.lock().unwrap()[0].as_deref(),
        Some("localhost"),
        "SNI is the upstream's host, not the client's Host"
    );
    p.shutdown().await;

    // Without the CA, the system's roots do not know the test CA: 502
    // (or, on a machine with no roots at all, no start).
    let text = format!("[server]\nupstream = \"{upstream}\"\nlisten = \"127.0.0.1:0\"\n");
    match larder_proxy::run(larder_proxy::Config::parse(&text, "t.toml").unwrap()).await {
        Ok(p) => {
            let got = get(p.addr(), "/s").await;
            assert_eq!(got.status, 502, "{}", got.text());
            p.shutdown().await;
        }
        Err(e) => assert!(e.to_string().contains("no system root certificates"), "{e}"),
    }
}

#[tokio::test]
async fn an_https_upstream_that_wants_a_client_certificate_gets_the_configured_one() {
    let pki = Pki::new("mtls");
    let (cert, key_file) = pki.leaf("upstream");
    let (client_cert, client_key) = pki.leaf("client");
    let (port, seen) = tls_upstream(&pki, &cert, &key_file, true).await;
    let upstream = format!("https://localhost:{port}");
    let ca = format!("upstream_ca = \"{}\"\n", pki.path("ca.pem").display());
    let with_cert = format!(
        "{ca}upstream_client_certificate = \"{}\"\nupstream_client_key = \"{}\"\n",
        client_cert.display(),
        client_key.display()
    );
    let p = proxy(&upstream, &with_cert, "").await;
    let got = get(p.addr(), "/s").await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(seen.client_certificates.load(Ordering::SeqCst), 1);
    p.shutdown().await;

    let p = proxy(&upstream, &ca, "").await;
    let got = get(p.addr(), "/s").await;
    assert_eq!(got.status, 502, "refused without a client certificate");
    p.shutdown().await;
}

#[tokio::test]
async fn unusable_tls_files_stop_the_start_with_the_file_named() {
    let up = Upstream::start().await;
    let missing = std::env::temp_dir().join("larder-no-such-cert.pem");
    let text = format!(
        "[server]\nupstream = \"{}\"\nlisten = \"127.0.0.1:0\"\n{}",
        up.url(),
        tls_section(&missing, &missing)
    );
    let err = larder_proxy::run(larder_proxy::Config::parse(&text, "t.toml").unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[tls] certificate") && err.contains("larder-no-such-cert.pem"),
        "{err}"
    );
    let text = format!(
        "[server]\nupstream = \"https://localhost:1\"\nlisten = \"127.0.0.1:0\"\nupstream_ca = \"{}\"\n",
        missing.display()
    );
    let err = larder_proxy::run(larder_proxy::Config::parse(&text, "t.toml").unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("upstream_ca"), "{err}");
}

// ---- WebSocket ----

async fn echo_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    use axum::extract::ws::WebSocketUpgrade;
    use axum::extract::State;
    let upgrades = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route(
            "/ws",
            axum::routing::get(
                |State(upgrades): State<Arc<AtomicUsize>>, ws: WebSocketUpgrade| async move {
                    upgrades.fetch_add(1, Ordering::SeqCst);
                    ws.on_upgrade(|mut socket| async move {
                        while let Some(Ok(message)) = socket.recv().await {
                            if socket.send(message).await.is_err() {
                                break;
                            }
                        }
                    })
                },
            ),
        )
        .with_state(upgrades.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, upgrades)
}

#[tokio::test]
async fn websocket_upgrades_pass_through_and_are_never_cached() {
    use tokio_tungstenite::tungstenite::Message;
    let (upstream, upgrades) = echo_upstream().await;
    let p = proxy(&format!("http://{upstream}"), "", "").await;
    for round in 0..2 {
        let (mut socket, response) = tokio::time::timeout(
            GUARD,
            tokio_tungstenite::connect_async(format!("ws://{}/ws", p.addr())),
        )
        .await
        .expect("the upgrade within the guard")
        .expect("the proxy switches protocols");
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        for text in ["hello", "through larder"] {
            socket
                .send(Message::text(format!("{text} {round}")))
                .await
                .unwrap();
            let echoed = tokio::time::timeout(GUARD, socket.next())
                .await
                .expect("the echo within the guard")
                .unwrap()
                .unwrap();
            assert_eq!(echoed, Message::text(format!("{text} {round}")));
        }
        socket.close(None).await.unwrap();
    }
    assert_eq!(
        upgrades.load(Ordering::SeqCst),
        2,
        "each upgrade reached the upstream"
    );
    p.shutdown().await;
}
