//! Big fleets on `/infra`: the search box (name prefix), the pager, the open group, and — while
//! the 3D view draws groups — the list of groups to open. Without JavaScript the search is a
//! GET form and the pager plain links (`?q=&group=&page=`); hydrated, they change the window
//! in place and the poll fetches it at once.

use leptos::prelude::*;
use shared::fleet::{encode, OTHER_GROUP};
use shared::{Lang, LinkStatus, NodesSnapshot, Word};

use super::data::{Window, PAGE};
use crate::i18n::use_lang;

/// `/infra` for a window (pages are 1-based in the URL).
fn href(w: &Window) -> String {
    let mut parts = Vec::new();
    if !w.q.is_empty() {
        parts.push(format!("q={}", encode(&w.q)));
    }
    if let Some(g) = &w.group {
        parts.push(format!("group={}", encode(g)));
    }
    if w.page > 0 {
        parts.push(format!("page={}", w.page + 1));
    }
    if parts.is_empty() {
        "/infra".into()
    } else {
        format!("/infra?{}", parts.join("&"))
    }
}

/// "201–400 of 2,006", or what there is to say when nothing matched.
pub fn range_text(lang: Lang, offset: usize, shown: usize, matched: u64, q: &str) -> String {
    if matched == 0 {
        return if q.is_empty() {
            lang.t(Word::NoWorkers).into()
        } else {
            lang.no_name_starts_with(q)
        };
    }
    if shown == 0 {
        return lang.past_the_end(&thousands(matched));
    }
    lang.page_range(
        &thousands((offset + 1) as u64),
        &thousands((offset + shown) as u64),
        &thousands(matched),
    )
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Moves the page to `w` in place (hydrated) and keeps the address bar in step.
fn go(window: RwSignal<Window>, w: Window) {
    #[cfg(browser)]
    if let Some(history) = web_sys::window().and_then(|win| win.history().ok()) {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&href(&w)));
    }
    window.set(w);
}

#[component]
pub fn FleetTools(window: RwSignal<Window>, snap: NodesSnapshot) -> impl IntoView {
    let lang = use_lang();
    let w = window.get_untracked();
    let matched = snap
        .page
        .as_ref()
        .map_or(snap.workers.len() as u64, |p| p.matched);
    let offset = snap.page.as_ref().map_or(0, |p| p.offset as usize);
    let text = range_text(lang, offset, snap.workers.len(), matched, &w.q);
    let last_page = (matched as usize).saturating_sub(1) / PAGE;
    let at = |page: usize| Window {
        page,
        ..window.get_untracked()
    };
    let prev = (w.page > 0).then(|| {
        let to = at(w.page - 1);
        let link = href(&to);
        view! {
            <a class="prev" href=link on:click=move |ev| { ev.prevent_default(); go(window, to.clone()); }>{lang.t(Word::Previous)}</a>
        }
    });
    let next = (w.page < last_page).then(|| {
        let to = at(w.page + 1);
        let link = href(&to);
        view! {
            <a class="next" href=link on:click=move |ev| { ev.prevent_default(); go(window, to.clone()); }>{lang.t(Word::Next)}</a>
        }
    });
    let group = w.group.clone().map(|g| {
        let all = Window {
            group: None,
            page: 0,
            ..window.get_untracked()
        };
        let link = href(&all);
        view! {
            <span class="group-chip">
                {lang.t(Word::GroupWord)} " " <strong>{g.clone()}</strong> " "
                <a href=link on:click=move |ev| { ev.prevent_default(); go(window, all.clone()); }>{lang.t(Word::AllWorkers)}</a>
            </span>
            <input type="hidden" name="group" value=g/>
        }
    });
    let input = NodeRef::<leptos::html::Input>::new();
    let search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let q = input.get().map(|i| i.value()).unwrap_or_default();
        go(
            window,
            Window {
                q: q.trim().to_string(),
                page: 0,
                ..window.get_untracked()
            },
        );
    };
    view! {
        <form class="fleet-tools" role="search" method="get" action="/infra" on:submit=search>
            <input
                node_ref=input
                type="search"
                name="q"
                value=w.q.clone()
                placeholder=lang.t(Word::SearchPlaceholder)
                aria-label=lang.t(Word::SearchLabel)
            />
            <button type="submit">{lang.t(Word::Search)}</button>
            {group}
            <span class="range" aria-live="polite">{text}</span>
            <nav class="pager" aria-label=lang.t(Word::NavPages)>{prev} {next}</nav>
        </form>
    }
}

/// The groups the 3D view draws, as buttons that open one (its workers, in both views).
#[component]
pub fn GroupList(window: RwSignal<Window>, snap: NodesSnapshot) -> impl IntoView {
    let lang = use_lang();
    let groups = snap.summary.map(|s| s.groups).unwrap_or_default();
    let items = groups
        .into_iter()
        .map(|g| {
            let down = g.by_status.get(&LinkStatus::Down).copied().unwrap_or(0);
            let label = lang.group_button(&g.name, &thousands(g.count), down);
            let openable = g.name != OTHER_GROUP;
            let name = g.name.clone();
            let open = move |_| {
                go(
                    window,
                    Window {
                        q: String::new(),
                        group: Some(name.clone()),
                        page: 0,
                    },
                )
            };
            view! {
                <li>
                    <button
                        type="button"
                        class=format!("group {}", g.status.as_str())
                        data-group=g.name.clone()
                        style=format!("--status:{}", g.status.colour())
                        disabled=!openable
                        on:click=open
                    >
                        {label}
                    </button>
                </li>
            }
        })
        .collect_view();
    view! {
        <section class="groups" aria-label=lang.t(Word::Groups)>
            <p class="groups-note">{lang.t(Word::GroupsNote)}</p>
            <ul>{items}</ul>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_reads_like_a_pager() {
        let en = Lang::En;
        assert_eq!(
            range_text(en, 200, 200, 2_006, ""),
            "201–400 of 2,006 workers, problems first"
        );
        assert_eq!(
            range_text(en, 0, 6, 6, ""),
            "1–6 of 6 workers, problems first"
        );
        assert_eq!(
            range_text(en, 0, 0, 0, "zz"),
            "no worker name starts with “zz”"
        );
        assert_eq!(
            range_text(en, 400, 0, 300, ""),
            "past the end of 300 workers"
        );
        assert_eq!(
            range_text(Lang::Ko, 200, 200, 2_006, ""),
            "워커 2,006개 중 201–400 (문제 먼저)"
        );
        assert_eq!(thousands(100_006), "100,006");
    }

    #[test]
    fn links_carry_the_window() {
        let w = Window {
            q: "render eu".into(),
            group: Some("render-eu".into()),
            page: 2,
        };
        assert_eq!(href(&w), "/infra?q=render%20eu&group=render-eu&page=3");
        assert_eq!(href(&Window::default()), "/infra");
        let back = Window::from_params(|k| match k {
            "q" => Some("render eu".into()),
            "group" => Some("render-eu".into()),
            "page" => Some("3".into()),
            _ => None,
        });
        assert_eq!(back, w);
    }
}
