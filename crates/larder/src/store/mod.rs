//! Where entries live: bytes in, bytes out.
//!
//! A store knows nothing of HTTP. The engine hands it encoded records with a
//! time to live and asks for them back by key; every caching rule lives
//! above it, so a new backend is a small file.

mod memory;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

pub use memory::MemoryStore;

/// The future a [`Store`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A store failed. The engine serves the request as a miss, counts the
/// error, and logs it at most once per interval.
#[derive(Debug, thiserror::Error)]
#[error("{store} store: {message}")]
pub struct StoreError {
    /// Which store failed.
    pub store: &'static str,
    /// What went wrong.
    pub message: String,
}

impl StoreError {
    /// A new error from the named store.
    pub fn new(store: &'static str, message: impl Into<String>) -> Self {
        StoreError {
            store,
            message: message.into(),
        }
    }
}

/// A key-value store for encoded entries.
///
/// Implement it to put larder's entries somewhere new:
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use std::time::Duration;
/// use bytes::Bytes;
/// use larder::store::{Store, StoreFuture};
///
/// #[derive(Default)]
/// struct MapStore(Mutex<HashMap<String, Bytes>>);
///
/// impl Store for MapStore {
///     fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Bytes>> {
///         Box::pin(async move { Ok(self.0.lock().unwrap().get(key).cloned()) })
///     }
///     fn put<'a>(&'a self, key: &'a str, value: Bytes, _ttl: Duration) -> StoreFuture<'a, ()> {
///         Box::pin(async move {
///             self.0.lock().unwrap().insert(key.to_owned(), value);
///             Ok(())
///         })
///     }
///     fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
///         Box::pin(async move {
///             self.0.lock().unwrap().remove(key);
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait Store: Send + Sync + 'static {
    /// The value stored under `key`, if any and not expired.
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Bytes>>;

    /// Several values at once, in the order of `keys`. Stores with round
    /// trips override it to fetch them in one.
    fn get_many<'a>(&'a self, keys: &'a [String]) -> StoreFuture<'a, Vec<Option<Bytes>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(self.get(key).await?);
            }
            Ok(out)
        })
    }

    /// Stores `value` under `key` for `ttl`, replacing what was there.
    fn put<'a>(&'a self, key: &'a str, value: Bytes, ttl: Duration) -> StoreFuture<'a, ()>;

    /// Removes `key`; removing an absent key is not an error.
    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;
}
