//! One TLS trust decision for every protocol and mode: implicit TLS and STARTTLS/STLS on SMTP,
//! IMAP and POP3 all trust the system store (here pointed at a CA file with `SSL_CERT_FILE`, as
//! a company CA installed on the host would be) plus `serverCertificate`, and give the same
//! verdict for the same certificate.

use crate::support;

use serde_json::{Value, json};
use support::gateway::Outcome;
use support::{Jobs, testbed, unique};

/// Each protocol's (security, port variable) pairs under test.
fn modes(protocol: &str) -> [(&'static str, &'static str); 2] {
    match protocol {
        "smtp" => [("tls", "PORT_SUBMISSIONS"), ("starttls", "PORT_SUBMISSION")],
        "imap" => [("tls", "PORT_IMAPS"), ("starttls", "PORT_IMAP")],
        _ => [("tls", "PORT_POP3S"), ("starttls", "PORT_POP3")],
    }
}

/// The cheapest operation of each protocol, against `security` on `port`, with `certificate`
/// as `serverCertificate` when given. SMTP mail goes to discard.test and is dropped.
fn job(protocol: &str, security: &str, port: u16, certificate: Option<String>) -> (String, Value) {
    let user = "net1";
    let operation = if protocol == "smtp" { "send" } else { "list" };
    let mut server =
        json!({ "host": "127.0.0.1", "port": port, "security": security, "timeoutSeconds": 10 });
    if let Some(pem) = certificate {
        server["serverCertificate"] = json!(pem);
    }
    let mut vars = json!({
        "authentication": { "type": "simple", "username": format!("{user}@example.test"), "password": format!("{user}-pw") },
        "server": server,
        "maxToBeRead": 1
    });
    if protocol == "smtp" {
        vars = json!({
            "authentication": vars["authentication"],
            "server": vars["server"],
            "from": "net1@example.test",
            "to": "tls-trust@discard.test",
            "subject": unique("tls-trust"),
            "body": "x"
        });
    }
    (operation.to_string(), vars)
}

/// `Ok` when the job completed, else the failure message (which must have retries 0 when it
/// is a TLS failure).
async fn verdict(jobs: &Jobs, operation: &str, vars: Value) -> Result<(), String> {
    match jobs.run(operation, vars).await.1 {
        Outcome::Completed { .. } => Ok(()),
        Outcome::Failed {
            retries, message, ..
        } => {
            if message.starts_with("TLS_ERROR") {
                assert_eq!(retries, 0, "{message}");
            }
            Err(message)
        }
        other => panic!("{operation}: unexpected {other:?}"),
    }
}

async fn expect(
    jobs: &Jobs,
    protocol: &str,
    certificate: Option<String>,
    accepted: bool,
    how: &str,
) {
    let tb = testbed();
    for (security, port) in modes(protocol) {
        let (operation, vars) = job(protocol, security, tb.port(port), certificate.clone());
        let result = verdict(jobs, &operation, vars).await;
        if accepted {
            assert_eq!(
                result,
                Ok(()),
                "{protocol} {security}, {how}: must be accepted"
            );
        } else {
            let message = result.expect_err(&format!("{protocol} {security}, {how}: must fail"));
            assert!(
                message.starts_with("TLS_ERROR: "),
                "{protocol} {security}, {how}: {message}"
            );
        }
    }
}

/// The same verdicts on both modes, with the CA given either way.
async fn trust_is_the_same_everywhere(protocol: &'static str) {
    let tb = testbed();
    let ca_file = tb.vars["TESTBED_CA"].clone();
    let other_ca_file = tb.vars["TESTBED_OTHER_CA"].clone();

    let plain = Jobs::start_with(protocol, &[]).await;
    expect(
        &plain,
        protocol,
        Some(tb.ca_pem()),
        true,
        "serverCertificate = the CA",
    )
    .await;
    expect(
        &plain,
        protocol,
        Some(tb.other_ca_pem()),
        false,
        "serverCertificate = another CA",
    )
    .await;
    expect(&plain, protocol, None, false, "no CA anywhere").await;

    let system = Jobs::start_with(protocol, &[("SSL_CERT_FILE", &ca_file)]).await;
    expect(&system, protocol, None, true, "SSL_CERT_FILE = the CA").await;

    let wrong = Jobs::start_with(protocol, &[("SSL_CERT_FILE", &other_ca_file)]).await;
    expect(&wrong, protocol, None, false, "SSL_CERT_FILE = another CA").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_trusts_the_same_certificates_on_465_and_587() {
    trust_is_the_same_everywhere("smtp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_trusts_the_same_certificates_with_tls_and_starttls() {
    trust_is_the_same_everywhere("imap").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop3_trusts_the_same_certificates_with_tls_and_stls() {
    trust_is_the_same_everywhere("pop3").await;
}

/// A server that greets and answers EHLO without STARTTLS, then records whatever else comes.
async fn smtp_server_without_starttls() -> (u16, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut socket = BufReader::new(socket);
        socket
            .get_mut()
            .write_all(b"220 plain.example.test ESMTP\r\n")
            .await
            .unwrap();
        let mut received = String::new();
        socket.read_line(&mut received).await.unwrap();
        socket
            .get_mut()
            .write_all(b"250-plain.example.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            socket.read_to_end(&mut rest),
        )
        .await;
        received + &String::from_utf8_lossy(&rest)
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_starttls_not_offered_is_tls_error_and_nothing_is_sent_in_clear_text() {
    let jobs = Jobs::start_with("smtp", &[]).await;
    let (port, server) = smtp_server_without_starttls().await;
    let (operation, vars) = job("smtp", "starttls", port, Some(testbed().ca_pem()));
    let message = verdict(&jobs, &operation, vars).await.unwrap_err();
    assert!(message.starts_with("TLS_ERROR: "), "{message}");
    assert!(message.contains("does not offer STARTTLS"), "{message}");
    let received = server.await.unwrap();
    assert!(received.starts_with("EHLO "), "{received}");
    assert!(
        !received.contains("AUTH") && !received.contains("MAIL"),
        "{received}"
    );
}

/// A TLS acceptor with the testbed's server certificate (signed by its CA).
fn testbed_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = testbed().dir().to_string();
    let certs = CertificateDer::pem_file_iter(format!("{dir}/certs/server-chain.crt"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}/certs/server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// An SMTP server that answers STARTTLS with `220` plus a reply the client never asked for,
/// in the same packet (the STARTTLS injection of CVE-2011-0411), then speaks real SMTP over
/// TLS and accepts one message. Returns what it saw after TLS.
async fn smtp_server_injecting_after_starttls() -> (u16, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = testbed_acceptor();
    let task = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut plain = BufReader::new(socket);
        plain
            .get_mut()
            .write_all(b"220 inject.example.test ESMTP\r\n")
            .await
            .unwrap();
        let mut line = String::new();
        plain.read_line(&mut line).await.unwrap();
        plain
            .get_mut()
            .write_all(b"250-inject.example.test\r\n250 STARTTLS\r\n")
            .await
            .unwrap();
        line.clear();
        plain.read_line(&mut line).await.unwrap();
        assert_eq!(line, "STARTTLS\r\n");
        plain
            .get_mut()
            .write_all(b"220 go ahead\r\n250-injected.example.test\r\n250 AUTH PLAIN\r\n")
            .await
            .unwrap();
        let tls = acceptor.accept(plain.into_inner()).await.unwrap();
        let mut tls = BufReader::new(tls);
        let mut seen = String::new();
        let mut in_data = false;
        loop {
            line.clear();
            if tls.read_line(&mut line).await.unwrap_or(0) == 0 {
                return seen;
            }
            seen.push_str(&line);
            let reply: &[u8] = if in_data {
                if line != ".\r\n" {
                    continue;
                }
                in_data = false;
                b"250 queued\r\n"
            } else {
                match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
                    "EHLO" => b"250-inject.example.test\r\n250 8BITMIME\r\n",
                    "DATA" => {
                        in_data = true;
                        b"354 go on\r\n"
                    }
                    "QUIT" => b"221 bye\r\n",
                    _ => b"250 ok\r\n",
                }
            };
            tls.get_mut().write_all(reply).await.unwrap();
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_replies_injected_before_the_tls_handshake_are_discarded() {
    let jobs = Jobs::start_with("smtp", &[("EMAIL_SESSION_POOLING", "false")]).await;
    let (port, server) = smtp_server_injecting_after_starttls().await;
    let (operation, mut vars) = job("smtp", "starttls", port, Some(testbed().ca_pem()));
    vars["authentication"] = json!({ "type": "none" });
    // Completion shows the client stayed in step: had it taken the injected 250 as the answer
    // to its EHLO over TLS, every later reply would have answered the wrong command.
    assert_eq!(verdict(&jobs, &operation, vars).await, Ok(()));
    let seen = server.await.unwrap();
    assert!(seen.starts_with("EHLO "), "{seen}");
    assert!(seen.contains("MAIL FROM:<net1@example.test>"), "{seen}");
    assert!(!seen.contains("AUTH"), "{seen}");
}
