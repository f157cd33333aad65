//! Logs go to stderr, as text or one JSON object a line. Audit events use the
//! target `audit`, so they can be routed or filtered on their own
//! (`RUST_LOG=info,audit=off`). The management commands log warnings and
//! audit events only.
//!
//! Two rules hold for every line, whatever wrote it:
//! - one event is one line: in the text format every field value but
//!   numbers and booleans is quoted and escaped (`key="a b\n…"`), and control
//!   characters in the message are escaped, so a value a client sent cannot
//!   start a line of its own or pass for another field (JSON escapes by
//!   itself);
//! - nothing that looks like a Writ secret or token is written: a client
//!   that sends its secret as its id would otherwise have it logged.

use std::borrow::Cow;
use std::fmt;
use std::io;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, MakeWriter};

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
        .with_writer(Redacting(writer));
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder
            .fmt_fields(QuotedFields)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(true)
            .try_init(),
    };
    guard
}

/// The text format's fields: the message as it is, with control characters
/// escaped; numbers and booleans bare; every other value quoted, with
/// quotes, backslashes and control characters escaped as Rust's `Debug` does.
/// Values logged with `%` (Display) or `?` (Debug) are quoted alike.
pub struct QuotedFields;

impl<'writer> FormatFields<'writer> for QuotedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = Quoting {
            writer,
            result: Ok(()),
            first: true,
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Quoting<'w> {
    writer: Writer<'w>,
    result: fmt::Result,
    first: bool,
}

impl Quoting<'_> {
    fn separate(&mut self) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.writer.write_char(' ')?;
        }
        Ok(())
    }

    fn bare(&mut self, field: &Field, value: &dyn fmt::Display) {
        if self.result.is_ok() {
            self.result = self
                .separate()
                .and_then(|()| write!(self.writer, "{}={value}", field.name()));
        }
    }

    fn quoted(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        self.result = self.separate().and_then(|()| {
            if field.name() == "message" {
                for c in value.chars() {
                    if c.is_control() {
                        write!(self.writer, "{}", c.escape_debug())?;
                    } else {
                        self.writer.write_char(c)?;
                    }
                }
                Ok(())
            } else {
                write!(self.writer, "{}={value:?}", field.name())
            }
        });
    }
}

impl Visit for Quoting<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.quoted(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.quoted(field, &format!("{value:?}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.quoted(field, &value.to_string());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.bare(field, &value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.bare(field, &value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.bare(field, &value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.bare(field, &value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.bare(field, &value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.bare(field, &value);
    }
}

/// Writes through `M`, each line redacted (see `redact`).
#[derive(Clone)]
pub struct Redacting<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(self.0.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        RedactingWriter(self.0.make_writer_for(meta))
    }
}

pub struct RedactingWriter<W>(W);

impl<W: io::Write> io::Write for RedactingWriter<W> {
    /// The formatter hands over one whole event per call.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf).map(redact) {
            Ok(Cow::Owned(redacted)) => self.0.write_all(redacted.as_bytes())?,
            _ => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// What Writ's secrets and opaque tokens start with (`keys::secret`,
/// `token::opaque`, the console's links and sessions in `admin::console`): scanners look for the same prefixes.
const SECRET_PREFIXES: [&str; 5] = ["writ_sk_", "writ_at_", "writ_rat_", "writ_sl_", "writ_cs_"];

/// `text` with every value that looks like a Writ secret, an opaque token
/// or a JWT (a base64url JSON object, `eyJ…`, joined by dots to another
/// part) replaced by its prefix and `…(redacted)`.
pub fn redact(text: &str) -> Cow<'_, str> {
    if !SECRET_PREFIXES.iter().any(|p| text.contains(p)) && !text.contains("eyJ") {
        return Cow::Borrowed(text);
    }
    let word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut i, mut copied) = (0, 0);
    while i < bytes.len() {
        if !word(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && word(bytes[i]) {
            i += 1;
        }
        if let Some(replacement) = redaction(&text[start..i]) {
            out.push_str(&text[copied..start]);
            out.push_str(&replacement);
            copied = i;
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// The redacted form of one run of token characters, if it needs one.
fn redaction(run: &str) -> Option<String> {
    for prefix in SECRET_PREFIXES {
        if let Some(at) = run.find(prefix) {
            if run.len() > at + prefix.len() {
                return Some(format!("{}{prefix}…(redacted)", &run[..at]));
            }
        }
    }
    let jwt = run.contains('.')
        && run
            .split('.')
            .any(|part| part.starts_with("eyJ") && part.len() >= 16);
    jwt.then(|| "eyJ…(redacted)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_tokens_are_redacted_wherever_they_stand() {
        let secret = "writ_sk_3q2-7wEAAAB_aGVsbG8gd29ybGQgdGhpcyBpcyA";
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        for (line, expected) in [
            (
                format!("client_id=\"{secret}\" x=1"),
                "client_id=\"writ_sk_…(redacted)\" x=1".to_owned(),
            ),
            (
                format!("token writ_at_abc.def, then {jwt}."),
                "token writ_at_…(redacted), then eyJ…(redacted)".to_owned(),
            ),
            // Glued to an escape, or to the end of a truncated token.
            (
                format!("\"x\\n{secret}\""),
                "\"x\\nwrit_sk_…(redacted)\"".to_owned(),
            ),
            // A console sign-in link in a request line, a session cookie.
            (
                "GET /console/signin?token=writ_sl_q2-7wEAAAB_aGVsbG8 cookie=writ_cs_aGVsbG8-x"
                    .to_owned(),
                "GET /console/signin?token=writ_sl_…(redacted) cookie=writ_cs_…(redacted)"
                    .to_owned(),
            ),
            (
                "a=\"eyJhbGciOiJFUzI1NiJ9.eyJzdWIi\"".to_owned(),
                "a=\"eyJ…(redacted)\"".to_owned(),
            ),
        ] {
            assert_eq!(redact(&line), expected);
        }
        // Nothing that only mentions the prefixes or is not a token.
        for plain in [
            "secrets look like writ_sk_…",
            "writ_sk_ alone",
            "kid=\"eyJshort\" host=eyJ.example",
            "ready issuer=\"http://127.0.0.1:8080\"",
        ] {
            assert!(matches!(redact(plain), Cow::Borrowed(_)), "{plain}");
        }
    }

    #[test]
    fn every_text_value_is_quoted_and_escaped_alike() {
        use tracing_subscriber::layer::SubscriberExt;
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = lines.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(QuotedFields)
                .with_ansi(false)
                .without_time()
                .with_writer(move || Sink(sink.clone())),
        );
        tracing::subscriber::with_default(subscriber, || {
            let forged = "x\n2026-11-30T10:00:00Z INFO audit: client_id=\"FORGED\"";
            tracing::info!(
                target: "audit",
                a = "plain",
                b = %forged,
                c = ?["q\"uote"],
                d = Some("opt"),
                n = 3,
                ok = true,
                "message\r\nwith a break"
            );
        });
        let text = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert_eq!(
            text.trim_end(),
            r#" INFO audit: message\r\nwith a break a="plain" b="x\n2026-11-30T10:00:00Z INFO audit: client_id=\"FORGED\"" c="[\"q\\\"uote\"]" d="opt" n=3 ok=true"#
        );
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
