use super::*;

#[test]
fn escaped_forms_are_masked_too() {
    let mask = SecretMask::new(vec!["pa\"ss\\wörd".to_string().into()]);
    assert_eq!(
        mask.apply(r#"/server/port: "pa\"ss\\wörd" is not of type "integer""#),
        r#"/server/port: "***" is not of type "integer""#
    );
    assert_eq!(
        mask.apply("invalid type: string \"pa\\\"ss\\\\wörd\""),
        "invalid type: string \"***\""
    );
}

#[test]
fn longer_secrets_are_masked_first() {
    let mask = SecretMask::new(vec!["abc".to_string().into(), "abcdef".to_string().into()]);
    assert_eq!(mask.apply("x abcdef y abc"), "x *** y ***");
}

/// Issue 21: a secret used in a host came back lower-cased in an incident, and the mask
/// matched its exact case only.
#[test]
fn any_case_is_masked() {
    let mask = SecretMask::new(vec!["Hunter2-Pass".to_string().into()]);
    assert_eq!(mask.apply("'hunter2-pass.exfil.test'"), "'***.exfil.test'");
    assert_eq!(mask.apply("HUNTER2-PASS"), "***");
    assert_eq!(mask.apply("hUnTeR2-pAsS!"), "***!");
    let unicode = SecretMask::new(vec!["Pässwörd".to_string().into()]);
    assert_eq!(unicode.apply("x pässwörd y PÄSSWÖRD"), "x *** y ***");
}

/// A secret in a URL or a form body is percent-encoded, wholly or in part, with either
/// hex case, and a space may be `+`.
#[test]
fn percent_encoded_forms_are_masked() {
    let mask = SecretMask::new(vec!["p@ss w/rd".to_string().into()]);
    for text in [
        "p%40ss%20w%2Frd",
        "p%40ss+w%2frd",
        "%70%40%73%73%20%77%2F%72%64",
        "P%40SS%20W%2FRD",
        "p@ss%20w/rd",
    ] {
        assert_eq!(
            mask.apply(&format!("url=https://h/{text}?x")),
            "url=https://h/***?x",
            "{text}"
        );
    }
    let unicode = SecretMask::new(vec!["pässwörd".to_string().into()]);
    assert_eq!(unicode.apply("a=p%C3%A4ssw%c3%b6rd&b"), "a=***&b");
    // A literal '%' in the secret is found written as itself or as %25.
    let percent = SecretMask::new(vec!["50%off".to_string().into()]);
    assert_eq!(percent.apply("50%off 50%25off 50%25OFF"), "*** *** ***");
}

/// A non-ASCII secret in a host name reaches messages in its IDNA (punycode) form.
#[test]
fn punycode_forms_are_masked() {
    let mask = SecretMask::new(vec!["Pässwörd".to_string().into()]);
    assert_eq!(
        mask.apply("cannot resolve 'xn--psswrd-bua1m.exfil.test'"),
        "cannot resolve '***.exfil.test'"
    );
    assert_eq!(mask.apply("XN--PSSWRD-BUA1M"), "***");
    let url = SecretMask::new(vec!["https://Bücher.example/token".to_string().into()]);
    assert_eq!(
        url.apply("'xn--bcher-kva.example' is not allowed"),
        "'***' is not allowed"
    );
    let dotted = SecretMask::new(vec!["bücher.example".to_string().into()]);
    assert_eq!(
        dotted.apply("host xn--bcher-kva.example:993"),
        "host ***:993"
    );
}

#[test]
fn text_without_a_secret_is_left_alone() {
    let mask = SecretMask::new(vec!["s3cr3t".to_string().into()]);
    let text = "100% sure, a+b = %73%33 s3cr3 ünïcödé";
    assert_eq!(mask.apply(text), text);
    assert!(SecretMask::default().apply(text) == text);
}
