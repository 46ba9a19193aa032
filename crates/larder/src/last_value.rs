//! The last field value a thread made, kept by what it was made from, so
//! that the next one made from the same (a `Date` of the same second, a
//! `max-age` of the same ttl) is a clone, a reference count, instead of
//! formatting, checking and copying the bytes again.

use std::cell::RefCell;

use http::HeaderValue;

/// One slot: the key a value was made from, and the value. Kept in a
/// `thread_local!`, so that no lock is taken and no core's copy is shared.
pub(crate) struct LastValue<K>(RefCell<Option<(K, HeaderValue)>>);

impl<K: PartialEq + Copy> LastValue<K> {
    pub(crate) const fn new() -> Self {
        LastValue(RefCell::new(None))
    }

    /// The value for `key`: the kept one if it was made from `key`, else
    /// what `make` gives (then kept; an error is passed on and keeps
    /// nothing).
    pub(crate) fn get<E>(
        &self,
        key: K,
        make: impl FnOnce() -> Result<HeaderValue, E>,
    ) -> Result<HeaderValue, E> {
        // Re-entered (a `make` that asks again): make it without the slot.
        let Ok(mut last) = self.0.try_borrow_mut() else {
            return make();
        };
        match &*last {
            Some((at, value)) if *at == key => Ok(value.clone()),
            _ => {
                let value = make()?;
                *last = Some((key, value.clone()));
                Ok(value)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_again_is_the_kept_value_and_another_its_own() {
        let slot = LastValue::new();
        let made = |s: &'static str| move || Ok::<_, ()>(HeaderValue::from_str(s).unwrap());
        let first = slot.get(1, made("one")).unwrap();
        let again = slot.get(1, made("not made")).unwrap();
        assert_eq!(again, "one");
        assert_eq!(first.as_bytes().as_ptr(), again.as_bytes().as_ptr());
        assert_eq!(slot.get(2, made("two")).unwrap(), "two");
        assert_eq!(
            slot.get(1, made("one, made again")).unwrap(),
            "one, made again"
        );
        // An error keeps nothing: the slot still holds the last value made.
        assert_eq!(slot.get(3, || Err(())), Err(()));
        assert_eq!(slot.get(1, made("not made")).unwrap(), "one, made again");
    }
}
