//! Ids unique to one create call, so that a retried create can find what an earlier attempt
//! made instead of making a second object.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Tag that [`Client::create_run`](crate::Client::create_run) and
/// [`Client::create_model_version`](crate::Client::create_model_version) set to an id unique
/// to the call (32 hex digits). When an attempt's answer is lost, the client searches for
/// the object carrying it before it sends the create again. The client owns this key: a tag
/// of the same key passed by the caller is replaced.
pub const CLIENT_REQUEST_ID_TAG: &str = "ml.client_request_id";

/// 32 hex digits, unique per call: two 64-bit hashes of the time in nanoseconds, the process
/// id and a per-process counter, each with a freshly keyed `RandomState` (std's SipHash-1-3
/// today; its keys come from the operating system's random source). Only uniqueness
/// matters, not the exact values, so a change of std's algorithm changes nothing.
pub(crate) fn new_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let half = |salt: u8| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u8(salt);
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        hasher.write_u64(count);
        hasher.finish()
    };
    format!("{:016x}{:016x}", half(0), half(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_32_hex_digits_and_do_not_repeat() {
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| new_request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids
            .iter()
            .all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())));
    }
}
