//! What one client sends never shapes what another is served: Host and
//! the request target, route rules under encoding, unkeyed forwarding
//! fields, and client cache directives. The proxy end to end, against
//! real origins that reflect what reaches them.

mod common;

use common::{get, proxy, raw, send, Upstream};

const VICTIM: &str = "<script src=\"//victim.example/app.js\"></script>";

async fn victim(p: &larder_proxy::Running) -> common::Got {
    send(p.addr(), "GET", "/links", &[("host", "victim.example")], "").await
}

#[tokio::test]
async fn an_invalid_host_is_refused_and_never_keyed_as_another_9112_3_2() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    for attack in [
        "evil.example/?@victim.example",
        "evil.example#@victim.example",
        "evil.example\\@victim.example",
        "evil.example@victim.example",
        "victim.example/evil.example",
        "victim.example evil.example",
        "v\u{ef}ctim.example",
        "",
    ] {
        let got = send(p.addr(), "GET", "/links", &[("host", attack)], "").await;
        assert_eq!(got.status, 400, "{attack:?}: {}", got.text());
    }
    assert_eq!(up.gets("/links"), 0, "nothing reached the origin");
    let first = victim(&p).await;
    assert_eq!(first.text(), VICTIM);
    assert!(
        !first.cache_status().contains("hit"),
        "{}",
        first.cache_status()
    );
    p.shutdown().await;
}

#[tokio::test]
async fn the_upstream_gets_exactly_the_host_the_key_used() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    let first = send(
        p.addr(),
        "GET",
        "/links",
        &[("host", "Victim.EXAMPLE:80")],
        "",
    )
    .await;
    assert_eq!(up.last_headers("/links")["host"], "victim.example");
    assert_eq!(first.text(), VICTIM);
    assert_eq!(
        up.last_headers("/links")["x-forwarded-host"],
        "victim.example"
    );
    assert!(
        victim(&p).await.cache_status().contains("hit"),
        "one key, one host"
    );
    let other_port = send(
        p.addr(),
        "GET",
        "/links",
        &[("host", "victim.example:8080")],
        "",
    )
    .await;
    assert!(!other_port.cache_status().contains("hit"));
    assert_eq!(up.last_headers("/links")["host"], "victim.example:8080");
    p.shutdown().await;
}

#[tokio::test]
async fn an_absolute_form_authority_replaces_host_for_key_and_upstream_9112_3_2_2() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    // Userinfo in the target: keyed as victim.example until now, while the
    // origin saw `evil.example@victim.example`.
    let userinfo = raw(
        p.addr(),
        "GET http://evil.example@victim.example/links HTTP/1.1\r\nHost: victim.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(userinfo.status, 400, "{}", userinfo.text());
    assert_eq!(up.gets("/links"), 0);
    // A valid authority wins over Host (RFC 9112 §3.2.2), for both.
    let absolute = raw(
        p.addr(),
        "GET http://Victim.example/links HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(absolute.status, 200);
    assert_eq!(absolute.text(), VICTIM);
    assert_eq!(up.last_headers("/links")["host"], "victim.example");
    assert!(victim(&p).await.cache_status().contains("hit"));
    // An invalid Host is refused even beside an absolute target.
    let both = raw(
        p.addr(),
        "GET http://victim.example/links HTTP/1.1\r\nHost: evil/?@victim.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(both.status, 400);
    p.shutdown().await;
}

#[tokio::test]
async fn neither_connection_host_nor_a_non_ascii_host_falls_onto_the_empty_host_key() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    let named = send(
        p.addr(),
        "GET",
        "/links",
        &[("host", "victim.example"), ("connection", "host")],
        "",
    )
    .await;
    assert_eq!(named.text(), VICTIM, "Connection never names Host away");
    assert_eq!(up.last_headers("/links")["host"], "victim.example");
    let non_ascii = send(
        p.addr(),
        "GET",
        "/links",
        &[("host", "v\u{ef}ctim.example")],
        "",
    )
    .await;
    assert_eq!(non_ascii.status, 400);
    // An HTTP/1.0 request without Host keeps its own key: nothing above
    // was stored under it.
    let bare = raw(p.addr(), "GET /links HTTP/1.0\r\n\r\n").await;
    assert_eq!(bare.status, 200);
    assert!(
        !bare.cache_status().contains("hit"),
        "{}",
        bare.cache_status()
    );
    assert_eq!(up.gets("/links"), 2);
    p.shutdown().await;
}

#[tokio::test]
async fn route_rules_match_the_normalised_path_and_the_upstream_gets_the_raw_one() {
    let up = Upstream::start().await;
    let p = proxy(
        &up.url(),
        "",
        "[[route]]\nprefix = \"/account\"\nbypass = true\n\n\
         [[route]]\npath = \"/docs/secret\"\nbypass = true\n",
    )
    .await;
    for dodge in [
        "/%61ccount/profile",
        "//account/profile",
        "/x/../account",
        "/./account/./profile",
        "/%2e%2e/account",
        "/docs//%73ecret",
    ] {
        for _ in 0..2 {
            let got = get(p.addr(), dodge).await;
            assert!(
                got.cache_status().contains("fwd=bypass"),
                "{dodge}: {}",
                got.cache_status()
            );
        }
        // The upstream (and the key) get the path as sent.
        assert_eq!(up.gets(dodge), 2, "{dodge}");
    }
    // Case counts unless the route says otherwise.
    get(p.addr(), "/ACCOUNT/profile").await;
    assert!(get(p.addr(), "/ACCOUNT/profile")
        .await
        .cache_status()
        .contains("hit"));
    // `%2F` is not decoded: not every origin reads it as `/`, so the
    // proxy does not either.
    get(p.addr(), "/docs%2Fsecret").await;
    assert!(get(p.addr(), "/docs%2Fsecret")
        .await
        .cache_status()
        .contains("hit"));
    p.shutdown().await;
}

#[tokio::test]
async fn a_case_insensitive_route_matches_whatever_the_case() {
    let up = Upstream::start().await;
    let p = proxy(
        &up.url(),
        "",
        "[[route]]\nprefix = \"/account\"\ncase_insensitive = true\nbypass = true\n",
    )
    .await;
    for path in ["/ACCOUNT/profile", "/Account/profile", "/%41ccount/profile"] {
        get(p.addr(), path).await;
        let got = get(p.addr(), path).await;
        assert!(
            got.cache_status().contains("fwd=bypass"),
            "{path}: {}",
            got.cache_status()
        );
    }
    p.shutdown().await;
}

/// The fields the issue saw reaching a werkzeug `ProxyFix` origin and
/// coming back from cache, and their families.
const POISON: [(&str, &str); 26] = [
    ("x-forwarded-prefix", "//evil.example"),
    ("x_forwarded_host", "evil.example"),
    ("x_forwarded_prefix", "//evil.example"),
    ("x-forwarded-host", "evil.example"),
    ("x-forwarded-proto", "evil"),
    ("x-forwarded-port", "666"),
    ("x-forwarded-server", "evil.example"),
    ("x-forwarded-uri", "/evil"),
    ("x-forwarded-path", "/evil"),
    ("x-forwarded-ssl", "evil"),
    ("x-forwarded-for", "6.6.6.6"),
    ("forwarded", "for=6.6.6.6;host=evil.example;proto=evil"),
    ("x-host", "evil.example"),
    ("x-original-host", "evil.example"),
    ("x-original-uri", "/evil"),
    ("x-original-url", "/evil"),
    ("x-rewrite-url", "/evil"),
    ("x-http-host-override", "evil.example"),
    ("x-http-method-override", "EVIL"),
    ("front-end-https", "evil"),
    ("x-real-ip", "6.6.6.6"),
    ("true-client-ip", "6.6.6.6"),
    ("x-client-ip", "6.6.6.6"),
    ("cf-connecting-ip", "6.6.6.6"),
    ("fastly-client-ip", "6.6.6.6"),
    ("x-cluster-client-ip", "6.6.6.6"),
];

fn poisoned(body: &str) -> bool {
    body.contains("evil") || body.contains("6.6.6.6") || body.contains("666")
}

#[tokio::test]
async fn a_proxy_fix_origin_cannot_be_poisoned_through_unkeyed_fields() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    // All at once, as the attacker did.
    let attacker = send(p.addr(), "GET", "/app", &POISON, "").await;
    assert!(!poisoned(&attacker.text()), "{}", attacker.text());
    let second = get(p.addr(), "/app").await;
    assert!(
        second.cache_status().contains("hit"),
        "{}",
        second.cache_status()
    );
    assert!(!poisoned(&second.text()), "{}", second.text());
    assert!(
        second.text().starts_with(
            "<script src=\"/static/app.js\"></script>\n<a href=\"http://app.example/next\">"
        ),
        "{}",
        second.text()
    );
    // And one by one, each on its own URL: every family on its own.
    for (i, field) in POISON.iter().enumerate() {
        let path = format!("/app?field={i}");
        send(p.addr(), "GET", &path, &[*field], "").await;
        let second = get(p.addr(), &path).await;
        assert!(second.cache_status().contains("hit"), "{field:?}");
        assert!(
            !poisoned(&second.text()),
            "{field:?} reached the origin: {}",
            second.text()
        );
    }
    // What larder sets itself, from the connection and the Host it keyed.
    let seen = up.last_headers("/app");
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["x-forwarded-host"], "app.example");
    assert_eq!(seen["x-real-ip"], "127.0.0.1");
    assert_eq!(
        seen["forwarded"],
        "for=127.0.0.1;host=\"app.example\";proto=http"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn a_route_forwards_or_keys_the_fields_it_names() {
    let up = Upstream::start().await;
    let p = proxy(
        &up.url(),
        "",
        "[[route]]\nprefix = \"/prefixed\"\nforward_headers = [\"x-forwarded-prefix\"]\n\n\
         [[route]]\nprefix = \"/keyed\"\nvary = [\"x-forwarded-prefix\"]\n",
    )
    .await;
    // Forwarded as sent (the operator trusts whoever sets it).
    let mounted = send(
        p.addr(),
        "GET",
        "/prefixed",
        &[("x-forwarded-prefix", "/shop")],
        "",
    )
    .await;
    assert!(
        mounted
            .text()
            .starts_with("<script src=\"/shop/static/app.js\">"),
        "{}",
        mounted.text()
    );
    // Keyed: each value gets its own entry, so nobody gets another's.
    let shop = send(
        p.addr(),
        "GET",
        "/keyed",
        &[("x-forwarded-prefix", "/shop")],
        "",
    )
    .await;
    assert!(shop
        .text()
        .starts_with("<script src=\"/shop/static/app.js\">"));
    let plain = get(p.addr(), "/keyed").await;
    assert!(
        !plain.cache_status().contains("hit"),
        "{}",
        plain.cache_status()
    );
    assert!(
        plain.text().starts_with("<script src=\"/static/app.js\">"),
        "{}",
        plain.text()
    );
    let again = send(
        p.addr(),
        "GET",
        "/keyed",
        &[("x-forwarded-prefix", "/shop")],
        "",
    )
    .await;
    assert!(again.cache_status().contains("hit"));
    assert!(again
        .text()
        .starts_with("<script src=\"/shop/static/app.js\">"));
    p.shutdown().await;
}

#[tokio::test]
async fn underscored_names_pass_only_when_the_operator_allows_them() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "underscores_in_headers = true", "").await;
    let got = send(p.addr(), "GET", "/app", &[("x_custom", "kept")], "").await;
    assert!(got.text().contains("HTTP_X_CUSTOM=kept"), "{}", got.text());
    p.shutdown().await;
    let p = proxy(&up.url(), "", "").await;
    let got = send(p.addr(), "GET", "/app?2", &[("x_custom", "kept")], "").await;
    assert!(!got.text().contains("HTTP_X_CUSTOM"), "{}", got.text());
    p.shutdown().await;
}

#[tokio::test]
async fn a_clients_directives_cannot_replace_a_fresh_entry_unless_the_route_honours_them() {
    let up = Upstream::start().await;
    let p = proxy(
        &up.url(),
        "",
        "[[route]]\nprefix = \"/honoured\"\nhonor_request_directives = true\n",
    )
    .await;
    get(p.addr(), "/items").await;
    for directives in [
        [("cache-control", "no-cache")],
        [("pragma", "no-cache")],
        [("cache-control", "max-age=0")],
        [("cache-control", "no-store")],
        [("cache-control", "min-fresh=3600")],
        [("cache-control", "max-age=\"0\"")],
        [("cache-control", "no-cache=\"")],
        [("cache-control", ",;=max-age=-1")],
    ] {
        let got = send(p.addr(), "GET", "/items", &directives, "").await;
        assert!(
            got.cache_status().contains("hit"),
            "{directives:?}: {}",
            got.cache_status()
        );
    }
    assert_eq!(
        up.gets("/items"),
        1,
        "no client pushed a refetch to the origin"
    );
    // A route that honours them refetches, as RFC 9111 §5.2.1.4 says.
    get(p.addr(), "/honoured").await;
    let forced = send(
        p.addr(),
        "GET",
        "/honoured",
        &[("cache-control", "no-cache")],
        "",
    )
    .await;
    assert!(
        !forced.cache_status().contains("hit"),
        "{}",
        forced.cache_status()
    );
    assert_eq!(up.gets("/honoured"), 2);
    p.shutdown().await;
}
