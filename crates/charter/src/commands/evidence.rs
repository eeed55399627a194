//! `charter evidence …`: signed evidence bundles (`docs/evidence-bundle.md`).
//!
//! `verify FILE [--keys KEYS.json]` checks a bundle offline — no server, no token — with
//! [`charter_evidence::bundle::verify`], or with `--keys` (the evidence keys the auditor
//! saved from `/.well-known/charter-evidence-keys`) [`charter_evidence::bundle::verify_pinned`],
//! which also authenticates the signer: exit 0 and a short summary when valid (saying
//! plainly whether the signer was authenticated), exit 2 and `evidence INVALID: <first wrong
//! place>` on stderr when not, exit 1 (one `error:` line) when a file cannot be read or is
//! not JSON. `--checkpoint FILE` also compares the bundle
//! with the auditor's checkpoints ([`charter_evidence::bundle::check_checkpoints`]) and
//! `--previous FILE` checks that it extends an earlier bundle of its subject.
//! `verify-usage BUNDLE PROOF` checks one usage record's inclusion proof against the usage
//! root the bundle commits. `rotate-key` retires the evidence key and starts a new one
//! (admin). `export` fetches a grant's or a partner's bundle (or its HTML
//! timeline) from the admin API and writes the body as the server sent it, byte for byte.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use charter_evidence::bundle::{self, BundleError, Summary};
use charter_evidence::checkpoint::{self, Checkpoint};
use charter_evidence::usage::{UsageProof, verify_proof};
use clap::{ArgGroup, Args, Subcommand};
use reqwest::Method;
use serde_json::Value;

use crate::GlobalArgs;
use crate::client::{Client, http_error, load_token};

#[derive(Debug, Subcommand)]
pub enum EvidenceCmd {
    /// Verify an evidence bundle offline (no server, no token): signature, events, every
    /// sub-chain from its subject's creation to the bundle's head, and every statement's
    /// facts. Exit 0 if valid, 2 if not.
    Verify {
        /// The bundle, as `charter evidence export` wrote it (JSON).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The evidence keys you pinned: the JSON of `/.well-known/charter-evidence-keys`,
        /// saved earlier. The signature must verify with a pinned key of its kid, every key
        /// the bundle brings must be pinned, and the bundle must be made within its key's
        /// signing period. Without it the signer is NOT authenticated.
        #[arg(long, value_name = "KEYS.json")]
        keys: Option<PathBuf>,
        /// The auditor's copy of the checkpoint file (JSON lines): the bundle must agree
        /// with every checkpoint in its span.
        #[arg(long = "checkpoint", value_name = "CHECKPOINTS.jsonl")]
        checkpoint: Option<PathBuf>,
        /// An earlier bundle of the same subject, which this one must extend.
        #[arg(long, value_name = "OLD.json")]
        previous: Option<PathBuf>,
    },
    /// Verify a usage record's inclusion proof (from `GET /v1/grants/{id}/usage/proof`)
    /// against the usage root a verified bundle commits. Exit 0 if it holds, 2 if not.
    VerifyUsage {
        /// The bundle (JSON).
        #[arg(value_name = "BUNDLE")]
        bundle: PathBuf,
        /// The proof (JSON).
        #[arg(value_name = "PROOF")]
        proof: PathBuf,
    },
    /// Retire the evidence key and start signing with a new one (admin). Old bundles and
    /// checkpoints still verify: every evidence key stays published with its period. Pin the
    /// new key: save `/.well-known/charter-evidence-keys` again.
    RotateKey,
    /// Export the signed evidence bundle of a grant or a partner.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("subject").required(true).args(["grant", "partner"])))]
pub struct ExportArgs {
    /// The grant (grt_…).
    #[arg(long, value_name = "ID")]
    grant: Option<String>,
    /// The partner (prt_…): all its grants you can see, and its offboarding.
    #[arg(long, value_name = "ID")]
    partner: Option<String>,
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// The human-readable timeline (HTML) instead of the signed JSON bundle.
    #[arg(long)]
    html: bool,
}

/// Exit code of `evidence verify` for a bundle that does not verify.
const INVALID: u8 = 2;

pub async fn run(global: &GlobalArgs, cmd: EvidenceCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        EvidenceCmd::Verify {
            file,
            keys,
            checkpoint,
            previous,
        } => verify(
            global,
            &file,
            keys.as_deref(),
            checkpoint.as_deref(),
            previous.as_deref(),
        ),
        EvidenceCmd::RotateKey => rotate_key(global).await,
        EvidenceCmd::VerifyUsage { bundle, proof } => verify_usage(global, &bundle, &proof),
        EvidenceCmd::Export(args) => export(global, &args).await,
    }
}

/// Reads a pinned keys file (`{"keys": [...]}` as served, or an array of JWKs).
fn read_keys(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    bundle::parse_pinned_keys(&value).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Reads and verifies a bundle file, against pinned keys when given. The outer error is
/// for a file that cannot be read or is not JSON; the inner one for a bundle that does not
/// verify.
fn check_file(
    path: &Path,
    pinned: Option<&[Value]>,
) -> anyhow::Result<Result<(Value, Summary), BundleError>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    match bundle::parse(&text) {
        Ok(value) => Ok(match pinned {
            Some(keys) => bundle::verify_pinned(&value, keys),
            None => bundle::verify(&value),
        }
        .map(|s| (value, s))),
        Err(BundleError::NotJson(e)) => anyhow::bail!("{} is not JSON: {e}", path.display()),
        Err(e) => Ok(Err(e)),
    }
}

/// The checkpoints of an auditor's file, each signature checked with `keys` (the bundle's
/// evidence keys). A line that is not a signed checkpoint is an error of the file.
fn read_checkpoints(path: &Path, keys: &[Value]) -> anyhow::Result<Vec<Checkpoint>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let cp: Checkpoint = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not a checkpoint", path.display(), i + 1))?;
        checkpoint::verify_signature(&cp, keys)
            .with_context(|| format!("{} line {}", path.display(), i + 1))?;
        out.push(cp);
    }
    Ok(out)
}

fn invalid(e: &BundleError) -> ExitCode {
    eprintln!("evidence INVALID: {}", one_line(&e.to_string()));
    ExitCode::from(INVALID)
}

/// What `verify` says of a valid bundle's signer.
const NOT_AUTHENTICATED: &str =
    "NOT AUTHENTICATED — no --keys given; anyone can make a bundle that passes without --keys";

fn verify(
    global: &GlobalArgs,
    path: &Path,
    keys: Option<&Path>,
    checkpoints: Option<&Path>,
    previous: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let pinned = keys.map(read_keys).transpose()?;
    let (value, summary) = match check_file(path, pinned.as_deref())? {
        Ok(found) => found,
        Err(e) => return Ok(invalid(&e)),
    };
    let mut agreement = None;
    if let Some(file) = checkpoints {
        // Checkpoints are signed with the evidence keys: the pinned ones when given, else
        // (not authenticated) those the bundle brings.
        let keys = match &pinned {
            Some(p) => p.clone(),
            None => value
                .get("keys")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        };
        let cps = read_checkpoints(file, &keys)?;
        match bundle::check_checkpoints(&value, &summary, &cps) {
            Ok(a) => agreement = Some(a),
            Err(e) => return Ok(invalid(&e)),
        }
    }
    if let Some(file) = previous {
        let old = match check_file(file, pinned.as_deref())? {
            Ok((_, old)) => old,
            Err(e) => {
                eprintln!(
                    "evidence INVALID: previous bundle {}: {}",
                    file.display(),
                    one_line(&e.to_string())
                );
                return Ok(ExitCode::from(INVALID));
            }
        };
        if let Err(e) = bundle::check_extends(&value, &summary, &old) {
            return Ok(invalid(&e));
        }
    }
    if global.json {
        let mut reply = serde_json::to_value(&summary)?;
        reply["valid"] = Value::Bool(true);
        reply["signer_authenticated"] = Value::Bool(pinned.is_some());
        if let Some(a) = &agreement {
            reply["checkpoints"] = serde_json::to_value(a)?;
        }
        println!("{}", serde_json::to_string_pretty(&reply)?);
    } else {
        print!("{}", summary_text(&summary));
        if let Some(a) = &agreement {
            println!(
                "  checkpoints {} agree ({} outside the bundle's span)",
                a.agreed.len(),
                a.outside
            );
        }
        if previous.is_some() {
            println!("  extends     the previous bundle");
        }
        println!("  signer      {}", signer_text(&summary, pinned.is_some()));
    }
    Ok(ExitCode::SUCCESS)
}

fn verify_usage(
    global: &GlobalArgs,
    bundle_path: &Path,
    proof_path: &Path,
) -> anyhow::Result<ExitCode> {
    let (_, summary) = match check_file(bundle_path, None)? {
        Ok(found) => found,
        Err(e) => return Ok(invalid(&e)),
    };
    let text = std::fs::read_to_string(proof_path)
        .with_context(|| format!("cannot read {}", proof_path.display()))?;
    let proof: UsageProof = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a usage proof", proof_path.display()))?;
    let Some(committed) = summary.usage.get(&proof.grant) else {
        eprintln!(
            "usage proof INVALID: the bundle commits no usage of {}",
            one_line(&proof.grant)
        );
        return Ok(ExitCode::from(INVALID));
    };
    match verify_proof(committed, &proof) {
        Ok(rec) => {
            if global.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "valid": true, "grant": proof.grant, "seq": rec.seq,
                        "action": rec.action, "at": rec.at, "details": rec.details,
                    }))?
                );
            } else {
                println!(
                    "usage record valid: {} {} at {} is record {} of {} committed by the bundle (root {}…)",
                    one_line(&rec.action),
                    one_line(rec.details["decision"].as_str().unwrap_or("")),
                    one_line(&rec.at),
                    proof.index + 1,
                    committed.records,
                    committed.root.chars().take(12).collect::<String>()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            eprintln!("usage proof INVALID: {}", one_line(&why));
            Ok(ExitCode::from(INVALID))
        }
    }
}

/// The short human summary of a valid bundle.
fn summary_text(s: &Summary) -> String {
    let total: usize = s.statements_by_kind.values().sum();
    let kinds = s
        .statements_by_kind
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let hash: String = s.head.hash.chars().take(12).collect();
    let chains = s
        .subchains
        .iter()
        .map(|(id, seqs)| format!("{} {}", one_line(id), seqs.len()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "evidence valid: {} {}\n  statements  {total} ({kinds})\n  events      {}\n  sub-chains  {chains}\n  issued as   record {}, hash {hash}…\n  signed by   {}\n  generated   {}\n",
        one_line(&s.subject_type),
        one_line(&s.subject_id),
        s.events,
        s.head.seq,
        one_line(&s.kid),
        one_line(&s.generated_at),
    )
}

/// Control characters of a bundle's strings must not reach the terminal.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

async fn export(global: &GlobalArgs, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let (collection, id) = match (&args.grant, &args.partner) {
        (Some(grant), None) => ("grants", grant),
        (None, Some(partner)) => ("partners", partner),
        _ => anyhow::bail!("name exactly one of --grant ID and --partner ID"),
    };
    let token = load_token(global.token_file.as_deref())?;
    let client = Client::new(&global.server, token.clone())?;
    let query = if args.html {
        vec![("format", "html".to_owned())]
    } else {
        Vec::new()
    };
    let url = client.url(&["v1", collection, id, "evidence"], &query)?;
    let accept = if args.html {
        "text/html"
    } else {
        "application/json"
    };
    let cannot_reach = |e: reqwest::Error| {
        let detail = if e.is_timeout() {
            "timed out".to_owned()
        } else {
            innermost(&e)
        };
        anyhow::anyhow!("cannot reach {}: {detail}", client.base())
    };
    let response = client
        .request(Method::GET, url)
        .bearer_auth(&token)
        .header(reqwest::header::ACCEPT, accept)
        .send()
        .await
        .map_err(cannot_reach)?;
    let status = response.status();
    let body = response.bytes().await.map_err(cannot_reach)?;
    if !status.is_success() {
        let reply = serde_json::from_slice(&body).unwrap_or_else(|_| {
            Value::String(String::from_utf8_lossy(&body).chars().take(200).collect())
        });
        return Err(http_error(status, &reply).into());
    }
    match &args.output {
        Some(path) => {
            std::fs::write(path, &body)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if args.html {
                eprintln!("evidence page written to {}", path.display());
            } else {
                eprintln!(
                    "evidence bundle written to {0}; check it offline with `charter evidence verify {0}`",
                    path.display()
                );
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&body)
                .and_then(|()| out.flush())
                .context("cannot write to stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Whether the signer was authenticated against pinned keys.
fn signer_text(s: &Summary, authenticated: bool) -> String {
    if authenticated {
        format!(
            "authenticated: {} is a pinned key, and the bundle was made in its signing period",
            one_line(&s.kid)
        )
    } else {
        NOT_AUTHENTICATED.to_owned()
    }
}

/// `evidence rotate-key`: `POST /v1/evidence-keys/rotate`.
async fn rotate_key(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let client = super::connect(global)?;
    let reply = client
        .call(Method::POST, &["v1", "evidence-keys", "rotate"], &[], None)
        .await?;
    let keys_url = client.url(&[".well-known", "charter-evidence-keys"], &[])?;
    super::emit(global, &reply, |r| {
        let text = |v: &Value, k: &str| one_line(v.get(k).and_then(Value::as_str).unwrap_or("?"));
        let retired: Vec<String> = r
            .get("retired")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(Value::as_str)
                    .map(one_line)
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "evidence key rotated: {} signs from {}; retired: {}",
            text(r, "active"),
            text(r.get("key").unwrap_or(&Value::Null), "not_before"),
            if retired.is_empty() {
                "none".to_owned()
            } else {
                retired.join(", ")
            }
        );
        println!("pin the new key: save {keys_url} again for `charter evidence verify --keys`");
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid bundle: a `grant.request` record and the `evidence.issue` record heading the
    /// grant's sub-chain (no usage), two statements, signed with a fixed test key (made with
    /// `charter_evidence::bundle::sign`).
    const MINIMAL: &str = r#"{"checkpoints":[],"events":[{"body":"{\"action\":\"grant.request\",\"actor\":\"prn_01JSTEWARD\",\"at\":\"2026-11-03T10:00:00Z\",\"details\":{\"after\":{\"id\":\"grt_01JDELIVERYSYNC\",\"state\":\"pending\"},\"subject_prev\":null},\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"reason\":null,\"seq\":1,\"target\":\"grt_01JDELIVERYSYNC\"}","hash":"9320a0708957f1c7c55b040a44811b19377809fd16d365f32ae8aae1e51771ca","seq":1},{"body":"{\"action\":\"evidence.issue\",\"actor\":\"prn_01JAUDITOR\",\"at\":\"2026-11-29T02:00:00Z\",\"details\":{\"heads\":{},\"subject_prev\":\"9320a0708957f1c7c55b040a44811b19377809fd16d365f32ae8aae1e51771ca\",\"usage\":{\"grt_01JDELIVERYSYNC\":{\"allowed\":0,\"by_scope\":{},\"denied\":0,\"first_at\":null,\"last_at\":null,\"last_seq\":0,\"records\":0,\"root\":\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",\"tokens_issued\":0}}},\"prev\":\"9320a0708957f1c7c55b040a44811b19377809fd16d365f32ae8aae1e51771ca\",\"reason\":null,\"seq\":2,\"target\":\"grt_01JDELIVERYSYNC\"}","hash":"b46057d4cc4a97003cad9e4ee468415c8d6498e4281149b0f0ae77fb7dcc0a4f","seq":2}],"format":"charter-evidence/2","generated_at":"2026-11-29T02:00:00Z","issuer":"https://charter.example.com","keys":[{"alg":"EdDSA","crv":"Ed25519","kid":"evk_2026a","kty":"OKP","use":"sig","x":"6kpsY-KcUgq-9VB7Ey7F-ZVHdq6-vnuSQh7qaRRG0iw"}],"names":{"prn_01JSTEWARD":"partner-office"},"signature":"eyJhbGciOiJFZERTQSIsImI2NCI6dHJ1ZSwia2lkIjoiZXZrXzIwMjZhIn0..vORqHFUA0BIWQVk2yMuyZdlYbVGjLEbJGuZT9GqKZ87CdvWS8iaNyocFc05vKFE6bZmgonZvbody__2D9mhnAA","statements":[{"events":[1],"facts":{"action":"grant.request","actor":"prn_01JSTEWARD","at":"2026-11-03T10:00:00Z"},"grant":"grt_01JDELIVERYSYNC","id":"st-1","kind":"requested","text":"partner-office (prn_01JSTEWARD) requested access on 2026-11-03T10:00:00Z"},{"events":[2],"facts":{"allowed":0,"by_scope":{},"denied":0,"first_at":null,"last_at":null,"last_seq":0,"records":0,"root":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","tokens_issued":0},"grant":"grt_01JDELIVERYSYNC","id":"st-2","kind":"usage","text":"no calls"}],"subject":{"id":"grt_01JDELIVERYSYNC","type":"grant"}}"#;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn a_valid_bundle_is_summarised() {
        let f = file(MINIMAL);
        let (_, summary) = check_file(f.path(), None).unwrap().unwrap();
        assert_eq!(
            summary_text(&summary),
            "evidence valid: grant grt_01JDELIVERYSYNC\n  statements  2 (requested 1, usage 1)\n  events      2\n  sub-chains  grt_01JDELIVERYSYNC 2\n  issued as   record 2, hash b46057d4cc4a…\n  signed by   evk_2026a\n  generated   2026-11-29T02:00:00Z\n"
        );
    }

    #[test]
    fn a_pretty_printed_bundle_is_the_same_bundle() {
        let value: Value = serde_json::from_str(MINIMAL).unwrap();
        let f = file(&serde_json::to_string_pretty(&value).unwrap());
        assert!(check_file(f.path(), None).unwrap().is_ok());
    }

    #[test]
    fn a_tampered_bundle_names_the_place() {
        let f = file(&MINIMAL.replace("prn_01JSTEWARD\",\"at", "prn_01JMALLORY\",\"at"));
        let err = check_file(f.path(), None).unwrap().unwrap_err();
        assert_eq!(err.to_string(), "signature: does not verify");
        let f = file(&MINIMAL.replacen('{', "{\"format\":\"x\",", 1));
        let err = check_file(f.path(), None).unwrap().unwrap_err();
        assert!(
            err.to_string().starts_with("bundle: duplicate member"),
            "{err}"
        );
    }

    #[test]
    fn unreadable_or_non_json_files_are_errors() {
        let missing = Path::new("/nonexistent/bundle.json");
        let e = check_file(missing, None).unwrap_err();
        assert!(format!("{e:#}").starts_with("cannot read /nonexistent/bundle.json"));
        let f = file("<html>not a bundle</html>");
        let e = check_file(f.path(), None).unwrap_err();
        assert!(format!("{e:#}").contains("is not JSON"), "{e:#}");
    }

    #[test]
    fn terminal_control_characters_are_neutralised() {
        assert_eq!(one_line("a\u{1b}[2Jb\nc"), "a [2Jb c");
    }
}
