//! `/openapi.json` is whole: every `$ref` to a component schema resolves, and every resource
//! of the admin API has its schema.

use serde_json::{Value, json};

use crate::harness::{Backend, TestApp};

const PREFIX: &str = "#/components/schemas/";

/// Every `#/components/schemas/X` reference in `spec` whose `X` is not a component schema.
fn dangling_refs(spec: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    if k == "$ref"
                        && let Some(r) = child.as_str()
                    {
                        out.push(r.to_owned());
                    }
                    walk(child, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut refs = Vec::new();
    walk(spec, &mut refs);
    let schemas = &spec["components"]["schemas"];
    let mut dangling: Vec<String> = refs
        .into_iter()
        .filter(|r| match r.strip_prefix(PREFIX) {
            Some(name) => schemas.get(name).is_none(),
            None => r.starts_with("#/"),
        })
        .collect();
    dangling.sort();
    dangling.dedup();
    dangling
}

#[test]
fn a_dangling_reference_is_found() {
    let spec = json!({
        "paths": {"/x": {"get": {"responses": {"200": {"content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Grant"}}}}}}}},
        "components": {"schemas": {
            "Grant": {"type": "object", "properties": {
                "time_window": {"$ref": "#/components/schemas/TimeWindow"},
                "days": {"type": "array", "items": {"$ref": "#/components/schemas/Weekday"}}}},
            "TimeWindow": {"type": "object"}}}
    });
    assert_eq!(dangling_refs(&spec), ["#/components/schemas/Weekday"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_schema_reference_resolves() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (s, spec) = app
        .call(reqwest::Method::GET, "/openapi.json", None, None)
        .await;
    assert_eq!(s, reqwest::StatusCode::OK);
    assert_eq!(
        dangling_refs(&spec),
        Vec::<String>::new(),
        "dangling $ref in /openapi.json"
    );
    for name in [
        "Principal",
        "PrincipalWithToken",
        "NewPrincipal",
        "Api",
        "Operation",
        "PublishApi",
        "Partner",
        "PartnerKind",
        "PartnerStatus",
        "NewPartner",
        "PatchPartner",
        "Grant",
        "GrantStatus",
        "GrantRequest",
        "Approval",
        "ApprovalDecision",
        "Decision",
        "Emergency",
        "TimeWindow",
        "Weekday",
        "DataClass",
        "Method",
        "Role",
        "Credential",
        "CredentialVersion",
        "CredentialKind",
        "CredentialStatus",
        "IssuedCredential",
        "NewCredential",
        "Review",
        "ReviewItem",
        "ReviewSubject",
        "UsageEvidence",
        "Attestation",
        "AttestBody",
        "StartReview",
        "Offboarding",
        "Check",
        "Canary",
        "OffboardingStatus",
    ] {
        assert!(
            spec["components"]["schemas"].get(name).is_some(),
            "openapi lacks schema {name}"
        );
    }
}
