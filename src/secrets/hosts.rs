//! A host is written out in the model, or is one secret as a whole; a secret is never part of
//! a host name a model writes.
//!
//! Why: a name is looked up before anything connects, and a lookup is a question to a DNS
//! server. `server.host: "{{secrets.MAIL_PASSWORD}}.exfil.test"` would hand the password to
//! whoever runs the DNS of `exfil.test`, whatever the host policy answers afterwards (and
//! under `EMAIL_ALLOWED_HOSTS=*` the name is allowed). A host kept in a secret as a whole
//! (`{{secrets.MAIL_HOST}}`) is the operator's text and is looked up as usual.
//!
//! The rule is decided on the text as typed, before anything is resolved, so it never depends
//! on a secret's value and its refusal never shows one: `/server/host` holds no placeholder or
//! exactly one and nothing else; in `/authentication/tokenEndpoint` the scheme is written out
//! and the URL's host holds no placeholder or is exactly one (a port may follow it), while a
//! placeholder may stand anywhere after the host (a tenant in the path) or for the whole URL.

use super::placeholders;

/// The fields whose text names a host the worker looks up, and whether the text is a URL.
const HOST_FIELDS: [(&str, bool); 12] = [
    ("/server/host", false),
    ("/authentication/tokenEndpoint", true),
    // The second server a reply or forward sends through, and the IMAP server a sent copy is
    // saved to.
    ("/smtp/server/host", false),
    ("/smtp/authentication/tokenEndpoint", true),
    ("/saveCopyTo/server/host", false),
    ("/saveCopyTo/authentication/tokenEndpoint", true),
    // Camunda's layout, served by the drop-in for its connector, and its email account
    // credential.
    ("/data/smtpConfig/smtpHost", false),
    ("/data/imapConfig/imapHost", false),
    ("/data/pop3Config/pop3Host", false),
    ("/emailAccountConfiguration/smtpHost", false),
    ("/emailAccountConfiguration/imapHost", false),
    ("/emailAccountConfiguration/pop3Host", false),
];

/// The problem with `text` at `pointer`, when it puts a secret inside a host name.
pub(super) fn secret_inside_a_host(pointer: &str, text: &str) -> Option<String> {
    let (_, is_url) = HOST_FIELDS.iter().find(|(field, _)| *field == pointer)?;
    let typed = text.trim();
    let mixed = if *is_url {
        url_host_mixes(typed)
    } else {
        mixes(typed)
    };
    mixed.then(|| {
        format!(
            "{pointer}: a secret inside a host name is never used, as looking the name up would \
             carry the secret to a DNS server; write the host out, or make the whole {} one \
             {{{{secrets.NAME}}}}",
            if *is_url { "URL or host" } else { "host" }
        )
    })
}

/// Whether `text` holds a placeholder and is not exactly one.
fn mixes(text: &str) -> bool {
    match placeholders(text).as_slice() {
        [] => false,
        [(span, _)] => *span != (0..text.len()),
        _ => true,
    }
}

fn url_host_mixes(typed: &str) -> bool {
    let found = placeholders(typed);
    let Some((first, _)) = found.first() else {
        return false;
    };
    if found.len() == 1 && first.start == 0 && first.end == typed.len() {
        return false;
    }
    // The scheme must be written out before any placeholder, or the host could lie anywhere.
    let Some(scheme_end) = typed.find("://").filter(|end| *end < first.start) else {
        return true;
    };
    let rest = &typed[scheme_end + 3..];
    // URL parsers end the authority at any of these (WHATWG also at a backslash).
    let authority = &rest[..rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len())];
    let host_and_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match host_and_port.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => host_and_port,
    };
    mixes(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(pointer: &str, text: &str) -> bool {
        secret_inside_a_host(pointer, text).is_some()
    }

    #[test]
    fn a_host_is_written_out_or_one_secret_as_a_whole() {
        for host in [
            "mail.example.com",
            "{{secrets.MAIL_HOST}}",
            " {{ secrets.MAIL_HOST }} ",
            "{{not.a.secret}}.example.com",
        ] {
            assert!(!refused("/server/host", host), "{host}");
        }
        for host in [
            "{{secrets.PW}}.exfil.test",
            "x{{secrets.PW}}",
            "{{secrets.A}}{{secrets.B}}",
            "mail.{{secrets.DOMAIN}}",
        ] {
            assert!(refused("/server/host", host), "{host}");
        }
        // Other fields may hold secrets anyhow.
        assert!(!refused("/authentication/password", "a{{secrets.PW}}b"));
        assert!(!refused("/server/hostname", "{{secrets.PW}}.exfil.test"));
    }

    #[test]
    fn a_token_endpoint_keeps_secrets_out_of_its_host() {
        let pointer = "/authentication/tokenEndpoint";
        for url in [
            "https://login.microsoftonline.com/{{secrets.TENANT}}/oauth2/v2.0/token",
            "{{secrets.TOKEN_URL}}",
            "https://{{secrets.TOKEN_HOST}}/token",
            "https://{{secrets.TOKEN_HOST}}:8443/token",
            "https://{{secrets.USER}}:{{secrets.PW}}@login.example.com/token",
            "https://login.example.com/token?key={{secrets.KEY}}",
        ] {
            assert!(!refused(pointer, url), "{url}");
        }
        for url in [
            "https://{{secrets.PW}}.exfil.test/token",
            "https://login{{secrets.PW}}/token",
            "https://{{secrets.PW}}.exfil.test",
            "https://u@{{secrets.PW}}.exfil.test:443/t",
            "https:{{secrets.PW}}.exfil.test/t",
            "{{secrets.SCHEME}}://{{secrets.PW}}/t",
            "https://{{secrets.PW}}.exfil.test\\token",
            "https://login.example.com:{{secrets.PORT}}/t",
        ] {
            assert!(refused(pointer, url), "{url}");
        }
    }
}
