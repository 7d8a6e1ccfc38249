//! Random identifiers: the one generator of hex tokens that clientIds,
//! browser ids and the services' ids are made of. May use: nothing else in
//! the crate.

use std::fmt::Write;

/// `N` random bytes as lower-case hex (`2 × N` characters). clientIds take
/// 20 bytes and browser ids 16: at least the 128 random bits Bayeux asks for.
pub fn random_hex<const N: usize>() -> String {
    let bytes: [u8; N] = rand::random();
    let mut out = String::with_capacity(2 * N);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_of_the_asked_length() {
        let id = super::random_hex::<16>();
        assert_eq!(id.len(), 32);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(id, super::random_hex::<16>());
    }
}
