//! Running one operation: secrets, schema, the operation under its timeout with a panic
//! caught. Shared by the worker and the `invoke` subcommand.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use serde_json::Value;
use tracing::error;

use crate::error::{EmailError, ErrorCode};
use crate::operation::{JobContext, Outcome};
use crate::registry::Registered;
use crate::secrets::{SecretMask, SecretProvider};

/// Resolves secrets, validates and runs one operation under its timeout, a panic caught so
/// that it becomes an error instead of taking the worker down. Shared by the
/// worker and the `invoke` subcommand. The mask it returns hides the secrets it resolved.
pub async fn execute(
    entry: &Registered,
    mut variables: Value,
    job: JobContext,
    secrets: &SecretProvider,
) -> (Result<Outcome, EmailError>, SecretMask) {
    let mask = match secrets.resolve_in(&mut variables, entry.operation.secret_scopes()) {
        Ok(mask) => mask,
        Err(e) => return (Err(e), SecretMask::default()),
    };
    entry.schema.unset_nulls(&mut variables);
    if let Err(e) = entry.schema.validate_masked(&variables, &mask) {
        return (Err(e), mask);
    }
    let timeout = entry.operation.timeout(&variables);
    let operation = entry.operation.clone();
    // The operation runs inside the job's own task, not a task of its own: it ends with
    // whoever waits for it (when shutdown aborts the job's task after the grace period, an
    // operation left running would send its mail after the job was handed back, and the
    // worker that takes the job next would send it again), and a job costs no second task and
    // no wake-up across threads to hand its result over. A panic is caught here all the same.
    let run = AssertUnwindSafe(async move { operation.run(variables, &job).await }).catch_unwind();
    let result = match tokio::time::timeout(timeout, run).await {
        Ok(Ok(result)) => result.map(|mut outcome| {
            mask.apply_to_value(&mut outcome.response);
            outcome
        }),
        Ok(Err(payload)) => {
            let reason = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            error!(
                "operation {} panicked: {}",
                entry.operation.name(),
                mask.apply(&reason)
            );
            Err(EmailError::internal(format!(
                "the operation failed unexpectedly: {reason}"
            )))
        }
        Err(_) => Err(EmailError::new(
            ErrorCode::Timeout,
            format!(
                "no result within {} s (server.timeoutSeconds)",
                timeout.as_secs()
            ),
        )),
    };
    (result, mask)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use futures_util::future::BoxFuture;
    use serde_json::json;

    use super::*;
    use crate::error::Result;
    use crate::operation::Operation;
    use crate::registry::Registry;

    /// An operation that takes 10 s and bounds itself to 100 ms, whatever `server` says.
    struct Impatient;

    impl Operation for Impatient {
        fn name(&self) -> &'static str {
            "test:impatient"
        }

        fn protocol(&self) -> crate::operation::Protocol {
            crate::operation::Protocol::Smtp
        }

        fn schema(&self) -> Value {
            json!({ "type": "object" })
        }

        fn timeout(&self, _variables: &Value) -> Duration {
            Duration::from_millis(100)
        }

        fn run<'a>(&'a self, _: Value, _: &'a JobContext) -> BoxFuture<'a, Result<Outcome>> {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok(Outcome::respond(json!({})))
            })
        }
    }

    #[tokio::test]
    async fn the_operation_decides_its_timeout() {
        let registry = Registry::from_operations("email", vec![Arc::new(Impatient)]).unwrap();
        let entry = registry.find("test:impatient").unwrap();
        let started = std::time::Instant::now();
        let variables = json!({ "server": { "timeoutSeconds": 30 } });
        let secrets = SecretProvider::new("EMAIL_SECRET_", None);
        let (result, _) = execute(entry, variables, JobContext::default(), &secrets).await;
        let error = result.err().expect("a timeout");
        assert_eq!(error.code, ErrorCode::Timeout);
        assert!(started.elapsed() < Duration::from_secs(5), "{error:?}");
    }
}
