//! Running one operation: secrets, schema, the operation under its timeout in a task of its
//! own. Shared by the worker and the `invoke` subcommand.

use std::time::Duration;

use serde_json::Value;
use tracing::error;

use crate::error::{EmailError, ErrorCode};
use crate::mail::server::DEFAULT_TIMEOUT_SECONDS;
use crate::operation::{JobContext, Outcome};
use crate::registry::Registered;
use crate::secrets::{SecretMask, SecretProvider};

/// Resolves secrets, validates and runs one operation under its timeout, isolated in a task of
/// its own so that a panic becomes an error instead of taking the worker down. Shared by the
/// worker and the `invoke` subcommand. The mask it returns hides the secrets it resolved.
pub async fn execute(
    entry: &Registered,
    mut variables: Value,
    job: JobContext,
    secrets: &SecretProvider,
) -> (Result<Outcome, EmailError>, SecretMask) {
    let mask = match secrets.resolve(&mut variables) {
        Ok(mask) => mask,
        Err(e) => return (Err(e), SecretMask::default()),
    };
    entry.schema.unset_nulls(&mut variables);
    if let Err(e) = entry.schema.validate_masked(&variables, &mask) {
        return (Err(e), mask);
    }
    let timeout = Duration::from_secs(
        variables
            .pointer("/server/timeoutSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_TIMEOUT_SECONDS),
    );
    let operation = entry.operation.clone();
    let task = tokio::spawn(async move { operation.run(variables, &job).await });
    // The operation's task must end with whoever waits for it: when shutdown aborts the job's
    // task after the grace period, an operation left running would send its mail after the
    // job was handed back, and the worker that takes the job next would send it again.
    let abort = AbortOnDrop(task.abort_handle());
    let result = match tokio::time::timeout(timeout, task).await {
        Ok(Ok(result)) => result.map(|mut outcome| {
            mask.apply_to_value(&mut outcome.response);
            outcome
        }),
        Ok(Err(join_error)) => {
            let reason = if join_error.is_panic() {
                let payload = join_error.into_panic();
                payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into())
            } else {
                "the operation was cancelled".into()
            };
            error!(
                "operation {} panicked: {}",
                entry.operation.name(),
                mask.apply(&reason)
            );
            Err(EmailError::internal(format!(
                "the operation failed unexpectedly: {reason}"
            )))
        }
        Err(_) => {
            abort.0.abort();
            Err(EmailError::new(
                ErrorCode::Timeout,
                format!(
                    "no result within {} s (server.timeoutSeconds)",
                    timeout.as_secs()
                ),
            ))
        }
    };
    (result, mask)
}

/// Aborts a task when dropped, however the future holding it ends (finished, timed out or
/// itself aborted).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
