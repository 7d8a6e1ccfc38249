//! A configured password (Basic authentication of an API group, an agent's
//! login): GMS's plain value, or an argon2id hash in the PHC string form
//! (`$argon2id$v=19$...`, which `gmshub hash-password` prints) so that the
//! configuration need not hold the password itself.
//!
//! A plain value is compared in constant time. A hash costs tens of
//! milliseconds to check, so the check runs on the blocking pool, and the
//! last few values that matched are remembered (in memory only, compared in
//! constant time) so that a client sending the same credentials on every
//! request pays once. Neither form ever shows in `Debug` or a log.
//!
//! May use: nothing of this crate.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use parking_lot::Mutex;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// How many matching values a hashed password remembers.
const REMEMBERED: usize = 8;

pub struct Password {
    form: Form,
}

enum Form {
    Plain(SecretString),
    Hash {
        phc: SecretString,
        /// Values that matched, most recent last.
        matched: Mutex<Vec<SecretString>>,
    },
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.form {
            Form::Plain(_) => "Password(plain, redacted)",
            Form::Hash { .. } => "Password(argon2, redacted)",
        })
    }
}

/// Why a configured hash cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("not a valid argon2 password hash: {0}")]
pub struct BadHash(String);

fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl Password {
    /// Reads a configured value: a PHC string starting with `$argon2` is a
    /// hash (and must parse), anything else is the password itself.
    pub fn from_config(value: &str) -> Result<Self, BadHash> {
        let form = if value.starts_with("$argon2") {
            let hash = PasswordHash::new(value).map_err(|e| BadHash(e.to_string()))?;
            if hash.salt.is_none() || hash.hash.is_none() {
                return Err(BadHash("no salt or no hash".into()));
            }
            Form::Hash {
                phc: SecretString::from(value),
                matched: Mutex::new(Vec::new()),
            }
        } else {
            Form::Plain(SecretString::from(value))
        };
        Ok(Self { form })
    }

    /// An argon2id hash of `plain` with a fresh random salt, as a PHC string.
    pub fn hash(plain: &str) -> String {
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes encode");
        Argon2::default()
            .hash_password(plain.as_bytes(), &salt)
            .expect("argon2 with default parameters hashes any input")
            .to_string()
    }

    pub fn is_hash(&self) -> bool {
        matches!(self.form, Form::Hash { .. })
    }

    /// Whether `given` is the password, when that takes no hashing (a plain
    /// value, or a value that matched a hash before).
    fn quick(&self, given: &str) -> Option<bool> {
        match &self.form {
            Form::Plain(plain) => Some(same(plain.expose_secret(), given)),
            Form::Hash { matched, .. } => {
                let matched = matched.lock();
                // Every remembered value is compared, so the time says
                // nothing of which one matched.
                let hit = matched
                    .iter()
                    .fold(false, |hit, m| hit | same(m.expose_secret(), given));
                hit.then_some(true)
            }
        }
    }

    /// Whether `given` is the password (blocking: a hash check takes tens
    /// of milliseconds).
    pub fn verify_blocking(&self, given: &str) -> bool {
        if let Some(known) = self.quick(given) {
            return known;
        }
        let Form::Hash { phc, matched } = &self.form else {
            unreachable!("a plain password is always quick");
        };
        let Ok(hash) = PasswordHash::new(phc.expose_secret()) else {
            return false;
        };
        let ok = Argon2::default()
            .verify_password(given.as_bytes(), &hash)
            .is_ok();
        if ok {
            let mut matched = matched.lock();
            if matched.len() == REMEMBERED {
                matched.remove(0);
            }
            matched.push(SecretString::from(given));
        }
        ok
    }

    /// Whether `given` is the password; a hash is checked on the blocking
    /// pool.
    pub async fn verify(self: &Arc<Self>, given: &str) -> bool {
        if let Some(known) = self.quick(given) {
            return known;
        }
        let (password, given) = (self.clone(), given.to_owned());
        tokio::task::spawn_blocking(move || password.verify_blocking(&given))
            .await
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_compare_whole() {
        let p = Password::from_config("s3cret").unwrap();
        assert!(p.verify_blocking("s3cret"));
        for wrong in ["s3cre", "s3cret!", "", "S3cret"] {
            assert!(!p.verify_blocking(wrong), "{wrong}");
        }
        assert!(!p.is_hash());
    }

    #[tokio::test]
    async fn a_hash_verifies_and_remembers_what_matched() {
        let phc = Password::hash("correct horse");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        let p = Arc::new(Password::from_config(&phc).unwrap());
        assert!(p.is_hash());
        assert_eq!(p.quick("correct horse"), None, "not yet checked");
        assert!(p.verify("correct horse").await);
        assert_eq!(p.quick("correct horse"), Some(true), "remembered");
        assert!(!p.verify("wrong horse").await);
        assert_eq!(p.quick("wrong horse"), None, "a miss is not remembered");
        assert_ne!(Password::hash("x"), Password::hash("x"), "salted");
    }

    #[test]
    fn a_broken_hash_is_refused_and_nothing_shows_in_debug() {
        assert!(Password::from_config("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$!!!").is_err());
        assert!(Password::from_config("$argon2id").is_err());
        let p = Password::from_config("hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
        let h = Password::from_config(&Password::hash("hunter2")).unwrap();
        assert!(!format!("{h:?}").contains("argon2id$"));
    }
}
