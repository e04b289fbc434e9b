//! System calls per statement: `strace -f -c -p <pid>` attached to a running proxy (every
//! thread of it, and every thread it starts) while one pgbench run goes through it, then
//! stopped with SIGINT, and its `-c` summary table parsed into calls and errors per system
//! call. It only ever traces the proxy processes relay-bench started, and only ever signals
//! the strace it spawned itself (by that child's pid).

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::pgbench::{Bench, Run, Sample, Workload};
use crate::progress;
use crate::targets::Target;

/// How long strace may take to attach to every thread of the proxy.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(20);
/// How long strace may take to detach and write its summary after SIGINT.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The system calls each report column adds up (the rest is "other").
pub const READS: [&str; 4] = ["read", "recvfrom", "recvmsg", "readv"];
pub const WRITES: [&str; 4] = ["write", "writev", "sendto", "sendmsg"];
pub const EPOLL_WAITS: [&str; 3] = ["epoll_wait", "epoll_pwait", "epoll_pwait2"];
pub const FUTEX: [&str; 1] = ["futex"];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Calls {
    pub calls: u64,
    pub errors: u64,
}

/// One `strace -c` summary: calls and errors per system call, and its `total` line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub by_syscall: BTreeMap<String, Calls>,
    pub total: Calls,
}

impl Counts {
    /// The calls of the named system calls together.
    pub fn calls_of(&self, names: &[&str]) -> u64 {
        names
            .iter()
            .filter_map(|n| self.by_syscall.get(*n))
            .map(|c| c.calls)
            .sum()
    }
}

/// One traced pgbench run.
pub struct Traced {
    pub mode: String,
    pub target: &'static str,
    pub result: Result<(Sample, Counts), String>,
}

/// pgbench select-only with `clients` clients for each mode against each target that is a
/// process of ours (not direct), each run under strace.
pub fn measure(
    strace: &Path,
    bench: &Bench<'_>,
    targets: &[Target],
    modes: &[String],
    clients: u32,
) -> Vec<Traced> {
    let mut traced = Vec::new();
    for mode in modes {
        for target in targets {
            let Some(pid) = target.pid() else {
                continue;
            };
            progress(&format!(
                "strace -c: select {clients} clients -M {mode}: {}",
                target.name
            ));
            let run = Run {
                workload: Workload::Select,
                mode,
                clients,
                connect: false,
                latency_log: None,
            };
            let result = trace(strace, pid, || bench.run(target, &run))
                .and_then(|(sample, counts)| Ok((sample?, counts)));
            if let Err(err) = &result {
                progress(&format!("  failed: {err}"));
            }
            traced.push(Traced {
                mode: mode.clone(),
                target: target.name,
                result,
            });
        }
    }
    traced
}

/// Runs `f` with strace attached to every thread of `pid`, and returns what `f` returned
/// with strace's counts over that time.
pub fn trace<T>(strace: &Path, pid: u32, f: impl FnOnce() -> T) -> Result<(T, Counts), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("strace temp dir: {e}"))?;
    let summary = dir.path().join("strace-c.txt");
    let mut child = Command::new(strace)
        .args(["-f", "-c", "-p", &pid.to_string(), "-o"])
        .arg(&summary)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {}: {e}", strace.display()))?;
    let stderr = child.stderr.take();
    let mut tracer = Tracer { child, done: false };
    // strace's messages (attached, detached, errors) come on stderr; a thread forwards
    // them so that the pipe never fills while `f` runs.
    let (tx, rx) = mpsc::channel::<String>();
    if let Some(stderr) = stderr {
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let mut messages = Vec::new();
    let deadline = Instant::now() + ATTACH_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                // "<argv[0]>: Process N attached[ with M threads]", printed once every
                // thread is attached.
                let attached = line.contains(&format!("Process {pid} attached"));
                messages.push(line);
                if attached {
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "strace did not attach to {pid} within {} s: {}",
                    ATTACH_TIMEOUT.as_secs(),
                    messages.join(" | ")
                ));
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(format!(
                    "strace exited before attaching to {pid}: {}",
                    messages.join(" | ")
                ));
            }
        }
    }
    let value = f();
    tracer.stop()?;
    messages.extend(rx.try_iter());
    let text = std::fs::read_to_string(&summary)
        .map_err(|e| format!("reading strace's summary: {e} ({})", messages.join(" | ")))?;
    let counts = parse_summary(&text)
        .map_err(|e| format!("strace's summary: {e} ({})", messages.join(" | ")))?;
    Ok((value, counts))
}

/// The strace child; killed (by its own handle) if it was not stopped cleanly.
struct Tracer {
    child: Child,
    done: bool,
}

impl Tracer {
    /// SIGINT makes strace detach from every thread and write its summary. It then dies of
    /// the SIGINT it re-raises, so its exit status says nothing: the summary does.
    fn stop(&mut self) -> Result<(), String> {
        let pid = self.child.id().to_string();
        let out = Command::new("kill")
            .args(["-INT", &pid])
            .output()
            .map_err(|e| format!("running kill -INT {pid}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "kill -INT {pid}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => {
                    self.done = true;
                    return Ok(());
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) => {
                    return Err(format!(
                        "strace still running {} s after SIGINT",
                        STOP_TIMEOUT.as_secs()
                    ));
                }
                Err(e) => return Err(format!("waiting for strace: {e}")),
            }
        }
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        if !self.done {
            // The kernel detaches a dead tracer's tracees: the proxy runs on.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The columns of one summary table, from its header and the dashes under it.
struct Layout {
    /// Where each column but the last (the system call's name) ends, in bytes.
    ends: Vec<usize>,
    calls: usize,
    errors: Option<usize>,
}

impl Layout {
    fn new(header: &str, dashes: &str) -> Result<Self, String> {
        let mut spans = Vec::new();
        let mut start = None;
        for (i, b) in dashes.bytes().chain([b' ']).enumerate() {
            match (b, start) {
                (b'-', None) => start = Some(i),
                (b'-', Some(_)) => {}
                (_, Some(s)) => {
                    spans.push((s, i));
                    start = None;
                }
                (_, None) => {}
            }
        }
        let Some((&(last_start, _), numeric)) = spans.split_last() else {
            return Err("no columns under the header".to_owned());
        };
        let names: Vec<&str> = numeric
            .iter()
            .map(|&(s, e)| header.get(s..e.min(header.len())).unwrap_or("").trim())
            .collect();
        let last = header.get(last_start..).unwrap_or("").trim();
        if last != "syscall" {
            return Err(format!("last column is {last:?}, not syscall"));
        }
        let find = |name: &str| names.iter().position(|n| *n == name);
        Ok(Self {
            ends: numeric.iter().map(|&(_, e)| e).collect(),
            calls: find("calls").ok_or("no calls column")?,
            errors: find("errors"),
        })
    }

    /// A row's system call and its calls and errors; `None` if the line is no row.
    fn row<'a>(&self, line: &'a str) -> Option<(&'a str, Calls)> {
        let tokens = tokens(line);
        let (&(_, _, name), numbers) = tokens.split_last()?;
        if numbers.is_empty()
            || numbers.len() > self.ends.len()
            || numbers.iter().any(|(_, _, t)| t.parse::<f64>().is_err())
        {
            return None;
        }
        // Numbers are right-aligned in their columns, and a column may be blank (strace
        // leaves a zero error count out): each number belongs to the first column that ends
        // after it starts. A number wider than its column pushes the rest of the row right.
        let mut values: Vec<Option<&str>> = vec![None; self.ends.len()];
        let (mut next, mut shift) = (0, 0);
        for &(start, end, text) in numbers {
            let column = (next..self.ends.len()).find(|&c| start < self.ends[c] + shift)?;
            values[column] = Some(text);
            shift = shift.max(end.saturating_sub(self.ends[column]));
            next = column + 1;
        }
        let calls = values[self.calls]?.parse().ok()?;
        let errors = match self.errors.and_then(|c| values[c]) {
            Some(text) => text.parse().ok()?,
            None => 0,
        };
        Some((name, Calls { calls, errors }))
    }
}

/// The whitespace-separated words of a line with their byte ranges.
fn tokens(line: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices().chain([(line.len(), ' ')]) {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                out.push((s, i, &line[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Parses `strace -c` output: every table in it (strace writes one per personality, e.g.
/// a 32-bit one), summed; each table's rows must add up to its `total` line.
pub fn parse_summary(text: &str) -> Result<Counts, String> {
    let mut counts = Counts::default();
    let mut header: Option<&str> = None;
    let mut layout: Option<Layout> = None;
    let mut table = Calls::default();
    let mut tables = 0;
    for line in text.lines() {
        if line.trim_start().starts_with("% time") {
            header = Some(line);
            layout = None;
            continue;
        }
        let is_dashes = line.contains('-') && line.bytes().all(|b| b == b'-' || b == b' ');
        if is_dashes {
            if let (Some(h), None) = (header, &layout) {
                layout = Some(Layout::new(h, line)?);
                table = Calls::default();
            }
            continue;
        }
        let Some(l) = &layout else {
            continue;
        };
        let Some((name, calls)) = l.row(line) else {
            if !line.trim().is_empty() {
                return Err(format!("unreadable row {line:?}"));
            }
            continue;
        };
        if name == "total" {
            if table != calls {
                return Err(format!(
                    "the rows add up to {} calls and {} errors, the total line says {} and {}",
                    table.calls, table.errors, calls.calls, calls.errors
                ));
            }
            counts.total.calls += calls.calls;
            counts.total.errors += calls.errors;
            tables += 1;
            header = None;
            layout = None;
            continue;
        }
        table.calls += calls.calls;
        table.errors += calls.errors;
        let entry = counts.by_syscall.entry(name.to_owned()).or_default();
        entry.calls += calls.calls;
        entry.errors += calls.errors;
    }
    if layout.is_some() {
        return Err("a table without its total line".to_owned());
    }
    if tables == 0 {
        return Err("no strace -c summary table".to_owned());
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// `strace -f -c -o x.txt ls` (strace 6.1).
    const LS: &str = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 20.00    0.000102           3        34        13 openat
 19.22    0.000098           3        30           mmap
 19.22    0.000098          49         2           getdents64
  9.61    0.000049           2        23           close
  7.65    0.000039           1        22           newfstatat
  6.86    0.000035           7         5           mprotect
  4.31    0.000022           3         7           read
  3.33    0.000017           8         2         2 statfs
  2.55    0.000013          13         1           munmap
  1.18    0.000006           2         3           brk
  0.98    0.000005           2         2           write
  0.98    0.000005           2         2         2 ioctl
  0.78    0.000004           2         2         2 access
  0.59    0.000003           3         1           futex
  0.59    0.000003           3         1           prlimit64
  0.59    0.000003           3         1           getrandom
  0.39    0.000002           2         1           arch_prctl
  0.39    0.000002           2         1           set_tid_address
  0.39    0.000002           2         1           set_robust_list
  0.39    0.000002           2         1           rseq
  0.00    0.000000           0         2           pread64
  0.00    0.000000           0         1           execve
------ ----------- ----------- --------- --------- ----------------
100.00    0.000510           3       145        19 total
";

    /// `strace -f -c -p <pid>` on a process of 4 threads, stopped by SIGINT (strace 6.1).
    const THREADS: &str = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 85.20    0.390761         109      3561           clock_nanosleep
  5.71    0.026167          17      1465       268 futex
  5.20    0.023835           3      7122      3561 recvfrom
  3.89    0.017857           5      3561           sendto
------ ----------- ----------- --------- --------- ----------------
100.00    0.458620          29     15709      3829 total
";

    fn calls(calls: u64, errors: u64) -> Calls {
        Calls { calls, errors }
    }

    #[test]
    fn single_process_summary() {
        let c = parse_summary(LS).unwrap();
        assert_eq!(c.by_syscall.len(), 22);
        assert_eq!(c.by_syscall["openat"], calls(34, 13));
        assert_eq!(c.by_syscall["mmap"], calls(30, 0));
        assert_eq!(c.by_syscall["statfs"], calls(2, 2));
        assert_eq!(c.by_syscall["execve"], calls(1, 0));
        assert_eq!(c.total, calls(145, 19));
        assert_eq!(c.calls_of(&READS), 7);
        assert_eq!(c.calls_of(&WRITES), 2);
    }

    #[test]
    fn multi_thread_summary() {
        let c = parse_summary(THREADS).unwrap();
        assert_eq!(c.by_syscall["recvfrom"], calls(7122, 3561));
        assert_eq!(c.by_syscall["futex"], calls(1465, 268));
        assert_eq!(c.by_syscall["sendto"], calls(3561, 0));
        assert_eq!(c.total, calls(15709, 3829));
        assert_eq!(c.calls_of(&READS), 7122);
        assert_eq!(c.calls_of(&WRITES), 3561);
        assert_eq!(c.calls_of(&EPOLL_WAITS), 0);
        assert_eq!(c.calls_of(&FUTEX), 1465);
    }

    /// A row as strace 6.1 prints it: `%6.2f %11.6f %11lu %9u %9.u %s`, with the usecs
    /// column left out too when `usecs` is `None`.
    fn row(usecs: Option<u64>, calls: u64, errors: u64, name: &str) -> String {
        let usecs = usecs.map_or_else(String::new, |u| u.to_string());
        let errors = if errors == 0 {
            String::new()
        } else {
            errors.to_string()
        };
        format!(
            "{:6.2} {:11.6} {usecs:>11} {calls:9} {errors:>9} {name}\n",
            50.0, 0.0005
        )
    }

    #[test]
    fn blank_and_overflowing_columns() {
        let dashes = "------ ----------- ----------- --------- --------- ----------------\n";
        let text = [
            "% time     seconds  usecs/call     calls    errors syscall\n",
            dashes,
            &row(None, 5, 1, "epoll_wait"),
            &row(Some(0), 12_345_678_901, 0, "writev"),
            &row(None, 12_345_678_901, 7, "recvfrom"),
            &row(Some(3), 2, 0, "futex"),
            dashes,
            &row(Some(0), 24_691_357_809, 8, "total"),
        ]
        .concat();
        let c = parse_summary(&text).unwrap();
        assert_eq!(c.by_syscall["epoll_wait"], calls(5, 1));
        assert_eq!(c.by_syscall["writev"], calls(12_345_678_901, 0));
        assert_eq!(c.by_syscall["recvfrom"], calls(12_345_678_901, 7));
        assert_eq!(c.by_syscall["futex"], calls(2, 0));
        assert_eq!(c.total, calls(24_691_357_809, 8));
    }

    #[test]
    fn tables_of_two_personalities_add_up() {
        let second = "System call usage summary for 32 bit mode:\n".to_owned() + THREADS;
        let c = parse_summary(&(LS.to_owned() + &second)).unwrap();
        assert_eq!(c.total, calls(145 + 15709, 19 + 3829));
        assert_eq!(c.by_syscall["futex"], calls(1 + 1465, 268));
    }

    #[test]
    fn incomplete_or_inconsistent_summaries_are_errors() {
        assert!(parse_summary("").is_err());
        assert!(parse_summary(
            "strace: attach: ptrace(PTRACE_SEIZE, 1): Operation not permitted\n"
        )
        .is_err());
        let cut: String = THREADS.lines().take(4).map(|l| format!("{l}\n")).collect();
        assert!(parse_summary(&cut).is_err());
        let wrong = THREADS.replace("15709", "15708");
        assert!(parse_summary(&wrong).is_err());
    }
}
