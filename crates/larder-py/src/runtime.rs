//! The tokio runtime the engine runs on, and how Python awaits it.
//!
//! Every engine call is polled once, at once, on the Python thread (inside
//! the runtime's context): with the memory store a lookup or a fill is
//! ready then, and Python gets its answer without a thread hop or an
//! asyncio future. Only a call that must wait (Redis, a coalesced miss)
//! moves to the runtime, and Python awaits it through [`crate::bridge`].

use std::future::Future;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use pyo3::prelude::*;

use crate::bridge::{self, Outcome, Spawn};

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// The extension's runtime, started on first use. One worker thread by
/// default: the engine's work mostly runs on the Python thread (see the
/// module docs); the worker drives Redis connections and waits.
/// `LARDER_TOKIO_THREADS` sets another number.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| {
        let threads = std::env::var("LARDER_TOKIO_THREADS")
            .ok()
            .and_then(|t| t.parse::<usize>().ok())
            .filter(|t| *t > 0)
            .unwrap_or(1);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("larder-tokio")
            .enable_all()
            .build()
            .expect("larder: cannot start the tokio runtime")
    })
}

/// Runs `work` and gives Python its outcome: converted at once when the
/// first poll finishes it, else an asyncio future that the bridge resolves
/// on the event loop when the runtime has finished it.
pub(crate) fn now_or_later<F>(py: Python<'_>, work: F) -> PyResult<Bound<'_, PyAny>>
where
    F: Future<Output = Outcome> + Send + 'static,
{
    let runtime = runtime();
    // Everything that may drop engine state (a lease, a leader) runs in
    // the runtime's context, where the engine can release it at once.
    let _context = runtime.enter();
    let mut work = Box::pin(work);
    let ready = work.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    crate::log::flush(py);
    match ready {
        Poll::Ready(outcome) => outcome.into_python(py),
        // The runtime polls it again at once, with a real waker.
        Poll::Pending => bridge::current(py)?.spawn(py, runtime, work),
    }
}

/// Drops engine state (a fill, an outcome) where the engine can release
/// what it holds at once: a lease ended now, not expiring in 10 s.
pub(crate) fn drop_in_context<T>(value: T) {
    let _context = runtime().enter();
    drop(value);
}
