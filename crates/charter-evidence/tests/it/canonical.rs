//! RFC 8785 test vectors and escaping rules.

use charter_evidence::canonical::{CanonicalError, canonical_bytes, canonical_json};
use serde_json::{Value, json};

fn canon_text(input: &str) -> String {
    let value: Value = serde_json::from_str(input).unwrap();
    canonical_json(&value).unwrap()
}

#[test]
fn rfc8785_section_3_2_2_sample() {
    let input = r#"{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }"#;
    assert_eq!(
        canon_text(input),
        r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
    );
}

#[test]
fn rfc8785_section_3_2_3_utf16_key_order() {
    let input = r#"{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }"#;
    let expected = concat!(
        "{",
        r#""\r":"Carriage Return","#,
        r#""1":"One","#,
        "\"\u{80}\":\"Control\",",
        "\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",",
        "\"\u{20ac}\":\"Euro Sign\",",
        "\"\u{1f600}\":\"Emoji: Grinning Face\",",
        "\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"",
        "}"
    );
    assert_eq!(canon_text(input), expected);
}

#[test]
fn brief_number_examples() {
    for (input, want) in [
        ("1e+30", "1e+30"),
        ("1E30", "1e+30"),
        ("4.50", "4.5"),
        ("0.002", "0.002"),
        ("2e-3", "0.002"),
        ("1e-7", "1e-7"),
        ("-0", "0"),
        ("-0.0", "0"),
        ("333333333.33333329", "333333333.3333333"),
        ("1.0", "1"),
        ("100", "100"),
        ("-42", "-42"),
        ("1e21", "1e+21"),
        ("1e20", "100000000000000000000"),
        ("0.000001", "0.000001"),
    ] {
        assert_eq!(canon_text(input), want, "input {input}");
    }
}

#[test]
fn rfc8785_appendix_b_number_vectors() {
    let vectors: &[(u64, &str)] = &[
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"),
        (0xffefffffffffffff, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xc340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44b52d02c7e14af5, "9.999999999999997e+22"),
        (0x44b52d02c7e14af6, "1e+23"),
        (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
        (0x444b1ae4d6e2ef4e, "999999999999999700000"),
        (0x444b1ae4d6e2ef4f, "999999999999999900000"),
        (0x444b1ae4d6e2ef50, "1e+21"),
        (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
        (0x3eb0c6f7a0b5ed8d, "0.000001"),
        (0x41b3de4355555553, "333333333.3333332"),
        (0x41b3de4355555554, "333333333.33333325"),
        (0x41b3de4355555555, "333333333.3333333"),
        (0x41b3de4355555556, "333333333.3333334"),
        (0x41b3de4355555557, "333333333.33333343"),
        (0xbecbf647612f3696, "-0.0000033333333333333333"),
        (0x43143ff3c1cb0959, "1424953923781206.2"),
    ];
    for (bits, want) in vectors {
        let value = Value::from(f64::from_bits(*bits));
        assert_eq!(canonical_json(&value).unwrap(), *want, "bits {bits:#018x}");
        // The output parses back to the same double and re-encodes identically.
        assert_eq!(canon_text(want), *want, "re-encoding {want}");
    }
}

#[test]
fn large_integral_doubles_round_trip_through_integer_parsing() {
    // 2^60 as a double prints in integer form; serde_json re-parses that text
    // as a u64, which must canonicalize to the same text again.
    let text = canonical_json(&Value::from(2f64.powi(60))).unwrap();
    assert_eq!(text, "1152921504606847000");
    let reparsed: Value = serde_json::from_str(&text).unwrap();
    assert!(reparsed.is_u64());
    assert_eq!(canonical_json(&reparsed).unwrap(), text);
    // The exact integer 2^60 is not its own canonical form, so it is refused.
    assert!(matches!(
        canonical_json(&json!(1_u64 << 60)),
        Err(CanonicalError::NumberOutOfRange(_))
    ));
}

#[test]
fn integers_beyond_2_pow_53_are_rejected() {
    assert_eq!(
        canonical_json(&json!(9_007_199_254_740_992_u64)).unwrap(),
        "9007199254740992"
    );
    let err = canonical_json(&json!({"n": 9_007_199_254_740_993_u64})).unwrap_err();
    assert!(matches!(err, CanonicalError::NumberOutOfRange(ref n) if n == "9007199254740993"));
    assert!(matches!(
        canonical_json(&json!([-9_007_199_254_740_993_i64])),
        Err(CanonicalError::NumberOutOfRange(_))
    ));
}

#[test]
fn string_escaping_matches_json_stringify() {
    let mut input = String::new();
    for c in 0u32..0x20 {
        input.push(char::from_u32(c).unwrap());
    }
    input.push_str("\"\\/\u{7f}\u{2028}\u{2029}é€😀'<>&");
    let got = canonical_json(&Value::String(input)).unwrap();
    let want = concat!(
        r#"""#,
        r"\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007",
        r"\b\t\n\u000b\f\r\u000e\u000f",
        r"\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017",
        r"\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f",
        r#"\"\\/"#,
        "\u{7f}\u{2028}\u{2029}é€😀'<>&",
        r#"""#
    );
    assert_eq!(got, want);
}

#[test]
fn keys_are_escaped_and_sorted_and_nesting_is_canonical() {
    let value = json!({
        "b": [ {"z": 1, "a": {"y": null, "x": [true, false, []]}}, "s", 2.5 ],
        "a\n": {},
        "a": "",
        "": 0,
    });
    assert_eq!(
        canonical_json(&value).unwrap(),
        r#"{"":0,"a":"","a\n":{},"b":[{"a":{"x":[true,false,[]],"y":null},"z":1},"s",2.5]}"#
    );
}

#[test]
fn canonical_form_is_a_fixed_point() {
    let text = r#"{ "b" : [1, 2.0, {"d":"\u00e9", "c": -0.5e-10}], "a": "x" }"#;
    let once = canon_text(text);
    assert_eq!(canon_text(&once), once);
    assert_eq!(once, r#"{"a":"x","b":[1,2,{"c":-5e-11,"d":"é"}]}"#);
}

#[test]
fn canonical_bytes_serializes_then_canonicalizes() {
    #[derive(serde::Serialize)]
    struct Sample {
        zeta: u32,
        alpha: &'static str,
        mid: Option<f64>,
    }
    let bytes = canonical_bytes(&Sample {
        zeta: 7,
        alpha: "ä",
        mid: Some(0.5),
    })
    .unwrap();
    assert_eq!(bytes, r#"{"alpha":"ä","mid":0.5,"zeta":7}"#.as_bytes());

    let mut bad = std::collections::BTreeMap::new();
    bad.insert((1, 2), "non-string key");
    assert!(matches!(
        canonical_bytes(&bad),
        Err(CanonicalError::Serialize(_))
    ));
}
