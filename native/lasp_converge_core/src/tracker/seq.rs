//! Which sequence numbers of one origin were already registered, so that a
//! repeated announcement is ignored even after its update left `pending`.

use std::collections::BTreeSet;

/// Every seq below `floor` counts as registered; above it, the registered
/// ones are listed. Contiguous runs fold into `floor`, so the usual case of
/// dense per-origin counters costs nothing; gaps (an origin that skips
/// numbers, or sampling) keep at most `cap` entries: past that the lowest
/// ones fold into `floor`, and an announcement that arrives later still with
/// a seq below `floor` counts as a duplicate.
#[derive(Clone, Debug, Default)]
pub(crate) struct SeqWindow {
    floor: u64,
    above: BTreeSet<u64>,
}

impl SeqWindow {
    /// Records `seq`; false if it was already registered (or is below the floor).
    pub(crate) fn insert(&mut self, seq: u64, cap: usize) -> bool {
        if seq < self.floor || !self.above.insert(seq) {
            return false;
        }
        self.fold();
        if self.above.len() > cap.max(1) {
            // Fold the lower half: treat everything up to it as seen.
            let keep = cap.max(1) / 2;
            while self.above.len() > keep {
                if let Some(s) = self.above.pop_first() {
                    self.floor = s.saturating_add(1);
                }
            }
            self.fold();
        }
        true
    }

    fn fold(&mut self) {
        while self.above.first() == Some(&self.floor) {
            self.above.pop_first();
            self.floor = self.floor.saturating_add(1);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.above.len()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn dense_counter_folds_to_nothing() {
        let mut w = SeqWindow::default();
        for s in 0..10_000 {
            assert!(w.insert(s, 16));
        }
        assert_eq!(w.len(), 0);
        assert!(!w.insert(5, 16));
    }

    #[test]
    fn out_of_order_and_duplicates() {
        let mut w = SeqWindow::default();
        assert!(w.insert(3, 16));
        assert!(w.insert(1, 16));
        assert!(!w.insert(3, 16));
        assert!(w.insert(0, 16));
        assert!(w.insert(2, 16));
        assert_eq!(w.len(), 0);
        assert!(!w.insert(1, 16));
    }

    #[test]
    fn sparse_seqs_stay_bounded() {
        let mut w = SeqWindow::default();
        for s in (1..100_000).step_by(7) {
            assert!(w.insert(s, 64));
            assert!(w.len() <= 64);
        }
        assert!(!w.insert(8, 64));
    }
}
