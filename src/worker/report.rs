//! Talking back to the gateway: a result, failure or BPMN error is retried while the gateway
//! is restarting or busy, and a completion refused for its size is recognised, so the verdict
//! can turn it into a failure that names the limits to change.

use std::time::{Duration, Instant};

use crate::error::{EmailError, ErrorCode};

/// Whether the gateway refused a request for its size: grpc-java (Zeebe's gateway) answers
/// RESOURCE_EXHAUSTED "gRPC message exceeds maximum size", tonic-based gateways OUT_OF_RANGE
/// "decoded message length too large", and the broker RESOURCE_EXHAUSTED for a record batch
/// over its limit. A busy gateway's RESOURCE_EXHAUSTED (backpressure) says nothing of size.
pub(super) fn is_too_large(status: &tonic::Status) -> bool {
    if !matches!(
        status.code(),
        tonic::Code::ResourceExhausted | tonic::Code::OutOfRange | tonic::Code::InvalidArgument
    ) {
        return false;
    }
    let text = status.message().to_ascii_lowercase();
    [
        "maximum size",
        "too large",
        "max message size",
        "exceeds",
        "larger than",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// The failure for a refused completion: which limits to change, never the response itself.
pub(super) fn too_large_error(bytes: usize, status: &tonic::Status) -> EmailError {
    let mut reason: String = status.message().chars().take(300).collect();
    if reason.is_empty() {
        reason = format!("{:?}", status.code());
    }
    EmailError::new(
        ErrorCode::ResponseTooLarge,
        format!(
            "the gateway refused the job's completion ({bytes} bytes of variables) as too large \
             ({reason}); lower EMAIL_MAX_RESPONSE_BYTES on the worker (or EMAIL_MAX_ATTACHMENT_BYTES), \
             or raise the gateway's and broker's maximum message size \
             (zeebe.gateway.network.maxMessageSize, zeebe.broker.network.maxMessageSize)"
        ),
    )
}

/// Calls the gateway again, with capped backoff, while the failure is one a later try can fix
/// (the gateway restarting or overloaded) and `until` has not passed. A completion dropped
/// after a few quick tries would leave the job to Zeebe's timeout and a second run elsewhere:
/// a mail sent twice for a gateway that restarted in ten seconds.
pub(super) async fn retry_call<F, Fut>(until: Instant, mut call: F) -> Result<(), tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    const MAX_DELAY: Duration = Duration::from_secs(5);
    let mut delay = Duration::from_millis(200);
    loop {
        match call().await {
            Ok(()) => return Ok(()),
            Err(status)
                if Instant::now() + delay < until
                    && !is_too_large(&status)
                    && matches!(
                        status.code(),
                        tonic::Code::Unavailable
                            | tonic::Code::DeadlineExceeded
                            | tonic::Code::ResourceExhausted
                    ) =>
            {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_DELAY);
            }
            Err(status) => return Err(status),
        }
    }
}
