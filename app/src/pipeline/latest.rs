//! A typed channel that keeps only the newest value: polling sends snapshots, the render loop
//! takes the newest at the start of a frame. It never grows, however long the tab sits hidden
//! (no frames) while polling goes on.

use std::sync::{Arc, Mutex};

/// The sending half.
pub struct Sender<T>(Arc<Mutex<Option<T>>>);
/// The receiving half.
pub struct Receiver<T>(Arc<Mutex<Option<T>>>);

pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Mutex::new(None));
    (Sender(slot.clone()), Receiver(slot))
}

impl<T> Sender<T> {
    /// Replaces any value not taken yet.
    pub fn send(&self, value: T) {
        // A poisoned lock only means a panic elsewhere; the slot itself is still usable.
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some(value);
    }
}

impl<T> Receiver<T> {
    /// The newest value sent since the last call, if any.
    pub fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_newest() {
        let (tx, rx) = channel();
        assert_eq!(rx.take(), None);
        tx.send(1);
        tx.send(2);
        assert_eq!(rx.take(), Some(2));
        assert_eq!(rx.take(), None);
    }
}
