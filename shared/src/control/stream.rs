//! The Redis side of command delivery that the server and the agent both speak: the per-agent
//! command stream (`keys::stream`), the agents' inbox (`keys::INBOX`), their entry fields and
//! the cursor an agent keeps (a stream id).

/// The field of a command-stream entry holding the `AgentCommand` JSON.
pub const COMMAND_FIELD: &str = "cmd";
/// The field of an inbox entry holding the `InboxMessage` JSON.
pub const INBOX_FIELD: &str = "msg";
/// The cursor before the first entry.
pub const START: &str = "0";

/// Whether `s` is a stream position an agent may send as `after`: `<ms>` or `<ms>-<seq>`.
pub fn is_cursor(s: &str) -> bool {
    let mut parts = s.splitn(2, '-');
    let ms = parts.next().unwrap_or("");
    let seq = parts.next().unwrap_or("0");
    !ms.is_empty()
        && ms.len() <= 20
        && seq.len() <= 20
        && ms.bytes().all(|b| b.is_ascii_digit())
        && !seq.is_empty()
        && seq.bytes().all(|b| b.is_ascii_digit())
}

/// The `XRANGE` start for the entries after `cursor`: `-` from the beginning (no cursor yet,
/// or [`START`]), else `(<cursor>` (exclusive).
pub fn range_after(cursor: &str) -> String {
    if cursor.is_empty() || cursor == START || cursor == "0-0" {
        "-".to_string()
    } else {
        format!("({cursor}")
    }
}

/// Whether cursor `a` (`<ms>-<seq>`, or empty for "the start") is after `b`.
pub fn is_after(a: &str, b: &str) -> bool {
    fn parts(s: &str) -> (u64, u64) {
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
    }
    !a.is_empty() && (b.is_empty() || parts(a) > parts(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_stream_ids_only() {
        assert!(is_cursor(START));
        assert!(is_cursor("1764620000000-0"));
        assert!(is_cursor("1764620000000"));
        for bad in ["", "-", "+", "12-", "(12-0", "1-2-3", &"9".repeat(40)] {
            assert!(!is_cursor(bad), "{bad:?}");
        }
    }

    #[test]
    fn cursors_compare_by_time_then_sequence() {
        assert!(is_after("2-0", "1-9"));
        assert!(is_after("1-10", "1-9"));
        assert!(!is_after("1-9", "1-9"));
        assert!(is_after("1-0", ""));
        assert!(!is_after("", "1-0"));
    }

    #[test]
    fn reading_after_a_cursor_excludes_it() {
        assert_eq!(range_after(""), "-");
        assert_eq!(range_after(START), "-");
        assert_eq!(range_after("0-0"), "-");
        assert_eq!(range_after("17-3"), "(17-3");
    }
}
