//! Provider metadata in process memory: discovery documents and key sets are public and the
//! same for every flow, so they may live here (unlike flow state, which is in Postgres).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a discovery document or key set is used before it is fetched again. Providers
/// publish new signing keys well before they sign with them, and an ID token whose key is not
/// in the cached set fetches the set again, so an hour costs nothing in correctness and saves
/// two or three requests to the provider per sign-in.
pub(super) const CACHE_FOR: Duration = Duration::from_secs(3600);

/// The shortest time between two fetches of one key set caused by an unknown `kid`: tokens
/// naming random keys must not make every sign-in a request to the provider. A real rotation
/// is picked up by the first token that names the new key, or a minute after a flood of bad
/// ones.
pub(super) const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(60);

/// Documents by URL, each with the instant it was fetched. Failures are not cached.
#[derive(Debug)]
pub(super) struct Cache<T> {
    entries: Mutex<HashMap<String, (Instant, Arc<T>)>>,
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Cache {
            entries: Mutex::default(),
        }
    }
}

/// The map even if a thread panicked while holding it: every write leaves it consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<T> Cache<T> {
    pub(super) fn get(&self, url: &str) -> Option<Arc<T>> {
        lock(&self.entries)
            .get(url)
            .filter(|(fetched, _)| fetched.elapsed() < CACHE_FOR)
            .map(|(_, value)| value.clone())
    }

    pub(super) fn put(&self, url: &str, value: T) -> Arc<T> {
        let value = Arc::new(value);
        let mut entries = lock(&self.entries);
        entries.retain(|_, (fetched, _)| fetched.elapsed() < CACHE_FOR);
        entries.insert(url.to_owned(), (Instant::now(), value.clone()));
        value
    }
}

/// When each key set was last fetched because of an unknown `kid`.
#[derive(Debug, Default)]
pub(crate) struct RefetchGate {
    last: Mutex<HashMap<String, Instant>>,
}

impl RefetchGate {
    /// Whether `url` may be fetched again now; if so, the fetch is counted from `now`, before
    /// it starts, so that concurrent tokens with unknown keys cause one fetch, not one each
    /// (and a failing fetch is not retried at once either).
    pub(crate) fn try_claim(&self, url: &str, now: Instant) -> bool {
        let mut last = lock(&self.last);
        last.retain(|_, at| now.saturating_duration_since(*at) < REFETCH_AT_MOST_EVERY);
        if last.contains_key(url) {
            return false;
        }
        last.insert(url.to_owned(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_refetch_a_key_set_at_most_once_a_minute() {
        let gate = RefetchGate::default();
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        assert!(gate.try_claim("https://a/certs", at(0)));
        for second in [0, 1, 30, 59] {
            assert!(!gate.try_claim("https://a/certs", at(second)), "{second} s");
        }
        // Each key set has its own minute.
        assert!(gate.try_claim("https://b/certs", at(30)));
        assert!(gate.try_claim("https://a/certs", at(60)));
        assert!(!gate.try_claim("https://b/certs", at(89)));
        assert!(gate.try_claim("https://b/certs", at(90)));
        assert!(!gate.try_claim("https://a/certs", at(119)));
        assert!(gate.try_claim("https://a/certs", at(120)));
    }

    #[test]
    fn documents_are_kept_per_url() {
        let cache = Cache::default();
        assert!(cache.get("https://a").is_none());
        cache.put("https://a", 1);
        cache.put("https://b", 2);
        assert_eq!(cache.get("https://a").as_deref(), Some(&1));
        assert_eq!(cache.get("https://b").as_deref(), Some(&2));
        cache.put("https://a", 3);
        assert_eq!(cache.get("https://a").as_deref(), Some(&3));
    }
}
