//! What the commands print: one JSON value with `--json`, else the same
//! fields as aligned `key: value` lines.

use serde_json::{json, Value};

use crate::admin::ClientDetails;
use crate::store::ClientRecord;

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
}

fn print_fields(value: &Value) {
    let Value::Object(map) = value else {
        println!("{value}");
        return;
    };
    let width = map.keys().map(String::len).max().unwrap_or(0) + 1;
    for (k, v) in map {
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
    shown
}
