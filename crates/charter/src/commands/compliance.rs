//! `charter compliance report`: the control plane's compliance report — NIST CSF 2.0
//! (PR.AA), NIST SP 800-207 tenets and OWASP NHI Top 10 (2025) controls, each pass, fail or
//! not applicable from the state at the time of the call — for the estate or one partner.
//! A table by default (one line per control with a short form of its evidence), the server's
//! JSON with `--json`, or the server-rendered HTML page with `--html`; `-o FILE` writes any
//! of them to a file instead of stdout.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use reqwest::{Method, header};
use serde_json::Value;

use crate::GlobalArgs;
use crate::client::{Client, http_error, load_token};
use crate::table::{Table, cell, field};

/// How many characters of a control's evidence the table shows.
const EVIDENCE_CHARS: usize = 72;

#[derive(Debug, Subcommand)]
pub enum ComplianceCmd {
    /// Pass/fail per control with its evidence, for the estate or one partner.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Report on this partner (prt_…) only (default: the whole estate).
    #[arg(long, value_name = "ID")]
    partner: Option<String>,
    /// Fetch the HTML page (for people) instead of JSON.
    #[arg(long)]
    html: bool,
    /// Write the report to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

pub async fn run(global: &GlobalArgs, cmd: ComplianceCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ComplianceCmd::Report(args) => report(global, args).await,
    }
}

async fn report(global: &GlobalArgs, args: ReportArgs) -> anyhow::Result<ExitCode> {
    if args.html && global.json {
        anyhow::bail!("--html and --json each choose the output; give one of them");
    }
    let token = load_token(global.token_file.as_deref())?;
    let client = Client::new(&global.server, token.clone())?;
    let mut query = vec![("partner", args.partner.clone().unwrap_or_default())];
    let text = if args.html {
        query.push(("format", "html".to_owned()));
        fetch_html(&client, &token, &query).await?
    } else {
        let reply = client.get(&["v1", "compliance"], &query).await?;
        if global.json {
            format!("{}\n", serde_json::to_string_pretty(&reply)?)
        } else {
            render(&reply)
        }
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The report page as the server renders it; a refusal leaves as the server's error.
async fn fetch_html(
    client: &Client,
    token: &str,
    query: &[(&str, String)],
) -> anyhow::Result<String> {
    let url = client.url(&["v1", "compliance"], query)?;
    let resp = client
        .request(Method::GET, url)
        .bearer_auth(token)
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .with_context(|| format!("cannot reach {}", client.base()))?;
    let status = resp.status();
    let body = resp
        .text()
        .await
        .with_context(|| format!("reading the reply from {}", client.base()))?;
    if !status.is_success() {
        let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
        return Err(http_error(status, &value).into());
    }
    Ok(body)
}

/// The report as text: its scope and summary, then one row per control.
fn render(r: &Value) -> String {
    let scope = r.get("scope").unwrap_or(&Value::Null);
    let what = match scope.get("id").and_then(Value::as_str) {
        Some(id) => format!("partner {} ({id})", field(scope, "name")),
        None => "the whole estate".to_owned(),
    };
    let summary = r.get("summary").unwrap_or(&Value::Null);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Compliance report for {what}, generated at {}",
        field(r, "generated_at")
    );
    let _ = writeln!(
        out,
        "pass {}  fail {}  not applicable {}\n",
        field(summary, "pass"),
        field(summary, "fail"),
        field(summary, "not_applicable")
    );
    let mut t = Table::new(&["FRAMEWORK", "CONTROL", "STATUS", "FINDINGS", "EVIDENCE"]);
    for c in r
        .get("controls")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        t.row(vec![
            field(c, "framework"),
            field(c, "control"),
            field(c, "status"),
            field(c, "findings"),
            short_evidence(c.get("evidence").unwrap_or(&Value::Null)),
        ]);
    }
    out.push_str(&t.render());
    out
}

/// The subjects of failing findings first, then the evidence's numbers and flags as
/// `key=value` (top level first, then `key.sub=value` one level down), cut to
/// [`EVIDENCE_CHARS`] characters with `…`.
fn short_evidence(e: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(subjects) = e.get("finding_subjects").and_then(Value::as_array) {
        for s in subjects {
            let subject = s.get("subject").unwrap_or(&Value::Null);
            parts.push(format!(
                "{} {}",
                field(subject, "type"),
                field(subject, "id")
            ));
        }
    }
    let scalar = |v: &Value| v.is_number() || v.is_boolean();
    if let Some(map) = e.as_object() {
        for (k, v) in map {
            if scalar(v) && k != "failing_findings" {
                parts.push(format!("{k}={}", cell(v)));
            }
        }
        // Then one level down (the audit chain's verdict, say), except the decision counts
        // several controls share.
        for (k, v) in map.iter().filter(|(k, _)| *k != "access_decisions") {
            for (sub, v) in v.as_object().into_iter().flatten() {
                if scalar(v) {
                    parts.push(format!("{k}.{sub}={}", cell(v)));
                }
            }
        }
    }
    let text = if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(" ")
    };
    if text.chars().count() <= EVIDENCE_CHARS {
        return text;
    }
    let mut short: String = text.chars().take(EVIDENCE_CHARS - 1).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::json;

    #[derive(Parser)]
    struct Wrap {
        #[command(subcommand)]
        cmd: ComplianceCmd,
    }

    #[test]
    fn arguments() {
        let w = Wrap::try_parse_from([
            "t",
            "report",
            "--partner",
            "prt_1",
            "--html",
            "-o",
            "r.html",
        ])
        .unwrap();
        let ComplianceCmd::Report(a) = w.cmd;
        assert_eq!(a.partner.as_deref(), Some("prt_1"));
        assert!(a.html);
        assert_eq!(a.output, Some(PathBuf::from("r.html")));
        let ComplianceCmd::Report(a) = Wrap::try_parse_from(["t", "report"]).unwrap().cmd;
        assert!(a.partner.is_none() && !a.html && a.output.is_none());
        assert!(Wrap::try_parse_from(["t", "report", "--pdf"]).is_err());
    }

    #[test]
    fn a_table_per_control() {
        let r = json!({
            "generated_at": "2026-11-30T10:00:00Z",
            "scope": { "type": "partner", "id": "prt_1", "name": "Acme" },
            "summary": { "pass": 1, "fail": 1, "not_applicable": 0 },
            "controls": [
                { "framework": "NIST CSF 2.0", "control": "PR.AA-05", "status": "fail",
                  "findings": ["grant_unused"],
                  "evidence": { "grants_checked": 1, "failing_findings": 1, "csf_1_1": "PR.AC-4",
                                "finding_subjects": [{ "kind": "grant_unused", "subject": { "type": "grant", "id": "grt_1" } }] } },
                { "framework": "OWASP NHI Top 10 (2025)", "control": "NHI9", "status": "pass",
                  "findings": [], "evidence": { "active_credentials": 2, "window_hours": 24 } }
            ]
        });
        let text = render(&r);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(
            lines[0],
            "Compliance report for partner Acme (prt_1), generated at 2026-11-30T10:00:00Z"
        );
        assert_eq!(lines[1], "pass 1  fail 1  not applicable 0");
        assert!(lines[3].starts_with("FRAMEWORK"), "{text}");
        assert!(
            lines[4].contains("PR.AA-05")
                && lines[4].contains("fail")
                && lines[4].contains("grant_unused")
                && lines[4].ends_with("grant grt_1 grants_checked=1"),
            "{text}"
        );
        assert!(
            lines[5].ends_with("active_credentials=2 window_hours=24"),
            "{text}"
        );
        let estate = json!({ "scope": { "type": "estate" }, "controls": [] });
        assert!(render(&estate).starts_with("Compliance report for the whole estate"));
    }

    #[test]
    fn evidence_is_short() {
        let many: serde_json::Map<String, Value> =
            (0..30).map(|i| (format!("key_{i:02}"), json!(i))).collect();
        let short = short_evidence(&Value::Object(many));
        assert_eq!(short.chars().count(), EVIDENCE_CHARS);
        assert!(short.ends_with('…'));
        assert_eq!(short_evidence(&json!({ "note": "prose only" })), "-");
        let nested = json!({ "access_decisions": { "allowed": 3 },
                             "audit_chain": { "valid": true, "head": { "seq": 9 } } });
        assert_eq!(short_evidence(&nested), "audit_chain.valid=true");
    }
}
