//! The drop-in for Camunda's own Email connector (docs/camunda-dropin.md): jobs of Camunda's
//! job type (`io.camunda:email:1`, or a hybrid template's), modelled with Camunda's element
//! templates, run by our operations. A job is read in Camunda's layout ([`inputs`]), mapped
//! onto one of our operations ([`mapping`]), which runs as its own job type would (schema,
//! pooling, timeouts, error codes), and its response is given back in Camunda's shape
//! ([`responses`]). The worker's task-header handling (result and error expressions, retries,
//! backoff, job timeout) applies unchanged.

mod account;
mod connection;
mod documents;
pub mod inputs;
pub mod mapping;
mod pointers;
pub mod responses;
mod send;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::error::{EmailError, ErrorCode, Result};
use crate::mail::inputs::input_schema;
use crate::mail::server::{self, Protocol};
use crate::operation::{JobContext, Operation, Outcome};
use crate::schema::InputSchema;
use mapping::{Action, Mapped};

/// Camunda's own job type, which its connector runtime serves unless told otherwise.
pub const CAMUNDA_JOB_TYPE: &str = "io.camunda:email:1";

/// Where `{{secrets.NAME}}` is resolved in Camunda's layout: its connection fields.
pub const SECRET_SCOPES: &[&str] = &[
    "/authentication",
    "/emailAccountConfiguration",
    "/data/smtpConfig",
    "/data/imapConfig",
    "/data/pop3Config",
];

/// One of our operations the drop-in hands jobs to, with its schema.
pub struct Target {
    pub operation: Arc<dyn Operation>,
    pub schema: InputSchema,
}

/// The operation behind Camunda's job type.
pub struct CamundaEmail {
    targets: Vec<Target>,
}

impl CamundaEmail {
    /// Serves Camunda's actions with `operations` (the ones this worker serves); an action
    /// whose operation is not among them fails with `INVALID_INPUT`.
    pub fn new(operations: Vec<Arc<dyn Operation>>) -> std::result::Result<Self, String> {
        let targets = operations
            .into_iter()
            .map(|operation| {
                let schema = InputSchema::compile(&operation.schema())
                    .map_err(|e| format!("{}: {e}", operation.name()))?;
                Ok(Target { operation, schema })
            })
            .collect::<std::result::Result<_, String>>()?;
        Ok(CamundaEmail { targets })
    }

    fn target(&self, action: Action) -> Result<&Target> {
        self.targets
            .iter()
            .find(|t| t.operation.name() == action.operation())
            .ok_or_else(|| {
                EmailError::invalid_input(format!(
                    "this worker does not serve {} (EMAIL_OPERATIONS), which this job's action needs",
                    action.operation()
                ))
            })
    }

    async fn run_mapped(&self, mapped: Mapped, job: &JobContext) -> Result<Outcome> {
        let target = self.target(mapped.action)?;
        let mut variables = mapped.variables;
        if !mapped.documents.is_empty() {
            let attachments =
                documents::resolve(mapped.documents, &mapped.documents_pointer, job.services())
                    .await?;
            variables["attachments"] = Value::Array(attachments);
        }
        target.schema.validate(&variables)?;
        let timeout = target.operation.timeout(&variables);
        let outcome = tokio::time::timeout(timeout, target.operation.run(variables, job))
            .await
            .map_err(|_| {
                EmailError::new(
                    ErrorCode::Timeout,
                    format!("no result within {} s", timeout.as_secs()),
                )
            })??;
        Ok(Outcome {
            response: responses::camunda_response(mapped.action, &outcome.response, &mapped.echo),
            after_completion: outcome.after_completion,
        })
    }
}

/// The protocol a job's variables name (`protocol`, SMTP when absent), as ours.
fn protocol_of(variables: &Value) -> Protocol {
    match variables.get("protocol").and_then(Value::as_str) {
        Some(p) if p.trim().eq_ignore_ascii_case("imap") => Protocol::Imap,
        Some(p) if p.trim().eq_ignore_ascii_case("pop3") => Protocol::Pop3,
        _ => Protocol::Smtp,
    }
}

impl Operation for CamundaEmail {
    fn name(&self) -> &'static str {
        "camunda:email"
    }

    /// Nominal: a job's protocol is in its variables.
    fn protocol(&self) -> Protocol {
        Protocol::Smtp
    }

    fn schema(&self) -> Value {
        input_schema::<inputs::Request>()
    }

    /// Our operation's own bound, plus the time external documents may take to arrive.
    fn timeout(&self, _variables: &Value) -> Duration {
        server::operation_timeout(&Value::Null) + documents::FETCH_TIMEOUT + Duration::from_secs(5)
    }

    fn target(&self, variables: &Value) -> String {
        let protocol = protocol_of(variables);
        let name = protocol.name();
        // A credential the job carries wins over the task's own fields, as when it runs.
        let config = match &variables["emailAccountConfiguration"] {
            account @ Value::Object(_) => account,
            _ => &variables["data"][format!("{name}Config")],
        };
        let host = config[format!("{name}Host")].as_str().unwrap_or("?");
        match &config[format!("{name}Port")] {
            Value::Number(port) => format!("{host}:{port}"),
            Value::String(port) => format!("{host}:{}", port.trim()),
            _ => host.to_string(),
        }
    }

    fn secret_scopes(&self) -> &'static [&'static str] {
        SECRET_SCOPES
    }

    /// Camunda's runtime sends no backoff when a job has no `retryBackoff` header (its
    /// templates set one: PT0S up to version 4, PT30S from version 5).
    fn default_retry_backoff(&self) -> Duration {
        Duration::ZERO
    }

    fn run<'a>(&'a self, variables: Value, job: &'a JobContext) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let mapped = mapping::map(&variables, job.services().has_document_store())?;
            let pointers = mapped.pointers.clone();
            self.run_mapped(mapped, job).await.map_err(|mut error| {
                error.message = mapping::rename_pointers(&error.message, &pointers);
                error
            })
        })
    }
}

#[cfg(test)]
mod tests;
