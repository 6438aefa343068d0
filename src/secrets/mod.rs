//! `{{secrets.NAME}}` placeholders: resolved just before an operation runs, masked everywhere
//! after.
//!
//! Camunda's connector runtime resolves the same syntax, so models written for it keep working.
//! Unlike that runtime, placeholders are resolved only inside the connection settings
//! ([`SECRET_SCOPES`]): subjects, bodies, addresses, folders and criteria routinely carry text
//! from incoming mail, and a stranger who writes `{{secrets.MAIL_PASSWORD}}` into a subject
//! must get that text back, not the password.
//! Values come from environment variables with a prefix (so an operator decides which variables
//! a model may read; the whole environment is never exposed) or from files in a directory, the
//! way a Kubernetes Secret is mounted.

use std::fmt::Write as _;
use std::path::PathBuf;

mod hosts;
mod mask;
pub use mask::{SecretMask, mask_live};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::error::{EmailError, Result};

/// The only variables whose strings may hold `{{secrets.NAME}}` placeholders, as JSON
/// pointers: the connection settings, which a process author writes and mail never fills.
/// Besides the job's own connection, those of a second server an operation uses (a reply's
/// SMTP server, the IMAP server a sent copy is saved to). (The drop-in for Camunda's connector
/// names its own: its connection fields sit elsewhere.)
pub const SECRET_SCOPES: &[&str] = &[
    "/authentication",
    "/server",
    "/smtp/authentication",
    "/smtp/server",
    "/saveCopyTo/authentication",
    "/saveCopyTo/server",
];

/// Where secret values come from.
#[derive(Debug, Clone)]
pub struct SecretProvider {
    env_prefix: String,
    directory: Option<PathBuf>,
}

impl SecretProvider {
    pub fn new(env_prefix: impl Into<String>, directory: Option<PathBuf>) -> Self {
        SecretProvider {
            env_prefix: env_prefix.into(),
            directory,
        }
    }

    fn lookup(&self, name: &str) -> Option<SecretString> {
        if let Ok(value) = std::env::var(format!("{}{name}", self.env_prefix)) {
            return Some(value.into());
        }
        let directory = self.directory.as_ref()?;
        // A name with a path separator could read any file the worker can read.
        if name.contains(['/', '\\']) || name.starts_with('.') {
            return None;
        }
        let text = std::fs::read_to_string(directory.join(name)).ok()?;
        // Files made with `echo` end in a newline that is not part of the secret.
        let trimmed = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(&text);
        Some(trimmed.to_string().into())
    }

    /// Replaces every placeholder in the connection settings of `variables` (the top-level
    /// blocks named in [`SECRET_SCOPES`]), in place, and returns the values it used so that
    /// they can be masked in anything the job reports. Every other variable is left exactly
    /// as typed.
    pub fn resolve(&self, variables: &mut Value) -> Result<SecretMask> {
        self.resolve_in(variables, SECRET_SCOPES)
    }

    /// [`SecretProvider::resolve`] in the blocks at `scopes` (JSON pointers).
    pub fn resolve_in(&self, variables: &mut Value, scopes: &[&str]) -> Result<SecretMask> {
        let mut used = Vec::new();
        // Every problem, each with its pointer: a secret with no value, a secret in a host.
        let mut missing = Vec::new();
        for scope in scopes {
            if let Some(block) = block_mut(variables, scope) {
                let mut pointer = scope.to_string();
                self.resolve_value(block, &mut pointer, &mut used, &mut missing);
            }
        }
        if missing.is_empty() {
            Ok(SecretMask::new(used))
        } else {
            Err(EmailError::invalid_input(missing.join("; ")))
        }
    }

    fn resolve_value(
        &self,
        value: &mut Value,
        pointer: &mut String,
        values: &mut Vec<SecretString>,
        missing: &mut Vec<String>,
    ) {
        match value {
            Value::String(text) if text.contains("{{") => {
                if let Some(problem) = hosts::secret_inside_a_host(pointer, text) {
                    missing.push(problem);
                    return;
                }
                match substitute(text, |name| self.lookup(name)) {
                    Ok((resolved, used)) => {
                        *text = resolved;
                        values.extend(used);
                    }
                    Err(name) => missing.push(format!(
                        "{}: secret '{name}' is not defined (looked for the environment variable {}{name}{})",
                        if pointer.is_empty() { "/" } else { pointer.as_str() },
                        self.env_prefix,
                        if self.directory.is_some() {
                            " and a file of that name in the secrets directory"
                        } else {
                            ""
                        }
                    )),
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    let len = pointer.len();
                    let _ = write!(pointer, "/{index}");
                    self.resolve_value(item, pointer, values, missing);
                    pointer.truncate(len);
                }
            }
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    let len = pointer.len();
                    pointer.push('/');
                    if key.contains(['~', '/']) {
                        pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                    } else {
                        pointer.push_str(key);
                    }
                    self.resolve_value(item, pointer, values, missing);
                    pointer.truncate(len);
                }
            }
            _ => {}
        }
    }
}

/// The block a scope names (a JSON pointer of plain names, as [`SECRET_SCOPES`]), found
/// without the copies `Value::pointer_mut` makes of each name to unescape it.
/// Anything else (no leading `/`, an escaped name) finds nothing rather than the whole
/// variables, where a stranger's subject would be resolved.
fn block_mut<'v>(variables: &'v mut Value, scope: &str) -> Option<&'v mut Value> {
    if !scope.starts_with('/') || scope.contains('~') {
        return None;
    }
    scope
        .split('/')
        .skip(1)
        .try_fold(variables, |value, name| value.get_mut(name))
}

/// The placeholders in `text`: where each `{{secrets.NAME}}` (spaces allowed inside the
/// braces) starts and ends, and its name. Braces that are not a placeholder (a template
/// language's, say) are passed over.
fn placeholders(text: &str) -> Vec<(std::ops::Range<usize>, &str)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(start) = text[from..].find("{{").map(|s| from + s) {
        let Some(end) = text[start + 2..].find("}}").map(|e| start + 2 + e) else {
            break;
        };
        if let Some(name) = text[start + 2..end].trim().strip_prefix("secrets.")
            && is_secret_name(name)
        {
            found.push((start..end + 2, name));
        }
        from = end + 2;
    }
    found
}

/// Replaces the placeholders in `text`. Returns the new text and the values used, or the name
/// of the first secret that has no value.
fn substitute(
    text: &str,
    lookup: impl Fn(&str) -> Option<SecretString>,
) -> std::result::Result<(String, Vec<SecretString>), String> {
    let mut out = String::with_capacity(text.len());
    let mut used = Vec::new();
    let mut copied = 0;
    for (span, name) in placeholders(text) {
        let value = lookup(name).ok_or_else(|| name.to_string())?;
        out.push_str(&text[copied..span.start]);
        out.push_str(value.expose_secret());
        used.push(value);
        copied = span.end;
    }
    out.push_str(&text[copied..]);
    Ok((out, used))
}

fn is_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provider_with(dir: Option<PathBuf>) -> SecretProvider {
        SecretProvider::new("EMAIL_CONNECTOR_UNIT_TEST_", dir)
    }

    #[test]
    fn resolves_only_in_the_connection_settings_and_masks() {
        // SAFETY: the variable name is unique to this test, so no other thread reads it.
        unsafe { std::env::set_var("EMAIL_CONNECTOR_UNIT_TEST_PW", "s3cr3t!") };
        let mut vars = json!({
            "authentication": { "password": "{{secrets.PW}}", "username": "u" },
            "server": { "serverCertificate": "a {{ secrets.PW }} b", "list": ["{{secrets.PW}}"] },
            "subject": "Re: {{secrets.PW}}",
            "list": ["a {{ secrets.PW }} b"],
            "criteria": { "field": "SUBJECT", "value": "{{secrets.NOT_EVEN_DEFINED}}" },
            "other": "{{notASecret}} and {{secrets.}}",
            "saveCopyTo": { "folder": "{{secrets.PW}}", "authentication": { "password": "{{secrets.PW}}" } },
            "smtp": { "server": { "host": "smtp.example.test" }, "body": "{{secrets.PW}}" }
        });
        let mask = provider_with(None).resolve(&mut vars).unwrap();
        assert_eq!(vars["saveCopyTo"]["authentication"]["password"], "s3cr3t!");
        assert_eq!(vars["saveCopyTo"]["folder"], "{{secrets.PW}}");
        assert_eq!(vars["smtp"]["body"], "{{secrets.PW}}");
        assert_eq!(vars["authentication"]["password"], "s3cr3t!");
        assert_eq!(vars["server"]["serverCertificate"], "a s3cr3t! b");
        assert_eq!(vars["server"]["list"][0], "s3cr3t!");
        assert_eq!(vars["subject"], "Re: {{secrets.PW}}");
        assert_eq!(vars["list"][0], "a {{ secrets.PW }} b");
        assert_eq!(vars["criteria"]["value"], "{{secrets.NOT_EVEN_DEFINED}}");
        assert_eq!(vars["other"], "{{notASecret}} and {{secrets.}}");
        assert_eq!(
            mask.apply("login failed for s3cr3t! (s3cr3t!)"),
            "login failed for *** (***)"
        );
        let mut response = json!({ "subject": "s3cr3t!", "list": [{ "x": "a s3cr3t!" }], "n": 1 });
        mask.apply_to_value(&mut response);
        assert_eq!(
            response,
            json!({ "subject": "***", "list": [{ "x": "a ***" }], "n": 1 })
        );
    }

    /// Issue 21: `server.host: "{{secrets.PW}}.exfil.test"` sent the password to a DNS server.
    #[test]
    fn a_secret_inside_a_host_is_refused_without_its_value() {
        // SAFETY: the variable name is unique to this test, so no other thread reads it.
        unsafe { std::env::set_var("EMAIL_CONNECTOR_UNIT_TEST_HOSTPW", "Hunter2") };
        let mut vars = json!({ "server": { "host": "{{secrets.HOSTPW}}.exfil.test" },
            "authentication": { "tokenEndpoint": "https://{{secrets.HOSTPW}}.exfil.test/t" } });
        let err = provider_with(None).resolve(&mut vars).unwrap_err();
        assert_eq!(err.code, crate::error::ErrorCode::InvalidInput);
        assert!(err.message.contains("/server/host: "), "{}", err.message);
        assert!(
            err.message.contains("/authentication/tokenEndpoint: "),
            "{}",
            err.message
        );
        assert!(
            !err.message.to_lowercase().contains("hunter2"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("exfil"), "{}", err.message);
    }

    /// The second server a reply or a saved copy uses is a host as much as the job's own.
    #[test]
    fn a_secret_inside_a_second_servers_host_is_refused_too() {
        // SAFETY: the variable name is unique to this test, so no other thread reads it.
        unsafe { std::env::set_var("EMAIL_CONNECTOR_UNIT_TEST_HOSTPW2", "Hunter3") };
        let mut vars = json!({
            "smtp": { "server": { "host": "{{secrets.HOSTPW2}}.exfil.test" },
                "authentication": { "tokenEndpoint": "https://{{secrets.HOSTPW2}}.exfil.test/t" } },
            "saveCopyTo": { "server": { "host": "x{{secrets.HOSTPW2}}.exfil.test" } } });
        let err = provider_with(None).resolve(&mut vars).unwrap_err();
        for pointer in [
            "/smtp/server/host: ",
            "/smtp/authentication/tokenEndpoint: ",
            "/saveCopyTo/server/host: ",
        ] {
            assert!(err.message.contains(pointer), "{pointer}: {}", err.message);
        }
        assert!(
            !err.message.to_lowercase().contains("hunter3"),
            "{}",
            err.message
        );
    }

    #[test]
    fn resolves_from_files_without_the_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("secrets-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("FILE_PW"), "from-file\n").unwrap();
        let mut vars = json!({ "authentication": { "password": "{{secrets.FILE_PW}}" } });
        provider_with(Some(dir.clone())).resolve(&mut vars).unwrap();
        assert_eq!(vars["authentication"]["password"], "from-file");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_secret_names_the_pointer_and_never_a_value() {
        let mut vars = json!({ "server": { "host": "{{secrets.NOPE_NOT_SET}}" } });
        let err = provider_with(None).resolve(&mut vars).unwrap_err();
        assert_eq!(err.code, crate::error::ErrorCode::InvalidInput);
        assert!(err.message.contains("/server/host"), "{}", err.message);
        assert!(err.message.contains("NOPE_NOT_SET"), "{}", err.message);
    }

    #[test]
    fn path_like_names_never_read_files() {
        let provider = provider_with(Some(PathBuf::from("/etc")));
        assert!(provider.lookup("../etc/passwd").is_none());
        assert!(provider.lookup(".hidden").is_none());
    }

    /// Every scope of both variable layouts names a block, and a scope that is not a plain
    /// pointer finds nothing, never the whole variables (where a subject would be resolved).
    #[test]
    fn scopes_find_their_blocks_and_nothing_else() {
        for scope in SECRET_SCOPES.iter().chain(crate::dropin::SECRET_SCOPES) {
            assert!(scope.starts_with('/') && !scope.contains('~'), "{scope}");
        }
        let mut variables = json!({ "authentication": { "password": "p" }, "subject": "s" });
        assert_eq!(
            block_mut(&mut variables, "/authentication"),
            Some(&mut json!({ "password": "p" }))
        );
        for scope in ["authentication", "", "/a~1b", "/subject/x"] {
            assert!(block_mut(&mut variables, scope).is_none(), "{scope}");
        }
    }
}
