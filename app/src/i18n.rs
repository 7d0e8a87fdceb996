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
/// remembers the choice in a cookie.
#[component]
pub fn LangSwitch(path: &'static str) -> impl IntoView {
    let lang = use_lang();
    let links = Lang::ALL
        .iter()
        .map(|&l| {
            let name = match l {
                Lang::Ko => "한국어",
                Lang::En => "English",
            };
            let current = (l == lang).then_some("true");
            view! {
                <a href=format!("{path}?lang={}", l.code()) hreflang=l.code() lang=l.code() aria-current=current>
                    {name}
                </a>
            }
        })
        .collect_view();
    view! {
        <nav class="lang" aria-label=lang.t(Word::Language)>{links}</nav>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_names_the_language() {
        assert_eq!(lang_of_query("lang=ko"), Some("ko"));
        assert_eq!(lang_of_query("view=2d&lang=en&q=x"), Some("en"));
        assert_eq!(lang_of_query("language=ko"), None);
    }
}
