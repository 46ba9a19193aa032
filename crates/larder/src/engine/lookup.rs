//! Deciding what to do with a request: answer from the cache, or forward.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{request, HeaderMap, HeaderName, Method, Response};
use tracing::{Instrument, Span};

use super::coalesce::{follow, Filling, Join, Landed, Leader};
use super::fields::Fields;
use super::fill::{Fill, Plan};
use super::hot::Seen;
use super::lease::{Claim, LeaseGuard, POLL_FIRST, POLL_MAX};
use super::respond::{self, Answer};
use super::stats::Counters;
use super::{trace, Cache};
use crate::entry::{Entry, Record, VariantIndex};
use crate::policy::freshness::{self, Reuse};
use crate::policy::key::{self, PrimaryKey};
use crate::policy::{CacheControl, Fwd, Mode, NotStored, Policy};

/// What the cache decided for a request.
pub enum Lookup {
    /// Answer with this response; the handler is not called.
    Respond(Response<Bytes>),
    /// Call the handler (after [`Fill::prepare`]) and give its response to
    /// [`Fill::complete`].
    Forward(Box<Fill>),
    /// Answer with this response now, and refresh the entry in the
    /// background: call the handler as for [`Lookup::Forward`] in a spawned
    /// task and drop what [`Fill::complete`] returns. A stale response
    /// inside its `stale-while-revalidate` window, or a fresh one drawn for
    /// [early refresh](crate::Policy::early_refresh); one refresh per key
    /// runs at a time, across instances sharing a store.
    Refresh(Response<Bytes>, Box<Fill>),
}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lookup::Respond(r) => f.debug_tuple("Respond").field(&r.status()).finish(),
            Lookup::Forward(_) => f.write_str("Forward"),
            Lookup::Refresh(r, _) => f.debug_tuple("Refresh").field(&r.status()).finish(),
        }
    }
}

/// What a lookup knows of its request by the time the store answers.
struct Read {
    primary: PrimaryKey,
    directives: Option<CacheControl>,
    generation: Option<u64>,
    extra: Option<String>,
    bucket: usize,
    landings: u64,
}

/// What a lookup does once the store has answered: answer now, or await
/// a boxed next step (a refresh, a coalesced fetch).
enum Step<'a> {
    Done(Lookup),
    Then(Pin<Box<dyn Future<Output = Lookup> + Send + 'a>>),
}

/// What the store held for a request.
pub(crate) struct Found {
    pub entry: Option<Entry>,
    pub index: Option<VariantIndex>,
    pub fwd: Fwd,
    /// What the hot tier's counters were before the read, for a copy.
    pub seen: Option<Seen>,
}

impl Found {
    fn miss(fwd: Fwd, index: Option<VariantIndex>) -> Self {
        Found {
            entry: None,
            index,
            fwd,
            seen: None,
        }
    }
}

impl Cache {
    /// Decides what to do with a request under a route's policy.
    ///
    /// Adapters call this first; on [`Lookup::Forward`] they call the
    /// handler and pass its response to [`Fill::complete`]; on
    /// [`Lookup::Refresh`] they answer at once and do the same in a
    /// spawned task.
    ///
    /// ```
    /// # tokio_test();
    /// # fn tokio_test() { tokio::runtime::Runtime::new().unwrap().block_on(run()) }
    /// # async fn run() {
    /// use std::time::Duration;
    /// use larder::{Cache, Lookup, Policy};
    ///
    /// let cache = Cache::builder().build();
    /// let policy = std::sync::Arc::new(Policy::ttl(Duration::from_secs(60)));
    /// let (mut parts, ()) = http::Request::get("http://example.com/a").body(()).unwrap().into_parts();
    /// match cache.lookup(&parts, &policy).await {
    ///     Lookup::Respond(response) => println!("from cache: {}", response.status()),
    ///     Lookup::Forward(fill) => {
    ///         fill.prepare(&mut parts);
    ///         let response = http::Response::new(http_body_util::Full::new(bytes::Bytes::from("hi")));
    ///         let response = fill.complete(response).await;
    ///         assert_eq!(response.status(), 200);
    ///     }
    ///     Lookup::Refresh(response, fill) => {
    ///         fill.prepare(&mut parts);
    ///         tokio::spawn(async move {
    ///             let fresh = http::Response::new(http_body_util::Full::new(bytes::Bytes::from("hi")));
    ///             drop(fill.complete(fresh).await);
    ///         });
    ///         println!("from cache, refreshing: {}", response.status());
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn lookup(&self, parts: &request::Parts, policy: &Arc<Policy>) -> Lookup {
        if let Some(response) = self.try_hit(parts, policy) {
            return Lookup::Respond(response);
        }
        // Boxed: the long way's state (store reads, coalescing, leases) is
        // many kilobytes, and inline it would make every caller's future
        // that large, to be moved on every request, hits included (the
        // proxy's server copied it four times a request).
        Box::pin(self.lookup_past_hot(parts, policy)).await
    }

    /// [`Cache::lookup`] once [`Cache::try_hit`] has declined: adapters
    /// that try the hot tier themselves box this future, so that theirs
    /// stays small (a hit then moves no long-path state around).
    pub(crate) async fn lookup_past_hot(
        &self,
        parts: &request::Parts,
        policy: &Arc<Policy>,
    ) -> Lookup {
        // Built only when a subscriber wants it, as on the hot path: the
        // macro alone, when nothing listens, still records its fields for
        // `log` (tracing's `log` feature, which axum's defaults turn on).
        let span = if tracing::enabled!(target: "larder", tracing::Level::DEBUG) {
            trace::lookup_span!(
                self,
                parts,
                policy,
                key = tracing::field::Empty,
                outcome = tracing::field::Empty,
                store_ms = tracing::field::Empty,
            )
        } else {
            Span::none()
        };
        if span.is_disabled() {
            return self.decide(parts, policy, &span).await;
        }
        let mut lookup = self
            .decide(parts, policy, &span)
            .instrument(span.clone())
            .await;
        match &mut lookup {
            Lookup::Respond(response) => {
                span.record("outcome", trace::outcome(response.headers()));
            }
            Lookup::Refresh(response, fill) => {
                span.record("outcome", trace::outcome(response.headers()));
                fill.span = span;
            }
            Lookup::Forward(fill) => {
                span.record("outcome", format_args!("fwd={}", fill.fwd.as_str()));
                fill.span = span;
            }
        }
        lookup
    }

    /// [`Cache::lookup`] past the hot tier; `span` is the request's (often
    /// disabled: check before computing what to record on it).
    async fn decide(&self, parts: &request::Parts, policy: &Arc<Policy>, span: &Span) -> Lookup {
        let now = self.inner.clock.now();
        // `None`: the store cannot say which keys are current. Such a
        // request neither reads nor writes the store (keys of a guessed
        // generation could reach entries a purge retired), but it is still
        // coalesced in this process, under a key no store ever holds.
        // Other methods are never keyed: invalidation reads the generation
        // of each namespace it deletes in.
        let keyed = key::method_class(&parts.method).is_some();
        let generation = match keyed {
            true => {
                self.generation_seen(&policy.namespace_seen, &policy.namespace, now)
                    .await
            }
            false => None,
        };
        let offline = generation.is_none();
        // Unsafe methods compute it in `fill`, where invalidation needs it.
        let extra = keyed.then(|| key_extra(policy, parts)).flatten();
        // One parse of the host, for the key and for the check below.
        let host = key::request_host(&parts.uri, &parts.headers);
        let Some(primary) = key::primary_at(
            &self.inner.prefix,
            &policy.namespace,
            generation.unwrap_or(NO_GENERATION),
            &parts.method,
            &parts.uri,
            &host,
            extra.as_deref(),
        ) else {
            Counters::bump(&self.inner.counters.bypasses);
            // Invalidation reads each namespace's generation itself, when
            // the response is known to be a success.
            let plan = if is_safe(&parts.method) {
                Plan::Pass(Some(NotStored::Method))
            } else {
                Plan::Invalidate
            };
            return Lookup::Forward(Box::new(self.fill(
                parts,
                policy,
                plan,
                Fwd::Method,
                None,
                now,
            )));
        };
        if !span.is_disabled() {
            span.record("key", trace::short_key(&primary.store_key));
        }
        if Filling::holds(&parts.extensions, self, &primary.store_key) {
            // A use of this cache further out on this request is filling
            // this very key: it decides and stores; waiting for its flight
            // would be waiting for ourselves.
            return Lookup::Forward(Box::new(self.fill(
                parts,
                policy,
                Plan::Nested,
                Fwd::Miss,
                None,
                now,
            )));
        }
        if policy.write {
            return self.bypass(parts, policy, NotStored::Rule, Fwd::Bypass, now);
        }
        let fields = Fields::of(&parts.headers);
        // Without `Cache-Control` or `Pragma` the parse is the default.
        let directives = policy.honor_request_directives.then(|| {
            if fields.has(Fields::DIRECTIVES) {
                CacheControl::from_request(&parts.headers)
            } else {
                CacheControl::default()
            }
        });

        if fields.has(Fields::BODY) && crate::policy::storable::request_has_body(&parts.headers) {
            return self.bypass(parts, policy, NotStored::RequestBody, Fwd::Bypass, now);
        }
        // A Host that is not an RFC 3986 authority, or that the handler
        // would read differently from the key, is never keyed as another.
        // (`host_allowed` is the one allowlist rule, shared with the hot
        // path; it allows every host when there is no list.)
        let host_ok = host.is_ok_and(|host| self.host_allowed(&host));
        if !host_ok {
            return self.bypass(parts, policy, NotStored::Host, Fwd::Bypass, now);
        }
        if matches!(policy.mode, Mode::RouteTtl(_))
            && !policy.allow_authorization
            && fields.has(Fields::AUTHORIZATION)
        {
            return self.bypass(parts, policy, NotStored::Authorization, Fwd::Bypass, now);
        }
        if policy.bypass_cookies && fields.has(Fields::COOKIE) {
            return self.bypass(parts, policy, NotStored::Cookie, Fwd::Bypass, now);
        }
        if directives.as_ref().is_some_and(|d| d.no_store) {
            return self.bypass(parts, policy, NotStored::RequestNoStore, Fwd::Request, now);
        }
        // Taken before the read: a fetch of this key that lands after it
        // may have stored what the read is about to miss.
        let bucket = super::coalesce::bucket(&primary.store_key);
        let landings = self.inner.flights.landings(bucket);
        if offline || directives.as_ref().is_some_and(CacheControl::no_cache_all) {
            // Skip the read; a client's `no-cache` stores the fresh answer
            // (RFC 9111 §5.2.1.4). Concurrent refetches of the key still
            // run the handler once and share its answer.
            let miss = Miss {
                primary,
                index: None,
                fwd: if offline { Fwd::Miss } else { Fwd::Request },
                directives,
                bucket,
                landings,
                stored: None,
                stale_fallback: false,
                offline,
            };
            // Boxed, as every miss path here: the hit path's future (which
            // every request allocates and moves) stays small.
            return Box::pin(self.coalesce(parts, policy, miss, now)).await;
        }
        let started = (!span.is_disabled()).then(Instant::now);
        let found = self.find(&primary, policy, &parts.headers).await;
        if let Some(started) = started {
            span.record("store_ms", trace::millis(started.elapsed()));
        }
        let read = Read {
            primary,
            directives,
            generation,
            extra,
            bucket,
            landings,
        };
        // What follows the read is decided without awaiting, and what it
        // awaits is boxed: this future (in every lookup's, copied as it is
        // made) does not hold the entry and the rest of the miss across it.
        match self.after_find(parts, policy, read, found, now) {
            Step::Done(lookup) => lookup,
            Step::Then(next) => next.await,
        }
    }

    /// [`Cache::decide`] once the store has answered: the entry's reuse,
    /// or the miss it becomes.
    fn after_find<'a>(
        &'a self,
        parts: &'a request::Parts,
        policy: &'a Arc<Policy>,
        read: Read,
        found: Found,
        now: SystemTime,
    ) -> Step<'a> {
        let Read {
            primary,
            directives,
            generation,
            extra,
            bucket,
            landings,
        } = read;
        let mut fwd = found.fwd;
        let mut index = found.index;
        let seen = found.seen;
        // The entry this miss replaces: revalidated with its validators,
        // and standing in for a failed fetch inside its stale-if-error
        // window (RFC 5861 §4).
        let mut stored = None;
        let mut stale_fallback = false;
        if let Some(entry) = found.entry {
            let age = freshness::current_age(entry.initial_age, entry.response_time, now);
            match freshness::reuse(
                entry.lifetime,
                age,
                entry.forbids_stale,
                directives.as_ref(),
            ) {
                Reuse::Fresh => {
                    Counters::bump(&self.inner.counters.hits);
                    let early = policy.early_refresh.is_some_and(|delta| {
                        let remaining = entry.lifetime.saturating_sub(age);
                        freshness::refresh_early(remaining, delta, uniform())
                    });
                    if !early {
                        if let Some(generation) = generation {
                            self.keep_hot(
                                parts,
                                policy,
                                generation,
                                extra.as_deref(),
                                &entry,
                                seen,
                            );
                        }
                        let answer = Answer::hit();
                        return Step::Done(Lookup::Respond(
                            self.answer(entry, policy, parts, answer, now),
                        ));
                    }
                    let refresh = Refresh::new(primary, index, entry, directives);
                    return Step::Then(Box::pin(self.and_refresh(
                        parts,
                        policy,
                        refresh,
                        Answer::hit(),
                        now,
                    )));
                }
                Reuse::Stale => {
                    Counters::bump(&self.inner.counters.stale_hits);
                    let answer = Answer::stale_hit();
                    return Step::Done(Lookup::Respond(
                        self.answer(entry, policy, parts, answer, now),
                    ));
                }
                Reuse::Forward => {
                    let expired = age >= entry.lifetime;
                    fwd = if expired { Fwd::Stale } else { Fwd::Request };
                    if freshness::stale_while_revalidate_allows(
                        entry.lifetime,
                        age,
                        entry.forbids_stale,
                        entry.stale_while_revalidate,
                        directives.as_ref(),
                    ) {
                        Counters::bump(&self.inner.counters.stale_hits);
                        let refresh = Refresh::new(primary, index, entry, directives);
                        return Step::Then(Box::pin(self.and_refresh(
                            parts,
                            policy,
                            refresh,
                            Answer::stale_hit(),
                            now,
                        )));
                    }
                    stale_fallback = expired
                        && freshness::stale_if_error_allows(
                            entry.lifetime,
                            age,
                            entry.forbids_stale,
                            entry.stale_if_error,
                            directives.as_ref(),
                        );
                    stored = Some(Box::new(entry));
                }
            }
        }
        if directives.as_ref().is_some_and(|d| d.only_if_cached) {
            Counters::bump(&self.inner.counters.misses);
            return Step::Done(Lookup::Respond(respond::gateway_timeout(self, fwd)));
        }
        let miss = Miss {
            primary,
            index: index.take(),
            fwd,
            directives,
            bucket,
            landings,
            stored,
            stale_fallback,
            offline: false,
        };
        Step::Then(Box::pin(self.coalesce(parts, policy, miss, now)))
    }

    async fn coalesce(
        &self,
        parts: &request::Parts,
        policy: &Arc<Policy>,
        mut miss: Miss,
        now: SystemTime,
    ) -> Lookup {
        let flight_key = flight_key(&miss.primary, policy, &parts.headers);
        let uncacheable = self
            .inner
            .uncacheable
            .as_ref()
            .is_some_and(|keys| keys.contains_key(&flight_key));
        if uncacheable || !self.inner.coalescing {
            // Hit-for-miss: the last answer could not be shared, so waiting
            // for another's would only queue requests.
            Counters::bump(&self.inner.counters.misses);
            return Lookup::Forward(Box::new(self.miss_fill(parts, policy, miss, None, now)));
        }
        // A leader that goes away hands the key to the next request; a few
        // rounds of that and we stop waiting.
        for _ in 0..3 {
            let rx = match self.inner.flights.join(&flight_key, miss.bucket) {
                Join::Leader(leader) => {
                    return self
                        .lead(parts, policy, miss, leader, &flight_key, now)
                        .await
                }
                Join::Follower(rx) => rx,
            };
            let began = tokio::time::Instant::now();
            let landed = tokio::time::timeout(self.inner.coalesce_wait, follow(rx)).await;
            trace::long_wait(began.elapsed(), "another request's fetch", &flight_key);
            match landed {
                Ok(Landed::Stored(entry)) if key::vary_matches(&entry.vary, &parts.headers) => {
                    Counters::bump(&self.inner.counters.collapsed);
                    let entry = Arc::unwrap_or_clone(entry);
                    let now = self.inner.clock.now();
                    let answer = Answer::collapsed(miss.fwd);
                    return Lookup::Respond(self.answer(entry, policy, parts, answer, now));
                }
                Ok(Landed::Abandoned) => {
                    miss.landings = self.inner.flights.landings(miss.bucket);
                    continue;
                }
                // The fetch failed: the same answer now, not another fetch
                // that fails the same way after it.
                Ok(Landed::Failed(failure)) => {
                    let response = self.follower_of_failed(
                        parts,
                        policy,
                        miss.fwd,
                        miss.stored,
                        miss.stale_fallback,
                        failure,
                    );
                    return Lookup::Respond(response);
                }
                // Uncacheable, another variant, or waited too long: fetch our own.
                _ => break,
            }
        }
        Counters::bump(&self.inner.counters.misses);
        Lookup::Forward(Box::new(self.miss_fill(parts, policy, miss, None, now)))
    }

    /// This instance's one request for a missing key: take the key's lease
    /// in the store, or wait while another instance holds it.
    async fn lead(
        &self,
        parts: &request::Parts,
        policy: &Arc<Policy>,
        miss: Miss,
        leader: Leader,
        flight_key: &str,
        now: SystemTime,
    ) -> Lookup {
        let began = tokio::time::Instant::now();
        let lookup = self
            .take_lease(parts, policy, miss, leader, flight_key, now)
            .await;
        trace::long_wait(
            began.elapsed(),
            "another instance's fetch (its store lease)",
            flight_key,
        );
        lookup
    }

    async fn take_lease(
        &self,
        parts: &request::Parts,
        policy: &Arc<Policy>,
        mut miss: Miss,
        leader: Leader,
        flight_key: &str,
        now: SystemTime,
    ) -> Lookup {
        let deadline = tokio::time::Instant::now() + self.inner.coalesce_wait;
        let mut pause = POLL_FIRST;
        loop {
            if miss.offline {
                // No lease and no second look: the store is not asked.
                break;
            }
            match self.claim(flight_key).await {
                Claim::Off => {
                    if self.inner.flights.landings(miss.bucket) != miss.landings {
                        // Another fetch landed after our read: look again
                        // rather than run the handler a second time.
                        if let Some(entry) =
                            self.fresh_in_store(parts, policy, &mut miss, now).await
                        {
                            return self.collapse(parts, policy, leader, entry, miss.fwd, now);
                        }
                    }
                    break;
                }
                Claim::Granted(guard) => {
                    // The lease may have just been freed by a fill that
                    // stored what our first read missed.
                    if let Some(entry) = self.fresh_in_store(parts, policy, &mut miss, now).await {
                        guard.release().await;
                        return self.collapse(parts, policy, leader, entry, miss.fwd, now);
                    }
                    Counters::bump(&self.inner.counters.misses);
                    let fill = self.miss_fill(parts, policy, miss, Some(leader), now);
                    return Lookup::Forward(Box::new(with_lease(fill, guard)));
                }
                Claim::Uncacheable => {
                    // Another instance found it uncacheable: run in
                    // parallel, and so do this instance's waiting requests.
                    leader.land(Landed::Uncacheable);
                    if let Some(keys) = &self.inner.uncacheable {
                        keys.insert(flight_key.to_owned(), ());
                    }
                    Counters::bump(&self.inner.counters.misses);
                    return Lookup::Forward(Box::new(
                        self.miss_fill(parts, policy, miss, None, now),
                    ));
                }
                Claim::Held => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    tokio::time::sleep(pause.min(left)).await;
                    pause = (pause * 2).min(POLL_MAX);
                    if let Some(entry) = self.fresh_in_store(parts, policy, &mut miss, now).await {
                        return self.collapse(parts, policy, leader, entry, miss.fwd, now);
                    }
                }
            }
        }
        Counters::bump(&self.inner.counters.misses);
        Lookup::Forward(Box::new(self.miss_fill(
            parts,
            policy,
            miss,
            Some(leader),
            now,
        )))
    }

    /// A fresh entry the store holds now for this request, if any.
    async fn fresh_in_store(
        &self,
        parts: &request::Parts,
        policy: &Policy,
        miss: &mut Miss,
        now: SystemTime,
    ) -> Option<Entry> {
        let found = self.find(&miss.primary, policy, &parts.headers).await;
        miss.index = found.index;
        found.entry.filter(|e| {
            // Fetched after this request arrived: as good as its own fetch,
            // whatever it asked (`max-age=0` included), as for a follower.
            if e.response_time >= now {
                return true;
            }
            // A client's `no-cache` accepts nothing stored before it asked.
            if miss
                .directives
                .as_ref()
                .is_some_and(CacheControl::no_cache_all)
            {
                return false;
            }
            let age = freshness::current_age(e.initial_age, e.response_time, now);
            let r = freshness::reuse(e.lifetime, age, e.forbids_stale, miss.directives.as_ref());
            r == Reuse::Fresh
        })
    }

    /// Serves an entry another fetch stored, and hands it to this
    /// instance's waiting requests.
    fn collapse(
        &self,
        parts: &request::Parts,
        policy: &Policy,
        leader: Leader,
        entry: Entry,
        fwd: Fwd,
        now: SystemTime,
    ) -> Lookup {
        let entry = Arc::new(entry);
        leader.land(Landed::Stored(entry.clone()));
        Counters::bump(&self.inner.counters.collapsed);
        let entry = Arc::unwrap_or_clone(entry);
        Lookup::Respond(self.answer(entry, policy, parts, Answer::collapsed(fwd), now))
    }

    /// The fill of a request that missed.
    fn miss_fill(
        &self,
        parts: &request::Parts,
        policy: &Arc<Policy>,
        miss: Miss,
        leader: Option<Leader>,
        now: SystemTime,
    ) -> Fill {
        let plan = Plan::store(miss.primary, miss.index, leader);
        let mut fill = self.fill(parts, policy, plan, miss.fwd, miss.directives, now);
        fill.stored = miss.stored;
        fill.stale_fallback = miss.stale_fallback;
        fill.offline = miss.offline;
        fill
    }

    /// Answers with `response` and, unless a refresh of the key is already
    /// running here or in another instance, starts one.
    async fn and_refresh(
        &self,
        parts: &request::Parts,
        policy: &Arc<Policy>,
        refresh: Refresh,
        answer: Answer<'_>,
        now: SystemTime,
    ) -> Lookup {
        let response = self.answer(refresh.entry.clone(), policy, parts, answer, now);
        let flight_key = flight_key(&refresh.primary, policy, &parts.headers);
        let bucket = super::coalesce::bucket(&refresh.primary.store_key);
        let Join::Leader(leader) = self.inner.flights.join(&flight_key, bucket) else {
            return Lookup::Respond(response);
        };
        let lease = match self.claim(&flight_key).await {
            Claim::Granted(guard) => Some(guard),
            Claim::Off => None,
            // Another instance refreshes it, or it turned uncacheable and
            // will simply expire.
            Claim::Held | Claim::Uncacheable => return Lookup::Respond(response),
        };
        Counters::bump(&self.inner.counters.refreshes);
        let plan = Plan::store(refresh.primary, refresh.index, Some(leader));
        let mut fill = self.fill(parts, policy, plan, Fwd::Stale, refresh.directives, now);
        fill.stored = Some(Box::new(refresh.entry));
        fill.lease = lease;
        Lookup::Refresh(response, Box::new(fill))
    }

    /// Forwards a request without reading or writing the cache, for
    /// adapters that know something `lookup` cannot see: a GET whose body
    /// streams without a `Content-Length` (HTTP/2), say. The response gets
    /// `Cache-Status: …; fwd=bypass` and counts as not stored for `reason`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use larder::{Cache, NotStored, Policy};
    ///
    /// let cache = Cache::builder().build();
    /// let policy = Arc::new(Policy::ttl(Duration::from_secs(60)));
    /// let (parts, ()) = http::Request::get("/search").body(()).unwrap().into_parts();
    /// let fill = cache.forward_uncached(&parts, &policy, NotStored::RequestBody);
    /// assert!(!fill.stores());
    /// let response = http::Response::new(http_body_util::Full::new(bytes::Bytes::from("r")));
    /// let response = fill.complete(response).await;
    /// assert!(response.headers()["cache-status"].to_str().unwrap().contains("fwd=bypass"));
    /// # });
    /// ```
    pub fn forward_uncached(
        &self,
        parts: &request::Parts,
        policy: &Arc<Policy>,
        reason: NotStored,
    ) -> Fill {
        let now = self.inner.clock.now();
        match self.bypass(parts, policy, reason, Fwd::Bypass, now) {
            Lookup::Forward(fill) => *fill,
            Lookup::Respond(_) | Lookup::Refresh(..) => unreachable!("bypass always forwards"),
        }
    }

    fn bypass(
        &self,
        parts: &request::Parts,
        policy: &Arc<Policy>,
        reason: NotStored,
        fwd: Fwd,
        now: SystemTime,
    ) -> Lookup {
        Counters::bump(&self.inner.counters.bypasses);
        Lookup::Forward(Box::new(self.fill(
            parts,
            policy,
            Plan::Pass(Some(reason)),
            fwd,
            None,
            now,
        )))
    }

    fn fill(
        &self,
        parts: &request::Parts,
        policy: &Arc<Policy>,
        plan: Plan,
        fwd: Fwd,
        directives: Option<CacheControl>,
        request_time: SystemTime,
    ) -> Fill {
        let key_extra = matches!(plan, Plan::Invalidate)
            .then(|| key_extra(policy, parts))
            .flatten();
        Fill {
            cache: self.clone(),
            policy: policy.clone(),
            plan,
            fwd,
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
            key_extra,
            directives,
            request_time,
            offline: false,
            stored: None,
            stale_fallback: false,
            lease: None,
            validating: Default::default(),
            span: Span::none(),
            started: Instant::now(),
        }
    }

    fn answer(
        &self,
        entry: Entry,
        policy: &Policy,
        parts: &request::Parts,
        answer: Answer<'_>,
        now: SystemTime,
    ) -> Response<Bytes> {
        respond::from_entry(
            self,
            policy,
            std::borrow::Cow::Owned(entry),
            &parts.method,
            &parts.headers,
            answer,
            now,
        )
    }

    /// Reads what the store holds for the request: one round trip when the
    /// route declares its vary fields, a second only when the response
    /// varied on fields the route did not declare.
    pub(crate) async fn find(
        &self,
        primary: &PrimaryKey,
        policy: &Policy,
        headers: &HeaderMap,
    ) -> Found {
        let store = &self.inner.store;
        let declared = policy.vary.as_slice();
        // The variant to fetch with the index: the route's declared vary
        // fields, or the names this instance last saw in the URI's index.
        let guess = if declared.is_empty() && policy.varies.get() {
            self.inner.vary_memo.get(primary.store_key.as_str())
        } else {
            None
        };
        let names: &[HeaderName] = match &guess {
            Some(names) => names,
            None => declared,
        };
        let mut seen = self.hot_before_read(&primary.store_key);
        let read = if names.is_empty() {
            store.get(&primary.store_key).await.map(|v| (v, None))
        } else {
            // The index and the variant, in one round trip (one hash slot).
            let values = key::vary_values(names, headers);
            let keys = [
                primary.store_key.clone(),
                key::variant_key(primary, names, &values),
            ];
            seen = self.hot_and(seen, &keys[1]);
            store.get_many(&keys).await.map(|mut got| {
                let variant = got.get_mut(1).and_then(Option::take);
                (got.into_iter().next().flatten(), variant)
            })
        };
        let (first, prefetched) = match read {
            Ok(read) => read,
            Err(e) => {
                self.store_error("get", e);
                return Found::miss(Fwd::Miss, None);
            }
        };
        let Some(bytes) = first else {
            return Found::miss(Fwd::UriMiss, None);
        };
        let index = match self.decode(&primary.store_key, bytes).await {
            Some(Record::Entry(entry)) => {
                let usable = entry.material == primary.material
                    && declared
                        .iter()
                        .all(|d| entry.vary.iter().any(|(n, _)| n == d));
                if !usable {
                    return Found::miss(Fwd::UriMiss, None);
                }
                if !key::vary_matches(&entry.vary, headers) {
                    return Found::miss(Fwd::VaryMiss, None);
                }
                return Found {
                    entry: Some(entry),
                    index: None,
                    fwd: Fwd::Miss,
                    seen,
                };
            }
            Some(Record::Variants(index)) => index,
            None => return Found::miss(Fwd::UriMiss, None),
        };
        if index.material != primary.material || !declared.iter().all(|d| index.names.contains(d)) {
            return Found::miss(Fwd::UriMiss, None);
        }
        if index.names.as_slice() != declared && index.names.as_slice() != names {
            policy.varies.set();
            let names: Arc<[HeaderName]> = index.names.clone().into();
            self.inner
                .vary_memo
                .insert(primary.store_key.clone(), names);
        }
        let variant = if index.names == names {
            prefetched
        } else {
            let values = key::vary_values(&index.names, headers);
            let variant_key = key::variant_key(primary, &index.names, &values);
            seen = self.hot_and(seen, &variant_key);
            match store.get(&variant_key).await {
                Ok(v) => v,
                Err(e) => {
                    self.store_error("get", e);
                    None
                }
            }
        };
        let Some(bytes) = variant else {
            return Found::miss(Fwd::VaryMiss, Some(index));
        };
        let values = key::vary_values(&index.names, headers);
        let variant_key = key::variant_key(primary, &index.names, &values);
        match self.decode(&variant_key, bytes).await {
            Some(Record::Entry(entry))
                if entry.material == primary.material
                    && entry.variant_nonce == index.nonce
                    && key::vary_matches(&entry.vary, headers) =>
            {
                Found {
                    entry: Some(entry),
                    index: Some(index),
                    fwd: Fwd::Miss,
                    seen,
                }
            }
            _ => Found::miss(Fwd::VaryMiss, Some(index)),
        }
    }

    /// Decodes a stored value; a corrupt or foreign one is deleted and
    /// counted, and reads as nothing.
    pub(crate) async fn decode(&self, store_key: &str, bytes: Bytes) -> Option<Record> {
        // The record is returned before any await: held across the delete,
        // it would make this future, and every lookup's, the record's size.
        let e = match Record::decode(bytes, self.max_record_bytes()) {
            Ok(record) => return Some(record),
            Err(e) => e,
        };
        Counters::bump(&self.inner.counters.corrupt_entries);
        if let Some(suppressed) = self.inner.error_log.allow() {
            tracing::warn!(error = %e, key = store_key, suppressed, "larder: unreadable entry deleted");
        }
        if let Err(e) = self.inner.store.delete(store_key).await {
            self.store_error("delete", e);
        }
        None
    }
}

/// A request that missed, on its way to the handler or to another's fetch.
struct Miss {
    primary: PrimaryKey,
    index: Option<VariantIndex>,
    fwd: Fwd,
    directives: Option<CacheControl>,
    /// The landing bucket of the primary key, and its count before the read.
    bucket: usize,
    landings: u64,
    /// The entry the fetch replaces, if one was found.
    stored: Option<Box<Entry>>,
    /// Whether `stored` may stand in if the fetch fails.
    stale_fallback: bool,
    /// The namespace's generation could not be read: the store is neither
    /// read nor written, and only this instance's requests coalesce.
    offline: bool,
}

/// What a background refresh needs: where the entry lives and what it is.
struct Refresh {
    primary: PrimaryKey,
    index: Option<VariantIndex>,
    entry: Entry,
    directives: Option<CacheControl>,
}

impl Refresh {
    fn new(
        primary: PrimaryKey,
        index: Option<VariantIndex>,
        entry: Entry,
        directives: Option<CacheControl>,
    ) -> Self {
        Refresh {
            primary,
            index,
            entry,
            directives,
        }
    }
}

fn with_lease(mut fill: Fill, guard: LeaseGuard) -> Fill {
    fill.lease = Some(guard);
    fill
}

/// The generation in the keys of a request whose namespace's generation
/// could not be read. Such keys only name its in-process flight: they never
/// reach the store, and no counter ever gets this far.
const NO_GENERATION: u64 = u64::MAX;

/// A number drawn uniformly from (0, 1], for early refresh.
fn uniform() -> f64 {
    let bits = super::fill::new_nonce() >> 11; // 53 random bits
    (bits as f64 + 1.0) / (1u64 << 53) as f64
}

/// The key concurrent misses coalesce on. Requests that differ in a
/// declared vary field never wait on each other: they could not share the
/// answer.
pub(crate) fn flight_key(primary: &PrimaryKey, policy: &Policy, headers: &HeaderMap) -> String {
    if policy.vary.is_empty() {
        primary.store_key.clone()
    } else {
        let values = key::vary_values(&policy.vary, headers);
        key::variant_key(primary, &policy.vary, &values)
    }
}

/// The route's extra key part for this request. An unsafe request computes
/// it too: the entries it invalidates are the ones its own extra selects.
fn key_extra(policy: &Policy, parts: &request::Parts) -> Option<String> {
    policy.key_extra.map(|extra| (extra.0)(parts))
}

/// Safe methods other than GET/HEAD do not invalidate (RFC 9110 §9.2.1).
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::OPTIONS | Method::TRACE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache, a route's policy and a request, for the futures' sizes.
    fn a_lookup() -> (Cache, Arc<Policy>, request::Parts) {
        let cache = Cache::builder().build();
        let policy = Arc::new(Policy::ttl(std::time::Duration::from_secs(60)));
        let (parts, ()) = request::Request::new(()).into_parts();
        (cache, policy, parts)
    }

    /// Every adapter's future holds this one, and a hit moves it: the long
    /// way (store reads, coalescing, leases) is boxed behind it.
    #[test]
    fn the_lookup_future_does_not_carry_the_long_way() {
        let (cache, policy, parts) = a_lookup();
        let size = std::mem::size_of_val(&cache.lookup(&parts, &policy));
        assert!(
            size <= 256,
            "Cache::lookup's future is {size} bytes: box what only a miss needs"
        );
    }

    /// The long way itself, which the layer's future holds: what follows
    /// the store read is decided without awaiting (`after_find`), so the
    /// entry and the miss are not held across the awaits (1,760 bytes when
    /// they were; 1,032 since, in a release build).
    #[test]
    fn the_long_way_holds_nothing_across_the_store_read_it_does_not_need() {
        let (cache, policy, parts) = a_lookup();
        let size = std::mem::size_of_val(&cache.lookup_past_hot(&parts, &policy));
        assert!(
            size <= 1280,
            "Cache::lookup_past_hot's future is {size} bytes"
        );
    }

    /// Every store read awaits a decode: the record it returns must not be
    /// held across the delete of a corrupt one (424 bytes when it was; 128
    /// since), or every lookup's future carries it.
    #[test]
    fn the_decode_future_does_not_hold_the_record() {
        let cache = Cache::builder().build();
        let size = std::mem::size_of_val(&cache.decode("key", Bytes::new()));
        assert!(size <= 192, "Cache::decode's future is {size} bytes");
    }
}
