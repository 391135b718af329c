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
    /// The request log's latest rows, filtered.
    Requests,
    /// The named clients and teams: budgets, limits and spend.
    Clients,
    /// The providers of the config file, keys masked.
    Providers,
    /// The groups of the config file.
    Groups,
    /// A change to the config file, made by the config editor.
    Manage(Manage),
    /// Reloads the config file.
    Reload,
    /// The dashboard's data.
    DashboardData,
    /// Prometheus metrics.
    Metrics,
    /// The dashboard page.
    DashboardPage,
}

/// The changes the admin API makes to the config file. A `*` of the route's path is a name
/// (a group's model is `PROVIDER/MODEL`, its slash percent-encoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Manage {
    /// `POST /admin/clients`.
    ClientAdd,
    /// `PATCH /admin/clients/*`: disables, enables or rotates.
    ClientChange,
    /// `DELETE /admin/clients/*`.
    ClientRemove,
    /// `POST /admin/providers`.
    ProviderAdd,
    /// `PATCH /admin/providers/*`: disables or enables.
    ProviderChange,
    /// `DELETE /admin/providers/*`.
    ProviderRemove,
    /// `POST /admin/providers/*/keys`.
    KeyAdd,
    /// `PATCH /admin/providers/*/keys/*`: disables or enables, by number.
    KeyChange,
    /// `DELETE /admin/providers/*/keys/*`.
    KeyRemove,
    /// `POST /admin/groups`.
    GroupAdd,
    /// `PATCH /admin/groups/*`: sets the strategy.
    GroupChange,
    /// `DELETE /admin/groups/*`.
    GroupRemove,
    /// `POST /admin/groups/*/models`.
    ModelAdd,
    /// `PATCH /admin/groups/*/models/*`: sets the weight.
    ModelChange,
    /// `DELETE /admin/groups/*/models/*`.
    ModelRemove,
}

/// One route.
#[derive(Debug)]
pub(crate) struct Route {
    /// The path, matched exactly but for each `*`, which takes one non-empty segment.
    pub(crate) path: &'static str,
    /// The one method it takes.
    pub(crate) method: Method,
    /// Who may call it.
    pub(crate) access: Access,
    /// What it does.
    pub(crate) action: Action,
    /// The `endpoint` label of its requests in the metrics; [`ADMIN`] for the operator's
    /// routes (health, metrics, the admin endpoints and the dashboard), which are not counted.
    pub(crate) label: &'static str,
}

/// The label of the operator's routes: kept out of the request metrics, the request log and
/// the dashboard's rates, so scrapes and polls do not count as traffic.
pub(crate) const ADMIN: &str = "admin";

/// The label of a request for a path no route serves (counted: a client's mistake).
pub(crate) const UNKNOWN: &str = "unknown";

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

/// An admin route that edits the config file.
const fn manage(path: &'static str, method: Method, what: Manage) -> Route {
    route(path, method, Access::Admin, Action::Manage(what), ADMIN)
}

/// Every route. A new endpoint is a line here and, for a local one, its handler.
const ROUTES: &[Route] = &[
    route("/health", Method::GET, Access::Open, Action::Health, ADMIN),
    route(
        "/health/live",
        Method::GET,
        Access::Open,
        Action::Live,
        ADMIN,
    ),
    route(
        "/health/ready",
        Method::GET,
        Access::Open,
        Action::Ready,
        ADMIN,
    ),
    route(
        "/v1/models",
        Method::GET,
        Access::Client,
        Action::Models,
        "models",
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
        ADMIN,
    ),
    route(
        "/admin/requests",
        Method::GET,
        Access::Admin,
        Action::Requests,
        ADMIN,
    ),
    route(
        "/admin/clients",
        Method::GET,
        Access::Admin,
        Action::Clients,
        ADMIN,
    ),
    route(
        "/admin/clients",
        Method::POST,
        Access::Admin,
        Action::Manage(Manage::ClientAdd),
        ADMIN,
    ),
    manage("/admin/clients/*", Method::PATCH, Manage::ClientChange),
    manage("/admin/clients/*", Method::DELETE, Manage::ClientRemove),
    route(
        "/admin/providers",
        Method::GET,
        Access::Admin,
        Action::Providers,
        ADMIN,
    ),
    manage("/admin/providers", Method::POST, Manage::ProviderAdd),
    manage("/admin/providers/*", Method::PATCH, Manage::ProviderChange),
    manage("/admin/providers/*", Method::DELETE, Manage::ProviderRemove),
    manage("/admin/providers/*/keys", Method::POST, Manage::KeyAdd),
    manage(
        "/admin/providers/*/keys/*",
        Method::PATCH,
        Manage::KeyChange,
    ),
    manage(
        "/admin/providers/*/keys/*",
        Method::DELETE,
        Manage::KeyRemove,
    ),
    route(
        "/admin/groups",
        Method::GET,
        Access::Admin,
        Action::Groups,
        ADMIN,
    ),
    manage("/admin/groups", Method::POST, Manage::GroupAdd),
    manage("/admin/groups/*", Method::PATCH, Manage::GroupChange),
    manage("/admin/groups/*", Method::DELETE, Manage::GroupRemove),
    manage("/admin/groups/*/models", Method::POST, Manage::ModelAdd),
    manage(
        "/admin/groups/*/models/*",
        Method::PATCH,
        Manage::ModelChange,
    ),
    manage(
        "/admin/groups/*/models/*",
        Method::DELETE,
        Manage::ModelRemove,
    ),
    route(
        "/admin/reload",
        Method::POST,
        Access::Admin,
        Action::Reload,
        ADMIN,
    ),
    route(
        "/admin/dashboard",
        Method::GET,
        Access::Admin,
        Action::DashboardData,
        ADMIN,
    ),
    route(
        "/metrics",
        Method::GET,
        Access::Admin,
        Action::Metrics,
        ADMIN,
    ),
    route(
        "/dashboard",
        Method::GET,
        Access::Open,
        Action::DashboardPage,
        ADMIN,
    ),
    route(
        "/demo",
        Method::GET,
        Access::Open,
        Action::DashboardPage,
        ADMIN,
    ),
];

impl Route {
    /// The route of `path` and `method` (else the first of `path`, which refuses the method);
    /// the admin listener (`admin_only`) has no client routes.
    pub(crate) fn find(path: &str, method: &Method, admin_only: bool) -> Option<&'static Route> {
        let mut first = None;
        for route in ROUTES {
            if (admin_only && route.access == Access::Client) || !route.matches(path) {
                continue;
            }
            if route.method == *method {
                return Some(route);
            }
            first.get_or_insert(route);
        }
        first
    }

    /// Whether `path` is this route's: the same text, or the same segments with any non-empty
    /// one in the places of its `*`s. Nothing is decoded or allocated (it runs for every
    /// route on every request).
    fn matches(&self, path: &str) -> bool {
        if self.path == path {
            return true;
        }
        if !self.path.as_bytes().contains(&b'*') {
            return false;
        }
        let mut segments = path.split('/');
        for want in self.path.split('/') {
            match segments.next() {
                Some(got) if want == "*" && !got.is_empty() => {}
                Some(got) if want == got => {}
                _ => return false,
            }
        }
        segments.next().is_none()
    }

    /// The segments of `path` in the places of this route's `*`s (percent-decoded), if
    /// `path` is this route's.
    pub(crate) fn names(&self, path: &str) -> Option<Vec<String>> {
        let mut names = Vec::new();
        let mut segments = path.split('/');
        for want in self.path.split('/') {
            let got = segments.next()?;
            if want == "*" {
                if got.is_empty() {
                    return None;
                }
                let name = percent_encoding::percent_decode_str(got)
                    .decode_utf8()
                    .ok()?;
                names.push(name.into_owned());
            } else if want != got {
                return None;
            }
        }
        segments.next().is_none().then_some(names)
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
        assert_eq!(delete.action, Action::Manage(Manage::ClientRemove));
        assert_eq!(
            delete.names("/admin/clients/team%20a"),
            Some(vec!["team a".to_string()])
        );
        let patch = Route::find("/admin/clients/x", &Method::PATCH, false).unwrap();
        assert_eq!(patch.action, Action::Manage(Manage::ClientChange));
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
            Action::Manage(Manage::ClientAdd)
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

    #[test]
    fn a_groups_model_is_one_segment_with_its_slash_encoded() {
        let path = "/admin/groups/fast/models/openrouter%2Fopenai%2Fgpt-4o";
        let route = Route::find(path, &Method::PATCH, false).unwrap();
        assert_eq!(route.action, Action::Manage(Manage::ModelChange));
        let names = route.names(path).unwrap();
        assert_eq!(names, ["fast", "openrouter/openai/gpt-4o"]);
        let keys = Route::find("/admin/providers/acme/keys", &Method::POST, false).unwrap();
        assert_eq!(keys.action, Action::Manage(Manage::KeyAdd));
        assert!(Route::find("/admin/providers//keys", &Method::POST, false).is_none());
    }
}
