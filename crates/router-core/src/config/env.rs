//! `${VAR}` and `${VAR:-default}` expansion, applied to every string of the config.
//!
//! Written here rather than with `shellexpand`, whose syntax is the shell's and not the one this
//! config documents: it also expands a bare `$NAME` (so an API key such as `pa$HOME1` would
//! silently change when that variable exists), uses a default only for an unset variable (here
//! an empty one gets it too), and has no `$${` escape.

/// Expands `${VAR}` (empty when unset) and `${VAR:-default}` (default when unset or empty).
/// `$${` is a literal `${`. An unterminated `${` is an error.
pub(crate) fn expand(
    input: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    if !input.contains('$') {
        return Ok(input.to_string());
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail.find('}').ok_or_else(|| {
                "unterminated '${' (the value is not shown: it may be a secret)".to_string()
            })?;
            let expr = &tail[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid variable name '{name}' in '${{...}}'"));
            }
            let value = lookup(name).filter(|v| !v.is_empty());
            match (value, default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {}
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::expand;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_and_defaults() {
        assert_eq!(expand("a ${SET} b", env).as_deref(), Ok("a value b"));
        assert_eq!(expand("${UNSET}", env).as_deref(), Ok(""));
        assert_eq!(expand("${UNSET:-dflt}", env).as_deref(), Ok("dflt"));
        assert_eq!(expand("${EMPTY:-dflt}", env).as_deref(), Ok("dflt"));
        assert_eq!(expand("${SET:-dflt}", env).as_deref(), Ok("value"));
        assert_eq!(
            expand("cost $5 $${SET}", env).as_deref(),
            Ok("cost $5 ${SET}")
        );
        assert_eq!(expand("${A}${SET}", env).as_deref(), Ok("value"));
    }

    #[test]
    fn rejects_malformed() {
        assert!(expand("${SET", env).unwrap_err().contains("unterminated"));
        assert!(expand("${BAD-NAME}", env)
            .unwrap_err()
            .contains("invalid variable"));
    }
}
