use secrecy::ExposeSecret;

use super::*;

fn resolved(pairs: &[(&str, &str)]) -> CamundaSettings {
    resolve(
        &Flags::default(),
        &Environment::from_pairs(pairs.iter().copied()),
    )
    .unwrap()
}

fn refused(pairs: &[(&str, &str)]) -> String {
    resolve(
        &Flags::default(),
        &Environment::from_pairs(pairs.iter().copied()),
    )
    .unwrap_err()
}

#[test]
fn address_newer_name_wins_and_the_older_is_reported() {
    let s = resolved(&[
        ("ZEEBE_ADDRESS", "old:26500"),
        ("ZEEBE_GRPC_ADDRESS", "grpc://new:26500"),
    ]);
    assert_eq!(s.gateway.address, "grpc://new:26500");
    let source = s.sources.iter().find(|s| s.setting == "address").unwrap();
    assert_eq!(source.name, "ZEEBE_GRPC_ADDRESS");
    assert_eq!(source.ignored, vec!["ZEEBE_ADDRESS".to_string()]);
    assert_eq!(resolved(&[]).gateway.address, "http://localhost:26500");
    let s = resolved(&[("ZEEBE_ADDRESS", "old:26500")]);
    assert_eq!(s.gateway.address, "old:26500");
}

#[test]
fn a_flag_beats_every_variable() {
    let flags = Flags {
        address: Some("grpc://flag:1".into()),
        ..Flags::default()
    };
    let env = Environment::from_pairs([("ZEEBE_GRPC_ADDRESS", "grpc://env:1")]);
    let s = resolve(&flags, &env).unwrap();
    assert_eq!(s.gateway.address, "grpc://flag:1");
    assert_eq!(s.sources[0].name, "--address");
    assert_eq!(s.sources[0].ignored, vec!["ZEEBE_GRPC_ADDRESS".to_string()]);
}

#[test]
fn oauth_by_either_name_set() {
    let s = resolved(&[
        ("CAMUNDA_CLIENT_ID", "new-id"),
        ("CAMUNDA_CLIENT_SECRET", "new-secret"),
        ("CAMUNDA_OAUTH_URL", "https://idp/token"),
        ("CAMUNDA_TOKEN_AUDIENCE", "zeebe-api"),
        ("CAMUNDA_OAUTH_SCOPE", "camunda"),
        ("ZEEBE_CLIENT_ID", "old-id"),
    ]);
    assert_eq!(s.strategy, AuthStrategy::OAuth);
    let oauth = s.gateway.oauth.unwrap();
    assert_eq!(oauth.client_id, "new-id");
    assert_eq!(oauth.client_secret.expose_secret(), "new-secret");
    assert_eq!(oauth.authorization_server_url, "https://idp/token");
    assert_eq!(oauth.audience.as_deref(), Some("zeebe-api"));
    assert_eq!(oauth.scope.as_deref(), Some("camunda"));
    assert!(s.gateway.basic.is_none());

    let s = resolved(&[
        ("ZEEBE_CLIENT_ID", "old-id"),
        ("ZEEBE_CLIENT_SECRET", "old-secret"),
        ("ZEEBE_AUTHORIZATION_SERVER_URL", "https://old/token"),
        ("ZEEBE_TOKEN_AUDIENCE", "aud"),
        ("ZEEBE_TOKEN_SCOPE", "sc"),
    ]);
    let oauth = s.gateway.oauth.unwrap();
    assert_eq!(oauth.client_id, "old-id");
    assert_eq!(oauth.authorization_server_url, "https://old/token");
    assert_eq!(oauth.scope.as_deref(), Some("sc"));
}

#[test]
fn oauth_url_defaults_to_saas_as_the_sdks_do() {
    let s = resolved(&[("CAMUNDA_CLIENT_ID", "a"), ("CAMUNDA_CLIENT_SECRET", "b")]);
    assert_eq!(
        s.gateway.oauth.unwrap().authorization_server_url,
        SAAS_OAUTH_URL
    );
}

#[test]
fn basic_auth_is_inferred() {
    let s = resolved(&[
        ("CAMUNDA_BASIC_AUTH_USERNAME", "connector"),
        ("CAMUNDA_BASIC_AUTH_PASSWORD", "connector"),
    ]);
    assert_eq!(s.strategy, AuthStrategy::Basic);
    let basic = s.gateway.basic.unwrap();
    assert_eq!(basic.username, "connector");
    assert!(s.gateway.oauth.is_none());
}

#[test]
fn strategy_choices_and_contradictions() {
    let both = [
        ("CAMUNDA_BASIC_AUTH_USERNAME", "u"),
        ("CAMUNDA_BASIC_AUTH_PASSWORD", "p-secret"),
        ("CAMUNDA_CLIENT_ID", "id"),
        ("CAMUNDA_CLIENT_SECRET", "c-secret"),
    ];
    let error = refused(&both);
    assert!(error.contains("CAMUNDA_AUTH_STRATEGY"), "{error}");
    assert!(!error.contains("secret\"") && !error.contains("p-secret"));
    let mut chosen = both.to_vec();
    chosen.push(("CAMUNDA_AUTH_STRATEGY", "basic"));
    assert_eq!(resolved(&chosen).strategy, AuthStrategy::Basic);
    chosen.pop();
    chosen.push(("CAMUNDA_AUTH_STRATEGY", "NONE"));
    let none = resolved(&chosen);
    assert!(none.gateway.oauth.is_none() && none.gateway.basic.is_none());
    assert!(refused(&[("CAMUNDA_AUTH_STRATEGY", "kerberos")]).contains("kerberos"));
    assert!(refused(&[("CAMUNDA_AUTH_STRATEGY", "BASIC")]).contains("USERNAME"));
    assert!(refused(&[("CAMUNDA_CLIENT_ID", "id")]).contains("CLIENT_SECRET"));
    assert!(refused(&[("CAMUNDA_BASIC_AUTH_USERNAME", "u")]).contains("PASSWORD"));
    assert!(refused(&[("CAMUNDA_OAUTH_URL", "https://x")]).contains("CLIENT_ID"));
}

#[test]
fn tenants_from_the_list_or_the_single_names() {
    assert!(resolved(&[]).tenant_ids.is_empty());
    assert_eq!(
        resolved(&[("CAMUNDA_TENANT_ID", "t1")]).tenant_ids,
        vec!["t1"]
    );
    assert_eq!(
        resolved(&[
            ("CAMUNDA_TENANT_ID", "old"),
            ("CAMUNDA_DEFAULT_TENANT_ID", "t2")
        ])
        .tenant_ids,
        vec!["t2"]
    );
    assert_eq!(
        resolved(&[
            ("CAMUNDA_TENANT_IDS", " t1, t2,,t1 "),
            ("CAMUNDA_TENANT_ID", "t9")
        ])
        .tenant_ids,
        vec!["t1", "t2"]
    );
}

#[test]
fn rest_address_ca_and_insecure() {
    let s = resolved(&[
        ("ZEEBE_REST_ADDRESS", "http://old:8080"),
        ("CAMUNDA_REST_ADDRESS", "http://camunda:8080"),
        ("ZEEBE_CA_CERTIFICATE_PATH", "/ca.pem"),
        ("ZEEBE_INSECURE_CONNECTION", "true"),
    ]);
    assert_eq!(s.rest_address.as_deref(), Some("http://camunda:8080"));
    assert_eq!(
        s.gateway.ca_certificate_path.as_deref(),
        Some(Path::new("/ca.pem"))
    );
    assert_eq!(s.gateway.insecure, Some(true));
    assert!(refused(&[("ZEEBE_INSECURE_CONNECTION", "maybe")]).contains("true or false"));
}

/// The file the SaaS console offers for download ("Env Vars" tab), shape kept, values made up.
const CONSOLE_ENV: &str = "\
# Camunda cluster credentials
export ZEEBE_GRPC_ADDRESS='grpcs://0a1b2c3d.bru-2.zeebe.camunda.io:443'
export ZEEBE_REST_ADDRESS='https://bru-2.zeebe.camunda.io/0a1b2c3d'
export CAMUNDA_CLIENT_ID='Xy_client-Id.1'
export CAMUNDA_CLIENT_SECRET='s3cr3t~with=equals'
export CAMUNDA_OAUTH_URL='https://login.cloud.camunda.io/oauth/token'
export CAMUNDA_TOKEN_AUDIENCE=\"zeebe.camunda.io\"
CAMUNDA_CLUSTER_ID=0a1b2c3d # not ours
";

#[test]
fn a_console_env_file_reads_unchanged() {
    let vars = parse_env_file(CONSOLE_ENV);
    assert_eq!(vars["CAMUNDA_CLIENT_SECRET"], "s3cr3t~with=equals");
    assert_eq!(vars["CAMUNDA_TOKEN_AUDIENCE"], "zeebe.camunda.io");
    assert_eq!(vars["CAMUNDA_CLUSTER_ID"], "0a1b2c3d");
    let env = Environment { vars };
    let s = resolve(&Flags::default(), &env).unwrap();
    assert_eq!(
        s.gateway.resolved_url().unwrap(),
        (
            "https://0a1b2c3d.bru-2.zeebe.camunda.io:443".to_string(),
            true
        )
    );
    assert_eq!(
        s.rest_address.as_deref(),
        Some("https://bru-2.zeebe.camunda.io/0a1b2c3d")
    );
    let oauth = s.gateway.oauth.unwrap();
    assert_eq!(oauth.client_id, "Xy_client-Id.1");
    assert_eq!(oauth.audience.as_deref(), Some("zeebe.camunda.io"));
}
