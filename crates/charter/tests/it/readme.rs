//! The README keeps its promises: its walkthrough runs, command by command, against a real
//! `charter demo`, and every document it (or any doc) links to exists.
//!
//! How the walkthrough is run. The `sh` blocks of the README's section "A walkthrough
//! against the demo" are split into commands (a line ending in `\` continues on the next;
//! comments are dropped) and fed one at a time to a single `sh` session, so `export`s and
//! shell variables carry over as they would in a terminal. The session's working directory
//! holds what the repository root would: `examples/returns.toml` and the demo's
//! `./charter-demo`, because the demo is started there without `--data-dir`, on free ports.
//! Four documented substitutions make it runnable:
//! - `127.0.0.1:7600`, `:7601` and `:7602` (in the commands and in the example file) become
//!   the demo's actual control-plane, gateway and upstream addresses, and `CHARTER_SERVER`
//!   points at the control plane;
//! - the `charter` on the session's PATH is the binary under test;
//! - a `charter … add|publish|request|approve|issue` command runs with `--json` appended, so
//!   its reply can fill later placeholders (every other command runs as written);
//! - a placeholder is filled from the replies so far: `<prt_…>` (any `<xxx_…>`) is the `id`
//!   with that prefix in the latest reply holding one; `<NAME's prn_…>` and `<NAME's token>`
//!   are the id and token of the principal NAME created earlier; `<client_id>` and
//!   `<client_secret>` are the latest reply's. A placeholder left unfilled fails the test.
//!
//! Every command must exit 0; the two gateway calls must be allowed and refused as the
//! README says.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::{BIN, Reaped, charter, free_port, wait_exit};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The walkthrough's commands: the `sh` blocks of the section `heading`, continuation
/// lines joined, comments and blank lines dropped.
fn walkthrough(readme: &str, heading: &str) -> Vec<String> {
    let section = readme
        .split(&format!("\n{heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("README.md has no section {heading:?}"));
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in section.lines() {
        if line.starts_with("```") {
            in_block = line == "```sh";
            continue;
        }
        if !in_block {
            continue;
        }
        let line = strip_comment(line);
        match line.strip_suffix('\\') {
            Some(start) => pending.push_str(start),
            None => {
                pending.push_str(line);
                let command = std::mem::take(&mut pending).trim().to_owned();
                if !command.is_empty() {
                    commands.push(command);
                }
            }
        }
    }
    commands
}

/// A shell line without its comment: a `#` outside quotes that starts a word.
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev.is_whitespace() => return line[..i].trim_end(),
            _ => {}
        }
        prev = c;
    }
    line.trim_end()
}

/// Creating verbs, whose replies fill placeholders.
fn creates(command: &str) -> bool {
    let words: Vec<&str> = command.split_whitespace().collect();
    words.windows(3).any(|w| {
        w[0] == "charter" && ["add", "publish", "request", "approve", "issue"].contains(&w[2])
    })
}

/// The values placeholders take, learnt from replies.
#[derive(Default)]
struct Placeholders(HashMap<String, String>);

impl Placeholders {
    fn learn(&mut self, reply: &Value) {
        let text = |k: &str| reply.get(k).and_then(Value::as_str).map(str::to_owned);
        if let Some(id) = text("id")
            && let Some(prefix) = id.get(..4).filter(|p| p.ends_with('_'))
        {
            self.0.insert(format!("<{prefix}…>"), id.clone());
            if let (Some(name), Some(token)) = (text("name"), text("token")) {
                self.0.insert(format!("<{name}'s {prefix}…>"), id.clone());
                self.0.insert(format!("<{name}'s token>"), token);
            }
        }
        for key in ["client_id", "client_secret"] {
            if let Some(v) = text(key) {
                self.0.insert(format!("<{key}>"), v);
            }
        }
    }

    fn fill(&self, command: &str) -> String {
        let mut out = command.to_owned();
        for (k, v) in &self.0 {
            out = out.replace(k, v);
        }
        if let Some(start) = out.find('<')
            && out[start..].contains('>')
        {
            panic!(
                "an unfilled placeholder in {command:?} (known: {:?})",
                self.0.keys()
            );
        }
        out
    }
}

/// One `sh` process fed a command at a time; each answer ends at a marker line carrying
/// the command's exit status.
struct Session {
    stdin: std::process::ChildStdin,
    lines: mpsc::Receiver<String>,
    child: std::process::Child,
    dir: PathBuf,
    count: usize,
}

const DONE: &str = "__readme_done__";

impl Session {
    fn start(dir: &Path, env: &[(&str, String)]) -> Self {
        let mut child = Command::new("sh")
            .current_dir(dir)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            stdin: child.stdin.take().unwrap(),
            lines,
            child,
            dir: dir.to_owned(),
            count: 0,
        }
    }

    /// Runs one command; returns its exit status, stdout and stderr.
    fn run(&mut self, command: &str) -> (i32, String, String) {
        self.count += 1;
        let err = self.dir.join(format!("stderr.{}", self.count));
        writeln!(
            self.stdin,
            "{{\n{command}\n}} 2>'{}'\nprintf '\\n{DONE} %s\\n' \"$?\"",
            err.display()
        )
        .unwrap();
        self.stdin.flush().unwrap();
        let mut out = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("{command:?} did not finish ({e}): {out:?}"));
            if let Some(status) = line.strip_prefix(&format!("{DONE} ")) {
                let stderr = std::fs::read_to_string(&err).unwrap_or_default();
                let mut stdout = out.join("\n");
                // The marker starts on a line of its own.
                if stdout.ends_with('\n') || out.last().is_some_and(String::is_empty) {
                    stdout.pop();
                }
                return (status.trim().parse().unwrap(), stdout, stderr);
            }
            out.push(line);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walkthrough_runs_against_the_demo() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let commands = walkthrough(&readme, "## A walkthrough against the demo");
    assert!(commands.len() >= 10, "{commands:#?}");

    let dir = tempfile::tempdir().unwrap();
    let (control, gateway, upstream) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let ports = {
        let (control, gateway, upstream) = (control.clone(), gateway.clone(), upstream.clone());
        move |s: &str| {
            s.replace("127.0.0.1:7600", &control)
                .replace("127.0.0.1:7601", &gateway)
                .replace("127.0.0.1:7602", &upstream)
        }
    };
    let example = std::fs::read_to_string(repo_root().join("examples/returns.toml")).unwrap();
    std::fs::create_dir(dir.path().join("examples")).unwrap();
    std::fs::write(dir.path().join("examples/returns.toml"), ports(&example)).unwrap();

    // `cargo run -p charter -- demo`, from the root, on free ports.
    let mut demo = Reaped(
        charter()
            .current_dir(dir.path())
            .args(["demo", "--listen", &control, "--gateway-listen", &gateway])
            .args(["--upstream-listen", &upstream])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let stdout = demo.0.stdout.take().unwrap();
    let ready = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("Press Ctrl-C"))
    })
    .await
    .unwrap();
    assert!(ready, "the demo did not come up");
    assert!(dir.path().join("charter-demo/admin.token").exists());

    let bin_dir = Path::new(BIN).parent().unwrap().to_owned();
    let env = vec![
        (
            "PATH",
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        ),
        ("CHARTER_SERVER", format!("http://{control}")),
    ];
    let root = dir.path().to_owned();
    let outputs = tokio::task::spawn_blocking(move || {
        let mut session = Session::start(&root, &env);
        let mut known = Placeholders::default();
        let mut outputs = Vec::new();
        for command in &commands {
            let mut line = known.fill(&ports(command));
            if creates(&line) {
                line.push_str(" --json");
            }
            let (status, out, err) = session.run(&line);
            assert_eq!(status, 0, "README command failed: {line}\n{out}\n{err}");
            if creates(&line) {
                let reply: Value = serde_json::from_str(&out)
                    .unwrap_or_else(|e| panic!("{line}: not JSON ({e}): {out}"));
                known.learn(&reply);
            }
            outputs.push((command.clone(), out));
        }
        outputs
    })
    .await
    .unwrap();

    let output_of = |needle: &str| {
        outputs
            .iter()
            .find(|(c, _)| c.contains(needle))
            .map(|(_, o)| o.as_str())
            .unwrap_or_else(|| panic!("no command with {needle:?}"))
    };
    // The allowed call reached the demo upstream as the new partner's grant.
    let allowed: Value =
        serde_json::from_str(output_of("/returns/returns/42")).expect("the upstream's JSON");
    assert_eq!(allowed["status"], "awaiting_pickup", "{allowed}");
    assert!(allowed["served_to"]["grant"].is_string(), "{allowed}");
    // The other is refused for the reason the README gives.
    assert_eq!(
        output_of("-X POST"),
        r#"{"error":"access_denied","reason":"scope_not_granted"}"#
    );
    let tail = output_of("audit tail");
    assert!(
        tail.lines()
            .any(|l| l.contains("access.decision") && l.ends_with("scope_not_granted")),
        "{tail}"
    );
    assert!(output_of("audit verify").starts_with("audit chain intact"));
    // The grant list names the new partner and API beside their ids.
    let list = output_of("grant list");
    assert!(
        list.contains("Umbrella Freight (prt_") && list.contains("returns (api_"),
        "{list}"
    );

    let _ = Command::new("kill")
        .args(["-TERM", &demo.0.id().to_string()])
        .status();
    let status = wait_exit(&mut demo.0, Duration::from_secs(20)).await;
    assert!(status.success(), "{status:?}");
    assert!(
        !dir.path().join("charter-demo").exists(),
        "the demo removes its directory on exit"
    );
}

#[test]
fn walkthrough_parsing() {
    let readme = "x\n## Walk\n\ntext\n```sh\nexport A=$(cat f)   # comment\ncharter grant request --partner <prt_…> \\\n    --scope a # more\necho '#not' \"#a\" b#c\n```\n```json\n{}\n```\n## Next\n```sh\nnope\n```\n";
    assert_eq!(
        walkthrough(readme, "## Walk"),
        [
            "export A=$(cat f)",
            "charter grant request --partner <prt_…>     --scope a",
            "echo '#not' \"#a\" b#c",
        ]
    );
    assert!(creates(
        "CHARTER_TOKEN=x charter grant approve grt_1 --ticket CHG-1"
    ));
    assert!(!creates("charter grant list --partner prt_1"));

    let mut known = Placeholders::default();
    known.learn(&serde_json::json!({ "id": "prn_1", "name": "carol", "token": "chp_x" }));
    known.learn(&serde_json::json!({ "id": "grt_9", "client_id": "chc_1" }));
    assert_eq!(
        known.fill(
            "T=<carol's token> charter grant approve <grt_…> --owner <carol's prn_…> <client_id>"
        ),
        "T=chp_x charter grant approve grt_9 --owner prn_1 chc_1"
    );
    let unfilled = std::panic::catch_unwind(|| known.fill("--partner <prt_…>"));
    assert!(unfilled.is_err());
}

/// Relative link targets in a Markdown text: `[text](target)`, without the `#anchor`.
fn links(markdown: &str) -> Vec<(String, Option<String>)> {
    let mut found = Vec::new();
    let mut rest = markdown;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = &rest[..end];
        rest = &rest[end..];
        if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((p, a)) => (p, Some(a.to_owned())),
            None => (target, None),
        };
        found.push((path.to_owned(), anchor));
    }
    found
}

/// GitHub's anchor for a heading: lower case, spaces to `-`, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(markdown: &str) -> Vec<String> {
    markdown
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = repo_root();
    let mut files = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (target, fragment) in links(&text) {
            checked += 1;
            let resolved = if target.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(&target)
            };
            if !resolved.exists() {
                broken.push(format!("{}: {target} does not exist", file.display()));
                continue;
            }
            if let Some(fragment) = fragment
                && resolved.extension().is_some_and(|e| e == "md")
            {
                let heads = anchors(&std::fs::read_to_string(&resolved).unwrap());
                if !heads.contains(&fragment) {
                    broken.push(format!(
                        "{}: {target}#{fragment}: no such heading",
                        file.display()
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    assert!(checked >= 8, "the README and docs link to each other");
}

#[test]
fn links_and_anchors_are_read_as_github_does() {
    let text =
        "see [api](docs/api.md#command-line), [x](https://e.org/a), [top](#intro) and [a b](c d)";
    assert_eq!(
        links(text),
        [
            ("docs/api.md".to_owned(), Some("command-line".to_owned())),
            (String::new(), Some("intro".to_owned())),
        ]
    );
    assert_eq!(anchor(" Reason codes"), "reason-codes");
    assert_eq!(anchor("OAuth 2.0 token service"), "oauth-20-token-service");
    assert_eq!(
        anchors("# A\ntext\n## Lists and paging\n"),
        ["a", "lists-and-paging"]
    );
}
