//! How an asyncio event loop awaits work that finishes on the tokio
//! runtime, without a tokio thread ever taking the GIL.
//!
//! A finished task pushes its [`Outcome`] (plain Rust values) onto a queue
//! and, when the queue was empty, writes one byte to a socket pair whose
//! other end the event loop watches (`loop.add_reader`). The loop's
//! callback, on the Python thread, drains the queue, turns each outcome
//! into Python objects and resolves its asyncio future. Taking the GIL from
//! a tokio thread would make every Redis answer wait for the event loop's
//! thread to give it up (up to the 5 ms switch interval under load).

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

pub(crate) use crate::outcome::Outcome;

/// Futures of one event loop, waiting for the runtime.
#[pyclass(module = "larder._native", frozen)]
pub(crate) struct Bridge {
    shared: Arc<Shared>,
    event_loop: Py<PyAny>,
    reader: UnixStream,
    /// The asyncio future of each task in flight, by token. Only touched
    /// on the event loop's thread.
    futures: Mutex<HashMap<u64, Py<PyAny>>>,
    next: AtomicU64,
}

/// What the runtime's tasks share with the event loop.
struct Shared {
    done: Mutex<Vec<(u64, Outcome)>>,
    writer: UnixStream,
}

impl Shared {
    fn push(&self, token: u64, outcome: Outcome) {
        let was_empty = {
            let mut done = lock(&self.done);
            let was_empty = done.is_empty();
            done.push((token, outcome));
            was_empty
        };
        if was_empty {
            // A full socket means a wake-up is pending already.
            let _ = (&self.writer).write(&[1]);
        }
    }
}

thread_local! {
    /// This thread's bridge, for the event loop it was made for.
    static CURRENT: RefCell<Option<Py<Bridge>>> = const { RefCell::new(None) };
}

/// The bridge of the event loop running on this thread (made on first use,
/// and again when another loop runs here).
pub(crate) fn current(py: Python<'_>) -> PyResult<Bound<'_, Bridge>> {
    static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let running = GET_RUNNING_LOOP
        .import(py, "asyncio", "get_running_loop")?
        .call0()?;
    let found = CURRENT.with(|current| {
        current
            .borrow()
            .as_ref()
            .filter(|b| b.get().event_loop.is(&running))
            .map(|b| b.bind(py).clone())
    });
    if let Some(bridge) = found {
        return Ok(bridge);
    }
    let bridge = Bridge::open(py, running)?;
    CURRENT.with(|current| *current.borrow_mut() = Some(bridge.clone().unbind()));
    Ok(bridge)
}

impl Bridge {
    fn open<'py>(py: Python<'py>, event_loop: Bound<'py, PyAny>) -> PyResult<Bound<'py, Bridge>> {
        let (reader, writer) = UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        let fd = reader.as_raw_fd();
        let bridge = Bound::new(
            py,
            Bridge {
                shared: Arc::new(Shared {
                    done: Mutex::new(Vec::new()),
                    writer,
                }),
                event_loop: event_loop.clone().unbind(),
                reader,
                futures: Mutex::new(HashMap::new()),
                next: AtomicU64::new(0),
            },
        )?;
        event_loop.call_method1("add_reader", (fd, bridge.getattr("_drain")?))?;
        Ok(bridge)
    }
}

/// Spawns `work` on the runtime and returns the asyncio future its
/// outcome will resolve.
pub(crate) trait Spawn<'py> {
    fn spawn(
        &self,
        py: Python<'py>,
        runtime: &tokio::runtime::Runtime,
        work: Pin<Box<dyn Future<Output = Outcome> + Send + 'static>>,
    ) -> PyResult<Bound<'py, PyAny>>;
}

impl<'py> Spawn<'py> for Bound<'py, Bridge> {
    fn spawn(
        &self,
        py: Python<'py>,
        runtime: &tokio::runtime::Runtime,
        work: Pin<Box<dyn Future<Output = Outcome> + Send + 'static>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let bridge = self.get();
        let future = bridge.event_loop.bind(py).call_method0("create_future")?;
        let token = bridge.next.fetch_add(1, Ordering::Relaxed);
        lock(&bridge.futures).insert(token, future.clone().unbind());
        let shared = bridge.shared.clone();
        runtime.spawn(async move {
            let outcome = work.await;
            shared.push(token, outcome);
        });
        Ok(future)
    }
}

#[pymethods]
impl Bridge {
    /// The event loop's reader callback: resolves the futures of every
    /// finished task.
    fn _drain(&self, py: Python<'_>) -> PyResult<()> {
        let mut buf = [0u8; 64];
        while let Ok(n) = (&self.reader).read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        crate::log::flush(py);
        // Outcomes of cancelled requests are dropped here: in the
        // runtime's context, so a fill's lease ends at once.
        let _context = crate::runtime::runtime().enter();
        let done = std::mem::take(&mut *lock(&self.shared.done));
        let mut first_error = None;
        for (token, outcome) in done {
            let Some(future) = lock(&self.futures).remove(&token) else {
                continue;
            };
            let future = future.bind(py);
            // A cancelled request: its outcome (a fill, say) is dropped
            // here, which releases whatever waits on it.
            if future.call_method0("done")?.is_truthy()? {
                continue;
            }
            let set = match outcome.into_python(py) {
                Ok(value) => future.call_method1("set_result", (value,)),
                Err(e) => future.call_method1("set_exception", (e.into_value(py),)),
            };
            if let Err(e) = set {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
