//! Redis key names of the fixed contracts (SPEC §1–§2), in one place.

/// Prefix and suffix of a Contract-1 heartbeat key: `worker:<name>:heartbeat`.
pub const HEARTBEAT_PREFIX: &str = "worker:";
pub const HEARTBEAT_SUFFIX: &str = ":heartbeat";
/// The global pause flag, `"1"` while the market is trading.
pub const PAUSED: &str = "queue:paused";
/// Prefix of the per-consumer in-flight lists: `processing:queue:<q>:<consumer>`.
pub const PROCESSING_PREFIX: &str = "processing:queue:";

/// `worker:<name>:heartbeat`
pub fn heartbeat(name: &str) -> String {
    format!("{HEARTBEAT_PREFIX}{name}{HEARTBEAT_SUFFIX}")
}

/// `queue:<q>`
pub fn queue(q: &str) -> String {
    format!("queue:{q}")
}

/// `dead_letter:queue:<q>`
pub fn dead_letter(q: &str) -> String {
    format!("dead_letter:queue:{q}")
}

/// `processing:queue:<q>:<consumer>`
pub fn processing(q: &str, consumer: &str) -> String {
    format!("{PROCESSING_PREFIX}{q}:{consumer}")
}

/// Longest worker, queue or consumer name taken from a discovered key.
pub const MAX_NAME_LEN: usize = 128;

/// The rule for names found in key names (README "Contract 2"): 1 to [`MAX_NAME_LEN`] ASCII
/// letters, digits and `. _ - : @ / { }`. No spaces, quotes, brackets, control characters or
/// non-ASCII, so a key name can never break a line of the page, the API or an alert (a
/// `]` and a newline would forge an alert line). Keys whose names break it are not shown.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:@/{}".contains(&b))
}

/// [`is_valid_name`] as a person reads it, for every error that refuses a name.
pub const NAME_RULE: &str = "1 to 128 ASCII letters, digits and . _ - : @ / { }";

/// The worker name inside a heartbeat key, or `None` when the key is not one (or its name
/// breaks [`is_valid_name`]).
pub fn worker_of_heartbeat_key(key: &str) -> Option<&str> {
    let name = key
        .strip_prefix(HEARTBEAT_PREFIX)?
        .strip_suffix(HEARTBEAT_SUFFIX)?;
    is_valid_name(name).then_some(name)
}

/// The queue name inside a processing-list key. The consumer is the last `:` segment, so a
/// queue name may itself contain colons.
pub fn queue_of_processing_key(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PROCESSING_PREFIX)?;
    let (q, consumer) = rest.rsplit_once(':')?;
    (is_valid_name(q) && is_valid_name(consumer)).then_some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_keys_round_trip() {
        assert_eq!(heartbeat("image-render"), "worker:image-render:heartbeat");
        assert_eq!(
            worker_of_heartbeat_key("worker:image-render:heartbeat"),
            Some("image-render")
        );
        assert_eq!(worker_of_heartbeat_key("worker::heartbeat"), None);
        assert_eq!(worker_of_heartbeat_key("worker:x:beat"), None);
        assert_eq!(worker_of_heartbeat_key("queue:x"), None);
    }

    #[test]
    fn processing_keys_name_their_queue() {
        assert_eq!(
            queue_of_processing_key("processing:queue:music-render:host-1"),
            Some("music-render")
        );
        assert_eq!(
            queue_of_processing_key("processing:queue:a:b:consumer"),
            Some("a:b")
        );
        assert_eq!(queue_of_processing_key("processing:queue:lonely"), None);
        assert_eq!(queue_of_processing_key("processing:queue::c"), None);
        assert_eq!(queue_of_processing_key("processing:queue:a b:c"), None);
    }

    #[test]
    fn names_that_could_forge_a_line_are_refused() {
        assert!(is_valid_name("ai_trade"));
        assert!(is_valid_name("{img}"));
        assert!(is_valid_name("render-host-1.example/2@x"));
        let forged = "x] ok\n🟢 [music-render] worker recovered\n🔴 [y";
        assert_eq!(worker_of_heartbeat_key(&heartbeat(forged)), None);
        for bad in [
            "",
            "a b",
            "a]b",
            "a[b",
            "tab\there",
            "quo\"te",
            "é",
            &"x".repeat(129),
        ] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
        assert!(is_valid_name(&"x".repeat(128)));
        assert!(NAME_RULE.starts_with(&format!("1 to {MAX_NAME_LEN} ")));
        assert_eq!(processing("q", "c"), "processing:queue:q:c".to_string());
        assert_eq!(dead_letter("q"), "dead_letter:queue:q");
        assert_eq!(queue("q"), "queue:q");
    }
}
