//! What the engine's tracing spans and events record, as small functions
//! the hot path never calls unless a subscriber is listening.
//!
//! Every cached request gets a `larder.lookup` span at debug level, target
//! `larder`, with `cache`, `method`, `uri`, `namespace`, `key` (a short
//! hash of the store key, the one `larder` logs everywhere), `outcome` (this
//! cache's `Cache-Status` parameters: `hit`, `fwd=uri-miss`, ...) and
//! `store_ms` (the store read). A fill's `larder: stored` and
//! `larder: response not stored` events are inside it.

use std::time::Duration;

use http::HeaderMap;

/// The `larder.lookup` span of `$cache` for a request's `$parts` under
/// `$policy`, with the fields every lookup has, then `$fields` (the hot
/// path's known outcome, or the long way's to be recorded): the one
/// spelling of the span's name and its common fields.
macro_rules! lookup_span {
    ($cache:expr, $parts:expr, $policy:expr, $($fields:tt)*) => {
        tracing::debug_span!(
            target: "larder",
            "larder.lookup",
            cache = %$cache.inner.name,
            method = %$parts.method,
            uri = %$parts.uri,
            namespace = %$policy.namespace,
            $($fields)*
        )
    };
}
pub(crate) use lookup_span;

/// The parameters of this cache's `Cache-Status` member (the last one).
pub(crate) fn outcome(headers: &HeaderMap) -> &str {
    crate::policy::cache_status::last_member_params(headers)
}

/// The first 12 hex digits of a store key's hash: enough to tell keys apart
/// in logs, and the same in every instance.
pub(crate) fn short_key(store_key: &str) -> &str {
    let hash = store_key
        .rfind('{')
        .map_or(store_key, |at| &store_key[at + 1..]);
    let hash = hash.trim_end_matches('}');
    hash.get(..12).unwrap_or(hash)
}

/// How long a request may wait on another's fetch before it is worth a
/// line in the log: a slow handler or a stuck lease shows up there.
pub(crate) const LONG_WAIT: Duration = Duration::from_secs(1);

/// Logs a wait on another fetch that took [`LONG_WAIT`] or more.
pub(crate) fn long_wait(waited: Duration, on: &str, flight_key: &str) {
    if waited >= LONG_WAIT {
        tracing::info!(
            target: "larder",
            waited_ms = millis(waited),
            key = short_key(flight_key),
            "larder: a request waited {} ms for {on}",
            waited.as_millis()
        );
    }
}

/// Milliseconds, with microseconds after the point.
pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::respond::CACHE_STATUS;

    #[test]
    fn outcome_is_this_caches_member_parameters() {
        let mut h = HeaderMap::new();
        h.append(&CACHE_STATUS, "origin; hit".parse().unwrap());
        h.append(
            &CACHE_STATUS,
            "edge; fwd=miss, larder; hit; ttl=59".parse().unwrap(),
        );
        assert_eq!(outcome(&h), "hit; ttl=59");
        assert_eq!(outcome(&HeaderMap::new()), "");
    }

    #[test]
    fn short_key_is_the_start_of_the_hash() {
        assert_eq!(
            short_key("larder:ns:0:{0123456789abcdef0123}"),
            "0123456789ab"
        );
        assert_eq!(short_key("odd"), "odd");
    }
}
