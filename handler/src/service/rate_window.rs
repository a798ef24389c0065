//! A per-second bound: at most `limit` things a second, those past it
//! counted, and the count handed over once when the next second begins
//! (to be said in one line). `live_events` bounds the notifications it
//! looks at (and the refusals it logs) with it; a user's notification
//! child (`user_notifications`) the event lines it writes.

use std::time::{Duration, Instant};

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct RateWindow {
    limit: u32,
    /// When this second began (`None`: none yet).
    start: Option<Instant>,
    used: u32,
    over: u64,
}

impl RateWindow {
    pub const fn new(limit: u32) -> RateWindow {
        RateWindow {
            limit,
            start: None,
            used: 0,
            over: 0,
        }
    }

    /// Begins a new second when the last one is over (or none began):
    /// then `Some` of how many were counted over the bound since the last
    /// new second (taken; it may be 0); `None` while the same second goes
    /// on.
    pub fn roll(&mut self, now: Instant) -> Option<u64> {
        if self
            .start
            .is_some_and(|start| now.duration_since(start) < Duration::from_secs(1))
        {
            return None;
        }
        self.start = Some(now);
        self.used = 0;
        Some(std::mem::take(&mut self.over))
    }

    /// One more this second, when under the bound; else it is counted over.
    pub fn take(&mut self) -> bool {
        if self.used < self.limit {
            self.used += 1;
            true
        } else {
            self.count_over();
            false
        }
    }

    /// Counts one more thing not said (said with the next roll's count).
    pub fn count_over(&mut self) {
        self.over += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_admits_its_limit_a_second_and_says_the_rest_once() {
        let mut window = RateWindow::new(3);
        let t0 = Instant::now();
        assert_eq!(window.roll(t0), Some(0));
        let admitted = (0..10).filter(|_| window.take()).count();
        assert_eq!(admitted, 3);
        window.count_over();
        assert_eq!(window.roll(t0 + Duration::from_millis(999)), None);
        assert!(!window.take());
        assert_eq!(window.roll(t0 + Duration::from_secs(1)), Some(9));
        assert!(window.take());
        assert_eq!(window.roll(t0 + Duration::from_secs(3)), Some(0));
    }
}
