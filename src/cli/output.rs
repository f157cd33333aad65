//! What the commands print: one JSON value with `--json`, else the same
//! fields as aligned `key: value` lines.

use serde_json::{json, Value};

use crate::admin::ClientDetails;
use crate::store::ClientRecord;

/// A table column: its header and how a cell is drawn from an item.
pub type Column = (&'static str, fn(&Value) -> String);

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    pub fn print(&self, value: &Value) {
        if self.json {
            println!("{value}");
            return;
        }
        match value {
            Value::Array(items) if items.is_empty() => println!("(none)"),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        println!();
                    }
                    print_fields(item);
                }
            }
            other => print_fields(other),
        }
    }

    /// A note for the person at the terminal; scripts reading JSON get none.
    pub fn note(&self, text: &str) {
        if !self.json {
            eprintln!("{text}");
        }
    }

    /// A list as one line per item under a header (aligned columns), or
    /// with `--json` the items themselves.
    pub fn table(&self, items: &[Value], columns: &[Column]) {
        if self.json {
            println!("{}", Value::Array(items.to_vec()));
            return;
        }
        if items.is_empty() {
            println!("(none)");
            return;
        }
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|item| columns.iter().map(|(_, cell)| cell(item)).collect())
            .collect();
        let widths: Vec<usize> = columns
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                rows.iter()
                    .map(|r| r[i].len())
                    .chain([name.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: Vec<&str>| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    out.push_str(cell);
                } else {
                    out.push_str(&format!("{cell:w$}  ", w = widths[i]));
                }
            }
            println!("{}", out.trim_end());
        };
        line(columns.iter().map(|(name, _)| *name).collect());
        for row in &rows {
            line(row.iter().map(String::as_str).collect());
        }
    }

    /// Something the operator must know, JSON or not: one line on stderr.
    pub fn warn(&self, text: &str) {
        eprintln!("warning: {text}");
    }
}

/// A string cell, `-` when absent or empty.
pub fn text(v: &Value) -> String {
    match v.as_str() {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => "-".into(),
    }
}

/// Unix seconds as RFC 3339 UTC, or `-`.
pub fn time(v: &Value) -> String {
    match v.as_i64().and_then(|s| u64::try_from(s).ok()) {
        Some(s) => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(s),
        )
        .to_string(),
        None => "-".into(),
    }
}

fn print_fields(value: &Value) {
    let Value::Object(map) = value else {
        println!("{value}");
        return;
    };
    let width = map.keys().map(String::len).max().unwrap_or(0) + 1;
    for (k, v) in map {
        if k == "secrets" {
            // One readable row per secret: its id and dates.
            let secrets = v.as_array().map(Vec::as_slice).unwrap_or_default();
            println!(
                "{:width$} {}",
                format!("{k}:"),
                if secrets.is_empty() { "(none)" } else { "" }
            );
            for s in secrets {
                println!(
                    "  id {}  created {}  expires {}  last used {}",
                    s["id"],
                    time(&s["created_at"]),
                    time(&s["expires_at"]),
                    time(&s["last_used_at"])
                );
            }
            continue;
        }
        let shown = match v {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            Value::Array(a) if a.iter().all(Value::is_string) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        };
        println!("{:width$} {shown}", format!("{k}:"));
    }
}

/// A client as shown: scopes as one space-delimited string, as in OAuth.
pub fn client(c: &ClientRecord) -> Value {
    json!({
        "client_id": c.id,
        "name": c.name,
        "public": c.public,
        "scope": c.scopes.join(" "),
        "default_scope": c.default_scope.as_ref().map(|d| d.join(" ")),
        "lifetime": c.lifetime,
        "grant_types": c.grant_types,
        "enabled": c.enabled,
        "format": c.token_format.map(|f| f.as_str()),
        "claims": c.claims,
        "auth_methods": c.auth_methods.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "jwks_uri": c.jwks_uri,
        "created_at": c.created_at,
    })
}

/// A client with its grants and secrets (their ids and dates, never a hash).
pub fn client_details(details: &ClientDetails) -> Value {
    let mut shown = client(&details.client);
    let grants: Vec<Value> = details
        .grants
        .iter()
        .map(|g| json!({"api": g.api, "scope": g.scopes.join(" ")}))
        .collect();
    shown["grants"] = json!(grants);
    shown["secrets"] = json!(details.secrets);
    if !details.trust.is_empty() {
        shown["trust"] = json!(details.trust);
    }
    if let Some(jwks) = &details.client.jwks {
        // Public keys only (private ones are refused when registered).
        shown["jwks"] = serde_json::from_str(jwks).unwrap_or(Value::Null);
    }
    shown
}

/// A duration as an operator writes one: `24h`, `90m`, `2d`, `45s`.
pub fn duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".into(),
        s if s % 86_400 == 0 && s >= 2 * 86_400 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_as_they_are_written() {
        let d = |s| duration(Duration::from_secs(s));
        assert_eq!(d(86_400), "24h");
        assert_eq!(d(2 * 86_400), "2d");
        assert_eq!(d(5400), "90m");
        assert_eq!(d(45), "45s");
        assert_eq!(d(3600), "1h");
    }
}
