//! Who can reach what, said plainly when a config leaves a door open: the admin endpoints
//! opened by the client keys or by nobody's key, and an admin key that is also a client key.
//! These are warnings (at start, on reload and in `check`), not errors: a router on a laptop
//! may mean it.

use crate::config::Config;
use crate::Secret;

/// Adds the warnings of `config`, whose client keys (unnamed and named) are `client_keys`;
/// `admin_closed` when clients are named and nothing opens the admin endpoints.
pub(super) fn warn(
    config: &Config,
    client_keys: &[Secret],
    admin_closed: bool,
    warnings: &mut Vec<String>,
) {
    let admin = config.admin_key.as_ref().map(|k| k.as_str());
    let shared = admin.is_some_and(|a| client_keys.iter().any(|k| same_key(k.expose(), a)));
    match admin {
        None if client_keys.is_empty() => warnings.push(
            "no api_key and no admin_key: anyone who can reach the router may call its groups \
             and its admin endpoints (/admin/*: reload, config edits, usage; /metrics; the \
             dashboard's data); set api_key and admin_key (llm-router key generate makes keys)"
                .into(),
        ),
        None if !admin_closed => warnings.push(
            "admin_key is not set, so every client key also opens the admin endpoints \
             (/admin/*: reload, config edits, usage; /metrics; the dashboard's data); set \
             admin_key to keep them apart"
                .into(),
        ),
        Some(_) if shared => warnings.push(
            "admin_key is also a client key: whoever holds that client key is an admin; \
                 give admin_key a key of its own"
                .into(),
        ),
        _ => {}
    }
}

/// Whether two keys as written open the same door: equal, or one (or both) written as
/// `sha256:<hex>` of the other.
fn same_key(a: &str, b: &str) -> bool {
    let hashed = |k: &str| match k.strip_prefix("sha256:") {
        Some(hex) => hex.to_ascii_lowercase(),
        None => hex::encode(sha2::Sha256::digest(k.as_bytes())),
    };
    use sha2::Digest;
    a == b || hashed(a) == hashed(b)
}

#[cfg(test)]
mod tests {
    use super::same_key;

    #[test]
    fn a_key_and_its_hash_are_the_same_key() {
        // SHA-256 of "abc".
        let abc = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert!(same_key("abc", "abc"));
        assert!(same_key("abc", abc) && same_key(abc, "abc"));
        assert!(same_key(
            &abc.to_ascii_uppercase().replace("SHA256:", "sha256:"),
            abc
        ));
        assert!(!same_key("abd", abc));
        assert!(!same_key("abc", "abd"));
    }
}
