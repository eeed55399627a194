//! `charter findings`: posture findings as the control plane computes them at the time of
//! the call, most severe first, each with the OWASP NHI Top 10 (2025) risk and NIST CSF 2.0
//! subcategory of its kind and a short form of its evidence (`--json` for all of it).

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::Value;

use super::{connect, emit_named, items};
use crate::GlobalArgs;
use crate::table::{Table, cell, field};

/// How many characters of a finding's evidence the table shows.
const EVIDENCE_CHARS: usize = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum KindArg {
    OwnerMissing,
    GrantExpiring,
    GrantUnused,
    ScopeUnused,
    CredentialStale,
    CredentialShared,
    ReviewOverdue,
    EmergencyUnreviewed,
    TransferWithoutBasis,
    OffboardingFailed,
}

impl KindArg {
    fn as_str(self) -> &'static str {
        match self {
            Self::OwnerMissing => "owner_missing",
            Self::GrantExpiring => "grant_expiring",
            Self::GrantUnused => "grant_unused",
            Self::ScopeUnused => "scope_unused",
            Self::CredentialStale => "credential_stale",
            Self::CredentialShared => "credential_shared",
            Self::ReviewOverdue => "review_overdue",
            Self::EmergencyUnreviewed => "emergency_unreviewed",
            Self::TransferWithoutBasis => "transfer_without_basis",
            Self::OffboardingFailed => "offboarding_failed",
        }
    }
}

#[derive(Debug, Args)]
pub struct FindingsArgs {
    /// Only findings of this kind.
    #[arg(long, value_enum)]
    kind: Option<KindArg>,
}

pub async fn run(global: &GlobalArgs, args: FindingsArgs) -> anyhow::Result<ExitCode> {
    let query = [(
        "kind",
        args.kind
            .map(KindArg::as_str)
            .unwrap_or_default()
            .to_owned(),
    )];
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
    use clap::Parser;
    use serde_json::json;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: FindingsArgs,
    }

    #[test]
    fn kinds_are_the_servers() {
        let w = Wrap::try_parse_from(["t", "--kind", "transfer_without_basis"]).unwrap();
        assert_eq!(
            w.args.kind.map(KindArg::as_str),
            Some("transfer_without_basis")
        );
        assert!(Wrap::try_parse_from(["t", "--kind", "everything"]).is_err());
        for kind in KindArg::value_variants() {
            let name = kind.to_possible_value().unwrap();
            assert_eq!(name.get_name(), kind.as_str());
        }
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
