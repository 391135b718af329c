//! Provider adapters. `openai` (any OpenAI-compatible API) and `azure` are forwarded as is by
//! [`crate::forward`] (only the URL and the key header differ); `anthropic` is translated both
//! ways; `mock` answers in-process.

pub(crate) mod anthropic;
pub(crate) mod anthropic_in;
pub(crate) mod gemini;
#[cfg(test)]
mod golden;
pub(crate) mod mock;
#[cfg(test)]
mod properties;
