//! The verdict: what a job's result becomes at the gateway (complete, fail with retries and
//! backoff by error code, or throw a BPMN error), and the operation's after-completion step
//! once the gateway has answered.

use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::{info, warn};

use super::Shared;
use super::execute::execute;
use super::report::{is_too_large, retry_call, too_large_error};
use super::shape;
use crate::error::{EmailError, truncate_message};
use crate::gateway::proto::ActivatedJob;
use crate::job::JobHeaders;
use crate::mail::server::describe_server;
use crate::metrics::{job_type as job_label, job_type_and_code};
use crate::operation::JobContext;
use crate::secrets::SecretMask;

/// How a job ended, before it is reported.
pub(super) enum Verdict {
    Complete {
        variables: String,
        after: Option<Box<dyn crate::operation::AfterCompletion>>,
        /// What the job becomes if the gateway refuses the completion as too large: the
        /// headers (bpmnErrors may catch the code) and where it ran, for the message.
        headers: Option<JobHeaders>,
        context: String,
    },
    Fail {
        /// The metrics label: our error code, or what an error expression chose.
        label: &'static str,
        message: String,
        retries: i32,
        backoff: Duration,
        variables: String,
    },
    Throw {
        label: &'static str,
        code: String,
        message: String,
        variables: String,
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
                    headers.as_ref(),
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
            label,
            message,
            retries,
            backoff,
            variables,
        } => {
            shared
                .metrics
                .failed
                .get_or_create(&job_type_and_code(&job.r#type, label))
                .inc();
            warn!(job_key = key, job_type = %job.r#type, tenant_id = %job.tenant_id, code = label, retries, "job failed: {message}");
            if let Err(status) = retry_call(until, || {
                shared
                    .gateway
                    .fail_job(key, retries, message.clone(), backoff, variables.clone())
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
        Verdict::Throw {
            label,
            code,
            message,
            variables,
        } => {
            shared
                .metrics
                .errored
                .get_or_create(&job_type_and_code(&job.r#type, label))
                .inc();
            info!(job_key = key, job_type = %job.r#type, tenant_id = %job.tenant_id, code = %code, "BPMN error thrown: {message}");
            if let Err(status) = retry_call(until, || {
                shared
                    .gateway
                    .throw_error(key, code.clone(), message.clone(), variables.clone())
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
    let name = entry.operation.name();
    let headers = match JobHeaders::parse(&job.custom_headers) {
        Ok(h) => h,
        Err(e) => {
            let expression = JobHeaders::error_expression_alone(&job.custom_headers);
            let mask = SecretMask::default();
            return shape::failure(e, job, None, expression.as_ref(), name, &mask).await;
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
            let expression = headers.error_expression.as_ref();
            let mask = SecretMask::default();
            return shape::failure(e, job, Some(&headers), expression, name, &mask).await;
        }
    };
    let context = JobContext {
        job_key: job.key,
        process_instance_key: job.process_instance_key,
        retries: job.retries,
    };
    let server = describe_server(&variables, entry.operation.protocol());
    let (result, mask) = execute(entry, variables, context, &shared.settings.secrets).await;
    let context = format!("{name} on {server}");
    match result {
        Ok(outcome) => shape::success(outcome, job, headers, context, &mask).await,
        Err(e) => {
            let expression = headers.error_expression.as_ref();
            shape::failure(e, job, Some(&headers), expression, &context, &mask).await
        }
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

pub(super) fn fail_verdict(
    error: EmailError,
    job: &ActivatedJob,
    headers: Option<&JobHeaders>,
    context: &str,
    mask: &SecretMask,
) -> Verdict {
    let message = error_message(&error, context, mask);
    if headers.is_some_and(|h| h.bpmn_errors.throws(error.code)) {
        return Verdict::Throw {
            label: error.code.as_str(),
            code: error.code.as_str().to_string(),
            message,
            variables: String::new(),
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
        label: error.code.as_str(),
        message,
        retries,
        backoff,
        variables: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

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
            Verdict::Throw { label: "AUTHENTICATION_FAILED", ref code, .. }
                if code == "AUTHENTICATION_FAILED"
        ));
    }
}
