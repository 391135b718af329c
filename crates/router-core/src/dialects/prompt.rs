//! What a request's prompt is made of, read from its text in any client format: bytes of
//! text, data sent inline (images, documents, audio as base64), and data sent by reference
//! (an image's URL, a file's id). Inline and referenced data are billed by what they hold, not
//! by the bytes that carry them, so budgets and estimates count them apart.

use crate::walk::{walk, Visit};

/// A string under a `data` key at least this long, in the base64 alphabet, is inline data
/// (Anthropic's `source.data`, Gemini's `inlineData.data`, OpenAI's `input_audio.data`).
const MIN_BASE64: usize = 256;

/// The parts of a prompt.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parts {
    /// Bytes of the request that are not inline data.
    pub text: u64,
    /// Data sent inline: `"data:…"` URLs and base64 `data` strings.
    pub inline: u64,
    /// Data sent by reference: images by URL, files by id or URL.
    pub referenced: u64,
}

/// Where a value sits, as far as the parts care.
#[derive(Clone, Copy, PartialEq, Eq)]
enum At {
    Other,
    /// Under a `data` key.
    Data,
    /// Under `image_url` (OpenAI's object with a `url`, or the Responses API's string).
    ImageUrl,
    /// Under `source` (Anthropic's image or document source).
    Source,
    /// A reference: a `url` of an image or a source, a `file_id`, a `file_url`.
    Reference,
}

/// The walk's visitor: the parts read so far.
struct Reader(Parts);

impl<'a> Visit<'a> for Reader {
    type At = At;
    fn key(&self, at: At, key: &[u8]) -> At {
        match (at, key) {
            (_, b"data") => At::Data,
            (_, b"image_url") => At::ImageUrl,
            (_, b"source") => At::Source,
            (_, b"file_id" | b"file_url") => At::Reference,
            (At::ImageUrl | At::Source, b"url") => At::Reference,
            _ => At::Other,
        }
    }
    fn element(&self, _: At) -> At {
        At::Other
    }
    fn value(&mut self, at: At, raw: &'a [u8]) {
        if raw.first() != Some(&b'"') {
            return;
        }
        let inner = &raw[1..raw.len() - 1];
        let inline = inner.starts_with(b"data:")
            || (at == At::Data && inner.len() >= MIN_BASE64 && is_base64(inner));
        if inline {
            self.0.inline += 1;
            self.0.text = self.0.text.saturating_sub(inner.len() as u64);
        } else if matches!(at, At::ImageUrl | At::Reference) {
            self.0.referenced += 1;
        }
    }
}

fn is_base64(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

/// The parts of the prompt of the JSON request `body` (all text when it cannot be walked).
pub(crate) fn parts(body: &[u8]) -> Parts {
    let all_text = Parts {
        text: body.len() as u64,
        ..Parts::default()
    };
    let mut reader = Reader(all_text);
    if walk(body, At::Other, &mut reader) {
        reader.0
    } else {
        all_text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(body: &str) -> Parts {
        parts(body.as_bytes())
    }

    #[test]
    fn text_is_every_byte() {
        let body = r#"{"model":"g","messages":[{"role":"user","content":"a data: url"}]}"#;
        let p = of(body);
        assert_eq!((p.text, p.inline, p.referenced), (body.len() as u64, 0, 0));
    }

    #[test]
    fn each_format_sends_data_inline_or_by_reference() {
        let b64 = "QUJD".repeat(100);
        // OpenAI: an image as a data URL (inline), another by URL, audio as base64.
        let openai = format!(
            r#"{{"messages":[{{"role":"user","content":[
                {{"type":"image_url","image_url":{{"url":"data:image/png;base64,{b64}"}}}},
                {{"type":"image_url","image_url":{{"detail":"high","url":"https://x/y.png"}}}},
                {{"type":"input_audio","input_audio":{{"data":"{b64}","format":"wav"}}}}]}}]}}"#
        );
        let p = of(&openai);
        assert_eq!((p.inline, p.referenced), (2, 1));
        let data_url = "data:image/png;base64,".len() + b64.len();
        assert_eq!(p.text, (openai.len() - data_url - b64.len()) as u64);
        // Anthropic: base64 and URL sources; a short `data` string is text.
        let anthropic = format!(
            r#"{{"messages":[{{"role":"user","content":[
                {{"type":"image","source":{{"type":"base64","media_type":"image/png","data":"{b64}"}}}},
                {{"type":"document","source":{{"type":"url","url":"https://x/a.pdf"}}}},
                {{"type":"text","text":"hi"}}]}}],"metadata":{{"data":"short"}}}}"#
        );
        let p = of(&anthropic);
        assert_eq!((p.inline, p.referenced), (1, 1));
        assert_eq!(p.text, (anthropic.len() - b64.len()) as u64);
        // The Responses API: an image URL as a string, a file by id.
        let responses = r#"{"input":[{"role":"user","content":[
            {"type":"input_image","image_url":"https://x/y.png"},
            {"type":"input_file","file_id":"file-1"}]}]}"#;
        assert_eq!(of(responses).referenced, 2);
    }
}
