//! A Zeebe gateway client: a lazily connected channel (the worker starts even when the gateway
//! is down, and reconnects by itself), TLS when asked, and Basic credentials or a bearer token
//! on every call when configured.

use std::time::Duration;

use secrecy::ExposeSecret;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status, Streaming};

use super::credentials::{BasicAuth, Credentials};
use super::oauth::OAuthConfig;
use super::proto::gateway_client::GatewayClient as Generated;
use super::proto::{
    ActivateJobsRequest, ActivateJobsResponse, ActivatedJob, CompleteJobRequest,
    CreateProcessInstanceRequest, CreateProcessInstanceResponse, FailJobRequest,
    PublishMessageRequest, PublishMessageResponse, StreamActivatedJobsRequest, ThrowErrorRequest,
    TopologyRequest, TopologyResponse, UpdateJobTimeoutRequest,
};

#[derive(Debug, Clone, Default)]
pub struct GatewayConfig {
    /// `grpc://` or `http://host:port` (plaintext), `grpcs://` or `https://host:port` (TLS), or a
    /// bare `host:port`.
    pub address: String,
    /// Overrides what the address implies: `Some(true)` forces plaintext.
    pub insecure: Option<bool>,
    /// PEM file of a CA to trust for the gateway (self-managed clusters with their own CA).
    pub ca_certificate_path: Option<std::path::PathBuf>,
    pub oauth: Option<OAuthConfig>,
    /// Basic credentials (never together with `oauth`; configuration refuses that).
    pub basic: Option<BasicAuth>,
}

impl GatewayConfig {
    /// The operator's secrets in these settings (the OAuth client secret, the Basic password),
    /// for the log's masks.
    pub fn secrets(&self) -> Vec<secrecy::SecretString> {
        let oauth = self.oauth.iter().map(|o| o.client_secret.clone());
        let basic = self.basic.iter().map(|b| b.password.clone());
        oauth.chain(basic).collect()
    }

    /// The URL to dial and whether it uses TLS. A bare `host:port` is plaintext unless OAuth
    /// is configured or the port is 443, which is what Camunda SaaS and Identity setups need.
    pub fn resolved_url(&self) -> Result<(String, bool), String> {
        let address = self.address.trim().trim_end_matches('/');
        // The console and Camunda's newer clients write grpc:// and grpcs://; the channel
        // speaks HTTP/2 either way, so they map onto http:// and https://.
        let scheme_rest = |scheme: &str| {
            address
                .get(..scheme.len())
                .filter(|s| s.eq_ignore_ascii_case(scheme))
                .map(|_| &address[scheme.len()..])
        };
        let (mut url, mut tls) = if let Some(rest) =
            scheme_rest("https://").or_else(|| scheme_rest("grpcs://"))
        {
            (format!("https://{rest}"), true)
        } else if let Some(rest) = scheme_rest("http://").or_else(|| scheme_rest("grpc://")) {
            (format!("http://{rest}"), false)
        } else if address.contains("://") {
            return Err(format!(
                "unsupported gateway address '{address}' (use grpc://, grpcs://, http:// or https://)"
            ));
        } else {
            let tls = self.oauth.is_some() || address.ends_with(":443");
            (
                format!("{}://{address}", if tls { "https" } else { "http" }),
                tls,
            )
        };
        if let Some(insecure) = self.insecure {
            tls = !insecure;
            let rest = url
                .split_once("://")
                .map_or(url.as_str(), |(_, r)| r)
                .to_string();
            url = format!("{}://{rest}", if tls { "https" } else { "http" });
        }
        Ok((url, tls))
    }
}

const UNARY_TIMEOUT: Duration = Duration::from_secs(30);

/// The gRPC client the worker uses. Cloning is cheap; clones share the connection.
#[derive(Clone)]
pub struct GatewayClient {
    inner: Generated<Channel>,
    credentials: Credentials,
    address: String,
}

impl GatewayClient {
    /// Prepares the channel without connecting; the first call connects.
    pub fn connect_lazy(config: &GatewayConfig) -> Result<GatewayClient, String> {
        let (url, tls) = config.resolved_url()?;
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| format!("invalid gateway address '{url}': {e}"))?
            .connect_timeout(Duration::from_secs(10))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true)
            .tcp_nodelay(true);
        // Read once for the channel and the OAuth client, whether the channel uses TLS or not:
        // the token endpoint may be https behind the same CA while the gateway is plaintext.
        let ca_pem = match &config.ca_certificate_path {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "cannot read the gateway CA certificate {}: {e}",
                    path.display()
                )
            })?),
            None => None,
        };
        if tls {
            let mut tls_config = ClientTlsConfig::new().with_native_roots();
            if let Some(pem) = &ca_pem {
                tls_config = tls_config.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint
                .tls_config(tls_config)
                .map_err(|e| format!("gateway TLS settings: {e}"))?;
        }
        let channel = endpoint.connect_lazy();
        Ok(GatewayClient {
            // Jobs carry all variables in scope; the gateway's default limit is 4 MB.
            inner: Generated::new(channel)
                .max_decoding_message_size(64 * 1024 * 1024)
                .max_encoding_message_size(64 * 1024 * 1024),
            credentials: Credentials::new(
                config.basic.as_ref(),
                config.oauth.as_ref(),
                ca_pem.as_deref(),
            ),
            address: url,
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// The identity this client presents; the document store's client presents the same.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// A unary call's request, with a deadline: a job's result (and a POP3 session held open
    /// for its after-completion step) must not wait forever on a stalled gateway.
    async fn unary<T>(&self, message: T) -> Result<Request<T>, Status> {
        let mut request = self.request(message).await?;
        request.set_timeout(UNARY_TIMEOUT);
        Ok(request)
    }

    async fn request<T>(&self, message: T) -> Result<Request<T>, Status> {
        let mut request = Request::new(message);
        let authorization = self
            .credentials
            .authorization()
            .await
            .map_err(Status::unauthenticated)?;
        if let Some(value) = authorization {
            let value = value.expose_secret().parse().map_err(|_| {
                Status::unauthenticated("the credentials are not a valid header value")
            })?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }

    /// Forgets a rejected token so the next call fetches a new one.
    async fn observe<T>(&self, result: Result<T, Status>) -> Result<T, Status> {
        if let Err(status) = &result
            && status.code() == tonic::Code::Unauthenticated
        {
            self.credentials.rejected();
        }
        result
    }

    pub async fn topology(&self) -> Result<TopologyResponse, Status> {
        let request = self.unary(TopologyRequest {}).await?;
        let result = self
            .inner
            .clone()
            .topology(request)
            .await
            .map(|r| r.into_inner());
        self.observe(result).await
    }

    pub async fn activate_jobs(
        &self,
        request: ActivateJobsRequest,
    ) -> Result<Streaming<ActivateJobsResponse>, Status> {
        let request = self.request(request).await?;
        let result = self
            .inner
            .clone()
            .activate_jobs(request)
            .await
            .map(|r| r.into_inner());
        self.observe(result).await
    }

    pub async fn stream_activated_jobs(
        &self,
        request: StreamActivatedJobsRequest,
    ) -> Result<Streaming<ActivatedJob>, Status> {
        let request = self.request(request).await?;
        let result = self
            .inner
            .clone()
            .stream_activated_jobs(request)
            .await
            .map(|r| r.into_inner());
        self.observe(result).await
    }

    pub async fn complete_job(&self, job_key: i64, variables: String) -> Result<(), Status> {
        let request = self
            .unary(CompleteJobRequest { job_key, variables })
            .await?;
        let result = self.inner.clone().complete_job(request).await.map(|_| ());
        self.observe(result).await
    }

    /// Fails a job; `variables` (a JSON object, or empty for none) are set on the task.
    pub async fn fail_job(
        &self,
        job_key: i64,
        retries: i32,
        error_message: String,
        retry_back_off: Duration,
        variables: String,
    ) -> Result<(), Status> {
        let request = self
            .unary(FailJobRequest {
                job_key,
                retries,
                error_message,
                retry_back_off: i64::try_from(retry_back_off.as_millis()).unwrap_or(i64::MAX),
                variables,
            })
            .await?;
        let result = self.inner.clone().fail_job(request).await.map(|_| ());
        self.observe(result).await
    }

    /// Throws a BPMN error; `variables` (a JSON object, or empty for none) go with it.
    pub async fn throw_error(
        &self,
        job_key: i64,
        error_code: String,
        error_message: String,
        variables: String,
    ) -> Result<(), Status> {
        let request = self
            .unary(ThrowErrorRequest {
                job_key,
                error_code,
                error_message,
                variables,
            })
            .await?;
        let result = self.inner.clone().throw_error(request).await.map(|_| ());
        self.observe(result).await
    }

    pub async fn update_job_timeout(&self, job_key: i64, timeout: Duration) -> Result<(), Status> {
        let request = self
            .unary(UpdateJobTimeoutRequest {
                job_key,
                timeout: i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX),
                operation_reference: None,
            })
            .await?;
        let result = self
            .inner
            .clone()
            .update_job_timeout(request)
            .await
            .map(|_| ());
        self.observe(result).await
    }
}

impl GatewayClient {
    /// Publishes a message (an inbound watcher's hand-over). `ALREADY_EXISTS` comes back as
    /// an error: whether that counts as accepted is the caller's call.
    pub async fn publish_message(
        &self,
        message: PublishMessageRequest,
    ) -> Result<PublishMessageResponse, Status> {
        let request = self.unary(message).await?;
        let result = self
            .inner
            .clone()
            .publish_message(request)
            .await
            .map(|r| r.into_inner());
        self.observe(result).await
    }

    pub async fn create_process_instance(
        &self,
        instance: CreateProcessInstanceRequest,
    ) -> Result<CreateProcessInstanceResponse, Status> {
        let request = self.unary(instance).await?;
        let result = self
            .inner
            .clone()
            .create_process_instance(request)
            .await
            .map(|r| r.into_inner());
        self.observe(result).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(address: &str) -> GatewayConfig {
        GatewayConfig {
            address: address.into(),
            insecure: None,
            ..GatewayConfig::default()
        }
    }

    #[test]
    fn addresses_follow_camunda_conventions() {
        assert_eq!(
            config("http://localhost:26500").resolved_url().unwrap(),
            ("http://localhost:26500".into(), false)
        );
        assert_eq!(
            config("localhost:26500").resolved_url().unwrap(),
            ("http://localhost:26500".into(), false)
        );
        assert!(
            config("abc.bru-2.zeebe.camunda.io:443")
                .resolved_url()
                .unwrap()
                .1
        );
        assert_eq!(
            config("https://gw:26500/").resolved_url().unwrap(),
            ("https://gw:26500".into(), true)
        );
        let mut insecure = config("gw:443");
        insecure.insecure = Some(true);
        assert_eq!(
            insecure.resolved_url().unwrap(),
            ("http://gw:443".into(), false)
        );
        assert!(config("ftp://gw:1").resolved_url().is_err());
    }

    #[test]
    fn grpc_schemes_as_the_console_writes_them() {
        assert_eq!(
            config("grpcs://abc.bru-2.zeebe.camunda.io:443")
                .resolved_url()
                .unwrap(),
            ("https://abc.bru-2.zeebe.camunda.io:443".into(), true)
        );
        assert_eq!(
            config("grpc://zeebe:26500").resolved_url().unwrap(),
            ("http://zeebe:26500".into(), false)
        );
        assert_eq!(
            config("GRPCS://gw:443").resolved_url().unwrap(),
            ("https://gw:443".into(), true)
        );
    }
}
