//! The page's language: chosen once per request on the server (`?lang=`, then the cookie a
//! switch left, then `Accept-Language`; see `shared::Lang::choose`), written into
//! `<html lang>`, and read back from there by the hydrated page — so the first paint, the page
//! without JavaScript and the hydrated page (3D labels included) never disagree.

use leptos::prelude::*;
use shared::{Lang, Word};

/// The cookie a language switch leaves (the server sets it on `?lang=`).
pub const COOKIE: &str = "agent-office-lang";

/// The page's language, provided by [`crate::App`].
pub fn use_lang() -> Lang {
    use_context::<Lang>().unwrap_or_default()
}

/// The language of the request being rendered (server) or of the page (browser).
pub fn page_lang() -> Lang {
    #[cfg(feature = "ssr")]
    if let Some(parts) = use_context::<http::request::Parts>() {
        return request_lang(&parts);
    }
    #[cfg(browser)]
    if let Some(code) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
        .and_then(|e| e.get_attribute("lang"))
    {
        return Lang::parse(&code).unwrap_or_default();
    }
    Lang::default()
}

#[cfg(feature = "ssr")]
fn request_lang(parts: &http::request::Parts) -> Lang {
    let header = |name: http::header::HeaderName| {
        parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
    };
    let query = parts.uri.query().and_then(lang_of_query);
    let cookies = header(http::header::COOKIE);
    let cookie = cookies.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == COOKIE).then_some(v)
    });
    let accept = header(http::header::ACCEPT_LANGUAGE);
    Lang::choose(query, cookie, Some(&accept))
}

/// The `lang` parameter of a query string, if any.
pub fn lang_of_query(query: &str) -> Option<&str> {
    query.split('&').find_map(|pair| pair.strip_prefix("lang="))
}

/// The ko/en switch: plain links (`?lang=ko`), so it works without JavaScript; the server
/// remembers the choice in a cookie. `rel="external"`: a full page load even when hydrated
/// (the router would navigate in place and keep the old language).
#[component]
pub fn LangSwitch(path: &'static str) -> impl IntoView {
    let lang = use_lang();
    // The page's other parameters stay (`?view=2d&q=img`): only the language changes.
    let query = leptos_router::hooks::use_query_map();
    let rest: Vec<(String, String)> = query.with_untracked(|q| {
        q.into_iter()
            .filter(|(k, _)| k.as_ref() != "lang")
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    });
    let links = Lang::ALL
        .iter()
        .map(|&l| {
            let name = match l {
                Lang::Ko => "한국어",
                Lang::En => "English",
            };
            let current = (l == lang).then_some("true");
            view! {
                <a href=switch_href(path, &rest, l) rel="external" hreflang=l.code() lang=l.code() aria-current=current>
                    {name}
                </a>
            }
        })
        .collect_view();
    view! {
        <nav class="lang" aria-label=lang.t(Word::Language)>{links}</nav>
    }
}

/// `path?<the other parameters>&lang=<code>`.
fn switch_href(path: &str, rest: &[(String, String)], lang: Lang) -> String {
    let mut parts: Vec<String> = rest
        .iter()
        .map(|(k, v)| format!("{}={}", shared::fleet::encode(k), shared::fleet::encode(v)))
        .collect();
    parts.push(format!("lang={}", lang.code()));
    format!("{path}?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_keeps_the_other_parameters() {
        let rest = vec![
            ("view".to_string(), "2d".to_string()),
            ("q".into(), "render eu".into()),
        ];
        assert_eq!(
            switch_href("/infra", &rest, Lang::Ko),
            "/infra?view=2d&q=render%20eu&lang=ko"
        );
        assert_eq!(switch_href("/agents", &[], Lang::En), "/agents?lang=en");
    }

    #[test]
    fn the_query_names_the_language() {
        assert_eq!(lang_of_query("lang=ko"), Some("ko"));
        assert_eq!(lang_of_query("view=2d&lang=en&q=x"), Some("en"));
        assert_eq!(lang_of_query("language=ko"), None);
    }
}
