//! The native front ends' one pool of threads: `n` independent items (a photo's tiles, then its
//! faces) computed on `threads` scoped threads from one shared queue, each result handed to the
//! calling thread as it is ready. The page does the same with its workers (web/pool.js); in
//! wasm, and with one thread, the items run in order on the calling thread.

use crate::error::{Error, Result};
use crate::Observer;

/// Runs `work(i)` for every `i` in `0..n` on up to `threads` threads and gives each result to
/// `accept(i, result)` on this thread, in the order they finish (callers whose output must not
/// depend on that order make `accept` order-free, as tile blending and face pasting are). Stops
/// at the first error, from `work` or `accept`, and between items when `observer` cancels.
pub fn run<T: Send>(
    n: usize,
    threads: usize,
    observer: &dyn Observer,
    work: &(dyn Fn(usize) -> Result<T> + Sync),
    accept: &mut dyn FnMut(usize, T) -> Result<()>,
) -> Result<()> {
    if observer.cancelled() {
        return Err(Error::Cancelled);
    }
    #[cfg(not(target_arch = "wasm32"))]
    if threads > 1 && n > 1 {
        return run_threaded(n, threads.min(n), observer, work, accept);
    }
    let _ = threads;
    for i in 0..n {
        if observer.cancelled() {
            return Err(Error::Cancelled);
        }
        accept(i, work(i)?)?;
    }
    Ok(())
}

#[cfg(not(target_arch = "wasm32"))]
fn run_threaded<T: Send>(
    n: usize,
    threads: usize,
    observer: &dyn Observer,
    work: &(dyn Fn(usize) -> Result<T> + Sync),
    accept: &mut dyn FnMut(usize, T) -> Result<()>,
) -> Result<()> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::mpsc;

    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::sync_channel::<(usize, Result<T>)>(threads);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n || tx.send((i, work(i))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut result = Ok(());
        // Until every thread has hung up, so that none is left blocked on a full channel.
        for (i, out) in rx {
            if result.is_err() {
                continue;
            }
            result = out.and_then(|o| accept(i, o));
            if result.is_ok() && observer.cancelled() {
                result = Err(Error::Cancelled);
            }
            if result.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct CancelAfter(Cell<usize>);
    impl Observer for CancelAfter {
        fn cancelled(&self) -> bool {
            let left = self.0.get();
            self.0.set(left.saturating_sub(1));
            left == 0
        }
    }
    // Observer must be usable across the calling thread only: Cell is fine (never shared).

    #[test]
    fn every_item_is_accepted_once_on_any_number_of_threads() {
        for threads in [1, 2, 3, 8] {
            let mut seen = vec![0u32; 37];
            run(37, threads, &crate::Silent, &|i| Ok(i * i), &mut |i, sq| {
                assert_eq!(sq, i * i);
                seen[i] += 1;
                Ok(())
            })
            .unwrap();
            assert!(seen.iter().all(|&c| c == 1), "{threads} threads: {seen:?}");
        }
    }

    #[test]
    fn the_first_error_stops_the_run_and_a_cancel_stops_it_between_items() {
        let e = run(
            50,
            4,
            &crate::Silent,
            &|i| {
                if i == 7 {
                    Err(Error::Model("seven".into()))
                } else {
                    Ok(i)
                }
            },
            &mut |_, _| Ok(()),
        );
        assert!(
            matches!(e, Err(Error::Model(ref m)) if m == "seven"),
            "{e:?}"
        );
        let mut accepted = 0;
        let e = run(
            50,
            1,
            &CancelAfter(Cell::new(3)),
            &|i| Ok(i),
            &mut |_, _| {
                accepted += 1;
                Ok(())
            },
        );
        assert!(
            matches!(e, Err(Error::Cancelled)) && accepted == 2,
            "{e:?} after {accepted}"
        );
    }
}
