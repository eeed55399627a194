//! `charter principal …`: create, list, show, rotate and disable admin-API principals
//! (admin only). `add` and `rotate` print the new bearer token, once: the server keeps only
//! its hash.

use std::process::ExitCode;

use charter_core::Role;
use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::{PageArgs, connect, core_enum, emit, items, next_page_hint, no_help};
use crate::GlobalArgs;
use crate::table::{Table, field, print_detail, short_time};

#[derive(Debug, Subcommand)]
pub enum PrincipalCmd {
    /// Create a principal and print its token (shown once).
    Add {
        /// Display name, unique.
        #[arg(long)]
        name: String,
        /// A role; repeat for several.
        #[arg(
            long = "role",
            required = true,
            value_delimiter = ',',
            value_parser = core_enum(&Role::ALL, Role::as_str, no_help)
        )]
        roles: Vec<Role>,
        /// Token lifetime in days (1–365; the server's default is 90).
        #[arg(long, value_name = "D")]
        token_days: Option<u32>,
    },
    /// List principals.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one principal.
    Show { id: String },
    /// Issue a new token (the old one stops working at once) and print it (shown once).
    Rotate {
        id: String,
        /// Lifetime of the new token in days.
        #[arg(long, value_name = "D")]
        token_days: Option<u32>,
    },
    /// Disable a principal: its token stops working.
    Disable {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

const ORDER: &[&str] = &[
    "id",
    "name",
    "roles",
    "disabled",
    "created_at",
    "token_expires_at",
];

pub async fn run(global: &GlobalArgs, cmd: PrincipalCmd) -> anyhow::Result<ExitCode> {
    let client = connect(global)?;
    match cmd {
        PrincipalCmd::Add {
            name,
            roles,
            token_days,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            body.insert(
                "roles".into(),
                json!(roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()),
            );
            if let Some(d) = token_days {
                body.insert("token_days".into(), json!(d));
            }
            let reply = client
                .post(&["v1", "principals"], &Value::Object(body))
                .await?;
            emit(global, &reply, print_with_token)?;
        }
        PrincipalCmd::List { page } => {
            let reply = client.get(&["v1", "principals"], &page.query()).await?;
            emit(global, &reply, |r| {
                let mut t = Table::new(&["ID", "NAME", "ROLES", "DISABLED", "TOKEN EXPIRES"]);
                for p in items(r) {
                    t.row(vec![
                        field(p, "id"),
                        field(p, "name"),
                        field(p, "roles"),
                        field(p, "disabled"),
                        short_time(p, "token_expires_at"),
                    ]);
                }
                t.print();
                next_page_hint(r);
            })?;
        }
        PrincipalCmd::Show { id } => {
            let reply = client.get(&["v1", "principals", &id], &[]).await?;
            emit(global, &reply, |r| print_detail(r, ORDER, &[]))?;
        }
        PrincipalCmd::Rotate { id, token_days } => {
            let body = match token_days {
                Some(d) => json!({ "token_days": d }),
                None => json!({}),
            };
            let reply = client
                .post(&["v1", "principals", &id, "rotate"], &body)
                .await?;
            emit(global, &reply, print_with_token)?;
        }
        PrincipalCmd::Disable { id, reason } => {
            let reply = client
                .post(
                    &["v1", "principals", &id, "disable"],
                    &json!({ "reason": reason }),
                )
                .await?;
            emit(global, &reply, |r| print_detail(r, ORDER, &[]))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The principal, then its token with the warning that it is shown only now.
fn print_with_token(reply: &Value) {
    print_detail(reply, ORDER, &["token"]);
    if let Some(token) = reply.get("token").and_then(Value::as_str) {
        println!();
        println!("token: {token}");
        println!("This token is shown once; Charter keeps only its hash. Store it now.");
    }
}
