//! Anthropic's usage report, read the one way for complete answers, relayed streams and
//! translated streams.

use crate::usage::TokenUsage;
use serde_json::Value;

/// Anthropic's token counts. A stream reports them in `message_start` (`message.usage`) and
/// again in `message_delta` (`usage`): counts present replace earlier ones, one by one.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    input: Option<u64>,
    output: Option<u64>,
    cache_creation: Option<u64>,
    cache_read: Option<u64>,
}

impl Usage {
    /// The counts of a complete answer.
    pub(crate) fn of(answer: &Value) -> Self {
        let mut usage = Self::default();
        usage.read(answer);
        usage
    }

    /// Reads the counts an answer or a stream event carries (`usage`, or `message.usage`).
    pub(crate) fn read(&mut self, value: &Value) {
        self.read_counts(&value["usage"]);
        self.read_counts(&value["message"]["usage"]);
    }

    /// Reads the counts of a `usage` object.
    pub(crate) fn read_counts(&mut self, usage: &Value) {
        let fields = [
            ("input_tokens", &mut self.input),
            ("output_tokens", &mut self.output),
            ("cache_creation_input_tokens", &mut self.cache_creation),
            ("cache_read_input_tokens", &mut self.cache_read),
        ];
        for (name, field) in fields {
            if let Some(n) = usage[name].as_u64() {
                *field = Some(n);
            }
        }
    }

    /// Whether no count arrived yet.
    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// As token counts: the prompt includes cache creation and cache reads.
    pub(crate) fn tokens(&self) -> TokenUsage {
        let n = |v: Option<u64>| v.unwrap_or(0);
        let prompt = n(self.input)
            .saturating_add(n(self.cache_creation))
            .saturating_add(n(self.cache_read));
        let completion = n(self.output);
        TokenUsage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt.saturating_add(completion),
            cache_read_tokens: n(self.cache_read),
            cache_write_tokens: n(self.cache_creation),
        }
    }
}
