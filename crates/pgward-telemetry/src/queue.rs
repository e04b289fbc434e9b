//! The queue of finished statement spans and the thread that exports it: every
//! `SCHEDULED_DELAY`, or as soon as a full batch is waiting, the queue is swapped out and
//! sent in batches of `EXPORT_BATCH_SPANS` (the same limits as the SDK's batch processor
//! for the session spans).
//!
//! A session never waits for export: pushing is one uncontended lock and a `Vec::push`;
//! when the queue is full (the collector is slower than the traffic) spans are dropped,
//! counted, and reported in the log at most once a minute.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::export::{Transport, MAX_REQUEST_BYTES};
use crate::otlp::Encoder;
use crate::query::QueryRecord;

/// How long a finished span waits at most before it is sent.
const SCHEDULED_DELAY: Duration = Duration::from_secs(1);
const REPORT_DROPS_EVERY: Duration = Duration::from_secs(60);

struct Queue {
    spans: Mutex<Vec<QueryRecord>>,
    wake: Condvar,
    stopping: AtomicBool,
    dropped: AtomicU64,
    max_queued: usize,
    batch: usize,
}

/// Set by [`start`]; with none, nothing builds statement spans at all.
static QUEUE: OnceLock<Arc<Queue>> = OnceLock::new();

/// Whether statement spans are exported.
pub(crate) fn installed() -> bool {
    QUEUE.get().is_some()
}

/// Queues a finished span; drops it (counted) when the queue is full.
pub(crate) fn push(record: QueryRecord) {
    let Some(queue) = QUEUE.get() else { return };
    let Ok(mut spans) = queue.spans.lock() else {
        return;
    };
    if spans.len() >= queue.max_queued {
        drop(spans);
        queue.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    spans.push(record);
    if spans.len() == queue.batch {
        queue.wake.notify_one();
    }
}

/// The export thread; [`Exporting::stop`] flushes what is queued and ends it.
pub(crate) struct Exporting {
    queue: Arc<Queue>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the export thread and makes [`push`] feed it. `None` if a queue was already
/// installed in this process (the global subscriber can be installed only once too).
pub(crate) fn start(
    transport: Arc<Transport>,
    encoder: Encoder,
    max_queued: usize,
    batch: usize,
) -> Option<Exporting> {
    let queue = Arc::new(Queue {
        spans: Mutex::new(Vec::new()),
        wake: Condvar::new(),
        stopping: AtomicBool::new(false),
        dropped: AtomicU64::new(0),
        max_queued,
        batch: batch.max(1),
    });
    if QUEUE.set(queue.clone()).is_err() {
        return None;
    }
    let runner = queue.clone();
    let thread = std::thread::Builder::new()
        .name("pgward-spans".into())
        .spawn(move || run(&runner, &transport, encoder))
        .ok();
    Some(Exporting { queue, thread })
}

impl Exporting {
    /// Sends what is queued (each request bounded by the export timeout) and stops.
    pub(crate) fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        self.queue.stopping.store(true, Ordering::Release);
        self.queue.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Exporting {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// One request for `records`, or several if it would be too large for the collector.
fn send(encoder: &mut Encoder, transport: &Transport, records: &[QueryRecord], body: &mut Vec<u8>) {
    encoder.encode_queries(records, body);
    if body.len() > MAX_REQUEST_BYTES && records.len() > 1 {
        let (a, b) = records.split_at(records.len() / 2);
        send(encoder, transport, a, body);
        send(encoder, transport, b, body);
        return;
    }
    transport.send_blocking(std::mem::take(body), records.len() as u64);
}

fn run(queue: &Queue, transport: &Transport, mut encoder: Encoder) {
    let mut taken: Vec<QueryRecord> = Vec::new();
    let mut body = Vec::new();
    let mut last_report: Option<Instant> = None;
    loop {
        let stopping = {
            let Ok(mut spans) = queue.spans.lock() else {
                return;
            };
            if spans.len() < queue.batch && !queue.stopping.load(Ordering::Acquire) {
                spans = match queue.wake.wait_timeout(spans, SCHEDULED_DELAY) {
                    Ok((spans, _)) => spans,
                    Err(_) => return,
                };
            }
            // The queue gets the empty batch vector back, capacity and all.
            std::mem::swap(&mut *spans, &mut taken);
            queue.stopping.load(Ordering::Acquire)
        };
        for chunk in taken.chunks(queue.batch) {
            send(&mut encoder, transport, chunk, &mut body);
        }
        taken.clear();
        let dropped = queue.dropped.load(Ordering::Relaxed);
        if dropped > 0 && last_report.is_none_or(|t| t.elapsed() >= REPORT_DROPS_EVERY) {
            queue.dropped.fetch_sub(dropped, Ordering::Relaxed);
            last_report = Some(Instant::now());
            tracing::warn!(
                dropped,
                "statement spans dropped: the export queue was full (collector too slow or down)"
            );
        }
        if stopping {
            return;
        }
    }
}
