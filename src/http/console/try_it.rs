//! The try-it panel of a client's page: a test token for the client and
//! an API, shown decoded with its expiry counting down, and the token
//! request as ready-to-paste curl commands in the four dialects Writ
//! speaks. The commands name the secret `$CLIENT_SECRET`: the console
//! never knows it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

use super::clients::{client_path, refused};
use super::page::{layout, time, Page};
use super::{Posted, Session};
use crate::admin::{AdminError, Issuing, TestToken};
use crate::http::AppState;
use crate::store::{ClientRecord, GrantRecord};
use crate::types::TokenFormat;

pub fn section(session: &Session, here: &str, grants: &[GrantRecord]) -> Markup {
    html! {
        section aria-labelledby="try-heading" {
            h2 #try-heading { "Try it" }
            p.hint { "Issues a token for this client as its own request would get one, without its secret, and shows the same request as curl commands." }
            form.stack method="post" action={ (here) "/try" } {
                input type="hidden" name="csrf" value=(session.csrf);
                label for="try-api" { "API" }
                select #try-api name="api" {
                    @for g in grants { option value=(g.api) { (g.api) } }
                    option value="" { "No audience (the server's default)" }
                }
                label for="try-scope" { "Scope" span.hint { " (optional: empty asks for the default)" } }
                input #try-scope type="text" name="scope";
                button type="submit" { "Get a test token" }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct TryForm {
    #[serde(default)]
    api: String,
    #[serde(default)]
    scope: String,
}

pub async fn issue(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, form }: Posted<TryForm>,
) -> Result<Page, Page> {
    let admin = session.admin(&state);
    let client = admin.client(&id).await?.client;
    let audience = Some(form.api.trim()).filter(|a| !a.is_empty());
    let scope = Some(form.scope.trim()).filter(|s| !s.is_empty());
    let from = Issuing {
        registry: &state.registry,
        policy: &state.policy,
        tokens: &state.tokens,
    };
    let token = match admin
        .issue_test_token(from, &id, audience, scope, state.clock.now_millis())
        .await
    {
        Ok(t) => t,
        Err(AdminError::Conflict(m)) => {
            return Err(refused(&state, &session, &id, format!("No token: {m}.")).await)
        }
        Err(e) => return Err(e.into()),
    };
    Ok(result_page(
        &state, &session, &client, &token, audience, scope,
    ))
}

/// A JWT's header and claims, pretty-printed; `None` for anything else.
fn decode(token: &str) -> Option<(String, String)> {
    let mut parts = token.split('.');
    let (header, claims) = (parts.next()?, parts.next()?);
    let part = |p: &str| -> Option<String> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .ok()?;
        let value: Value = serde_json::from_slice(&bytes).ok()?;
        serde_json::to_string_pretty(&value).ok()
    };
    Some((part(header)?, part(claims)?))
}

fn result_page(
    state: &AppState,
    session: &Session,
    client: &ClientRecord,
    token: &TestToken,
    audience: Option<&str>,
    scope: Option<&str>,
) -> Page {
    let now = state.clock.now();
    let here = client_path(session, &client.id);
    let left = token.issued.expires_at - now;
    let decoded = (token.format == TokenFormat::Jwt)
        .then(|| decode(&token.issued.access_token))
        .flatten();
    let commands = curl_commands(&state.issuer, client, audience, scope);
    let main = html! {
        p.crumbs { a href=(session.base.to("/clients")) { "Clients" } " / " a href=(here) { (client.name) } " / try it" }
        h1 { "Test token for " (client.name) }
        dl.facts {
            dt { "Audience" } dd { code { (token.audience) } }
            dt { "Scope" } dd { @if token.scope.is_empty() { "(none)" } @else { code { (token.scope) } } }
            dt { "Format" } dd { (token.format.as_str()) }
            dt { "Expires" } dd {
                (time(token.issued.expires_at)) ", "
                span.countdown data-expires-at=(token.issued.expires_at) { "in " (left) " s" }
            }
        }
        section aria-labelledby="token-heading" {
            h2 #token-heading { "Access token" }
            div.copy {
                label.visually-hidden for="token" { "Access token" }
                textarea #token readonly rows="4" spellcheck="false" { (token.issued.access_token) }
                button type="button" data-copy="token" { "Copy" }
            }
            p.copied role="status" aria-live="polite" {}
        }
        @if let Some((header, claims)) = &decoded {
            section aria-labelledby="decoded-heading" {
                h2 #decoded-heading { "Decoded" }
                div.decoded {
                    div { h3 { "Header" } pre #jwt-header { (header) } }
                    div { h3 { "Claims" } pre #jwt-claims { (claims) } }
                }
            }
        } @else {
            p { "An opaque token carries nothing to decode: resource servers ask the introspection endpoint about it." }
        }
        section aria-labelledby="curl-heading" {
            h2 #curl-heading { "The same request with curl" }
            p.hint {
                @if client.public { "A public client sends no secret." }
                @else if client.jwks.is_some() { "Set CLIENT_ASSERTION to a JWT signed with one of the client's keys." }
                @else { "Set CLIENT_SECRET to the client's secret first (it was shown once, when it was made); the console does not know it." }
            }
            @for (key, title, command) in &commands {
                h3 { (title) }
                div.copy {
                    pre.curl #{ "curl-" (key) } { (command) }
                    button type="button" data-copy={ "curl-" (key) } aria-label={ "Copy the " (title) " command" } { "Copy" }
                }
                p.copied role="status" aria-live="polite" {}
            }
        }
        p { a href=(here) { "Back to the client's page" } }
    };
    Page::new(
        StatusCode::OK,
        layout("Test token", Some(session), &session.base, html! {}, main),
    )
}

/// A shell word: single-quoted, with any single quote spliced in.
fn sq(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// What stands for the client's credential in the commands.
const SECRET: &str = "$CLIENT_SECRET";
const ASSERTION: &str = "$CLIENT_ASSERTION";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// A stand-in for the credential inside a JSON body, replaced by a splice
/// of the shell variable once the body is quoted.
const MARK: &str = "__WRIT_CREDENTIAL__";

/// The token request in each dialect: Moltin (form to
/// `/oauth/access_token`), Commerce Layer (JSON to `/oauth/token`), Auth0
/// (JSON with `audience`) and WSO2 (HTTP Basic and `scope` to `/token`).
/// Writ reads an RFC 8707 `resource` from any of them.
pub fn curl_commands(
    issuer: &str,
    client: &ClientRecord,
    audience: Option<&str>,
    scope: Option<&str>,
) -> Vec<(&'static str, &'static str, String)> {
    let base = issuer.trim_end_matches('/');
    let (secret_name, variable) = if client.jwks.is_some() {
        ("client_assertion", Some(ASSERTION))
    } else if client.public {
        ("client_secret", None)
    } else {
        ("client_secret", Some(SECRET))
    };
    let form = |path: &str, basic: bool, target: &str| {
        let mut lines = vec![format!("curl -s -X POST {}", sq(&format!("{base}{path}")))];
        match (basic, variable) {
            (true, Some(v)) => lines.push(format!("-u {}\"{v}\"", sq(&format!("{}:", client.id)))),
            _ => {
                lines.push(format!(
                    "--data-urlencode {}",
                    sq(&format!("client_id={}", client.id))
                ));
                if let Some(v) = variable {
                    if client.jwks.is_some() {
                        lines.push(format!(
                            "-d {}",
                            sq(&format!("client_assertion_type={ASSERTION_TYPE}"))
                        ));
                    }
                    lines.push(format!("--data-urlencode \"{secret_name}={v}\""));
                }
            }
        }
        lines.push("-d grant_type=client_credentials".into());
        if let Some(s) = scope {
            lines.push(format!("--data-urlencode {}", sq(&format!("scope={s}"))));
        }
        if let Some(a) = audience {
            lines.push(format!("--data-urlencode {}", sq(&format!("{target}={a}"))));
        }
        lines.join(" \\\n  ")
    };
    let json_request = |target: &str| {
        let mut body = serde_json::Map::new();
        body.insert("grant_type".into(), json!("client_credentials"));
        body.insert("client_id".into(), json!(client.id));
        if variable.is_some() {
            if client.jwks.is_some() {
                body.insert("client_assertion_type".into(), json!(ASSERTION_TYPE));
            }
            body.insert(secret_name.into(), json!(MARK));
        }
        if let Some(s) = scope {
            body.insert("scope".into(), json!(s));
        }
        if let Some(a) = audience {
            body.insert(target.into(), json!(a));
        }
        let quoted = sq(&Value::Object(body).to_string());
        let quoted = match variable {
            Some(v) => quoted.replace(&format!("\"{MARK}\""), &format!("\"'\"{v}\"'\"")),
            None => quoted,
        };
        [
            format!("curl -s -X POST {}", sq(&format!("{base}/oauth/token"))),
            "-H 'Content-Type: application/json'".into(),
            format!("-d {quoted}"),
        ]
        .join(" \\\n  ")
    };
    vec![
        (
            "moltin",
            "Moltin",
            form("/oauth/access_token", false, "resource"),
        ),
        ("commerce-layer", "Commerce Layer", json_request("resource")),
        ("auth0", "Auth0", json_request("audience")),
        ("wso2", "WSO2", form("/token", true, "resource")),
    ]
}
