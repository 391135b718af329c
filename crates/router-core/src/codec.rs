//! What a streamed answer goes through between the upstream and the client, as traits the rooms
//! implement: a provider's [`StreamReader`] when the client reads the upstream's own events
//! (pass-through), or a provider's [`StreamDecoder`] into [`StreamItem`]s of the common form
//! followed by a dialect's [`StreamEncoder`] into the client's events.

use crate::usage::TokenUsage;
use bytes::Bytes;
use serde_json::Value;

/// One item of a stream in the common form (OpenAI chat chunks).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StreamItem {
    /// A `chat.completion.chunk` object.
    Chunk(Value),
    /// An error the upstream sent in the stream, as an OpenAI error body (`{"error":{…}}`).
    Error(Value),
    /// The answer is complete.
    Done,
}

/// The error body for an upstream event that is not JSON: a translated stream never drops an
/// event it cannot read without a word, it fails with this instead.
pub(crate) fn unreadable(data: &[u8]) -> Value {
    serde_json::json!({"error": {
        "message": format!("the upstream sent a stream event that is not JSON ({} bytes)", data.len()),
        "type": "upstream_error", "param": null, "code": "unreadable_event",
    }})
}

/// The upstream ended its stream before the answer was complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Incomplete;

/// Reads a provider's events that are relayed to the client as they came: their usage report,
/// their end and their in-band errors.
pub(crate) trait StreamReader: Send {
    /// Reads one event's data; `false` when the event is not for the client.
    fn keep(&mut self, data: &[u8]) -> bool;
    /// The upstream's stream ended: what to send to close it, or [`Incomplete`].
    fn end(&mut self) -> Result<Option<Bytes>, Incomplete>;
    /// The usage reported so far.
    fn usage(&self) -> Option<TokenUsage>;
    /// Whether an in-band error was relayed.
    fn failed(&self) -> bool;
    /// Whether the answer's end was relayed.
    fn done(&self) -> bool;
}

/// Turns a provider's events into items of the common form.
pub(crate) trait StreamDecoder: Send {
    /// The items for one event's data.
    fn event(&mut self, data: &[u8], out: &mut Vec<StreamItem>);
    /// The upstream's stream ended: the items that close it, or [`Incomplete`].
    fn end(&mut self, out: &mut Vec<StreamItem>) -> Result<(), Incomplete>;
    /// The usage reported so far.
    fn usage(&self) -> Option<TokenUsage>;
    /// Whether an in-band error was decoded.
    fn failed(&self) -> bool;
}

/// Turns items of the common form into a client's events.
pub(crate) trait StreamEncoder: Send {
    /// The events for one item.
    fn encode(&mut self, item: StreamItem, out: &mut Vec<Bytes>);
    /// Whether the client got the answer's end.
    fn done(&self) -> bool;
    /// The stream broke (`error` is the client's error body for it): the events that end it
    /// in the client's format, when the encoder has its own; `false` leaves it to the dialect's
    /// error event.
    fn interrupt(&mut self, _error: &Value, _out: &mut Vec<Bytes>) -> bool {
        false
    }
}

/// A [`StreamReader`] over a [`StreamDecoder`], for a format with no reader of its own: every
/// event is relayed, and decoded only for its usage, end and errors.
pub(crate) struct DecodedReader {
    decoder: Box<dyn StreamDecoder>,
    items: Vec<StreamItem>,
    done: bool,
}

impl DecodedReader {
    pub(crate) fn new(decoder: Box<dyn StreamDecoder>) -> Self {
        Self {
            decoder,
            items: Vec::new(),
            done: false,
        }
    }
}

impl StreamReader for DecodedReader {
    fn keep(&mut self, data: &[u8]) -> bool {
        self.decoder.event(data, &mut self.items);
        self.done |= self.items.contains(&StreamItem::Done);
        self.items.clear();
        true
    }
    fn end(&mut self) -> Result<Option<Bytes>, Incomplete> {
        self.decoder.end(&mut self.items)?;
        self.items.clear();
        self.done = true;
        Ok(None)
    }
    fn usage(&self) -> Option<TokenUsage> {
        self.decoder.usage()
    }
    fn failed(&self) -> bool {
        self.decoder.failed()
    }
    fn done(&self) -> bool {
        self.done
    }
}

/// How a stream goes from the upstream to the client: relayed as it came, read on the way;
/// or decoded into the common form and encoded for the client.
pub(crate) enum Codec {
    /// Same format on both sides.
    Pass(Box<dyn StreamReader>),
    /// Through the common form.
    Translate {
        /// The provider's side.
        decoder: Box<dyn StreamDecoder>,
        /// The client's side.
        encoder: Box<dyn StreamEncoder>,
        /// Items between the two (kept to reuse its allocation).
        items: Vec<StreamItem>,
    },
}

impl Codec {
    /// What to send for one upstream event (`data`: its data, if it has any).
    pub(crate) fn relay(&mut self, event: Bytes, data: Option<&[u8]>, out: &mut Vec<Bytes>) {
        match self {
            Self::Pass(reader) => {
                if data.is_none_or(|d| reader.keep(d)) {
                    out.push(event);
                }
            }
            Self::Translate {
                decoder,
                encoder,
                items,
            } => {
                // An event without data (a comment, a keep-alive) says nothing to translate.
                let Some(data) = data else { return };
                decoder.event(data, items);
                for item in items.drain(..) {
                    encoder.encode(item, out);
                }
            }
        }
    }

    /// The upstream's stream ended (with no in-band error): what closes the client's stream,
    /// or [`Incomplete`].
    pub(crate) fn end(&mut self, out: &mut Vec<Bytes>) -> Result<(), Incomplete> {
        match self {
            Self::Pass(reader) => {
                out.extend(reader.end()?);
                Ok(())
            }
            Self::Translate {
                decoder,
                encoder,
                items,
            } => {
                decoder.end(items)?;
                for item in items.drain(..) {
                    encoder.encode(item, out);
                }
                if !encoder.done() {
                    encoder.encode(StreamItem::Done, out);
                }
                Ok(())
            }
        }
    }

    /// The usage the upstream reported so far.
    pub(crate) fn usage(&self) -> Option<TokenUsage> {
        match self {
            Self::Pass(reader) => reader.usage(),
            Self::Translate { decoder, .. } => decoder.usage(),
        }
    }

    /// Whether the upstream sent an in-band error.
    pub(crate) fn failed(&self) -> bool {
        match self {
            Self::Pass(reader) => reader.failed(),
            Self::Translate { decoder, .. } => decoder.failed(),
        }
    }

    /// The stream broke: the events that end it, when the client's encoder has its own.
    pub(crate) fn interrupt(&mut self, error: &Value, out: &mut Vec<Bytes>) -> bool {
        match self {
            Self::Pass(_) => false,
            Self::Translate { encoder, .. } => encoder.interrupt(error, out),
        }
    }

    /// Whether the client got the answer's end.
    pub(crate) fn done(&self) -> bool {
        match self {
            Self::Pass(reader) => reader.done(),
            Self::Translate { encoder, .. } => encoder.done(),
        }
    }
}
