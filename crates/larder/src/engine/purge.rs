//! Purging on purpose: one URL, a namespace, a tag.

use std::time::Duration;

use http::Uri;

use super::Cache;
use crate::policy::key;
use crate::store::StoreError;

/// Why a purge did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    /// The URL has no scheme or host, so it names no cached response.
    #[error(
        "purge_url needs an absolute URL such as https://example.com/items, got {0:?}; \
         for a path on a host, use purge_path(namespace, \"example.com\", \"/items\")"
    )]
    NotAbsolute(String),
    /// [`Cache::purge_path`] was given something that is not a path
    /// starting with `/`, or a host that is not one.
    #[error(
        "purge_path needs a host such as \"example.com\" and a path starting with /, \
         such as \"/items?page=2\"; got host {host:?} and path {path:?}"
    )]
    NotAPath {
        /// The host given.
        host: String,
        /// The path given.
        path: String,
    },
    /// The store failed; nothing may have been purged.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Cache {
    /// Removes the stored responses for one URL in a namespace: every
    /// variant of it, for GET and HEAD. Returns whether anything was
    /// stored for it.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use larder::Cache;
    ///
    /// let cache = Cache::builder().build();
    /// let stored = cache.purge_url("default", "https://example.com/items?page=2").await.unwrap();
    /// assert!(!stored, "nothing was cached yet");
    /// assert!(cache.purge_url("default", "/items").await.is_err()); // which host?
    /// # });
    /// ```
    pub async fn purge_url(&self, namespace: &str, url: &str) -> Result<bool, PurgeError> {
        let not_absolute = || PurgeError::NotAbsolute(url.to_owned());
        let uri: Uri = url.parse().map_err(|_| not_absolute())?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(not_absolute());
        };
        let host = key::normalize_host(authority.as_str(), scheme);
        let stored = self.purge_one(namespace, scheme, &host, &uri).await?;
        tracing::info!(target: "larder", cache = %self.inner.name, namespace, url, stored, "larder: purged a URL");
        Ok(stored)
    }

    /// [`Cache::purge_url`] for a path (with its query, if any) on a host,
    /// as a handler knows them: `("example.com", "/items?page=2")`. Both
    /// schemes' entries go (a server behind a TLS terminator sees `http`,
    /// an HTTP/2 client may send `https`). Returns whether anything was
    /// stored.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use larder::Cache;
    ///
    /// let cache = Cache::builder().build();
    /// assert!(!cache.purge_path("default", "example.com", "/items?page=2").await.unwrap());
    /// assert!(cache.purge_path("default", "example.com", "items").await.is_err()); // not a path
    /// # });
    /// ```
    pub async fn purge_path(
        &self,
        namespace: &str,
        host: &str,
        path: &str,
    ) -> Result<bool, PurgeError> {
        let bad = || PurgeError::NotAPath {
            host: host.to_owned(),
            path: path.to_owned(),
        };
        if !path.starts_with('/') {
            return Err(bad());
        }
        let uri: Uri = path.parse().map_err(|_| bad())?;
        if key::authority(host.as_bytes(), "http").is_err() {
            return Err(bad());
        }
        let mut stored = false;
        for scheme in ["http", "https"] {
            let host = key::normalize_host(host, scheme);
            stored |= self.purge_one(namespace, scheme, &host, &uri).await?;
        }
        tracing::info!(target: "larder", cache = %self.inner.name, namespace, host, path, stored, "larder: purged a path");
        Ok(stored)
    }

    async fn purge_one(
        &self,
        namespace: &str,
        scheme: &str,
        host: &str,
        uri: &Uri,
    ) -> Result<bool, PurgeError> {
        let generation = self.generation(namespace).await.ok_or_else(|| {
            PurgeError::Store(crate::store::StoreError::unavailable(
                "cache",
                "the namespace generation could not be read",
            ))
        })?;
        let primary = key::primary_for(
            &self.inner.prefix,
            namespace,
            generation,
            "GET",
            scheme,
            host,
            uri,
            None,
        );
        // The primary key holds the entry or the variant index: deleting it
        // makes every variant unreachable. Read first, only to tell the
        // caller (purges are rare; the store's delete says nothing).
        let stored = self.inner.store.get(&primary.store_key).await?.is_some();
        let deleted = self.inner.store.delete(&primary.store_key).await;
        self.hot_changed(&primary.store_key);
        deleted?;
        Ok(stored)
    }

    /// Removes every stored response of a namespace, on every instance
    /// sharing the store (others notice within the namespace refresh
    /// interval). Returns the namespace's new generation.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let cache = larder::Cache::builder().build();
    /// assert_eq!(cache.purge_namespace("items").await.unwrap(), 1);
    /// assert_eq!(cache.purge_namespace("items").await.unwrap(), 2);
    /// # });
    /// ```
    pub async fn purge_namespace(&self, namespace: &str) -> Result<u64, PurgeError> {
        let generation = self.bump_generation(namespace).await?;
        tracing::info!(target: "larder", cache = %self.inner.name, namespace, generation, "larder: purged a namespace");
        Ok(generation)
    }

    /// Removes every stored response tagged `tag`, in every namespace.
    /// Returns how many URIs were purged.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let cache = larder::Cache::builder().build();
    /// assert_eq!(cache.purge_tag("products").await.unwrap(), 0);
    /// # });
    /// ```
    pub async fn purge_tag(&self, tag: &str) -> Result<u64, PurgeError> {
        let index = self.tag_key(tag);
        let store = &self.inner.store;
        let purged = match store.index_purge(&index).await {
            Err(e) if e.is_corrupt() => {
                // It was not a set, so it indexed nothing; a set made since
                // the repair may have members already.
                self.repair_index(&index).await?;
                store.index_purge(&index).await
            }
            other => other,
        };
        // The store does not say which keys went; the copies say their tags.
        self.hot_forget_tag(tag);
        let purged = purged?;
        tracing::info!(target: "larder", cache = %self.inner.name, tag, purged, "larder: purged a tag");
        Ok(purged)
    }

    /// Adds `member` to the tag index `index` (for a fill), repairing an
    /// index that is not a set first.
    pub(crate) async fn index_add(
        &self,
        index: &str,
        member: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let store = &self.inner.store;
        match store.index_add(index, member, ttl).await {
            Err(e) if e.is_corrupt() => {
                self.repair_index(index).await?;
                store.index_add(index, member, ttl).await
            }
            other => other,
        }
    }

    async fn repair_index(&self, index: &str) -> Result<(), StoreError> {
        // False: another instance repaired it first; counted there.
        if self.inner.store.repair_index(index).await? {
            self.repaired(index, "a tag index was not a set");
        }
        Ok(())
    }

    /// The store key of a tag's index.
    pub(crate) fn tag_key(&self, tag: &str) -> String {
        format!("{}:tag:{{{}}}", self.inner.prefix, key::escape(tag))
    }
}
