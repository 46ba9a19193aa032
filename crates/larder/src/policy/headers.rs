//! Which response header fields a cache stores (RFC 9111 §3.1, RFC 9110 §7.6.1).

use http::{HeaderMap, HeaderName};

/// Removes hop-by-hop fields before storing: `Connection` and every field it
/// names, `Keep-Alive`, `Proxy-Connection`, `Proxy-Authenticate`,
/// `Proxy-Authorization`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let _ = headers;
    todo!()
}

/// Removes the fields named by a qualified `private="..."` or
/// `no-cache="..."` directive (RFC 9111 §5.2.2.4, §5.2.2.7).
pub fn strip_named(headers: &mut HeaderMap, names: &[HeaderName]) {
    let _ = (headers, names);
    todo!()
}
