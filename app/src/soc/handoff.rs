//! Opening a record without JavaScript: the plain form post to `open_record` is answered with a
//! redirect back to the investigation page, so the decrypted record cannot travel in that
//! answer. It waits here instead, under a random one-time token that the redirect names
//! (`&shown=TOKEN`): the page's next render takes it (only for the same signed-in user, within
//! [`TTL_MS`], once), and shows it exactly as the scripted path does. The access event was
//! written before the record was decrypted, as always; the record never appears in a URL.
//!
//! Bounded: at most [`MAX_WAITING`] records wait; the oldest goes first when it is full.

use std::sync::{Mutex, PoisonError};

use super::api::OpenedRecord;
use crate::api::ApiError;

/// How long a record waits for its page, in ms.
pub const TTL_MS: i64 = 60_000;
/// Most records waiting at once.
pub const MAX_WAITING: usize = 64;

struct Waiting {
    token: String,
    owner: String,
    expires_ms: i64,
    result: Result<OpenedRecord, ApiError>,
}

/// The records (or the errors) of plain form posts, waiting for their page.
#[derive(Default)]
pub struct Handoff {
    waiting: Mutex<Vec<Waiting>>,
}

impl Handoff {
    /// Keep `result` for `owner`; the token to name in the redirect, or `None` when no random
    /// token could be made.
    pub fn put(
        &self,
        owner: &str,
        result: Result<OpenedRecord, ApiError>,
        now_ms: i64,
    ) -> Option<String> {
        let mut bytes = [0u8; 16];
        aws_lc_rs::rand::fill(&mut bytes).ok()?;
        let token = hex::encode(bytes);
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.retain(|w| w.expires_ms > now_ms);
        if waiting.len() >= MAX_WAITING {
            waiting.remove(0);
        }
        waiting.push(Waiting {
            token: token.clone(),
            owner: owner.to_string(),
            expires_ms: now_ms + TTL_MS,
            result,
        });
        Some(token)
    }

    /// Take what waits under `token` for `owner` (once); `None` when nothing does (wrong user,
    /// expired, already taken, never there).
    pub fn take(
        &self,
        token: &str,
        owner: &str,
        now_ms: i64,
    ) -> Option<Result<OpenedRecord, ApiError>> {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.retain(|w| w.expires_ms > now_ms);
        let at = waiting
            .iter()
            .position(|w| w.token == token && w.owner == owner)?;
        Some(waiting.remove(at).result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> OpenedRecord {
        OpenedRecord {
            request_id: "r".into(),
            when: String::new(),
            user: "u".into(),
            feature: "f".into(),
            model: "m".into(),
            input_action: "NONE".into(),
            output_action: "NONE".into(),
            policies: vec![],
            raw_prompt: vec![],
            model_input: vec![],
            raw_output: String::new(),
            delivered_output: String::new(),
            accesses: vec![],
        }
    }

    #[test]
    fn a_record_is_taken_once_by_its_owner_before_it_expires() {
        let h = Handoff::default();
        let t = h.put("alice", Ok(record()), 1_000).unwrap();
        assert_eq!(t.len(), 32);
        assert!(h.take(&t, "mallory", 1_001).is_none());
        assert_eq!(h.take(&t, "alice", 1_001), Some(Ok(record())));
        assert!(h.take(&t, "alice", 1_002).is_none(), "taken once");

        let t = h.put("alice", Err(ApiError::Unavailable), 1_000).unwrap();
        assert!(h.take(&t, "alice", 1_000 + TTL_MS).is_none(), "expired");
    }

    #[test]
    fn the_waiting_room_is_bounded() {
        let h = Handoff::default();
        let first = h.put("a", Ok(record()), 0).unwrap();
        for _ in 0..MAX_WAITING {
            h.put("a", Ok(record()), 0).unwrap();
        }
        assert!(h.take(&first, "a", 1).is_none());
        assert_eq!(h.waiting.lock().unwrap().len(), MAX_WAITING);
    }
}
