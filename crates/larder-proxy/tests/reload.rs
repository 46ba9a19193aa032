//! SIGHUP reloads the configuration of the real `larder` binary: routes,
//! TTLs and the upstream change for the next request, on a connection
//! that stays open across the signal; what needs a restart says so; a
//! broken file keeps the configuration in force.

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use common::binary::{free_port, serve, Serving};

/// One client connection kept open: every request goes over it.
async fn connect(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// GET over that connection: status, `Cache-Status`, body.
async fn get(sender: &mut SendRequest<Empty<Bytes>>, path: &str) -> (u16, String, String) {
    sender.ready().await.expect("the connection is still open");
    let request = http::Request::get(path)
        .header("host", "app.test")
        .body(Empty::new())
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .expect("answered on the same connection");
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get("cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, cache, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn sighup_reloads_routes_ttls_and_the_upstream_without_dropping_connections() {
    let first = common::Upstream::start().await;
    let second = common::Upstream::start().await;
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let path = std::env::temp_dir().join(format!("larder-reload-{}.toml", std::process::id()));
    let server = |upstream: &str, listen: u16| {
        format!("[server]\nupstream = \"{upstream}\"\nlisten = \"127.0.0.1:{listen}\"\n")
    };
    std::fs::write(&path, server(&first.url(), port)).unwrap();
    let serving = Serving::spawn(serve().arg("--config").arg(&path));
    serving.wait_for("larder proxy listening", 1).await;

    let mut conn = connect(addr).await;
    // No route: `/plain` has no freshness, so it is never stored.
    for _ in 0..2 {
        let (status, cache, _) = get(&mut conn, "/plain").await;
        assert_eq!(status, 200);
        assert!(!cache.contains("hit"), "{cache}");
    }
    assert_eq!(first.gets("/plain"), 2);

    // A ttl route for it, and another upstream.
    std::fs::write(
        &path,
        format!(
            "{}[[route]]\nprefix = \"/plain\"\nttl = \"1h\"\n",
            server(&second.url(), port)
        ),
    )
    .unwrap();
    serving.hangup();
    let log = serving
        .wait_for("SIGHUP: reloaded the configuration", 1)
        .await;
    assert!(log.contains("routes") && log.contains("upstream"), "{log}");
    let (_, cache, _) = get(&mut conn, "/plain").await;
    assert!(
        cache.contains("fwd=uri-miss") && cache.contains("stored"),
        "{cache}"
    );
    let (_, cache, _) = get(&mut conn, "/plain").await;
    assert!(cache.contains("hit"), "the route's ttl applies: {cache}");
    assert_eq!(second.gets("/plain"), 1, "the new upstream");
    assert_eq!(first.gets("/plain"), 2, "not the old one");

    // A file that does not parse keeps what is in force.
    std::fs::write(
        &path,
        format!("{}[[route]]\nttl = 5\n", server(&second.url(), port)),
    )
    .unwrap();
    serving.hangup();
    let log = serving
        .wait_for(
            "SIGHUP: the configuration is invalid; kept the current one",
            1,
        )
        .await;
    assert!(log.contains("line 4"), "{log}");
    let (_, cache, _) = get(&mut conn, "/plain").await;
    assert!(cache.contains("hit"), "{cache}");

    // A listener change needs a restart: the rest applies, and it says so.
    let other = free_port();
    std::fs::write(
        &path,
        format!(
            "{}[[route]]\nprefix = \"/plain\"\nbypass = true\n",
            server(&second.url(), other)
        ),
    )
    .unwrap();
    serving.hangup();
    let log = serving.wait_for("need a restart to apply", 1).await;
    let warning = log.lines().find(|l| l.contains("need a restart")).unwrap();
    assert!(
        warning.contains("WARN") && warning.contains("listen"),
        "{log}"
    );
    serving
        .wait_for("SIGHUP: reloaded the configuration", 2)
        .await;
    let (_, cache, _) = get(&mut conn, "/plain").await;
    assert!(cache.contains("fwd=bypass"), "{cache}");
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", other))
            .await
            .is_err(),
        "still on the old address"
    );

    // The same connection throughout, and a clean stop.
    let (status, _, _) = get(&mut conn, "/plain").await;
    assert_eq!(status, 200);
    drop(conn);
    let (status, log) = serving.stop().await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{log}");
    assert!(!log.contains("panicked"), "{log}");
}
