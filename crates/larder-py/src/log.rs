//! The engine's log (`tracing` events: a failing store, an unreadable
//! entry) in Python's `logging`, under the logger `larder`.
//!
//! Events can come from tokio threads, perhaps while the engine holds a
//! lock; taking the GIL there could deadlock against the Python thread.
//! So events are queued, and the Python thread moves them to `logging`
//! whenever it next calls the engine (one atomic load when there are none).
//! `LARDER_LOG` (`error`, `warn`, `info`, `debug`, `trace`; default
//! `info`) sets which events are kept.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Level, LevelFilter, Metadata, Subscriber};

/// At most this many events wait for the Python thread; more are dropped.
const MAX_QUEUED: usize = 256;

static QUEUED: Mutex<VecDeque<(u8, String)>> = Mutex::new(VecDeque::new());
static ANY: AtomicBool = AtomicBool::new(false);

/// Installs the subscriber, unless the process already has one.
pub(crate) fn install() {
    let max = match std::env::var("LARDER_LOG").as_deref() {
        Ok("error") => LevelFilter::ERROR,
        Ok("warn") => LevelFilter::WARN,
        Ok("debug") => LevelFilter::DEBUG,
        Ok("trace") => LevelFilter::TRACE,
        _ => LevelFilter::INFO,
    };
    let _ =
        tracing_core::dispatcher::set_global_default(tracing_core::Dispatch::new(ToPython { max }));
}

/// Moves queued events to Python's `logging`. Called on the Python thread.
pub(crate) fn flush(py: Python<'_>) {
    if !ANY.load(Ordering::Relaxed) {
        return;
    }
    let events: Vec<_> = {
        let mut queued = QUEUED.lock().unwrap_or_else(|e| e.into_inner());
        ANY.store(false, Ordering::Relaxed);
        queued.drain(..).collect()
    };
    for (level, message) in events {
        // Logging must never fail a request.
        let _ = log(py, level, &message);
    }
}

/// Logs a warning from the Python thread.
pub(crate) fn warn(py: Python<'_>, message: &str) -> PyResult<()> {
    log(py, 30, message)
}

fn log(py: Python<'_>, level: u8, message: &str) -> PyResult<()> {
    static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let logger = LOGGER.get_or_try_init(py, || -> PyResult<_> {
        Ok(py
            .import("logging")?
            .call_method1("getLogger", ("larder",))?
            .unbind())
    })?;
    logger.bind(py).call_method1("log", (level, message))?;
    Ok(())
}

struct ToPython {
    max: LevelFilter,
}

impl Subscriber for ToPython {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let level = match *event.metadata().level() {
            Level::ERROR => 40,
            Level::WARN => 30,
            Level::INFO => 20,
            Level::DEBUG => 10,
            Level::TRACE => 5,
        };
        let mut text = Text::default();
        event.record(&mut text);
        let mut message = text.message;
        if !text.fields.is_empty() {
            let _ = write!(message, " ({})", text.fields.trim_start());
        }
        let mut queued = QUEUED.lock().unwrap_or_else(|e| e.into_inner());
        if queued.len() < MAX_QUEUED {
            queued.push_back((level, message));
            ANY.store(true, Ordering::Relaxed);
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// An event's message and its other fields as `name=value`.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}
