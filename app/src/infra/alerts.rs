//! The "Recent alerts" panel.

use leptos::prelude::*;
use shared::alerts::AlertsView;

/// How many alert batches the panel shows.
const ALERTS_SHOWN: usize = 8;

#[component]
pub fn RecentAlerts(view: AlertsView) -> impl IntoView {
    let body = if !view.enabled {
        view! {
            <p class="muted">
                "Alerts are off — set TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID, or ALERT_WEBHOOK_URL."
            </p>
        }
        .into_any()
    } else if view.recent.is_empty() {
        view! { <p class="muted">"No alerts yet."</p> }.into_any()
    } else {
        let items = view
            .recent
            .into_iter()
            .take(ALERTS_SHOWN)
            .map(|batch| {
                let delivery = batch
                    .delivery
                    .iter()
                    .map(|(channel, state)| format!("{channel}: {state}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let texts = batch
                    .alerts
                    .into_iter()
                    .map(|a| view! { <div class="alert-text">{a.text}</div> })
                    .collect_view();
                view! {
                    <li class="alert-batch">
                        <time>{batch.created_at}</time>
                        {texts}
                        <div class="delivery">{delivery}</div>
                    </li>
                }
            })
            .collect_view();
        view! { <ul class="alerts">{items}</ul> }.into_any()
    };
    view! {
        <section class="recent-alerts">
            <h2>"Recent alerts"</h2>
            {body}
        </section>
    }
}
