//! What a queue item is (SPEC §10): an *envelope* — a JSON object with a valid string `id` —
//! or any other string, which is its own payload under a stable `h-…` id. Reading an item
//! never fails and never panics: a JSON object whose `id` breaks the rule is a plain item, and
//! an envelope whose other fields are wrong carries a `problem` that says what is wrong (the
//! agent dead-letters it with that reason rather than guess).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Longest envelope id.
pub const MAX_ID_LEN: usize = 128;
/// Most ids one job may depend on.
pub const MAX_DEPENDS_ON: usize = 32;
/// Items longer than this are never read as envelopes (they run as plain items).
pub const MAX_ENVELOPE_LEN: usize = 1024 * 1024;

/// SPEC §10's id rule: 1 to 128 characters of `[A-Za-z0-9._:-]`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

/// The id rule as a person reads it.
pub const ID_RULE: &str = "1 to 128 characters of A-Z a-z 0-9 . _ : -";

/// The id of a plain item: `h-` and the first 16 hex digits of its SHA-256, so equal items
/// share one id (and one history record).
pub fn hashed_id(item: &[u8]) -> String {
    let digest = Sha256::digest(item);
    let mut id = String::with_capacity(18);
    id.push_str("h-");
    for b in &digest[..8] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// The field of a job in its queue's retry-count hash (`agent-office:retries:queue:<q>`): the
/// item itself when short, else `h:` and its SHA-256.
pub fn retry_field(item: &[u8]) -> Vec<u8> {
    if item.len() <= 64 {
        let mut f = b"j:".to_vec();
        f.extend_from_slice(item);
        f
    } else {
        let mut f = b"h:".to_vec();
        f.extend(
            Sha256::digest(item)
                .iter()
                .flat_map(|b| format!("{b:02x}").into_bytes()),
        );
        f
    }
}

/// A queue item as a job.
#[derive(Clone, Debug, PartialEq)]
pub struct Item<'a> {
    pub id: String,
    /// What the handler gets on stdin.
    pub payload: Cow<'a, [u8]>,
    pub envelope: bool,
    pub deadline: Option<DateTime<Utc>>,
    pub depends_on: Vec<String>,
    /// An envelope whose fields are wrong: why (the job is dead-lettered with it, never run).
    pub problem: Option<String>,
}

/// Reads a queue item (SPEC §10).
pub fn read_item(item: &[u8]) -> Item<'_> {
    match envelope(item) {
        Some(e) => e,
        None => Item {
            id: hashed_id(item),
            payload: Cow::Borrowed(item),
            envelope: false,
            deadline: None,
            depends_on: Vec::new(),
            problem: None,
        },
    }
}

fn envelope(item: &[u8]) -> Option<Item<'_>> {
    let first = item.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' || item.len() > MAX_ENVELOPE_LEN {
        return None;
    }
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(item) else {
        return None;
    };
    let id = match map.get("id") {
        Some(Value::String(id)) if is_valid_id(id) => id.clone(),
        _ => return None,
    };
    let payload = match map.remove("payload") {
        None => Cow::Borrowed(item),
        Some(Value::String(s)) => Cow::Owned(s.into_bytes()),
        Some(other) => Cow::Owned(other.to_string().into_bytes()),
    };
    let mut problems = Vec::new();
    let deadline = match map.get("deadline") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                problems.push("deadline: not an RFC 3339 time".to_string());
                None
            }
        },
        Some(_) => {
            problems.push("deadline: not an RFC 3339 time".to_string());
            None
        }
    };
    let depends_on = match map.get("depends_on") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ids)) => {
            let good: Vec<String> = ids
                .iter()
                .filter_map(|v| v.as_str().filter(|s| is_valid_id(s)).map(String::from))
                .collect();
            if good.len() != ids.len() {
                problems.push(format!("depends_on: every entry must be an id ({ID_RULE})"));
            } else if good.len() > MAX_DEPENDS_ON {
                problems.push(format!("depends_on: at most {MAX_DEPENDS_ON} ids"));
            } else if good.contains(&id) {
                problems.push("depends_on: a job cannot depend on itself".to_string());
            }
            good
        }
        Some(_) => {
            problems.push("depends_on: not a list of ids".to_string());
            Vec::new()
        }
    };
    let problem = (!problems.is_empty()).then(|| format!("bad envelope: {}", problems.join("; ")));
    Some(Item {
        id,
        payload,
        envelope: true,
        deadline,
        depends_on,
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_items_get_a_stable_hashed_id() {
        let a = read_item(b"render frame 7");
        assert!(!a.envelope);
        assert_eq!(a.payload.as_ref(), b"render frame 7");
        assert_eq!(a.id.len(), 18);
        assert!(a.id.starts_with("h-"));
        assert_eq!(a.id, read_item(b"render frame 7").id);
        assert_ne!(a.id, read_item(b"render frame 8").id);
        // sha256("abc") = ba7816bf8f01cfea…
        assert_eq!(hashed_id(b"abc"), "h-ba7816bf8f01cfea");
    }

    #[test]
    fn envelopes_give_their_payload_deadline_and_dependencies() {
        let e = read_item(br#"{"id":"job-1","payload":"frame 7","deadline":"2026-12-07T10:00:00Z","depends_on":["a","b"]}"#);
        assert!(e.envelope);
        assert_eq!(e.id, "job-1");
        assert_eq!(e.payload.as_ref(), b"frame 7");
        assert_eq!(
            e.deadline.unwrap().to_rfc3339(),
            "2026-12-07T10:00:00+00:00"
        );
        assert_eq!(e.depends_on, ["a", "b"]);
        assert_eq!(e.problem, None);
        // a JSON payload arrives as its text; no payload → the whole item
        let j = read_item(br#"{"id":"j","payload":{"n":1}}"#);
        assert_eq!(j.payload.as_ref(), br#"{"n":1}"#);
        let whole = br#"{"id":"w","frame":3}"#;
        assert_eq!(read_item(whole).payload.as_ref(), whole);
    }

    #[test]
    fn malformed_envelopes_run_as_plain_items_or_say_what_is_wrong() {
        // an id that breaks the rule: not an envelope at all
        let long = format!(r#"{{"id":"{}"}}"#, "x".repeat(129));
        let r = read_item(long.as_bytes());
        assert!(!r.envelope && r.id.starts_with("h-"));
        let huge = format!(r#"{{"id":"{}"}}"#, "x".repeat(1024 * 1024));
        assert!(!read_item(huge.as_bytes()).envelope);
        for bad in [
            r#"{"id":"a b"}"#,
            r#"{"id":7}"#,
            r#"{"id":""}"#,
            "{not json",
            "[1]",
        ] {
            let r = read_item(bad.as_bytes());
            assert!(!r.envelope, "{bad}");
            assert_eq!(r.payload.as_ref(), bad.as_bytes());
        }
        let cases = [
            (r#"{"id":"a","depends_on":"b"}"#, "depends_on: not a list"),
            (
                r#"{"id":"a","depends_on":["b",3]}"#,
                "depends_on: every entry",
            ),
            (
                r#"{"id":"a","depends_on":["a"]}"#,
                "cannot depend on itself",
            ),
            (
                r#"{"id":"a","deadline":"tomorrow"}"#,
                "deadline: not an RFC 3339",
            ),
            (r#"{"id":"a","deadline":17}"#, "deadline: not an RFC 3339"),
        ];
        for (item, why) in cases {
            let r = read_item(item.as_bytes());
            assert!(r.envelope, "{item}");
            let p = r.problem.unwrap_or_default();
            assert!(
                p.starts_with("bad envelope: ") && p.contains(why),
                "{item}: {p}"
            );
        }
        let many: Vec<String> = (0..33).map(|i| format!("\"d{i}\"")).collect();
        let item = format!(r#"{{"id":"a","depends_on":[{}]}}"#, many.join(","));
        assert!(read_item(item.as_bytes())
            .problem
            .unwrap()
            .contains("at most 32"));
    }

    #[test]
    fn the_id_rule() {
        assert!(is_valid_id("sched:nightly:2026-12-07T03:00:00Z"));
        assert!(is_valid_id(&"x".repeat(128)));
        assert!(!is_valid_id(&"x".repeat(129)));
        assert!(!is_valid_id("a/b"));
        assert!(!is_valid_id("{tag}"));
    }
}
