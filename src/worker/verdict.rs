//! The verdict: what a job's result becomes at the gateway (complete, fail with retries and
//! backoff by error code, or throw a BPMN error), and the operation's after-completion step
//! once the gateway has answered.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tracing::{info, warn};

use super::Shared;
use super::execute::execute;
use super::report::{is_too_large, retry_call, too_large_error};
use crate::error::{EmailError, ErrorCode, truncate_message};
use crate::gateway::proto::ActivatedJob;
use crate::job::JobHeaders;
use crate::mail::server::describe_server;
use crate::metrics::{job_type as job_label, job_type_and_code};
use crate::operation::JobContext;
use crate::secrets::SecretMask;

/// How a job ended, before it is reported.
enum Verdict {
    Complete {
        variables: String,
        after: Option<Box<dyn crate::operation::AfterCompletion>>,
        /// What the job becomes if the gateway refuses the completion as too large: the
        /// headers (bpmnErrors may catch the code) and where it ran, for the message.
        headers: JobHeaders,
        context: String,
    },
    Fail {
        code: ErrorCode,
        message: String,
        retries: i32,
        backoff: Duration,
    },
    Throw {
        code: ErrorCode,
        message: String,
    },
}

pub(super) async fn handle_job(shared: &Shared, job: ActivatedJob) {
    let started = Instant::now();
    let verdict = decide(shared, &job).await;
    shared
        .metrics
        .duration
        .get_or_create(&job_label(&job.r#type))
        .observe(started.elapsed().as_secs_f64());
    let key = job.key;
    // Reporting is worth retrying until the job's timeout: after it, Zeebe has given the job
    // to another worker and our result would be refused anyway.
    let until = started + shared.settings.job_timeout;
    let mut verdict = verdict;
    // A completion the gateway refuses as too large turns into a failure, reported below.
    while let Verdict::Complete {
        variables,
        after,
        headers,
        context,
    } = verdict
    {
        match retry_call(until, || {
            shared.gateway.complete_job(key, variables.clone())
        })
        .await
        {
            Ok(()) => {
                shared
                    .metrics
                    .completed
                    .get_or_create(&job_label(&job.r#type))
                    .inc();
                info!(job_key = key, job_type = %job.r#type, tenant_id = %job.tenant_id, elapsed_ms = started.elapsed().as_millis() as u64, "job completed");
                if let Some(after) = after {
                    after.commit().await;
                }
                return;
            }
            Err(status) if is_too_large(&status) => {
                if let Some(after) = after {
                    after.rollback().await;
                }
                let error = too_large_error(variables.len(), &status);
                verdict = fail_verdict(
                    error,
                    &job,
                    Some(&headers),
                    &context,
                    &SecretMask::default(),
                );
            }
            Err(status) => {
                warn!(job_key = key, job_type = %job.r#type, tenant_id = %job.tenant_id, "the gateway did not accept the completion: {}", status.message());
                if let Some(after) = after {
                    after.rollback().await;
                }
                return;
            }
        }
    }
    match verdict {
        Verdict::Complete { .. } => {}
        Verdict::Fail {
            code,
            message,
            retries,
            backoff,
        } => {
            shared
                .metrics
                .failed
                .get_or_create(&job_type_and_code(&job.r#type, code.as_str()))
                .inc();
            warn!(job_key = key, job_type = %job.r#type, tenant_id = %job.tenant_id, code = code.as_str(), retries, "job failed: {message}");
            if let Err(status) = retry_call(until, || {
                shared
                    .gateway
                    .fail_job(key, retries, message.clone(), backoff)
            })
            .await
            {
                warn!(
                    job_key = key,
                    "could not report the failure: {}",
                    status.message()
                );
            }
        }
        Verdict::Throw { code, message } => {
            shared
                .metrics
                .errored
                .get_or_create(&job_type_and_code(&job.r#type, code.as_str()))
                .inc();
            info!(job_key = key, job_type = %job.r#type, tenant_id = %job.tenant_id, code = code.as_str(), "BPMN error thrown: {message}");
            if let Err(status) = retry_call(until, || {
                shared
                    .gateway
                    .throw_error(key, code.as_str().to_string(), message.clone())
            })
            .await
            {
                warn!(
                    job_key = key,
                    "could not throw the BPMN error: {}",
                    status.message()
                );
            }
        }
    }
}

/// Everything between "job received" and "result known".
async fn decide(shared: &Shared, job: &ActivatedJob) -> Verdict {
    let Some(entry) = shared.registry.get(&job.r#type) else {
        let error = EmailError::invalid_input(format!(
            "this worker has no operation for job type '{}'",
            job.r#type
        ));
        return fail_verdict(error, job, None, "", &SecretMask::default());
    };
    let headers = match JobHeaders::parse(&job.custom_headers) {
        Ok(h) => h,
        Err(e) => {
            return fail_verdict(e, job, None, entry.operation.name(), &SecretMask::default());
        }
    };
    if let Some(timeout) = headers.job_timeout
        && let Err(status) = shared.gateway.update_job_timeout(job.key, timeout).await
    {
        warn!(
            job_key = job.key,
            "could not apply the jobTimeout header: {}",
            status.message()
        );
    }
    let variables: Value = match serde_json::from_str(if job.variables.trim().is_empty() {
        "{}"
    } else {
        &job.variables
    }) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            let e = EmailError::invalid_input("the job's variables are not a JSON object");
            return fail_verdict(
                e,
                job,
                Some(&headers),
                entry.operation.name(),
                &SecretMask::default(),
            );
        }
    };
    let context = JobContext {
        job_key: job.key,
        process_instance_key: job.process_instance_key,
        retries: job.retries,
    };
    let server = describe_server(&variables, entry.operation.protocol());
    let (result, mask) = execute(entry, variables, context, &shared.settings.secrets).await;
    match result {
        Ok(outcome) => match completion_variables(&headers, outcome.response) {
            Ok(variables) => Verdict::Complete {
                variables,
                after: outcome.after_completion,
                context: format!("{} on {server}", entry.operation.name()),
                headers,
            },
            Err(e) => {
                if let Some(after) = outcome.after_completion {
                    after.rollback().await;
                }
                fail_verdict(
                    e,
                    job,
                    Some(&headers),
                    &format!("{} on {server}", entry.operation.name()),
                    &mask,
                )
            }
        },
        Err(e) => fail_verdict(
            e,
            job,
            Some(&headers),
            &format!("{} on {server}", entry.operation.name()),
            &mask,
        ),
    }
}

fn completion_variables(headers: &JobHeaders, response: Value) -> Result<String, EmailError> {
    match &headers.result_variable {
        None => Ok(String::new()),
        Some(name) => serde_json::to_string(&json!({ name.as_str(): response }))
            .map_err(|e| EmailError::internal(format!("cannot serialize the response: {e}"))),
    }
}

/// The final error message: code first, then where it happened, secrets masked, length capped.
pub fn error_message(error: &EmailError, context: &str, mask: &SecretMask) -> String {
    let text = if context.is_empty() {
        format!("{}: {}", error.code, error.message)
    } else {
        format!("{}: {context}: {}", error.code, error.message)
    };
    truncate_message(&mask.apply(&text))
}

fn fail_verdict(
    error: EmailError,
    job: &ActivatedJob,
    headers: Option<&JobHeaders>,
    context: &str,
    mask: &SecretMask,
) -> Verdict {
    let message = error_message(&error, context, mask);
    if headers.is_some_and(|h| h.bpmn_errors.throws(error.code)) {
        return Verdict::Throw {
            code: error.code,
            message,
        };
    }
    let (retries, backoff) = if error.code.is_retryable() {
        let configured = headers.map_or(crate::job::DEFAULT_RETRY_BACKOFF, |h| h.retry_backoff);
        (
            (job.retries - 1).max(0),
            error
                .retry_after
                .map_or(configured, |wait| wait.max(configured)),
        )
    } else {
        (0, Duration::ZERO)
    };
    Verdict::Fail {
        code: error.code,
        message,
        retries,
        backoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(retries: i32) -> ActivatedJob {
        ActivatedJob {
            key: 1,
            retries,
            ..Default::default()
        }
    }

    #[test]
    fn retryable_errors_decrement_and_back_off() {
        let headers = JobHeaders::parse(r#"{"retryBackoff":"PT7S"}"#).unwrap();
        let v = fail_verdict(
            EmailError::new(ErrorCode::ConnectionFailed, "refused"),
            &job(3),
            Some(&headers),
            "smtp:send on h:1",
            &SecretMask::default(),
        );
        match v {
            Verdict::Fail {
                retries,
                backoff,
                message,
                ..
            } => {
                assert_eq!(retries, 2);
                assert_eq!(backoff, Duration::from_secs(7));
                assert_eq!(message, "CONNECTION_FAILED: smtp:send on h:1: refused");
            }
            _ => panic!("expected a failure"),
        }
    }

    #[test]
    fn a_servers_wait_lengthens_the_backoff_never_shortens_it() {
        let headers = JobHeaders::parse(r#"{"retryBackoff":"PT7S"}"#).unwrap();
        let backoff = |wait: u64| {
            let error = EmailError::new(ErrorCode::TemporaryFailure, "[LOGIN-DELAY] later")
                .retry_after(Duration::from_secs(wait));
            match fail_verdict(error, &job(3), Some(&headers), "", &SecretMask::default()) {
                Verdict::Fail { backoff, .. } => backoff,
                _ => panic!("expected a failure"),
            }
        };
        assert_eq!(backoff(60), Duration::from_secs(60));
        assert_eq!(backoff(2), Duration::from_secs(7));
        assert_eq!(backoff(u64::MAX), crate::error::MAX_RETRY_AFTER);
    }

    #[test]
    fn terminal_errors_raise_an_incident_and_bpmn_errors_throw() {
        let v = fail_verdict(
            EmailError::invalid_input("/x: bad"),
            &job(3),
            None,
            "",
            &SecretMask::default(),
        );
        assert!(matches!(v, Verdict::Fail { retries: 0, .. }));
        let headers = JobHeaders::parse(r#"{"bpmnErrors":"AUTHENTICATION_FAILED"}"#).unwrap();
        let v = fail_verdict(
            EmailError::new(ErrorCode::AuthenticationFailed, "no"),
            &job(3),
            Some(&headers),
            "",
            &SecretMask::default(),
        );
        assert!(matches!(
            v,
            Verdict::Throw {
                code: ErrorCode::AuthenticationFailed,
                ..
            }
        ));
    }

    #[test]
    fn completion_uses_the_result_variable() {
        let with = JobHeaders::parse(r#"{"resultVariable":"r"}"#).unwrap();
        assert_eq!(
            completion_variables(&with, json!({"sent": true})).unwrap(),
            r#"{"r":{"sent":true}}"#
        );
        assert_eq!(
            completion_variables(&JobHeaders::default(), json!(1)).unwrap(),
            ""
        );
    }
}
