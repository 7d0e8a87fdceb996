//! Input rules of Contract 3: ids, label keys and values are at most 63 characters of
//! `[A-Za-z0-9._-]`; ids and keys are non-empty. Every failure names the field to blame.

use std::collections::BTreeMap;

/// Labels of an agent, sorted by key so every rendering is stable.
pub type Labels = BTreeMap<String, String>;

/// Longest id, label key or label value.
pub const MAX_NAME: usize = 63;
/// Most labels one agent may carry.
pub const MAX_LABELS: usize = 64;

/// A request that failed validation: what is wrong and which field (a JSON path) is to blame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

fn name_problem(s: &str, may_be_empty: bool) -> Option<String> {
    if s.is_empty() {
        return (!may_be_empty).then(|| "must not be empty".to_string());
    }
    if s.len() > MAX_NAME {
        return Some(format!("is {} characters; at most {MAX_NAME}", s.len()));
    }
    s.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .map(|c| format!("has {c:?}; only A-Z a-z 0-9 . _ - are allowed"))
}

/// An agent or command id.
pub fn id(field: &str, s: &str) -> Result<(), FieldError> {
    match name_problem(s, false) {
        Some(m) => Err(FieldError::new(field, m)),
        None => Ok(()),
    }
}

/// A label key (non-empty).
pub fn label_key(field: &str, s: &str) -> Result<(), FieldError> {
    id(field, s)
}

/// A label value (may be empty).
pub fn label_value(field: &str, s: &str) -> Result<(), FieldError> {
    match name_problem(s, true) {
        Some(m) => Err(FieldError::new(field, m)),
        None => Ok(()),
    }
}

/// A whole label set, as given at `field`.
pub fn labels(field: &str, labels: &Labels) -> Result<(), FieldError> {
    if labels.len() > MAX_LABELS {
        return Err(FieldError::new(
            field,
            format!("has {} labels; at most {MAX_LABELS}", labels.len()),
        ));
    }
    for (k, v) in labels {
        label_key(&format!("{field}.{k}"), k)?;
        label_value(&format!("{field}.{k}"), v)?;
    }
    Ok(())
}

/// A short free-text field (hostname, os, a result message): bounded, no control characters.
pub fn text(field: &str, s: &str, max: usize) -> Result<(), FieldError> {
    if s.len() > max {
        return Err(FieldError::new(
            field,
            format!("is {} bytes; at most {max}", s.len()),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must not hold control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_contract() {
        assert!(id("agent_id", "render-host_1.a").is_ok());
        assert!(id("agent_id", &"a".repeat(63)).is_ok());
        let long = id("agent_id", &"a".repeat(64)).unwrap_err();
        assert_eq!(long.field, "agent_id");
        assert!(long.message.contains("at most 63"), "{long}");
        assert!(id("agent_id", "").is_err());
        assert!(id("agent_id", "a b").is_err());
        assert!(id("agent_id", "a:b").is_err());
        assert!(id("agent_id", "é").is_err());
        assert!(label_value("v", "").is_ok());
    }

    #[test]
    fn labels_name_the_bad_one() {
        let mut l = Labels::new();
        l.insert("env".into(), "prod".into());
        l.insert("zone".into(), "eu west".into());
        let e = labels("labels", &l).unwrap_err();
        assert_eq!(e.field, "labels.zone");
        let many: Labels = (0..65).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(labels("labels", &many).is_err());
    }

    #[test]
    fn text_is_bounded_and_printable() {
        assert!(text("hostname", "host-1", 255).is_ok());
        assert!(text("hostname", "a\nb", 255).is_err());
        assert!(text("hostname", &"x".repeat(256), 255).is_err());
    }
}
