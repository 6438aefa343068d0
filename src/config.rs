//! Settings from flags and environment variables, named after Camunda's client conventions
//! (`ZEEBE_ADDRESS`, `ZEEBE_CLIENT_ID`, …) so existing deployment manifests carry over.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::gateway::GatewayConfig;
use crate::gateway::oauth::OAuthConfig;
use crate::job::parse_iso8601_duration;
use crate::mail::policy::{HostPolicy, HostRules};
use crate::operation::OperationSettings;
use crate::secrets::SecretProvider;
use crate::worker::WorkerSettings;

/// A duration flag: ISO-8601 (`PT30S`) as in BPMN, or whole seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => parse_iso8601_duration(text.trim()),
    }
}

#[derive(Debug, Clone, Args)]
pub struct SecretArgs {
    /// Prefix of the environment variables that hold `{{secrets.NAME}}` values.
    #[arg(long, env = "EMAIL_SECRET_PREFIX", default_value = "EMAIL_SECRET_")]
    pub secret_prefix: String,
    /// Directory whose files hold secret values (file name = secret name), e.g. a mounted
    /// Kubernetes Secret.
    #[arg(long, env = "EMAIL_SECRETS_DIR")]
    pub secrets_dir: Option<PathBuf>,
}

impl SecretArgs {
    pub fn provider(&self) -> SecretProvider {
        SecretProvider::new(self.secret_prefix.clone(), self.secrets_dir.clone())
    }
}

/// The host policy of `mail::policy` (SPEC §11), for `run`, `invoke` and `check` alike.
#[derive(Debug, Clone, Args)]
pub struct HostPolicyArgs {
    /// Mail servers jobs may connect to, comma-separated: names (`mail.example.com`), name
    /// patterns (`*.example.com`), addresses and CIDRs (`10.0.0.0/8`, `fd00::/8`); `*` allows
    /// every host not denied.
    #[arg(long, env = "EMAIL_ALLOWED_HOSTS", default_value = crate::mail::policy::DEFAULT_ALLOWED, value_parser = parse_host_rules)]
    pub allowed_hosts: HostRules,
    /// Refused even when allowed, in the same syntax; an empty value clears the list.
    #[arg(long, env = "EMAIL_DENIED_HOSTS", default_value = crate::mail::policy::DEFAULT_DENIED, value_parser = parse_host_rules)]
    pub denied_hosts: HostRules,
    /// `false` refuses `security: none` and `acceptInvalidCertificates: true`.
    #[arg(long, env = "EMAIL_ALLOW_INSECURE", default_value_t = true, action = clap::ArgAction::Set)]
    pub allow_insecure: bool,
}

fn parse_host_rules(text: &str) -> Result<HostRules, String> {
    text.parse()
}

impl HostPolicyArgs {
    /// Makes these settings the process's policy; called once, at start.
    pub fn install(&self) -> Result<(), String> {
        let policy = HostPolicy::new(
            self.allowed_hosts.clone(),
            self.denied_hosts.clone(),
            self.allow_insecure,
        )?;
        crate::mail::policy::install(policy)
    }
}

#[derive(Debug, Clone, Args)]
pub struct OperationArgs {
    /// Prefix of every job type (`<prefix>:smtp:send:1`).
    #[arg(long, env = "EMAIL_JOB_TYPE_PREFIX", default_value = "email")]
    pub job_type_prefix: String,
    /// Operations to serve, comma-separated (`smtp:send,imap:list`); all when unset.
    #[arg(long, env = "EMAIL_OPERATIONS", value_delimiter = ',')]
    pub operations: Option<Vec<String>>,
    /// Keep mail sessions open between jobs (pooled per server + user + security).
    #[arg(long, env = "EMAIL_SESSION_POOLING", default_value_t = true, action = clap::ArgAction::Set)]
    pub session_pooling: bool,
    /// Attachments larger than this many bytes (decoded) are returned without content, with
    /// `truncated: true`.
    #[arg(long, env = "EMAIL_MAX_ATTACHMENT_BYTES", default_value_t = crate::operation::DEFAULT_MAX_ATTACHMENT_BYTES)]
    pub max_attachment_bytes: usize,
    /// The read response's budget in bytes of serialized JSON: attachment contents are
    /// dropped first, then the bodies cut, and the response gets `truncated: true`.
    /// From 1 KiB to 1 GiB: below, nothing useful fits; above, no gateway accepts it, and
    /// the size arithmetic stays far from overflow.
    #[arg(
        long,
        env = "EMAIL_MAX_RESPONSE_BYTES",
        default_value_t = crate::operation::DEFAULT_MAX_RESPONSE_BYTES as u64,
        value_parser = clap::value_parser!(u64).range(1024..=1024 * 1024 * 1024)
    )]
    pub max_response_bytes: u64,
}

impl OperationArgs {
    pub fn settings(&self) -> OperationSettings {
        OperationSettings {
            session_pooling: self.session_pooling,
            max_attachment_bytes: self.max_attachment_bytes,
            max_response_bytes: usize::try_from(self.max_response_bytes)
                .unwrap_or(crate::operation::DEFAULT_MAX_RESPONSE_BYTES),
        }
    }

    pub fn enabled(&self) -> Option<Vec<String>> {
        self.operations.as_ref().map(|names| {
            names
                .iter()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect()
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Zeebe gateway: `http://host:port`, `https://host:port` or `host:port`.
    /// `ZEEBE_GRPC_ADDRESS` takes precedence over `ZEEBE_ADDRESS`.
    #[arg(long, env = "ZEEBE_ADDRESS", default_value = "http://localhost:26500")]
    pub address: String,
    /// Force plaintext (`true`) or TLS (`false`) whatever the address implies.
    #[arg(long, env = "ZEEBE_INSECURE_CONNECTION")]
    pub insecure: Option<bool>,
    /// PEM file of the CA that signed the gateway's certificate.
    #[arg(long, env = "ZEEBE_CA_CERTIFICATE_PATH")]
    pub ca_certificate: Option<PathBuf>,
    /// OAuth2 client id (Camunda SaaS / Identity).
    #[arg(long, env = "ZEEBE_CLIENT_ID")]
    pub client_id: Option<String>,
    /// OAuth2 client secret.
    #[arg(long, env = "ZEEBE_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// OAuth2 token endpoint.
    #[arg(long, env = "ZEEBE_AUTHORIZATION_SERVER_URL")]
    pub authorization_server_url: Option<String>,
    /// OAuth2 audience (`zeebe.camunda.io` on SaaS, `zeebe-api` on self-managed Identity).
    #[arg(long, env = "ZEEBE_TOKEN_AUDIENCE")]
    pub token_audience: Option<String>,
    /// OAuth2 scope, where the identity provider needs one.
    #[arg(long, env = "ZEEBE_TOKEN_SCOPE")]
    pub token_scope: Option<String>,
    /// Worker name recorded on activated jobs.
    #[arg(long, env = "ZEEBE_WORKER_NAME", default_value = "email-connector")]
    pub worker_name: String,
    /// Jobs running at once, across all job types.
    #[arg(long, env = "EMAIL_MAX_JOBS_ACTIVE", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_jobs_active: u32,
    /// How long Zeebe waits for a job's result before giving it to another worker.
    #[arg(long, env = "EMAIL_JOB_TIMEOUT", default_value = "PT5M", value_parser = parse_duration)]
    pub job_timeout: Duration,
    /// Receive jobs over a job stream (besides long polling for the backlog).
    #[arg(long, env = "EMAIL_STREAMING", default_value_t = true, action = clap::ArgAction::Set)]
    pub streaming: bool,
    /// Long-polling time of one ActivateJobs request.
    #[arg(long, env = "EMAIL_POLL_REQUEST_TIMEOUT", default_value = "PT20S", value_parser = parse_duration)]
    pub poll_request_timeout: Duration,
    /// How long shutdown waits for running jobs before handing them back.
    #[arg(long, env = "EMAIL_SHUTDOWN_GRACE", default_value = "PT30S", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Port of `/healthz`, `/readyz` and `/metrics`; 0 turns the endpoint off.
    #[arg(long, env = "EMAIL_HTTP_PORT", default_value_t = 8080)]
    pub http_port: u16,
    /// Address the HTTP endpoint listens on.
    #[arg(long, env = "EMAIL_HTTP_ADDRESS", default_value = "0.0.0.0")]
    pub http_address: std::net::IpAddr,
    /// Inbound watchers (YAML or JSON, SPEC §9): mailboxes whose new mail is handed to Zeebe.
    #[arg(long, env = "EMAIL_INBOUND_CONFIG")]
    pub inbound_config: Option<String>,
    /// Serve no job types: run the inbound watchers alone.
    #[arg(long, env = "EMAIL_INBOUND_ONLY", default_value_t = false, action = clap::ArgAction::Set)]
    pub inbound_only: bool,
    #[command(flatten)]
    pub operations: OperationArgs,
    #[command(flatten)]
    pub secrets: SecretArgs,
    #[command(flatten)]
    pub host_policy: HostPolicyArgs,
}

impl RunArgs {
    pub fn gateway_config(&self) -> Result<GatewayConfig, String> {
        let address = std::env::var("ZEEBE_GRPC_ADDRESS")
            .ok()
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| self.address.clone());
        let oauth = match (
            &self.client_id,
            &self.client_secret,
            &self.authorization_server_url,
        ) {
            (Some(id), Some(secret), Some(url)) => Some(OAuthConfig {
                authorization_server_url: url.clone(),
                client_id: id.clone(),
                client_secret: secret.clone().into(),
                audience: self.token_audience.clone(),
                scope: self.token_scope.clone(),
            }),
            (None, None, None) => None,
            _ => {
                return Err(
                    "OAuth needs all of ZEEBE_CLIENT_ID, ZEEBE_CLIENT_SECRET and ZEEBE_AUTHORIZATION_SERVER_URL"
                        .into(),
                );
            }
        };
        Ok(GatewayConfig {
            address,
            insecure: self.insecure,
            ca_certificate_path: self.ca_certificate.clone(),
            oauth,
        })
    }

    pub fn worker_settings(&self) -> WorkerSettings {
        WorkerSettings {
            worker_name: self.worker_name.clone(),
            job_timeout: self.job_timeout,
            max_jobs_active: self.max_jobs_active as usize,
            streaming: self.streaming,
            poll_request_timeout: self.poll_request_timeout,
            poll_interval: Duration::from_millis(100),
            shutdown_grace: self.shutdown_grace,
            secrets: self.secrets.provider(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_iso_or_seconds() {
        assert_eq!(parse_duration("PT5M"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("soon").is_err());
    }
}
