//! The stored response and its versioned binary codec.
//!
//! A store holds opaque bytes; this module is the only place that gives them
//! meaning. The format is a small hand-written framing (no serde, no
//! bincode): a magic, a format version, a record kind, then fields, with
//! the body last, so that decoding slices the body out of the stored bytes
//! without copying it. Decoding treats its input as untrusted: every length
//! is checked, unknown versions, kinds and codes are rejected, and nothing
//! panics.
//!
//! The format is compact, because the memory store holds entries as these
//! bytes and the payload should be most of what an entry costs (format 2):
//! lengths, counts and times are LEB128 varints; a header field with a
//! common name is one byte of name code and its value; a few fields the
//! cache itself writes are a byte or a few — `Content-Length` equal to the
//! body's length, a `Date` in the preferred format (stored as seconds from
//! `response_time`), the content `ETag` (its 16 bytes of digest) and common
//! `Content-Type` values. What does not fit a code is stored as it came.
//!
//! Times and durations keep whole milliseconds (finer parts are truncated;
//! a `response_time` before 1970 is stored as 1970); durations of whole
//! seconds take fewer bytes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::clock::{millis, millis_since_epoch};
use crate::last_value::LastValue;

const MAGIC: &[u8; 4] = b"LRDR";
/// The format version written by this build. Decoding rejects others, so a
/// format change is a cold cache, never a misread (entries written by
/// format 1, before this build, are misses and are filled again).
///
/// ```
/// use larder::entry::{DecodeError, Record, VariantIndex, FORMAT_VERSION};
///
/// let index = VariantIndex { material: "m".into(), names: vec![], nonce: 1 };
/// let mut bytes = Record::Variants(index).encode().to_vec();
/// bytes[4] = FORMAT_VERSION + 1; // the version follows the 4-byte magic
/// let decoded = Record::decode(bytes.into(), 1 << 20);
/// assert_eq!(decoded, Err(DecodeError::Version(FORMAT_VERSION + 1)));
/// ```
pub const FORMAT_VERSION: u8 = 2;

const KIND_ENTRY: u8 = 1;
const KIND_VARIANTS: u8 = 2;

const MAX_HEADERS: usize = 1024;
const MAX_VARY: usize = 64;
const MAX_TAGS: usize = 1024;

/// A stored response, ready to be sent again.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use bytes::Bytes;
/// use http::{HeaderMap, StatusCode};
/// use larder::entry::{Entry, Record};
///
/// let entry = Entry {
///     material: "larder-key-1\ndefault\nGET\nhttp\nexample.com\n/items".into(),
///     variant_nonce: 0,
///     vary: vec![],
///     status: StatusCode::OK,
///     headers: HeaderMap::new(),
///     body: Bytes::from_static(b"[]"),
///     response_time: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
///     initial_age: Duration::ZERO,
///     lifetime: Duration::from_secs(60),
///     stale_while_revalidate: Duration::ZERO,
///     stale_if_error: Duration::ZERO,
///     forbids_stale: false,
///     tags: vec!["items".into()],
/// };
/// let bytes = Record::Entry(entry.clone()).encode();
/// assert_eq!(Record::decode(bytes, 1 << 20), Ok(Record::Entry(entry)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The primary key material; compared with the request's on read.
    pub material: String,
    /// For a variant: the nonce of the variant index it belongs to (0 for an
    /// entry stored directly at a primary key). An index
    /// written anew (after invalidation or eviction) has a new nonce, so
    /// variants left from before are never reachable again.
    pub variant_nonce: u64,
    /// The Vary field names and the values the storing request had for them.
    pub vary: Vec<(HeaderName, Option<Bytes>)>,
    /// The response status.
    pub status: StatusCode,
    /// Header fields as they will be sent, without hop-by-hop fields, fields
    /// named by a qualified `private` or `no-cache`, and `Age` and
    /// `Cache-Status`, which the cache writes per response.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// When the response was received (RFC 9111 §4.2.3 `response_time`).
    pub response_time: SystemTime,
    /// The corrected initial age when received (RFC 9111 §4.2.3).
    pub initial_age: Duration,
    /// The freshness lifetime.
    pub lifetime: Duration,
    /// The response's `stale-while-revalidate` window (RFC 5861 §3), zero
    /// when absent. The store keeps the entry this much longer past expiry,
    /// and inside the window a lookup answers with it at once while one
    /// background refresh fetches a fresh one
    /// ([`Lookup::Refresh`](crate::Lookup::Refresh)).
    pub stale_while_revalidate: Duration,
    /// The `stale-if-error` window (RFC 5861 §4), from the response or the
    /// route; zero when absent. The store keeps the entry this much longer
    /// past expiry, and within it the entry stands in for a failed fetch.
    pub stale_if_error: Duration,
    /// True when it may never be served stale (RFC 9111 §4.2.4).
    pub forbids_stale: bool,
    /// Tags (surrogate keys) the entry was stored with.
    pub tags: Vec<String>,
}

impl Entry {
    /// True when the entry is within what the format can decode again
    /// (header, Vary and tag counts, field lengths): an entry beyond them is
    /// not stored, rather than stored and never readable.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use larder::entry::Entry;
    ///
    /// let mut entry = Entry {
    ///     material: "m".into(), variant_nonce: 0, vary: vec![],
    ///     status: http::StatusCode::OK, headers: http::HeaderMap::new(),
    ///     body: bytes::Bytes::new(), response_time: UNIX_EPOCH,
    ///     initial_age: Duration::ZERO, lifetime: Duration::from_secs(60),
    ///     stale_while_revalidate: Duration::ZERO, stale_if_error: Duration::ZERO,
    ///     forbids_stale: false, tags: vec![],
    /// };
    /// assert!(entry.fits_format());
    /// entry.tags = vec!["t".into(); 5000];
    /// assert!(!entry.fits_format());
    /// ```
    pub fn fits_format(&self) -> bool {
        let len_ok = |n: usize| u32::try_from(n).is_ok();
        self.headers.len() <= MAX_HEADERS
            && self.vary.len() <= MAX_VARY
            && self.tags.len() <= MAX_TAGS
            && len_ok(self.body.len())
            && len_ok(self.material.len())
            && self.headers.values().all(|v| len_ok(v.len()))
    }
}

/// What a URI's primary key holds when its responses vary: the Vary field
/// names and the nonce its variants must carry.
///
/// ```
/// use http::header::ACCEPT_ENCODING;
/// use larder::entry::{Record, VariantIndex};
///
/// let index = VariantIndex { material: "m".into(), names: vec![ACCEPT_ENCODING], nonce: 42 };
/// let bytes = Record::Variants(index.clone()).encode();
/// assert_eq!(Record::decode(bytes, 1 << 20), Ok(Record::Variants(index)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantIndex {
    /// The primary key material.
    pub material: String,
    /// The Vary field names, sorted.
    pub names: Vec<HeaderName>,
    /// The nonce every current variant carries.
    pub nonce: u64,
}

/// One stored value.
///
/// ```
/// use larder::entry::{Record, VariantIndex};
///
/// let index = VariantIndex { material: "m".into(), names: vec![], nonce: 7 };
/// let decoded = Record::decode(Record::Variants(index).encode(), 1 << 20).unwrap();
/// assert!(matches!(decoded, Record::Variants(VariantIndex { nonce: 7, .. })));
/// ```
// Records are short-lived (decoded, then taken apart), so the size gap
// between an entry and an index costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A response.
    Entry(Entry),
    /// A variant index, at a primary key.
    Variants(VariantIndex),
}

/// Why stored bytes could not be decoded. Any of these is a miss.
///
/// ```
/// use bytes::Bytes;
/// use larder::entry::{DecodeError, Record, VariantIndex};
///
/// let index = VariantIndex { material: "m".into(), names: vec![], nonce: 7 };
/// let bytes = Record::Variants(index).encode();
/// let cut = bytes.slice(..bytes.len() - 1);
/// assert_eq!(Record::decode(cut, 1 << 20), Err(DecodeError::Truncated));
/// let gif = Bytes::from_static(b"GIF89a");
/// assert_eq!(Record::decode(gif, 1 << 20), Err(DecodeError::BadMagic));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not larder's bytes.
    #[error("not a larder record (bad magic)")]
    BadMagic,
    /// Written by another format version.
    #[error("unsupported record format version {0}")]
    Version(u8),
    /// Ends before its fields do.
    #[error("truncated record")]
    Truncated,
    /// Larger than the cache accepts.
    #[error("record of {0} bytes is over the limit")]
    TooLarge(usize),
    /// A field that does not hold what it must.
    #[error("invalid record: {0}")]
    Invalid(&'static str),
}

/// Header field names coded as one byte (`code = index + 1`; 0 is a name
/// spelled out). The order is the format: a name may be added at the end,
/// never moved or removed, without a new [`FORMAT_VERSION`].
static NAMES: [HeaderName; 62] = {
    use http::header::*;
    [
        ACCEPT,
        ACCEPT_CHARSET,
        ACCEPT_ENCODING,
        ACCEPT_LANGUAGE,
        ACCEPT_RANGES,
        ACCESS_CONTROL_ALLOW_CREDENTIALS,
        ACCESS_CONTROL_ALLOW_HEADERS,
        ACCESS_CONTROL_ALLOW_METHODS,
        ACCESS_CONTROL_ALLOW_ORIGIN,
        ACCESS_CONTROL_EXPOSE_HEADERS,
        ACCESS_CONTROL_MAX_AGE,
        ACCESS_CONTROL_REQUEST_HEADERS,
        ACCESS_CONTROL_REQUEST_METHOD,
        AGE,
        ALLOW,
        ALT_SVC,
        AUTHORIZATION,
        CACHE_CONTROL,
        CONNECTION,
        CONTENT_DISPOSITION,
        CONTENT_ENCODING,
        CONTENT_LANGUAGE,
        CONTENT_LENGTH,
        CONTENT_LOCATION,
        CONTENT_RANGE,
        CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY_REPORT_ONLY,
        CONTENT_TYPE,
        COOKIE,
        DATE,
        ETAG,
        EXPIRES,
        FORWARDED,
        HOST,
        IF_MATCH,
        IF_MODIFIED_SINCE,
        IF_NONE_MATCH,
        IF_RANGE,
        IF_UNMODIFIED_SINCE,
        LAST_MODIFIED,
        LINK,
        LOCATION,
        ORIGIN,
        PRAGMA,
        RANGE,
        REFERER,
        REFERRER_POLICY,
        REFRESH,
        RETRY_AFTER,
        SERVER,
        SET_COOKIE,
        STRICT_TRANSPORT_SECURITY,
        TE,
        TRAILER,
        TRANSFER_ENCODING,
        USER_AGENT,
        VARY,
        VIA,
        WWW_AUTHENTICATE,
        X_CONTENT_TYPE_OPTIONS,
        X_FRAME_OPTIONS,
        X_XSS_PROTECTION,
    ]
};

/// Whole header fields coded as two bytes ([`FIELD_STATIC`], index); as
/// with [`NAMES`], the order is the format. Decoding them allocates
/// nothing and checks nothing: the values are made when compiling.
static STATIC_FIELDS: [(HeaderName, HeaderValue); 34] = {
    use http::header::*;
    [
        (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        ),
        (CONTENT_TYPE, HeaderValue::from_static("text/html")),
        (
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (CONTENT_TYPE, HeaderValue::from_static("text/plain")),
        (
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        ),
        (CONTENT_TYPE, HeaderValue::from_static("text/css")),
        (
            CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        ),
        (CONTENT_TYPE, HeaderValue::from_static("text/javascript")),
        (
            CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        ),
        (
            CONTENT_TYPE,
            HeaderValue::from_static("application/javascript"),
        ),
        (CONTENT_TYPE, HeaderValue::from_static("application/xml")),
        (CONTENT_TYPE, HeaderValue::from_static("text/xml")),
        (
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        ),
        (
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ),
        (CONTENT_TYPE, HeaderValue::from_static("image/png")),
        (CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
        (CONTENT_TYPE, HeaderValue::from_static("image/gif")),
        (CONTENT_TYPE, HeaderValue::from_static("image/webp")),
        (CONTENT_TYPE, HeaderValue::from_static("image/svg+xml")),
        (CONTENT_TYPE, HeaderValue::from_static("application/wasm")),
        (CONTENT_TYPE, HeaderValue::from_static("font/woff2")),
        (CONTENT_ENCODING, HeaderValue::from_static("gzip")),
        (CONTENT_ENCODING, HeaderValue::from_static("br")),
        (CONTENT_ENCODING, HeaderValue::from_static("zstd")),
        (CONTENT_ENCODING, HeaderValue::from_static("deflate")),
        (VARY, HeaderValue::from_static("accept-encoding")),
        (VARY, HeaderValue::from_static("Accept-Encoding")),
        (VARY, HeaderValue::from_static("origin")),
        (ACCEPT_RANGES, HeaderValue::from_static("bytes")),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN")),
        (ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
    ]
};

/// The static value the codec keeps for the field `name: value`, if it
/// is one of [`STATIC_FIELDS`]: a clone of it moves no reference count.
pub(crate) fn static_field(name: &HeaderName, value: &HeaderValue) -> Option<&'static HeaderValue> {
    let v = value.as_bytes();
    STATIC_FIELDS
        .iter()
        .find(|(n, s)| s.as_bytes() == v && n == name)
        .map(|(_, s)| s)
}

/// A field from [`STATIC_FIELDS`]; one byte of index follows.
const FIELD_STATIC: u8 = 0xF0;
/// `Content-Length` with the body's length: nothing follows.
const FIELD_CONTENT_LENGTH: u8 = 0xF1;
/// `Date` in the preferred format (RFC 9110 §5.6.7); a zigzag varint
/// follows, its seconds from `response_time`'s.
const FIELD_DATE: u8 = 0xF2;
/// `ETag` of the shape [`content_etag`](crate::policy::conditional::content_etag)
/// makes (strong, 32 lowercase hex digits); its 16 bytes follow.
const FIELD_HEX_ETAG: u8 = 0xF3;

/// The first second `httpdate` cannot write (year 10000).
const MAX_DATE_SECS: u64 = 253_402_300_800;

/// One header field as it is encoded.
enum Field<'a> {
    /// A name code (or 0 and the name spelled out), then the value.
    Plain(u8, &'a HeaderName, &'a [u8]),
    Static(u8),
    ContentLength,
    Date(i64),
    HexEtag([u8; 16]),
}

impl<'a> Field<'a> {
    fn of(name: &'a HeaderName, value: &'a HeaderValue, e: &Entry) -> Field<'a> {
        let v = value.as_bytes();
        if let Some(i) = STATIC_FIELDS
            .iter()
            .position(|(n, s)| s.as_bytes() == v && n == name)
        {
            return Field::Static(i as u8);
        }
        if name == http::header::CONTENT_LENGTH && v == decimal(e.body.len() as u64).as_slice() {
            return Field::ContentLength;
        }
        if name == http::header::DATE {
            if let Some(delta) = date_delta(v, secs_since_epoch(e.response_time)) {
                return Field::Date(delta);
            }
        }
        if name == http::header::ETAG {
            if let Some(digest) = hex_etag(v) {
                return Field::HexEtag(digest);
            }
        }
        Field::Plain(name_code(name), name, v)
    }

    fn put(&self, out: &mut impl Out) {
        match self {
            Field::Plain(code, name, value) => {
                put_coded_name(out, *code, name);
                put_bytes(out, value);
            }
            Field::Static(i) => out.put(&[FIELD_STATIC, *i]),
            Field::ContentLength => out.put(&[FIELD_CONTENT_LENGTH]),
            Field::Date(delta) => {
                out.put(&[FIELD_DATE]);
                put_varint(out, zigzag(*delta));
            }
            Field::HexEtag(digest) => {
                out.put(&[FIELD_HEX_ETAG]);
                out.put(digest);
            }
        }
    }
}

/// Where encoding writes: the record, or a count of its bytes, so that the
/// record is allocated at its exact size.
trait Out {
    fn put(&mut self, bytes: &[u8]);
}

struct Count(usize);

impl Out for Count {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

impl Out for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Record {
    /// Encodes the record in the current format version: the magic `LRDR`,
    /// [`FORMAT_VERSION`], the record kind, then the fields. Times and
    /// durations keep whole milliseconds. The bytes are allocated at their
    /// exact size (a store may hold them as they are).
    ///
    /// ```
    /// use larder::entry::{Record, VariantIndex, FORMAT_VERSION};
    ///
    /// let index = VariantIndex { material: "m".into(), names: vec![], nonce: 7 };
    /// let bytes = Record::Variants(index).encode();
    /// assert_eq!(&bytes[..4], b"LRDR");
    /// assert_eq!(bytes[4], FORMAT_VERSION);
    /// ```
    pub fn encode(&self) -> Bytes {
        match self {
            Record::Entry(e) => {
                let fields: Vec<Field<'_>> =
                    e.headers.iter().map(|(n, v)| Field::of(n, v, e)).collect();
                let mut count = Count(0);
                put_entry(&mut count, e, &fields);
                let mut out = Vec::with_capacity(count.0);
                put_entry(&mut out, e, &fields);
                debug_assert_eq!(out.len(), out.capacity());
                Bytes::from(out)
            }
            Record::Variants(v) => {
                let mut count = Count(0);
                put_variants(&mut count, v);
                let mut out = Vec::with_capacity(count.0);
                put_variants(&mut out, v);
                Bytes::from(out)
            }
        }
    }

    /// Decodes stored bytes. The body and the header and Vary values an
    /// entry stored as they came share `bytes`' buffer rather than being
    /// copied; strings are copied, coded names and fields are the static
    /// ones, and the few fields stored as numbers are written anew. Bytes
    /// over `max_len` are rejected before they are read.
    ///
    /// ```
    /// use http::header::ACCEPT;
    /// use larder::entry::{DecodeError, Record, VariantIndex};
    ///
    /// let index = VariantIndex { material: "m".into(), names: vec![ACCEPT], nonce: 7 };
    /// let bytes = Record::Variants(index.clone()).encode();
    /// assert_eq!(Record::decode(bytes.clone(), 1 << 20), Ok(Record::Variants(index)));
    /// assert_eq!(Record::decode(bytes.clone(), 8), Err(DecodeError::TooLarge(bytes.len())));
    /// ```
    pub fn decode(bytes: Bytes, max_len: usize) -> Result<Record, DecodeError> {
        if bytes.len() > max_len {
            return Err(DecodeError::TooLarge(bytes.len()));
        }
        let mut r = Reader { buf: bytes, pos: 0 };
        if r.view(4)? != MAGIC.as_slice() {
            return Err(DecodeError::BadMagic);
        }
        let version = r.u8()?;
        if version != FORMAT_VERSION {
            return Err(DecodeError::Version(version));
        }
        let record = match r.u8()? {
            KIND_ENTRY => Record::Entry(decode_entry(&mut r)?),
            KIND_VARIANTS => Record::Variants(decode_variants(&mut r)?),
            _ => return Err(DecodeError::Invalid("record kind")),
        };
        if r.pos != r.buf.len() {
            return Err(DecodeError::Invalid("trailing bytes"));
        }
        Ok(record)
    }
}

fn put_header(out: &mut impl Out) {
    out.put(MAGIC);
    out.put(&[FORMAT_VERSION]);
}

fn put_entry(out: &mut impl Out, e: &Entry, fields: &[Field<'_>]) {
    put_header(out);
    out.put(&[KIND_ENTRY]);
    put_bytes(out, e.material.as_bytes());
    put_varint(out, e.variant_nonce);
    // Every status is 100..=999: most take one byte this way.
    put_varint(out, u64::from(e.status.as_u16() - 100));
    put_varint(out, millis_since_epoch(e.response_time));
    put_duration(out, e.initial_age);
    put_duration(out, e.lifetime);
    put_duration(out, e.stale_while_revalidate);
    put_duration(out, e.stale_if_error);
    out.put(&[u8::from(e.forbids_stale)]);
    // The body's length comes before the fields, so that decoding knows
    // it when it meets a coded `Content-Length`; the body itself is last.
    put_varint(out, e.body.len() as u64);
    put_varint(out, e.vary.len() as u64);
    for (name, value) in &e.vary {
        put_name(out, name);
        match value {
            None => put_varint(out, 0),
            Some(v) => {
                put_varint(out, v.len() as u64 + 1);
                out.put(v);
            }
        }
    }
    put_varint(out, e.tags.len() as u64);
    for tag in &e.tags {
        put_bytes(out, tag.as_bytes());
    }
    put_varint(out, fields.len() as u64);
    for field in fields {
        field.put(out);
    }
    out.put(&e.body);
}

fn put_variants(out: &mut impl Out, v: &VariantIndex) {
    put_header(out);
    out.put(&[KIND_VARIANTS]);
    put_bytes(out, v.material.as_bytes());
    put_varint(out, v.nonce);
    put_varint(out, v.names.len() as u64);
    for name in &v.names {
        put_name(out, name);
    }
}

fn put_varint(out: &mut impl Out, mut v: u64) {
    let mut buf = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        buf[n] = v as u8 | 0x80;
        v >>= 7;
        n += 1;
    }
    buf[n] = v as u8;
    out.put(&buf[..=n]);
}

fn put_bytes(out: &mut impl Out, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.put(b);
}

/// `name`'s code: its place in [`NAMES`] plus one, or 0.
fn name_code(name: &HeaderName) -> u8 {
    NAMES
        .iter()
        .position(|n| n == name)
        .map_or(0, |i| i as u8 + 1)
}

fn put_name(out: &mut impl Out, name: &HeaderName) {
    put_coded_name(out, name_code(name), name);
}

fn put_coded_name(out: &mut impl Out, code: u8, name: &HeaderName) {
    out.put(&[code]);
    if code == 0 {
        put_bytes(out, name.as_str().as_bytes());
    }
}

/// Whole seconds as `secs << 1 | 1`, anything else as `millis << 1`.
fn put_duration(out: &mut impl Out, d: Duration) {
    let ms = millis(d).min(u64::MAX >> 1);
    if ms % 1000 == 0 {
        put_varint(out, (ms / 1000) << 1 | 1);
    } else {
        put_varint(out, ms << 1);
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

/// `n` in decimal, as `Content-Length` writes it.
fn decimal(n: u64) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// The seconds from `response_secs` of a `Date` value in the preferred
/// format, if it is one (exactly as it would be written again).
fn date_delta(value: &[u8], response_secs: u64) -> Option<i64> {
    // The cache's own `Date` is the response time: no parsing for it.
    if response_secs < MAX_DATE_SECS && value == imf_fixdate(response_secs) {
        return Some(0);
    }
    let secs = parse_imf_fixdate(value)?;
    i64::try_from(i128::from(secs) - i128::from(response_secs)).ok()
}

/// The seconds since the epoch of an IMF-fixdate from 1970 on, if `value`
/// is one exactly as [`imf_fixdate`] writes it (weekday included).
fn parse_imf_fixdate(value: &[u8]) -> Option<u64> {
    const MONTHS: &[u8; 36] = b"JanFebMarAprMayJunJulAugSepOctNovDec";
    if value.len() != 29 {
        return None;
    }
    let number = |at: usize, len: usize| -> Option<u64> {
        value[at..at + len].iter().try_fold(0u64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u64::from(c - b'0'))
        })
    };
    let day = number(5, 2)?;
    let month = MONTHS.chunks_exact(3).position(|m| m == &value[8..11])? as u64 + 1;
    let year = number(12, 4)?;
    let (hour, minute, second) = (number(17, 2)?, number(20, 2)?, number(23, 2)?);
    if year < 1970 || day == 0 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Howard Hinnant's `days_from_civil`, for dates from 1970 on.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y % 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second;
    // Writing it again catches the rest: a weekday or day of the month
    // that does not fit, separators, the zone.
    (secs < MAX_DATE_SECS && value == imf_fixdate(secs)).then_some(secs)
}

/// `secs` since the epoch as an IMF-fixdate (RFC 9110 §5.6.7), e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`; `secs` below [`MAX_DATE_SECS`]. Written
/// here rather than by `httpdate` so that decoding a `Date` allocates
/// nothing but the value.
fn imf_fixdate(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let in_day = secs % 86_400;
    // Days to a civil date (proleptic Gregorian), after Howard Hinnant's
    // `civil_from_days`, for days from 1970 on.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    let two = |out: &mut [u8], n: u64| {
        out[0] = b'0' + (n / 10) as u8;
        out[1] = b'0' + (n % 10) as u8;
    };
    two(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    two(&mut out[12..14], year / 100);
    two(&mut out[14..16], year % 100);
    two(&mut out[17..19], in_day / 3_600);
    two(&mut out[20..22], in_day / 60 % 60);
    two(&mut out[23..25], in_day % 60);
    out
}

thread_local! {
    /// The last `Date` value this thread decoded, by its second: entries
    /// stored in one second share it.
    static LAST_DATE: LastValue<u64> = const { LastValue::new() };
}

/// The `Date` field value for `secs` (below [`MAX_DATE_SECS`]).
fn date_value(secs: u64) -> Result<HeaderValue, DecodeError> {
    LAST_DATE.with(|last| {
        last.get(secs, || {
            HeaderValue::from_maybe_shared(Bytes::copy_from_slice(&imf_fixdate(secs)))
                .map_err(|_| DecodeError::Invalid("date"))
        })
    })
}

/// The digest of an `ETag` of the shape the cache makes: `"` then 32
/// lowercase hex digits then `"`.
fn hex_etag(value: &[u8]) -> Option<[u8; 16]> {
    let digits = value.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if digits.len() != 32 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

fn decode_entry(r: &mut Reader) -> Result<Entry, DecodeError> {
    let material = r.string()?;
    let variant_nonce = r.varint()?;
    let status = r
        .varint()?
        .checked_add(100)
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or(DecodeError::Invalid("status code"))?;
    let response_millis = r.varint()?;
    let response_time = UNIX_EPOCH
        .checked_add(Duration::from_millis(response_millis))
        .ok_or(DecodeError::Invalid("response time"))?;
    let initial_age = r.duration()?;
    let lifetime = r.duration()?;
    let stale_while_revalidate = r.duration()?;
    let stale_if_error = r.duration()?;
    let forbids_stale = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(DecodeError::Invalid("flag")),
    };
    let body_len = r.len()?;
    if body_len > r.buf.len() - r.pos {
        return Err(DecodeError::Truncated);
    }
    let n = r.count(MAX_VARY)?;
    let mut vary = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.header_name()?;
        let value = match r.len()? {
            0 => None,
            n => Some(r.take(n - 1)?),
        };
        vary.push((name, value));
    }
    let n = r.count(MAX_TAGS)?;
    let mut tags = Vec::with_capacity(n);
    for _ in 0..n {
        tags.push(r.string()?);
    }
    let n = r.count(MAX_HEADERS)?;
    // Room for what the cache adds when it sends the entry (Age,
    // Cache-Status, Cache-Control, a legacy header) without regrowing.
    let mut headers = HeaderMap::with_capacity(n + 4);
    for _ in 0..n {
        let (name, value) = match r.u8()? {
            FIELD_STATIC => {
                let (name, value) = STATIC_FIELDS
                    .get(usize::from(r.u8()?))
                    .ok_or(DecodeError::Invalid("field code"))?;
                (name.clone(), value.clone())
            }
            FIELD_CONTENT_LENGTH => (http::header::CONTENT_LENGTH, HeaderValue::from(body_len)),
            FIELD_DATE => {
                let delta = unzigzag(r.varint()?);
                let secs = i128::from(response_millis / 1000) + i128::from(delta);
                let secs = u64::try_from(secs)
                    .ok()
                    .filter(|s| *s < MAX_DATE_SECS)
                    .ok_or(DecodeError::Invalid("date"))?;
                (http::header::DATE, date_value(secs)?)
            }
            FIELD_HEX_ETAG => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut tag = [b'"'; 34];
                for (i, b) in r.array::<16>()?.into_iter().enumerate() {
                    tag[1 + 2 * i] = HEX[usize::from(b >> 4)];
                    tag[2 + 2 * i] = HEX[usize::from(b & 15)];
                }
                let value =
                    HeaderValue::from_bytes(&tag).map_err(|_| DecodeError::Invalid("etag"))?;
                (http::header::ETAG, value)
            }
            code => {
                let name = r.coded_name(code)?;
                let value = HeaderValue::from_maybe_shared(r.bytes()?)
                    .map_err(|_| DecodeError::Invalid("header value"))?;
                (name, value)
            }
        };
        headers.append(name, value);
    }
    let body = r.take(body_len)?;
    Ok(Entry {
        material,
        variant_nonce,
        vary,
        status,
        headers,
        body,
        response_time,
        initial_age,
        lifetime,
        stale_while_revalidate,
        stale_if_error,
        forbids_stale,
        tags,
    })
}

fn decode_variants(r: &mut Reader) -> Result<VariantIndex, DecodeError> {
    let material = r.string()?;
    let nonce = r.varint()?;
    let n = r.count(MAX_VARY)?;
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        names.push(r.header_name()?);
    }
    Ok(VariantIndex {
        material,
        names,
        nonce,
    })
}

/// The whole seconds of `t` as stored (from its whole milliseconds).
fn secs_since_epoch(t: SystemTime) -> u64 {
    millis_since_epoch(t) / 1000
}

struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        if end > self.buf.len() {
            return Err(DecodeError::Truncated);
        }
        let out = self.buf.slice(self.pos..end);
        self.pos = end;
        Ok(out)
    }

    /// A borrowed view of the next `n` bytes: no reference counting, for
    /// fields that are copied out anyway.
    fn view(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let out = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.view(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// An LEB128 varint of at most 64 bits, in its shortest form (so that
    /// every value has one encoding).
    #[inline]
    fn varint(&mut self) -> Result<u64, DecodeError> {
        // Most are one byte: counts, lengths of names and short values.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return Err(DecodeError::Invalid("varint"));
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(DecodeError::Invalid("varint"));
                }
                return Ok(v);
            }
        }
        Err(DecodeError::Invalid("varint"))
    }

    /// A length; whether that many bytes are left is checked by the read.
    fn len(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(self.varint()?).map_err(|_| DecodeError::Truncated)
    }

    fn duration(&mut self) -> Result<Duration, DecodeError> {
        let v = self.varint()?;
        Ok(if v & 1 == 1 {
            Duration::from_secs(v >> 1)
        } else {
            Duration::from_millis(v >> 1)
        })
    }

    /// A count, bounded both by `max` and by the bytes left (each element
    /// takes at least one byte), so a forged count cannot make us allocate.
    fn count(&mut self, max: usize) -> Result<usize, DecodeError> {
        let n = self.len()?;
        if n > max || n > self.buf.len() - self.pos {
            return Err(DecodeError::Invalid("element count"));
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let n = self.len()?;
        self.take(n)
    }

    fn slice(&mut self) -> Result<&[u8], DecodeError> {
        let n = self.len()?;
        self.view(n)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let b = self.slice()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError::Invalid("utf-8 string"))
    }

    fn header_name(&mut self) -> Result<HeaderName, DecodeError> {
        let code = self.u8()?;
        self.coded_name(code)
    }

    /// The name for a name code: a static one, or (0) the name spelled out.
    fn coded_name(&mut self, code: u8) -> Result<HeaderName, DecodeError> {
        if code == 0 {
            let b = self.slice()?;
            return HeaderName::from_bytes(b).map_err(|_| DecodeError::Invalid("header name"));
        }
        NAMES
            .get(usize::from(code) - 1)
            .cloned()
            .ok_or(DecodeError::Invalid("name code"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        headers.append("x-multi", HeaderValue::from_static("a"));
        headers.append("x-multi", HeaderValue::from_static("b"));
        Entry {
            material: "larder-key-1\ndefault\nGET\nhttp\nh\n/".into(),
            variant_nonce: 7,
            vary: vec![
                (
                    http::header::ACCEPT_LANGUAGE,
                    Some(Bytes::from_static(b"en")),
                ),
                (http::header::ACCEPT_ENCODING, None),
            ],
            status: StatusCode::OK,
            headers,
            body: Bytes::from_static(b"hello world"),
            response_time: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            initial_age: Duration::from_secs(3),
            lifetime: Duration::from_secs(60),
            stale_while_revalidate: Duration::from_secs(10),
            stale_if_error: Duration::ZERO,
            forbids_stale: true,
            tags: vec!["items".into(), "user:1".into()],
        }
    }

    #[test]
    fn entry_round_trips() {
        let e = entry();
        let bytes = Record::Entry(e.clone()).encode();
        assert_eq!(Record::decode(bytes, usize::MAX), Ok(Record::Entry(e)));
    }

    #[test]
    fn variant_index_round_trips() {
        let v = VariantIndex {
            material: "m".into(),
            names: vec![http::header::ACCEPT, http::header::ACCEPT_LANGUAGE],
            nonce: u64::MAX,
        };
        let bytes = Record::Variants(v.clone()).encode();
        assert_eq!(Record::decode(bytes, usize::MAX), Ok(Record::Variants(v)));
    }

    #[test]
    fn decoded_body_shares_the_stored_buffer() {
        let bytes = Record::Entry(entry()).encode();
        let Record::Entry(e) = Record::decode(bytes.clone(), usize::MAX).unwrap() else {
            panic!("not an entry")
        };
        let stored = bytes.as_ptr_range();
        assert!(stored.contains(&e.body.as_ptr()), "body was copied");
    }

    #[test]
    fn every_truncation_is_rejected_without_panic() {
        let bytes = Record::Entry(entry()).encode();
        for len in 0..bytes.len() {
            assert!(
                Record::decode(bytes.slice(..len), usize::MAX).is_err(),
                "{len}"
            );
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut v = Record::Entry(entry()).encode().to_vec();
        v.push(0);
        assert_eq!(
            Record::decode(v.into(), usize::MAX),
            Err(DecodeError::Invalid("trailing bytes"))
        );
    }

    #[test]
    fn foreign_bytes_and_other_versions_are_rejected() {
        assert_eq!(
            Record::decode(Bytes::from_static(b"{\"json\":true}"), usize::MAX),
            Err(DecodeError::BadMagic)
        );
        let mut v = Record::Entry(entry()).encode().to_vec();
        v[4] = FORMAT_VERSION + 1;
        assert_eq!(
            Record::decode(v.into(), usize::MAX),
            Err(DecodeError::Version(FORMAT_VERSION + 1))
        );
    }

    #[test]
    fn oversize_records_are_rejected_before_reading() {
        let bytes = Record::Entry(entry()).encode();
        let len = bytes.len();
        assert_eq!(
            Record::decode(bytes, len - 1),
            Err(DecodeError::TooLarge(len))
        );
    }

    #[test]
    fn forged_counts_do_not_allocate_or_panic() {
        let mut v = Vec::new();
        v.extend_from_slice(MAGIC);
        v.push(FORMAT_VERSION);
        v.push(KIND_VARIANTS);
        put_bytes(&mut v, b"m");
        put_varint(&mut v, 1);
        put_varint(&mut v, u64::MAX);
        assert_eq!(
            Record::decode(v.into(), usize::MAX),
            Err(DecodeError::Invalid("element count"))
        );
    }

    /// An entry as the cache stores it: the fields it writes itself
    /// (`Content-Length`, `Date`, the content `ETag`) and a handler's
    /// `Content-Type`, all of which have codes.
    fn stored(body_len: usize) -> Entry {
        let body = Bytes::from(vec![b'x'; body_len]);
        let response_time = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let date = httpdate::fmt_http_date(response_time);
        headers.insert(http::header::DATE, HeaderValue::from_str(&date).unwrap());
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body_len));
        headers.insert(
            http::header::ETAG,
            crate::policy::conditional::content_etag(&body),
        );
        Entry {
            material: "larder-key-1\ndefault\nGET\nhttp\nexample.com\n/items/12345".into(),
            headers,
            body,
            response_time,
            tags: vec![],
            vary: vec![],
            variant_nonce: 0,
            forbids_stale: false,
            stale_if_error: Duration::ZERO,
            stale_while_revalidate: Duration::ZERO,
            lifetime: Duration::from_secs(3600),
            ..entry()
        }
    }

    #[test]
    fn fields_the_cache_writes_are_coded_and_round_trip() {
        let e = stored(1024);
        let bytes = Record::Entry(e.clone()).encode();
        // Besides the material and the body: 26 bytes of fixed fields and
        // 22 for the four header fields (format 1 took about 250 in all).
        let overhead = bytes.len() - e.body.len() - e.material.len();
        assert!(overhead <= 48, "{overhead} bytes besides body and material");
        assert_eq!(Record::decode(bytes, usize::MAX), Ok(Record::Entry(e)));
    }

    #[test]
    fn fields_that_only_look_coded_are_stored_as_they_came() {
        let mut e = stored(16);
        let date = |s: &'static str| HeaderValue::from_static(s);
        e.headers.insert(http::header::CONTENT_LENGTH, date("017"));
        // An obsolete date format, and one that is not a date at all.
        e.headers
            .insert(http::header::DATE, date("Sunday, 06-Nov-94 08:49:37 GMT"));
        e.headers.append(http::header::DATE, date("yesterday"));
        // Weak, upper case, too short: not the cache's own shape.
        e.headers.insert(
            http::header::ETAG,
            date("W/\"99aa06d3014798d86001c324468d497f\""),
        );
        e.headers.append(
            http::header::ETAG,
            date("\"99AA06D3014798D86001C324468D497F\""),
        );
        e.headers.append(http::header::ETAG, date("\"99aa\""));
        e.headers
            .insert(http::header::CONTENT_TYPE, date("application/x-custom"));
        let bytes = Record::Entry(e.clone()).encode();
        assert_eq!(Record::decode(bytes, usize::MAX), Ok(Record::Entry(e)));
    }

    #[test]
    fn dates_of_one_second_are_one_value_and_others_their_own() {
        let date_of = |e: &Entry| {
            let bytes = Record::Entry(e.clone()).encode();
            match Record::decode(bytes, usize::MAX) {
                Ok(Record::Entry(d)) => d.headers[http::header::DATE].clone(),
                other => panic!("{other:?}"),
            }
        };
        let (mut a, mut b) = (stored(16), stored(32));
        b.material = "another key".into();
        let first = date_of(&a);
        let second = date_of(&b);
        assert_eq!(first, second);
        // One value, shared: not formatted and copied again.
        assert_eq!(first.as_bytes().as_ptr(), second.as_bytes().as_ptr());
        // A later second, and back: each decodes to its own date.
        for e in [&mut a, &mut b] {
            e.response_time += Duration::from_secs(1);
            let date = httpdate::fmt_http_date(e.response_time);
            e.headers.insert(http::header::DATE, date.parse().unwrap());
        }
        let later = date_of(&a);
        assert_eq!(later, a.headers[http::header::DATE]);
        assert_ne!(later, first);
        let mut c = stored(16);
        c.material = "a third".into();
        assert_eq!(date_of(&c), first);
    }

    #[test]
    fn dates_far_from_the_response_time_round_trip() {
        let mut e = stored(16);
        for date in [
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT",
        ] {
            e.headers
                .insert(http::header::DATE, HeaderValue::from_static(date));
            let bytes = Record::Entry(e.clone()).encode();
            assert_eq!(
                Record::decode(bytes, usize::MAX),
                Ok(Record::Entry(e.clone()))
            );
        }
    }

    #[test]
    fn dates_are_written_as_httpdate_writes_them() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let check = |secs: u64| {
            let ours = imf_fixdate(secs);
            let theirs = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs));
            assert_eq!(std::str::from_utf8(&ours).unwrap(), theirs, "{secs}");
        };
        for secs in [
            0,
            86_399,
            86_400,
            951_782_400,
            4_107_542_400,
            MAX_DATE_SECS - 1,
        ] {
            check(secs);
        }
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            check(state % MAX_DATE_SECS);
        }
    }

    #[test]
    fn dates_are_read_as_httpdate_reads_them_or_not_at_all() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let secs = state % MAX_DATE_SECS;
            let text = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs));
            assert_eq!(parse_imf_fixdate(text.as_bytes()), Some(secs), "{text}");
        }
        for text in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            let secs = httpdate::parse_http_date(text).unwrap();
            let secs = secs.duration_since(UNIX_EPOCH).unwrap().as_secs();
            assert_eq!(parse_imf_fixdate(text.as_bytes()), Some(secs), "{text}");
        }
        for text in [
            "Mon, 06 Nov 1994 08:49:37 GMT", // the wrong weekday
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun,  06 Nov 1994 08:49:37 GMT",
            "Wed, 31 Dec 1969 23:59:59 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:3x GMT",
        ] {
            assert_eq!(parse_imf_fixdate(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn a_coded_date_past_what_http_can_write_is_rejected() {
        let mut e = stored(0);
        e.headers.clear();
        let date = httpdate::fmt_http_date(e.response_time);
        e.headers
            .insert(http::header::DATE, HeaderValue::from_str(&date).unwrap());
        let mut v = Record::Entry(e).encode().to_vec();
        // The only field, and no body: the record ends with the date's
        // code and its delta of 0.
        assert_eq!(v[v.len() - 2..], [FIELD_DATE, 0]);
        v.pop();
        put_varint(&mut v, zigzag(i64::MAX / 2));
        assert_eq!(
            Record::decode(v.into(), usize::MAX),
            Err(DecodeError::Invalid("date"))
        );
    }

    #[test]
    fn unknown_codes_are_rejected() {
        let mut e = stored(0);
        e.headers.clear();
        e.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/html"),
        );
        let good = Record::Entry(e).encode().to_vec();
        let at = good.len() - 2;
        assert_eq!(good[at], FIELD_STATIC);
        let mut v = good.clone();
        v[at + 1] = STATIC_FIELDS.len() as u8;
        assert_eq!(
            Record::decode(v.into(), usize::MAX),
            Err(DecodeError::Invalid("field code"))
        );
        let mut v = good;
        v[at] = NAMES.len() as u8 + 1;
        assert_eq!(
            Record::decode(v.into(), usize::MAX),
            Err(DecodeError::Invalid("name code"))
        );
    }

    #[test]
    fn the_code_tables_fit_their_codes_and_hold_valid_fields() {
        assert!(NAMES.len() < usize::from(FIELD_STATIC));
        assert!(STATIC_FIELDS.len() <= 256);
        for (i, (name, value)) in STATIC_FIELDS.iter().enumerate() {
            let again = STATIC_FIELDS
                .iter()
                .position(|(n, v)| n == name && v == value);
            assert_eq!(again, Some(i), "{name}: {value:?} is coded twice");
        }
        let mut names: Vec<_> = NAMES.iter().map(HeaderName::as_str).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), NAMES.len(), "a name is coded twice");
    }

    #[test]
    fn varints_are_read_in_their_shortest_form_only() {
        let read = |b: &[u8]| {
            let mut r = Reader {
                buf: Bytes::copy_from_slice(b),
                pos: 0,
            };
            r.varint()
        };
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(read(&out), Ok(v));
        }
        assert!(read(&[0x80, 0x00]).is_err(), "overlong");
        assert!(read(&[0xff; 10]).is_err(), "over 64 bits");
        assert!(read(&[0x80]).is_err(), "cut");
        for v in [0, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn durations_keep_whole_milliseconds() {
        let mut e = entry();
        e.initial_age = Duration::from_millis(1_500);
        e.lifetime = Duration::from_secs(86_400);
        e.stale_while_revalidate = Duration::from_nanos(2_000_900);
        e.stale_if_error = Duration::MAX;
        let bytes = Record::Entry(e.clone()).encode();
        let Ok(Record::Entry(back)) = Record::decode(bytes, usize::MAX) else {
            panic!("not an entry")
        };
        assert_eq!(back.initial_age, e.initial_age);
        assert_eq!(back.lifetime, e.lifetime);
        assert_eq!(back.stale_while_revalidate, Duration::from_millis(2));
        assert!(back.stale_if_error > Duration::from_secs(1 << 50));
    }

    #[test]
    fn records_are_allocated_at_their_exact_size() {
        for record in [
            Record::Entry(stored(1024)),
            Record::Entry(entry()),
            Record::Variants(VariantIndex {
                material: "m".into(),
                names: vec![http::header::ACCEPT, HeaderName::from_static("x-odd")],
                nonce: 99,
            }),
        ] {
            let v: Vec<u8> = record.encode().into();
            assert_eq!(v.capacity(), v.len());
        }
    }

    #[test]
    fn format_1_records_are_rejected() {
        let mut v = Record::Entry(entry()).encode().to_vec();
        v[4] = 1;
        assert_eq!(
            Record::decode(v.into(), usize::MAX),
            Err(DecodeError::Version(1))
        );
    }

    #[test]
    fn garbage_never_panics() {
        // A deterministic pseudo-random walk over many inputs, some starting
        // with a valid prefix so that the field decoders are reached.
        for valid in [
            Record::Entry(entry()).encode(),
            Record::Entry(stored(64)).encode(),
        ] {
            walk(valid);
        }
    }

    fn walk(valid: Bytes) {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for i in 0..5_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut v = valid.to_vec();
            let at = (state as usize) % v.len();
            v[at] ^= (state >> 32) as u8 | 1;
            if i % 3 == 0 {
                v.truncate((state >> 40) as usize % (v.len() + 1));
            }
            let _ = Record::decode(v.into(), usize::MAX);
        }
    }
}
