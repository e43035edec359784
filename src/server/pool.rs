//! A fixed pool of blocking threads for filter work.
//!
//! Inspection is CPU-bound and its scanners cannot move between threads (yara-x scanners are
//! neither `Send` nor `Sync`), so it runs on a few long-lived OS threads, never on the async
//! runtime, and each thread can keep per-thread state between jobs. The pool bounds how many
//! messages are inspected at once; more wait in its queue. A panicking job is caught and
//! reported as such; the thread survives.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

pub struct Pool {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
}

/// A job panicked; the message says what the panic said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panicked(pub String);

impl std::fmt::Display for Panicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "panic: {}", self.0)
    }
}

impl Pool {
    pub fn new(threads: usize, name: &str) -> Arc<Pool> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let handles = (0..threads.max(1))
            .map(|i| {
                let rx = Arc::clone(&rx);
                thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || {
                        loop {
                            // The lock is held only while waiting for the next job.
                            let job = match rx.lock() {
                                Ok(guard) => guard.recv(),
                                Err(poisoned) => poisoned.into_inner().recv(),
                            };
                            match job {
                                Ok(job) => job(),
                                Err(_) => return,
                            }
                        }
                    })
                    .expect("spawning a pool thread")
            })
            .collect();
        Arc::new(Pool { sender: Mutex::new(Some(tx)), threads: Mutex::new(handles) })
    }

    /// Runs `job` on a pool thread. A panic inside it becomes `Err(Panicked)`.
    pub async fn run<R, F>(&self, job: F) -> Result<R, Panicked>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let wrapped: Job = Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(job)).map_err(|p| Panicked(panic_text(&p)));
            let _ = tx.send(result);
        });
        let sent = self
            .sender
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.send(wrapped).is_ok()))
            .unwrap_or(false);
        if !sent {
            return Err(Panicked("the filter pool has shut down".to_string()));
        }
        rx.await.unwrap_or_else(|_| Err(Panicked("the filter thread went away".to_string())))
    }

    /// Stops taking jobs and waits for the threads to finish the ones they have.
    pub fn shutdown(&self) {
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
        let handles = self.threads.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default();
        for h in handles {
            let _ = h.join();
        }
    }
}

fn panic_text(payload: &Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_and_returns_results() {
        let pool = Pool::new(2, "t");
        assert_eq!(pool.run(|| 40 + 2).await, Ok(42));
        let name = pool.run(|| thread::current().name().unwrap().to_string()).await.unwrap();
        assert!(name.starts_with("t-"));
        pool.shutdown();
    }

    #[tokio::test]
    async fn a_panic_is_caught_and_the_thread_survives() {
        let pool = Pool::new(1, "p");
        let r: Result<(), _> = pool.run(|| panic!("boom in filter")).await;
        assert_eq!(r, Err(Panicked("boom in filter".to_string())));
        assert_eq!(pool.run(|| 1).await, Ok(1), "the single thread still serves");
        pool.shutdown();
    }

    #[tokio::test]
    async fn after_shutdown_jobs_are_refused() {
        let pool = Pool::new(1, "s");
        pool.shutdown();
        assert!(pool.run(|| 1).await.is_err());
    }
}
