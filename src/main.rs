//! The command line: `run` the worker, `invoke` one operation, `check` a connection, write the
//! element `templates` and the operations reference (`docs`).

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use serde_json::Value;

/// mimalloc instead of glibc's malloc: see `email_connector::allocator`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use email_connector::config::{HostPolicyArgs, OperationArgs, RunArgs, SecretArgs};
use email_connector::docs::generated::{Generated, write_or_check};
use email_connector::gateway::GatewayClient;
use email_connector::http::HttpState;
use email_connector::registry::{JobContext, Registry};
use email_connector::services::Services;
use email_connector::worker::{Worker, error_message, execute};

#[derive(Parser)]
#[command(
    name = "email-connector",
    version,
    about = "An email connector for Camunda 8 (SMTP, IMAP, POP3)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What `invoke` and `check` take: an operation and the variables a job would carry.
#[derive(clap::Args)]
struct VariablesArgs {
    /// Operation (`smtp:send`) or job type (`email:smtp:send:1`); `check` also takes a
    /// protocol (`smtp`).
    operation: String,
    /// Variables JSON file, or `-` for standard input.
    file: String,
    #[command(flatten)]
    secrets: SecretArgs,
    #[command(flatten)]
    host_policy: HostPolicyArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the job worker against a Zeebe gateway until SIGTERM or SIGINT.
    Run(Box<RunArgs>),
    /// Run one operation on a variables JSON file (`-` for stdin) and print the response.
    Invoke(VariablesArgs),
    /// Test the connection described by a variables JSON file, step by step.
    Check(VariablesArgs),
    /// Write the Camunda Modeler element templates (one per protocol) into a folder, or with
    /// `--check` fail when the folder's files differ from what this build generates.
    Templates {
        /// Folder for the `email-<protocol>.json` files.
        #[arg(long, default_value = "element-templates")]
        out: String,
        /// Compare instead of writing; exit 1 when a file is missing or differs.
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        operations: OperationArgs,
    },
    /// Write the operations reference (`operations.md`, from the operations' input schemas)
    /// into a folder, or with `--check` fail when the folder's file differs from what this
    /// build generates.
    Docs {
        /// Folder for `operations.md`.
        #[arg(long, default_value = "docs")]
        out: String,
        /// Compare instead of writing; exit 1 when the file is missing or differs.
        #[arg(long)]
        check: bool,
    },
    /// List the job types this build serves.
    JobTypes {
        #[command(flatten)]
        operations: OperationArgs,
    },
}

fn read_variables(file: &str) -> Result<Value, String> {
    let text = if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        text
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?
    };
    let value: Value =
        serde_json::from_str(&text).map_err(|e| format!("{file} is not JSON: {e}"))?;
    if !value.is_object() {
        return Err(format!("{file} must hold a JSON object of variables"));
    }
    Ok(value)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn registry(operations: &OperationArgs) -> Result<Registry, String> {
    let mut registry = Registry::standard(
        &operations.job_type_prefix,
        operations.enabled().as_deref(),
        &operations.settings(),
    )?;
    if let Some(job_type) = operations.camunda_job_type.as_deref() {
        registry.serve_camunda_job_type(job_type)?;
    }
    Ok(registry)
}

async fn run(args: RunArgs) -> Result<(), String> {
    let policy = args.host_policy.policy()?;
    let registry = if args.inbound_only {
        Registry::watchers_only(&args.operations.job_type_prefix)?
    } else {
        registry(&args.operations)?
    };
    // A broken watchers file stops the start: a watcher left out would lose mail unnoticed.
    let watchers = match &args.inbound_config {
        Some(path) if !path.trim().is_empty() => {
            email_connector::inbound::config::load(path, &args.secrets.provider(), &policy)?
        }
        _ => Vec::new(),
    };
    let camunda = args.camunda_settings()?;
    // Masked in every log line for the life of the process, whoever logs them.
    email_connector::secrets::SecretMask::new(camunda.gateway.secrets()).keep_for_process();
    camunda.log_sources();
    if camunda.rest_address.is_none()
        && let Some(watcher) = watchers.iter().find(|w| w.as_documents)
    {
        return Err(format!(
            "watcher '{}': attachmentsAs: document needs Camunda's REST API; set CAMUNDA_REST_ADDRESS",
            watcher.name
        ));
    }
    let gateway = GatewayClient::connect_lazy(&camunda.gateway)?;
    // Everything the jobs and the watchers share, built once from the settings.
    let mut services =
        Services::new(policy).with_max_document_bytes(args.operations.max_document_bytes);
    if let Some(rest) = &camunda.rest_address {
        let store = email_connector::documents::DocumentStore::new(
            rest,
            gateway.credentials().clone(),
            camunda.gateway.ca_certificate_path.as_deref(),
        )?;
        tracing::info!(endpoint = store.endpoint(), "document store configured");
        services = services.with_document_store(store);
    }
    let services = Arc::new(services);
    let registry = Arc::new(registry.with_services(services.clone()));
    tracing::info!(
        address = gateway.address(),
        credentials = %gateway.credentials().describe(),
        tenants = %tenants_text(&camunda.tenant_ids),
        job_types = registry.job_types().collect::<Vec<_>>().join(","),
        max_jobs_active = args.max_jobs_active,
        "email connector starting"
    );
    let mut settings = args.worker_settings();
    settings.tenant_ids = camunda.tenant_ids.clone();
    let expected_streams = if settings.streaming {
        registry.entries().len()
    } else {
        0
    };
    let worker = Worker::new(gateway.clone(), registry.clone(), settings);
    let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
    let discovery = model_discovery(&args, &camunda, &gateway)?;
    let (inbound, mut watcher_tasks) = email_connector::inbound::start(
        watchers,
        &gateway,
        &services,
        args.operations.settings().read_limits(),
        &worker.metrics(),
        &http_stopped,
    );
    if let Some((discovery, settings)) = discovery {
        let shared = email_connector::inbound::model::Shared {
            gateway: gateway.clone(),
            services: services.clone(),
            limits: args.operations.settings().read_limits(),
            metrics: worker.metrics(),
            status: inbound.clone(),
            secrets: args.secrets.provider(),
            policy: services.policy().clone(),
        };
        watcher_tasks.push(tokio::spawn(email_connector::inbound::model::run(
            discovery,
            settings,
            shared,
            http_stopped.clone(),
        )));
    }
    if args.http_port != 0 {
        let address = std::net::SocketAddr::new(args.http_address, args.http_port);
        let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| {
            format!("cannot listen on {address} for /healthz, /readyz and /metrics: {e}")
        })?;
        tracing::info!(%address, "serving /healthz, /readyz and /metrics");
        let state = HttpState {
            status: worker.status(),
            metrics: worker.metrics(),
            registry: registry.clone(),
            expected_streams,
            inbound,
        };
        tokio::spawn(email_connector::http::serve(listener, state, http_stopped));
    }
    worker.run(shutdown_signal()).await;
    let _ = stop_http.send(true);
    for task in watcher_tasks {
        let _ = task.await;
    }
    registry.shut_down().await;
    Ok(())
}

/// The discovery of inbound elements in deployed processes, when it is turned on.
fn model_discovery(
    args: &RunArgs,
    camunda: &email_connector::gateway::settings::CamundaSettings,
    gateway: &GatewayClient,
) -> Result<
    Option<(
        email_connector::inbound::model::rest::Discovery,
        email_connector::inbound::model::Settings,
    )>,
    String,
> {
    use email_connector::inbound::model;
    if !args.inbound_from_models {
        return Ok(None);
    }
    let rest = camunda.rest_address.as_deref().ok_or(
        "EMAIL_INBOUND_FROM_MODELS needs Camunda's REST API to find the deployed processes; \
         set CAMUNDA_REST_ADDRESS",
    )?;
    let interval = email_connector::job::parse_iso8601_duration(&args.inbound_discovery_interval)
        .map_err(|e| format!("EMAIL_INBOUND_DISCOVERY_INTERVAL: {e}"))?;
    if interval < std::time::Duration::from_millis(100) {
        return Err("EMAIL_INBOUND_DISCOVERY_INTERVAL: at least PT0.1S".into());
    }
    let mut types = vec![
        model::CAMUNDA_INBOUND_TYPE.to_string(),
        model::OUR_INBOUND_TYPE.to_string(),
    ];
    for extra in &args.inbound_model_types {
        let extra = extra.trim();
        if !extra.is_empty() && !types.iter().any(|t| t == extra) {
            types.push(extra.to_string());
        }
    }
    let discovery = model::rest::Discovery::new(
        rest,
        gateway.credentials().clone(),
        camunda.gateway.ca_certificate_path.as_deref(),
    )?;
    let tenants = camunda.tenant_ids.clone();
    Ok(Some((
        discovery,
        model::Settings {
            interval,
            types,
            tenants,
        },
    )))
}

fn tenants_text(tenants: &[String]) -> String {
    if tenants.is_empty() {
        "<default>".into()
    } else {
        tenants.join(",")
    }
}

async fn invoke(
    operation: String,
    file: String,
    secrets: SecretArgs,
    services: Services,
) -> Result<(), String> {
    let registry =
        Registry::standard("email", None, &Default::default())?.with_services(Arc::new(services));
    let entry = registry
        .find(&operation)
        .ok_or_else(|| unknown_operation(&registry, &operation))?;
    let variables = read_variables(&file)?;
    let job = JobContext::with_services(registry.services().clone());
    let (result, mask) = execute(entry, variables, job, &secrets.provider()).await;
    match result {
        Ok(outcome) => {
            let text =
                serde_json::to_string_pretty(&outcome.response).map_err(|e| e.to_string())?;
            println!("{text}");
            if let Some(after) = outcome.after_completion {
                after.commit().await;
            }
            Ok(())
        }
        Err(e) => Err(error_message(&e, entry.operation.name(), &mask)),
    }
}

async fn check(
    operation: String,
    file: String,
    secrets: SecretArgs,
    services: Services,
) -> Result<(), String> {
    let registry = Registry::standard("email", None, &Default::default())?;
    let entry = registry
        .find(&operation)
        .or_else(|| {
            registry
                .entries()
                .iter()
                .find(|e| e.operation.protocol().name() == operation)
        })
        .ok_or_else(|| unknown_operation(&registry, &operation))?;
    let mut variables = read_variables(&file)?;
    let mask = secrets
        .provider()
        .resolve(&mut variables)
        .map_err(|e| e.to_string())?;
    let checked = email_connector::registry::check_connection(
        &services,
        entry.operation.protocol(),
        &variables,
    );
    match checked.await {
        Ok(steps) => {
            for step in steps {
                println!("ok   {}", mask.apply(&step));
            }
            Ok(())
        }
        Err(e) => Err(error_message(&e, entry.operation.name(), &mask)),
    }
}

fn templates(out: &str, check: bool, operations: &OperationArgs) -> Result<(), String> {
    // Camunda's job type is modelled with Camunda's own templates, never with ours.
    let operations = &OperationArgs {
        camunda_job_type: None,
        ..operations.clone()
    };
    let files: Vec<Generated> = email_connector::templates::generate(&registry(operations)?)?
        .into_iter()
        .map(|template| Generated {
            text: template.text(),
            file_name: template.file_name,
        })
        .collect();
    write_generated(out, &files, check, "templates")
}

fn docs(out: &str, check: bool) -> Result<(), String> {
    let registry = Registry::standard("email", None, &Default::default())?;
    write_generated(
        out,
        &email_connector::docs::generate(&registry),
        check,
        "docs",
    )
}

fn write_generated(
    out: &str,
    files: &[Generated],
    check: bool,
    command: &str,
) -> Result<(), String> {
    for path in write_or_check(out, files, check, command)? {
        println!("{path}");
    }
    Ok(())
}

fn unknown_operation(registry: &Registry, name: &str) -> String {
    let known: Vec<&str> = registry
        .entries()
        .iter()
        .map(|e| e.operation.name())
        .collect();
    format!("unknown operation '{name}'; known: {}", known.join(", "))
}

/// The stack of each runtime thread (the default is 2 MiB).
const WORKER_STACK_BYTES: usize = 16 * 1024 * 1024;

fn main() -> ExitCode {
    email_connector::allocator::return_freed_memory_at_once();
    let cli = Cli::parse();
    email_connector::logging::init();
    // Parsers we do not own (imap-proto on a server's BODYSTRUCTURE, mail-parser on a message)
    // recurse over nesting a hostile peer chooses; a stack overflow aborts the whole process,
    // every job in flight with it. Our own code bounds its depth; a larger stack (address
    // space only, touched pages cost memory) gives the others headroom.
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.thread_stack_size(WORKER_STACK_BYTES).enable_all();
    if let Command::Run(args) = &cli.command
        && args.worker_threads > 0
    {
        builder.worker_threads(usize::from(args.worker_threads));
    }
    let runtime = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run(*args).await,
            Command::Invoke(args) => {
                let services = Services::new(args.host_policy.policy()?);
                // On a runtime thread, whose stack is sized for the parsers above; the main
                // thread's is the system's (often 8 MiB), and the operation runs in the task
                // that awaits it.
                tokio::spawn(invoke(args.operation, args.file, args.secrets, services))
                    .await
                    .map_err(|e| format!("the operation failed unexpectedly: {e}"))?
            }
            Command::Check(args) => {
                let services = Services::new(args.host_policy.policy()?);
                check(args.operation, args.file, args.secrets, services).await
            }
            Command::Templates {
                out,
                check,
                operations,
            } => templates(&out, check, &operations),
            Command::Docs { out, check } => docs(&out, check),
            Command::JobTypes { operations } => {
                for job_type in registry(&operations)?.job_types() {
                    println!("{job_type}");
                }
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
