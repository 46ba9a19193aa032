//! A future that is polled only when it asked to be: one branch of a
//! `select!` beside a busy one. A connection's task wakes for every
//! request it reads, and `select!` polls every branch each time, so the
//! watchdog's timer and the close notification beside it would be polled
//! per request for nothing; behind [`OnWake`] each costs a flag test.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// Polls `F` only after `F`'s own waker fired (and the first time). `F`
/// is `Unpin`: pinned by the caller (`pin!`), so that wrapping allocates
/// no box per connection.
pub(crate) struct OnWake<F> {
    inner: F,
    signal: Arc<Signal>,
    /// What `inner` is polled with: it sets the flag and wakes the task.
    waker: Waker,
    /// The task's waker last handed to `signal`, to skip the lock when it
    /// has not changed (a task's waker seldom does).
    task: Option<Waker>,
}

struct Signal {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = task.as_ref() {
            task.wake_by_ref();
        }
    }
}

impl<F: Future + Unpin> OnWake<F> {
    pub(crate) fn new(inner: F) -> OnWake<F> {
        let signal = Arc::new(Signal {
            // Polled the first time, to register its wake-up.
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        OnWake {
            inner,
            waker: Waker::from(signal.clone()),
            signal,
            task: None,
        }
    }
}

impl<F: Future + Unpin> Future for OnWake<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        // The task's waker first: a wake from now on reaches this task,
        // and one before is in the flag.
        if !this.task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
            let task = cx.waker().clone();
            *this.signal.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.clone());
            this.task = Some(task);
        }
        if !this.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Pending until `ready`, counting its polls.
    struct Counted {
        polls: Arc<AtomicUsize>,
        ready: Arc<Mutex<(bool, Option<Waker>)>>,
    }

    impl Future for Counted {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            let mut ready = self.ready.lock().unwrap();
            if ready.0 {
                return Poll::Ready(());
            }
            ready.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Counts the wake-ups of the task polling.
    struct Task(AtomicUsize);

    impl Wake for Task {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn polled_first_then_only_when_woken() {
        let polls = Arc::new(AtomicUsize::new(0));
        let ready = Arc::new(Mutex::new((false, None::<Waker>)));
        let mut f = Box::pin(OnWake::new(Counted {
            polls: polls.clone(),
            ready: ready.clone(),
        }));
        let task = Arc::new(Task(AtomicUsize::new(0)));
        let waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(f.as_mut().poll(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 1, "polled the first time");
        // The task is polled for other reasons: the inner future is not.
        for _ in 0..3 {
            assert!(f.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        // Its own wake-up reaches the task, and the next poll reaches it.
        let inner = {
            let mut ready = ready.lock().unwrap();
            ready.0 = true;
            ready.1.take().unwrap()
        };
        inner.wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "the task was woken");
        assert!(f.as_mut().poll(&mut cx).is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_notification_beside_a_busy_branch_arrives() {
        let notify = Arc::new(tokio::sync::Notify::new());
        let told = notify.clone();
        let waiting = tokio::spawn(async move {
            let close = std::pin::pin!(told.notified());
            let mut close = OnWake::new(close);
            let mut ticks = 0u32;
            loop {
                tokio::select! {
                    biased;
                    () = tokio::task::yield_now() => ticks += 1,
                    () = &mut close => return ticks,
                }
            }
        });
        tokio::task::yield_now().await;
        notify.notify_one();
        let ticks = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("the notification ends the wait")
            .unwrap();
        assert!(ticks >= 1, "the busy branch ran meanwhile");
    }

    #[test]
    fn a_new_task_waker_is_the_one_woken() {
        let ready = Arc::new(Mutex::new((false, None::<Waker>)));
        let mut f = Box::pin(OnWake::new(Counted {
            polls: Arc::new(AtomicUsize::new(0)),
            ready: ready.clone(),
        }));
        let first = Arc::new(Task(AtomicUsize::new(0)));
        let second = Arc::new(Task(AtomicUsize::new(0)));
        let w1 = Waker::from(first.clone());
        let w2 = Waker::from(second.clone());
        assert!(f.as_mut().poll(&mut Context::from_waker(&w1)).is_pending());
        // Moved to another task, not woken meanwhile.
        assert!(f.as_mut().poll(&mut Context::from_waker(&w2)).is_pending());
        let inner = ready.lock().unwrap().1.take().unwrap();
        inner.wake();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
    }
}
