//! The operator's side of the control plane in the browser: the token (asked once, kept in
//! sessionStorage for the browser session — never in a URL or cookie) and the calls that carry
//! it. A 401 forgets the token so the page asks again.

use shared::control::ErrorBody;

/// What a call came back with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx, with the body.
    Ok(String),
    /// The token is missing or wrong: ask for it.
    NeedToken,
    /// Any other answer, as the server worded it.
    Refused(String),
}

/// The server's error text from a Contract-3 error body, else the status.
pub fn error_text(status: u16, body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(e) => match e.field {
            Some(f) => format!("{} ({f})", e.error),
            None => e.error,
        },
        Err(_) => format!("HTTP {status}"),
    }
}

pub fn classify(status: u16, body: String) -> Outcome {
    match status {
        200..=299 => Outcome::Ok(body),
        401 => Outcome::NeedToken,
        s => Outcome::Refused(error_text(s, &body)),
    }
}

#[cfg(browser)]
mod browser {
    use super::*;

    const TOKEN_KEY: &str = "agent-office.operator-token";

    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.session_storage().ok().flatten()
    }

    pub fn token() -> Option<String> {
        storage()?
            .get_item(TOKEN_KEY)
            .ok()
            .flatten()
            .filter(|t| !t.is_empty())
    }

    pub fn set_token(token: &str) {
        if let Some(s) = storage() {
            let _ = s.set_item(TOKEN_KEY, token.trim());
        }
    }

    pub fn forget_token() {
        if let Some(s) = storage() {
            let _ = s.remove_item(TOKEN_KEY);
        }
    }

    /// Sends an operator call with the stored token; without one, asks for it first.
    pub async fn call(
        method: &str,
        url: &str,
        body: Option<String>,
        lang: shared::Lang,
    ) -> Outcome {
        let Some(token) = token() else {
            return Outcome::NeedToken;
        };
        let auth = format!("Bearer {token}");
        let builder = match method {
            "PUT" => gloo_net::http::Request::put(url),
            "DELETE" => gloo_net::http::Request::delete(url),
            _ => gloo_net::http::Request::post(url),
        }
        .header("Authorization", &auth)
        .header("Content-Type", "application/json");
        let request = match body {
            Some(b) => builder.body(b),
            None => builder.build(),
        };
        let response = match request {
            Ok(r) => r.send().await,
            Err(e) => return Outcome::Refused(e.to_string()),
        };
        match response {
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                let outcome = classify(status, text);
                if outcome == Outcome::NeedToken {
                    forget_token();
                }
                outcome
            }
            Err(e) => Outcome::Refused(lang.no_answer(&e.to_string())),
        }
    }
}

#[cfg(browser)]
pub use browser::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_what_the_page_does_next() {
        assert_eq!(classify(201, "{}".into()), Outcome::Ok("{}".into()));
        assert_eq!(classify(401, String::new()), Outcome::NeedToken);
        assert_eq!(
            classify(
                400,
                r#"{"error":"unknown operator","field":"selector.matchExpressions[0].operator"}"#
                    .into()
            ),
            Outcome::Refused("unknown operator (selector.matchExpressions[0].operator)".into())
        );
        assert_eq!(
            classify(502, "<html>".into()),
            Outcome::Refused("HTTP 502".into())
        );
    }
}
