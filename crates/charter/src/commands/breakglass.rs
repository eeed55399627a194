//! `charter breakglass open`: emergency access under an incident reference. The grant is
//! active at once, without approval, for at most 4 hours, and ends by itself; the control
//! plane opens its post-incident review in the same step, which an owner of the partner other
//! than the opener must complete within 72 hours. Without `--region` the grant reaches the
//! partner's own processing regions (read from the partner).

use std::process::ExitCode;

use charter_core::grant::MAX_EMERGENCY_HOURS;
use charter_core::review::POST_INCIDENT_HOURS;
use clap::{Args, Subcommand};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::grant::{REFERENCES, data_class, parse_duration, print_grant};
use super::{connect, emit_named};
use crate::GlobalArgs;
use crate::table::short_time;

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The partner (prt_…).
    #[arg(long)]
    partner: String,
    /// The API (api_…).
    #[arg(long)]
    api: String,
    /// A scope of the API; repeat (or separate with commas) for several.
    #[arg(
        long = "scope",
        alias = "scopes",
        required = true,
        value_delimiter = ','
    )]
    scopes: Vec<String>,
    /// The incident the access is for (e.g. INC-123); recorded on the grant and in every
    /// audit record it produces.
    #[arg(long, value_name = "INC")]
    incident: String,
    /// How long the access lasts from now, at most 4h: 2h, 90m.
    #[arg(long = "for", value_parser = parse_duration, value_name = "DURATION")]
    duration: SignedDuration,
    /// What the access is for [default: "break-glass: <incident>"].
    #[arg(long, value_name = "TEXT")]
    use_case: Option<String>,
    /// The most sensitive data class the grant may reach.
    #[arg(long, value_parser = data_class(), default_value = "confidential")]
    ceiling: charter_core::DataClass,
    /// A data region the grant may reach; repeat for several [default: the partner's
    /// processing regions].
    #[arg(long = "region", value_delimiter = ',')]
    regions: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum BreakglassCmd {
    /// Open emergency access now, without approval, for at most 4 hours.
    Open(Box<OpenArgs>),
}

pub async fn run(global: &GlobalArgs, cmd: BreakglassCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        BreakglassCmd::Open(args) => {
            let client = connect(global)?;
            let regions = if args.regions.is_empty() {
                let partner = client.get(&["v1", "partners", &args.partner], &[]).await?;
                partner_regions(&partner)?
            } else {
                args.regions.clone()
            };
            let body = open_body(&args, regions, &charter_server::clock::SystemClock)?;
            let reply = client.post(&["v1", "grants"], &body).await?;
            emit_named(global, &client, &reply, REFERENCES, |g, names| {
                print_grant(g, names);
                println!();
                for line in notice(g) {
                    println!("{line}");
                }
            })
            .await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The processing regions of a partner as the server sent it.
fn partner_regions(partner: &Value) -> anyhow::Result<Vec<String>> {
    let regions: Vec<String> = partner
        .get("regions")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if regions.is_empty() {
        anyhow::bail!("the partner has no processing regions: give --region");
    }
    Ok(regions)
}

/// The JSON body of `POST /v1/grants` for break-glass access; `clock` resolves `--for`.
fn open_body(
    args: &OpenArgs,
    regions: Vec<String>,
    clock: &dyn charter_core::Clock,
) -> anyhow::Result<Value> {
    if args.duration > SignedDuration::from_hours(MAX_EMERGENCY_HOURS) {
        anyhow::bail!(
            "break-glass access lasts at most {MAX_EMERGENCY_HOURS}h; --for {:#} is longer",
            args.duration
        );
    }
    let expires_at = clock
        .now()
        .checked_add(args.duration)
        .map_err(|_| anyhow::anyhow!("--for {:#} reaches past the end of time", args.duration))?;
    let use_case = args
        .use_case
        .clone()
        .unwrap_or_else(|| format!("break-glass: {}", args.incident));
    Ok(json!({
        "partner": args.partner,
        "api": args.api,
        "use_case": use_case,
        "scopes": args.scopes,
        "data_class_ceiling": args.ceiling.as_str(),
        "regions": regions,
        "expires_at": expires_at.to_string(),
        "emergency": { "incident": args.incident },
    }))
}

/// What happens next: the access ends by itself, and the post-incident review is open.
fn notice(g: &Value) -> [String; 2] {
    let opened = ["activated_at", "requested_at"]
        .iter()
        .find_map(|k| g.get(*k).and_then(Value::as_str))
        .and_then(|s| s.parse::<Timestamp>().ok());
    let due = opened
        .and_then(|t| {
            t.checked_add(SignedDuration::from_hours(POST_INCIDENT_HOURS))
                .ok()
        })
        .map_or_else(
            || format!("within {POST_INCIDENT_HOURS}h"),
            |t| format!("by {}", t.strftime("%Y-%m-%d %H:%MZ")),
        );
    [
        format!(
            "Break-glass access is active now and ends by itself at {}.",
            short_time(g, "expires_at")
        ),
        format!(
            "A post-incident review opened automatically: an owner of the partner other than \
             its opener must attest it {due} (charter review list --kind post_incident --status open)."
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use charter_server::clock::ManualClock;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(subcommand)]
        cmd: BreakglassCmd,
    }

    fn parse(args: &[&str]) -> Result<OpenArgs, clap::Error> {
        let mut all = vec!["t", "open"];
        all.extend_from_slice(args);
        Wrap::try_parse_from(all).map(|w| match w.cmd {
            BreakglassCmd::Open(a) => *a,
        })
    }

    const BASE: &[&str] = &[
        "--partner",
        "prt_1",
        "--api",
        "api_1",
        "--scope",
        "orders:read",
        "--incident",
        "INC-123",
    ];

    fn clock() -> ManualClock {
        ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap())
    }

    #[test]
    fn defaults_fill_the_body() {
        let mut args = BASE.to_vec();
        args.extend(["--for", "2h"]);
        let a = parse(&args).unwrap();
        assert!(a.regions.is_empty(), "regions default to the partner's");
        let body = open_body(&a, vec!["eu".into()], &clock()).unwrap();
        assert_eq!(
            body,
            json!({
                "partner": "prt_1", "api": "api_1", "use_case": "break-glass: INC-123",
                "scopes": ["orders:read"], "data_class_ceiling": "confidential",
                "regions": ["eu"], "expires_at": "2026-01-01T02:00:00Z",
                "emergency": { "incident": "INC-123" },
            })
        );
    }

    #[test]
    fn flags_override_the_defaults() {
        let mut args = BASE.to_vec();
        args.extend([
            "--for",
            "4h",
            "--scopes",
            "orders:write",
            "--use-case",
            "Restore shipments",
            "--ceiling",
            "internal",
            "--region",
            "eu,us",
        ]);
        let a = parse(&args).unwrap();
        let regions = a.regions.clone();
        let body = open_body(&a, regions, &clock()).unwrap();
        assert_eq!(body["scopes"], json!(["orders:read", "orders:write"]));
        assert_eq!(body["use_case"], "Restore shipments");
        assert_eq!(body["data_class_ceiling"], "internal");
        assert_eq!(body["regions"], json!(["eu", "us"]));
        assert_eq!(body["expires_at"], "2026-01-01T04:00:00Z");
    }

    #[test]
    fn at_most_four_hours_and_an_incident() {
        let mut args = BASE.to_vec();
        args.extend(["--for", "5h"]);
        let e = open_body(&parse(&args).unwrap(), vec!["eu".into()], &clock()).unwrap_err();
        assert!(e.to_string().contains("at most 4h"), "{e}");
        assert!(parse(BASE).is_err(), "--for is required");
        assert!(
            parse(&[
                "--partner",
                "prt_1",
                "--api",
                "api_1",
                "--scope",
                "a",
                "--for",
                "1h"
            ])
            .is_err(),
            "--incident is required"
        );
    }

    #[test]
    fn partner_regions_and_notice() {
        assert_eq!(
            partner_regions(&json!({ "regions": ["eu", "uk"] })).unwrap(),
            ["eu", "uk"]
        );
        assert!(partner_regions(&json!({ "regions": [] })).is_err());
        let [ends, review] = notice(&json!({
            "expires_at": "2026-01-01T02:00:00Z",
            "activated_at": "2026-01-01T00:00:00Z",
        }));
        assert!(ends.contains("2026-01-01 02:00Z"), "{ends}");
        assert!(review.contains("by 2026-01-04 00:00Z"), "{review}");
    }
}
