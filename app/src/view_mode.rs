//! Which view `/infra` shows: the 3D pipeline or the 2D cards. `?view=2d` / `?view=3d` force one,
//! otherwise the last choice made with the toggle (kept in localStorage), otherwise the cards on
//! a phone and the pipeline elsewhere.

/// The two views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Cards,
    Pipeline,
}

/// The localStorage key that remembers the toggle.
pub const STORAGE_KEY: &str = "agent-office.view";

impl View {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "2d" | "cards" => Some(Self::Cards),
            "3d" | "pipeline" => Some(Self::Pipeline),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cards => "2d",
            Self::Pipeline => "3d",
        }
    }

    /// The query wins, then what was remembered, then the cards on a phone and the pipeline
    /// elsewhere. Garbage in either is ignored.
    pub fn choose(query: Option<&str>, remembered: Option<&str>, phone: bool) -> Self {
        query
            .and_then(Self::parse)
            .or_else(|| remembered.and_then(Self::parse))
            .unwrap_or(if phone { Self::Cards } else { Self::Pipeline })
    }
}

/// A small screen, or a touch screen without hover: the pipeline's drag-to-orbit scene and its
/// labels are cramped there, so the cards come first.
pub const PHONE_MEDIA: &str = "(max-width: 640px), (pointer: coarse) and (hover: none)";

/// Whether this browser looks like a phone (`PHONE_MEDIA`).
#[cfg(browser)]
pub fn phone() -> bool {
    web_sys::window()
        .and_then(|w| w.match_media(PHONE_MEDIA).ok().flatten())
        .is_some_and(|m| m.matches())
}

/// The remembered choice, if the browser keeps one.
#[cfg(browser)]
pub fn remembered() -> Option<String> {
    web_sys::window()?
        .local_storage()
        .ok()??
        .get_item(STORAGE_KEY)
        .ok()?
}

/// Remembers a choice made with the toggle (silently skipped where storage is off).
#[cfg(browser)]
pub fn remember(view: View) {
    if let Some(storage) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = storage.set_item(STORAGE_KEY, view.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_beats_memory_beats_default() {
        assert_eq!(View::choose(Some("2d"), Some("3d"), false), View::Cards);
        assert_eq!(View::choose(None, Some("2d"), false), View::Cards);
        assert_eq!(View::choose(Some("bogus"), Some("2d"), false), View::Cards);
        assert_eq!(View::choose(Some("3D"), Some("2d"), false), View::Pipeline);
        assert_eq!(View::choose(None, None, false), View::Pipeline);
        assert_eq!(
            View::choose(Some(""), Some("<script>"), false),
            View::Pipeline
        );
    }

    #[test]
    fn a_phone_starts_on_the_cards_unless_asked() {
        assert_eq!(View::choose(None, None, true), View::Cards);
        assert_eq!(View::choose(Some("nope"), None, true), View::Cards);
        assert_eq!(View::choose(Some("3d"), None, true), View::Pipeline);
        assert_eq!(View::choose(None, Some("3d"), true), View::Pipeline);
    }
}
