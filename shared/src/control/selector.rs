//! Label selectors with Kubernetes semantics: `matchLabels` and every `matchExpressions` term
//! are ANDed; `In`/`NotIn` need at least one value; `Exists`/`NotExists` take none; `Gt`/`Lt`
//! take exactly one integer, and a label that is not an integer does not match them. An empty
//! selector matches every agent.
//!
//! A selector is parsed from JSON in full before anything uses it, so a malformed one is
//! refused whole (naming the field) and never half-applied.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::valid::{self, FieldError, Labels};

/// Most terms one selector may hold.
const MAX_TERMS: usize = 32;
/// Most values one term may list.
const MAX_VALUES: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    NotExists,
    Gt,
    Lt,
}

impl Operator {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "In" => Self::In,
            "NotIn" => Self::NotIn,
            "Exists" => Self::Exists,
            "NotExists" => Self::NotExists,
            "Gt" => Self::Gt,
            "Lt" => Self::Lt,
            _ => return None,
        })
    }
}

/// One `matchExpressions` term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    #[serde(default)]
    pub values: Vec<String>,
}

/// A validated selector; serialises back to the JSON it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    #[serde(rename = "matchLabels", default)]
    pub match_labels: Labels,
    #[serde(rename = "matchExpressions", default)]
    pub match_expressions: Vec<Requirement>,
}

impl Selector {
    /// Parses and validates the selector at `field` (e.g. `"selector"`).
    pub fn parse(field: &str, v: &Value) -> Result<Self, FieldError> {
        let obj = v
            .as_object()
            .ok_or_else(|| FieldError::new(field, "must be an object"))?;
        if let Some(k) = obj
            .keys()
            .find(|k| *k != "matchLabels" && *k != "matchExpressions")
        {
            return Err(FieldError::new(
                format!("{field}.{k}"),
                "unknown field; a selector has matchLabels and matchExpressions",
            ));
        }
        let mut sel = Selector::default();
        if let Some(ml) = obj.get("matchLabels").filter(|v| !v.is_null()) {
            let f = format!("{field}.matchLabels");
            let ml = ml
                .as_object()
                .ok_or_else(|| FieldError::new(&f, "must be an object of strings"))?;
            for (k, v) in ml {
                let v = v
                    .as_str()
                    .ok_or_else(|| FieldError::new(format!("{f}.{k}"), "must be a string"))?;
                sel.match_labels.insert(k.clone(), v.to_string());
            }
            valid::labels(&f, &sel.match_labels)?;
        }
        if let Some(me) = obj.get("matchExpressions").filter(|v| !v.is_null()) {
            let f = format!("{field}.matchExpressions");
            let terms = me
                .as_array()
                .ok_or_else(|| FieldError::new(&f, "must be an array"))?;
            if terms.len() > MAX_TERMS {
                return Err(FieldError::new(&f, format!("at most {MAX_TERMS} terms")));
            }
            for (i, t) in terms.iter().enumerate() {
                sel.match_expressions
                    .push(parse_requirement(&format!("{f}[{i}]"), t)?);
            }
        }
        Ok(sel)
    }

    /// Parses the URL form (`?selector=` holds the JSON).
    pub fn parse_str(field: &str, s: &str) -> Result<Self, FieldError> {
        let v: Value = serde_json::from_str(s)
            .map_err(|e| FieldError::new(field, format!("is not JSON: {e}")))?;
        Self::parse(field, &v)
    }

    /// Whether an agent with these labels matches.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.explain(labels).is_ok()
    }

    /// `Ok` when the labels match, else the first term that excludes them and why.
    pub fn explain(&self, labels: &Labels) -> Result<(), String> {
        for (k, want) in &self.match_labels {
            match labels.get(k) {
                Some(v) if v == want => {}
                Some(v) => return Err(format!("matchLabels: `{k}` is `{v}`, not `{want}`")),
                None => return Err(format!("matchLabels: `{k}` is missing")),
            }
        }
        for (i, r) in self.match_expressions.iter().enumerate() {
            r.explain(labels.get(&r.key).map(String::as_str))
                .map_err(|why| format!("matchExpressions[{i}]: {why}"))?;
        }
        Ok(())
    }
}

impl Requirement {
    fn explain(&self, value: Option<&str>) -> Result<(), String> {
        let k = &self.key;
        let list = || self.values.join(", ");
        match (self.operator, value) {
            (Operator::Exists, Some(_)) | (Operator::NotExists, None) => Ok(()),
            (Operator::Exists, None) => Err(format!("`{k}` is missing")),
            (Operator::NotExists, Some(_)) => Err(format!("`{k}` exists")),
            (Operator::In, Some(v)) if self.values.iter().any(|w| w == v) => Ok(()),
            (Operator::In, Some(v)) => Err(format!("`{k}` is `{v}`, not in [{}]", list())),
            (Operator::In, None) => Err(format!("`{k}` is missing")),
            (Operator::NotIn, Some(v)) if self.values.iter().any(|w| w == v) => {
                Err(format!("`{k}` is `{v}`, which is in [{}]", list()))
            }
            (Operator::NotIn, _) => Ok(()),
            (Operator::Gt | Operator::Lt, None) => Err(format!("`{k}` is missing")),
            (op @ (Operator::Gt | Operator::Lt), Some(v)) => {
                // Validation guarantees exactly one integer value.
                let bound: i64 = self
                    .values
                    .first()
                    .and_then(|b| b.parse().ok())
                    .unwrap_or(0);
                let Ok(n) = v.parse::<i64>() else {
                    return Err(format!("`{k}` is not an integer (`{v}`)"));
                };
                let (ok, word) = if op == Operator::Gt {
                    (n > bound, "greater")
                } else {
                    (n < bound, "less")
                };
                if ok {
                    Ok(())
                } else {
                    Err(format!("`{k}` is {n}, not {word} than {bound}"))
                }
            }
        }
    }
}

fn parse_requirement(field: &str, v: &Value) -> Result<Requirement, FieldError> {
    let obj = v
        .as_object()
        .ok_or_else(|| FieldError::new(field, "must be an object"))?;
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "key" | "operator" | "values"))
    {
        return Err(FieldError::new(
            format!("{field}.{k}"),
            "unknown field; a term has key, operator and values",
        ));
    }
    let key = obj
        .get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| FieldError::new(format!("{field}.key"), "must be a string"))?;
    valid::label_key(&format!("{field}.key"), key)?;
    let op_field = format!("{field}.operator");
    let op_text = obj
        .get("operator")
        .and_then(Value::as_str)
        .ok_or_else(|| FieldError::new(&op_field, "must be a string"))?;
    let operator = Operator::parse(op_text).ok_or_else(|| {
        FieldError::new(
            &op_field,
            format!("unknown operator {op_text:?}; use In, NotIn, Exists, NotExists, Gt or Lt"),
        )
    })?;
    let vf = format!("{field}.values");
    let values: Vec<String> = match obj.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > MAX_VALUES {
                return Err(FieldError::new(&vf, format!("at most {MAX_VALUES} values")));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let s = v
                        .as_str()
                        .ok_or_else(|| FieldError::new(format!("{vf}[{i}]"), "must be a string"))?;
                    valid::label_value(&format!("{vf}[{i}]"), s)?;
                    Ok(s.to_string())
                })
                .collect::<Result<_, FieldError>>()?
        }
        Some(_) => return Err(FieldError::new(&vf, "must be an array of strings")),
    };
    match operator {
        Operator::In | Operator::NotIn if values.is_empty() => {
            return Err(FieldError::new(
                &vf,
                format!("{op_text} needs at least one value"),
            ));
        }
        Operator::Exists | Operator::NotExists if !values.is_empty() => {
            return Err(FieldError::new(&vf, format!("{op_text} takes no values")));
        }
        Operator::Gt | Operator::Lt => {
            if values.len() != 1 {
                return Err(FieldError::new(
                    &vf,
                    format!("{op_text} takes exactly one integer value"),
                ));
            }
            if values[0].parse::<i64>().is_err() {
                return Err(FieldError::new(
                    format!("{vf}[0]"),
                    format!("{op_text} needs an integer, not {:?}", values[0]),
                ));
            }
        }
        _ => {}
    }
    Ok(Requirement {
        key: key.to_string(),
        operator,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sel(v: Value) -> Selector {
        Selector::parse("selector", &v).unwrap()
    }

    fn term(key: &str, op: &str, values: &[&str]) -> Selector {
        sel(json!({"matchExpressions": [{"key": key, "operator": op, "values": values}]}))
    }

    #[test]
    fn every_operator_against_present_missing_and_odd_labels() {
        let prod_gpu = labels(&[("env", "prod"), ("gpu", "2"), ("memory", "lots")]);
        let bare = labels(&[]);
        // (selector, labels, expected)
        let cases: Vec<(Selector, &Labels, bool)> = vec![
            (term("env", "In", &["prod", "staging"]), &prod_gpu, true),
            (term("env", "In", &["dev"]), &prod_gpu, false),
            (term("env", "In", &["prod"]), &bare, false),
            (term("env", "NotIn", &["dev"]), &prod_gpu, true),
            (term("env", "NotIn", &["prod"]), &prod_gpu, false),
            (term("env", "NotIn", &["prod"]), &bare, true),
            (term("gpu", "Exists", &[]), &prod_gpu, true),
            (term("gpu", "Exists", &[]), &bare, false),
            (term("gpu", "NotExists", &[]), &prod_gpu, false),
            (term("gpu", "NotExists", &[]), &bare, true),
            (term("gpu", "Gt", &["1"]), &prod_gpu, true),
            (term("gpu", "Gt", &["2"]), &prod_gpu, false),
            (term("gpu", "Lt", &["3"]), &prod_gpu, true),
            (term("gpu", "Lt", &["-5"]), &prod_gpu, false),
            (term("gpu", "Gt", &["0"]), &bare, false),
            (term("memory", "Gt", &["0"]), &prod_gpu, false),
            (term("memory", "Lt", &["0"]), &prod_gpu, false),
            (
                sel(json!({"matchLabels": {"env": "prod"}})),
                &prod_gpu,
                true,
            ),
            (
                sel(json!({"matchLabels": {"env": "dev"}})),
                &prod_gpu,
                false,
            ),
            (sel(json!({"matchLabels": {"env": "prod"}})), &bare, false),
            (sel(json!({})), &bare, true),
            (
                sel(json!({"matchLabels": null, "matchExpressions": null})),
                &prod_gpu,
                true,
            ),
        ];
        for (i, (s, l, want)) in cases.iter().enumerate() {
            assert_eq!(s.matches(l), *want, "case {i}: {s:?} on {l:?}");
        }
    }

    #[test]
    fn terms_are_anded() {
        let s = sel(json!({
            "matchLabels": {"env": "prod"},
            "matchExpressions": [{"key": "gpu", "operator": "Gt", "values": ["1"]}]
        }));
        assert!(s.matches(&labels(&[("env", "prod"), ("gpu", "4")])));
        assert!(!s.matches(&labels(&[("env", "prod"), ("gpu", "1")])));
        assert!(!s.matches(&labels(&[("env", "dev"), ("gpu", "4")])));
    }

    #[test]
    fn explain_names_the_term_and_the_reason() {
        let s = term("memory", "Gt", &["8"]);
        let why = s.explain(&labels(&[("memory", "lots")])).unwrap_err();
        assert_eq!(
            why,
            "matchExpressions[0]: `memory` is not an integer (`lots`)"
        );
        let s = sel(json!({"matchLabels": {"env": "prod"}}));
        assert_eq!(
            s.explain(&labels(&[("env", "dev")])).unwrap_err(),
            "matchLabels: `env` is `dev`, not `prod`"
        );
        assert!(s.explain(&labels(&[])).unwrap_err().contains("missing"));
    }

    #[test]
    fn malformed_selectors_name_the_field() {
        let bad = |v: Value| Selector::parse("selector", &v).unwrap_err();
        let e =
            bad(json!({"matchExpressions": [{"key": "a", "operator": "Like", "values": ["x"]}]}));
        assert_eq!(e.field, "selector.matchExpressions[0].operator");
        let e = bad(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}));
        assert_eq!(e.field, "selector.matchExpressions[0].values");
        let e = bad(json!({"matchExpressions": [{"key": "a", "operator": "In"}]}));
        assert_eq!(e.field, "selector.matchExpressions[0].values");
        let e =
            bad(json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1.5"]}]}));
        assert_eq!(e.field, "selector.matchExpressions[0].values[0]");
        let e = bad(
            json!({"matchExpressions": [{"key": "a", "operator": "Lt", "values": ["1", "2"]}]}),
        );
        assert_eq!(e.field, "selector.matchExpressions[0].values");
        let e =
            bad(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}));
        assert_eq!(e.field, "selector.matchExpressions[0].values");
        let e = bad(json!({"matchExpressions": [{"key": "", "operator": "Exists"}]}));
        assert_eq!(e.field, "selector.matchExpressions[0].key");
        let e = bad(json!({"matchLabels": {"env": 3}}));
        assert_eq!(e.field, "selector.matchLabels.env");
        let e = bad(json!({"matchLabel": {}}));
        assert_eq!(e.field, "selector.matchLabel");
        let e = bad(json!([1]));
        assert_eq!(e.field, "selector");
        assert!(Selector::parse_str("selector", "{not json").is_err());
    }

    #[test]
    fn a_selector_round_trips_through_json() {
        let s = sel(json!({
            "matchLabels": {"env": "prod"},
            "matchExpressions": [{"key": "gpu", "operator": "NotIn", "values": ["0"]}]
        }));
        let back = Selector::parse("selector", &serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[A-Za-z]{0,6}".prop_map(Value::String),
            prop_oneof![Just("In"), Just("NotIn"), Just("Gt"), Just("Exists")]
                .prop_map(|s| Value::String(s.to_string())),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("matchLabels".to_string()),
                        Just("matchExpressions".to_string()),
                        Just("key".to_string()),
                        Just("operator".to_string()),
                        Just("values".to_string()),
                        "[a-z]{1,4}"
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn parsing_never_panics(v in arb_json(), l in prop::collection::btree_map("[a-z]{1,3}", "[0-9a-z]{0,3}", 0..4)) {
            if let Ok(s) = Selector::parse("selector", &v) {
                let _ = s.explain(&l);
            }
        }

        #[test]
        fn parsing_text_never_panics(s in ".{0,200}") {
            let _ = Selector::parse_str("selector", &s);
        }
    }
}
