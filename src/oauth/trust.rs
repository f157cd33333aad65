//! Workload identity: whether an external issuer's token (its signature
//! already verified) matches one of a client's trust rules. Pure.
//!
//! A rule names the issuer, and the subject exactly or as a pattern; other
//! claims can be required where a subject alone does not say enough (a
//! GitHub Actions token's `repository_owner`, a Kubernetes token's
//! `/kubernetes.io/namespace`). In a pattern `*` stands for any run of
//! characters, `:` and `/` included: `repo:acme/app:ref:refs/heads/*` matches
//! every branch of acme/app.

use serde_json::{Map, Value};

use super::assertion::Refused;
use crate::store::TrustRuleRecord;

/// Does `value` match `pattern`, where `*` is any run of characters and
/// everything else is literal?
pub fn pattern_matches(pattern: &str, value: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole value.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// A claim by name, or by JSON pointer (RFC 6901) when it starts with `/`
/// (`/kubernetes.io/namespace`, since claim names may hold dots).
fn claim<'c>(claims: &'c Map<String, Value>, name: &str) -> Option<&'c Value> {
    if let Some(pointer) = name.strip_prefix('/') {
        let (first, rest) = pointer.split_once('/').unwrap_or((pointer, ""));
        let first = first.replace("~1", "/").replace("~0", "~");
        let top = claims.get(&first)?;
        if rest.is_empty() {
            Some(top)
        } else {
            top.pointer(&format!("/{rest}"))
        }
    } else {
        claims.get(name)
    }
}

/// A string claim as it is; a number or a boolean as its JSON text (GitHub
/// sends `run_number` as a string, Kubernetes nothing numeric that matters).
fn claim_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Checks the rule's subject and claim conditions (the issuer and the
/// audience are checked by the caller).
pub fn matches(rule: &TrustRuleRecord, claims: &Map<String, Value>) -> Result<(), Refused> {
    if let Some(subject) = &rule.subject {
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or(Refused("the token has no 'sub'"))?;
        if !pattern_matches(subject, sub) {
            return Err(Refused("'sub' does not match the trust rule"));
        }
    }
    for (name, wanted) in &rule.claims {
        let wanted = wanted.as_str().unwrap_or_default();
        let found = claim(claims, name).and_then(claim_text);
        if !found.is_some_and(|f| pattern_matches(wanted, &f)) {
            return Err(Refused("a claim does not match the trust rule's condition"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns() {
        let p = "repo:acme/app:ref:refs/heads/*";
        assert!(pattern_matches(p, "repo:acme/app:ref:refs/heads/main"));
        assert!(pattern_matches(p, "repo:acme/app:ref:refs/heads/feature/x"));
        assert!(!pattern_matches(p, "repo:acme/app:ref:refs/tags/v1"));
        assert!(!pattern_matches(
            p,
            "repo:acme/app-evil:ref:refs/heads/main"
        ));
        assert!(!pattern_matches(p, "repo:acme/app:ref:refs/heads"));
        assert!(pattern_matches("exact", "exact"));
        assert!(!pattern_matches("exact", "exactly"));
        assert!(!pattern_matches("exact", "inexact"));
        assert!(pattern_matches(
            "repo:acme/*:environment:prod",
            "repo:acme/api:environment:prod"
        ));
        assert!(!pattern_matches(
            "repo:acme/*:environment:prod",
            "repo:acme/api:environment:dev"
        ));
        assert!(pattern_matches("a*b*c", "abc"));
        assert!(pattern_matches("a*b*c", "a-b-b-c"));
        assert!(!pattern_matches("a*b*c", "a-c-b"));
        // The suffix may not reuse characters the prefix consumed.
        assert!(!pattern_matches("ab*ba", "aba"));
    }

    fn rule(subject: Option<&str>, claims: Value) -> TrustRuleRecord {
        TrustRuleRecord {
            id: 1,
            client_id: "c".into(),
            issuer: "https://issuer".into(),
            subject: subject.map(Into::into),
            audience: None,
            claims: claims.as_object().unwrap().clone(),
            created_at: 0,
        }
    }

    #[test]
    fn conditions_on_nested_and_top_level_claims() {
        let k8s = json!({"sub": "system:serviceaccount:prod:ci",
            "kubernetes.io": {"namespace": "prod", "serviceaccount": {"name": "ci"}}});
        let k8s = k8s.as_object().unwrap();
        let ns = rule(None, json!({"/kubernetes.io/namespace": "prod"}));
        assert!(matches(&ns, k8s).is_ok());
        let other = rule(None, json!({"/kubernetes.io/namespace": "dev"}));
        assert!(matches(&other, k8s).is_err());
        let missing = rule(None, json!({"/kubernetes.io/pod/name": "*"}));
        assert!(matches(&missing, k8s).is_err());
        let gh = json!({"sub": "repo:acme/app:ref:refs/heads/main", "repository_owner": "acme",
            "run_number": "7"});
        let gh = gh.as_object().unwrap();
        assert!(matches(
            &rule(Some("repo:acme/*"), json!({"repository_owner": "acme"})),
            gh
        )
        .is_ok());
        assert!(matches(
            &rule(Some("repo:acme/*"), json!({"repository_owner": "evil"})),
            gh
        )
        .is_err());
        assert!(matches(&rule(Some("repo:other/*"), json!({})), gh).is_err());
    }
}
