//! Per-frame work on every core: frames are handed out one at a time (cheap and expensive frames mix), the
//! first error stops the others, and the results come back in frame order.

use crate::error::{Error, Result};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// `f(0) … f(count − 1)` on all cores; their results in order, or the first error met.
pub fn map_frames<R: Send>(count: usize, f: impl Fn(usize) -> Result<R> + Sync) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..count).map(|_| None).collect());
    let first_error = Mutex::new(None::<Error>);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(count.max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || first_error.lock().unwrap().is_some() {
                    break;
                }
                match f(i) {
                    Ok(r) => results.lock().unwrap()[i] = Some(r),
                    Err(e) => {
                        first_error.lock().unwrap().get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    Ok(results.into_inner().unwrap().into_iter().map(|r| r.expect("every frame ran")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_in_order_and_the_first_error_wins() {
        assert_eq!(map_frames(100, |i| Ok(i * i)).unwrap()[99], 99 * 99);
        assert!(map_frames(0, |i| Ok(i)).unwrap().is_empty());
        let err = map_frames(50, |i| if i == 7 { Err(Error::input("frame 7 is bad")) } else { Ok(i) });
        assert_eq!(err.unwrap_err().to_string(), "frame 7 is bad");
    }
}
