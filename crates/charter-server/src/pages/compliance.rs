//! The compliance report as a page: a summary, then one table per framework with each
//! control's status, rule, evidence and the finding kinds that failed it.

use askama::Template;

use super::Node;
use crate::services::compliance::{ComplianceReport, FRAMEWORKS, Summary, text};

#[derive(Template)]
#[template(path = "compliance.html")]
pub struct CompliancePage<'a> {
    /// The console's navigation, when the report is shown inside the console.
    nav: Option<super::Nav>,
    partner: Option<PartnerRef<'a>>,
    generated_at: String,
    window_days: i64,
    summary: &'a Summary,
    frameworks: Vec<Framework<'a>>,
}

struct PartnerRef<'a> {
    id: &'a str,
    name: &'a str,
}

struct Framework<'a> {
    name: &'static str,
    controls: Vec<Row<'a>>,
}

struct Row<'a> {
    id: &'a str,
    title: &'a str,
    rule: &'a str,
    /// The status as a class name (`pass`, `fail`, `not_applicable`,
    /// `enforced_by_construction`).
    status: &'static str,
    status_label: String,
    evidence: Node,
    findings: Vec<String>,
    /// Sub-rules enforced by construction, shown apart from what was evaluated.
    by_construction: Vec<Constructed<'a>>,
}

struct Constructed<'a> {
    rule: &'a str,
    enforced_by: &'a str,
    status: &'static str,
    status_label: String,
}

impl<'a> CompliancePage<'a> {
    pub fn new(r: &'a ComplianceReport) -> Self {
        let partner = match (&r.scope.id, &r.scope.name) {
            (Some(id), Some(name)) => Some(PartnerRef { id, name }),
            _ => None,
        };
        let frameworks = FRAMEWORKS
            .iter()
            .map(|&name| Framework {
                name,
                controls: r
                    .controls
                    .iter()
                    .filter(|c| c.framework == name)
                    .map(|c| Row {
                        id: c.control,
                        title: c.title,
                        rule: c.rule,
                        status: c.status.as_str(),
                        status_label: c.status.as_str().replace('_', " "),
                        evidence: Node::of(&c.evidence),
                        findings: c.findings.iter().map(text).collect(),
                        by_construction: c
                            .by_construction
                            .iter()
                            .map(|b| Constructed {
                                rule: b.rule,
                                enforced_by: b.enforced_by,
                                status: b.status.as_str(),
                                status_label: b.status.as_str().replace('_', " "),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        Self {
            nav: None,
            partner,
            generated_at: r.generated_at.to_string(),
            window_days: r.window_days,
            summary: &r.summary,
            frameworks,
        }
    }

    /// The same report inside the console, under its navigation.
    pub fn with_nav(mut self, nav: super::Nav) -> Self {
        self.nav = Some(nav);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::compliance::{Construction, Control, ReportScope, Status};
    use crate::services::findings::FindingKind;
    use serde_json::json;

    #[test]
    fn names_and_evidence_render_escaped() {
        let report = ComplianceReport {
            generated_at: "2026-11-30T10:00:00Z".parse().unwrap(),
            scope: ReportScope {
                kind: "partner",
                id: Some("prt_1".into()),
                name: Some("<script>alert(1)</script> & Co".into()),
            },
            summary: Summary {
                pass: 0,
                fail: 1,
                not_applicable: 0,
                enforced_by_construction: 0,
            },
            window_days: 30,
            controls: vec![Control {
                framework: FRAMEWORKS[2],
                control: "NHI1",
                title: "Improper Offboarding",
                rule: "a rule",
                status: Status::Fail,
                evidence: json!({ "partner": "<script>x</script>" }),
                findings: vec![FindingKind::OwnerMissing],
                by_construction: vec![Construction {
                    rule: "No <b>grant</b> approves itself.",
                    enforced_by: "Grant::decide",
                    status: Status::EnforcedByConstruction,
                    violations: 0,
                }],
            }],
        };
        let page = CompliancePage::new(&report).render().unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert!(!page.contains("<script"), "{page}");
        assert!(
            page.contains(
                "partner &#60;script&#62;alert(1)&#60;/script&#62; &#38; Co (<code>prt_1</code>)"
            ),
            "{page}"
        );
        assert!(page.contains("<tr id=\"NHI1\">"), "{page}");
        assert!(
            page.contains("<span class=\"badge fail\">fail</span>"),
            "{page}"
        );
        assert!(page.contains("<h2>OWASP NHI Top 10 (2025)</h2>"), "{page}");
        assert!(page.contains("<td>owner_missing</td>"), "{page}");
        // A sub-rule enforced by construction is labelled so, never as a pass.
        assert!(
            page.contains("<span class=\"badge enforced_by_construction\">enforced by construction</span> No &#60;b&#62;grant&#60;/b&#62; approves itself. (Grant::decide)"),
            "{page}"
        );
        assert!(page.contains(&format!("href=\"{}\"", super::super::stylesheet_href())));
        assert!(!page.contains("<style"), "no inline style: {page}");
    }
}
