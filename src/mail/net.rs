//! Outbound mail connections, shared by SMTP, IMAP and POP3: TCP to the addresses the host
//! policy checked, then TLS (implicit, or an upgrade after STARTTLS/STLS) with the one client
//! configuration of [`crate::mail::tls`]. The host policy is the caller's (the process's
//! [`crate::services::Services`]); what fails here is a [`NetError`].

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

mod error;

pub use error::{NetError, NetErrorKind};

use crate::error::Result;
use crate::mail::policy::{HostPolicy, NameVerdict};
use crate::mail::server::{Endpoint, Security};
use crate::mail::tls::client_config;

/// A TCP stream with or without TLS.
#[derive(Debug)]
pub enum MailStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for MailStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl MailStream {
    /// Whether nothing has arrived since the last read: no data and no end of stream, looked
    /// at without waiting and without taking a byte. A pooled session that is quiet has not
    /// been closed or spoken to by its server while it sat idle.
    pub fn is_quiet(&self) -> bool {
        let tcp = match self {
            MailStream::Plain(s) => s,
            MailStream::Tls(s) => s.get_ref().0,
        };
        let mut byte = [0u8; 1];
        let mut peeked = ReadBuf::new(&mut byte);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        tcp.poll_peek(&mut cx, &mut peeked).is_pending()
    }
}

impl AsyncWrite for MailStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_flush(cx),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            MailStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MailStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Opens the connection an endpoint asks for (TCP, then TLS from the first byte for
/// `security: tls`) under `policy`, noting each step as it succeeds for the `check`
/// subcommand. An upgrade after STARTTLS/STLS is the protocol's own next step.
pub async fn open_noting(
    policy: &HostPolicy,
    endpoint: &Endpoint,
    steps: &mut Vec<String>,
) -> Result<MailStream> {
    let implicit_tls = endpoint.security == Security::Tls;
    let stream = open_stream(policy, endpoint, implicit_tls).await?;
    steps.push(format!("tcp: connected to {}", endpoint.address()));
    if implicit_tls {
        steps.push("tls: implicit TLS handshake done, certificate verified".into());
    }
    Ok(stream)
}

/// Opens TCP, then TLS when `tls`: every outbound mail connection starts here, so the
/// operator's host policy is applied here, before any connection.
pub async fn open_stream(
    policy: &HostPolicy,
    endpoint: &Endpoint,
    tls: bool,
) -> Result<MailStream> {
    policy.check_settings(endpoint)?;
    let verdict = policy.check_name(&endpoint.host)?;
    let tcp = tokio::time::timeout(endpoint.timeout, connect_checked(policy, endpoint, verdict))
        .await
        .map_err(|_| {
            NetError::new(
                NetErrorKind::Timeout,
                format!("no TCP connection within {} s", endpoint.timeout.as_secs()),
            )
        })??;
    let _ = tcp.set_nodelay(true);
    if tls {
        upgrade(MailStream::Plain(tcp), endpoint).await
    } else {
        Ok(MailStream::Plain(tcp))
    }
}

/// Resolves the host once, checks every address, and connects to those very addresses in
/// turn: a second lookup (as `TcpStream::connect(host)` would make) could be answered
/// differently by a hostile DNS server.
async fn connect_checked(
    policy: &HostPolicy,
    endpoint: &Endpoint,
    verdict: NameVerdict,
) -> Result<TcpStream> {
    let addresses: Vec<SocketAddr> = match verdict {
        NameVerdict::Address(address) => vec![SocketAddr::new(address, endpoint.port)],
        _ => {
            let resolved = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port))
                .await
                .map_err(|e| {
                    NetError::new(
                        NetErrorKind::Connection,
                        format!("cannot resolve '{}': {e}", endpoint.host),
                    )
                    .with_source(e)
                })?
                .collect::<Vec<_>>();
            let ips: Vec<_> = resolved.iter().map(SocketAddr::ip).collect();
            policy.check_addresses(&endpoint.host, &verdict, &ips)?;
            resolved
        }
    };
    let mut last_error = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last_error = Some(e),
        }
    }
    let error = match last_error {
        Some(e) => {
            NetError::new(NetErrorKind::Connection, format!("TCP connect: {e}")).with_source(e)
        }
        None => NetError::new(
            NetErrorKind::Connection,
            format!("'{}' resolves to no address", endpoint.host),
        ),
    };
    Err(error.into())
}

/// Runs the TLS handshake on a plain stream (implicit TLS, or after STARTTLS/STLS).
pub async fn upgrade(stream: MailStream, endpoint: &Endpoint) -> Result<MailStream> {
    let MailStream::Plain(tcp) = stream else {
        return Ok(stream);
    };
    let config = client_config(
        endpoint.server_certificate.as_deref(),
        endpoint.accept_invalid_certificates,
    )?;
    let name = rustls::pki_types::ServerName::try_from(endpoint.host.clone()).map_err(|e| {
        NetError::new(
            NetErrorKind::Input,
            format!("/server/host: '{}' is not a valid host name", endpoint.host),
        )
        .with_source(e)
    })?;
    let handshake = TlsConnector::from(config).connect(name, tcp);
    let tls = tokio::time::timeout(endpoint.timeout, handshake)
        .await
        .map_err(|_| {
            NetError::new(
                NetErrorKind::Timeout,
                "the TLS handshake did not finish in time",
            )
        })?
        .map_err(|e| {
            // A certificate or protocol refusal needs a person (no retries); a connection that
            // drops mid-handshake is the network's trouble and is retried.
            if crate::mail::tls::is_tls_failure(&e) {
                NetError::new(NetErrorKind::Tls, format!("TLS handshake: {e}")).with_source(e)
            } else {
                NetError::new(
                    NetErrorKind::Connection,
                    format!("the connection broke off during the TLS handshake: {e}"),
                )
                .with_source(e)
            }
        })?;
    Ok(MailStream::Tls(Box::new(tls)))
}
