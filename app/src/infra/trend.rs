//! The top of `/infra`: the whole fleet's last hour, refreshed in place once hydrated.

use leptos::prelude::*;
use shared::series::Range;
use shared::Word;

use crate::i18n::use_lang;
use crate::trends::{load_series, SeriesCharts, SeriesOf};

/// How often the hydrated page reads the fleet's series again.
#[cfg(browser)]
const REFRESH_MS: u32 = 15_000;

#[component]
pub fn FleetTrend() -> impl IntoView {
    let lang = use_lang();
    let tick = RwSignal::new(0u64);
    #[cfg(browser)]
    crate::jobs::refresh_every(tick, REFRESH_MS);
    let fleet = Resource::new(
        move || tick.get(),
        |_| load_series(SeriesOf::Fleet, Range::Hour),
    );
    view! {
        <section class="fleet-trend">
            <h2>{lang.t(Word::FleetTrend)}</h2>
            <Transition fallback=|| ()>
                {move || fleet.get().map(|r| match r {
                    Ok(t) => view! { <SeriesCharts points=t.series.points range=Range::Hour now=t.now compact=true/> }.into_any(),
                    Err(e) => view! { <p class="error">{e.text(lang)}</p> }.into_any(),
                })}
            </Transition>
        </section>
    }
}
