//! How many live tails each token has open: every tail polls the database
//! once a second for as long as it lives, so one token cannot open them
//! without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

/// Open tails per token, at most `max` each.
#[derive(Debug)]
pub struct TailSlots {
    max: usize,
    open: Mutex<HashMap<Uuid, usize>>,
}

/// One open tail; dropping it (the stream ended or the client left) frees
/// the slot.
#[derive(Debug)]
pub struct TailSlot {
    slots: Arc<TailSlots>,
    token: Uuid,
}

impl TailSlots {
    pub fn new(max: u16) -> Self {
        TailSlots { max: usize::from(max).max(1), open: Mutex::new(HashMap::new()) }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for `token`, or `None` when it has `max` tails open already.
    pub fn acquire(self: &Arc<Self>, token: Uuid) -> Option<TailSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(token).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(TailSlot { slots: self.clone(), token })
    }
}

impl Drop for TailSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.token) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.token);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_token_gets_max_slots_and_a_freed_one_back() {
        let slots = Arc::new(TailSlots::new(2));
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let first = slots.acquire(a).unwrap();
        let _second = slots.acquire(a).unwrap();
        assert!(slots.acquire(a).is_none());
        assert!(slots.acquire(b).is_some(), "another token has its own slots");
        drop(first);
        assert!(slots.acquire(a).is_some());
    }
}
