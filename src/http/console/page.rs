//! The console's page frame and its message pages. maud escapes every
//! value put into the HTML.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::{Base, Session};
use crate::admin::Field;

/// The parts of the console, in the navigation.
const SECTIONS: [(&str, &str); 4] = [
    ("/clients", "Clients"),
    ("/apis", "APIs"),
    ("/keys", "Keys"),
    ("/live", "Live"),
];

/// A whole page: the head with the embedded stylesheet and script, the
/// header (with sign-out when signed in), and `main`.
pub fn layout(
    title: &str,
    session: Option<&Session>,
    base: &Base,
    head: Markup,
    main: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Writ console" }
                link rel="stylesheet" href=(base.to("/assets/console.css"));
                script type="module" src=(base.to("/assets/console.js")) {}
                (head)
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href=(base.to("/clients")) { "Writ console" }
                    @if let Some(s) = session {
                        nav aria-label="Main" {
                            @for (path, text) in SECTIONS {
                                @let current = s.path == path || s.path.starts_with(&format!("{path}/"));
                                a href=(base.to(path)) aria-current=[current.then_some("page")] { (text) }
                            }
                        }
                        form.signout method="post" action=(base.to("/signout")) {
                            input type="hidden" name="csrf" value=(s.csrf);
                            span.who { "Signed in as " (s.label) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" { (main) }
            }
        }
    }
}

/// A rendered page with its status: what handlers return, and what they
/// fail with.
pub struct Page {
    status: StatusCode,
    body: Markup,
}

impl Page {
    pub fn new(status: StatusCode, body: Markup) -> Self {
        Self { status, body }
    }

    /// A page that only says something: signed out, refused, not found.
    pub fn message(status: StatusCode, title: &str, text: &str, base: &Base) -> Self {
        let body = layout(
            title,
            None,
            base,
            html! {},
            html! {
                h1 { (title) }
                p.message { (text) }
            },
        );
        Self { status, body }
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            self.body.into_string(),
        )
            .into_response()
    }
}

/// How the console's forms name an operation's inputs in messages.
pub fn field_label(field: Field) -> &'static str {
    match field {
        Field::Name => "Name",
        Field::Scope => "Scopes",
        Field::DefaultScope => "Default scope",
        Field::GrantTypes => "Grant types",
        Field::Lifetime => "Token lifetime",
        Field::MaxLifetime => "Maximum lifetime",
        Field::Claims => "Claims",
        Field::Identifier => "Identifier",
        Field::Algorithm => "Algorithm",
        Field::Overlap => "Overlap",
        Field::AuthMethods => "Authentication methods",
        Field::Jwks => "Keys",
        Field::JwksUri => "Keys URL",
        Field::Trust => "Trusted issuers",
    }
}

/// Seconds since the epoch, as `2026-05-01 12:00:00 UTC`.
pub fn time(at: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(at.max(0) as u64);
    let text = humantime::format_rfc3339_seconds(t).to_string();
    format!("{} UTC", text.trim_end_matches('Z').replace('T', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(1_780_000_000), "2026-05-28 20:26:40 UTC");
    }

    #[test]
    fn values_are_escaped() {
        let page = Page::message(
            StatusCode::OK,
            "<script>x</script>",
            "a \"quoted\" & <b>",
            &Base("/console".into()),
        );
        let text = page.body.into_string();
        assert!(!text.contains("<script>x"), "{text}");
        assert!(text.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(text.contains("a &quot;quoted&quot; &amp; &lt;b&gt;"));
    }
}
