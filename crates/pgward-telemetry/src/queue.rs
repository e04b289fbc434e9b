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
/// How long the last sends at shutdown may take together (each is bounded on its own).
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(5);

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
    if let Some(queue) = QUEUE.get() {
        queue.push(record);
    }
}

impl Queue {
    fn new(max_queued: usize, batch: usize) -> Queue {
        Queue {
            spans: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            max_queued,
            batch: batch.max(1),
        }
    }

    fn push(&self, record: QueryRecord) {
        let Ok(mut spans) = self.spans.lock() else {
            return;
        };
        if spans.len() >= self.max_queued {
            drop(spans);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        spans.push(record);
        if spans.len() == self.batch {
            self.wake.notify_one();
        }
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
    let queue = Arc::new(Queue::new(max_queued, batch));
    if QUEUE.set(queue.clone()).is_err() {
        return None;
    }
    Some(spawn(queue, transport, encoder))
}

fn spawn(queue: Arc<Queue>, transport: Arc<Transport>, encoder: Encoder) -> Exporting {
    let runner = queue.clone();
    let thread = std::thread::Builder::new()
        .name("pgward-spans".into())
        .spawn(move || run(&runner, &transport, encoder))
        .ok();
    Exporting { queue, thread }
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
    // Set once, when the thread first sees the stop: a collector that hangs must not hold
    // the process, so what is not sent within the budget is dropped. The stop can come
    // while a pass is sending what it took before, so every chunk checks.
    let mut deadline: Option<Instant> = None;
    let mut shutdown_deadline = |queue: &Queue| {
        if deadline.is_none() && queue.stopping.load(Ordering::Acquire) {
            deadline = Some(Instant::now() + SHUTDOWN_BUDGET);
        }
        deadline
    };
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
            if shutdown_deadline(queue).is_some_and(|d| Instant::now() >= d) {
                queue
                    .dropped
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                continue;
            }
            send(&mut encoder, transport, chunk, &mut body);
        }
        taken.clear();
        let dropped = queue.dropped.load(Ordering::Relaxed);
        let due = stopping || last_report.is_none_or(|t| t.elapsed() >= REPORT_DROPS_EVERY);
        if dropped > 0 && due {
            queue.dropped.fetch_sub(dropped, Ordering::Relaxed);
            last_report = Some(Instant::now());
            tracing::warn!(
                dropped,
                "statement spans dropped: the export queue was full (the collector is too slow \
                 or down) or they were not sent before shutdown"
            );
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;
    use std::time::SystemTime;

    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    use super::*;

    fn record() -> QueryRecord {
        QueryRecord {
            name: crate::spans::QUERY_SPAN,
            context: SpanContext::new(
                TraceId::from(1),
                SpanId::from(2),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: SpanId::from(3),
            parent_is_remote: false,
            start: SystemTime::now(),
            end: SystemTime::now(),
            link: None,
            attributes: Default::default(),
            returned_rows: Some(1),
            sqlstate: None,
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let queue = Queue::new(3, 2);
        for _ in 0..5 {
            queue.push(record());
        }
        assert_eq!(queue.spans.lock().unwrap().len(), 3);
        assert_eq!(queue.dropped.load(Ordering::Relaxed), 2);
    }

    /// An export thread started with 50,000 queued spans (5,000 batches of 10) towards a
    /// collector that accepts connections and never answers: every send waits for its 1 s
    /// timeout, so sending them all would take over an hour.
    struct Hanging {
        runtime: tokio::runtime::Runtime,
        _collector: std::net::TcpListener,
        queue: Arc<Queue>,
        exporting: Exporting,
    }

    fn hanging_export() -> Hanging {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let collector = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = collector.local_addr().unwrap().port();
        let transport = {
            let _entered = runtime.enter();
            Transport::new(
                &format!("http://127.0.0.1:{port}"),
                runtime.handle().clone(),
                Duration::from_secs(1),
            )
            .unwrap()
        };
        let queue = Arc::new(Queue::new(100_000, 10));
        for _ in 0..50_000 {
            queue.push(record());
        }
        let exporting = spawn(queue.clone(), Arc::new(transport), Encoder::default());
        Hanging {
            runtime,
            _collector: collector,
            queue,
            exporting,
        }
    }

    #[test]
    fn a_stop_while_a_pass_is_sending_ends_within_the_budget() {
        let hanging = hanging_export();
        // The thread takes the whole queue at once (it is over a batch) before the stop:
        // 5,000 sends of 1 s each are ahead of it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !hanging.queue.spans.lock().unwrap().is_empty() {
            assert!(
                Instant::now() < deadline,
                "the export thread never took the queue"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let (done, stopped) = std::sync::mpsc::channel();
        let started = Instant::now();
        let exporting = hanging.exporting;
        std::thread::spawn(move || {
            exporting.stop();
            let _ = done.send(());
        });
        let waited = stopped.recv_timeout(SHUTDOWN_BUDGET + Duration::from_secs(3));
        assert!(
            waited.is_ok(),
            "stop still running after {:?}",
            started.elapsed()
        );
        hanging.runtime.shutdown_background();
    }

    #[test]
    fn stopping_with_a_hanging_collector_ends_within_the_budget() {
        let hanging = hanging_export();
        let started = Instant::now();
        hanging.exporting.stop();
        let took = started.elapsed();
        assert!(
            took < SHUTDOWN_BUDGET + Duration::from_secs(3),
            "stop took {took:?}"
        );
        assert!(hanging.queue.spans.lock().unwrap().is_empty());
        hanging.runtime.shutdown_background();
    }
}
