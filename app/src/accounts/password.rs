//! Password hashing (argon2id, PHC strings) and the one-time admin password.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::AccountsError;

/// Characters of generated passwords: letters and digits without the look-alikes
/// (`0 O o 1 l I`), so a password read off a terminal can be typed back.
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";

/// Length of the generated admin password (20 characters ≈ 116 bits).
pub const GENERATED_LEN: usize = 20;

/// The argon2id cost used for new hashes.
#[derive(Debug, Clone, Copy)]
pub struct HashCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl HashCost {
    /// OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane), the argon2 crate's default.
    pub const DEFAULT: HashCost = HashCost {
        memory_kib: Params::DEFAULT_M_COST,
        iterations: Params::DEFAULT_T_COST,
        parallelism: Params::DEFAULT_P_COST,
    };

    fn hasher(self) -> Result<Argon2<'static>, AccountsError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| AccountsError::Hash(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Hash `password` with argon2id and a fresh random salt, as a PHC string.
pub fn hash(password: &str, cost: HashCost) -> Result<String, AccountsError> {
    let mut salt_bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt_bytes).map_err(|_| AccountsError::Random)?;
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| AccountsError::Hash(e.to_string()))?;
    let hash = cost
        .hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| AccountsError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`. The comparison inside is constant-time;
/// a malformed stored hash is a non-match, never a panic.
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    // Parameters come from the PHC string itself, so old hashes keep verifying after the
    // default cost changes.
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A random password of [`GENERATED_LEN`] characters from [`ALPHABET`].
pub fn generate() -> Result<String, AccountsError> {
    let mut out = String::with_capacity(GENERATED_LEN);
    // Rejection sampling keeps every character equally likely.
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    while out.len() < GENERATED_LEN {
        let mut buf = [0u8; 32];
        aws_lc_rs::rand::fill(&mut buf).map_err(|_| AccountsError::Random)?;
        for byte in buf {
            if byte < limit && out.len() < GENERATED_LEN {
                out.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: HashCost = HashCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse", CHEAP).unwrap();
        let b = hash("correct horse", CHEAP).unwrap();
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "salts must differ");
        assert!(verify("correct horse", &a));
        assert!(!verify("correct hors", &a));
        assert!(!verify("correct horse", "not a phc string"));
    }

    #[test]
    fn generated_passwords_have_the_promised_shape() {
        let p = generate().unwrap();
        assert_eq!(p.len(), GENERATED_LEN);
        assert!(p.bytes().all(|b| ALPHABET.contains(&b)), "{p}");
        assert_ne!(p, generate().unwrap());
    }
}
