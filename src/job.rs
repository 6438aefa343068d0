//! What the worker reads from an activated job besides the variables: the task headers that
//! Camunda's connector conventions define.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::error::{EmailError, ErrorCode, Result};

/// The retry backoff Camunda's connector templates default to.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(30);

/// The task headers of a job, parsed and checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobHeaders {
    /// Complete the job with `{ <resultVariable>: response }`; absent means no variables.
    pub result_variable: Option<String>,
    pub retry_backoff: Duration,
    /// A new deadline requested through UpdateJobTimeout before the operation runs.
    pub job_timeout: Option<Duration>,
    pub bpmn_errors: BpmnErrors,
    /// Shapes the completion variables from the response (FEEL, must give a context).
    pub result_expression: Option<FeelHeader>,
    /// Decides the job's outcome after every run: a BPMN error, a failure, or completion.
    pub error_expression: Option<FeelHeader>,
}

/// A FEEL expression of a task header, parsed once and shared by every job that carries the
/// same text.
#[derive(Clone)]
pub struct FeelHeader {
    text: Arc<str>,
    pub expression: Arc<feel::Expression>,
}

impl PartialEq for FeelHeader {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl std::fmt::Debug for FeelHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FeelHeader").field(&self.text).finish()
    }
}

impl FeelHeader {
    /// Parses the expression of `header`, or says why it cannot run, naming the header and the
    /// position (`resultExpression: unsupported at 1:14: ...`). Expressions are taken from a
    /// bounded cache: a model's few expressions are parsed once, not once per job.
    pub fn parse(header: &str, text: &str) -> Result<FeelHeader> {
        if let Some(found) = recent::get(text) {
            return Ok(found);
        }
        // The lock is let go before a miss takes it again to insert.
        let cached = cache().get(text);
        let found = match cached {
            Some((text, expression)) => FeelHeader { text, expression },
            None => {
                let text: Arc<str> = Arc::from(text);
                let expression = feel::Expression::parse(&text)
                    .map(Arc::new)
                    .map_err(|e| EmailError::invalid_input(format!("{header}: {e}")))?;
                cache().insert(text.clone(), expression.clone());
                FeelHeader { text, expression }
            }
        };
        recent::keep(&found);
        Ok(found)
    }
}

/// Each thread's last few expressions, in front of the shared cache: a busy worker runs the
/// same few expressions on every job, and the shared cache's lock, taken by every job on both
/// runtime threads, was contended enough to cost a no-op job a tenth of its time. Only short
/// texts are kept here, so what a thread holds stays small however many threads there are.
mod recent {
    use std::cell::RefCell;

    use super::FeelHeader;

    const PER_THREAD: usize = 8;
    const MAX_CHARS: usize = 4096;

    thread_local! {
        static RECENT: RefCell<Vec<FeelHeader>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn get(text: &str) -> Option<FeelHeader> {
        RECENT.with_borrow(|recent| recent.iter().find(|h| &*h.text == text).cloned())
    }

    /// Called after [`get`] missed `header`'s text on this thread, so it is not there yet.
    pub(super) fn keep(header: &FeelHeader) {
        if header.text.len() > MAX_CHARS {
            return;
        }
        RECENT.with_borrow_mut(|recent| {
            if recent.len() >= PER_THREAD {
                recent.remove(0);
            }
            recent.push(header.clone());
        });
    }
}

/// Parsed expressions by text, least recently used evicted first. Bounded by count and by
/// the characters held (a parsed tree is proportional to its text), so models with many or
/// long expressions cannot grow the worker.
struct Cache {
    entries: HashMap<Arc<str>, (Arc<feel::Expression>, u64)>,
    chars: usize,
    clock: u64,
}

const CACHE_ENTRIES: usize = 256;
const CACHE_CHARS: usize = 256 * 1024;

fn cache() -> std::sync::MutexGuard<'static, Cache> {
    static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| {
        Mutex::new(Cache {
            entries: HashMap::new(),
            chars: 0,
            clock: 0,
        })
    });
    CACHE.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cache {
    fn get(&mut self, text: &str) -> Option<(Arc<str>, Arc<feel::Expression>)> {
        self.clock += 1;
        let clock = self.clock;
        let (key, _) = self.entries.get_key_value(text)?;
        let key = key.clone();
        let (expression, used) = self.entries.get_mut(text)?;
        *used = clock;
        Some((key, expression.clone()))
    }

    fn insert(&mut self, text: Arc<str>, expression: Arc<feel::Expression>) {
        if text.len() > CACHE_CHARS || self.entries.contains_key(&text) {
            return;
        }
        while self.entries.len() >= CACHE_ENTRIES || self.chars + text.len() > CACHE_CHARS {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.entries.remove(&oldest);
            self.chars -= oldest.len();
        }
        self.clock += 1;
        self.chars += text.len();
        self.entries.insert(text, (expression, self.clock));
    }
}

/// Which error codes become a BPMN error (ThrowError) instead of a failed job.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum BpmnErrors {
    #[default]
    None,
    All,
    Codes(HashSet<String>),
}

impl BpmnErrors {
    pub fn throws(&self, code: ErrorCode) -> bool {
        match self {
            BpmnErrors::None => false,
            BpmnErrors::All => true,
            BpmnErrors::Codes(codes) => codes.contains(code.as_str()),
        }
    }
}

impl JobHeaders {
    /// Parses the `customHeaders` JSON of an activated job. Headers this worker does not know
    /// (such as `elementTemplateId`) are ignored; a known header with a bad value is the
    /// model's mistake and is reported as `INVALID_INPUT`.
    pub fn parse(custom_headers: &str) -> Result<JobHeaders> {
        JobHeaders::parse_with_backoff(custom_headers, DEFAULT_RETRY_BACKOFF)
    }

    /// [`JobHeaders::parse`] for a job type whose retries wait `default_backoff` when the job
    /// has no `retryBackoff` header.
    pub fn parse_with_backoff(
        custom_headers: &str,
        default_backoff: Duration,
    ) -> Result<JobHeaders> {
        let headers: BTreeMap<String, Value> = if custom_headers.trim().is_empty() {
            BTreeMap::new()
        } else {
            serde_json::from_str(custom_headers).map_err(|e| {
                EmailError::invalid_input(format!("task headers are not a JSON object: {e}"))
            })?
        };
        let text = |name: &str| -> Option<String> {
            match headers.get(name) {
                Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
                _ => None,
            }
        };
        let mut problems = Vec::new();
        let retry_backoff = match text("retryBackoff") {
            None => default_backoff,
            Some(value) => parse_iso8601_duration(&value).unwrap_or_else(|e| {
                problems.push(format!("task header retryBackoff: {e}"));
                default_backoff
            }),
        };
        let job_timeout = match text("jobTimeout") {
            None => None,
            Some(value) => match parse_iso8601_duration(&value) {
                Ok(d) if d.is_zero() => {
                    problems.push("task header jobTimeout: must be longer than zero".into());
                    None
                }
                Ok(d) => Some(d),
                Err(e) => {
                    problems.push(format!("task header jobTimeout: {e}"));
                    None
                }
            },
        };
        let bpmn_errors = match text("bpmnErrors") {
            None => BpmnErrors::None,
            Some(value) if value == "*" => BpmnErrors::All,
            Some(value) => {
                let codes: HashSet<String> = value
                    .split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect();
                let known: HashSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
                let unknown: Vec<&String> = codes
                    .iter()
                    .filter(|c| !known.contains(c.as_str()))
                    .collect();
                if !unknown.is_empty() {
                    let mut unknown: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
                    unknown.sort();
                    problems.push(format!(
                        "task header bpmnErrors: unknown error code(s) {}; known codes are {}",
                        unknown.join(", "),
                        ErrorCode::ALL.map(|c| c.as_str()).join(", ")
                    ));
                }
                BpmnErrors::Codes(codes)
            }
        };
        let mut expression = |name: &str| {
            let parsed = text(name).map(|t| FeelHeader::parse(name, &t)).transpose();
            parsed.unwrap_or_else(|e| {
                problems.push(e.message);
                None
            })
        };
        let result_expression = expression("resultExpression");
        let error_expression = expression("errorExpression");
        if !problems.is_empty() {
            return Err(EmailError::invalid_input(problems.join("; ")));
        }
        Ok(JobHeaders {
            result_variable: text("resultVariable"),
            retry_backoff,
            job_timeout,
            bpmn_errors,
            result_expression,
            error_expression,
        })
    }

    /// The error expression alone, for a job whose other headers are broken: like Camunda's
    /// runtime, the expression still decides what becomes of that failure.
    pub fn error_expression_alone(custom_headers: &str) -> Option<FeelHeader> {
        let headers: BTreeMap<String, Value> = serde_json::from_str(custom_headers).ok()?;
        match headers.get("errorExpression") {
            Some(Value::String(s)) if !s.trim().is_empty() => {
                FeelHeader::parse("errorExpression", s.trim()).ok()
            }
            _ => None,
        }
    }
}

/// Parses an ISO-8601 duration of weeks, days, hours, minutes and seconds (`PT30S`,
/// `PT1M30.5S`, `P1DT2H`), a day counted as 24 hours. Years and months are refused: their
/// length depends on a calendar date.
pub fn parse_iso8601_duration(text: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("'{text}' is not an ISO-8601 duration such as PT30S or PT5M");
    static PARSER: jiff::fmt::temporal::SpanParser = jiff::fmt::temporal::SpanParser::new();
    let span = PARSER.parse_span(text).map_err(|_| bad())?;
    if span.get_years() != 0 || span.get_months() != 0 {
        return Err(format!(
            "'{text}': years and months have no fixed length; use days"
        ));
    }
    let duration = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|_| bad())?;
    Duration::try_from(duration).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let s = |t| parse_iso8601_duration(t).map(|d| d.as_secs_f64());
        assert_eq!(s("PT30S"), Ok(30.0));
        assert_eq!(s("PT1M30.5S"), Ok(90.5));
        assert_eq!(s("P1DT2H"), Ok(93_600.0));
        assert_eq!(s("PT0S"), Ok(0.0));
        assert_eq!(s("P2W"), Ok(1_209_600.0));
        assert!(s("P1M").is_err());
        assert!(s("30s").is_err());
        assert!(s("PT").is_err());
        assert!(s("P").is_err());
        assert!(s("PT5").is_err());
        assert!(s("PTXS").is_err());
        assert_eq!(s("pt1m"), Ok(60.0));
        assert!(s("-PT5S").is_err());
        assert!(s("P1Y").is_err_and(|e| e.contains("years and months")));
    }

    #[test]
    fn a_job_type_may_wait_otherwise_without_a_retry_backoff_header() {
        let none = JobHeaders::parse_with_backoff("{}", Duration::ZERO).unwrap();
        assert_eq!(none.retry_backoff, Duration::ZERO);
        let set = JobHeaders::parse_with_backoff(r#"{"retryBackoff":"PT30S"}"#, Duration::ZERO);
        assert_eq!(set.unwrap().retry_backoff, Duration::from_secs(30));
        assert!(
            JobHeaders::parse_with_backoff(r#"{"retryBackoff":"P1M"}"#, Duration::ZERO).is_err()
        );
    }

    #[test]
    fn defaults_without_headers() {
        let h = JobHeaders::parse("").unwrap();
        assert_eq!(h.retry_backoff, DEFAULT_RETRY_BACKOFF);
        assert_eq!(h.result_variable, None);
        assert_eq!(h.bpmn_errors, BpmnErrors::None);
    }

    #[test]
    fn parses_connector_headers() {
        let h = JobHeaders::parse(
            r#"{"resultVariable":"sent","retryBackoff":"PT5S","jobTimeout":"PT2M",
                "bpmnErrors":"EMAIL_NOT_FOUND, TIMEOUT","elementTemplateId":"x"}"#,
        )
        .unwrap();
        assert_eq!(h.result_variable.as_deref(), Some("sent"));
        assert_eq!(h.retry_backoff, Duration::from_secs(5));
        assert_eq!(h.job_timeout, Some(Duration::from_secs(120)));
        assert!(h.bpmn_errors.throws(ErrorCode::Timeout));
        assert!(!h.bpmn_errors.throws(ErrorCode::InvalidInput));
        assert!(
            JobHeaders::parse(r#"{"bpmnErrors":"*"}"#)
                .unwrap()
                .bpmn_errors
                .throws(ErrorCode::InvalidInput)
        );
    }

    #[test]
    fn expressions_are_parsed_with_the_headers_and_refused_with_their_position() {
        let h = JobHeaders::parse(
            r#"{"resultExpression":"= {a: 1}","errorExpression":"  ","resultVariable":"r"}"#,
        )
        .unwrap();
        assert!(h.result_expression.is_some());
        assert_eq!(h.error_expression, None, "a blank header is no expression");
        let e = JobHeaders::parse(r#"{"resultExpression":"= { id: uuid() }"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(
            e.message
                .starts_with("resultExpression: unsupported at 1:9: "),
            "{}",
            e.message
        );
        let e =
            JobHeaders::parse(r#"{"errorExpression":"if then","retryBackoff":"x"}"#).unwrap_err();
        assert!(
            e.message.contains("errorExpression: syntax error at 1:"),
            "{}",
            e.message
        );
        assert!(e.message.contains("retryBackoff"), "{}", e.message);
        let alone =
            JobHeaders::error_expression_alone(r#"{"retryBackoff":"x","errorExpression":"null"}"#);
        assert!(alone.is_some());
    }

    #[test]
    fn the_expression_cache_stays_within_its_bounds() {
        for i in 0..CACHE_ENTRIES + 50 {
            FeelHeader::parse("resultExpression", &format!("{{n: {i}}}")).unwrap();
        }
        let long = format!("{{s: \"{}\"}}", "x".repeat(15_000));
        for i in 0..40 {
            FeelHeader::parse("resultExpression", &format!("{long} // {i}")).unwrap();
        }
        let cache = cache();
        assert!(cache.entries.len() <= CACHE_ENTRIES);
        assert!(cache.chars <= CACHE_CHARS);
        assert_eq!(
            cache.chars,
            cache.entries.keys().map(|k| k.len()).sum::<usize>()
        );
    }

    /// The shared cache's lock is not taken for an expression this thread ran a moment ago:
    /// with the lock held by another thread, the parse still returns at once.
    #[test]
    fn a_recent_expression_is_found_without_the_shared_lock() {
        use std::sync::mpsc;
        use std::time::{Duration, Instant};
        let text = "{ recent: response.messageId }";
        let first = FeelHeader::parse("resultExpression", text).unwrap();
        let (held, is_held) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let _lock = cache();
                let _ = held.send(());
                let _ = released.recv_timeout(Duration::from_secs(2));
            });
            is_held.recv().unwrap();
            let started = Instant::now();
            let again = FeelHeader::parse("resultExpression", text).unwrap();
            let took = started.elapsed();
            let _ = release.send(());
            assert!(
                took < Duration::from_secs(1),
                "waited {took:?} for the lock"
            );
            assert!(Arc::ptr_eq(&again.expression, &first.expression));
        });
    }

    #[test]
    fn bad_headers_are_invalid_input_naming_the_header() {
        let e = JobHeaders::parse(r#"{"retryBackoff":"soon","bpmnErrors":"NOPE"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("retryBackoff"), "{}", e.message);
        assert!(e.message.contains("NOPE"), "{}", e.message);
        assert!(JobHeaders::parse("[1]").is_err());
    }
}
