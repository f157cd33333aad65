//! The live view: tokens per second and refusals over the last ten
//! minutes as a chart, the clients issued and refused the most, and the
//! recent audit events. Server-rendered SVG; the page's script fetches
//! the fresh part every few seconds, and without script it is a page to
//! reload.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use maud::{html, Markup};

use super::page::{layout, time, Page};
use super::Session;
use crate::http::live::{Sample, INTERVAL, KEPT};
use crate::http::AppState;
use crate::store::AuditRecord;

/// Audit events shown.
const EVENTS: u32 = 20;

pub async fn page(State(state): State<AppState>, session: Session) -> Result<Page, Page> {
    let now_part = now(&state, &session).await?;
    let base = &session.base;
    let main = html! {
        h1 { "Live" }
        div #live data-refresh=(base.to("/live/now")) aria-live="off" { (now_part) }
    };
    Ok(Page::new(
        StatusCode::OK,
        layout("Live", Some(&session), base, html! {}, main),
    ))
}

/// The part of the page that the script replaces.
pub async fn fragment(State(state): State<AppState>, session: Session) -> Result<Page, Page> {
    Ok(Page::new(StatusCode::OK, now(&state, &session).await?))
}

async fn now(state: &AppState, session: &Session) -> Result<Markup, Page> {
    let now = state.clock.now();
    // The first look visits every client held (see `Live::watch`).
    let (live, registry) = (state.live.clone(), state.registry.clone());
    let _ = tokio::task::spawn_blocking(move || live.watch(&registry, now)).await;
    let samples = state.live.samples();
    let events = session.admin(state).audit_events(None, EVENTS).await?;
    Ok(html! {
        (traffic(&samples, now))
        (per_client(session, &samples))
        (audit(&events))
    })
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 22.0;
const TOP_PAD: f64 = 8.0;

/// A round number at least `v`, for the top of the scale.
fn scale_top(v: f64) -> f64 {
    if v <= 1.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|m| *m >= v)
        .unwrap_or(10.0 * magnitude)
}

fn rate(n: u64) -> f64 {
    n as f64 / INTERVAL as f64
}

fn traffic(samples: &[Sample], now: i64) -> Markup {
    let span = (KEPT as u64 * INTERVAL) as f64;
    let top = scale_top(
        samples
            .iter()
            .map(|s| rate(s.issued).max(rate(s.refused)))
            .fold(0.0, f64::max),
    );
    let x = |at: i64| LEFT + (WIDTH - LEFT) * (1.0 - ((now - at) as f64 / span).clamp(0.0, 1.0));
    let y = |r: f64| TOP_PAD + (HEIGHT - BOTTOM - TOP_PAD) * (1.0 - r / top);
    let line = |read: fn(&Sample) -> u64| -> String {
        samples
            .iter()
            .map(|s| format!("{:.1},{:.1}", x(s.at), y(rate(read(s)))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let last_minute: Vec<&Sample> = samples.iter().filter(|s| now - s.at < 60).collect();
    let per_second = |read: fn(&Sample) -> u64| -> f64 {
        if last_minute.is_empty() {
            0.0
        } else {
            last_minute.iter().map(|s| read(s)).sum::<u64>() as f64
                / (last_minute.len() as u64 * INTERVAL) as f64
        }
    };
    let issued: u64 = samples.iter().map(|s| s.issued).sum();
    let refused: u64 = samples.iter().map(|s| s.refused).sum();
    let minutes = span / 60.0;
    html! {
        section aria-labelledby="traffic-heading" {
            h2 #traffic-heading { "Token requests" }
            dl.facts {
                dt { "Last minute" } dd { span #rate-issued { (format!("{:.1}", per_second(|s| s.issued))) } " tokens/s issued, " (format!("{:.1}", per_second(|s| s.refused))) " refused/s" }
                dt { "Last " (minutes) " minutes" } dd { (issued) " issued, " (refused) " refused" }
            }
            figure.chart {
                svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-labelledby="traffic-title" preserveAspectRatio="none" {
                    title #traffic-title { "Tokens issued and requests refused per second over the last " (minutes) " minutes" }
                    @for frac in [0.0, 0.5, 1.0] {
                        line.grid x1=(LEFT) x2=(WIDTH) y1=(y(top * frac)) y2=(y(top * frac)) {}
                        text.axis x=(LEFT - 6.0) y=(y(top * frac) + 4.0) text-anchor="end" { (top * frac) }
                    }
                    @for (at, label) in [(now - span as i64, format!("−{minutes} min")), (now - span as i64 / 2, format!("−{} min", minutes / 2.0)), (now, "now".to_owned())] {
                        text.axis x=(x(at)) y=(HEIGHT - 4.0) text-anchor=(if at == now { "end" } else { "start" }) { (label) }
                    }
                    @if samples.len() > 1 {
                        polyline.issued points=(line(|s| s.issued)) {}
                        polyline.refused points=(line(|s| s.refused)) {}
                    }
                    // A line needs two points: the first sample is a dot.
                    @if let [s] = samples {
                        circle.issued cx=(x(s.at)) cy=(y(rate(s.issued))) r="3" {}
                        circle.refused cx=(x(s.at)) cy=(y(rate(s.refused))) r="3" {}
                    }
                }
                figcaption {
                    span.key.issued { "tokens issued/s" } " " span.key.refused { "refused/s" }
                    @if samples.is_empty() { " · The first sample comes within " (INTERVAL) " s of the server starting." }
                }
            }
        }
    }
}

fn per_client(session: &Session, samples: &[Sample]) -> Markup {
    let mut sums: HashMap<&str, (u64, u64)> = HashMap::new();
    let mut watched = 0;
    for s in samples {
        if let Some(clients) = &s.clients {
            watched += 1;
            for (id, issued, refused) in clients {
                let e = sums.entry(id).or_default();
                e.0 += issued;
                e.1 += refused;
            }
        }
    }
    let mut refused: Vec<(&str, u64)> = sums
        .iter()
        .map(|(id, c)| (*id, c.1))
        .filter(|c| c.1 > 0)
        .collect();
    refused.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    refused.truncate(10);
    let mut issued: Vec<(&str, u64)> = sums
        .iter()
        .map(|(id, c)| (*id, c.0))
        .filter(|c| c.1 > 0)
        .collect();
    issued.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    issued.truncate(10);
    let seconds = watched * INTERVAL;
    html! {
        section aria-labelledby="clients-heading" {
            h2 #clients-heading { "Per client" }
            @if watched == 0 {
                p.hint { "Per-client counts are taken while this page is open: the first appear within " (2 * INTERVAL) " s." }
            } @else {
                p.hint { "Over the last " (seconds) " s this page was watched: the clients with the most refused authentications (a wrong secret, a disabled client…) and the most tokens issued." }
                div.bars {
                    (bars(session, "Refusals per client", "refused", &refused))
                    (bars(session, "Tokens per client", "issued", &issued))
                }
            }
        }
    }
}

fn bars(session: &Session, title: &str, class: &str, rows: &[(&str, u64)]) -> Markup {
    let most = rows.first().map_or(1, |r| r.1.max(1)) as f64;
    html! {
        div {
            h3 { (title) }
            @if rows.is_empty() {
                p.hint { "None." }
            } @else {
                table.bars {
                    thead { tr { th scope="col" { "Client" } th scope="col" { "Count" } } }
                    tbody {
                        @for (id, n) in rows {
                            tr {
                                td {
                                    a href=(super::clients::client_path(session, id)) { code { (id) } }
                                    svg.bar viewBox="0 0 100 6" preserveAspectRatio="none" aria-hidden="true" {
                                        rect class=(class) x="0" y="0" height="6" width=(format!("{:.1}", 100.0 * *n as f64 / most)) {}
                                    }
                                }
                                td { (n) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn audit(events: &[AuditRecord]) -> Markup {
    html! {
        section aria-labelledby="audit-heading" {
            h2 #audit-heading { "Recent changes" }
            @if events.is_empty() {
                p.message { "No audit events yet." }
            } @else {
                div.table {
                    table {
                        thead { tr { th scope="col" { "When" } th scope="col" { "Event" } th scope="col" { "Subject" } th.wide scope="col" { "By" } } }
                        tbody {
                            @for e in events {
                                tr {
                                    td { (time(e.at)) }
                                    td { code { (e.event) } }
                                    td { code { (e.subject) } }
                                    td.wide { (e.actor) " (" (e.via) ")" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_end_on_round_numbers() {
        assert_eq!(scale_top(0.0), 1.0);
        assert_eq!(scale_top(1.5), 2.0);
        assert_eq!(scale_top(3.0), 5.0);
        assert_eq!(scale_top(42.0), 50.0);
        assert_eq!(scale_top(1000.0), 1000.0);
        assert_eq!(scale_top(1001.0), 2000.0);
    }
}
