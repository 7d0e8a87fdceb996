//! The operator's controls shared by the pages: the token prompt, the result line, and
//! `dispatch`, which sends a call and routes its outcome. All of it works only once the page
//! is hydrated; without JavaScript the pages stay read-only.

use leptos::prelude::*;
use shared::control::{CreatedReply, DryRunReply};
use shared::{Lang, Word};

use crate::i18n::use_lang;

use crate::operator::Outcome;

/// One operator call, kept so it can be sent again once the token is given.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub method: &'static str,
    pub url: String,
    pub body: Option<String>,
    /// What the result line says it was ("pause_pipeline image on a1").
    pub what: String,
    pub kind: CallKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    Command,
    DryRun,
    Other,
}

/// Page-wide operator state, provided as context.
#[derive(Clone, Copy)]
pub struct OperatorUi {
    pub need_token: RwSignal<bool>,
    pub pending: RwSignal<Option<Call>>,
    /// `(ok, text)` of the last call.
    pub flash: RwSignal<Option<(bool, String)>>,
    pub preview: RwSignal<Option<DryRunReply>>,
    /// Bumped after every accepted call, so the page refreshes at once.
    pub changed: RwSignal<u64>,
    pub hydrated: RwSignal<bool>,
    pub lang: Lang,
}

impl OperatorUi {
    pub fn provide() -> Self {
        let ui = Self {
            need_token: RwSignal::new(false),
            pending: RwSignal::new(None),
            flash: RwSignal::new(None),
            preview: RwSignal::new(None),
            changed: RwSignal::new(0),
            hydrated: RwSignal::new(false),
            lang: use_lang(),
        };
        // Effects run only in the browser, after hydration.
        Effect::new(move |_| ui.hydrated.set(true));
        provide_context(ui);
        ui
    }

    /// What to do with a call's outcome (browser only: the server never sends calls).
    #[cfg_attr(not(browser), allow(dead_code))]
    pub fn settle(self, call: Call, outcome: Outcome) {
        match outcome {
            Outcome::Ok(body) => {
                self.need_token.set(false);
                match call.kind {
                    CallKind::DryRun => {
                        self.preview.set(serde_json::from_str(&body).ok());
                        self.flash.set(None);
                    }
                    CallKind::Command => {
                        let text = match serde_json::from_str::<CreatedReply>(&body) {
                            Ok(c) => self.lang.command_sent(
                                &call.what,
                                &c.command_id,
                                &c.targets.join(", "),
                            ),
                            Err(_) => format!("✓ {}", call.what),
                        };
                        self.flash.set(Some((true, text)));
                    }
                    CallKind::Other => {
                        self.flash
                            .set(Some((true, format!("✓ {} — {body}", call.what))));
                    }
                }
                self.changed.update(|n| *n += 1);
            }
            Outcome::NeedToken => {
                self.pending.set(Some(call));
                self.need_token.set(true);
            }
            Outcome::Refused(why) => self
                .flash
                .set(Some((false, format!("✗ {}: {why}", call.what)))),
        }
    }
}

pub fn use_operator() -> OperatorUi {
    expect_context::<OperatorUi>()
}

/// Sends `call` with the stored token (browser only; a no-op while rendering on the server).
pub fn dispatch(ui: OperatorUi, call: Call) {
    #[cfg(browser)]
    leptos::task::spawn_local(async move {
        let outcome =
            crate::operator::call(call.method, &call.url, call.body.clone(), ui.lang).await;
        ui.settle(call, outcome);
    });
    #[cfg(not(browser))]
    let _ = (ui, call);
}

/// Asks for the operator token when a call needs it, then sends the call that was waiting.
#[component]
pub fn TokenPrompt() -> impl IntoView {
    let ui = use_operator();
    let lang = ui.lang;
    let token = RwSignal::new(String::new());
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let t = token.get_untracked();
        if t.trim().is_empty() {
            return;
        }
        #[cfg(browser)]
        crate::operator::set_token(&t);
        token.set(String::new());
        ui.need_token.set(false);
        if let Some(call) = ui.pending.get_untracked() {
            ui.pending.set(None);
            dispatch(ui, call);
        }
    };
    view! {
        <Show when=move || ui.need_token.get()>
            <form class="token-form" on:submit=save>
                <label>
                    {lang.t(Word::OperatorToken)}
                    <input
                        type="password"
                        name="operator-token"
                        autocomplete="off"
                        prop:value=move || token.get()
                        on:input=move |ev| token.set(event_target_value(&ev))
                    />
                </label>
                <button type="submit">{lang.t(Word::SaveAndSend)}</button>
                <button type="button" on:click=move |_| { ui.need_token.set(false); ui.pending.set(None); }>
                    {lang.t(Word::Cancel)}
                </button>
                <p class="muted">
                    {move || ui.pending.get().map(|c| lang.needed_for(&c.what))}
                    {lang.t(Word::SessionOnly)}
                </p>
            </form>
        </Show>
    }
}

/// The last call's result.
#[component]
pub fn Flash() -> impl IntoView {
    let ui = use_operator();
    move || {
        ui.flash.get().map(|(ok, text)| {
            view! {
                <p class=if ok { "flash ok" } else { "flash err" } role="status">{text}</p>
            }
        })
    }
}
