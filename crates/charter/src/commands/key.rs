//! `charter key …`: the keys that sign access tokens. `list` shows their ids, status and
//! times, never key material (admins and auditors); `rotate` promotes the published next
//! key to signing and retires the active one (admins).

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::{connect, emit, items};
use crate::GlobalArgs;
use crate::table::{Table, field, print_detail, short_time};

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Rotate the signing key: the next key starts signing; the active one is retired but
    /// stays published until every token it signed has expired.
    Rotate,
    /// List the signing keys.
    List,
}

pub async fn run(global: &GlobalArgs, cmd: KeyCmd) -> anyhow::Result<ExitCode> {
    let client = connect(global)?;
    match cmd {
        KeyCmd::Rotate => {
            let reply = client.post(&["v1", "keys", "rotate"], &json!({})).await?;
            emit(global, &reply, |r| {
                print_detail(r, &["active", "retired", "next"], &[]);
            })?;
        }
        KeyCmd::List => {
            let reply = client.get(&["v1", "keys"], &[]).await?;
            emit(global, &reply, |r| {
                let mut t = Table::new(&[
                    "KID",
                    "STATUS",
                    "CREATED",
                    "ACTIVATED",
                    "RETIRED",
                    "PUBLISHED UNTIL",
                ]);
                for k in items(r) {
                    t.row(vec![
                        field(k, "kid"),
                        field(k, "status"),
                        short_time(k, "created_at"),
                        short_time(k, "activated_at"),
                        short_time(k, "retired_at"),
                        short_time(k, "publish_until"),
                    ]);
                }
                t.print();
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
