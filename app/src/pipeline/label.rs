//! What a worker's HUD label says. Pure, so the words are tested natively and match the cards.

use shared::status::LinkStatus;
use shared::{Lang, WorkerView};

/// A piece of a label: its CSS class and its text.
pub type Span = (&'static str, String);
/// A line of a label.
pub type Line = Vec<Span>;

/// Full labels, two lines: name and state label; queue and dead letters, and for a down worker
/// its last beat. Compact labels (rows too close on screen): one line, the name with the status
/// icon and the problem if there is one.
pub fn lines(w: &WorkerView, compact: bool, lang: Lang) -> Vec<Line> {
    let status = w.status();
    let beat = format!("⚠ {}", lang.last_beat(w.last_seen_age_s));
    if compact {
        let mut head = format!("{} {}", status.icon(), w.name);
        match status {
            LinkStatus::Degraded => head.push_str(&format!(" ❌{}", w.dead_letter)),
            LinkStatus::Down => head.push_str(&format!(" {}", beat.trim_start_matches("⚠ "))),
            _ => {}
        }
        return vec![vec![("hud-name", head)]];
    }
    let mut second = vec![(
        "hud-numbers",
        lang.queue_and_dead(w.queue_depth, w.dead_letter),
    )];
    if status == LinkStatus::Down {
        second.push(("hud-beat", beat));
    }
    vec![
        vec![
            ("hud-name", w.name.clone()),
            ("hud-state", w.state_label().text(lang).to_string()),
        ],
        second,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::heartbeat::WorkerKind;

    fn w(alive: bool, state: &str, dead: u64, age: Option<i64>) -> WorkerView {
        WorkerView {
            alive,
            state: Some(state.into()),
            dead_letter: dead,
            queue_depth: 7,
            last_seen_age_s: age,
            ..WorkerView::down("insta-render", WorkerKind::Render)
        }
    }

    #[test]
    fn labels_speak_the_page_language() {
        let l = lines(&w(false, "down", 0, Some(93)), false, Lang::Ko);
        assert_eq!(l[0][1].1, "🔴 다운");
        assert_eq!(l[1][0].1, "대기열 7 · 실패 0");
        assert_eq!(l[1][1].1, "⚠ 마지막 하트비트 93초 전");
    }

    #[test]
    fn full_label_of_a_down_worker_says_when_it_last_beat() {
        let text: Vec<Vec<String>> = lines(&w(false, "down", 0, Some(93)), false, Lang::En)
            .into_iter()
            .map(|l| l.into_iter().map(|s| s.1).collect())
            .collect();
        assert_eq!(
            text,
            [
                vec!["insta-render", "🔴 down"],
                vec!["queue 7 · dead 0", "⚠ last beat 93s ago"]
            ]
        );
    }

    #[test]
    fn full_label_of_a_paused_worker() {
        let l = lines(&w(true, "paused", 2, Some(1)), false, Lang::En);
        assert_eq!(l[0][1].1, "⏸ paused (trading)");
        assert_eq!(l[1], vec![("hud-numbers", "queue 7 · dead 2".to_string())]);
    }

    #[test]
    fn compact_labels_keep_the_problem() {
        assert_eq!(
            lines(&w(true, "idle", 0, Some(1)), true, Lang::En)[0][0].1,
            "✔ insta-render"
        );
        assert_eq!(
            lines(&w(true, "idle", 4, Some(1)), true, Lang::En)[0][0].1,
            "❌ insta-render ❌4"
        );
        assert_eq!(
            lines(&w(false, "down", 0, None), true, Lang::En)[0][0].1,
            "⚠ insta-render no heartbeat"
        );
    }
}
