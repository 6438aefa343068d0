//! Settings from flags and environment variables. The gateway connection follows Camunda's
//! client names (`CAMUNDA_*` of the 8.8+ SDKs, `ZEEBE_*` as aliases; see
//! `gateway::settings`) so the console's credentials and existing manifests carry over.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::gateway::settings::{CamundaSettings, Environment, Flags, resolve};
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

/// The host policy of `mail::policy` (docs/configuration.md), for `run`, `invoke` and `check`
/// alike.
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
    /// `true` looks up a name that no name entry of the allowed list matches and allows it when
    /// every address it resolves to lies in an allowed CIDR. Off by default: the lookup itself
    /// carries the name a job chose to a DNS server.
    #[arg(long, env = "EMAIL_ALLOW_NAMES_BY_ADDRESS", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_names_by_address: bool,
}

fn parse_host_rules(text: &str) -> Result<HostRules, String> {
    text.parse()
}

impl HostPolicyArgs {
    /// The policy these settings make, for the process's services; built once, at start.
    pub fn policy(&self) -> Result<HostPolicy, String> {
        Ok(HostPolicy::new(
            self.allowed_hosts.clone(),
            self.denied_hosts.clone(),
            self.allow_insecure,
        )?
        .allowing_names_by_address(self.allow_names_by_address))
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
    /// Bytes of documents one job may hold on disk: a read's attachments spooled for the
    /// document store, a send's referenced documents downloaded (their total).
    #[arg(
        long,
        env = "EMAIL_MAX_DOCUMENT_BYTES",
        default_value_t = crate::documents::disk::DEFAULT_MAX_DOCUMENT_BYTES,
        value_parser = clap::value_parser!(u64).range(1024..)
    )]
    pub max_document_bytes: u64,
    /// IMAP sessions one login may hold to one server at once; jobs beyond wait for one to
    /// come free (at most the server's timeout). Servers refuse more: Dovecot allows 10 per
    /// user and address by default, Gmail 15 per account.
    #[arg(
        long,
        env = "EMAIL_IMAP_SESSIONS_PER_LOGIN",
        default_value_t = crate::operation::DEFAULT_IMAP_SESSIONS_PER_LOGIN as u32,
        value_parser = clap::value_parser!(u32).range(1..=1000)
    )]
    pub imap_sessions_per_login: u32,
    /// Also serve this job type with the variable layout of Camunda's own Email connector
    /// (`io.camunda:email:1`, or a hybrid template's type); off when unset, since Camunda's
    /// connector runtime serves that type (docs/camunda-dropin.md).
    #[arg(long, env = "EMAIL_CAMUNDA_JOB_TYPE")]
    pub camunda_job_type: Option<String>,
}

impl OperationArgs {
    pub fn settings(&self) -> OperationSettings {
        OperationSettings {
            session_pooling: self.session_pooling,
            max_attachment_bytes: self.max_attachment_bytes,
            max_response_bytes: usize::try_from(self.max_response_bytes)
                .unwrap_or(crate::operation::DEFAULT_MAX_RESPONSE_BYTES),
            imap_sessions_per_login: self.imap_sessions_per_login as usize,
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
    /// A `.env` file (e.g. the one the Camunda console hands out, `export NAME='value'` lines)
    /// read for the gateway settings below; variables set in the process win over it.
    #[arg(long, env = "EMAIL_ENV_FILE")]
    pub env_file: Option<PathBuf>,
    /// Zeebe gateway: `grpc://` or `http://host:port` (plaintext), `grpcs://` or
    /// `https://host:port` (TLS), or `host:port`. Env: `ZEEBE_GRPC_ADDRESS`, alias
    /// `ZEEBE_ADDRESS`.
    #[arg(long)]
    pub address: Option<String>,
    /// Camunda's REST API (the document store). Env: `CAMUNDA_REST_ADDRESS`, alias
    /// `ZEEBE_REST_ADDRESS`.
    #[arg(long)]
    pub rest_address: Option<String>,
    /// Force plaintext (`true`) or TLS (`false`) whatever the address implies. Env:
    /// `ZEEBE_INSECURE_CONNECTION`.
    #[arg(long)]
    pub insecure: Option<bool>,
    /// PEM file of the CA that signed the gateway's certificate. Env:
    /// `CAMUNDA_CA_CERTIFICATE_PATH`, alias `ZEEBE_CA_CERTIFICATE_PATH`.
    #[arg(long)]
    pub ca_certificate: Option<PathBuf>,
    /// `NONE`, `OAUTH` or `BASIC`; inferred from what is set when absent. Env:
    /// `CAMUNDA_AUTH_STRATEGY`.
    #[arg(long)]
    pub auth_strategy: Option<String>,
    /// OAuth2 client id. Env: `CAMUNDA_CLIENT_ID`, alias `ZEEBE_CLIENT_ID`.
    #[arg(long)]
    pub client_id: Option<String>,
    /// OAuth2 client secret. Env: `CAMUNDA_CLIENT_SECRET`, alias `ZEEBE_CLIENT_SECRET`.
    #[arg(long)]
    pub client_secret: Option<String>,
    /// OAuth2 token endpoint (default: Camunda SaaS's). Env: `CAMUNDA_OAUTH_URL`, alias
    /// `ZEEBE_AUTHORIZATION_SERVER_URL`.
    #[arg(long)]
    pub authorization_server_url: Option<String>,
    /// OAuth2 audience. Env: `CAMUNDA_TOKEN_AUDIENCE`, alias `ZEEBE_TOKEN_AUDIENCE`.
    #[arg(long)]
    pub token_audience: Option<String>,
    /// OAuth2 scope. Env: `CAMUNDA_OAUTH_SCOPE`, alias `ZEEBE_TOKEN_SCOPE`.
    #[arg(long)]
    pub token_scope: Option<String>,
    /// Basic auth user (e.g. `connector`). Env: `CAMUNDA_BASIC_AUTH_USERNAME`.
    #[arg(long)]
    pub basic_auth_username: Option<String>,
    /// Basic auth password. Env: `CAMUNDA_BASIC_AUTH_PASSWORD`.
    #[arg(long)]
    pub basic_auth_password: Option<String>,
    /// Tenants whose jobs to serve, comma-separated; none = the default tenant. Env:
    /// `CAMUNDA_TENANT_IDS`, or one by `CAMUNDA_DEFAULT_TENANT_ID` / `CAMUNDA_TENANT_ID`.
    #[arg(long, value_delimiter = ',')]
    pub tenant_ids: Option<Vec<String>>,
    /// Worker name recorded on activated jobs.
    #[arg(long, env = "ZEEBE_WORKER_NAME", default_value = "email-connector")]
    pub worker_name: String,
    /// Jobs running at once, across all job types.
    #[arg(long, env = "EMAIL_MAX_JOBS_ACTIVE", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_jobs_active: u32,
    /// Threads that run jobs, watchers and the health endpoint; 0 = one per core the process
    /// may use (a container's CPU limit counts).
    #[arg(long, env = "EMAIL_WORKER_THREADS", default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub worker_threads: u16,
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
    /// Inbound watchers (YAML or JSON, see docs/inbound.md): mailboxes whose new mail is handed
    /// to Zeebe.
    #[arg(long, env = "EMAIL_INBOUND_CONFIG")]
    pub inbound_config: Option<String>,
    /// Watch the mailboxes of the inbound email elements of the processes deployed to the
    /// cluster, found through Camunda's REST API (CAMUNDA_REST_ADDRESS; docs/inbound.md).
    #[arg(long, env = "EMAIL_INBOUND_FROM_MODELS", default_value_t = false, action = clap::ArgAction::Set)]
    pub inbound_from_models: bool,
    /// How often the deployed processes are looked at (ISO-8601, at least PT0.1S).
    #[arg(long, env = "EMAIL_INBOUND_DISCOVERY_INTERVAL", default_value = "PT5S")]
    pub inbound_discovery_interval: String,
    /// Inbound types served besides Camunda's and ours (a hybrid template's own type),
    /// comma-separated.
    #[arg(long, env = "EMAIL_INBOUND_MODEL_TYPES", value_delimiter = ',')]
    pub inbound_model_types: Vec<String>,
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
    /// The connection to Camunda: flags, then `CAMUNDA_*` / `ZEEBE_*` variables, then the
    /// env file.
    pub fn camunda_settings(&self) -> Result<CamundaSettings, String> {
        let env = Environment::load(self.env_file.as_deref())?;
        let flags = Flags {
            address: self.address.clone(),
            rest_address: self.rest_address.clone(),
            insecure: self.insecure,
            ca_certificate: self.ca_certificate.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            oauth_url: self.authorization_server_url.clone(),
            audience: self.token_audience.clone(),
            scope: self.token_scope.clone(),
            basic_username: self.basic_auth_username.clone(),
            basic_password: self.basic_auth_password.clone(),
            auth_strategy: self.auth_strategy.clone(),
            tenant_ids: self.tenant_ids.clone(),
        };
        resolve(&flags, &env)
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
            tenant_ids: Vec::new(),
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
