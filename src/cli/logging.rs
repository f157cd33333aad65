//! Logs go to stderr, as text or one JSON object a line. Audit events use the
//! target `audit`, so they can be routed or filtered on their own
//! (`RUST_LOG=info,audit=off`). The management commands log warnings and
//! audit events only.

use crate::config::LogFormat;

/// Lines are written by a background thread, so a request never waits on a
/// write to stderr; nothing is dropped (a full queue makes the logger wait),
/// and the returned guard flushes what is queued when it is dropped.
pub fn init(serving: bool, format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let default = if serving { "info" } else { "warn,audit=info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(true)
            .try_init(),
    };
    guard
}
