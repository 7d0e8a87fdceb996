//! A worker's numbers, the same on its card and on its own page.

use leptos::prelude::*;
use shared::{Lang, Word, WorkerView};

/// A worker's queue, dead letters, jobs in flight and done / failed, as its card shows them.
pub fn numbers(w: &WorkerView, lang: Lang) -> impl IntoView {
    view! {
        <dl class="numbers">
            <div><dt>{lang.t(Word::Queue)}</dt><dd class="queue">{w.queue_depth}</dd></div>
            <div><dt>{lang.t(Word::DeadLetters)}</dt><dd class="dead">{w.dead_letter}</dd></div>
            <div><dt>{lang.t(Word::Processing)}</dt><dd class="processing">{w.processing}</dd></div>
            <div><dt>{lang.t(Word::DoneFailed)}</dt><dd class="jobs">{w.jobs_done} " / " {w.jobs_failed}</dd></div>
        </dl>
    }
}
