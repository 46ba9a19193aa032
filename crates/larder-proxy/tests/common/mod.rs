//! The end-to-end harness: a real upstream (an axum app on a free port)
//! that counts what reaches it, the proxy in-process on a free port, and a
//! hyper client that talks real HTTP to it.
#![allow(dead_code)]

pub mod binary;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use larder_proxy::{Config, Running};

/// Size of the streamed body `/big` sends: 50 MiB.
pub const BIG: usize = 50 << 20;
pub const LAST_MODIFIED: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

/// What reached the upstream.
#[derive(Default)]
pub struct Seen {
    /// Requests per "METHOD /path".
    pub calls: HashMap<String, usize>,
    /// 304s the upstream answered, per path.
    pub not_modified: HashMap<String, usize>,
    /// The headers of the last request per path.
    pub headers: HashMap<String, HeaderMap>,
    /// The body length of the last request per path.
    pub body_len: HashMap<String, usize>,
}

#[derive(Clone, Default)]
pub struct Upstream {
    pub addr: Option<SocketAddr>,
    seen: Arc<Mutex<Seen>>,
}

impl Upstream {
    /// Starts the upstream app on a free loopback port.
    pub async fn start() -> Upstream {
        let (listener, upstream, app) = Upstream::bind().await;
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        upstream
    }

    /// Starts the upstream app; sending on the returned channel stops it
    /// (idle connections close, new ones are refused).
    pub async fn start_stoppable() -> (Upstream, tokio::sync::oneshot::Sender<()>) {
        let (listener, upstream, app) = Upstream::bind().await;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap()
        });
        (upstream, stop)
    }

    /// A free loopback port, the upstream that will listen on it, and its app.
    async fn bind() -> (tokio::net::TcpListener, Upstream, axum::Router) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = Upstream {
            addr: Some(listener.local_addr().unwrap()),
            ..Upstream::default()
        };
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(upstream.clone());
        (listener, upstream, app)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr.unwrap())
    }

    /// How many `method path` requests reached the upstream.
    pub fn calls(&self, method: &str, path: &str) -> usize {
        let seen = self.seen.lock().unwrap();
        seen.calls
            .get(&format!("{method} {path}"))
            .copied()
            .unwrap_or(0)
    }

    pub fn gets(&self, path: &str) -> usize {
        self.calls("GET", path)
    }

    pub fn not_modified(&self, path: &str) -> usize {
        let seen = self.seen.lock().unwrap();
        seen.not_modified.get(path).copied().unwrap_or(0)
    }

    pub fn last_headers(&self, path: &str) -> HeaderMap {
        self.seen.lock().unwrap().headers[path].clone()
    }

    pub fn last_body_len(&self, path: &str) -> usize {
        self.seen.lock().unwrap().body_len[path]
    }
}

fn respond(status: StatusCode, headers: &[(&str, &str)], body: impl Into<Body>) -> Response {
    let mut b = Response::builder().status(status);
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(body.into()).unwrap()
}

/// The upstream's behaviour, by path.
async fn handle(State(up): State<Upstream>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    {
        let mut seen = up.seen.lock().unwrap();
        *seen
            .calls
            .entry(format!("{} {path}", parts.method))
            .or_default() += 1;
        seen.headers.insert(path.clone(), parts.headers.clone());
        seen.body_len.insert(path.clone(), body.len());
    }
    let h = &parts.headers;
    let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return respond(
            StatusCode::OK,
            &[],
            format!("{} {path} body={}", parts.method, body.len()),
        );
    }
    let cacheable: &[(&str, &str)] = &[("cache-control", "public, max-age=60")];
    if path.starts_with("/app") || path.starts_with("/prefixed") || path.starts_with("/keyed") {
        return proxy_fixed(&parts).await;
    }
    match path.as_str() {
        "/plain" => respond(StatusCode::OK, &[], "no freshness"),
        "/swr" => {
            let n = up.seen.lock().unwrap().calls["GET /swr"];
            // Only the first version is short-lived: a refreshed one stays
            // fresh however slowly the test polls for it.
            let cache_control = if n == 1 {
                "max-age=1, stale-while-revalidate=60"
            } else {
                "max-age=3600, stale-while-revalidate=60"
            };
            respond(
                StatusCode::OK,
                &[("cache-control", cache_control)],
                format!("version {n}"),
            )
        }
        "/links" => {
            // An origin that builds its links from Host, as most do.
            let host = String::from_utf8_lossy(h.get("host").map_or(&b""[..], |v| v.as_bytes()))
                .into_owned();
            respond(
                StatusCode::OK,
                cacheable,
                format!("<script src=\"//{host}/app.js\"></script>"),
            )
        }
        "/short" => respond(
            StatusCode::OK,
            &[("cache-control", "max-age=1")],
            "short-lived",
        ),
        "/private" => respond(
            StatusCode::OK,
            &[("cache-control", "private, max-age=60")],
            "mine",
        ),
        "/no-store" => respond(StatusCode::OK, &[("cache-control", "no-store")], "never"),
        "/set-cookie" => respond(
            StatusCode::OK,
            &[
                ("cache-control", "max-age=60"),
                ("set-cookie", "session=abc"),
            ],
            "with cookie",
        ),
        "/auth" => respond(
            StatusCode::OK,
            &[("cache-control", "max-age=60")],
            header("authorization").to_owned(),
        ),
        "/vary" => respond(
            StatusCode::OK,
            &[("cache-control", "max-age=60"), ("vary", "accept-language")],
            format!("lang={}", header("accept-language")),
        ),
        "/etag" => {
            let refreshed = [
                ("cache-control", "max-age=60"),
                ("etag", "\"v1\""),
                ("x-version", "2"),
            ];
            if header("if-none-match").contains("\"v1\"") {
                *up.seen
                    .lock()
                    .unwrap()
                    .not_modified
                    .entry(path)
                    .or_default() += 1;
                return respond(StatusCode::NOT_MODIFIED, &refreshed, Body::empty());
            }
            respond(
                StatusCode::OK,
                &[
                    ("cache-control", "max-age=1"),
                    ("etag", "\"v1\""),
                    ("x-version", "1"),
                ],
                "etag body",
            )
        }
        "/last-modified" => {
            if header("if-modified-since") == LAST_MODIFIED {
                *up.seen
                    .lock()
                    .unwrap()
                    .not_modified
                    .entry(path)
                    .or_default() += 1;
                return respond(
                    StatusCode::NOT_MODIFIED,
                    &[
                        ("cache-control", "max-age=60"),
                        ("last-modified", LAST_MODIFIED),
                    ],
                    Body::empty(),
                );
            }
            respond(
                StatusCode::OK,
                &[
                    ("cache-control", "max-age=1"),
                    ("last-modified", LAST_MODIFIED),
                ],
                "dated body",
            )
        }
        "/big" => {
            // 50 MiB in 64 KiB chunks, without Content-Length: it streams.
            let chunks = (0..BIG / 65_536)
                .map(|i| Ok::<_, std::io::Error>(Bytes::from(vec![(i % 251) as u8; 65_536])));
            let stream = futures_util::stream::iter(chunks);
            respond(StatusCode::OK, cacheable, Body::from_stream(stream))
        }
        "/tagged" => respond(
            StatusCode::OK,
            &[
                ("cache-control", "max-age=60"),
                ("surrogate-key", "product-1 catalog"),
                ("cache-tag", "eu, summer"),
            ],
            "tagged",
        ),
        "/targeted" => respond(
            StatusCode::OK,
            &[
                ("cache-control", "no-store"),
                ("larder-cache-control", "max-age=60"),
                ("cdn-cache-control", "max-age=5"),
            ],
            "targeted",
        ),
        "/targeted-invalid" => respond(
            StatusCode::OK,
            &[
                ("cache-control", "no-store"),
                ("larder-cache-control", "max-age=sixty"),
            ],
            "invalid target",
        ),
        "/surrogate" => respond(
            StatusCode::OK,
            &[
                ("cache-control", "no-cache"),
                ("surrogate-control", "max-age=60"),
            ],
            "surrogate",
        ),
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            respond(StatusCode::OK, cacheable, "slow")
        }
        "/hop" => respond(
            StatusCode::OK,
            &[
                ("connection", "x-hop"),
                ("x-hop", "1"),
                ("x-end", "1"),
                ("cache-control", "max-age=60"),
            ],
            "hop",
        ),
        _ => respond(StatusCode::OK, cacheable, format!("body of {path}")),
    }
}

/// A Flask app behind werkzeug's `ProxyFix(x_for=1, x_proto=1, x_host=1,
/// x_port=1, x_prefix=1)`, as far as what reaches it goes: it reads the
/// request's fields the way WSGI hands them over (`HTTP_` + the name in
/// upper case with `-` as `_`, so `X_Forwarded_Host` and
/// `X-Forwarded-Host` are one variable), takes its host, scheme and
/// prefix from the forwarding fields, and renders links with them. It also
/// reflects every other field the way apps that trust them would.
async fn proxy_fixed(parts: &http::request::Parts) -> Response {
    let mut environ: std::collections::BTreeMap<String, String> = Default::default();
    for (name, value) in &parts.headers {
        let key = format!(
            "HTTP_{}",
            name.as_str().to_ascii_uppercase().replace('-', "_")
        );
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        // The last of a folded list, as ProxyFix takes with x_*=1.
        let last = value.rsplit(',').next().unwrap_or("").trim().to_owned();
        environ.insert(key, last);
    }
    let var = |k: &str| environ.get(k).cloned().unwrap_or_default();
    let host = Some(var("HTTP_X_FORWARDED_HOST"))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| var("HTTP_HOST"));
    let scheme = Some(var("HTTP_X_FORWARDED_PROTO"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "http".to_owned());
    let prefix = var("HTTP_X_FORWARDED_PREFIX");
    let mut page = format!(
        "<script src=\"{prefix}/static/app.js\"></script>\n<a href=\"{scheme}://{host}/next\">next</a>\n"
    );
    for (key, value) in &environ {
        page.push_str(&format!("{key}={value}\n"));
    }
    respond(
        StatusCode::OK,
        &[("cache-control", "public, max-age=60")],
        page,
    )
}

/// Starts the proxy in front of `upstream` on a free port; `extra` is more
/// TOML after the `[server]` lines (`[cache]`, `[[route]]`, `[admin]`).
pub async fn proxy(upstream: &str, server_extra: &str, extra: &str) -> Running {
    let text = format!(
        "[server]\nupstream = \"{upstream}\"\nlisten = \"127.0.0.1:0\"\n{server_extra}\n{extra}"
    );
    let config = Config::parse(&text, "test.toml").expect("a valid test config");
    larder_proxy::run(config).await.expect("the proxy starts")
}

/// A response as the client saw it.
#[derive(Debug)]
pub struct Got {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn cache_status(&self) -> &str {
        self.header("cache-status").unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive HTTP/1.1 client.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends one request; every request is bounded so a hang fails the test.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Got {
    let mut b = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        b = b.header("host", "app.example");
    }
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    let request = b.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(30), client().request(request))
        .await
        .expect("the proxy answers within 30 s")
        .expect("the request reaches the proxy");
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .expect("the body arrives whole")
        .to_bytes();
    Got {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Sends `request` as written over a fresh connection (for what a
/// well-behaved client would not send: absolute-form targets, HTTP/1.0
/// without Host) and reads the response to the connection's end; the
/// request should say `Connection: close`.
pub async fn raw(addr: SocketAddr, request: &str) -> Got {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await.unwrap();
        bytes
    };
    let bytes = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .expect("the proxy answers within 30 s");
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a whole response head");
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        headers.append(
            http::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            http::HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    let body = Bytes::copy_from_slice(&bytes[split + 4..]);
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    Got {
        status: StatusCode::from_u16(status).unwrap(),
        headers,
        body: if chunked { dechunk(&body) } else { body },
    }
}

fn dechunk(mut body: &[u8]) -> Bytes {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + size]);
        body = &body[eol + 2 + size + 2..];
    }
    Bytes::from(out)
}

pub async fn get(addr: SocketAddr, path: &str) -> Got {
    send(addr, "GET", path, &[], "").await
}
