//! The ids and secrets the services hand out, all made by the engine's one
//! random generator ([`bayeux::id::random_hex`]): 128 random bits each.
//! May use: nothing else in the crate.

use bayeux::id::random_hex;

/// 32 lower-case hex digits: chat ids, `userId`, `secureKey`, event ids.
pub fn token() -> String {
    random_hex::<16>()
}

/// A longer secret (192 bits): the agent API's bearer tokens.
pub fn secret() -> String {
    random_hex::<24>()
}

/// A random id in the UUID form GMS hands out (`8-4-4-4-12` hex digits):
/// storage areas, service instances, subscriptions, callbacks.
pub fn uuid() -> String {
    let hex = random_hex::<16>();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_uuids() {
        let id = uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_ne!(id, uuid());
    }

    #[test]
    fn tokens_are_hex_of_their_length() {
        for (t, len) in [(token(), 32), (secret(), 48)] {
            assert_eq!(t.len(), len);
            assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
}
