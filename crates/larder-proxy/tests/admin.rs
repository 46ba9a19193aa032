//! The admin listener end to end: token, purges, stats, metrics, health.

mod common;

use std::net::SocketAddr;

use common::{get, proxy, send, Upstream};

const TOKEN: &str = "test-token-0123456789";

async fn with_admin(up: &Upstream) -> larder_proxy::Running {
    proxy(
        &up.url(),
        "",
        &format!("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n\n[[route]]\nprefix = \"/ns/\"\nnamespace = \"things\"\n"),
    )
    .await
}

async fn admin(addr: SocketAddr, method: &str, path: &str) -> common::Got {
    let bearer = format!("Bearer {TOKEN}");
    send(addr, method, path, &[("authorization", &bearer)], "").await
}

#[tokio::test]
async fn purge_by_tag_from_response_headers_and_the_tags_never_reach_clients() {
    let up = Upstream::start().await;
    let p = with_admin(&up).await;
    let first = get(p.addr(), "/tagged").await;
    assert!(
        first.header("surrogate-key").is_none(),
        "Surrogate-Key is the cache's"
    );
    assert!(
        first.header("cache-tag").is_none(),
        "Cache-Tag is the cache's"
    );
    let hit = get(p.addr(), "/tagged").await;
    assert!(hit.cache_status().contains("hit"));
    assert!(hit.header("surrogate-key").is_none() && hit.header("cache-tag").is_none());
    get(p.addr(), "/untagged").await;

    let purged = admin(p.admin_addr().unwrap(), "POST", "/purge/tag/catalog").await;
    assert_eq!(purged.status, 200, "{}", purged.text());
    assert!(purged.text().contains("\"uris\":1"), "{}", purged.text());
    assert!(!get(p.addr(), "/tagged")
        .await
        .cache_status()
        .contains("hit"));
    assert!(
        get(p.addr(), "/untagged")
            .await
            .cache_status()
            .contains("hit"),
        "other entries stay"
    );
    assert_eq!(up.gets("/tagged"), 2);
    // Cache-Tag's comma-separated tags count as well.
    assert_eq!(
        admin(p.admin_addr().unwrap(), "POST", "/purge/tag/summer")
            .await
            .status,
        200
    );
    assert!(!get(p.addr(), "/tagged")
        .await
        .cache_status()
        .contains("hit"));
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_rejected() {
    let up = Upstream::start().await;
    let p = with_admin(&up).await;
    let a = p.admin_addr().unwrap();
    get(p.addr(), "/tagged").await;
    let none = send(a, "POST", "/purge/tag/catalog", &[], "").await;
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    let wrong = send(
        a,
        "POST",
        "/purge/tag/catalog",
        &[("authorization", "Bearer test-token-0123456780")],
        "",
    )
    .await;
    assert_eq!(wrong.status, 401);
    let basic = send(a, "GET", "/stats", &[("authorization", TOKEN)], "").await;
    assert_eq!(basic.status, 401);
    assert!(
        get(p.addr(), "/tagged")
            .await
            .cache_status()
            .contains("hit"),
        "nothing purged"
    );
    // Health needs no token: load balancers ask it.
    assert_eq!(get(a, "/healthz").await.status, 200);
}

#[tokio::test]
async fn purge_by_url_uses_the_routes_namespace() {
    let up = Upstream::start().await;
    let p = with_admin(&up).await;
    let a = p.admin_addr().unwrap();
    get(p.addr(), "/ns/one?x=1").await;
    get(p.addr(), "/two").await;
    let url = "http%3A%2F%2Fapp.example%2Fns%2Fone%3Fx%3D1";
    let purged = admin(a, "POST", &format!("/purge/url?url={url}")).await;
    assert_eq!(purged.status, 200, "{}", purged.text());
    assert!(purged.text().contains("\"namespace\":\"things\""));
    assert!(!get(p.addr(), "/ns/one?x=1")
        .await
        .cache_status()
        .contains("hit"));
    assert!(get(p.addr(), "/two").await.cache_status().contains("hit"));
    let relative = admin(a, "POST", "/purge/url?url=%2Fns%2Fone").await;
    assert_eq!(relative.status, 400, "which host? {}", relative.text());
}

#[tokio::test]
async fn purge_by_namespace() {
    let up = Upstream::start().await;
    let p = with_admin(&up).await;
    get(p.addr(), "/ns/a").await;
    get(p.addr(), "/b").await;
    let purged = admin(p.admin_addr().unwrap(), "POST", "/purge/namespace/things").await;
    assert_eq!(purged.status, 200);
    assert!(!get(p.addr(), "/ns/a").await.cache_status().contains("hit"));
    assert!(get(p.addr(), "/b").await.cache_status().contains("hit"));
}

#[tokio::test]
async fn stats_are_json_and_metrics_prometheus_text() {
    let up = Upstream::start().await;
    let p = with_admin(&up).await;
    get(p.addr(), "/items").await;
    get(p.addr(), "/items").await;
    send(p.addr(), "GET", "/items", &[("cookie", "a=1")], "").await;
    let stats = admin(p.admin_addr().unwrap(), "GET", "/stats").await;
    assert_eq!(stats.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&stats.body).unwrap();
    assert_eq!(v["hits"], 1);
    assert_eq!(v["stores"], 1);
    assert_eq!(v["not_stored"]["cookie"], 1);
    assert_eq!(v["hit_ratio"], 0.5);
}

/// The samples of a Prometheus text exposition, `name{labels}` (labels as
/// written) to value, checking each line's shape on the way.
fn prometheus(text: &str) -> std::collections::HashMap<String, f64> {
    let mut samples = std::collections::HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            let kind = comment.split_whitespace().next();
            assert!(matches!(kind, Some("HELP" | "TYPE")), "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let name_end = series.find('{').unwrap_or(series.len());
        assert!(
            series[..name_end]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
            "{line}"
        );
        assert!(
            series[name_end..].is_empty() || series.ends_with('}'),
            "{line}"
        );
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        samples.insert(series.to_owned(), value);
    }
    samples
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_everything_the_engine_counts() {
    let up = Upstream::start().await;
    // Its own cache name: the recorder is the process's, shared by every
    // proxy this test binary starts.
    let p = proxy(
        &up.url(),
        "",
        &format!("[cache]\nname = \"metered\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n"),
    )
    .await;
    get(p.addr(), "/items").await;
    get(p.addr(), "/items").await;
    get(p.addr(), "/items").await;
    send(p.addr(), "GET", "/items", &[("cookie", "a=1")], "").await;
    let metrics = admin(p.admin_addr().unwrap(), "GET", "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let s = prometheus(&metrics.text());
    let at = |series: &str| {
        *s.get(series)
            .unwrap_or_else(|| panic!("no {series} in {s:#?}"))
    };
    assert_eq!(
        at(r#"larder_requests_total{cache="metered",outcome="hit"}"#),
        2.0
    );
    assert_eq!(
        at(r#"larder_requests_total{cache="metered",outcome="miss"}"#),
        1.0
    );
    assert_eq!(
        at(r#"larder_requests_total{cache="metered",outcome="bypass"}"#),
        1.0
    );
    assert_eq!(at(r#"larder_hot_hits_total{cache="metered"}"#), 1.0);
    assert_eq!(at(r#"larder_stores_total{cache="metered"}"#), 1.0);
    assert_eq!(
        at(r#"larder_not_stored_total{cache="metered",reason="cookie"}"#),
        1.0
    );
    // What the hand-written text lacked: refreshes and revalidations.
    assert_eq!(at(r#"larder_refreshes_total{cache="metered"}"#), 0.0);
    assert_eq!(at(r#"larder_revalidated_total{cache="metered"}"#), 0.0);
    // The proxy's own latency, by outcome (shared by this binary's proxies).
    assert!(at(r#"larder_proxy_request_seconds_count{outcome="hit"}"#) >= 2.0);
    assert!(at(r#"larder_proxy_request_seconds_count{outcome="uri-miss"}"#) >= 1.0);
    assert!(s.contains_key(r#"larder_proxy_request_seconds_bucket{outcome="hit",le="0.001"}"#));
    assert!(at(r#"larder_store_seconds_count{cache="metered",op="get"}"#) >= 1.0);
    assert_eq!(at(r#"larder_hot_entries{cache="metered"}"#), 1.0);
}

#[tokio::test]
async fn the_admin_listener_is_off_unless_configured() {
    let up = Upstream::start().await;
    let p = proxy(&up.url(), "", "").await;
    assert!(p.admin_addr().is_none());
    // And the proxy's own port has no admin endpoints: they are the upstream's paths.
    get(p.addr(), "/stats").await;
    assert_eq!(up.gets("/stats"), 1);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_9110_11_1() {
    let up = Upstream::start().await;
    let p = with_admin(&up).await;
    let a = p.admin_addr().unwrap();
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let auth = format!("{scheme} {TOKEN}");
        let got = send(a, "GET", "/stats", &[("authorization", &auth)], "").await;
        assert_eq!(got.status, 200, "{scheme}");
    }
    // One or more spaces after the scheme (RFC 9110 §11.4).
    let spaced = format!("Bearer   {TOKEN}");
    assert_eq!(
        send(a, "GET", "/stats", &[("authorization", &spaced)], "")
            .await
            .status,
        200
    );
    for wrong in [
        format!("Bearer{TOKEN}"),
        format!("Basic {TOKEN}"),
        format!("Bearer {TOKEN}x"),
        format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]),
        "Bearer ".to_owned(),
    ] {
        let got = send(a, "GET", "/stats", &[("authorization", &wrong)], "").await;
        assert_eq!(got.status, 401, "{wrong:?}");
    }
}

#[tokio::test]
async fn a_tag_is_percent_decoded_and_plus_stays_plus() {
    let up = Upstream::start().await;
    let p = proxy(
        &up.url(),
        "",
        &format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n\n\
             [[route]]\nprefix = \"/cpp/\"\ntags = [\"c++\"]\n\n\
             [[route]]\nprefix = \"/spaced/\"\ntags = [\"a b\"]\n"
        ),
    )
    .await;
    let a = p.admin_addr().unwrap();
    get(p.addr(), "/cpp/x").await;
    get(p.addr(), "/spaced/x").await;
    let purged = admin(a, "POST", "/purge/tag/c++").await;
    assert!(
        purged.text().contains("\"tag\":\"c++\"") && purged.text().contains("\"uris\":1"),
        "{}",
        purged.text()
    );
    assert!(!get(p.addr(), "/cpp/x").await.cache_status().contains("hit"));
    let purged = admin(a, "POST", "/purge/tag/a%20b").await;
    assert!(purged.text().contains("\"uris\":1"), "{}", purged.text());
    // And the same through a query value.
    get(p.addr(), "/cpp/y?q=a+b").await;
    let url = "http%3A%2F%2Fapp.example%2Fcpp%2Fy%3Fq%3Da+b";
    let purged = admin(a, "POST", &format!("/purge/url?url={url}")).await;
    assert!(
        purged.text().contains("\"stored\":true"),
        "{}",
        purged.text()
    );
}

#[tokio::test]
async fn purge_by_url_says_whether_anything_was_stored() {
    let up = Upstream::start().await;
    let p = with_admin(&up).await;
    let a = p.admin_addr().unwrap();
    let url = "http%3A%2F%2Fapp.example%2Fitems";
    let nothing = admin(a, "POST", &format!("/purge/url?url={url}")).await;
    assert_eq!(nothing.status, 200);
    assert!(
        nothing.text().contains("\"stored\":false"),
        "{}",
        nothing.text()
    );
    get(p.addr(), "/items").await;
    let purged = admin(a, "POST", &format!("/purge/url?url={url}")).await;
    assert!(
        purged.text().contains("\"stored\":true"),
        "{}",
        purged.text()
    );
    let again = admin(a, "POST", &format!("/purge/url?url={url}")).await;
    assert!(
        again.text().contains("\"stored\":false"),
        "{}",
        again.text()
    );
}

#[tokio::test]
async fn a_wrong_method_gets_405_with_allow_9110_15_5_6() {
    let up = Upstream::start().await;
    let p = with_admin(&up).await;
    let a = p.admin_addr().unwrap();
    for (method, path, allow) in [
        ("GET", "/purge/tag/catalog", "POST"),
        ("GET", "/purge/namespace/things", "POST"),
        ("DELETE", "/purge/url?url=x", "POST"),
        ("POST", "/stats", "GET,HEAD"),
        ("PUT", "/metrics", "GET,HEAD"),
        ("POST", "/healthz", "GET,HEAD"),
    ] {
        let got = admin(a, method, path).await;
        assert_eq!(got.status, 405, "{method} {path}");
        assert_eq!(got.header("allow"), Some(allow), "{method} {path}");
        assert_json_error(&got, "method not allowed");
    }
    let nowhere = admin(a, "GET", "/nowhere").await;
    assert_eq!(nowhere.status, 404);
    assert_json_error(&nowhere, "no such endpoint");
    assert_eq!(send(a, "HEAD", "/healthz", &[], "").await.status, 200);
}

/// `{"error": "<why>"}` as JSON, with its content type.
fn assert_json_error(got: &common::Got, why: &str) {
    assert_eq!(got.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&got.text()).expect("a JSON body");
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains(why)),
        "{}",
        got.text()
    );
}

#[tokio::test]
async fn every_error_is_json_with_its_status() {
    let up = Upstream::start().await;
    let p = with_admin(&up).await;
    let a = p.admin_addr().unwrap();
    let unauthorized = send(a, "GET", "/stats", &[], "").await;
    assert_eq!(unauthorized.status, 401);
    assert_json_error(&unauthorized, "bearer token");
    for (path, why) in [
        ("/purge/tag/%ff", "does not decode"),
        ("/purge/namespace/%C3%28", "does not decode"),
        ("/purge/tag/", "name the tag"),
        ("/purge/namespace/", "name the namespace"),
        ("/purge/url", "give the URL"),
        ("/purge/url?url=%ff", "not UTF-8"),
        ("/purge/url?url=%2Fitems", "absolute"),
    ] {
        let got = admin(a, "POST", path).await;
        assert_eq!(got.status, 400, "{path}: {}", got.text());
        assert_json_error(&got, why);
    }
}

#[tokio::test]
async fn path_segments_and_query_values_are_percent_decoded_once() {
    let up = Upstream::start().await;
    let p = with_admin(&up).await;
    let a = p.admin_addr().unwrap();
    let got = admin(a, "POST", "/purge/namespace/a%20b%2Fc").await;
    assert_eq!(got.status, 200, "{}", got.text());
    let v: serde_json::Value = serde_json::from_str(&got.text()).unwrap();
    assert_eq!(
        v["namespace"], "a b/c",
        "%2F is a slash in the name, not a segment"
    );
    let got = admin(a, "POST", "/purge/tag/%2541").await;
    let v: serde_json::Value = serde_json::from_str(&got.text()).unwrap();
    assert_eq!(v["tag"], "%41", "decoded once, not twice");
    let got = admin(
        a,
        "POST",
        "/purge/url?namespace=x%2By&url=http%3A%2F%2Fh%2Fa%3Fq%3Da%2Bb",
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&got.text()).unwrap();
    assert_eq!(v["url"], "http://h/a?q=a+b");
    assert_eq!(v["namespace"], "x+y");
}

#[tokio::test]
async fn a_reload_replaces_the_admin_token_and_routes() {
    let up = Upstream::start().await;
    let p = with_admin(&up).await;
    let a = p.admin_addr().unwrap();
    let new_token = "the-new-token-0123456789";
    let text = format!(
        "[server]\nupstream = \"{}\"\nlisten = \"127.0.0.1:0\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{new_token}\"\n\
         [[route]]\nprefix = \"/ns/\"\nnamespace = \"renamed\"\n",
        up.url()
    );
    let done = p
        .reload(larder_proxy::Config::parse(&text, "reload.toml").unwrap())
        .unwrap();
    assert!(done.applied.contains(&"admin token"), "{done:?}");
    assert!(done.applied.contains(&"routes"), "{done:?}");
    assert!(done.need_restart.is_empty(), "{done:?}");
    assert_eq!(admin(a, "GET", "/stats").await.status, 401, "the old token");
    let bearer = format!("Bearer {new_token}");
    let url = format!("http://{}/ns/items", p.addr());
    let purged = send(
        a,
        "POST",
        &format!(
            "/purge/url?url={}",
            url.replace(':', "%3A").replace('/', "%2F")
        ),
        &[("authorization", &bearer)],
        "",
    )
    .await;
    assert_eq!(purged.status, 200, "{}", purged.text());
    assert!(
        purged.text().contains("\"namespace\":\"renamed\""),
        "the purge finds the new route's namespace: {}",
        purged.text()
    );
}
