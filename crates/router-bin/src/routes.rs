//! The route table: every path the server answers, who may call it, what it does, and the
//! label its requests carry in the metrics.

use http::Method;
use router_core::{Dialect, Endpoint};

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone (health, the dashboard page, which holds no data).
    Open,
    /// The client keys.
    Client,
    /// The admin key (or, without one, the client keys).
    Admin,
}

/// What a route does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Forwards the request to the group it names: a client's request in this dialect, for
    /// this endpoint.
    Forward(Dialect, Endpoint),
    /// `{"status":"ok"}` and the config generation.
    Health,
    /// Liveness: `{"status":"live"}` while the process serves.
    Live,
    /// Readiness: 200 `{"status":"ready"}` and where the state is (`local`, `shared`,
    /// `degraded`), or 503 with the reasons it is not.
    Ready,
    /// The groups, as OpenAI's model list (Anthropic's, for a request with `anthropic-version`).
    Models,
    /// The usage counters.
    Usage,
    /// The named clients and teams: budgets, limits and spend.
    Clients,
    /// Adds a named client to the config file (`POST /admin/clients`).
    ClientAdd,
    /// Disables, enables or rotates a named client (`PATCH /admin/clients/{name}`).
    ClientChange,
    /// Removes a named client (`DELETE /admin/clients/{name}`).
    ClientRemove,
    /// Reloads the config file.
    Reload,
    /// The dashboard's data.
    DashboardData,
    /// Prometheus metrics.
    Metrics,
    /// The dashboard page.
    DashboardPage,
}

/// One route.
#[derive(Debug)]
pub(crate) struct Route {
    /// The path, matched exactly.
    pub(crate) path: &'static str,
    /// The one method it takes.
    pub(crate) method: Method,
    /// Who may call it.
    pub(crate) access: Access,
    /// What it does.
    pub(crate) action: Action,
    /// The `endpoint` label of its requests in the metrics.
    pub(crate) label: &'static str,
}

const fn route(
    path: &'static str,
    method: Method,
    access: Access,
    action: Action,
    label: &'static str,
) -> Route {
    Route {
        path,
        method,
        access,
        action,
        label,
    }
}

/// Every route. A new endpoint is a line here and, for a local one, its handler.
const ROUTES: &[Route] = &[
    route(
        "/health",
        Method::GET,
        Access::Open,
        Action::Health,
        "other",
    ),
    route(
        "/health/live",
        Method::GET,
        Access::Open,
        Action::Live,
        "other",
    ),
    route(
        "/health/ready",
        Method::GET,
        Access::Open,
        Action::Ready,
        "other",
    ),
    route(
        "/v1/models",
        Method::GET,
        Access::Client,
        Action::Models,
        "other",
    ),
    route(
        "/v1/chat/completions",
        Method::POST,
        Access::Client,
        Action::Forward(Dialect::OpenAi, Endpoint::Chat),
        "chat",
    ),
    route(
        "/v1/messages",
        Method::POST,
        Access::Client,
        Action::Forward(Dialect::Anthropic, Endpoint::Chat),
        "messages",
    ),
    route(
        "/v1/messages/count_tokens",
        Method::POST,
        Access::Client,
        Action::Forward(Dialect::Anthropic, Endpoint::CountTokens),
        "count_tokens",
    ),
    route(
        "/v1/responses",
        Method::POST,
        Access::Client,
        Action::Forward(Dialect::Responses, Endpoint::Responses),
        "responses",
    ),
    route(
        "/v1/completions",
        Method::POST,
        Access::Client,
        Action::Forward(Dialect::OpenAi, Endpoint::Completions),
        "completions",
    ),
    route(
        "/v1/embeddings",
        Method::POST,
        Access::Client,
        Action::Forward(Dialect::OpenAi, Endpoint::Embeddings),
        "embeddings",
    ),
    route(
        "/admin/usage",
        Method::GET,
        Access::Admin,
        Action::Usage,
        "other",
    ),
    route(
        "/admin/clients",
        Method::GET,
        Access::Admin,
        Action::Clients,
        "other",
    ),
    route(
        "/admin/clients",
        Method::POST,
        Access::Admin,
        Action::ClientAdd,
        "other",
    ),
    // A path ending in `/` takes one more segment: the client's name.
    route(
        "/admin/clients/",
        Method::PATCH,
        Access::Admin,
        Action::ClientChange,
        "other",
    ),
    route(
        "/admin/clients/",
        Method::DELETE,
        Access::Admin,
        Action::ClientRemove,
        "other",
    ),
    route(
        "/admin/reload",
        Method::POST,
        Access::Admin,
        Action::Reload,
        "other",
    ),
    route(
        "/admin/dashboard",
        Method::GET,
        Access::Admin,
        Action::DashboardData,
        "other",
    ),
    route(
        "/metrics",
        Method::GET,
        Access::Admin,
        Action::Metrics,
        "other",
    ),
    route(
        "/dashboard",
        Method::GET,
        Access::Open,
        Action::DashboardPage,
        "other",
    ),
    route(
        "/demo",
        Method::GET,
        Access::Open,
        Action::DashboardPage,
        "other",
    ),
];

impl Route {
    /// The route of `path` and `method` (else the first of `path`, which refuses the method);
    /// the admin listener (`admin_only`) has no client routes.
    pub(crate) fn find(path: &str, method: &Method, admin_only: bool) -> Option<&'static Route> {
        let mut of_path = ROUTES
            .iter()
            .filter(|r| r.matches(path) && !(admin_only && r.access == Access::Client));
        let first = of_path.clone().next();
        of_path.find(|r| r.method == *method).or(first)
    }

    /// Whether `path` is this route's: the same, or for a route ending in `/`, one more
    /// non-empty segment.
    fn matches(&self, path: &str) -> bool {
        match self.path.strip_suffix('/') {
            Some(_) => path
                .strip_prefix(self.path)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/')),
            None => self.path == path,
        }
    }

    /// The segment a route ending in `/` takes (percent-decoded), for `path`.
    pub(crate) fn segment(&self, path: &str) -> Option<String> {
        let rest = path.strip_prefix(self.path)?;
        percent_encoding::percent_decode_str(rest)
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned())
    }

    /// The dialect its errors are told in.
    pub(crate) fn dialect(&self) -> Dialect {
        match self.action {
            Action::Forward(dialect, _) => dialect,
            _ => Dialect::OpenAi,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_listener_has_no_client_routes() {
        let post = Method::POST;
        assert!(Route::find("/v1/chat/completions", &post, false).is_some());
        assert!(Route::find("/v1/chat/completions", &post, true).is_none());
        assert!(Route::find("/metrics", &Method::GET, true).is_some());
        assert_eq!(
            Route::find("/v1/messages", &post, false).map(Route::dialect),
            Some(Dialect::Anthropic)
        );
        assert!(Route::find("/v1/chat", &post, false).is_none());
    }

    #[test]
    fn a_client_is_named_by_one_more_segment() {
        let delete = Route::find("/admin/clients/team%20a", &Method::DELETE, false).unwrap();
        assert_eq!(delete.action, Action::ClientRemove);
        assert_eq!(
            delete.segment("/admin/clients/team%20a").as_deref(),
            Some("team a")
        );
        let patch = Route::find("/admin/clients/x", &Method::PATCH, false).unwrap();
        assert_eq!(patch.action, Action::ClientChange);
        // The list and the adding route are the bare path; a method no route takes is refused.
        assert_eq!(
            Route::find("/admin/clients", &Method::GET, false)
                .unwrap()
                .action,
            Action::Clients
        );
        assert_eq!(
            Route::find("/admin/clients", &Method::POST, false)
                .unwrap()
                .action,
            Action::ClientAdd
        );
        assert_eq!(
            Route::find("/admin/clients/x", &Method::GET, false)
                .unwrap()
                .method,
            Method::PATCH
        );
        assert!(Route::find("/admin/clients/", &Method::DELETE, false).is_none());
        assert!(Route::find("/admin/clients/a/b", &Method::DELETE, false).is_none());
    }
}
