//! The pages' navigation, the same on every page.

use leptos::prelude::*;
use shared::Word;

use crate::i18n::use_lang;

/// Links to every page; `current` is marked (`aria-current="page"`).
#[component]
pub fn PagesNav(current: &'static str) -> impl IntoView {
    let lang = use_lang();
    let links = [
        ("/infra", Word::NavInfra),
        ("/agents", Word::NavAgents),
        ("/jobs", Word::NavJobs),
        ("/schedules", Word::NavSchedules),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (href, word))| {
        let here = (href == current).then_some("page");
        view! {
            {(i > 0).then_some(" · ")}
            <a href=href aria-current=here>{lang.t(word)}</a>
        }
    })
    .collect_view();
    view! { <nav class="pages" aria-label=lang.t(Word::NavPages)>{links}</nav> }
}
