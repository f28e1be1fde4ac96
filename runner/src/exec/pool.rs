//! The work queue every stage runs on: `--jobs` workers take items in order, each finished
//! item may add follow-up items (resume after a crash, an attribution re-run), and one stop
//! flag ends the run early (Ctrl-C, or an error that every later item would hit too).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

/// What running one item gave: its result, the items it asks for next, and whether the whole
/// run must stop.
pub struct Done<W, R> {
    pub result: R,
    pub follow_up: Vec<W>,
    pub stop: bool,
}

impl<W, R> Done<W, R> {
    pub fn with(result: R) -> Self {
        Done {
            result,
            follow_up: Vec::new(),
            stop: false,
        }
    }
}

struct State<W> {
    queue: VecDeque<W>,
    active: usize,
    started: usize,
    stop: bool,
}

/// Runs `items` on `jobs` workers. `execute` gets each item with its sequence number (for
/// log names); `merge` sees every result in completion order, under the queue's lock, with
/// the number of items still queued or running.
pub fn run<W, R>(
    jobs: usize,
    items: Vec<W>,
    execute: &(dyn Fn(W, usize) -> Done<W, R> + Sync),
    merge: &mut (dyn FnMut(R, usize) + Send),
) where
    W: Send,
    R: Send,
{
    let workers = jobs.clamp(1, items.len().max(1));
    let state = Mutex::new(State {
        queue: items.into(),
        active: 0,
        started: 0,
        stop: false,
    });
    let merge = Mutex::new(merge);
    let wakeup = Condvar::new();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| worker(&state, &wakeup, execute, &merge));
        }
    });
}

fn worker<W, R>(
    state: &Mutex<State<W>>,
    wakeup: &Condvar,
    execute: &(dyn Fn(W, usize) -> Done<W, R> + Sync),
    merge: &Mutex<&mut (dyn FnMut(R, usize) + Send)>,
) {
    loop {
        let (item, sequence) = {
            let Ok(mut guard) = state.lock() else { return };
            loop {
                if guard.stop || crate::process::interrupted() {
                    guard.stop = true;
                    wakeup.notify_all();
                    return;
                }
                if let Some(item) = guard.queue.pop_front() {
                    guard.active += 1;
                    guard.started += 1;
                    break (item, guard.started);
                }
                if guard.active == 0 {
                    return;
                }
                let Ok(next) = wakeup.wait(guard) else { return };
                guard = next;
            }
        };
        let done = execute(item, sequence);
        let Ok(mut guard) = state.lock() else { return };
        guard.active -= 1;
        // Follow-ups go first: they finish what an item started (its untouched tests),
        // which keeps a crash from pushing its remaining work to the very end.
        for follow_up in done.follow_up.into_iter().rev() {
            guard.queue.push_front(follow_up);
        }
        guard.stop |= done.stop;
        let left = guard.queue.len() + guard.active;
        if let Ok(mut merge) = merge.lock() {
            (*merge)(done.result, left);
        }
        drop(guard);
        wakeup.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_ups_run_and_every_result_is_merged() {
        let mut seen = Vec::new();
        run(
            2,
            vec![3u32, 1],
            &|n, _| Done {
                result: n,
                follow_up: if n > 1 { vec![n - 1] } else { Vec::new() },
                stop: false,
            },
            &mut |n, _| seen.push(n),
        );
        seen.sort_unstable();
        assert_eq!(seen, [1, 1, 2, 3]);
    }

    #[test]
    fn a_stop_ends_the_run_after_the_running_items() {
        let mut seen = Vec::new();
        run(
            1,
            vec![1u32, 2, 3],
            &|n, _| Done {
                result: n,
                follow_up: Vec::new(),
                stop: n == 2,
            },
            &mut |n, _| seen.push(n),
        );
        assert_eq!(seen, [1, 2]);
    }
}
