//! The connection to Camunda by the names of its 8.8+ SDKs (`CAMUNDA_*`, `ZEEBE_GRPC_ADDRESS`),
//! with the older `ZEEBE_*` names as aliases: the newer name wins, and the log says which one
//! was read, so an operator with both in a manifest knows which is live.
//!
//! Values come from flags first, then the process environment, then an optional `.env` file
//! (as the Camunda console hands it out: `export NAME='value'` lines), so the downloaded file
//! works unchanged and a variable set in the pod still overrides it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::client::GatewayConfig;
use super::credentials::BasicAuth;
use super::oauth::OAuthConfig;

/// Camunda SaaS's token endpoint, the SDKs' default when client credentials are set alone.
pub const SAAS_OAUTH_URL: &str = "https://login.cloud.camunda.io/oauth/token";

/// Each setting's names, newest first.
const ADDRESS: &[&str] = &["ZEEBE_GRPC_ADDRESS", "ZEEBE_ADDRESS"];
const REST_ADDRESS: &[&str] = &["CAMUNDA_REST_ADDRESS", "ZEEBE_REST_ADDRESS"];
const CLIENT_ID: &[&str] = &[
    "CAMUNDA_CLIENT_ID",
    "CAMUNDA_CLIENT_AUTH_CLIENTID",
    "ZEEBE_CLIENT_ID",
];
const CLIENT_SECRET: &[&str] = &[
    "CAMUNDA_CLIENT_SECRET",
    "CAMUNDA_CLIENT_AUTH_CLIENTSECRET",
    "ZEEBE_CLIENT_SECRET",
];
const OAUTH_URL: &[&str] = &["CAMUNDA_OAUTH_URL", "ZEEBE_AUTHORIZATION_SERVER_URL"];
const AUDIENCE: &[&str] = &["CAMUNDA_TOKEN_AUDIENCE", "ZEEBE_TOKEN_AUDIENCE"];
const SCOPE: &[&str] = &["CAMUNDA_OAUTH_SCOPE", "ZEEBE_TOKEN_SCOPE"];
const BASIC_USERNAME: &[&str] = &["CAMUNDA_BASIC_AUTH_USERNAME"];
const BASIC_PASSWORD: &[&str] = &["CAMUNDA_BASIC_AUTH_PASSWORD"];
const STRATEGY: &[&str] = &["CAMUNDA_AUTH_STRATEGY"];
const CA_CERTIFICATE: &[&str] = &["CAMUNDA_CA_CERTIFICATE_PATH", "ZEEBE_CA_CERTIFICATE_PATH"];
const INSECURE: &[&str] = &["ZEEBE_INSECURE_CONNECTION"];
const TENANT_IDS: &[&str] = &["CAMUNDA_TENANT_IDS"];
const TENANT_ID: &[&str] = &["CAMUNDA_DEFAULT_TENANT_ID", "CAMUNDA_TENANT_ID"];

/// The variables the settings are read from: the process environment over a `.env` file.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: HashMap<String, String>,
}

impl Environment {
    /// The process environment, over the `.env` file when one is named.
    pub fn load(env_file: Option<&Path>) -> Result<Environment, String> {
        let mut vars = match env_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read the env file {}: {e}", path.display()))?;
                parse_env_file(&text)
            }
            None => HashMap::new(),
        };
        // vars() would panic on a variable that is not UTF-8; such a one is none of ours.
        vars.extend(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        );
        Ok(Environment { vars })
    }

    /// Exactly these variables (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Environment {
        Environment {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// Reads `NAME=value` lines as shells and the Camunda console write them: `export ` prefixes,
/// single or double quotes, comments and blank lines.
pub fn parse_env_file(text: &str) -> HashMap<String, String> {
    let mut vars = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\''))
        {
            inner.to_string()
        } else if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            inner.replace("\\\"", "\"").replace("\\\\", "\\")
        } else {
            // An unquoted value ends where a comment starts.
            value
                .split_once(" #")
                .map_or(value, |(v, _)| v)
                .trim()
                .to_string()
        };
        vars.insert(name.trim().to_string(), value);
    }
    vars
}

/// Flags given on the command line; each beats every variable of its setting.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub address: Option<String>,
    pub rest_address: Option<String>,
    pub insecure: Option<bool>,
    pub ca_certificate: Option<PathBuf>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub oauth_url: Option<String>,
    pub audience: Option<String>,
    pub scope: Option<String>,
    pub basic_username: Option<String>,
    pub basic_password: Option<String>,
    pub auth_strategy: Option<String>,
    pub tenant_ids: Option<Vec<String>>,
}

/// Where a setting came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub setting: &'static str,
    /// The flag or variable read.
    pub name: String,
    /// Older names that were set too, and ignored.
    pub ignored: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStrategy {
    None,
    OAuth,
    Basic,
}

/// Everything about the connection to Camunda, resolved.
#[derive(Debug, Clone)]
pub struct CamundaSettings {
    pub gateway: GatewayConfig,
    pub strategy: AuthStrategy,
    /// The Orchestration Cluster REST API (document store), e.g. `http://camunda:8080`.
    pub rest_address: Option<String>,
    /// Tenants whose jobs are activated; empty = the default tenant only.
    pub tenant_ids: Vec<String>,
    pub sources: Vec<Source>,
}

impl CamundaSettings {
    /// Logs where each setting came from (names only: values may be secrets).
    pub fn log_sources(&self) {
        for source in &self.sources {
            if source.ignored.is_empty() {
                tracing::info!(setting = source.setting, from = %source.name, "gateway setting");
            } else {
                tracing::info!(
                    setting = source.setting,
                    from = %source.name,
                    ignored = %source.ignored.join(","),
                    "gateway setting (the newer name wins)"
                );
            }
        }
    }
}

struct Resolver<'a> {
    env: &'a Environment,
    sources: Vec<Source>,
}

impl Resolver<'_> {
    fn pick(
        &mut self,
        setting: &'static str,
        flag: Option<&str>,
        flag_name: &str,
        names: &[&str],
    ) -> Option<String> {
        let set: Vec<(&str, &str)> = names
            .iter()
            .filter_map(|n| self.env.get(n).map(|v| (*n, v)))
            .collect();
        let flag = flag.map(str::trim).filter(|f| !f.is_empty());
        let (name, value, ignored) = match (flag, set.split_first()) {
            (Some(value), _) => (flag_name.to_string(), value.to_string(), set.as_slice()),
            (None, Some(((name, value), rest))) => (name.to_string(), value.to_string(), rest),
            (None, None) => return None,
        };
        self.sources.push(Source {
            setting,
            name,
            ignored: ignored.iter().map(|(n, _)| n.to_string()).collect(),
        });
        Some(value)
    }
}

/// Resolves the connection settings; a contradiction (both Basic and OAuth, half a credential
/// pair, an unknown strategy) is an error that names the variables, never their values.
pub fn resolve(flags: &Flags, env: &Environment) -> Result<CamundaSettings, String> {
    let mut r = Resolver {
        env,
        sources: Vec::new(),
    };
    let address = r
        .pick("address", flags.address.as_deref(), "--address", ADDRESS)
        .unwrap_or_else(|| "http://localhost:26500".into());
    let rest_address = r.pick(
        "rest address",
        flags.rest_address.as_deref(),
        "--rest-address",
        REST_ADDRESS,
    );
    let insecure = match flags.insecure {
        Some(v) => Some(v),
        None => r
            .pick("insecure", None, "--insecure", INSECURE)
            .map(|v| parse_bool(&v, "ZEEBE_INSECURE_CONNECTION"))
            .transpose()?,
    };
    let ca_certificate_path = flags.ca_certificate.clone().or_else(|| {
        r.pick("CA certificate", None, "--ca-certificate", CA_CERTIFICATE)
            .map(PathBuf::from)
    });
    let client_id = r.pick(
        "client id",
        flags.client_id.as_deref(),
        "--client-id",
        CLIENT_ID,
    );
    let client_secret = r.pick(
        "client secret",
        flags.client_secret.as_deref(),
        "--client-secret",
        CLIENT_SECRET,
    );
    let oauth_url = r.pick(
        "OAuth URL",
        flags.oauth_url.as_deref(),
        "--authorization-server-url",
        OAUTH_URL,
    );
    let audience = r.pick(
        "token audience",
        flags.audience.as_deref(),
        "--token-audience",
        AUDIENCE,
    );
    let scope = r.pick(
        "OAuth scope",
        flags.scope.as_deref(),
        "--token-scope",
        SCOPE,
    );
    let username = r.pick(
        "basic auth username",
        flags.basic_username.as_deref(),
        "--basic-auth-username",
        BASIC_USERNAME,
    );
    let password = r.pick(
        "basic auth password",
        flags.basic_password.as_deref(),
        "--basic-auth-password",
        BASIC_PASSWORD,
    );
    let strategy = r.pick(
        "auth strategy",
        flags.auth_strategy.as_deref(),
        "--auth-strategy",
        STRATEGY,
    );
    let tenant_ids = match &flags.tenant_ids {
        Some(list) => clean_list(list.iter().map(String::as_str)),
        None => match r.pick("tenants", None, "--tenant-ids", TENANT_IDS) {
            Some(list) => clean_list(list.split(',')),
            None => r
                .pick("tenants", None, "--tenant-ids", TENANT_ID)
                .map(|t| vec![t])
                .unwrap_or_default(),
        },
    };
    let has_oauth = client_id.is_some() || client_secret.is_some();
    let has_basic = username.is_some() || password.is_some();
    let strategy = match strategy.as_deref().map(str::to_ascii_uppercase).as_deref() {
        Some("NONE") => AuthStrategy::None,
        Some("OAUTH") => AuthStrategy::OAuth,
        Some("BASIC") => AuthStrategy::Basic,
        Some(_) => {
            return Err(format!(
                "CAMUNDA_AUTH_STRATEGY '{}' is not one of NONE, OAUTH, BASIC",
                strategy.as_deref().unwrap_or_default()
            ));
        }
        None if has_oauth && has_basic => {
            return Err(
                "both OAuth client credentials (CAMUNDA_CLIENT_ID/SECRET) and basic auth \
                 (CAMUNDA_BASIC_AUTH_USERNAME/PASSWORD) are set; set CAMUNDA_AUTH_STRATEGY to \
                 choose one"
                    .into(),
            );
        }
        None if has_oauth => AuthStrategy::OAuth,
        None if has_basic => AuthStrategy::Basic,
        None if oauth_url.is_some() => {
            return Err(
                "an OAuth URL is set without CAMUNDA_CLIENT_ID and CAMUNDA_CLIENT_SECRET".into(),
            );
        }
        None => AuthStrategy::None,
    };
    let (oauth, basic) = match strategy {
        AuthStrategy::None => (None, None),
        AuthStrategy::OAuth => {
            let (Some(client_id), Some(secret)) = (client_id, client_secret) else {
                return Err(
                    "OAuth needs both CAMUNDA_CLIENT_ID and CAMUNDA_CLIENT_SECRET \
                     (or ZEEBE_CLIENT_ID and ZEEBE_CLIENT_SECRET)"
                        .into(),
                );
            };
            let url = oauth_url.unwrap_or_else(|| {
                r.sources.push(Source {
                    setting: "OAuth URL",
                    name: format!("default ({SAAS_OAUTH_URL})"),
                    ignored: Vec::new(),
                });
                SAAS_OAUTH_URL.to_string()
            });
            let oauth = OAuthConfig {
                authorization_server_url: url,
                client_id,
                client_secret: secret.into(),
                audience,
                scope,
            };
            (Some(oauth), None)
        }
        AuthStrategy::Basic => {
            let (Some(username), Some(password)) = (username, password) else {
                return Err("basic auth needs both CAMUNDA_BASIC_AUTH_USERNAME and \
                     CAMUNDA_BASIC_AUTH_PASSWORD"
                    .into());
            };
            let basic = BasicAuth {
                username,
                password: password.into(),
            };
            (None, Some(basic))
        }
    };
    Ok(CamundaSettings {
        gateway: GatewayConfig {
            address,
            insecure,
            ca_certificate_path,
            oauth,
            basic,
        },
        strategy,
        rest_address,
        tenant_ids,
        sources: r.sources,
    })
}

fn parse_bool(text: &str, name: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("{name} must be true or false")),
    }
}

fn clean_list<'a>(items: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items.map(str::trim).filter(|i| !i.is_empty()) {
        if !out.iter().any(|o| o == item) {
            out.push(item.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests;
