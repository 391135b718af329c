//! `azure`: Azure OpenAI. Requests go to a deployment (a model entry's `name`) with the
//! `api-version` query parameter and the `api-key` header; answers are OpenAI's.

use super::{path_segment, put_credential, Credential, Kind};
use crate::dialects::Endpoint;
use crate::snapshot::Provider;
use http::HeaderMap;

/// The `azure` kind.
pub(crate) struct Azure;

impl Kind for Azure {
    fn name(&self) -> &'static str {
        "azure"
    }
    fn speaks_responses(&self, _base_url: &str) -> Option<bool> {
        Some(true)
    }
    /// A deployment's URL; Responses at the v1 API's `/openai/v1/responses`, where the
    /// deployment is the body's `model`.
    fn url(&self, provider: &Provider, op: Endpoint, model: &str, _stream: bool) -> String {
        if op == Endpoint::Responses {
            return format!("{}/openai/v1/responses", provider.base_url());
        }
        format!(
            "{}/openai/deployments/{}/{}?api-version={}",
            provider.base_url(),
            path_segment(model),
            op.path(),
            provider.api_version()
        )
    }
    fn authorize(
        &self,
        _provider: &Provider,
        credential: Credential<'_>,
        _client: Option<&HeaderMap>,
        headers: &mut HeaderMap,
    ) -> Result<(), &'static str> {
        put_credential(headers, "api-key", credential)
    }
}
