//! `charter partner …`: register partner organisations (kind, processing regions, business
//! owners), change their regions and owners, list and show them.

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use serde_json::{Map, Value, json};

use super::{PageArgs, connect, emit, items, next_page_hint};
use crate::GlobalArgs;
use crate::table::{Table, field, print_detail};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum KindArg {
    /// The partner integrates with us directly.
    Direct,
    /// A marketplace: several business owners share one data path.
    Reseller,
    /// The vendor runs the integration; we own the data risk.
    SaasConnector,
}

impl KindArg {
    fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Reseller => "reseller",
            Self::SaasConnector => "saas_connector",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum PartnerCmd {
    /// Register a partner.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        kind: KindArg,
        /// A processing region of the partner; repeat (or separate with commas) for several.
        #[arg(long = "region", required = true, value_delimiter = ',')]
        regions: Vec<String>,
        /// A business owner (principal id of an approver); repeat for several.
        #[arg(long = "owner", value_delimiter = ',')]
        owners: Vec<String>,
    },
    /// List partners.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one partner.
    Show { id: String },
    /// Replace a partner's regions and/or owners.
    Update {
        id: String,
        #[arg(long = "region", value_delimiter = ',')]
        regions: Vec<String>,
        #[arg(long = "owner", value_delimiter = ',')]
        owners: Vec<String>,
    },
}

const ORDER: &[&str] = &[
    "id",
    "name",
    "kind",
    "status",
    "regions",
    "owners",
    "created_at",
    "updated_at",
];

pub async fn run(global: &GlobalArgs, cmd: PartnerCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        PartnerCmd::Add {
            name,
            kind,
            regions,
            owners,
        } => {
            let body = json!({
                "name": name,
                "kind": kind.as_str(),
                "regions": regions,
                "owners": owners,
            });
            let reply = connect(global)?.post(&["v1", "partners"], &body).await?;
            emit(global, &reply, |r| print_detail(r, ORDER, &[]))?;
        }
        PartnerCmd::List { page } => {
            let reply = connect(global)?
                .get(&["v1", "partners"], &page.query())
                .await?;
            emit(global, &reply, |r| {
                let mut t = Table::new(&["ID", "NAME", "KIND", "STATUS", "REGIONS", "OWNERS"]);
                for p in items(r) {
                    t.row(vec![
                        field(p, "id"),
                        field(p, "name"),
                        field(p, "kind"),
                        field(p, "status"),
                        field(p, "regions"),
                        field(p, "owners"),
                    ]);
                }
                t.print();
                next_page_hint(r);
            })?;
        }
        PartnerCmd::Show { id } => {
            let reply = connect(global)?.get(&["v1", "partners", &id], &[]).await?;
            emit(global, &reply, |r| print_detail(r, ORDER, &[]))?;
        }
        PartnerCmd::Update {
            id,
            regions,
            owners,
        } => {
            let mut body = Map::new();
            if !regions.is_empty() {
                body.insert("regions".into(), json!(regions));
            }
            if !owners.is_empty() {
                body.insert("owners".into(), json!(owners));
            }
            if body.is_empty() {
                anyhow::bail!("nothing to update: give --region and/or --owner");
            }
            let reply = connect(global)?
                .patch(&["v1", "partners", &id], &Value::Object(body))
                .await?;
            emit(global, &reply, |r| print_detail(r, ORDER, &[]))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
