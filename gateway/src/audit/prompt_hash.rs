//! `promptHash`: HMAC-SHA256 of the raw prompt keyed by a deployment secret, so the SOC can
//! match identical prompts across events without the audit trail holding any prompt text.
//!
//! Where the key comes from: on the embedded default, `<data_dir>/keys/prompt-hash.key`
//! ([`PromptHasher::load_or_create`]). On `backend = "aws"` with `aws.prompt_hash_key_id`, it is
//! derived once at start-up from KMS (`crate::aws::kms::prompt_hash_secret`: `GenerateMac`,
//! HMAC_SHA_256, over a fixed message, under an HMAC_256 KMS key), so every instance (every
//! Lambda sandbox) hashes the same prompt the same way and no secret sits in configuration.

use std::path::Path;

use aws_lc_rs::hmac;

pub struct PromptHasher {
    key: hmac::Key,
}

impl PromptHasher {
    /// The deployment secret in `<data_dir>/keys/prompt-hash.key`, created on first run.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<PromptHasher> {
        let secret =
            crate::secret_file::load_or_create(&data_dir.join("keys/prompt-hash.key"), 32)?;
        Ok(PromptHasher::from_secret(&secret))
    }

    pub fn from_secret(secret: &[u8]) -> PromptHasher {
        PromptHasher {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// `hmac-sha256:<hex>` of `prompt`.
    pub fn hash(&self, prompt: &[u8]) -> String {
        format!(
            "hmac-sha256:{}",
            hex::encode(hmac::sign(&self.key, prompt).as_ref())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_and_stable() {
        let a = PromptHasher::from_secret(b"one");
        let b = PromptHasher::from_secret(b"two");
        assert_eq!(a.hash(b"hi"), a.hash(b"hi"));
        assert_ne!(a.hash(b"hi"), b.hash(b"hi"));
        assert!(a.hash(b"hi").starts_with("hmac-sha256:"));
        assert_eq!(a.hash(b"hi").len(), "hmac-sha256:".len() + 64);
    }
}
