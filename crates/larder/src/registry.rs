//! Where an adapter that is not handed a [`Cache`] finds one: on the
//! request, put there by [`Cache::layer`] or [`Cache::extension`], or
//! process-wide, set once with [`init`].
//!
//! A cache is found by its name ([`CacheBuilder::name`](crate::CacheBuilder::name),
//! the name it also gives in `Cache-Status`), or, when none is asked for,
//! by position: the one installed closest to the handler, else the first
//! one given to [`init`].

use std::sync::{Arc, RwLock};

use crate::Cache;

/// The caches a request carries, innermost last. A request extension,
/// shared: an extension layer inserts the one it built when it was made
/// (a reference count, no allocation per request), and a handler's
/// extractor copies it the same way.
#[derive(Clone, Debug)]
pub(crate) struct Installed(Arc<[Cache]>);

impl Installed {
    /// `cache` alone.
    pub fn of(cache: &Cache) -> Self {
        Installed(Arc::from([cache.clone()]))
    }

    /// Adds `cache` to the request's caches.
    pub fn add(extensions: &mut http::Extensions, cache: &Cache) {
        Installed::add_alone(extensions, &Installed::of(cache));
    }

    /// Adds the one cache `alone` holds (made with [`Installed::of`]).
    pub fn add_alone(extensions: &mut http::Extensions, alone: &Installed) {
        match extensions.get_mut::<Installed>() {
            Some(installed) => {
                let mut caches = installed.0.to_vec();
                caches.extend(alone.0.iter().cloned());
                installed.0 = caches.into();
            }
            None => {
                extensions.insert(alone.clone());
            }
        }
    }

    /// The cache named `name`, or without a name the innermost one.
    pub fn find(&self, name: Option<&str>) -> Option<&Cache> {
        match name {
            None => self.0.last(),
            Some(name) => self.0.iter().rev().find(|c| c.name() == name),
        }
    }
}

/// Caches set with [`init`], in the order given. Read on every request
/// that has no cache of its own: uncontended read locks cost little, and
/// a process has a handful of caches at most.
static GLOBAL: RwLock<Vec<Cache>> = RwLock::new(Vec::new());

/// [`init`] was given a second cache of one name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "larder::init: a cache named {0:?} is already set; give each cache its own name with Cache::builder().name(..)"
)]
pub struct InitError(pub String);

/// Sets `cache` up process-wide, for `#[larder::cache]` handlers whose
/// request carries no cache and for `#[larder::memoize]` functions: the
/// counterpart of fastapi-cache's `FastAPICache.init`.
///
/// The first cache given is the default; each is also found by its name,
/// as the attributes' `cache = "name"` option asks. A name is taken once.
///
/// ```
/// use larder::Cache;
///
/// larder::init(Cache::builder().build()).expect("set once, at startup");
/// let sessions = Cache::builder().name("sessions").build();
/// larder::init(sessions.clone()).unwrap();
/// assert!(larder::init(sessions).is_err(), "a name is taken once");
/// ```
pub fn init(cache: Cache) -> Result<(), InitError> {
    let mut global = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
    if global.iter().any(|c| c.name() == cache.name()) {
        return Err(InitError(cache.name().to_owned()));
    }
    global.push(cache);
    Ok(())
}

/// The cache given first to [`init`], for code that purges or reads
/// stats without having been handed the cache: `None` before `init`.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use larder::Cache;
///
/// larder::init(Cache::builder().build()).unwrap();
/// // In a handler, a job, an admin endpoint:
/// let cache = larder::global().expect("larder::init ran at startup");
/// cache.purge_tag("products").await.unwrap();
/// # });
/// ```
pub fn global() -> Option<Cache> {
    lookup(None)
}

/// The cache named `name` given to [`init`], as the attributes' `cache =
/// "name"` option finds it.
///
/// ```
/// use larder::Cache;
///
/// larder::init(Cache::builder().name("sessions").build()).unwrap();
/// assert_eq!(larder::global_named("sessions").unwrap().name(), "sessions");
/// assert!(larder::global_named("elsewhere").is_none());
/// ```
pub fn global_named(name: &str) -> Option<Cache> {
    lookup(Some(name))
}

/// The process-wide cache named `name`, or without a name the default.
pub(crate) fn lookup(name: Option<&str>) -> Option<Cache> {
    let global = GLOBAL.read().unwrap_or_else(|e| e.into_inner());
    match name {
        None => global.first().cloned(),
        Some(name) => global.iter().find(|c| c.name() == name).cloned(),
    }
}

/// The cache an adapter should use: the request's, else the process-wide
/// one `global` gives (the attribute remembers it per handler).
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
pub(crate) fn find<'a>(
    installed: Option<&'a Installed>,
    name: Option<&str>,
    global: impl FnOnce() -> Option<&'a Cache>,
) -> Option<&'a Cache> {
    installed.and_then(|i| i.find(name)).or_else(global)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> Cache {
        Cache::builder().name(name).build()
    }

    #[test]
    fn the_innermost_cache_wins_unless_one_is_named() {
        let mut ext = http::Extensions::new();
        Installed::add(&mut ext, &named("outer"));
        Installed::add(&mut ext, &named("inner"));
        let installed = ext.get::<Installed>().unwrap();
        assert_eq!(installed.find(None).unwrap().name(), "inner");
        assert_eq!(installed.find(Some("outer")).unwrap().name(), "outer");
        assert!(installed.find(Some("elsewhere")).is_none());
    }

    #[test]
    fn request_caches_come_before_process_wide_ones() {
        // The only test in this binary that touches the process-wide list.
        init(named("registry-test-global")).unwrap();
        assert!(init(named("registry-test-global")).is_err());
        let mut ext = http::Extensions::new();
        Installed::add(&mut ext, &named("registry-test-global"));
        let installed = ext.get::<Installed>();
        let global = lookup(Some("registry-test-global")).unwrap();
        let on_request = find(installed, Some("registry-test-global"), || Some(&global)).unwrap();
        assert!(!std::sync::Arc::ptr_eq(&on_request.inner, &global.inner));
        let installed_ptr = &installed.unwrap().find(None).unwrap().inner;
        assert!(std::sync::Arc::ptr_eq(&on_request.inner, installed_ptr));
        let found = find(None, Some("registry-test-global"), || Some(&global)).unwrap();
        assert!(std::sync::Arc::ptr_eq(&found.inner, &global.inner));
        assert!(lookup(Some("registry-test-nowhere")).is_none());
    }
}
