//! The stored response and its versioned binary codec.
//!
//! A store holds opaque bytes; this module is the only place that gives them
//! meaning. The format is a small hand-written framing (no serde, no
//! bincode): a magic, a format version, a record kind, then length-prefixed
//! fields with the body last, so that decoding slices the body out of the
//! stored bytes without copying it. Decoding treats its input as untrusted:
//! every length is checked, unknown versions and kinds are rejected, and
//! nothing panics.
//!
//! Times and durations are stored as whole milliseconds (finer parts are
//! truncated; a `response_time` before 1970 is stored as 1970).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

const MAGIC: &[u8; 4] = b"LRDR";
/// The format version written by this build. Decoding rejects others, so a
/// format change is a cold cache, never a misread.
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
pub const FORMAT_VERSION: u8 = 1;

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
    /// when absent. The store keeps the entry this much longer past expiry;
    /// serving it stale while a refresh runs is not implemented yet.
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

impl Record {
    /// Encodes the record in the current format version: the magic `LRDR`,
    /// [`FORMAT_VERSION`], the record kind, then the fields. Times and
    /// durations keep whole milliseconds.
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
        let mut out = Vec::with_capacity(self.encoded_len_hint());
        out.extend_from_slice(MAGIC);
        out.push(FORMAT_VERSION);
        match self {
            Record::Entry(e) => {
                out.push(KIND_ENTRY);
                put_str(&mut out, &e.material);
                out.put_u64_le(e.variant_nonce);
                out.put_u16_le(e.status.as_u16());
                out.put_u64_le(millis_since_epoch(e.response_time));
                out.put_u64_le(millis(e.initial_age));
                out.put_u64_le(millis(e.lifetime));
                out.put_u64_le(millis(e.stale_while_revalidate));
                out.put_u64_le(millis(e.stale_if_error));
                out.push(u8::from(e.forbids_stale));
                out.put_u32_le(e.vary.len() as u32);
                for (name, value) in &e.vary {
                    put_str(&mut out, name.as_str());
                    match value {
                        None => out.push(0),
                        Some(v) => {
                            out.push(1);
                            put_bytes(&mut out, v);
                        }
                    }
                }
                out.put_u32_le(e.tags.len() as u32);
                for tag in &e.tags {
                    put_str(&mut out, tag);
                }
                out.put_u32_le(e.headers.len() as u32);
                for (name, value) in &e.headers {
                    put_str(&mut out, name.as_str());
                    put_bytes(&mut out, value.as_bytes());
                }
                put_bytes(&mut out, &e.body);
            }
            Record::Variants(v) => {
                out.push(KIND_VARIANTS);
                put_str(&mut out, &v.material);
                out.put_u64_le(v.nonce);
                out.put_u32_le(v.names.len() as u32);
                for name in &v.names {
                    put_str(&mut out, name.as_str());
                }
            }
        }
        Bytes::from(out)
    }

    fn encoded_len_hint(&self) -> usize {
        match self {
            Record::Entry(e) => {
                128 + e.material.len()
                    + e.body.len()
                    + e.headers
                        .iter()
                        .map(|(n, v)| 8 + n.as_str().len() + v.len())
                        .sum::<usize>()
            }
            Record::Variants(v) => 64 + v.material.len() + 32 * v.names.len(),
        }
    }

    /// Decodes stored bytes. The body, header values and Vary values of an
    /// entry share `bytes`' buffer rather than being copied (strings and
    /// header names are copied). Bytes over `max_len` are rejected before
    /// they are read.
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

fn decode_entry(r: &mut Reader) -> Result<Entry, DecodeError> {
    let material = r.string()?;
    let variant_nonce = r.u64()?;
    let status = StatusCode::from_u16(r.u16()?).map_err(|_| DecodeError::Invalid("status code"))?;
    let response_time = UNIX_EPOCH
        .checked_add(Duration::from_millis(r.u64()?))
        .ok_or(DecodeError::Invalid("response time"))?;
    let initial_age = Duration::from_millis(r.u64()?);
    let lifetime = Duration::from_millis(r.u64()?);
    let stale_while_revalidate = Duration::from_millis(r.u64()?);
    let stale_if_error = Duration::from_millis(r.u64()?);
    let forbids_stale = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(DecodeError::Invalid("flag")),
    };
    let n = r.count(MAX_VARY)?;
    let mut vary = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.header_name()?;
        let value = match r.u8()? {
            0 => None,
            1 => Some(r.bytes()?),
            _ => return Err(DecodeError::Invalid("vary value flag")),
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
        let name = r.header_name()?;
        let value = HeaderValue::from_maybe_shared(r.bytes()?)
            .map_err(|_| DecodeError::Invalid("header value"))?;
        headers.append(name, value);
    }
    let body = r.bytes()?;
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
    let nonce = r.u64()?;
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

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // Entries are bounded far below 4 GiB by the cache's body limit.
    out.put_u32_le(b.len() as u32);
    out.extend_from_slice(b);
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn millis_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(millis).unwrap_or(0)
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

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A count, bounded both by `max` and by the bytes left (each element
    /// takes at least one byte), so a forged count cannot make us allocate.
    fn count(&mut self, max: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n > max || n > self.buf.len() - self.pos {
            return Err(DecodeError::Invalid("element count"));
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn slice(&mut self) -> Result<&[u8], DecodeError> {
        let n = self.u32()? as usize;
        self.view(n)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let b = self.slice()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError::Invalid("utf-8 string"))
    }

    fn header_name(&mut self) -> Result<HeaderName, DecodeError> {
        let b = self.slice()?;
        HeaderName::from_bytes(b).map_err(|_| DecodeError::Invalid("header name"))
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
        put_str(&mut v, "m");
        v.put_u64_le(1);
        v.put_u32_le(u32::MAX);
        assert_eq!(
            Record::decode(v.into(), usize::MAX),
            Err(DecodeError::Invalid("element count"))
        );
    }

    #[test]
    fn garbage_never_panics() {
        // A deterministic pseudo-random walk over many inputs, some starting
        // with a valid prefix so that the field decoders are reached.
        let valid = Record::Entry(entry()).encode();
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
