//! The job pipeline: one activated job, from its arrival to its result at the gateway. Each
//! step is a function of its own, in the order a job meets them:
//!
//! 1. [`decide`] finds the job type's operation, reads the task headers ([`JobHeaders`]),
//!    applies a `jobTimeout` header and reads the variables; any of these can end the job
//!    with a failure before the operation runs;
//! 2. [`run_operation`] runs it ([`super::execute`]) and shapes the outcome into a
//!    [`Verdict`] (`shape`: result and error expressions, `bpmnErrors`, retries);
//! 3. [`Report`] takes the verdict to the gateway: a completion (then the operation's
//!    after-completion step), a failure or a BPMN error, each retried until the job's timeout.

use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::{debug, info, warn};

use super::Shared;
use super::execute::execute;
use super::report::{is_too_large, retry_call, too_large_error};
use super::shape;
use super::verdict::{Verdict, fail_verdict};
use crate::error::EmailError;
use crate::gateway::proto::ActivatedJob;
use crate::job::JobHeaders;
use crate::metrics::{job_type as job_label, job_type_and_code};
use crate::operation::{AfterCompletion, JobContext};
use crate::registry::Registered;
use crate::secrets::SecretMask;

/// Runs one job through the pipeline and reports its verdict.
pub(super) async fn handle_job(shared: &Shared, job: ActivatedJob) {
    let started = Instant::now();
    let verdict = decide(shared, &job).await;
    shared
        .metrics
        .duration
        .get_or_create(&job_label(&job.r#type))
        .observe(started.elapsed().as_secs_f64());
    let report = Report {
        shared,
        job: &job,
        started,
        // Reporting is worth retrying until the job's timeout: after it, Zeebe has given the
        // job to another worker and our result would be refused anyway.
        until: started + shared.settings.job_timeout,
    };
    report.send(verdict).await;
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
    let default_backoff = entry.operation.default_retry_backoff();
    let headers = match JobHeaders::parse_with_backoff(&job.custom_headers, default_backoff) {
        Ok(h) => h,
        Err(e) => {
            // An error expression still decides, even when the other headers are broken.
            let expression = JobHeaders::error_expression_alone(&job.custom_headers);
            let mask = SecretMask::default();
            return shape::failure(e, job, None, expression.as_ref(), name, &mask).await;
        }
    };
    if !apply_job_timeout(shared, job, &headers).await {
        return Verdict::Lost;
    }
    match job_variables(job) {
        Ok(variables) => run_operation(shared, entry, job, headers, variables).await,
        Err(e) => {
            let expression = headers.error_expression.as_ref();
            let mask = SecretMask::default();
            shape::failure(e, job, Some(&headers), expression, name, &mask).await
        }
    }
}

/// The `jobTimeout` header asks the gateway for more (or less) time. Whether the job is still
/// this worker's: a gateway that no longer knows it (NOT_FOUND: it timed out and went to
/// another worker, or its process instance ended) would refuse its result, and a send run
/// anyway would go out for nothing, so such a job is not run, as Camunda's connector runtime
/// does not run it. Any other refusal is logged and the job runs under the timeout it was
/// activated with.
async fn apply_job_timeout(shared: &Shared, job: &ActivatedJob, headers: &JobHeaders) -> bool {
    let Some(timeout) = headers.job_timeout else {
        return true;
    };
    match shared.gateway.update_job_timeout(job.key, timeout).await {
        Ok(()) => true,
        Err(status) if status.code() == tonic::Code::NotFound => {
            warn!(
                job_key = job.key,
                "the gateway no longer knows this job (jobTimeout refused: {}); not run",
                status.message()
            );
            false
        }
        Err(status) => {
            warn!(
                job_key = job.key,
                "could not apply the jobTimeout header: {}",
                status.message()
            );
            true
        }
    }
}

/// The job's variables: a JSON object (none at all counts as an empty one).
fn job_variables(job: &ActivatedJob) -> Result<Value, EmailError> {
    let text = if job.variables.trim().is_empty() {
        "{}"
    } else {
        &job.variables
    };
    match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(EmailError::invalid_input(
            "the job's variables are not a JSON object",
        )),
    }
}

/// Runs the operation and shapes its outcome; messages name the operation and its server.
async fn run_operation(
    shared: &Shared,
    entry: &Registered,
    job: &ActivatedJob,
    headers: JobHeaders,
    variables: Value,
) -> Verdict {
    let name = entry.operation.name();
    let context = JobContext {
        job_key: job.key,
        process_instance_key: job.process_instance_key,
        retries: job.retries,
        services: shared.registry.services().clone(),
    };
    let server = entry.operation.target(&variables);
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

/// One job's verdict on its way to the gateway.
struct Report<'a> {
    shared: &'a Shared,
    job: &'a ActivatedJob,
    started: Instant,
    until: Instant,
}

impl Report<'_> {
    async fn send(&self, verdict: Verdict) {
        let verdict = match verdict {
            Verdict::Complete {
                variables,
                after,
                headers,
                context,
            } => match self.complete(variables, after, headers, context).await {
                Some(instead) => instead,
                None => return,
            },
            other => other,
        };
        match verdict {
            // A completion refused for its size comes back as a failure or a BPMN error,
            // never as another completion.
            Verdict::Complete { .. } => {}
            Verdict::Fail {
                label,
                message,
                retries,
                backoff,
                variables,
            } => self.fail(label, message, retries, backoff, variables).await,
            Verdict::Throw {
                label,
                code,
                message,
                variables,
            } => self.throw(label, code, message, variables).await,
            Verdict::Lost => {}
        }
    }

    /// Completes the job, then commits the after-completion step (or rolls it back when the
    /// gateway did not accept). A completion refused as too large returns the verdict that
    /// replaces it: `RESPONSE_TOO_LARGE`, failed or thrown as the headers say.
    async fn complete(
        &self,
        variables: String,
        after: Option<Box<dyn AfterCompletion>>,
        headers: Option<JobHeaders>,
        context: String,
    ) -> Option<Verdict> {
        let (shared, job, key) = (self.shared, self.job, self.job.key);
        match retry_call(self.until, || {
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
                // At debug: a line per job cost a tenth of the throughput of small sends, and
                // the completions are counted in the metrics; failures log at warn.
                debug!(job_key = key, job_type = %job.r#type, tenant_id = %job.tenant_id, elapsed_ms = self.started.elapsed().as_millis() as u64, "job completed");
                if let Some(after) = after {
                    after.commit().await;
                }
                None
            }
            Err(status) if is_too_large(&status) => {
                if let Some(after) = after {
                    after.rollback().await;
                }
                let error = too_large_error(variables.len(), &status);
                let mask = SecretMask::default();
                Some(fail_verdict(error, job, headers.as_ref(), &context, &mask))
            }
            Err(status) => {
                warn!(job_key = key, job_type = %job.r#type, tenant_id = %job.tenant_id, "the gateway did not accept the completion: {}", status.message());
                if let Some(after) = after {
                    after.rollback().await;
                }
                None
            }
        }
    }

    async fn fail(
        &self,
        label: &'static str,
        message: String,
        retries: i32,
        backoff: Duration,
        variables: String,
    ) {
        let (shared, job, key) = (self.shared, self.job, self.job.key);
        shared
            .metrics
            .failed
            .get_or_create(&job_type_and_code(&job.r#type, label))
            .inc();
        warn!(job_key = key, job_type = %job.r#type, tenant_id = %job.tenant_id, code = label, retries, "job failed: {message}");
        if let Err(status) = retry_call(self.until, || {
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

    async fn throw(&self, label: &'static str, code: String, message: String, variables: String) {
        let (shared, job, key) = (self.shared, self.job, self.job.key);
        shared
            .metrics
            .errored
            .get_or_create(&job_type_and_code(&job.r#type, label))
            .inc();
        info!(job_key = key, job_type = %job.r#type, tenant_id = %job.tenant_id, code = %code, "BPMN error thrown: {message}");
        if let Err(status) = retry_call(self.until, || {
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
