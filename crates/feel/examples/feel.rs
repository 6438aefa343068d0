//! Evaluates expressions from the command line: `cargo run -p feel --example feel -- EXPR [SCOPE_JSON]`;
//! prints the result as JSON and the warnings.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(text) = args.first() else {
        eprintln!("usage: feel EXPR [SCOPE_JSON]");
        std::process::exit(2);
    };
    let scope: serde_json::Value = match args.get(1) {
        Some(s) => match serde_json::from_str(s) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("scope: {e}");
                std::process::exit(2);
            }
        },
        None => serde_json::json!({}),
    };
    match feel::Expression::parse(text).and_then(|e| e.evaluate_with_warnings(&scope)) {
        Ok(out) => {
            println!("{}", out.value.to_json());
            for w in out.warnings {
                eprintln!("warning: {w}");
            }
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
