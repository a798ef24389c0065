//! The crash service's queue of crashes waiting for a worker, fair between
//! users: a worker takes the oldest crash of a uid that holds fewer than
//! its share of the workers (`max_crashes_in_progress_per_user`), so that
//! one user's crashes (stalled dumps, a hung session daemon of theirs) can
//! hold at most that many workers, and every other user's crash is taken as
//! soon as a worker is free. A user's crashes past their share wait (held
//! by the kernel), at most [`MAX_WAITING_PER_UID`] of them; past that, and
//! past [`MAX_WAITING`] in all, a crash is refused at once.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Crashes of one uid that may wait for a worker.
pub const MAX_WAITING_PER_UID: usize = 64;
/// Crashes that may wait in all (each holds a connection and a pidfd).
pub const MAX_WAITING: usize = 512;

struct State<T> {
    waiting: VecDeque<(u32, T)>,
    /// Crashes being handled, per uid.
    busy: Vec<(u32, usize)>,
    /// Workers one uid may hold (`None`: as many as there are).
    share: Option<usize>,
    closed: bool,
}

impl<T> State<T> {
    fn busy(&self, uid: u32) -> usize {
        self.busy
            .iter()
            .find(|(u, _)| *u == uid)
            .map_or(0, |(_, n)| *n)
    }

    fn may_start(&self, uid: u32) -> bool {
        self.share.is_none_or(|share| self.busy(uid) < share)
    }
}

/// See the module documentation.
pub struct FairQueue<T> {
    state: Mutex<State<T>>,
    wake: Condvar,
}

/// A crash taken by a worker; dropped when its handling ends, which frees
/// its uid's place.
pub struct Ticket<'a, T> {
    queue: &'a FairQueue<T>,
    pub uid: u32,
    pub item: Option<T>,
}

impl<T> Drop for Ticket<'_, T> {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        if let Some(at) = state.busy.iter().position(|(u, _)| *u == self.uid) {
            state.busy[at].1 -= 1;
            if state.busy[at].1 == 0 {
                state.busy.swap_remove(at);
            }
        }
        drop(state);
        self.queue.wake.notify_all();
    }
}

impl<T> FairQueue<T> {
    pub fn new(share: Option<usize>) -> FairQueue<T> {
        FairQueue {
            state: Mutex::new(State {
                waiting: VecDeque::new(),
                busy: Vec::new(),
                share,
                closed: false,
            }),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Changes the share (the configuration is read again for each crash).
    pub fn set_share(&self, share: Option<usize>) {
        self.lock().share = share;
        self.wake.notify_all();
    }

    /// Whether a crash of `uid` may wait now, or why not.
    pub fn room_for(&self, uid: u32) -> Result<(), String> {
        Self::room_in(&self.lock(), uid)
    }

    fn room_in(state: &State<T>, uid: u32) -> Result<(), String> {
        let of_uid = state.waiting.iter().filter(|(u, _)| *u == uid).count();
        if of_uid >= MAX_WAITING_PER_UID {
            let busy = state.busy(uid);
            return Err(format!(
                "uid {uid} already has {busy} crash(es) being handled and {of_uid} waiting \
                 (at most {MAX_WAITING_PER_UID} may wait)"
            ));
        }
        if state.waiting.len() >= MAX_WAITING {
            return Err(format!("{MAX_WAITING} crashes already wait for a worker"));
        }
        Ok(())
    }

    /// Queues a crash of `uid`; gives it back, with why, when it may not
    /// wait.
    pub fn push(&self, uid: u32, item: T) -> Result<(), (T, String)> {
        let mut state = self.lock();
        if let Err(why) = Self::room_in(&state, uid) {
            return Err((item, why));
        }
        state.waiting.push_back((uid, item));
        drop(state);
        self.wake.notify_all();
        Ok(())
    }

    /// The oldest crash whose uid is under its share, once there is one;
    /// `None` once the queue is closed and nothing waits.
    pub fn pop(&self) -> Option<Ticket<'_, T>> {
        let mut state = self.lock();
        loop {
            let next = state
                .waiting
                .iter()
                .position(|(uid, _)| state.may_start(*uid));
            if let Some(at) = next {
                let (uid, item) = state.waiting.remove(at).expect("found above");
                match state.busy.iter_mut().find(|(u, _)| *u == uid) {
                    Some((_, n)) => *n += 1,
                    None => state.busy.push((uid, 1)),
                }
                return Some(Ticket {
                    queue: self,
                    uid,
                    item: Some(item),
                });
            }
            if state.closed && state.waiting.is_empty() {
                return None;
            }
            state = self
                .wake
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// No more crashes will come: the workers end once every waiting one
    /// is taken.
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }

    /// Waiting crashes a worker could take now (their uid under its
    /// share): while as many wait as there are workers, the service leaves
    /// new connections in the listening socket's backlog, where they
    /// outlive a service killed outright (a held socket).
    pub fn runnable_waiting(&self) -> usize {
        let state = self.lock();
        state
            .waiting
            .iter()
            .filter(|(uid, _)| state.may_start(*uid))
            .count()
    }

    /// (waiting, being handled) crashes of `uid`.
    pub fn count(&self, uid: u32) -> (usize, usize) {
        let state = self.lock();
        (
            state.waiting.iter().filter(|(u, _)| *u == uid).count(),
            state.busy(uid),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    #[test]
    fn a_uid_at_its_share_waits_and_the_others_go_first() {
        let queue = FairQueue::new(Some(2));
        for n in 0..5 {
            queue.push(1000, n).unwrap();
        }
        queue.push(2000, 100).unwrap();
        let a = queue.pop().unwrap();
        let b = queue.pop().unwrap();
        assert_eq!(
            (a.uid, a.item, b.uid, b.item),
            (1000, Some(0), 1000, Some(1))
        );
        // uid 1000 holds its share: the next one taken is 2000's, though
        // three of 1000's came before it.
        let c = queue.pop().unwrap();
        assert_eq!((c.uid, c.item), (2000, Some(100)));
        assert_eq!(queue.count(1000), (3, 2));
        // 1000's three wait on its share: none could be taken now.
        assert_eq!(queue.runnable_waiting(), 0);
        drop(a);
        let d = queue.pop().unwrap();
        assert_eq!((d.uid, d.item), (1000, Some(2)));
    }

    #[test]
    fn a_worker_waits_until_a_crash_it_may_take_comes() {
        let queue = std::sync::Arc::new(FairQueue::new(Some(1)));
        queue.push(7, "first").unwrap();
        queue.push(7, "second").unwrap();
        let held = queue.pop().unwrap();
        let (sender, receiver) = channel();
        let worker = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                let ticket = queue.pop().unwrap();
                sender.send(ticket.item).unwrap();
            })
        };
        // The second of uid 7 waits for the first to end: certain, since
        // the first is held here until dropped.
        assert!(receiver.recv_timeout(Duration::from_millis(100)).is_err());
        drop(held);
        assert_eq!(receiver.recv().unwrap(), Some("second"));
        worker.join().unwrap();
        queue.close();
        assert!(queue.pop().is_none());
    }

    #[test]
    fn waiting_is_bounded_per_uid_and_in_all() {
        let queue = FairQueue::new(Some(1));
        for n in 0..MAX_WAITING_PER_UID {
            queue.push(1, n).unwrap();
        }
        let (item, why) = queue.push(1, 999).unwrap_err();
        assert_eq!(item, 999);
        assert!(why.contains("uid 1"), "{why}");
        // Others still may wait.
        queue.push(2, 0).unwrap();
        let mut uid = 3;
        while queue.push(uid, 0).is_ok() {
            uid += 1;
        }
        assert_eq!(uid as usize, 3 + MAX_WAITING - MAX_WAITING_PER_UID - 1);
    }
}
