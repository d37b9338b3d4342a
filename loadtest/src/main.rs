//! `switchboard-loadgen`: parses the command line, builds the run from it, runs it until done
//! or Ctrl-C, prints the report and exits with its verdict. Everything else is in the library.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use switchboard_loadgen::cli::{BackendArgs, Cli, Command, EmulateArgs, RunArgs};
use switchboard_loadgen::client::{Targets, WebhookClient, check_reachable, parse_target};
use switchboard_loadgen::emulator::{self, Emulator};
use switchboard_loadgen::player::Platform;
use switchboard_loadgen::progress::Settings;
use switchboard_loadgen::report::Report;
use switchboard_loadgen::stats::Stats;
use switchboard_loadgen::{compare, html, ids, load};

/// Exit status of a run with errors beyond the tolerance.
const EXIT_ERRORS: u8 = 1;
/// Exit status of a usage or start-up error (clap uses it too).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&format!("cannot start the async runtime: {err}")),
    };
    let result = match cli.command {
        Some(Command::Emulate(args)) => runtime.block_on(emulate(args)),
        Some(Command::Backend(args)) => runtime.block_on(backend(args)),
        None => match &cli.run.compare {
            Some(files) => compare_reports(files),
            None => runtime.block_on(load_run(cli.run)),
        },
    };
    match result {
        Ok(code) => code,
        Err(message) => fail(&message),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("switchboard-loadgen: {message}");
    ExitCode::from(EXIT_USAGE)
}

async fn shutdown() {
    // If the handler cannot be installed, run to the end instead of stopping at once.
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn platform(
    platform: &switchboard_loadgen::cli::PlatformArgs,
    client: &switchboard_loadgen::cli::ClientArgs,
    faults: &switchboard_loadgen::cli::FaultArgs,
    targets: Targets,
    samples: usize,
) -> Result<(Platform, u64), String> {
    let seed = platform.seed.unwrap_or_else(ids::fresh_seed);
    let nonce = platform
        .id_seed
        .unwrap_or_else(|| ids::splitmix64(ids::fresh_seed() ^ seed));
    let config = platform.config(seed, nonce)?;
    let client = WebhookClient::new(&client.config()?)?;
    Ok((
        Platform {
            config: Arc::new(config),
            client,
            targets,
            faults: faults.faults(),
            stats: Arc::new(Stats::new(samples)),
        },
        seed,
    ))
}

/// `--compare A B`: both reports side by side.
fn compare_reports(files: &[std::path::PathBuf]) -> Result<ExitCode, String> {
    let [a, b] = files else {
        return Err("--compare takes two JSON reports: --compare A.json B.json".to_owned());
    };
    let table = compare::compare_files(a, b).map_err(|e| e.to_string())?;
    print!("{table}");
    Ok(ExitCode::SUCCESS)
}

async fn load_run(args: RunArgs) -> Result<ExitCode, String> {
    let shape = args.shape()?;
    let limit = args.limit();
    let (uris, select) = args.targets()?;
    if let Some(json) = &args.json {
        check_writable("--json", json)?;
    }
    if let Some(page) = &args.html {
        check_writable("--html", page)?;
    }
    let (platform, seed) = platform(
        &args.platform,
        &args.client,
        &args.faults,
        Targets::new(uris, select),
        args.samples,
    )?;
    // Settings first, then the network: a typo is reported before a connection attempt.
    for uri in platform.targets.uris() {
        check_reachable(uri, args.client.timeout).await?;
    }
    let platform = Arc::new(platform);
    let progress = Settings::for_stderr(args.quiet, args.progress_interval);
    let elapsed = load::run(platform.clone(), shape, limit, progress, shutdown()).await;
    let targets: Vec<String> = platform
        .targets
        .uris()
        .iter()
        .map(ToString::to_string)
        .collect();
    let report = Report::new(&platform.stats, elapsed, seed, args.max_error_rate)
        .with_run(args.parameters(seed), &targets);
    finish(&report, args.json.as_deref(), args.html.as_deref())
}

async fn backend(args: BackendArgs) -> Result<ExitCode, String> {
    use switchboard_loadgen::backend::{Data, app};
    let text = std::fs::read_to_string(&args.data)
        .map_err(|e| format!("--data: cannot read '{}': {e}", args.data.display()))?;
    let data = Data::parse(&text, std::time::Duration::from_millis(args.delay_ms))
        .map_err(|e| format!("--data '{}': {e}", args.data.display()))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {}: {e}; choose another --listen",
                args.listen
            )
        })?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!(
        "serving {} answers from {} on http://{local}",
        data.len(),
        args.data.display()
    );
    axum::serve(listener, app(Arc::new(data)))
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(|e| format!("the backend failed: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

async fn emulate(args: EmulateArgs) -> Result<ExitCode, String> {
    let webhook = parse_target(&args.webhook).map_err(|e| format!("--webhook {e}"))?;
    if let Some(json) = &args.json {
        check_writable("--json", json)?;
    }
    if let Some(page) = &args.html {
        check_writable("--html", page)?;
    }
    let targets = Targets::new(vec![webhook.clone()], Default::default());
    let (platform, seed) = platform(
        &args.platform,
        &args.client,
        &args.faults,
        targets,
        args.samples,
    )?;
    let script = emulator::Script {
        outcomes: args.outcomes.iter().cloned().collect(),
        failures: args.failures.iter().cloned().collect(),
        sub_accounts: args.known_sub_accounts.clone(),
    };
    let mut emulator = Emulator::new(Arc::new(platform), args.api_key.clone()).with_script(script);
    if let Some(path) = &args.arrivals {
        let log = emulator::ArrivalLog::create(path)
            .map_err(|e| format!("--arrivals {}: cannot create the file: {e}", path.display()))?;
        emulator = emulator.with_log(log);
    }
    let emulator = Arc::new(emulator);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {}: {e}. Is another process using the port?",
                args.listen
            )
        })?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    println!(
        "emulating the 8x8 Callflows API on http://{local}/api/v1/subaccounts/{{id}}/callflows, \
         playing calls against {webhook}; Ctrl-C to stop"
    );
    let start = tokio::time::Instant::now();
    emulator.platform().stats.start_clock(start);
    axum::serve(listener, emulator::app(emulator.clone()))
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(|e| format!("the API server failed: {e}"))?;
    emulator.drain().await;
    let parameters = [
        ("mode", "emulate".to_owned()),
        ("--listen", args.listen.to_string()),
        ("--webhook", webhook.to_string()),
        ("--seed", seed.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let report = Report::new(&emulator.platform().stats, start.elapsed(), seed, 0.0)
        .with_run(parameters, &[webhook.to_string()]);
    finish(&report, args.json.as_deref(), args.html.as_deref())
}

/// Fails early, before a long run, when the report (of `flag`) could not be written at its end.
fn check_writable(flag: &str, path: &std::path::Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    if dir.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "{flag} {}: the directory {} does not exist; create it or choose another path",
            path.display(),
            dir.display()
        ))
    }
}

fn finish(
    report: &Report,
    json: Option<&std::path::Path>,
    page: Option<&std::path::Path>,
) -> Result<ExitCode, String> {
    print!("{report}");
    if let Some(path) = json {
        write_report("JSON", path, &report.to_json())?;
    }
    if let Some(path) = page {
        write_report("HTML", path, &html::render(report))?;
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_ERRORS)
    })
}

fn write_report(kind: &str, path: &std::path::Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| {
        format!(
            "cannot write the {kind} report to {}: {e}. Does the directory exist?",
            path.display()
        )
    })
}
