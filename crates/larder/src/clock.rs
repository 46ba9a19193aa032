//! Where the engine's time comes from.
//!
//! Policy functions never read the system clock; the engine asks its
//! [`Clock`], so tests can move time by hand.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A source of the current time.
///
/// Code that takes a `Clock` can be tested with a [`ManualClock`]:
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use larder::clock::{Clock, ManualClock};
///
/// fn epoch_seconds(clock: &dyn Clock) -> u64 {
///     clock.now().duration_since(UNIX_EPOCH).unwrap().as_secs()
/// }
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// assert_eq!(epoch_seconds(&clock), 1_700_000_000);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use larder::clock::{Clock, ManualClock};
    ///
    /// assert_eq!(ManualClock::new(UNIX_EPOCH).now(), UNIX_EPOCH);
    /// ```
    fn now(&self) -> SystemTime;
}

/// The system's wall clock: the default.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use larder::clock::{Clock, SystemClock};
///
/// // Some time after 2023-11-14.
/// assert!(SystemClock.now() > UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to: for tests.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use larder::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000));
/// clock.advance(Duration::from_secs(61));
/// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_061));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    ///
    /// ```
    /// use std::time::UNIX_EPOCH;
    /// use larder::clock::{Clock, ManualClock};
    ///
    /// assert_eq!(ManualClock::new(UNIX_EPOCH).now(), UNIX_EPOCH);
    /// ```
    pub fn new(start: SystemTime) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward; every clone sees the change.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use larder::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new(UNIX_EPOCH);
    /// let shared = clock.clone();
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(shared.now(), UNIX_EPOCH + Duration::from_secs(5));
    /// ```
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    /// Sets the clock to `to`, forwards or backwards; every clone sees the
    /// change.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use larder::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(100));
    /// clock.set(UNIX_EPOCH + Duration::from_secs(40));
    /// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(40));
    /// ```
    pub fn set(&self, to: SystemTime) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whole milliseconds of `d`, saturating: what the engine's clock
/// arithmetic and the stores count in. Seconds and millis apart, because
/// `Duration::as_millis` divides a `u128` (this runs on every hit).
pub(crate) fn millis(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}

/// Whole milliseconds since the epoch (0 before it).
pub(crate) fn millis_since_epoch(t: SystemTime) -> u64 {
    millis(t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default())
}

#[cfg(test)]
mod millis_tests {
    use super::*;

    #[test]
    fn millis_agree_with_as_millis_and_saturate() {
        for d in [
            Duration::ZERO,
            Duration::from_nanos(999_999),
            Duration::from_millis(1_234_567),
            Duration::new(1_796_000_000, 987_654_321),
        ] {
            assert_eq!(u128::from(millis(d)), d.as_millis(), "{d:?}");
        }
        assert_eq!(millis(Duration::MAX), u64::MAX);
        assert_eq!(
            millis_since_epoch(std::time::UNIX_EPOCH - Duration::from_secs(1)),
            0
        );
    }
}
