//! Who may make a state-changing call, and its audit record — both made here, once, for every
//! handler. A handler names its action as a type (`Call<Register>`); the extractor checks the
//! token that action needs (a refusal is audited and answered before the handler runs) and
//! [`Call::record`] audits the outcome, so no handler repeats either.

use std::marker::PhantomData;

use axum::extract::{FromRef, FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use shared::control::Role;

use super::{Audit, Caller, Control, Need};
use crate::error::ApiError;

/// A call that changes state: the token it needs and how the audit log names it.
pub trait Action: Send + Sync + 'static {
    const NEED: Need;
    /// The audit log's name for it and whether an accepted call is written there; `query` is
    /// the request's query string (a dry run is a different action than a send).
    fn audit(query: Option<&str>) -> (&'static str, Audit);
}

/// Declares an [`Action`] whose name and audit policy do not depend on the request.
macro_rules! action {
    ($(#[$doc:meta])* $name:ident, $audit_name:literal, $need:ident, $audit:ident) => {
        $(#[$doc])*
        pub struct $name;
        impl $crate::control::call::Action for $name {
            const NEED: $crate::control::Need = $crate::control::Need::$need;
            fn audit(_: Option<&str>) -> (&'static str, $crate::control::Audit) {
                ($audit_name, $crate::control::Audit::$audit)
            }
        }
    };
}
pub(crate) use action;

/// An authorised caller of action `A`, with the control plane it acts on.
pub struct Call<A> {
    pub ctl: Control,
    role: Role,
    remote: String,
    action: &'static str,
    audit: Audit,
    /// The path's parameters joined by `/` (`image`, `image/render-1`): what was acted on.
    target: String,
    _action: PhantomData<A>,
}

impl<A> Call<A> {
    /// The peer address the call came from.
    pub fn remote(&self) -> &str {
        &self.remote
    }

    /// Writes the outcome to the audit log (when the action's policy asks for it) and hands
    /// the result back.
    pub async fn record<T>(self, result: Result<T, ApiError>) -> Result<T, ApiError> {
        if self.audit == Audit::Always || result.is_err() {
            let outcome = outcome(result.as_ref().err());
            self.ctl
                .audit(self.role, &self.remote, self.action, &self.target, outcome)
                .await;
        }
        result
    }
}

impl<S, A> FromRequestParts<S> for Call<A>
where
    A: Action,
    Control: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ctl = Control::from_ref(state);
        let caller = match Caller::from_request_parts(parts, state).await {
            Ok(c) => c,
            Err(never) => match never {},
        };
        let (action, audit) = A::audit(parts.uri.query());
        let target = match RawPathParams::from_request_parts(parts, state).await {
            Ok(params) => params.iter().map(|(_, v)| v).collect::<Vec<_>>().join("/"),
            // Not under a route with parameters (or they are not UTF-8): nothing to name.
            Err(_) => String::new(),
        };
        let checked = caller.check(
            A::NEED,
            ctl.config.operator.as_ref(),
            ctl.config.agent.as_ref(),
        );
        match checked {
            Ok(role) => Ok(Self {
                ctl,
                role,
                remote: caller.remote,
                action,
                audit,
                target,
                _action: PhantomData,
            }),
            Err((role, e)) => {
                ctl.audit(role, &caller.remote, action, &target, outcome(Some(&e)))
                    .await;
                Err(e)
            }
        }
    }
}

/// The audit log's outcome words: `ok`, `refused (4xx): why`, `failed (5xx): why`.
pub fn outcome(error: Option<&ApiError>) -> String {
    match error {
        None => "ok".into(),
        Some(e) if e.status().is_client_error() => {
            format!("refused ({}): {e}", e.status().as_u16())
        }
        Some(e) => format!("failed ({}): {e}", e.status().as_u16()),
    }
}
