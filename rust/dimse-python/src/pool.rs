//! Fixed pools of threads for the work that must not run on an I/O thread (Python
//! handlers, notifications, file writes): a server's thread count is then the sum of its
//! pools' sizes, whatever the number of associations, and a burst of work waits in a
//! queue instead of starting a thread per job (as tokio's blocking pool would, up to 512).

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// `threads` threads taking jobs in order; they end when the pool is dropped.
pub struct ThreadPool {
    jobs: mpsc::Sender<Job>,
}

impl ThreadPool {
    pub fn new(name: &str, threads: usize) -> Arc<ThreadPool> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads.max(1) {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{n}"))
                .spawn(move || loop {
                    // One thread waits on the queue at a time; the others on the lock.
                    let job = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    let Ok(job) = job else {
                        return; // the pool was dropped
                    };
                    // A job that panics loses its result (its caller sees None), not the
                    // thread.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                });
            // Without threads jobs would wait forever: fail loudly at start instead.
            if let Err(e) = spawned {
                panic!("dimse could not start its {name} threads: {e}");
            }
        }
        Arc::new(ThreadPool { jobs })
    }

    /// Runs `f` on one of the pool's threads; `None` if it panicked or the pool is gone.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .ok()?;
        rx.await.ok()
    }
}
