//! The proxy end to end: a real upstream, the proxy on a free port, real
//! HTTP between them.

mod common;

use std::time::Duration;

use common::{get, proxy, send, Upstream, BIG};

#[tokio::test]
async fn a_cacheable_response_is_fetched_once_then_served_from_cache() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    let first = get(p.addr(), "/items").await;
    assert_eq!(first.status, 200);
    assert!(
        first.cache_status().contains("fwd=uri-miss"),
        "{}",
        first.cache_status()
    );
    assert!(
        first.cache_status().contains("stored"),
        "{}",
        first.cache_status()
    );
    let second = get(p.addr(), "/items").await;
    assert_eq!(second.text(), "body of /items");
    assert!(
        second.cache_status().starts_with("larder; hit"),
        "{}",
        second.cache_status()
    );
    assert!(
        second.header("age").is_some(),
        "hits carry Age (RFC 9111 §5.1)"
    );
    assert_eq!(up.gets("/items"), 1);
    p.shutdown().await;
}

#[tokio::test]
async fn nothing_without_explicit_freshness_is_stored_by_default() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    get(p.addr(), "/plain").await;
    get(p.addr(), "/plain").await;
    assert_eq!(up.gets("/plain"), 2);
}

#[tokio::test]
async fn private_no_store_and_set_cookie_responses_are_not_shared() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    for path in ["/private", "/no-store", "/set-cookie"] {
        let first = get(p.addr(), path).await;
        let second = get(p.addr(), path).await;
        assert_eq!(second.status, 200);
        assert_eq!(up.gets(path), 2, "{path} reached the upstream each time");
        assert!(
            !second.cache_status().contains("hit"),
            "{path}: {}",
            second.cache_status()
        );
        if path == "/set-cookie" {
            assert_eq!(
                first.header("set-cookie"),
                Some("session=abc"),
                "its own client still gets it"
            );
        }
    }
}

#[tokio::test]
async fn authorization_responses_are_not_shared_unless_they_say_so() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    let alice = send(
        p.addr(),
        "GET",
        "/auth",
        &[("authorization", "Bearer alice")],
        "",
    )
    .await;
    let bob = send(
        p.addr(),
        "GET",
        "/auth",
        &[("authorization", "Bearer bob")],
        "",
    )
    .await;
    assert_eq!(alice.text(), "Bearer alice");
    assert_eq!(bob.text(), "Bearer bob");
    assert_eq!(up.gets("/auth"), 2);
    // `public` is the origin saying the answer is the same for everyone (§3.5).
    let first = send(
        p.addr(),
        "GET",
        "/shared",
        &[("authorization", "Bearer a")],
        "",
    )
    .await;
    let second = send(
        p.addr(),
        "GET",
        "/shared",
        &[("authorization", "Bearer b")],
        "",
    )
    .await;
    assert_eq!(first.status, 200);
    assert!(
        second.cache_status().contains("hit"),
        "{}",
        second.cache_status()
    );
    assert_eq!(up.gets("/shared"), 1);
}

#[tokio::test]
async fn vary_keeps_variants_apart() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    let en = send(p.addr(), "GET", "/vary", &[("accept-language", "en")], "").await;
    let fr = send(p.addr(), "GET", "/vary", &[("accept-language", "fr")], "").await;
    let en2 = send(p.addr(), "GET", "/vary", &[("accept-language", "en")], "").await;
    assert_eq!(en.text(), "lang=en");
    assert_eq!(fr.text(), "lang=fr");
    assert_eq!(en2.text(), "lang=en");
    assert!(en2.cache_status().contains("hit"), "{}", en2.cache_status());
    assert_eq!(up.gets("/vary"), 2);
}

#[tokio::test]
async fn a_field_named_in_connection_cannot_poison_a_variant() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    let sneaky = send(
        p.addr(),
        "GET",
        "/vary",
        &[("connection", "accept-language"), ("accept-language", "fr")],
        "",
    )
    .await;
    assert_eq!(sneaky.text(), "lang=", "the upstream never saw the field");
    let french = send(p.addr(), "GET", "/vary", &[("accept-language", "fr")], "").await;
    assert_eq!(french.text(), "lang=fr");
}

#[tokio::test]
async fn the_key_is_the_clients_host_and_the_upstream_sees_that_host() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    send(p.addr(), "GET", "/hosted", &[], "").await;
    assert_eq!(up.last_headers("/hosted")["host"], "app.example");
    let other = send(p.addr(), "GET", "/hosted", &[("host", "other.example")], "").await;
    assert!(
        !other.cache_status().contains("hit"),
        "another host is another key"
    );
    assert_eq!(up.last_headers("/hosted")["host"], "other.example");
    assert_eq!(up.gets("/hosted"), 2);
}

#[tokio::test]
async fn two_host_lines_are_refused_9112_3_2() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    let got = send(
        p.addr(),
        "GET",
        "/items",
        &[("host", "a.example"), ("host", "b.example")],
        "",
    )
    .await;
    assert_eq!(got.status, 400);
    assert_eq!(up.gets("/items"), 0);
}

#[tokio::test]
async fn forwarding_fields_come_from_the_connection_and_unkeyed_ones_are_dropped() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    send(
        p.addr(),
        "GET",
        "/fwd",
        &[
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "host=evil.example"),
            ("x-original-url", "/admin"),
            ("x-http-method-override", "DELETE"),
            ("x-forwarded-for", "198.51.100.1"),
            ("connection", "x-secret"),
            ("x-secret", "hop"),
        ],
        "",
    )
    .await;
    let seen = up.last_headers("/fwd");
    for name in ["x-original-url", "x-http-method-override", "x-secret"] {
        assert!(!seen.contains_key(name), "{name} reached the upstream");
    }
    // larder's own, not the client's.
    assert_eq!(
        seen["forwarded"],
        "for=127.0.0.1;host=\"app.example\";proto=http"
    );
    assert_eq!(seen["x-forwarded-proto"], "http");
    // A cacheable request's own X-Forwarded-For is unkeyed too: larder's
    // starts from the connection.
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["x-forwarded-host"], "app.example");
}

#[tokio::test]
async fn hop_by_hop_response_fields_do_not_reach_clients() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    for _ in 0..2 {
        let got = get(p.addr(), "/hop").await;
        assert!(got.header("x-hop").is_none());
        assert_eq!(got.header("x-end"), Some("1"));
    }
}

#[tokio::test]
async fn etag_revalidation_upstream_with_a_304() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    let first = get(p.addr(), "/etag").await;
    assert_eq!(first.header("x-version"), Some("1"));
    // Let the one-second lifetime run out (waiting, not measuring).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let second = get(p.addr(), "/etag").await;
    assert_eq!(second.status, 200);
    assert_eq!(
        second.text(),
        "etag body",
        "the client gets the stored body"
    );
    assert_eq!(
        up.not_modified("/etag"),
        1,
        "the proxy revalidated with If-None-Match"
    );
    assert_eq!(
        second.header("x-version"),
        Some("2"),
        "the 304 refreshed the stored headers"
    );
    let third = get(p.addr(), "/etag").await;
    assert!(
        third.cache_status().contains("hit"),
        "fresh again: {}",
        third.cache_status()
    );
    // A client's own validator gets its own 304.
    let conditional = send(p.addr(), "GET", "/etag", &[("if-none-match", "\"v1\"")], "").await;
    assert_eq!(conditional.status, 304);
    assert_eq!(up.gets("/etag"), 2);
}

#[tokio::test]
async fn last_modified_revalidation_upstream_with_a_304() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    get(p.addr(), "/last-modified").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let second = get(p.addr(), "/last-modified").await;
    assert_eq!(second.status, 200);
    assert_eq!(second.text(), "dated body");
    assert_eq!(
        up.not_modified("/last-modified"),
        1,
        "revalidated with If-Modified-Since"
    );
    let conditional = send(
        p.addr(),
        "GET",
        "/last-modified",
        &[("if-modified-since", common::LAST_MODIFIED)],
        "",
    )
    .await;
    assert_eq!(conditional.status, 304);
}

#[tokio::test]
async fn a_clients_conditional_request_is_answered_304_from_cache() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    let first = get(p.addr(), "/validated").await;
    // A miss streams before its body is known; the stored entry, and every
    // hit, has the ETag the cache derives from it.
    assert!(first.header("etag").is_none());
    let hit = get(p.addr(), "/validated").await;
    let etag = hit
        .header("etag")
        .expect("the cache adds a strong ETag")
        .to_owned();
    let again = send(
        p.addr(),
        "GET",
        "/validated",
        &[("if-none-match", &etag)],
        "",
    )
    .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(up.gets("/validated"), 1);
}

#[tokio::test]
async fn a_successful_post_invalidates_the_cached_get() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    get(p.addr(), "/items").await;
    assert!(get(p.addr(), "/items").await.cache_status().contains("hit"));
    let posted = send(
        p.addr(),
        "POST",
        "/items",
        &[("content-type", "text/plain")],
        "new item",
    )
    .await;
    assert_eq!(
        posted.text(),
        "POST /items body=8",
        "the body reaches the upstream"
    );
    let after = get(p.addr(), "/items").await;
    assert!(
        !after.cache_status().contains("hit"),
        "{}",
        after.cache_status()
    );
    assert_eq!(up.gets("/items"), 2);
}

#[tokio::test]
async fn after_a_namespace_purge_a_successful_post_still_invalidates_the_get() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    p.cache().purge_namespace("default").await.unwrap();
    get(p.addr(), "/items").await;
    assert!(get(p.addr(), "/items").await.cache_status().contains("hit"));
    let posted = send(p.addr(), "POST", "/items", &[], "new item").await;
    assert_eq!(posted.status, 200);
    let after = get(p.addr(), "/items").await;
    assert!(
        !after.cache_status().contains("hit"),
        "the POST invalidated generation 0, not the current one: {}",
        after.cache_status()
    );
    assert_eq!(up.gets("/items"), 2);
}

#[tokio::test]
async fn unknown_methods_pass_through_with_their_bodies_and_invalidate() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    get(p.addr(), "/doc").await;
    let got = send(p.addr(), "PROPPATCH", "/doc", &[], "<xml/>").await;
    assert_eq!(got.text(), "PROPPATCH /doc body=6");
    assert!(!get(p.addr(), "/doc").await.cache_status().contains("hit"));
}

#[tokio::test]
async fn a_get_body_is_dropped_and_the_answer_still_cached() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    let got = send(
        p.addr(),
        "GET",
        "/with-body",
        &[("content-type", "text/plain")],
        "ignored",
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(
        up.last_body_len("/with-body"),
        0,
        "the upstream never sees it"
    );
    assert!(get(p.addr(), "/with-body")
        .await
        .cache_status()
        .contains("hit"));
}

#[tokio::test]
async fn a_50_mib_body_streams_through_intact_and_uncached() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    let got = get(p.addr(), "/big").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body.len(), BIG);
    for (i, chunk) in got.body.chunks(65_536).enumerate() {
        assert!(
            chunk.iter().all(|b| *b == (i % 251) as u8),
            "chunk {i} intact"
        );
    }
    get(p.addr(), "/big").await;
    assert_eq!(up.gets("/big"), 2, "too large to store: fetched each time");
}

#[tokio::test]
async fn an_upstream_that_is_down_gives_a_prompt_502() {
    // A port that was free a moment ago: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let p = proxy(&format!("http://{closed}"), "", "").await;
    let got = tokio::time::timeout(Duration::from_secs(10), get(p.addr(), "/items"))
        .await
        .expect("answered well within the guard");
    assert_eq!(got.status, 502);
}

#[tokio::test]
async fn an_upstream_that_does_not_answer_in_time_gives_a_504() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "upstream_timeout = \"200ms\"", "").await;
    let got = get(p.addr(), "/slow").await;
    assert_eq!(got.status, 504);
}

#[tokio::test]
async fn requests_with_cookies_bypass_unless_a_route_says_otherwise() {
    let up = Upstream::start().await;
    let p = proxy(
        &up.url(),
        "",
        "[[route]]\nprefix = \"/strip/\"\ncookies = \"strip\"\n",
    )
    .await;
    get(p.addr(), "/items").await;
    let with_cookie = send(p.addr(), "GET", "/items", &[("cookie", "session=1")], "").await;
    assert!(
        with_cookie.cache_status().contains("fwd=bypass"),
        "{}",
        with_cookie.cache_status()
    );
    assert_eq!(up.gets("/items"), 2);
    // A stripping route: the upstream never sees the cookie, so it may share.
    send(p.addr(), "GET", "/strip/a", &[("cookie", "session=1")], "").await;
    assert!(!up.last_headers("/strip/a").contains_key("cookie"));
    let second = send(p.addr(), "GET", "/strip/a", &[("cookie", "session=2")], "").await;
    assert!(
        second.cache_status().contains("hit"),
        "{}",
        second.cache_status()
    );
}

#[tokio::test]
async fn route_rules_override_ttl_and_bypass() {
    let up = Upstream::start().await;
    let p = proxy(
        &up.url(),
        "",
        "[[route]]\npath = \"/fixed/**\"\nttl = \"5m\"\n\n[[route]]\nprefix = \"/live\"\nbypass = true\n",
    )
    .await;
    get(p.addr(), "/fixed/a/plain").await;
    assert!(get(p.addr(), "/fixed/a/plain")
        .await
        .cache_status()
        .contains("hit"));
    get(p.addr(), "/live/x").await;
    let bypassed = get(p.addr(), "/live/x").await;
    assert!(bypassed.cache_status().contains("fwd=bypass"));
    assert_eq!(up.gets("/live/x"), 2);
}

#[tokio::test]
async fn targeted_cache_control_decides_for_the_cache_and_stays_private() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    let first = get(p.addr(), "/targeted").await;
    assert_eq!(
        first.header("cache-control"),
        Some("no-store"),
        "browsers get the origin's word"
    );
    assert!(
        first.header("larder-cache-control").is_none(),
        "ours never reaches clients"
    );
    assert_eq!(
        first.header("cdn-cache-control"),
        Some("max-age=5"),
        "CDNs further down still get theirs"
    );
    let second = get(p.addr(), "/targeted").await;
    assert!(
        second.cache_status().contains("hit"),
        "{}",
        second.cache_status()
    );
    assert!(second.header("larder-cache-control").is_none());
    assert_eq!(up.gets("/targeted"), 1);
    // An invalid targeted field is ignored whole: Cache-Control decides.
    get(p.addr(), "/targeted-invalid").await;
    get(p.addr(), "/targeted-invalid").await;
    assert_eq!(up.gets("/targeted-invalid"), 2);
    // Surrogate-Control is a target too, and is never forwarded.
    let s = get(p.addr(), "/surrogate").await;
    assert!(s.header("surrogate-control").is_none());
    assert!(get(p.addr(), "/surrogate")
        .await
        .cache_status()
        .contains("hit"));
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_requests_finish() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    let addr = p.addr();
    let in_flight = tokio::spawn(async move { get(addr, "/slow").await });
    // Give the request time to reach the upstream before stopping.
    while up.gets("/slow") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    p.shutdown().await;
    let got = in_flight.await.unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.text(), "slow");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn a_stale_entry_stands_in_when_the_upstream_is_down_and_stale_if_error_allows() {
    let (up, stop) = Upstream::start_stoppable().await;
    let p = proxy(&up.url(), "", "[cache]\nstale_if_error = \"60s\"\n").await;
    assert_eq!(get(p.addr(), "/short").await.status, 200);
    stop.send(()).unwrap();
    // Let the one-second lifetime run out (waiting, not measuring).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let got = tokio::time::timeout(Duration::from_secs(10), get(p.addr(), "/short"))
        .await
        .expect("answered well within the guard");
    assert_eq!(got.status, 200);
    assert_eq!(got.text(), "short-lived");
    assert!(
        got.cache_status().contains("fwd=stale"),
        "{}",
        got.cache_status()
    );
}

#[tokio::test]
async fn stale_while_revalidate_answers_at_once_and_refreshes_in_the_background() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    assert_eq!(get(p.addr(), "/swr").await.text(), "version 1");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let stale = get(p.addr(), "/swr").await;
    assert_eq!(stale.text(), "version 1", "the stale answer, at once");
    assert!(
        stale.cache_status().contains("hit"),
        "{}",
        stale.cache_status()
    );
    // The refresh runs in the background; wait for it (bounded).
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let got = get(p.addr(), "/swr").await;
            if got.text() == "version 2" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the background refresh stored version 2");
    assert_eq!(up.gets("/swr"), 2, "one refresh");
}

#[tokio::test]
async fn head_is_answered_from_the_get_entry() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    let head = send(p.addr(), "HEAD", "/headed", &[], "").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        up.calls("HEAD", "/headed"),
        0,
        "the cache asked for the GET it can store"
    );
    let get_after = get(p.addr(), "/headed").await;
    assert!(
        get_after.cache_status().contains("hit"),
        "{}",
        get_after.cache_status()
    );
    assert_eq!(get_after.text(), "body of /headed");
    let head_hit = send(p.addr(), "HEAD", "/headed", &[], "").await;
    assert_eq!(
        head_hit.header("content-length"),
        Some("15"),
        "the GET's length"
    );
    assert!(head_hit.body.is_empty());
    assert_eq!(up.gets("/headed"), 1);
}
