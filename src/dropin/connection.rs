//! The connection of a job in our terms: the login (`authentication`) and our `server` block,
//! from the task's own fields or from an email account credential, each remembering the
//! Camunda field it came from.

use serde_json::{Map, Value, json};

use super::account::{self, Account};
use super::inputs::{AuthType, Crypto, Data, Number, ProtocolName, Request};
use super::mapping::Builder;

pub(super) fn authentication(builder: &mut Builder, request: &Request) {
    let auth = request.authentication.as_ref();
    match auth.and_then(|a| a.kind).unwrap_or(AuthType::Simple) {
        AuthType::NoAuth => builder.set(
            "authentication",
            "/authentication",
            json!({ "type": "none" }),
        ),
        AuthType::Simple => {
            let username = auth.and_then(|a| a.username.clone());
            let password = auth.and_then(|a| a.password.clone());
            if username.is_none() {
                builder.missing("/authentication/username");
            }
            if password.is_none() {
                builder.missing("/authentication/password");
            }
            builder.set(
                "authentication",
                "/authentication",
                json!({ "type": "simple", "username": username, "password": password }),
            );
        }
    }
}

pub(super) fn server(builder: &mut Builder, protocol: ProtocolName, data: &Data) {
    let name = protocol.as_str();
    let block = format!("/data/{name}Config");
    let (config, fields) = match protocol {
        ProtocolName::Smtp => (
            data.smtp_config
                .as_ref()
                .map(|c| (c.host.clone(), c.port, c.crypto)),
            super::inputs::SmtpConfig::FIELDS,
        ),
        ProtocolName::Imap => (
            data.imap_config
                .as_ref()
                .map(|c| (c.host.clone(), c.port.map(|p| p.0), c.crypto)),
            super::inputs::ImapConfig::FIELDS,
        ),
        ProtocolName::Pop3 => (
            data.pop3_config
                .as_ref()
                .map(|c| (c.host.clone(), c.port, c.crypto)),
            super::inputs::Pop3Config::FIELDS,
        ),
    };
    let fields = fields.map(|f| format!("{block}/{f}"));
    let Some((host, port, crypto)) = config else {
        builder.missing(&block);
        return;
    };
    server_block(builder, protocol, &block, fields, host, port, crypto);
}

/// The login and server of a job that carries an email account credential.
pub(super) fn from_account(builder: &mut Builder, protocol: ProtocolName, account: &Account) {
    let field = |name: &str| format!("{}/{name}", account::POINTER);
    for (name, value) in [
        ("username", &account.username),
        ("password", &account.password),
    ] {
        if value.is_none() {
            builder.missing(&field(name));
        }
    }
    builder.set(
        "authentication",
        account::POINTER,
        json!({ "type": "simple", "username": account.username, "password": account.password }),
    );
    match account.server(protocol) {
        Ok(server) => {
            let name = protocol.as_str();
            let fields =
                ["Host", "Port", "CryptographicProtocol"].map(|f| field(&format!("{name}{f}")));
            let (host, port, crypto) = (Some(server.host), Some(server.port), Some(server.crypto));
            server_block(
                builder,
                protocol,
                account::POINTER,
                fields,
                host,
                port,
                crypto,
            );
        }
        Err(problem) => builder.problems.push(problem),
    }
}

/// Our `server` block from Camunda's host, port and encryption; `block` and `fields` are the
/// pointers they came from.
fn server_block(
    builder: &mut Builder,
    protocol: ProtocolName,
    block: &str,
    [host_field, port_field, crypto_field]: [String; 3],
    host: Option<String>,
    port: Option<Number>,
    crypto: Option<Crypto>,
) {
    let security = match (crypto.unwrap_or(Crypto::Tls), protocol) {
        (Crypto::Tls, ProtocolName::Smtp) => "starttls",
        (Crypto::Tls | Crypto::Ssl, _) => "tls",
        (Crypto::None, _) => "none",
    };
    let mut server = Map::new();
    match host {
        Some(host) => {
            server.insert("host".into(), json!(host));
        }
        None => builder.missing(&host_field),
    }
    match port {
        Some(Number(port)) if (1..=65535).contains(&port) => {
            server.insert("port".into(), json!(port));
        }
        Some(Number(port)) => builder
            .problems
            .push(format!("{port_field}: {port} is not a port (1-65535)")),
        None => {}
    }
    server.insert("security".into(), json!(security));
    builder.set("server", block, Value::Object(server));
    builder
        .pointers
        .push(("/server/host".into(), host_field.clone()));
    builder.pointers.push(("/server/port".into(), port_field));
    builder
        .pointers
        .push(("/server/security".into(), crypto_field));
}
