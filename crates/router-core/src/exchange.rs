//! How one client request is said to one provider. When both speak the same wire format and
//! the provider performs the operation asked, the client's bytes pass through (`model`
//! replaced; nothing parsed beyond the request's first validation) and the answer comes back as
//! it is. Otherwise the request goes through the common form: the client's dialect decodes it,
//! the provider's kind encodes it, and answers, errors and streams go the other way.

use crate::codec::Codec;
use crate::dialects::{ChatRequest, ClientDialect, Dialect, Endpoint};
use crate::fields::Fields;
use crate::providers::{Kind, WireFormat};
use crate::snapshot::Provider;
use crate::usage::TokenUsage;
use crate::{Redactor, RouterError};
use bytes::Bytes;
use http::uri::InvalidUri;
use http::{HeaderMap, StatusCode, Uri};
use serde_json::Value;
use std::sync::Arc;

/// Whether the client's dialect speaks the wire format the provider answers in.
fn speaks(dialect: &dyn ClientDialect, wire: &dyn WireFormat) -> bool {
    dialect.wire().is_some_and(|own| own.name() == wire.name())
}

/// A refusal of the request by a translation, naming the provider it was for.
fn named(error: RouterError, provider: &Provider) -> RouterError {
    match error {
        RouterError::BadRequest { message, param } => RouterError::BadRequest {
            message: format!("{message} (provider '{}')", provider.name()),
            param,
        },
        other => other,
    }
}

/// One client request meeting one provider.
pub(crate) struct Exchange<'a> {
    request: &'a ChatRequest<'a>,
    redactor: &'a Arc<Redactor>,
    client_headers: Option<&'a HeaderMap>,
    dialect: &'static dyn ClientDialect,
    kind: &'static dyn Kind,
    wire: &'static dyn WireFormat,
    op: Endpoint,
    passthrough: bool,
}

impl<'a> Exchange<'a> {
    /// The exchange of `request` with `provider`; `None` when the provider does not offer the
    /// operation asked.
    pub(crate) fn new(
        request: &'a ChatRequest<'a>,
        client_headers: Option<&'a HeaderMap>,
        provider: &Provider,
        redactor: &'a Arc<Redactor>,
    ) -> Option<Self> {
        let kind = provider.kind().room();
        let op = kind.operation(provider, request.endpoint())?;
        let wire = kind.wire(op);
        let dialect = request.dialect().room();
        Some(Self {
            request,
            redactor,
            client_headers,
            dialect,
            kind,
            wire,
            op,
            passthrough: op == request.endpoint() && speaks(dialect, wire),
        })
    }

    /// The client's request.
    pub(crate) fn request(&self) -> &ChatRequest<'a> {
        self.request
    }

    /// What masks the config's secrets in the upstream's words.
    pub(crate) fn redactor(&self) -> &Arc<Redactor> {
        self.redactor
    }

    /// Whether the client's bytes pass through.
    pub(crate) fn passthrough(&self) -> bool {
        self.passthrough
    }

    /// The upstream's URL for `model`: parsed once per provider and operation when the kind's
    /// URLs do not depend on the model or streaming.
    pub(crate) fn uri(&self, provider: &Provider, model: &str) -> Result<Uri, InvalidUri> {
        let stream = self.request.stream();
        let url = || self.kind.url(provider, self.op, model, stream);
        if self.kind.url_per_operation() {
            provider.target.uri(self.op, url)
        } else {
            url().parse()
        }
    }

    /// Puts the credential (and the headers the kind requires) on the upstream request; the
    /// client's own headers of that format go along when its bytes pass through.
    pub(crate) fn authorize(
        &self,
        provider: &Provider,
        credential: crate::providers::Credential<'_>,
        headers: &mut HeaderMap,
    ) -> Result<(), &'static str> {
        let client = self.client_headers.filter(|_| self.passthrough);
        self.kind.authorize(provider, credential, client, headers)
    }

    /// The upstream request body for `model`, and the fields it left out (by the field policy,
    /// `crate::fields`). An error is a request this provider cannot be told (a field it has no
    /// place for), not the provider's fault.
    pub(crate) fn body(
        &self,
        provider: &Provider,
        model: &str,
    ) -> Result<(Vec<u8>, Vec<String>), RouterError> {
        let cap = self.request.completion_cap(provider.default_max_tokens());
        if self.passthrough {
            // The client's bytes, `model` replaced; for a stream `stream_options.include_usage`
            // set so the usage is counted (the usage chunk is dropped again for a client that
            // did not ask for it); a capped request's limit in the field of its own format.
            let limit = cap.map(|tokens| (self.limit_field(provider), tokens));
            return Ok((self.request.upstream_body(model, limit), Vec::new()));
        }
        let mut fields = Fields::new(provider.unknown_fields());
        let mut common = self
            .dialect
            .decode(self.request, self.op, model, &mut fields)
            .map_err(|e| named(e, provider))?;
        if let Some(tokens) = cap {
            // The common form's field; the provider's kind moves it where its format has it.
            let field = match self.op {
                Endpoint::Responses => "max_output_tokens",
                _ => "max_tokens",
            };
            common.insert(field.into(), tokens.into());
        }
        let body = self
            .kind
            .request(self.op, common, provider, model, &mut fields)
            .map_err(|e| named(e, provider))?;
        let bytes = serde_json::to_vec(&body).map_err(|e| RouterError::Internal(e.to_string()))?;
        Ok((bytes, fields.dropped().to_vec()))
    }

    /// Where a request passed through carries its completion limit: the Responses API's
    /// `max_output_tokens`, the provider's `max_tokens_field` for OpenAI chat completions,
    /// `max_tokens` for the prompt API and Anthropic's messages.
    fn limit_field(&self, provider: &Provider) -> &'static str {
        match (self.op, self.request.dialect()) {
            (Endpoint::Responses, _) => "max_output_tokens",
            (Endpoint::Chat, Dialect::OpenAi) => provider.max_tokens_field(),
            _ => "max_tokens",
        }
    }

    /// A complete answer as the client reads it, and the tokens it used (none for an error
    /// answer, whose configured secrets are masked: an upstream may echo the key it got);
    /// `None` when a translated answer cannot be read.
    pub(crate) fn answer(
        &self,
        status: StatusCode,
        bytes: Bytes,
        model: &str,
    ) -> Option<(Bytes, TokenUsage)> {
        let wire = self.wire;
        let bytes = if status.is_success() {
            bytes
        } else {
            self.redactor.redact_bytes(bytes)
        };
        if self.passthrough {
            let usage = if status.is_success() {
                wire.passthrough_usage(&bytes)
            } else {
                TokenUsage::default()
            };
            return Some((bytes, usage));
        }
        let (client, usage) = if status.is_success() {
            let answer = serde_json::from_slice::<Value>(&bytes).ok()?;
            let (common, usage) = wire.answer(self.op, answer, self.request, model)?;
            (
                self.dialect.encode_answer(common, self.request, self.op),
                usage,
            )
        } else {
            let error = wire.error(&bytes);
            (
                self.dialect.encode_error(status, &error),
                TokenUsage::default(),
            )
        };
        Some((Bytes::from(client.to_string()), usage))
    }

    /// Whether a stream's first bytes are an error event.
    pub(crate) fn opens_with_error(&self, first: &[u8]) -> bool {
        self.wire.opens_with_error(first)
    }

    /// How the stream of `model` goes to the client.
    pub(crate) fn stream(&self, model: &str) -> Codec {
        let wire = self.wire;
        if self.passthrough {
            return Codec::Pass(wire.stream_reader(!self.request.client_wants_usage()));
        }
        Codec::Translate {
            decoder: wire.stream_decoder(model),
            encoder: self.dialect.stream_encoder(self.request, self.op),
            items: Vec::new(),
        }
    }
}
