//! The "Recent alerts" panel.

use leptos::prelude::*;
use shared::alerts::{AlertsView, DeliveryState};
use shared::{Lang, Word};

use crate::i18n::use_lang;

/// How many alert batches the panel shows.
const ALERTS_SHOWN: usize = 8;

#[component]
pub fn RecentAlerts(view: AlertsView) -> impl IntoView {
    let lang = use_lang();
    let body = if !view.enabled {
        view! { <p class="muted">{lang.t(Word::AlertsOff)}</p> }.into_any()
    } else if view.recent.is_empty() {
        view! { <p class="muted">{lang.t(Word::NoAlertsYet)}</p> }.into_any()
    } else {
        let items = view
            .recent
            .into_iter()
            .take(ALERTS_SHOWN)
            .map(|batch| {
                let delivery = batch
                    .delivery
                    .iter()
                    .map(|(channel, state)| format!("{channel}: {}", delivery_word(state, lang)))
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
            <h2>{lang.t(Word::RecentAlerts)}</h2>
            {body}
        </section>
    }
}

fn delivery_word(state: &DeliveryState, lang: Lang) -> String {
    match state {
        DeliveryState::Pending => lang.t(Word::DeliveryPending).to_string(),
        DeliveryState::Sent => lang.t(Word::DeliverySent).to_string(),
        DeliveryState::Failed(why) => format!("{}: {why}", lang.t(Word::DeliveryFailed)),
    }
}
