//! The pure parts of a hit, one at a time: what each costs on its own.
//!
//! - `cache_control/*`: parsing `Cache-Control` with
//!   [`CacheControl::from_headers`] (a typical origin response, one with
//!   every directive a shared cache reads, and a quoted field list) and
//!   [`CacheControl::from_request`] (a browser reload).
//! - `key/*`: the primary key of a request ([`key::primary`]: method class,
//!   scheme, lowercased host, raw path and query, blake3 over the material)
//!   for a short URI and a long query, and a variant key
//!   ([`key::variant_key`]) over `Accept-Encoding` and `Accept-Language`.
//! - `entry/*`: [`Record::encode`] and [`Record::decode`] of an entry with
//!   the headers a handler usually sends and those the cache adds
//!   (`Content-Length`, `ETag`, `Date`), at 1 KiB and 64 KiB of body.
//!   Decoding shares the body with the input, so its cost should not grow
//!   with the body; encoding copies it.
//!
//! Every benchmark checks once, outside the timed loop, that its input
//! parses or round-trips to what it should.
//!
//! Run with:
//!
//! ```text
//! cargo bench -p larder --bench policy
//! cargo bench -p larder --bench policy -- entry/   # one group
//! ```

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use http::header::{
    ACCEPT_ENCODING, ACCEPT_LANGUAGE, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, DATE, ETAG,
    HOST, LAST_MODIFIED, PRAGMA,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use larder::entry::{Entry, Record};
use larder::policy::key;
use larder::policy::CacheControl;

fn headers(pairs: &[(HeaderName, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(name.clone(), HeaderValue::from_static(value));
    }
    map
}

fn cache_control(c: &mut Criterion) {
    let typical = headers(&[(CACHE_CONTROL, "public, max-age=3600")]);
    let full = headers(&[
        (
            CACHE_CONTROL,
            "public, max-age=600, s-maxage=3600, stale-while-revalidate=60",
        ),
        (CACHE_CONTROL, "stale-if-error=86400, must-revalidate"),
    ]);
    let fields = headers(&[(
        CACHE_CONTROL,
        r#"private="set-cookie, x-user", no-cache="x-debug", max-age=60"#,
    )]);
    let reload = headers(&[(CACHE_CONTROL, "max-age=0"), (PRAGMA, "no-cache")]);

    assert_eq!(CacheControl::from_headers(&typical).max_age, Some(3600));
    let cc = CacheControl::from_headers(&full);
    assert_eq!(
        (cc.s_maxage, cc.stale_if_error, cc.must_revalidate),
        (Some(3600), Some(86400), true)
    );
    assert!(CacheControl::from_headers(&fields).private.is_some());
    assert_eq!(CacheControl::from_request(&reload).max_age, Some(0));

    let mut group = c.benchmark_group("cache_control");
    for (name, map) in [
        ("typical", &typical),
        ("full", &full),
        ("field_lists", &fields),
    ] {
        group.bench_function(BenchmarkId::new("response", name), |b| {
            b.iter(|| CacheControl::from_headers(black_box(map)))
        });
    }
    group.bench_function("request/reload", |b| {
        b.iter(|| CacheControl::from_request(black_box(&reload)))
    });
    group.finish();
}

fn keys(c: &mut Criterion) {
    let short: Uri = "/items/42".parse().expect("uri");
    let long: Uri =
        "/search?q=larder+http+cache&page=3&per_page=50&sort=updated&order=desc&lang=en"
            .parse()
            .expect("uri");
    let request = headers(&[
        (HOST, "Example.COM:80"),
        (ACCEPT_ENCODING, "gzip, deflate, br"),
        (ACCEPT_LANGUAGE, "en-GB,en;q=0.9"),
    ]);
    let primary = |uri: &Uri| key::primary("larder", "items", 0, &Method::GET, uri, &request, None);
    let k = primary(&short).expect("a GET has a key");
    assert!(k.material.contains("\nexample.com\n/items/42"));
    let names = [ACCEPT_ENCODING, ACCEPT_LANGUAGE];

    let mut group = c.benchmark_group("key");
    group.bench_function("primary/short", |b| b.iter(|| primary(black_box(&short))));
    group.bench_function("primary/long_query", |b| {
        b.iter(|| primary(black_box(&long)))
    });
    group.bench_function("variant/two_fields", |b| {
        b.iter(|| {
            let values = key::vary_values(&names, black_box(&request));
            key::variant_key(black_box(&k), &names, &values)
        })
    });
    group.finish();
}

fn entry(size: usize) -> Entry {
    let mut entry = Entry {
        material: "larder-key-1\nitems\nGET\nhttp\nexample.com\n/items/42".into(),
        variant_nonce: 0,
        vary: vec![],
        status: StatusCode::OK,
        headers: headers(&[
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "public, max-age=3600"),
            (ETAG, "\"5d41402abc4b2a76b9719d911017c592\""),
            (DATE, "Sun, 29 Nov 2026 12:00:00 GMT"),
            (LAST_MODIFIED, "Sat, 28 Nov 2026 12:00:00 GMT"),
        ]),
        body: Bytes::from(vec![b'x'; size]),
        response_time: UNIX_EPOCH + Duration::from_secs(1_795_000_000),
        initial_age: Duration::ZERO,
        lifetime: Duration::from_secs(3600),
        stale_while_revalidate: Duration::ZERO,
        stale_if_error: Duration::ZERO,
        forbids_stale: false,
        tags: vec!["items".into()],
    };
    entry
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(size));
    entry
}

fn entries(c: &mut Criterion) {
    let mut group = c.benchmark_group("entry");
    for (name, size) in [("1k", 1024), ("64k", 64 * 1024)] {
        let record = Record::Entry(entry(size));
        let bytes = record.encode();
        assert_eq!(Record::decode(bytes.clone(), 1 << 20).as_ref(), Ok(&record));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(BenchmarkId::new("encode", name), |b| {
            b.iter(|| black_box(&record).encode())
        });
        group.bench_function(BenchmarkId::new("decode", name), |b| {
            b.iter(|| Record::decode(black_box(bytes.clone()), 1 << 20))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = cache_control, keys, entries
}
criterion_main!(benches);
