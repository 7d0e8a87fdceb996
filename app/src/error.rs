//! Why a page could not get its data. It travels from the server's render to the hydrated page
//! (resources are serialised), so it is plain data; what a person reads is its `Display`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum LoadError {
    /// No answer at all (network down, request aborted).
    #[error("{url}: no answer: {reason}")]
    Network { url: String, reason: String },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    /// An answer this page cannot read (a server of another version?).
    #[error("{url}: an answer this page cannot read: {reason}")]
    Decode { url: String, reason: String },
    /// The server could not read it for the page (its Redis, during the server's render).
    #[error("the server could not read it: {0}")]
    Server(String),
    /// Neither a server context nor a browser: a build that cannot load anything.
    #[error("{url}: no data source in this build")]
    NoSource { url: String },
}

impl LoadError {
    /// What the page says, in `lang` (the `Display` text is the log's, in English).
    pub fn text(&self, lang: shared::Lang) -> String {
        use shared::Lang::{En, Ko};
        match (self, lang) {
            (Self::Network { url, reason }, Ko) => format!("{url}: 응답 없음: {reason}"),
            (Self::Status { url, status }, Ko) => format!("{url}: HTTP {status}"),
            (Self::Decode { url, reason }, Ko) => {
                format!("{url}: 이 페이지가 읽을 수 없는 응답: {reason}")
            }
            (Self::Server(why), Ko) => format!("서버가 읽지 못했습니다: {why}"),
            (Self::NoSource { url }, Ko) => format!("{url}: 이 빌드에는 데이터 출처가 없습니다"),
            (e, En) => e.to_string(),
        }
    }
}

/// Why the 3D view could not start; the page says it and shows the cards.
#[cfg(browser)]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SceneError {
    #[error("no browser window")]
    NoWindow,
    #[error("creating a WebGL2 context failed")]
    NoContext,
    #[error("the canvas gave no WebGL2 context")]
    NotWebGl2,
    #[error("WebGL2 is not usable: {0}")]
    Unusable(String),
    #[error("requestAnimationFrame failed")]
    NoAnimationFrame,
}
