//! The built-in development model: deterministic, instantaneous, clearly not a real model.
//! It answers by quoting the last user message exactly as it received it, so what the input
//! guardrail did (`{EMAIL}` placeholders, for instance) is visible in the answer.

use futures::StreamExt;

use super::{
    Completion, EventStream, FinishReason, ModelRequest, StreamEvent, estimate_prompt_tokens,
};

pub struct DevelopmentModel;

impl DevelopmentModel {
    /// The answer's words (each with its trailing space), cut at `max_tokens` words.
    fn answer(&self, request: &ModelRequest) -> (Vec<String>, u64, FinishReason) {
        let last_user = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.content.as_str())
            .unwrap_or("");
        let text = format!(
            "[development model] I received {} message(s). Your last message, as I received it: {}",
            request.messages.len(),
            last_user
        );
        let mut words: Vec<String> = Vec::new();
        let mut current = String::new();
        for ch in text.chars() {
            current.push(ch);
            if ch.is_whitespace() {
                words.push(std::mem::take(&mut current));
            }
        }
        if !current.is_empty() {
            words.push(current);
        }
        let mut finish = FinishReason::Stop;
        if let Some(max) = request.max_tokens
            && words.len() > max as usize
        {
            words.truncate(max as usize);
            finish = FinishReason::Length;
        }
        // The answer is joined once; each stop sequence (at most `MAX_STOP_SEQUENCES`, each
        // bounded, checked in `chat::validate`) is one linear substring search over it.
        if request.stop.iter().any(|s| !s.is_empty()) {
            let joined: String = words.concat();
            let stop_at = request
                .stop
                .iter()
                .filter(|s| !s.is_empty())
                .filter_map(|s| joined.find(s.as_str()))
                .min();
            if let Some(cut) = stop_at {
                words = vec![joined[..cut].to_string()];
                finish = FinishReason::Stop;
            }
        }
        let input = estimate_prompt_tokens(&request.messages);
        (words, input, finish)
    }

    pub fn complete(&self, request: &ModelRequest) -> Completion {
        let (words, input_tokens, finish_reason) = self.answer(request);
        let output_tokens = words.len() as u64;
        Completion {
            text: words.concat(),
            input_tokens,
            output_tokens,
            finish_reason,
        }
    }

    pub fn stream(&self, request: &ModelRequest) -> EventStream {
        let (words, input_tokens, finish_reason) = self.answer(request);
        let output_tokens = words.len() as u64;
        let done = StreamEvent::Done {
            input_tokens,
            output_tokens,
            finish_reason,
        };
        futures::stream::iter(
            words
                .into_iter()
                .map(StreamEvent::Delta)
                .chain([done])
                .map(Ok),
        )
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelMessage;

    fn req(text: &str) -> ModelRequest {
        ModelRequest {
            messages: vec![ModelMessage {
                role: "user",
                content: text.into(),
            }],
            ..ModelRequest::default()
        }
    }

    #[test]
    fn quotes_what_it_received_deterministically() {
        let a = DevelopmentModel.complete(&req("mail {EMAIL} now"));
        let b = DevelopmentModel.complete(&req("mail {EMAIL} now"));
        assert_eq!(a, b);
        assert!(a.text.ends_with("mail {EMAIL} now"), "{}", a.text);
        assert_eq!(a.finish_reason, FinishReason::Stop);
    }

    #[tokio::test]
    async fn stream_concatenates_to_complete_and_respects_max_tokens() {
        let mut r = req("one two three four five");
        let whole = DevelopmentModel.complete(&r).text;
        let streamed: Vec<_> = DevelopmentModel.stream(&r).collect().await;
        let text: String = streamed
            .iter()
            .filter_map(|e| match e {
                Ok(StreamEvent::Delta(t)) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(text, whole);
        r.max_tokens = Some(3);
        let cut = DevelopmentModel.complete(&r);
        assert_eq!(cut.output_tokens, 3);
        assert_eq!(cut.finish_reason, FinishReason::Length);
    }

    #[test]
    fn stop_sequences_cut_the_answer_in_linear_time() {
        let mut r = req("alpha beta END gamma");
        r.stop = vec!["".into(), "END".into(), "beta".into()];
        let cut = DevelopmentModel.complete(&r);
        assert!(cut.text.ends_with("alpha "), "{}", cut.text);
        assert_eq!(cut.finish_reason, FinishReason::Stop);

        // The most stop work a request may ask for: 4 sequences of 256 bytes that almost match
        // everywhere (`aaa…ab` over `aaa…`). Sizes small enough that one run fits in a
        // scheduler slice on a loaded machine; the best of several runs.
        let stops: Vec<String> = (0..4).map(|_| format!("{}b", "a".repeat(255))).collect();
        let time = |n: usize| {
            let mut r = req(&"a".repeat(n));
            r.stop = stops.clone();
            (0..7)
                .map(|_| {
                    let t = std::time::Instant::now();
                    std::hint::black_box(DevelopmentModel.complete(&r));
                    t.elapsed()
                })
                .min()
                .unwrap()
        };
        let (small, large) = (time(4 * 1024), time(16 * 1024));
        assert!(
            large < small * 6,
            "stop matching is not linear: 4 KB {small:?}, 16 KB {large:?}"
        );
    }
}
