//! The clients pages: the list (search by name prefix, a page at a time),
//! a new client and its secret shown once, and one client's page (its
//! settings, enabling, and its secrets: rotate with overlap, revoke).

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::page::{field_label, layout, time, Page};
use super::{Posted, Session};
use crate::admin::{AdminError, ClientChanges, ClientDetails, FormatSetting, NewClient};
use crate::http::AppState;
use crate::oauth::client_credentials::GRANT_TYPE;
use crate::store::{ApiRecord, ClientRecord};
use crate::types::TokenFormat;

/// Clients on one page of the list.
const PAGE_SIZE: u32 = 50;

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    after: Option<String>,
    done: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> Result<Page, Page> {
    let prefix = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let mut found = session
        .admin(&state)
        .clients_page(query.after.as_deref(), prefix, PAGE_SIZE + 1)
        .await?;
    let more = found.len() > PAGE_SIZE as usize;
    found.truncate(PAGE_SIZE as usize);
    let next = more.then(|| found.last()).flatten().map(|last| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(p) = prefix {
            q.append_pair("q", p);
        }
        q.append_pair("after", &last.id);
        format!("{}?{}", session.base.to("/clients"), q.finish())
    });
    let base = &session.base;
    let main = html! {
        div.heading {
            h1 { "Clients" }
            a.button href=(base.to("/clients/new")) { "New client" }
        }
        @if query.done.as_deref() == Some("deleted") {
            p.done role="status" { "The client was deleted." }
        }
        form.search method="get" action=(base.to("/clients")) role="search" {
            label for="q" { "Name starts with" }
            input #q type="search" name="q" value=(prefix.unwrap_or_default());
            button type="submit" { "Search" }
        }
        @if found.is_empty() {
            p.message { @if prefix.is_some() { "No client's name starts with that." } @else { "No clients yet." } }
        } @else {
            div.table {
                table {
                    thead { tr { th scope="col" { "Name" } th.wide scope="col" { "Client id" } th scope="col" { "Kind" } th scope="col" { "State" } th.wide scope="col" { "Created" } } }
                    tbody {
                        @for c in &found {
                            tr {
                                td { a href=(base.to(&format!("/clients/{}", c.id))) { (c.name) } }
                                td.wide { code { (c.id) } }
                                td { (kind(c)) }
                                td { (state_label(c.enabled)) }
                                td.wide { (time(c.created_at)) }
                            }
                        }
                    }
                }
            }
        }
        nav.pages aria-label="Pages" {
            @if query.after.is_some() {
                a href=(base.to("/clients")) { "First page" }
            }
            @if let Some(next) = &next {
                a rel="next" href=(next) { "Next page" }
            }
        }
    };
    Ok(Page::new(
        StatusCode::OK,
        layout("Clients", Some(&session), base, html! {}, main),
    ))
}

fn kind(c: &ClientRecord) -> &'static str {
    if c.public {
        "public"
    } else if c.jwks.is_some() {
        "keys (private_key_jwt)"
    } else {
        "secret"
    }
}

fn state_label(enabled: bool) -> &'static str {
    if enabled {
        "enabled"
    } else {
        "disabled"
    }
}

/// What the new-client form holds, also to show it again with a message.
#[derive(Debug, Default, Deserialize)]
pub struct NewClientForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    default_scope: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    lifetime: String,
    #[serde(default)]
    format: String,
}

pub async fn new_form(session: Session) -> Page {
    new_page(&session, &NewClientForm::default(), None, StatusCode::OK)
}

fn new_page(session: &Session, f: &NewClientForm, error: Option<&str>, status: StatusCode) -> Page {
    let base = &session.base;
    let main = html! {
        h1 { "New client" }
        (error_box(error))
        form.stack method="post" action=(base.to("/clients")) {
            input type="hidden" name="csrf" value=(session.csrf);
            label for="name" { "Name" }
            input #name type="text" name="name" required value=(f.name);
            label for="scope" { "Scopes" span.hint { " (space-separated; a trailing * is a wildcard)" } }
            input #scope type="text" name="scope" value=(f.scope);
            label for="default_scope" { "Default scope" span.hint { " (optional: given when a request names none)" } }
            input #default_scope type="text" name="default_scope" value=(f.default_scope);
            fieldset {
                legend { "Kind" }
                label.choice { input type="radio" name="kind" value="secret" checked[f.kind != "public"]; " Confidential: gets a secret" }
                label.choice { input type="radio" name="kind" value="public" checked[f.kind == "public"]; " Public: no secret" }
            }
            label for="lifetime" { "Token lifetime in seconds" span.hint { " (optional)" } }
            input #lifetime type="number" min="1" name="lifetime" inputmode="numeric" value=(f.lifetime);
            label for="format" { "Token format" }
            (format_select(&f.format))
            button type="submit" { "Create client" }
        }
    };
    Page::new(
        status,
        layout("New client", Some(session), base, html! {}, main),
    )
}

fn format_select(selected: &str) -> Markup {
    html! {
        select #format name="format" {
            @for (value, text) in [("default", "Default (the API's, else JWT)"), ("jwt", "JWT"), ("opaque", "Opaque")] {
                option value=(value) selected[selected == value] { (text) }
            }
        }
    }
}

pub(super) fn error_box(error: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = error {
            p.error role="alert" { (e) }
        }
    }
}

/// A number field: empty is none; anything else must be a whole number.
pub(super) fn seconds(text: &str, label: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{label} must be a whole number of seconds"))
}

pub(super) fn format_choice(text: &str) -> Result<FormatSetting, String> {
    match text {
        "" => Ok(FormatSetting(None)),
        other => other.parse(),
    }
}

pub async fn create(
    State(state): State<AppState>,
    Posted { session, form: f }: Posted<NewClientForm>,
) -> Result<Response, Page> {
    let invalid = |message: String| {
        new_page(
            &session,
            &f,
            Some(&message),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    let lifetime = match seconds(&f.lifetime, "Token lifetime") {
        Ok(l) => l,
        Err(m) => return Err(invalid(m)),
    };
    let format = match format_choice(&f.format) {
        Ok(FormatSetting(format)) => format,
        Err(m) => return Err(invalid(m)),
    };
    let new = NewClient {
        name: f.name.clone(),
        scope: f.scope.clone(),
        default_scope: Some(f.default_scope.clone()).filter(|d| !d.trim().is_empty()),
        public: f.kind == "public",
        lifetime,
        grant_types: vec![GRANT_TYPE.into()],
        format,
        auth_methods: Vec::new(),
        jwks: None,
        jwks_uri: None,
        trust: Vec::new(),
    };
    let created = match session
        .admin(&state)
        .create_client(new, state.clock.now())
        .await
    {
        Ok(c) => c,
        Err(AdminError::Invalid(i)) => return Err(invalid(i.message(field_label))),
        Err(e) => return Err(e.into()),
    };
    let base = &session.base;
    let c = &created.client;
    let main = html! {
        h1 { "Client created" }
        dl.facts {
            dt { "Name" } dd { (c.name) }
            dt { "Client id" } dd { code #client-id { (c.id) } }
        }
        @if let Some(secret) = &created.secret {
            (secret_once(secret))
        } @else {
            p { "A public client has no secret: it authenticates with its client id alone." }
        }
        p { a href=(base.to(&format!("/clients/{}", c.id))) { "Go to the client's page" } }
    };
    Ok(Page::new(
        StatusCode::CREATED,
        layout("Client created", Some(&session), base, html! {}, main),
    )
    .into_response())
}

/// A new secret, with a copy button: it is not shown again.
fn secret_once(secret: &str) -> Markup {
    html! {
        section.secret aria-labelledby="secret-heading" {
            h2 #secret-heading { "Client secret" }
            p { strong { "Copy it now: " } "Writ keeps only its hash and cannot show it again." }
            div.copy {
                label.visually-hidden for="secret" { "Client secret" }
                input #secret type="text" readonly value=(secret) spellcheck="false" autocomplete="off";
                button type="button" data-copy="secret" { "Copy" }
            }
            p.copied role="status" aria-live="polite" {}
        }
    }
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// What a change that redirected back to the client's page did.
fn done_text(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "updated" => "Saved.",
        "enabled" => "Enabled: its token requests are accepted.",
        "disabled" => "Disabled: its token requests are refused until it is enabled.",
        "revoked" => "The secret was revoked.",
        "granted" => "The grant was saved.",
        "ungranted" => "The API is not granted to this client.",
        "revoked-last" => {
            "The secret was revoked. The client has no live secret left: it gets no token until a new one is made."
        }
        _ => return None,
    })
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Page, Page> {
    let admin = session.admin(&state);
    let d = admin.client(&id).await?;
    let apis = admin.apis().await?;
    Ok(client_page(
        &state,
        &session,
        &d,
        &apis,
        done_text(done.done.as_deref()),
        None,
        StatusCode::OK,
    ))
}

fn client_page(
    state: &AppState,
    session: &Session,
    d: &ClientDetails,
    apis: &[ApiRecord],
    done: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Page {
    let base = &session.base;
    let c = &d.client;
    let now = state.clock.now();
    let here = base.to(&format!("/clients/{}", c.id));
    let format = c.token_format.map(TokenFormat::as_str).unwrap_or("default");
    let main = html! {
        p.crumbs { a href=(base.to("/clients")) { "Clients" } " / " (c.name) }
        h1 { (c.name) }
        @if let Some(done) = done {
            p.done role="status" { (done) }
        }
        (error_box(error))
        dl.facts {
            dt { "Client id" } dd { code { (c.id) } }
            dt { "Kind" } dd { (kind(c)) }
            dt { "State" } dd { (state_label(c.enabled)) }
            dt { "Created" } dd { (time(c.created_at)) }
            dt { "Authentication" } dd { (c.auth_methods.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")) }
        }
        form.inline method="post" action={ (here) "/enabled" } {
            input type="hidden" name="csrf" value=(session.csrf);
            @if c.enabled {
                input type="hidden" name="enabled" value="false";
                button.danger type="submit" { "Disable client" }
            } @else {
                input type="hidden" name="enabled" value="true";
                button type="submit" { "Enable client" }
            }
        }
        section aria-labelledby="settings-heading" {
            h2 #settings-heading { "Settings" }
            form.stack method="post" action=(here) {
                input type="hidden" name="csrf" value=(session.csrf);
                label for="name" { "Name" }
                input #name type="text" name="name" required value=(c.name);
                label for="scope" { "Scopes" span.hint { " (space-separated; a trailing * is a wildcard)" } }
                input #scope type="text" name="scope" value=(c.scopes.join(" "));
                label for="default_scope" { "Default scope" span.hint { " (empty: none)" } }
                input #default_scope type="text" name="default_scope" value=(c.default_scope.as_ref().map(|d| d.join(" ")).unwrap_or_default());
                label for="lifetime" { "Token lifetime in seconds" span.hint { " (empty: the API's or the server's)" } }
                input #lifetime type="number" min="1" name="lifetime" inputmode="numeric" value=(c.lifetime.map(|l| l.to_string()).unwrap_or_default());
                label for="format" { "Token format" }
                (format_select(format))
                button type="submit" { "Save settings" }
            }
        }
        @if !c.public && c.jwks.is_none() {
            section aria-labelledby="secrets-heading" {
                h2 #secrets-heading { "Secrets" }
                div.table {
                    table {
                        thead { tr { th scope="col" { "#" } th scope="col" { "Created" } th scope="col" { "Expires" } th scope="col" { "Last used" } th scope="col" { span.visually-hidden { "Action" } } } }
                        tbody {
                            @for s in &d.secrets {
                                @let live = s.expires_at.is_none_or(|e| e > now);
                                tr {
                                    td { (s.id) }
                                    td { (time(s.created_at)) }
                                    td { @match s.expires_at { Some(e) if e <= now => { "expired " (time(e)) } Some(e) => { (time(e)) } None => { "never" } } }
                                    td { @match s.last_used_at { Some(u) => { (time(u)) } None => { "not yet" } } }
                                    td {
                                        @if live {
                                            form.inline method="post" action={ (here) "/secrets/" (s.id) "/revoke" } {
                                                input type="hidden" name="csrf" value=(session.csrf);
                                                button.danger type="submit" aria-label={ "Revoke secret " (s.id) } { "Revoke" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                form.stack method="post" action={ (here) "/secrets" } {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label for="overlap" { "Previous secrets keep working for" span.hint { " (e.g. 24h, 30m; 0 revokes them now)" } }
                    input #overlap type="text" name="overlap" value="24h";
                    button type="submit" { "Rotate secret" }
                }
            }
        }
        (super::grants::section(session, &here, apis, &d.grants))
        (super::try_it::section(session, &here, &d.grants))
        section aria-labelledby="delete-heading" {
            h2 #delete-heading { "Delete" }
            p { "Deleting the client takes away its secrets and grants; its token requests are refused from then on." }
            a.button.danger href={ (here) "/delete" } { "Delete client…" }
        }
    };
    Page::new(status, layout(&c.name, Some(session), base, html! {}, main))
}

#[derive(Debug, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    default_scope: String,
    #[serde(default)]
    lifetime: String,
    #[serde(default)]
    format: String,
}

/// The settings form: every field is sent, checked as a whole by the
/// operation, and nothing is written when a rule is broken.
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, form: f }: Posted<EditForm>,
) -> Result<Response, Page> {
    let refuse = |message: String| refused(&state, &session, &id, message);
    let lifetime = match seconds(&f.lifetime, "Token lifetime") {
        Ok(l) => l,
        Err(m) => return Err(refuse(m).await),
    };
    let format = match format_choice(&f.format) {
        Ok(fmt) => fmt,
        Err(m) => return Err(refuse(m).await),
    };
    let changes = ClientChanges {
        name: Some(f.name),
        scope: Some(f.scope),
        default_scope: Some(f.default_scope),
        lifetime,
        format: Some(format),
        ..Default::default()
    };
    match session.admin(&state).update_client(&id, changes).await {
        Ok(_) => Ok(
            Redirect::to(&format!("{}?done=updated", client_path(&session, &id))).into_response(),
        ),
        Err(AdminError::Invalid(i)) => Err(refuse(i.message(field_label)).await),
        Err(e) => Err(e.into()),
    }
}

/// The client's page again, with what was wrong (a 422).
pub(super) async fn refused(
    state: &AppState,
    session: &Session,
    id: &str,
    message: String,
) -> Page {
    let admin = session.admin(state);
    let apis = match admin.apis().await {
        Ok(apis) => apis,
        Err(e) => return e.into(),
    };
    match admin.client(id).await {
        Ok(d) => client_page(
            state,
            session,
            &d,
            &apis,
            None,
            Some(&message),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(e) => e.into(),
    }
}

pub(super) fn client_path(session: &Session, id: &str) -> String {
    let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    session.base.to(&format!("/clients/{id}"))
}

#[derive(Debug, Deserialize)]
pub struct EnabledForm {
    enabled: String,
}

pub async fn set_enabled(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, form }: Posted<EnabledForm>,
) -> Result<Response, Page> {
    let enabled = form.enabled == "true";
    session
        .admin(&state)
        .set_client_enabled(&id, enabled)
        .await?;
    let done = if enabled { "enabled" } else { "disabled" };
    Ok(Redirect::to(&format!("{}?done={done}", client_path(&session, &id))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    overlap: String,
}

pub async fn rotate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, form }: Posted<RotateForm>,
) -> Result<Response, Page> {
    let overlap = match form.overlap.trim() {
        "" | "0" => Ok(Duration::ZERO),
        text => humantime::parse_duration(text)
            .map_err(|_| format!("'{text}' is not a duration: write it like 24h, 30m or 0")),
    };
    let overlap = match overlap {
        Ok(o) => o,
        Err(m) => return Err(refused(&state, &session, &id, m).await),
    };
    let rotated = match session
        .admin(&state)
        .rotate_secret(&id, overlap, state.clock.now())
        .await
    {
        Ok(r) => r,
        Err(AdminError::Invalid(i)) => {
            return Err(refused(&state, &session, &id, i.message(field_label)).await)
        }
        Err(e) => return Err(e.into()),
    };
    let base = &session.base;
    let main = html! {
        h1 { "New secret" }
        p {
            @match rotated.previous_secrets_expire_at {
                Some(at) => { "The previous secrets keep working until " (time(at)) "." }
                None => { "The previous secrets were revoked." }
            }
        }
        (secret_once(&rotated.secret))
        p { a href=(client_path(&session, &id)) { "Back to the client's page" } }
    };
    Ok(Page::new(
        StatusCode::CREATED,
        layout("New secret", Some(&session), base, html! {}, main),
    )
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct Nothing {}

pub async fn revoke(
    State(state): State<AppState>,
    Path((id, secret_id)): Path<(String, i64)>,
    Posted { session, .. }: Posted<Nothing>,
) -> Result<Response, Page> {
    let left = session
        .admin(&state)
        .revoke_secret(&id, secret_id, state.clock.now())
        .await?;
    let done = if left == 0 { "revoked-last" } else { "revoked" };
    Ok(Redirect::to(&format!("{}?done={done}", client_path(&session, &id))).into_response())
}

/// Asks before deleting: a page with the one button that does it.
pub async fn confirm_delete(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Page, Page> {
    let d = session.admin(&state).client(&id).await?;
    let c = &d.client;
    let here = client_path(&session, &id);
    let main = html! {
        p.crumbs { a href=(session.base.to("/clients")) { "Clients" } " / " a href=(here) { (c.name) } }
        h1 { "Delete " (c.name) "?" }
        p { "The client " code { (c.id) } " loses its secrets and grants, and every token request it makes is refused. This cannot be undone." }
        form.inline method="post" action={ (here) "/delete" } {
            input type="hidden" name="csrf" value=(session.csrf);
            button.danger type="submit" { "Delete the client" }
        }
        " "
        a href=(here) { "Keep it" }
    };
    Ok(Page::new(
        StatusCode::OK,
        layout(
            "Delete client",
            Some(&session),
            &session.base,
            html! {},
            main,
        ),
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session, .. }: Posted<Nothing>,
) -> Result<Response, Page> {
    session.admin(&state).delete_client(&id).await?;
    Ok(Redirect::to(&format!("{}?done=deleted", session.base.to("/clients"))).into_response())
}
