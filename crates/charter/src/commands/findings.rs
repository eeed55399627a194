//! `charter findings`: posture findings as the control plane computes them at the time of
//! the call, most severe first, each with the OWASP NHI Top 10 (2025) risk and NIST CSF 2.0
//! subcategory of its kind and a short form of its evidence (`--json` for all of it).

use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::{connect, emit_named, items};
use crate::GlobalArgs;
use crate::table::{Table, cell, field};

/// How many characters of a finding's evidence the table shows.
const EVIDENCE_CHARS: usize = 60;

/// The finding kinds of the contract (`GET /v1/findings?kind=`), as the server names them.
/// Finding kinds are the server's (they are computed there, not in charter-core), so the
/// CLI checks `--kind` against this fixed list and passes the name through.
pub const KINDS: [&str; 11] = [
    "owner_missing",
    "grant_expiring",
    "grant_unused",
    "scope_unused",
    "credential_stale",
    "credential_shared",
    "review_overdue",
    "emergency_unreviewed",
    "transfer_without_basis",
    "offboarding_failed",
    "credential_guessing",
];

#[derive(Debug, Args)]
pub struct FindingsArgs {
    /// Only findings of this kind.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(KINDS))]
    kind: Option<String>,
}

pub async fn run(global: &GlobalArgs, args: FindingsArgs) -> anyhow::Result<ExitCode> {
    let query = [("kind", args.kind.unwrap_or_default())];
    let client = connect(global)?;
    let reply = client.get(&["v1", "findings"], &query).await?;
    // A subject's `id` names the partner, API or grant the finding is about.
    emit_named(global, &client, &reply, &["id"], |r, names| {
        let mut t = Table::new(&[
            "SEVERITY",
            "KIND",
            "SUBJECT",
            "OWASP NHI",
            "CSF",
            "EVIDENCE",
        ]);
        for f in items(r) {
            let subject = f.get("subject").unwrap_or(&Value::Null);
            t.row(vec![
                field(f, "severity"),
                field(f, "kind"),
                format!("{} {}", field(subject, "type"), names.field(subject, "id")),
                field(f, "owasp_nhi"),
                field(f, "csf"),
                evidence(f.get("evidence").unwrap_or(&Value::Null)),
            ]);
        }
        t.print();
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// The evidence as compact JSON, cut to [`EVIDENCE_CHARS`] characters with `…`.
fn evidence(v: &Value) -> String {
    let text = cell(v);
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
    use clap::{CommandFactory, Parser};
    use serde_json::json;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: FindingsArgs,
    }

    #[test]
    fn kinds_are_the_contracts() {
        for kind in KINDS {
            let w = Wrap::try_parse_from(["t", "--kind", kind]).unwrap();
            assert_eq!(w.args.kind.as_deref(), Some(kind));
        }
        assert!(Wrap::try_parse_from(["t", "--kind", "everything"]).is_err());
        assert_eq!(Wrap::try_parse_from(["t"]).unwrap().args.kind, None);
        let help = Wrap::command().render_long_help().to_string();
        assert!(
            help.contains("owner_missing") && help.contains("offboarding_failed"),
            "{help}"
        );
    }

    #[test]
    fn evidence_is_compact_and_short() {
        let small = json!({ "hours_left": 71, "renewal_pending": false });
        assert_eq!(
            evidence(&small),
            r#"{"hours_left":71,"renewal_pending":false}"#
        );
        let big = json!({ "scopes": ["orders:read", "orders:write"], "used_scopes": [], "period_days": 90, "since": "2026-01-01T00:00:00Z" });
        let short = evidence(&big);
        assert_eq!(short.chars().count(), EVIDENCE_CHARS);
        assert!(short.starts_with('{') && !short.contains(": "), "{short}");
        assert!(short.ends_with('…'), "{short}");
        assert_eq!(evidence(&Value::Null), "-");
    }
}
