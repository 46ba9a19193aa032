//! What happens to a forwarded request's response: stored and shared,
//! passed through, or used to invalidate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{request, response, HeaderMap, Method, Response, StatusCode, Uri};
use http_body::Body;

use super::body::{buffer, Buffered, CacheBody};
use super::coalesce::{Filling, Landed, Leader};
use super::lease::LeaseGuard;
use super::respond::{self, Answer, CACHE_STATUS};
use super::stats::Counters;
use super::Cache;
use crate::entry::{Entry, Record, VariantIndex};
use crate::policy::conditional::{self, EntityTag, Precondition};
use crate::policy::key::{self, PrimaryKey};
use crate::policy::storable::{self, RequestFacts, Storable};
use crate::policy::{
    freshness, headers as fields, CacheControl, CacheStatus, Fwd, NotStored, Policy,
};

/// A forwarded request's plan for its response: returned by
/// [`Cache::lookup`] inside [`Lookup::Forward`](super::Lookup::Forward).
///
/// Dropping a `Fill` without completing it (the client went away, the
/// handler panicked) releases any request waiting on it, in this instance
/// and, through the store's lease, in others.
pub struct Fill {
    pub(crate) cache: Cache,
    pub(crate) policy: Arc<Policy>,
    pub(crate) plan: Plan,
    pub(crate) fwd: Fwd,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) key_extra: Option<String>,
    pub(crate) directives: Option<CacheControl>,
    pub(crate) request_time: SystemTime,
    /// The namespace's generation could not be read: the response is
    /// shared with this instance's waiting requests, never written.
    pub(crate) offline: bool,
    /// The stored response this fetch replaces: revalidated with its
    /// validators, and a stand-in for a failed fetch when `stale_fallback`.
    pub(crate) stored: Option<Box<Entry>>,
    /// Whether `stored` may stand in for a failed fetch (RFC 5861 §4).
    pub(crate) stale_fallback: bool,
    /// The store lease this fetch holds for other instances.
    pub(crate) lease: Option<LeaseGuard>,
    /// Set by `prepare` when the request carries `stored`'s validators: a
    /// 304 then revalidates it.
    pub(crate) validating: AtomicBool,
    /// The request's `larder.lookup` span, for the events of its fill
    /// (disabled unless a subscriber asked for it).
    pub(crate) span: tracing::Span,
    /// When the lookup decided to forward: the fill's time is measured from it.
    pub(crate) started: std::time::Instant,
}

pub(crate) enum Plan {
    /// Forward and hand back the response untouched but for headers.
    Pass(Option<NotStored>),
    /// An unsafe method: a 2xx/3xx answer invalidates the URI (RFC 9111 §4.4).
    Invalidate,
    /// A use of this cache further out on the same request fills this key:
    /// hand the response back as it is, for that use to decide on.
    Nested,
    /// Store the response if it may be stored, and share it with followers.
    Store {
        primary: PrimaryKey,
        index: Option<VariantIndex>,
        leader: Option<Leader>,
    },
}

impl Plan {
    pub fn store(primary: PrimaryKey, index: Option<VariantIndex>, leader: Option<Leader>) -> Self {
        Plan::Store {
            primary,
            index,
            leader,
        }
    }
}

impl std::fmt::Debug for Fill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fill")
            .field("fwd", &self.fwd)
            .field("stores", &self.stores())
            .finish_non_exhaustive()
    }
}

/// Request fields the cache answers itself when it stores: the handler must
/// produce the full representation.
const CONDITIONAL_FIELDS: [header::HeaderName; 6] = [
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    header::RANGE,
];

impl Fill {
    /// When the handler could not answer at all (the service returned an
    /// error), the stale response that may stand in for it (RFC 5861
    /// `stale-if-error`), if the stored one is inside its window.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use larder::{Cache, Lookup, Policy};
    ///
    /// let cache = Cache::builder().build();
    /// let policy = Arc::new(Policy::ttl(Duration::from_secs(60)));
    /// let (parts, ()) = http::Request::get("http://h/a").body(()).unwrap().into_parts();
    /// let Lookup::Forward(fill) = cache.lookup(&parts, &policy).await else { unreachable!() };
    /// assert!(fill.stale_on_error().is_none(), "nothing stored yet");
    /// # });
    /// ```
    pub fn stale_on_error(mut self) -> Option<Response<Bytes>> {
        if !self.stale_fallback {
            return None;
        }
        let stale = self.stored.take()?;
        if let Plan::Store {
            leader: Some(leader),
            ..
        } = std::mem::replace(&mut self.plan, Plan::Pass(None))
        {
            leader.land(Landed::Uncacheable);
        }
        if let Some(lease) = self.lease.take() {
            lease.release_in_background();
        }
        Some(self.stale_answer(*stale, None))
    }

    fn stale_answer(&self, entry: Entry, fwd_status: Option<u16>) -> Response<Bytes> {
        Counters::bump(&self.cache.inner.counters.stale_hits);
        let answer = Answer {
            fwd: Some(Fwd::Stale),
            fwd_status,
            detail: self.cache.inner.detail.then_some("stale-if-error"),
            legacy: "STALE",
            ..Answer::default()
        };
        self.answer_from(entry, answer)
    }

    /// Sends `entry` to this fill's client, as `answer` describes.
    pub(super) fn answer_from(&self, entry: Entry, answer: Answer<'_>) -> Response<Bytes> {
        let now = self.cache.inner.clock.now();
        respond::from_entry(
            &self.cache,
            &self.policy,
            std::borrow::Cow::Owned(entry),
            &self.method,
            &self.headers,
            answer,
            now,
        )
    }

    /// True when the response may be stored (the request is cacheable).
    pub fn stores(&self) -> bool {
        matches!(self.plan, Plan::Store { .. })
    }

    /// Adjusts the request before the handler sees it. When the response
    /// may be stored, the handler must produce the full representation that
    /// every later request will get: HEAD becomes GET, and the client's
    /// conditional and range fields are removed (the cache answers them
    /// itself). When a stored response is being replaced, its own
    /// validators go out instead (`If-None-Match`, `If-Modified-Since`), so
    /// that a handler or origin that understands them can answer 304 and
    /// the cache keeps the body it has (RFC 9111 §4.3.1).
    ///
    /// It also marks the request as being filled by this cache, so that
    /// another use of the same cache further in (a route's layer under a
    /// router's, a `#[larder::cache]` handler) passes it through rather
    /// than wait for this fill, which waits for it.
    pub fn prepare(&self, parts: &mut request::Parts) {
        let Plan::Store { primary, .. } = &self.plan else {
            return;
        };
        Filling::mark(&mut parts.extensions, &self.cache, &primary.store_key);
        if parts.method == Method::HEAD {
            parts.method = Method::GET;
        }
        for name in CONDITIONAL_FIELDS {
            parts.headers.remove(name);
        }
        let Some(entry) = &self.stored else {
            return;
        };
        let mut validating = false;
        if let Some(etag) = entry.headers.get(header::ETAG) {
            // An ETag the cache made up itself means nothing to the origin.
            if *etag != conditional::content_etag(&entry.body) {
                parts.headers.insert(header::IF_NONE_MATCH, etag.clone());
                validating = true;
            }
        }
        if let Some(modified) = entry.headers.get(header::LAST_MODIFIED) {
            parts
                .headers
                .insert(header::IF_MODIFIED_SINCE, modified.clone());
            validating = true;
        }
        self.validating.store(validating, Ordering::Relaxed);
    }

    /// Takes the handler's response: stores it when it may be stored and
    /// returns what the client gets.
    pub async fn complete<B>(self, response: Response<B>) -> Response<CacheBody<B>>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Send,
    {
        match self.plan {
            Plan::Pass(reason) => {
                if let Some(reason) = reason {
                    self.cache.inner.counters.not_stored(reason);
                }
                self.forwarded(response.map(CacheBody::stream), reason, false)
            }
            Plan::Invalidate => {
                self.invalidate(response.status(), response.headers()).await;
                self.forwarded(response.map(CacheBody::stream), None, false)
            }
            // The outer use strips, stamps and counts.
            Plan::Nested => response.map(CacheBody::stream),
            Plan::Store { .. }
                if response.status() == StatusCode::NOT_MODIFIED
                    && self.validating.load(Ordering::Relaxed)
                    && self.stored.is_some() =>
            {
                self.freshen(response).await
            }
            Plan::Store { .. } => self.store(response).await,
        }
    }

    pub(super) fn take_store_plan(&mut self) -> (PrimaryKey, Option<VariantIndex>, Option<Leader>) {
        match std::mem::replace(&mut self.plan, Plan::Pass(None)) {
            Plan::Store {
                primary,
                index,
                leader,
            } => (primary, index, leader),
            _ => unreachable!("only called for Plan::Store"),
        }
    }

    async fn store<B>(mut self, response: Response<B>) -> Response<CacheBody<B>>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Send,
    {
        let (primary, index, leader) = self.take_store_plan();
        if freshness::is_error_for_stale(response.status()) && self.stale_fallback {
            if let Some(stale) = self.stored.take() {
                // The handler failed and a stale answer may stand in: never
                // share the failure, serve what is stored.
                if let Some(l) = leader {
                    l.land(Landed::Uncacheable);
                }
                if let Some(lease) = self.lease.take() {
                    lease.release().await;
                }
                let status = response.status().as_u16();
                return CacheBody::for_response(self.stale_answer(*stale, Some(status)));
            }
        }
        let response_time = self.cache.inner.clock.now();
        let (parts, body) = response.into_parts();
        let (storable, initial_age) = match self.decide(&parts, response_time) {
            Ok(decided) => decided,
            Err(reason) => {
                self.uncacheable(&primary, leader, reason).await;
                let response = Response::from_parts(parts, CacheBody::stream(body));
                return self.forwarded(response, Some(reason), true);
            }
        };
        let body = match buffer(body, self.cache.inner.max_body).await {
            Buffered::Complete(bytes) => bytes,
            Buffered::Unstorable { body, reason } => {
                self.uncacheable(&primary, leader, reason).await;
                return self.forwarded(Response::from_parts(parts, body), Some(reason), true);
            }
        };
        let status = parts.status.as_u16();
        let kept = Kept {
            storable,
            response_time,
            initial_age,
            fwd_status: status,
        };
        let response = self.keep(primary, index, leader, parts, body, kept).await;
        CacheBody::for_response(response)
    }

    /// The handler answered 304 to the stored response's validators: the
    /// stored body is current. Its header fields are updated from the 304
    /// and it is stored anew with a new freshness lifetime (RFC 9111
    /// §4.3.4); the client gets the full response (or its own 304).
    async fn freshen<B>(mut self, response: Response<B>) -> Response<CacheBody<B>>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Send,
    {
        let (primary, index, leader) = self.take_store_plan();
        let stored = *self.stored.take().expect("freshen needs a stored entry");
        let response_time = self.cache.inner.clock.now();
        let (mut not_modified, _) = response.into_parts();
        // RFC 9110 §6.6.1: a response without Date is dated on receipt;
        // else the stored Date would make the freshened entry old at once.
        if !not_modified.headers.contains_key(header::DATE) {
            let date = httpdate::fmt_http_date(response_time);
            if let Ok(v) = HeaderValue::from_str(&date) {
                not_modified.headers.insert(header::DATE, v);
            }
        }
        if !same_representation(&stored.headers, &not_modified.headers) {
            // A 304 for another representation says nothing about this
            // one (§4.3.4): serve what is stored, and store nothing.
            if let Some(l) = leader {
                l.land(Landed::Uncacheable);
            }
            if let Some(lease) = self.lease.take() {
                lease.release().await;
            }
            let answer = Answer {
                fwd: Some(self.fwd),
                fwd_status: Some(304),
                legacy: "MISS",
                ..Answer::default()
            };
            return CacheBody::for_response(self.answer_from(stored, answer));
        }
        Counters::bump(&self.cache.inner.counters.revalidated);
        let mut headers = stored.headers;
        fields::freshen(&mut headers, &not_modified.headers);
        let (mut parts, ()) = Response::new(()).into_parts();
        parts.status = stored.status;
        parts.version = not_modified.version;
        parts.headers = headers;
        match self.decide(&parts, response_time) {
            Ok((storable, initial_age)) => {
                let kept = Kept {
                    storable,
                    response_time,
                    initial_age,
                    fwd_status: 304,
                };
                let response = self
                    .keep(primary, index, leader, parts, stored.body, kept)
                    .await;
                CacheBody::for_response(response)
            }
            Err(reason) => {
                // The 304 made the response unstorable (`no-store`, say):
                // this client still gets the body, updated.
                self.uncacheable(&primary, leader, reason).await;
                let response = Response::from_parts(parts, stored.body);
                self.forwarded(CacheBody::for_response(response), Some(reason), true)
            }
        }
    }

    /// Whether and for how long the response may be stored, and its age on
    /// arrival.
    pub(super) fn decide(
        &self,
        parts: &response::Parts,
        response_time: SystemTime,
    ) -> Result<(Storable, Duration), NotStored> {
        let directives = self
            .policy
            .response_directives(&self.cache.inner.name, &parts.headers);
        let date = freshness::http_date(&parts.headers, header::DATE, response_time);
        let initial_age = freshness::initial_age(
            date,
            freshness::age_value(&parts.headers),
            self.request_time,
            response_time,
        );
        let facts = RequestFacts {
            method: &self.method,
            headers: &self.headers,
            directives: self.directives.as_ref(),
        };
        let storable = storable::may_store(
            &self.policy,
            facts,
            parts.status,
            &parts.headers,
            &directives,
            response_time,
            initial_age,
        )?;
        Ok((storable, initial_age))
    }

    /// The response will not be stored: waiting requests fetch their own,
    /// and the key is remembered as uncacheable for the hit-for-miss time,
    /// here and, through the lease, in other instances.
    pub(super) async fn uncacheable(
        &mut self,
        primary: &PrimaryKey,
        leader: Option<Leader>,
        reason: NotStored,
    ) {
        if let Some(l) = leader {
            l.land(Landed::Uncacheable);
        }
        self.cache.inner.counters.not_stored(reason);
        if let Some(lease) = self.lease.take() {
            lease.uncacheable().await;
        }
        if let Some(keys) = &self.cache.inner.uncacheable {
            keys.insert(
                super::lookup::flight_key(primary, &self.policy, &self.headers),
                (),
            );
        }
    }

    /// Stores a storable response, hands it to the requests waiting on
    /// this fill, and answers this fill's client from it.
    async fn keep(
        &mut self,
        primary: PrimaryKey,
        index: Option<VariantIndex>,
        leader: Option<Leader>,
        parts: response::Parts,
        body: Bytes,
        kept: Kept,
    ) -> Response<Bytes> {
        let status = parts.status;
        // Fields named by private="..."/no-cache="..." are not stored, but
        // the client whose request produced them still gets them.
        let own_fields: Vec<_> = kept
            .storable
            .strip
            .iter()
            .flat_map(|name| {
                let values = parts.headers.get_all(name).iter();
                values.map(move |v| (name.clone(), v.clone()))
            })
            .collect();
        let entry = self.entry(
            &primary,
            parts.headers,
            status,
            body,
            kept.storable,
            kept.response_time,
            kept.initial_age,
        );
        let (entry, stored) = self.land(&primary, index, leader, entry).await;
        let answer = Answer {
            fwd: Some(self.fwd),
            fwd_status: Some(kept.fwd_status),
            stored,
            legacy: "MISS",
            ..Answer::default()
        };
        let entry = Arc::unwrap_or_clone(entry);
        let mut response = self.answer_from(entry, answer);
        if response.status() != StatusCode::PRECONDITION_FAILED {
            for (name, value) in own_fields {
                response.headers_mut().append(name, value);
            }
        }
        response
    }

    /// Writes a storable entry (unless offline), hands it to the requests
    /// waiting on this fill, and frees the key's lease. Returns it, and
    /// whether it was stored. `keep` and a streamed fill (`tee.rs`) both
    /// end here.
    pub(super) async fn land(
        &mut self,
        primary: &PrimaryKey,
        index: Option<VariantIndex>,
        leader: Option<Leader>,
        entry: Entry,
    ) -> (Arc<Entry>, bool) {
        let stored = !self.offline && self.write(primary, index, &entry).await;
        let entry = Arc::new(entry);
        if let Some(l) = leader {
            l.land(Landed::Stored(entry.clone()));
        }
        // The entry is written before the lease ends: an instance that
        // takes the lease next finds it.
        if let Some(lease) = self.lease.take() {
            lease.release().await;
        }
        if let Some(keys) = &self.cache.inner.uncacheable {
            if keys.entry_count() > 0 {
                keys.invalidate(&super::lookup::flight_key(
                    primary,
                    &self.policy,
                    &self.headers,
                ));
            }
        }
        (entry, stored)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn entry(
        &self,
        primary: &PrimaryKey,
        mut headers: HeaderMap,
        status: StatusCode,
        body: bytes::Bytes,
        storable: Storable,
        response_time: SystemTime,
        initial_age: Duration,
    ) -> Entry {
        let tags = self.policy.entry_tags(&headers);
        self.policy.strip_cache_fields(&mut headers);
        fields::strip_hop_by_hop(&mut headers);
        fields::strip_named(&mut headers, &storable.strip);
        // Both are written anew for every response the cache sends.
        headers.remove(header::AGE);
        headers.remove(CACHE_STATUS);
        // RFC 9110 §6.6.1: a recipient caching a response without Date adds one.
        if !headers.contains_key(header::DATE) {
            let date = httpdate::fmt_http_date(response_time);
            if let Ok(v) = HeaderValue::from_str(&date) {
                headers.insert(header::DATE, v);
            }
        }
        // The body is exactly known: say so, for HEAD answers too.
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        if !headers.contains_key(header::ETAG) {
            headers.insert(header::ETAG, conditional::content_etag(&body));
        }
        let response_vary = match key::response_vary(&headers) {
            key::Vary::Names(names) => names,
            key::Vary::Star => Vec::new(), // refused by may_store already
        };
        let names = key::merge_vary(&self.policy.vary, &response_vary);
        if names.len() > response_vary.len() {
            // Downstream caches must keep the route's variants apart too.
            let list = names
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(v) = HeaderValue::from_str(&list) {
                headers.insert(header::VARY, v);
            }
        }
        let values = key::vary_values(&names, &self.headers);
        let vary = names
            .into_iter()
            .zip(values)
            .map(|(n, v)| (n, v.map(bytes::Bytes::from)))
            .collect();
        Entry {
            material: primary.material.clone(),
            variant_nonce: 0,
            vary,
            status,
            headers,
            body,
            response_time,
            initial_age,
            lifetime: storable.lifetime,
            stale_while_revalidate: storable.stale_while_revalidate.unwrap_or_default(),
            stale_if_error: storable.stale_if_error.unwrap_or_default(),
            forbids_stale: storable.forbids_stale,
            tags,
        }
    }

    /// Writes the entry (and, when it varies, the URI's variant index).
    /// Returns whether it was stored; a store error is counted and logged,
    /// never returned.
    async fn write(&self, primary: &PrimaryKey, seen: Option<VariantIndex>, entry: &Entry) -> bool {
        let store = &self.cache.inner.store;
        let ttl = store_ttl(entry);
        if !entry.fits_format() {
            self.cache.inner.counters.not_stored(NotStored::TooLarge);
            return false;
        }
        let names: Vec<_> = entry.vary.iter().map(|(n, _)| n.clone()).collect();
        let result = if names.is_empty() {
            let put = store
                .put(
                    &primary.store_key,
                    Record::Entry(entry.clone()).encode(),
                    ttl,
                )
                .await;
            // Whatever the store answered (a timeout may still have
            // written): copies read before are not served again.
            self.cache.hot_changed(&primary.store_key);
            put
        } else {
            if names != self.policy.vary {
                // Later lookups of this URI fetch the variant with the index.
                self.policy.varies.set();
                let memo: Arc<[header::HeaderName]> = names.clone().into();
                self.cache
                    .inner
                    .vary_memo
                    .insert(primary.store_key.clone(), memo);
            }
            let nonce = match seen {
                Some(index) if index.names == names => index.nonce,
                _ => new_nonce(),
            };
            let index = VariantIndex {
                material: primary.material.clone(),
                names: names.clone(),
                nonce,
            };
            let mut variant = entry.clone();
            variant.variant_nonce = nonce;
            let values: Vec<_> = entry
                .vary
                .iter()
                .map(|(_, v)| v.as_ref().map(|b| b.to_vec()))
                .collect();
            let variant_key = key::variant_key(primary, &names, &values);
            // The variant first: an index never points at nothing for longer
            // than it must.
            let put = store
                .put(&variant_key, Record::Entry(variant).encode(), ttl)
                .await;
            self.cache.hot_changed(&variant_key);
            match put {
                Ok(()) => {
                    let put = store
                        .put(&primary.store_key, Record::Variants(index).encode(), ttl)
                        .await;
                    self.cache.hot_changed(&primary.store_key);
                    put
                }
                Err(e) => Err(e),
            }
        };
        let result = match result {
            Ok(()) => self.index_tags(primary, entry, ttl).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                Counters::bump(&self.cache.inner.counters.stores);
                let took = self.started.elapsed();
                #[cfg(feature = "metrics")]
                self.cache
                    .inner
                    .meters
                    .fill_seconds
                    .record(took.as_secs_f64());
                tracing::debug!(
                    target: "larder",
                    parent: &self.span,
                    status = entry.status.as_u16(),
                    bytes = entry.body.len(),
                    ttl_s = ttl.as_secs(),
                    fill_ms = super::trace::millis(took),
                    "larder: stored"
                );
                true
            }
            Err(e) => {
                self.cache.store_error("put", e);
                false
            }
        }
    }

    /// Adds the URI to each of its tags' indexes, for [`Cache::purge_tag`].
    async fn index_tags(
        &self,
        primary: &PrimaryKey,
        entry: &Entry,
        ttl: Duration,
    ) -> Result<(), crate::store::StoreError> {
        for tag in &entry.tags {
            let index = self.cache.tag_key(tag);
            self.cache
                .index_add(&index, &primary.store_key, ttl)
                .await?;
        }
        Ok(())
    }

    /// Hands the handler's response on, with `Cache-Status`. When the cache
    /// removed the request's preconditions, it answers them here from the
    /// response's own validators.
    pub(super) fn forwarded<B: Body>(
        &self,
        mut response: Response<CacheBody<B>>,
        reason: Option<NotStored>,
        preconditions_removed: bool,
    ) -> Response<CacheBody<B>> {
        // Fields meant for this cache never reach clients, stored or not.
        self.policy.strip_cache_fields(response.headers_mut());
        let status = response.status();
        if preconditions_removed && status == StatusCode::OK {
            let headers = response.headers();
            let now = self.cache.inner.clock.now();
            let last_modified = freshness::http_date(headers, header::LAST_MODIFIED, now);
            match conditional::evaluate(
                &self.method,
                &self.headers,
                headers.get(header::ETAG),
                last_modified,
                now,
            ) {
                Precondition::Proceed => {}
                Precondition::NotModified => {
                    let mut headers = conditional::not_modified_headers(headers);
                    // A cookie set by this answer still belongs to this client.
                    for cookie in response.headers().get_all(header::SET_COOKIE) {
                        headers.append(header::SET_COOKIE, cookie.clone());
                    }
                    response = Response::new(CacheBody::no_body());
                    *response.status_mut() = StatusCode::NOT_MODIFIED;
                    *response.headers_mut() = headers;
                }
                Precondition::Failed => {
                    response = Response::new(CacheBody::empty());
                    *response.status_mut() = StatusCode::PRECONDITION_FAILED;
                }
            }
        }
        if preconditions_removed && self.method == Method::HEAD {
            // The handler answered the GET the cache asked for.
            *response.body_mut() = CacheBody::no_body();
        }
        let detail = reason
            .filter(|_| self.cache.inner.detail)
            .map(NotStored::as_str);
        let cache_status = CacheStatus {
            name: &self.cache.inner.name,
            fwd: Some(self.fwd),
            fwd_status: Some(status.as_u16()),
            detail,
            ..CacheStatus::default()
        };
        let legacy = if matches!(self.fwd, Fwd::Bypass | Fwd::Method) {
            "BYPASS"
        } else {
            "MISS"
        };
        if let Some(reason) = reason {
            tracing::debug!(
                target: "larder",
                parent: &self.span,
                reason = reason.as_str(),
                uri = %self.uri,
                "larder: response not stored"
            );
        }
        respond::stamp(&self.cache, response.headers_mut(), &cache_status, legacy);
        response
    }

    /// RFC 9111 §4.4: a successful unsafe request invalidates the stored
    /// responses for its URI, and for same-origin `Location` and
    /// `Content-Location`, in the route's namespace and in those its policy
    /// [invalidates](Policy::invalidates). Each namespace's keys are built
    /// with its current generation, read as lookups read it; a namespace
    /// whose generation cannot be read (the store is failing, and has never
    /// answered for it) is skipped: nothing could be deleted from that
    /// store anyway, and the failure is counted and logged as a store
    /// error.
    async fn invalidate(&self, status: StatusCode, response: &HeaderMap) {
        if !(status.is_success() || status.is_redirection()) {
            return;
        }
        let scheme = key::scheme(&self.uri).to_owned();
        let host = key::host(&self.uri, &self.headers);
        let mut targets = vec![self.uri.clone()];
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            if let Some(uri) = response
                .get(name)
                .and_then(|v| same_origin(v, &scheme, &host))
            {
                targets.push(uri);
            }
        }
        let inner = &self.cache.inner;
        for namespace in self.policy.invalidated_namespaces() {
            let Some(generation) = self.cache.generation(namespace).await else {
                continue;
            };
            for uri in &targets {
                let primary = key::primary_for(
                    &inner.prefix,
                    namespace,
                    generation,
                    "GET",
                    &scheme,
                    &host,
                    uri,
                    self.key_extra.as_deref(),
                );
                let deleted = inner.store.delete(&primary.store_key).await;
                self.cache.hot_changed(&primary.store_key);
                match deleted {
                    Ok(()) => Counters::bump(&inner.counters.invalidations),
                    Err(e) => self.cache.store_error("delete", e),
                }
            }
        }
    }
}

/// What [`Fill::keep`] stores besides the response itself.
struct Kept {
    storable: Storable,
    response_time: SystemTime,
    initial_age: Duration,
    /// The status the handler answered: the response's, or 304.
    fwd_status: u16,
}

/// Whether a 304 describes the stored response: not when both carry
/// entity tags that differ (RFC 9111 §4.3.4).
fn same_representation(stored: &HeaderMap, not_modified: &HeaderMap) -> bool {
    match (entity_tag(stored), entity_tag(not_modified)) {
        (Some(a), Some(b)) => a.weak_eq(&b),
        _ => true,
    }
}

fn entity_tag(headers: &HeaderMap) -> Option<EntityTag<'_>> {
    EntityTag::parse(headers.get(header::ETAG)?.as_bytes())
}

/// A `Location`-like field value naming the same origin: an absolute path,
/// or an absolute URI with the same scheme and host (RFC 9111 §4.4 forbids
/// invalidating other origins, which would let one site purge another's).
fn same_origin(value: &HeaderValue, scheme: &str, host: &str) -> Option<Uri> {
    let uri: Uri = value.to_str().ok()?.parse().ok()?;
    match uri.authority() {
        None if uri.path().starts_with('/') && uri.scheme().is_none() => Some(uri),
        Some(authority) => {
            let their_scheme = uri.scheme_str()?;
            let same =
                their_scheme == scheme && key::normalize_host(authority.as_str(), scheme) == host;
            same.then_some(uri)
        }
        None => None,
    }
}

/// How long the store keeps an entry: its remaining freshness plus the
/// longest stale window, so a stale entry is there to serve when allowed.
fn store_ttl(entry: &Entry) -> Duration {
    let fresh = entry.lifetime.saturating_sub(entry.initial_age);
    let mut stale = entry.stale_while_revalidate.max(entry.stale_if_error);
    if has_origin_validator(entry) {
        // Kept past expiry so that the next request can revalidate it
        // (RFC 9111 §4.3.1) instead of finding nothing and fetching it all.
        stale = stale.max(
            entry
                .lifetime
                .clamp(KEEP_FOR_REVALIDATION.0, KEEP_FOR_REVALIDATION.1),
        );
    }
    (fresh + stale).max(Duration::from_secs(1))
}

/// How long past expiry an entry with the origin's validators stays
/// stored for revalidation: its lifetime, within these bounds.
const KEEP_FOR_REVALIDATION: (Duration, Duration) =
    (Duration::from_secs(60), Duration::from_secs(3600));

/// A `Last-Modified`, or an `ETag` the origin gave (not the content hash
/// the cache adds): something an upstream can answer 304 to.
fn has_origin_validator(entry: &Entry) -> bool {
    entry.headers.contains_key(header::LAST_MODIFIED)
        || entry
            .headers
            .get(header::ETAG)
            .is_some_and(|etag| *etag != conditional::content_etag(&entry.body))
}

/// A nonce for a new variant index: unpredictable enough that two indexes
/// written for one URI differ, without a dependency on a random crate.
pub(crate) fn new_nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_location_only_9111_4_4() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert!(same_origin(&v("/a/b"), "http", "h").is_some());
        assert!(same_origin(&v("http://H:80/a"), "http", "h").is_some());
        assert!(same_origin(&v("https://h/a"), "http", "h").is_none());
        assert!(same_origin(&v("http://other/a"), "http", "h").is_none());
        assert!(same_origin(&v("relative"), "http", "h").is_none());
    }

    #[test]
    fn entries_with_origin_validators_are_kept_for_revalidation_9111_4_3_1() {
        let entry = |headers: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (n, v) in headers {
                map.insert(*n, HeaderValue::from_static(v));
            }
            let body = bytes::Bytes::from_static(b"body");
            if !map.contains_key(header::ETAG) {
                map.insert(header::ETAG, conditional::content_etag(&body));
            }
            Entry {
                material: String::new(),
                variant_nonce: 0,
                vary: Vec::new(),
                status: StatusCode::OK,
                headers: map,
                body,
                response_time: SystemTime::UNIX_EPOCH,
                initial_age: Duration::ZERO,
                lifetime: Duration::from_secs(1),
                stale_while_revalidate: Duration::ZERO,
                stale_if_error: Duration::ZERO,
                forbids_stale: false,
                tags: Vec::new(),
            }
        };
        // Only the cache's own content hash: nothing to revalidate with.
        assert_eq!(store_ttl(&entry(&[])), Duration::from_secs(1));
        let keep = Duration::from_secs(1) + KEEP_FOR_REVALIDATION.0;
        assert_eq!(store_ttl(&entry(&[("etag", "\"v1\"")])), keep);
        let dated = [("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT")];
        assert_eq!(store_ttl(&entry(&dated)), keep);
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(new_nonce(), new_nonce());
    }
}
