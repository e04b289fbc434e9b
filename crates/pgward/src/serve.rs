//! `pgward serve -c pgward.yaml`: runs the proxy until SIGTERM/SIGINT (graceful
//! drain), reloading users and certificates on SIGHUP.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use pgward_proxy::{Config, Deps};
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Path to pgward.yaml.
    #[arg(short, long, default_value = "pgward.yaml")]
    config: PathBuf,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let format = if args.log_json {
        pgward_telemetry::LogFormat::Json
    } else {
        pgward_telemetry::LogFormat::Text
    };
    let config = Config::load(&args.config)?;
    let telemetry = install_telemetry(&config, format)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let served = runtime.block_on(serve(config));
    // Flush spans before exit (graceful shutdown exports what is buffered).
    telemetry.shutdown();
    served?;
    Ok(ExitCode::SUCCESS)
}

/// Logs and, with `telemetry.otlp_endpoint`, OTLP span export.
pub fn install_telemetry(
    config: &Config,
    log_format: pgward_telemetry::LogFormat,
) -> anyhow::Result<pgward_telemetry::TelemetryGuard> {
    pgward_telemetry::install(&pgward_telemetry::TelemetryConfig {
        otlp_endpoint: config.telemetry.otlp_endpoint.clone(),
        service_name: config.telemetry.service_name.clone(),
        log_format,
        default_filter: "info".to_owned(),
    })
    .context("installing telemetry")
}

/// Binds, runs and handles signals. Shared by `serve` and `dev`.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let deps = Deps::from_config(config)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let shutdown = CancellationToken::new();
    spawn_signal_handlers(deps.clone(), shutdown.clone())?;
    pgward_proxy::run(listener, deps, shutdown).await;
    Ok(())
}

fn spawn_signal_handlers(
    deps: std::sync::Arc<Deps>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { info!("SIGTERM: shutting down"); break; }
                _ = int.recv() => { info!("SIGINT: shutting down"); break; }
                _ = hup.recv() => match deps.reload() {
                    Ok(()) => info!("SIGHUP: users and certificates reloaded"),
                    Err(e) => error!(error = %e, "SIGHUP: reload failed, keeping the previous configuration"),
                },
            }
        }
        shutdown.cancel();
    });
    Ok(())
}
