//! The APIs page: every API with its identifier, scopes, lifetimes and
//! token format; a new API; one API's settings and scopes.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::clients::{error_box, format_choice, seconds};
use super::page::{field_label, layout, Page};
use super::{Posted, Session};
use crate::admin::{AdminError, ApiChanges, FormatSetting, NewApi};
use crate::http::AppState;
use crate::store::ApiRecord;
use crate::types::{Algorithm, ClaimsProfile, TokenFormat};

fn api_path(session: &Session, identifier: &str) -> String {
    let id: String = url::form_urlencoded::byte_serialize(identifier.as_bytes()).collect();
    session.base.to(&format!("/apis/{id}"))
}

fn format_label(format: Option<TokenFormat>) -> &'static str {
    match format {
        Some(TokenFormat::Opaque) => "opaque",
        _ => "JWT",
    }
}

fn lifetime_text(seconds: Option<u64>) -> String {
    seconds.map_or_else(|| "—".into(), |s| format!("{s} s"))
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(done): Query<Done>,
) -> Result<Page, Page> {
    let apis = session.admin(&state).apis().await?;
    let base = &session.base;
    let main = html! {
        div.heading {
            h1 { "APIs" }
            a.button href=(base.to("/apis/new")) { "New API" }
        }
        @if done.done.as_deref() == Some("created") {
            p.done role="status" { "The API was created." }
        }
        p.hint { "The audiences tokens are issued for: a token names its API's identifier in " code { "aud" } "." }
        @if apis.is_empty() {
            p.message { "No APIs yet." }
        } @else {
            div.table {
                table {
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Identifier" } th scope="col" { "Scopes" }
                        th.wide scope="col" { "Lifetime" } th.wide scope="col" { "Format" }
                    } }
                    tbody {
                        @for a in &apis {
                            tr {
                                td { a href=(api_path(&session, &a.identifier)) { (a.name) } }
                                td { code { (a.identifier) } }
                                td { @for s in &a.scopes { code.scope { (s) } " " } }
                                td.wide { (lifetime_text(a.lifetime)) @if let Some(m) = a.max_lifetime { " (at most " (m) " s)" } }
                                td.wide { (format_label(a.token_format)) ", " (a.algorithm) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(Page::new(
        StatusCode::OK,
        layout("APIs", Some(&session), base, html! {}, main),
    ))
}

/// What the API forms hold, also to show them again with a message.
#[derive(Debug, Default, Deserialize)]
pub struct ApiForm {
    #[serde(default)]
    identifier: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    lifetime: String,
    #[serde(default)]
    max_lifetime: String,
    #[serde(default)]
    algorithm: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    claims: String,
}

pub async fn new_form(session: Session) -> Page {
    new_page(&session, &ApiForm::default(), None, StatusCode::OK)
}

fn select(id: &str, options: &[(&str, &str)], selected: &str) -> Markup {
    html! {
        select #(id) name=(id) {
            @for (value, text) in options {
                option value=(value) selected[selected == *value] { (text) }
            }
        }
    }
}

const FORMATS: [(&str, &str); 3] = [
    ("default", "Default (JWT)"),
    ("jwt", "JWT"),
    ("opaque", "Opaque"),
];
const PROFILES: [(&str, &str); 2] = [
    ("standard", "Standard (RFC 9068)"),
    ("auth0", "Auth0 (gty, azp, sub as id@clients)"),
];

/// The settings both forms share.
fn settings_fields(f: &ApiForm) -> Markup {
    html! {
        label for="name" { "Name" span.hint { " (optional: the identifier)" } }
        input #name type="text" name="name" value=(f.name);
        label for="scope" { "Scopes" span.hint { " (space-separated, e.g. orders:read orders:write)" } }
        input #scope type="text" name="scope" value=(f.scope);
        label for="lifetime" { "Token lifetime in seconds" span.hint { " (optional)" } }
        input #lifetime type="number" min="1" name="lifetime" inputmode="numeric" value=(f.lifetime);
        label for="max_lifetime" { "Maximum lifetime in seconds" span.hint { " (optional: no client gets longer)" } }
        input #max_lifetime type="number" min="1" name="max_lifetime" inputmode="numeric" value=(f.max_lifetime);
        label for="format" { "Token format" }
        (select("format", &FORMATS, if f.format.is_empty() { "default" } else { &f.format }))
        label for="claims" { "Claims" }
        (select("claims", &PROFILES, &f.claims))
    }
}

fn new_page(session: &Session, f: &ApiForm, error: Option<&str>, status: StatusCode) -> Page {
    let base = &session.base;
    let algorithms: Vec<(&str, &str)> = Algorithm::ALL
        .iter()
        .map(|a| (a.as_str(), a.as_str()))
        .collect();
    let main = html! {
        p.crumbs { a href=(base.to("/apis")) { "APIs" } " / new" }
        h1 { "New API" }
        (error_box(error))
        form.stack method="post" action=(base.to("/apis")) {
            input type="hidden" name="csrf" value=(session.csrf);
            label for="identifier" { "Identifier" span.hint { " (an absolute URI; tokens carry it in aud)" } }
            input #identifier type="text" name="identifier" required inputmode="url" value=(f.identifier) placeholder="https://api.example.com/orders";
            (settings_fields(f))
            label for="algorithm" { "Signing algorithm" }
            (select("algorithm", &algorithms, if f.algorithm.is_empty() { "ES256" } else { &f.algorithm }))
            button type="submit" { "Create API" }
        }
    };
    Page::new(
        status,
        layout("New API", Some(session), base, html! {}, main),
    )
}

/// The parts of the form that are not free text, read or said what is wrong.
struct Read {
    lifetime: Option<u64>,
    max_lifetime: Option<u64>,
    format: FormatSetting,
    claims: Option<ClaimsProfile>,
}

fn read(f: &ApiForm) -> Result<Read, String> {
    Ok(Read {
        lifetime: seconds(&f.lifetime, "Token lifetime")?,
        max_lifetime: seconds(&f.max_lifetime, "Maximum lifetime")?,
        format: format_choice(&f.format)?,
        claims: match f.claims.as_str() {
            "" => None,
            other => Some(other.parse()?),
        },
    })
}

pub async fn create(
    State(state): State<AppState>,
    Posted { session, form: f }: Posted<ApiForm>,
) -> Result<Response, Page> {
    let invalid = |m: &str| new_page(&session, &f, Some(m), StatusCode::UNPROCESSABLE_ENTITY);
    let r = read(&f).map_err(|m| invalid(&m))?;
    let algorithm = match f.algorithm.as_str() {
        "" => Algorithm::ES256,
        other => other.parse().map_err(|m: String| invalid(&m))?,
    };
    let new = NewApi {
        identifier: f.identifier.trim().to_owned(),
        name: Some(f.name.clone()).filter(|n| !n.trim().is_empty()),
        scope: f.scope.clone(),
        lifetime: r.lifetime,
        max_lifetime: r.max_lifetime,
        algorithm,
        format: r.format.0,
        claims_profile: r.claims,
    };
    match session
        .admin(&state)
        .create_api(new, state.clock.now())
        .await
    {
        Ok(api) => Ok(Redirect::to(&format!(
            "{}?done=created",
            api_path(&session, &api.identifier)
        ))
        .into_response()),
        Err(AdminError::Invalid(i)) => Err(invalid(&i.message(field_label))),
        Err(AdminError::Conflict(m)) => Err(invalid(&m)),
        Err(e) => Err(e.into()),
    }
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(identifier): Path<String>,
    Query(done): Query<Done>,
) -> Result<Page, Page> {
    let api = session.admin(&state).api(&identifier).await?;
    let done = match done.done.as_deref() {
        Some("created") => Some("The API was created. Grant it to clients on their pages."),
        Some("updated") => Some("Saved."),
        _ => None,
    };
    Ok(api_page(
        &session,
        &api,
        &form_of(&api),
        done,
        None,
        StatusCode::OK,
    ))
}

fn form_of(api: &ApiRecord) -> ApiForm {
    ApiForm {
        identifier: api.identifier.clone(),
        name: api.name.clone(),
        scope: api.scopes.join(" "),
        lifetime: api.lifetime.map(|l| l.to_string()).unwrap_or_default(),
        max_lifetime: api.max_lifetime.map(|l| l.to_string()).unwrap_or_default(),
        algorithm: api.algorithm.to_string(),
        format: api
            .token_format
            .map_or("default", TokenFormat::as_str)
            .into(),
        claims: api.claims_profile.unwrap_or_default().to_string(),
    }
}

fn api_page(
    session: &Session,
    api: &ApiRecord,
    f: &ApiForm,
    done: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Page {
    let base = &session.base;
    let main = html! {
        p.crumbs { a href=(base.to("/apis")) { "APIs" } " / " (api.name) }
        h1 { (api.name) }
        @if let Some(done) = done {
            p.done role="status" { (done) }
        }
        (error_box(error))
        dl.facts {
            dt { "Identifier" } dd { code { (api.identifier) } }
            dt { "Signing algorithm" } dd { (api.algorithm) }
            dt { "Created" } dd { (super::page::time(api.created_at)) }
        }
        section aria-labelledby="settings-heading" {
            h2 #settings-heading { "Settings and scopes" }
            form.stack method="post" action=(api_path(session, &api.identifier)) {
                input type="hidden" name="csrf" value=(session.csrf);
                (settings_fields(f))
                p.hint { "A scope granted to a client stays until that grant no longer names it. An emptied lifetime field keeps the lifetime as it is." }
                button type="submit" { "Save API" }
            }
        }
    };
    Page::new(
        status,
        layout(&api.name, Some(session), base, html! {}, main),
    )
}

pub async fn update(
    State(state): State<AppState>,
    Path(identifier): Path<String>,
    Posted { session, form: f }: Posted<ApiForm>,
) -> Result<Response, Page> {
    let admin = session.admin(&state);
    let api = admin.api(&identifier).await?;
    let invalid = |m: &str| {
        api_page(
            &session,
            &api,
            &f,
            None,
            Some(m),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    let r = read(&f).map_err(|m| invalid(&m))?;
    let changes = ApiChanges {
        name: Some(if f.name.trim().is_empty() {
            api.identifier.clone()
        } else {
            f.name.clone()
        }),
        scope: Some(f.scope.clone()),
        lifetime: r.lifetime,
        max_lifetime: r.max_lifetime,
        algorithm: None,
        format: Some(r.format),
        claims_profile: r.claims,
    };
    match admin
        .update_api(&identifier, changes, state.clock.now())
        .await
    {
        Ok(_) => Ok(
            Redirect::to(&format!("{}?done=updated", api_path(&session, &identifier)))
                .into_response(),
        ),
        Err(AdminError::Invalid(i)) => Err(invalid(&i.message(field_label))),
        Err(e) => Err(e.into()),
    }
}
