//! `charter`: one binary for running Charter (`serve`, `demo`) and for talking to a running
//! control plane through its admin API (`principal`, `api`, `partner`, `grant`,
//! `breakglass`, `credential`, `review`, `findings`, `compliance`, `key`, `audit`), plus
//! `token`, which gets an access token the way a partner workload would.
//!
//! This file holds the command-line grammar and the dispatch; each verb lives in its own
//! module. Every failure leaves as one `error: …` line on stderr and exit code 1 (2 for a
//! broken audit chain, 3 for an offboarding whose verification failed).

mod client;
mod commands;
mod demo;
mod names;
mod serve;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "charter",
    version,
    about = "Charter: governed partner access to your APIs",
    long_about = "Charter: governed partner access to your APIs.\n\n\
        `charter serve` runs the control plane and gateway; `charter demo` runs a seeded demo \
        world. `charter token` gets an access token from the OAuth token endpoint with a \
        client credential. The other verbs talk to a running control plane's admin API with \
        the token in CHARTER_TOKEN (or --token-file)."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options of the admin-API client, accepted before or after any verb.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Base URL of the control plane's admin API.
    #[arg(
        long,
        global = true,
        env = "CHARTER_SERVER",
        default_value = "http://127.0.0.1:7600",
        value_name = "URL",
        help_heading = "Admin API client"
    )]
    pub server: String,
    /// Read the bearer token from this file instead of CHARTER_TOKEN.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "Admin API client"
    )]
    pub token_file: Option<PathBuf>,
    /// Print the server's JSON reply (pretty) instead of a table.
    #[arg(long, global = true, help_heading = "Admin API client")]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Charter: control plane and/or gateway.
    Serve(Box<serve::ServeArgs>),
    /// Run a seeded demo world (Charter, a demo upstream, partners and grants) until Ctrl-C.
    Demo(demo::DemoArgs),
    /// Principals: who may call the admin API, with which roles.
    #[command(subcommand)]
    Principal(commands::principal::PrincipalCmd),
    /// APIs: publish and republish APIs and their operations.
    #[command(subcommand)]
    Api(commands::api::ApiCmd),
    /// Partners: external organisations, their regions and business owners; offboarding.
    #[command(subcommand)]
    Partner(commands::partner::PartnerCmd),
    /// Grants: request, approve, suspend, resume and revoke partner access.
    #[command(subcommand)]
    Grant(commands::grant::GrantCmd),
    /// Break-glass: emergency access under an incident, at most 4 hours, reviewed afterwards.
    #[command(subcommand)]
    Breakglass(commands::breakglass::BreakglassCmd),
    /// Credentials: issue, rotate and revoke what partner workloads authenticate with.
    #[command(subcommand)]
    Credential(commands::credential::CredentialCmd),
    /// Reviews: recertification campaigns and post-incident reviews, with usage evidence.
    #[command(subcommand)]
    Review(commands::review::ReviewCmd),
    /// Posture findings, as of now, mapped to OWASP NHI Top 10 and NIST CSF 2.0.
    Findings(commands::findings::FindingsArgs),
    /// Compliance report: NIST CSF 2.0, NIST SP 800-207 and OWASP NHI Top 10 controls,
    /// pass/fail from the current state, for the estate or one partner.
    #[command(subcommand)]
    Compliance(commands::compliance::ComplianceCmd),
    /// Signing keys: list and rotate the keys that sign access tokens.
    #[command(subcommand)]
    Key(commands::key::KeyCmd),
    /// Get an access token with a client_secret credential, to check that it works.
    Token(commands::token::TokenArgs),
    /// The hash-chained audit log.
    #[command(subcommand)]
    Audit(commands::audit::AuditCmd),
    /// Evidence bundles: export a grant's or partner's signed bundle; verify one offline.
    #[command(subcommand)]
    Evidence(commands::evidence::EvidenceCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            init_logging("info");
            serve::run(*args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            init_logging("warn");
            demo::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Principal(cmd) => commands::principal::run(&cli.global, cmd).await,
        Command::Api(cmd) => commands::api::run(&cli.global, cmd).await,
        Command::Partner(cmd) => commands::partner::run(&cli.global, cmd).await,
        Command::Grant(cmd) => commands::grant::run(&cli.global, cmd).await,
        Command::Breakglass(cmd) => commands::breakglass::run(&cli.global, cmd).await,
        Command::Review(cmd) => commands::review::run(&cli.global, cmd).await,
        Command::Findings(args) => commands::findings::run(&cli.global, args).await,
        Command::Compliance(cmd) => commands::compliance::run(&cli.global, cmd).await,
        Command::Credential(cmd) => commands::credential::run(&cli.global, cmd).await,
        Command::Key(cmd) => commands::key::run(&cli.global, cmd).await,
        Command::Token(args) => commands::token::run(&cli.global, args).await,
        Command::Audit(cmd) => commands::audit::run(&cli.global, cmd).await,
        Command::Evidence(cmd) => commands::evidence::run(&cli.global, cmd).await,
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `default_filter`).
fn init_logging(default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// An error and its causes on a single line.
fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}")
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// The id prefix an argument of this name takes, for arguments that name an object.
    fn expected_prefix(arg: &str) -> Option<&'static str> {
        match arg {
            "partner" => Some("prt_"),
            "api" => Some("api_"),
            "grant" => Some("grt_"),
            "owners" => Some("prn_"),
            "review" => Some("rev_"),
            "client_id" => Some("chc_"),
            _ => None,
        }
    }

    /// The prefixes (`prt_`) of every `xxx_…` label in a help text.
    fn labels(help: &str) -> Vec<String> {
        help.match_indices("_…")
            .filter_map(|(at, _)| {
                let start = help[..at]
                    .rfind(|c: char| !c.is_ascii_lowercase())
                    .map_or(0, |i| i + 1);
                (at - start == 3).then(|| help[start..=at].to_owned())
            })
            .collect()
    }

    fn walk(cmd: &clap::Command, path: &str, problems: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let help = arg
                .get_long_help()
                .or_else(|| arg.get_help())
                .map(ToString::to_string)
                .unwrap_or_default();
            let found = labels(&help);
            let id = arg.get_id().as_str();
            let flag = arg
                .get_long()
                .map_or_else(|| id.to_owned(), |l| format!("--{l}"));
            match expected_prefix(id) {
                Some(want) if found.iter().all(|p| p != want) => {
                    problems.push(format!("{path} {flag}: no ({want}…) label in {help:?}"));
                }
                _ => {}
            }
            for p in &found {
                if expected_prefix(id).is_some_and(|want| want != p) {
                    problems.push(format!("{path} {flag}: labelled {p}… in {help:?}"));
                }
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), problems);
        }
    }

    #[test]
    fn every_id_argument_names_its_prefix() {
        let mut problems = Vec::new();
        walk(&Cli::command(), "charter", &mut problems);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn labels_are_found() {
        assert_eq!(labels("The partner (prt_…): all"), ["prt_"]);
        assert_eq!(labels("prn_… or the api (api_…)"), ["prn_", "api_"]);
        assert!(labels("a snake_… that is no id").is_empty());
    }

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
