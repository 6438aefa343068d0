//! The process's log: `RUST_LOG` decides what is written, except that no filter can make a
//! library write what it sees on the wire, and every line passes the secret masks on its way
//! out.
//!
//! Two defences, because neither is enough alone:
//! - Caps by target. async-imap traces every command it sends (`LOGIN "user" "password"`, the
//!   base64 of an AUTHENTICATE), and the HTTP and TLS stacks can trace headers (a bearer
//!   token) and handshakes. An `EnvFilter` directive cannot cap them: a more specific one
//!   (`RUST_LOG=async_imap::imap_stream=trace`) wins over `async_imap=info`. So a filter of
//!   its own, which every event must also pass, keeps these targets at `info` whatever
//!   `RUST_LOG` says.
//! - Masks on every line. A line of ours, or a library's at `info`, may still quote text that
//!   holds a secret (a server's reply, a URL): every secret mask alive in the process (each
//!   running job's and watcher's, the fetched tokens', the operator's own) is applied to each
//!   formatted line before it reaches stderr.

use std::io::Write;

use tracing::Metadata;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Libraries that see credentials or wire data, by target prefix (a module path; the
/// `log` records of async-imap and rustls arrive under their module paths too).
pub const CAPPED_TARGETS: [&str; 14] = [
    "async_imap",
    "imap_proto",
    "lettre",
    "rustls",
    "tokio_rustls",
    "hyper",
    "hyper_util",
    "hyper_rustls",
    "h2",
    "reqwest",
    "tonic",
    "tower",
    "tower_http",
    "mail_parser",
];

/// The most a capped target may log.
const CAP: LevelFilter = LevelFilter::INFO;

/// Whether an event or span of `target` at `level` passes the caps.
pub fn within_caps(target: &str, level: &tracing::Level) -> bool {
    let capped = CAPPED_TARGETS.iter().any(|prefix| {
        target
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    });
    !capped || CAP >= *level
}

/// The caps as a filter every event must pass besides `RUST_LOG`. It gives no level hint, so it
/// never makes the subscriber ask for more than `RUST_LOG` does.
struct Caps;

impl<S: tracing::Subscriber> Layer<S> for Caps {
    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        within_caps(metadata.target(), metadata.level())
    }
}

/// Writes each formatted event to stderr in one piece, after the masks.
pub struct MaskedStderr;

/// One event's text, masked and written when the formatter is done with it.
pub struct MaskedLine {
    buffer: Vec<u8>,
}

impl Write for MaskedLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for MaskedLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buffer);
        let masked = crate::secrets::mask_live(&text);
        let out = masked.as_deref().unwrap_or(&text);
        // A log line that cannot be written has nowhere else to go.
        let _ = std::io::stderr().lock().write_all(out.as_bytes());
    }
}

impl<'a> MakeWriter<'a> for MaskedStderr {
    type Writer = MaskedLine;

    fn make_writer(&'a self) -> MaskedLine {
        MaskedLine { buffer: Vec::new() }
    }
}

/// Installs the process's subscriber: `RUST_LOG` (default `info`), the caps, the masks;
/// `LOG_FORMAT=json` for one JSON object per line.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter).with(Caps);
    let format = tracing_subscriber::fmt::layer().with_writer(MaskedStderr);
    if json {
        registry.with(format.json().flatten_event(true)).init();
    } else {
        registry.with(format).init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn capped_targets_stay_at_info_and_others_are_free() {
        assert!(!within_caps("async_imap::imap_stream", &Level::TRACE));
        assert!(!within_caps("async_imap", &Level::DEBUG));
        assert!(within_caps("async_imap::client", &Level::INFO));
        assert!(within_caps("async_imap", &Level::WARN));
        assert!(!within_caps("hyper_util::client::legacy", &Level::DEBUG));
        assert!(!within_caps("rustls::client::hs", &Level::TRACE));
        // A prefix is a whole path segment: another crate that starts alike is not capped.
        assert!(within_caps("hyperlocal", &Level::TRACE));
        assert!(within_caps("email_connector::imap", &Level::TRACE));
    }

    #[test]
    fn a_line_is_masked_by_every_live_mask() {
        let mask = crate::secrets::SecretMask::new(vec!["Log-Line-Secret".to_string().into()]);
        assert_eq!(
            crate::secrets::mask_live("a log-line-secret b").as_deref(),
            Some("a *** b")
        );
        drop(mask);
        assert_eq!(crate::secrets::mask_live("a log-line-secret b"), None);
    }
}
