//! The live cores on events waiting for a dump slot, fair between users
//! (root's triggers are root's, uid 0): each user's events wait in a queue
//! of their own, at most `max_pending` of them (past it, refused at once,
//! counted); at most one dump of each user is under way, at most
//! `max_running` in all; a free slot goes to the next user in turn (round
//! robin) that has an event waiting and no dump under way. So a user whose
//! dump is stuck (their session daemon hangs during the snapshot, a huge
//! process) or who floods holds one slot, never more, and another user's
//! event waits at most for one dump of each other user.
//!
//! The queue only orders: the service's dump threads (as many as
//! `max_running`) take from it with [`LiveQueue::pop`], which waits at
//! most the time it is given.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// The most users the queue keeps (root, and `live.users`: at most 32).
pub const MAX_USERS: usize = 64;

struct UserQueue<T> {
    uid: u32,
    pending: VecDeque<T>,
    running: bool,
    /// Events refused because the queue was full, so far.
    refused: u64,
}

struct State<T> {
    /// In turn order; a user stays once seen (their count kept).
    users: Vec<UserQueue<T>>,
    /// Where the next turn starts looking.
    next: usize,
    running: usize,
    max_running: usize,
    max_pending: usize,
}

/// See the module documentation.
pub struct LiveQueue<T> {
    state: Mutex<State<T>>,
    wake: Condvar,
}

/// Why an event may not wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Full {
    pub uid: u32,
    /// A dump of the user's is under way.
    pub running: bool,
    pub pending: usize,
    pub max_pending: usize,
    /// The user's events refused so far, this one included.
    pub refused: u64,
}

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "uid {} has {} live core under way and {} event(s) waiting for one (at most {} may \
             wait per user; {} of this user's refused so far)",
            self.uid,
            if self.running { "a" } else { "no" },
            self.pending,
            self.max_pending,
            self.refused
        )
    }
}

/// A dump taken from the queue; dropped when it ends, which frees its
/// user's turn and its slot.
pub struct Ticket<'a, T> {
    queue: &'a LiveQueue<T>,
    pub uid: u32,
    pub item: T,
}

impl<T> Drop for Ticket<'_, T> {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        if let Some(user) = state.users.iter_mut().find(|u| u.uid == self.uid) {
            user.running = false;
        }
        state.running -= 1;
        drop(state);
        self.queue.wake.notify_all();
    }
}

impl<T> LiveQueue<T> {
    pub fn new(max_running: usize, max_pending: usize) -> LiveQueue<T> {
        LiveQueue {
            state: Mutex::new(State {
                users: Vec::new(),
                next: 0,
                running: 0,
                max_running: max_running.max(1),
                max_pending,
            }),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues an event of `uid`; refuses it (and counts it) when that
    /// user already has as many waiting as may wait.
    pub fn push(&self, uid: u32, item: T) -> Result<(), Full> {
        let mut state = self.lock();
        let max_pending = state.max_pending;
        let at = match state.users.iter().position(|u| u.uid == uid) {
            Some(at) => at,
            None if state.users.len() < MAX_USERS => {
                state.users.push(UserQueue {
                    uid,
                    pending: VecDeque::new(),
                    running: false,
                    refused: 0,
                });
                state.users.len() - 1
            }
            None => {
                return Err(Full {
                    uid,
                    running: false,
                    pending: 0,
                    max_pending: 0,
                    refused: 1,
                })
            }
        };
        let user = &mut state.users[at];
        if user.pending.len() >= max_pending {
            user.refused += 1;
            return Err(Full {
                uid,
                running: user.running,
                pending: user.pending.len(),
                max_pending,
                refused: user.refused,
            });
        }
        user.pending.push_back(item);
        drop(state);
        self.wake.notify_all();
        Ok(())
    }

    /// The next user's event in turn, once a slot is free and a user with
    /// an event waiting has no dump under way; `None` when none came
    /// within `wait`.
    pub fn pop(&self, wait: Duration) -> Option<Ticket<'_, T>> {
        let mut state = self.lock();
        let mut waited = false;
        loop {
            if let Some(ticket) = self.take(&mut state) {
                return Some(ticket);
            }
            if waited {
                return None;
            }
            state = self
                .wake
                .wait_timeout(state, wait)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
            // One wait only: a spurious or useless wake-up ends it early,
            // and the caller, which looks at its stop flag, calls again.
            waited = true;
        }
    }

    fn take(&self, state: &mut State<T>) -> Option<Ticket<'_, T>> {
        if state.running >= state.max_running || state.users.is_empty() {
            return None;
        }
        let count = state.users.len();
        let at = (0..count)
            .map(|i| (state.next + i) % count)
            .find(|&at| !state.users[at].running && !state.users[at].pending.is_empty())?;
        let user = &mut state.users[at];
        let item = user.pending.pop_front().expect("not empty");
        user.running = true;
        let uid = user.uid;
        state.running += 1;
        // Taken modulo the users then (a user may come in between).
        state.next = at + 1;
        Some(Ticket {
            queue: self,
            uid,
            item,
        })
    }

    /// (waiting, under way, refused so far) of `uid`.
    pub fn count(&self, uid: u32) -> (usize, bool, u64) {
        let state = self.lock();
        state
            .users
            .iter()
            .find(|u| u.uid == uid)
            .map_or((0, false, 0), |u| (u.pending.len(), u.running, u.refused))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::ZERO;

    #[test]
    fn a_user_with_a_dump_under_way_waits_and_the_others_go_in_turn() {
        let queue = LiveQueue::new(2, 8);
        for n in 0..5 {
            queue.push(1000, n).unwrap();
        }
        queue.push(0, 100).unwrap();
        queue.push(2000, 200).unwrap();
        queue.push(2000, 201).unwrap();
        let a = queue.pop(NOW).unwrap();
        assert_eq!((a.uid, a.item), (1000, 0));
        // 1000 has a dump under way: root's goes next, though four of
        // 1000's came before it.
        let b = queue.pop(NOW).unwrap();
        assert_eq!((b.uid, b.item), (0, 100));
        // Both slots taken.
        assert!(queue.pop(NOW).is_none());
        drop(b);
        // 1000's is still under way: the free slot goes to 2000.
        let c = queue.pop(NOW).unwrap();
        assert_eq!((c.uid, c.item), (2000, 200));
        drop(a);
        drop(c);
        // In turn: 1000 (after 2000 in the ring, it comes round first),
        // then 2000, then 1000 again.
        let d = queue.pop(NOW).unwrap();
        let e = queue.pop(NOW).unwrap();
        assert_eq!((d.uid, d.item, e.uid, e.item), (1000, 1, 2000, 201));
        drop(d);
        drop(e);
        let f = queue.pop(NOW).unwrap();
        assert_eq!((f.uid, f.item), (1000, 2));
        assert_eq!(queue.count(1000), (2, true, 0));
    }

    #[test]
    fn a_users_waiting_events_are_bounded_and_the_others_still_wait() {
        let queue = LiveQueue::new(1, 2);
        queue.push(7, 0).unwrap();
        let stuck = queue.pop(NOW).unwrap();
        queue.push(7, 1).unwrap();
        queue.push(7, 2).unwrap();
        for refused in 1..=3 {
            let full = queue.push(7, 9).unwrap_err();
            assert_eq!(
                full,
                Full {
                    uid: 7,
                    running: true,
                    pending: 2,
                    max_pending: 2,
                    refused,
                }
            );
        }
        assert!(queue.push(7, 9).unwrap_err().to_string().contains("uid 7"));
        // Another user's event still waits, and goes first once the slot
        // is free (7 has just had its turn).
        queue.push(8, 80).unwrap();
        assert!(queue.pop(NOW).is_none());
        drop(stuck);
        let next = queue.pop(NOW).unwrap();
        assert_eq!((next.uid, next.item), (8, 80));
        assert_eq!(queue.count(7), (2, false, 4));
    }

    #[test]
    fn a_dump_thread_waits_for_a_slot_within_its_bound() {
        let queue = std::sync::Arc::new(LiveQueue::new(1, 4));
        queue.push(1, "first").unwrap();
        queue.push(2, "second").unwrap();
        let held = queue.pop(NOW).unwrap();
        // The slot is held here: the wait ends empty, within its bound.
        assert!(queue.pop(Duration::from_millis(10)).is_none());
        let (sender, receiver) = std::sync::mpsc::channel();
        let thread = {
            let queue = queue.clone();
            std::thread::spawn(move || loop {
                if let Some(ticket) = queue.pop(Duration::from_millis(50)) {
                    sender.send(ticket.item).unwrap();
                    break;
                }
            })
        };
        drop(held);
        // A hang guard, not a timing claim.
        assert_eq!(
            receiver.recv_timeout(Duration::from_secs(300)).unwrap(),
            "second"
        );
        thread.join().unwrap();
        let users: Vec<u32> = (0..MAX_USERS as u32 + 1).collect();
        let queue = LiveQueue::new(1, 1);
        for uid in &users[..MAX_USERS] {
            queue.push(*uid, ()).unwrap();
        }
        assert!(queue.push(users[MAX_USERS], ()).is_err());
    }
}
