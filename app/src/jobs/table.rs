//! A table of job rows: each id links to its page, each queue to its jobs.

use leptos::prelude::*;
use shared::fleet::encode;
use shared::jobs::JobRow;
use shared::Word;

use crate::i18n::use_lang;

/// Characters of a reason shown in a row (the job's page has all of it).
const REASON_SHOWN: usize = 120;

#[component]
pub fn JobsTable(rows: Vec<JobRow>) -> impl IntoView {
    let lang = use_lang();
    if rows.is_empty() {
        return view! { <p class="muted no-jobs">{lang.t(Word::NoJobs)}</p> }.into_any();
    }
    let rows = rows
        .into_iter()
        .map(|r| {
            let status = r.status.as_str().to_string();
            let reason: String = r.reason.clone().unwrap_or_default().chars().take(REASON_SHOWN).collect();
            let took = r.duration_ms.map(|ms| lang.took(ms));
            view! {
                <tr data-job=r.id.clone() data-status=status.clone()>
                    <td><a class="job-id" href=format!("/jobs/{}", encode(&r.id))>{r.id.clone()}</a></td>
                    <td><a href=format!("/jobs?queue={}", encode(&r.queue))>{r.queue.clone()}</a></td>
                    <td class=format!("job-status {status}")>{lang.job_status(&r.status)}</td>
                    <td class="num">{r.attempts}</td>
                    <td>{r.agent_id.clone().unwrap_or_default()}</td>
                    <td class="muted">{r.started_at.clone().unwrap_or_default()}</td>
                    <td class="num">{took}</td>
                    <td class="num">{r.exit_code}</td>
                    <td class="reason">{reason}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="jobs">
            <thead>
                <tr>
                    <th>{lang.t(Word::ColJob)}</th>
                    <th>{lang.t(Word::FieldQueue)}</th>
                    <th>{lang.t(Word::ColStatus)}</th>
                    <th>{lang.t(Word::ColAttempts)}</th>
                    <th>{lang.t(Word::ColAgent)}</th>
                    <th>{lang.t(Word::ColStarted)}</th>
                    <th>{lang.t(Word::ColTook)}</th>
                    <th>{lang.t(Word::ColExit)}</th>
                    <th>{lang.t(Word::ColReason)}</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
