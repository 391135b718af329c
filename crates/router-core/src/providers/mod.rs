//! Provider adapters. `openai` (any OpenAI-compatible API) is forwarded as is by
//! [`crate::forward`]; `mock` answers in-process.

pub(crate) mod mock;
