//! Support for `#[larder::memoize]`: what one memoized function needs at
//! run time, and the key its arguments form.
//!
//! The attribute makes one `static` [`Memoized`] per function, adds the
//! arguments that form the key to a [`Key`], one call per argument, and
//! hands it with the function's own future to [`Memoized::call`]. The
//! caching itself is [`Cache::memoize`](crate::Cache::memoize).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::time::Duration;
//! use larder::memo::{Key, Memoized};
//!
//! static SQUARE: Memoized = Memoized::new("app::square", "default", Duration::from_secs(60), None);
//!
//! async fn square(n: u64) -> Result<u64, std::convert::Infallible> {
//!     SQUARE.call(Key::new().arg(&n), async move { Ok(n * n) }).await
//! }
//!
//! larder::init(larder::Cache::builder().build()).unwrap();
//! assert_eq!(square(7).await, Ok(49));
//! # });
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::registry;

/// One memoized function: where its results are kept and for how long.
#[derive(Debug)]
pub struct Memoized {
    function: &'static str,
    namespace: &'static str,
    ttl: Duration,
    cache: Option<&'static str>,
    no_cache_logged: AtomicBool,
    bad_key_logged: AtomicBool,
    zero_ttl_logged: AtomicBool,
}

impl Memoized {
    /// The function at path `function` (the attribute gives its module
    /// path), storing its results in `namespace` for `ttl`, with the cache
    /// named `cache` or else the default one set with [`crate::init`].
    pub const fn new(
        function: &'static str,
        namespace: &'static str,
        ttl: Duration,
        cache: Option<&'static str>,
    ) -> Self {
        Memoized {
            function,
            namespace,
            ttl,
            cache,
            no_cache_logged: AtomicBool::new(false),
            bad_key_logged: AtomicBool::new(false),
            zero_ttl_logged: AtomicBool::new(false),
        }
    }

    /// Runs `compute` unless a result for `key` is stored; stores its `Ok`
    /// value. Without a cache, or with a `ttl` of zero (which the attribute
    /// refuses at compile time), it runs uncached, and one error is logged.
    pub async fn call<T, E, F>(&self, key: Key, compute: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = Result<T, E>>,
    {
        if self.ttl.is_zero() {
            if !self.zero_ttl_logged.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    function = self.function,
                    "larder: #[larder::memoize] function `{}` runs uncached: {}",
                    self.function,
                    crate::duration::ZERO_TTL,
                );
            }
            return compute.await;
        }
        let Some(cache) = self.cache() else {
            return compute.await;
        };
        let args = match key.error {
            None => key.json,
            Some(e) => {
                if !self.bad_key_logged.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        function = self.function,
                        error = %e,
                        "larder: #[larder::memoize] could not serialize the arguments of `{}`, so that call runs uncached",
                        self.function,
                    );
                }
                return compute.await;
            }
        };
        cache
            .memoize(self.namespace, self.function, &args, self.ttl, compute)
            .await
    }

    /// Forgets every stored result of the function.
    pub async fn purge(&self) {
        if let Some(cache) = self.cache() {
            cache.purge_memoized(self.namespace, self.function).await;
        }
    }

    /// Forgets the stored result for one key (`name::forget(args)`).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use larder::memo::{Key, Memoized};
    ///
    /// static NOW: Memoized = Memoized::new("app::now", "default", Duration::from_secs(60), None);
    /// larder::init(larder::Cache::builder().build()).unwrap();
    ///
    /// let call = |n: u64| NOW.call(Key::new().arg("clock"), async move { Ok::<_, ()>(n) });
    /// assert_eq!(call(1).await, Ok(1));
    /// assert_eq!(call(2).await, Ok(1)); // stored
    /// NOW.forget(Key::new().arg("clock")).await;
    /// assert_eq!(call(3).await, Ok(3));
    /// # });
    /// ```
    pub async fn forget(&self, key: Key) {
        if let (Some(cache), None) = (self.cache(), &key.error) {
            cache
                .forget_memoized(self.namespace, self.function, &key.json)
                .await;
        }
    }

    fn cache(&self) -> Option<crate::Cache> {
        let cache = registry::lookup(self.cache);
        if cache.is_none() && !self.no_cache_logged.swap(true, Ordering::Relaxed) {
            let name = match self.cache {
                Some(name) => format!("cache named {name:?}"),
                None => "cache".to_owned(),
            };
            tracing::error!(
                function = self.function,
                "larder: #[larder::memoize] function `{}` found no {name}, so it runs uncached: \
                 call `larder::init(cache)` at startup",
                self.function,
            );
        }
        cache
    }
}

/// The arguments of one call that form its key, as a JSON array: equal
/// arguments make equal keys.
///
/// ```
/// use larder::memo::Key;
///
/// let key = Key::new().arg(&7u64).arg("apple");
/// assert_eq!(key.as_bytes(), Some(&b"[7,\"apple\"]"[..]));
/// ```
#[derive(Debug)]
pub struct Key {
    json: Vec<u8>,
    error: Option<serde_json::Error>,
}

impl Default for Key {
    fn default() -> Self {
        Key::new()
    }
}

impl Key {
    /// A key of no arguments yet.
    pub fn new() -> Self {
        Key {
            json: b"[]".to_vec(),
            error: None,
        }
    }

    /// Adds an argument. One that fails to serialize makes the call run
    /// uncached.
    pub fn arg<T: Keyable + ?Sized>(mut self, value: &T) -> Self {
        if self.error.is_none() {
            self.json.pop(); // the closing bracket, put back below
            if self.json.len() > 1 {
                self.json.push(b',');
            }
            if let Err(e) = value.write_key(&mut self.json) {
                self.error = Some(e);
            }
            self.json.push(b']');
        }
        self
    }

    /// The key's bytes, `None` when an argument failed to serialize.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self.error {
            Some(_) => None,
            None => Some(&self.json),
        }
    }
}

/// A value that can be part of a `#[larder::memoize]` key: any
/// `serde::Serialize` value. The attribute asks for it once per argument,
/// so that one that cannot be keyed is named in the compile error.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of a #[larder::memoize] key",
    label = "this argument is part of the key, so it must implement `serde::Serialize`",
    note = "derive `serde::Serialize` for it, or leave it out of the key with `#[larder::memoize(skip(name), ..)]`"
)]
pub trait Keyable {
    /// Appends the value's JSON to `out`.
    fn write_key(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error>;
}

impl<T: Serialize + ?Sized> Keyable for T {
    fn write_key(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        serde_json::to_writer(out, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_the_json_array_of_its_arguments() {
        assert_eq!(Key::new().as_bytes(), Some(&b"[]"[..]));
        let key = Key::new().arg(&(1, "a")).arg(&None::<u8>);
        assert_eq!(key.as_bytes(), Some(&br#"[[1,"a"],null]"#[..]));
    }

    #[test]
    fn an_argument_that_fails_to_serialize_makes_no_key() {
        // JSON object keys must be strings.
        let map = std::collections::BTreeMap::from([((1, 2), "x")]);
        assert!(Key::new().arg(&1).arg(&map).arg(&2).as_bytes().is_none());
    }
}
