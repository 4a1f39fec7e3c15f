//! Guardrails: the `Guardrail` trait the request path calls on the way in and out, and the
//! embedded engine behind it. The policy model is Bedrock's (see [`policy`]).
//!
//! A guardrail is named by id and version ([`GuardrailRef`]). `apply` guards one whole text;
//! `stream` returns a [`StreamGuard`] that releases only text no pending match can still extend
//! (the hold-back window), so no fragment of a redacted or blocked value reaches the client.
//!
//! Map: [`policy`] (CreateGuardrail shapes, Bedrock's limits), [`engine`] (compile + apply),
//! [`normalize`], [`pii`] (31 types) + [`gazetteer`] + [`cues`], [`prefix_gate`] (custom
//! regexes), [`lexicon`] (the shared word walk), [`words`], [`topic`], [`content`]
//! (content filters, PROMPT_ATTACK), [`assess`] (ApplyGuardrail's response), [`stream`],
//! [`registry`] (SQLite, DRAFT + immutable versions, access keys; implements [`Guardrail`]),
//! [`api`] (Bedrock REST routes) + [`sigv4`] (request verification), [`cli`] (`gateway
//! guard`); [`bedrock`] (Bedrock's ApplyGuardrail behind [`Guardrail`], for the AWS backend);
//! [`registry_api`] (the `GuardrailRegistry` edge the console and gateway use, and the pin
//! rule) with [`bedrock_registry`] (Bedrock's control plane behind it); [`offload`] (the
//! engine's CPU work on blocking threads, bounded and budgeted, never on runtime workers).

pub mod api;
pub mod assess;
pub mod bedrock;
pub mod bedrock_registry;
pub mod cli;
pub mod content;
pub mod cues;
pub mod engine;
pub mod gazetteer;
pub mod lexicon;
#[cfg(test)]
mod linear;
pub mod normalize;
pub mod offload;
pub mod pii;
pub mod policy;
pub mod prefix_gate;
pub mod registry;
pub mod registry_api;
pub mod sigv4;
pub mod stream;
pub mod topic;
pub mod words;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Which side of the model a text is on (Bedrock's `source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Source {
    Input,
    Output,
}

/// What a guardrail did to one text, as recorded in the audit event
/// (`inputAction` / `outputAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum TextAction {
    #[default]
    None,
    Anonymized,
    Blocked,
}

impl TextAction {
    pub fn as_str(self) -> &'static str {
        match self {
            TextAction::None => "NONE",
            TextAction::Anonymized => "ANONYMIZED",
            TextAction::Blocked => "BLOCKED",
        }
    }

    /// The stronger of two actions (BLOCKED > ANONYMIZED > NONE).
    pub fn max(self, other: TextAction) -> TextAction {
        fn rank(a: TextAction) -> u8 {
            match a {
                TextAction::None => 0,
                TextAction::Anonymized => 1,
                TextAction::Blocked => 2,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// A guardrail id and a version ("1", "2", ... or "DRAFT").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardrailRef {
    pub id: String,
    pub version: String,
}

/// The result of guarding one whole text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardOutcome {
    pub action: TextAction,
    /// The text to pass on: the original with anonymized spans replaced by `{TYPE}`
    /// placeholders, or the guardrail's blocked message when `action` is `Blocked`.
    pub text: String,
    /// Policies that matched, e.g. `pii:EMAIL`, `word:secret-project`, `topic:Investing`,
    /// `regex:employee-id`. Sorted, without duplicates.
    pub policies: Vec<String>,
}

/// One step of a streaming guard: text that is now safe to send, or a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamStep {
    /// Text safe to release to the client now (may be empty).
    Release(String),
    /// The stream must end: the guardrail blocked the output. Carries the blocked message.
    Blocked(String),
}

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("guardrail {0} not found")]
    NotFound(String),
    #[error("guardrail backend failed: {0}")]
    Backend(String),
    /// Every guard slot stayed busy for [`offload::WAIT`]: the text is not guarded, so the
    /// request fails closed.
    #[error("guardrail busy: no guard slot free")]
    Busy,
    /// Guarding took longer than [`offload::BUDGET`]: fails closed.
    #[error("guardrail work budget exceeded")]
    Budget,
}

/// A guardrail engine: the embedded one, or Bedrock's ApplyGuardrail in AWS.
#[async_trait]
pub trait Guardrail: Send + Sync {
    /// Guard one whole text.
    async fn apply(
        &self,
        guardrail: &GuardrailRef,
        source: Source,
        text: &str,
    ) -> Result<GuardOutcome, GuardError>;

    /// Start guarding a stream of output text.
    async fn stream(&self, guardrail: &GuardrailRef) -> Result<Box<dyn StreamGuard>, GuardError>;
}

/// Guards a stream of text fragments as they arrive from the model.
#[async_trait]
pub trait StreamGuard: Send {
    /// Feed the next fragment; returns what may be released now.
    async fn push(&mut self, fragment: &str) -> Result<StreamStep, GuardError>;
    /// The stream ended: release everything still held back (guarded).
    async fn finish(&mut self) -> Result<StreamStep, GuardError>;
    /// The outcome so far: the strongest action and the policies matched.
    fn outcome(&self) -> (TextAction, Vec<String>);
}
