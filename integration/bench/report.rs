//! The markdown report: medians over rounds of every measurement, each proxy against direct.

use std::fmt::Write as _;
use std::time::Duration;

use crate::idle::IdleResult;
use crate::opts::Opts;
use crate::pgbench::{Sample, Workload};
use crate::syscalls::{Traced, EPOLL_WAITS, FUTEX, READS, WRITES};

/// One result per round.
pub type Runs = Vec<Result<Sample, String>>;

/// One (workload, clients, mode) combination, with every target's rounds (target order as
/// in [`Report::targets`]; index 0 is direct).
pub struct Cell {
    pub workload: Workload,
    pub clients: u32,
    pub mode: String,
    pub runs: Vec<Runs>,
}

pub struct Report<'a> {
    pub opts: &'a Opts,
    pub targets: Vec<&'static str>,
    pub cells: Vec<Cell>,
    /// `pgbench -C` runs per target (empty when not measured).
    pub connect: Vec<Runs>,
    /// The select-only runs under `strace -c` (empty when not measured).
    pub syscalls: Vec<Traced>,
    pub idle: Vec<(&'static str, Result<IdleResult, String>)>,
    /// Lines printed under the header: what was skipped or capped, limits seen.
    pub notes: Vec<String>,
    pub server_version: String,
    pub pgbouncer_version: Option<String>,
    pub clk_tck: u64,
    pub clk_note: &'static str,
    pub elapsed: Duration,
    /// /proc/loadavg before and after the measured rounds: other work on the machine shows.
    pub load: [String; 2],
    pub pgward: String,
}

impl Report<'_> {
    /// Writes the report; false if any run failed.
    pub fn write(&self, out: &mut String) -> bool {
        let o = self.opts;
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let workloads: Vec<&str> = o.workloads.iter().map(|w| w.name()).collect();
        let _ = writeln!(
            out,
            "pgbench {} (-n), -T {} s, {} round(s), scale {}, -j {}; PostgreSQL {}; {}; \
             {cores} core(s); CPU ticks {}/s ({}); {:.0} s measured; load average {} before, \
             {} after; pgward {}\n",
            workloads.join(" + "),
            o.seconds,
            o.rounds,
            o.scale,
            o.jobs,
            self.server_version,
            self.pgbouncer_version.as_deref().unwrap_or("no PgBouncer"),
            self.clk_tck,
            self.clk_note,
            self.elapsed.as_secs_f64(),
            self.load[0],
            self.load[1],
            self.pgward,
        );
        for note in &self.notes {
            let _ = writeln!(out, "- {note}");
        }
        let mut all_ok = self.throughput(out);
        self.p99(out);
        all_ok &= self.connect(out);
        all_ok &= self.syscalls(out);
        all_ok &= self.idle(out);
        all_ok &= self.failures(out);
        all_ok
    }

    fn cpu_ms(&self, ticks: u64) -> f64 {
        ticks as f64 * 1000.0 / self.clk_tck as f64
    }

    fn throughput(&self, out: &mut String) -> bool {
        if self.cells.is_empty() {
            return true;
        }
        let _ = writeln!(
            out,
            "\n### Throughput\n\n| workload | clients | mode | target | TPS (median) | × direct \
             | latency avg ms (median) | proxy CPU ms / 10k stmts (median) | of which in the \
             kernel (median) | TPS per round |"
        );
        let _ = writeln!(out, "|---|---:|---|---|---:|---:|---:|---:|---:|---|");
        for cell in &self.cells {
            let direct_tps = median(ok_values(&cell.runs[0], |s| Some(s.tps)));
            for (ti, name) in self.targets.iter().enumerate() {
                let runs = &cell.runs[ti];
                let tps = median(ok_values(runs, |s| Some(s.tps)));
                let cpu = median(ok_values(runs, |s| {
                    Some(self.cpu_ms(s.cpu?.total()) * 10_000.0 / s.statements.max(1) as f64)
                }));
                let kernel = median(ok_values(runs, |s| {
                    let cpu = s.cpu?;
                    (cpu.total() > 0).then(|| cpu.system as f64 * 100.0 / cpu.total() as f64)
                }));
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {name} | {} | {} | {} | {} | {} | {} |",
                    cell.workload.name(),
                    cell.clients,
                    cell.mode,
                    fmt_opt(tps, 0),
                    ratio(ti, tps, direct_tps),
                    fmt_opt(median(ok_values(runs, |s| Some(s.latency_ms))), 3),
                    fmt_opt(cpu, 0),
                    kernel.map_or_else(|| "—".to_owned(), |k| format!("{k:.0} %")),
                    per_round(runs, |s| format!("{:.0}", s.tps)),
                );
            }
        }
        true
    }

    fn p99(&self, out: &mut String) {
        let cells: Vec<&Cell> = self
            .cells
            .iter()
            .filter(|c| c.clients == self.opts.p99_clients)
            .collect();
        if cells.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\n### Latency percentiles at {} clients (pgbench -l, sampling rate {})\n\n\
             | workload | mode | target | p50 ms (median) | p99 ms (median) \
             | added p99 over direct µs | p99 ms per round | logged transactions |",
            self.opts.p99_clients, self.opts.p99_sampling
        );
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|---|---:|");
        for cell in cells {
            let p99_of = |runs: &Runs| median(ok_values(runs, |s| Some(s.percentiles?.p99_us)));
            let direct_p99 = p99_of(&cell.runs[0]);
            for (ti, name) in self.targets.iter().enumerate() {
                let runs = &cell.runs[ti];
                let p99 = p99_of(runs);
                let p50 = median(ok_values(runs, |s| Some(s.percentiles?.p50_us)));
                let added = match (p99, direct_p99) {
                    (Some(t), Some(d)) if ti > 0 => format!("{:+.0}", t - d),
                    _ => "—".to_owned(),
                };
                let logged: usize = runs
                    .iter()
                    .filter_map(|r| r.as_ref().ok()?.percentiles)
                    .map(|p| p.samples)
                    .sum();
                let _ = writeln!(
                    out,
                    "| {} | {} | {name} | {} | {} | {added} | {} | {logged} |",
                    cell.workload.name(),
                    cell.mode,
                    fmt_opt(p50.map(|v| v / 1000.0), 3),
                    fmt_opt(p99.map(|v| v / 1000.0), 3),
                    per_round(runs, |s| s
                        .percentiles
                        .map_or("—".to_owned(), |p| format!("{:.3}", p.p99_us / 1000.0))),
                );
            }
        }
    }

    fn connect(&self, out: &mut String) -> bool {
        if self.connect.is_empty() {
            return true;
        }
        let _ = writeln!(
            out,
            "\n### Connection setup (pgbench -C -S -M simple, {} clients: a new TLS session \
             and login per transaction)\n\n| target | connections/s (median) | × direct \
             | avg connection time ms (median) | proxy CPU ms / 1k connections (median) \
             | per round |",
            self.opts.connect_clients
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---|");
        let direct = median(ok_values(&self.connect[0], |s| Some(s.tps)));
        for (ti, name) in self.targets.iter().enumerate() {
            let runs = &self.connect[ti];
            let tps = median(ok_values(runs, |s| Some(s.tps)));
            let cpu = median(ok_values(runs, |s| {
                Some(self.cpu_ms(s.cpu?.total()) * 1000.0 / s.transactions.max(1) as f64)
            }));
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {} |",
                fmt_opt(tps, 0),
                ratio(ti, tps, direct),
                fmt_opt(median(ok_values(runs, |s| s.connection_ms)), 3),
                fmt_opt(cpu, 0),
                per_round(runs, |s| format!("{:.0}", s.tps)),
            );
        }
        true
    }

    fn syscalls(&self, out: &mut String) -> bool {
        if self.syscalls.is_empty() {
            return true;
        }
        let _ = writeln!(
            out,
            "\n### System calls per statement (strace -c, select-only, {} clients)\n\n\
             | mode | target | statements | reads / stmt | writes / stmt | epoll_wait / stmt \
             | futex / stmt | other / stmt | total / stmt | TPS under strace |",
            self.opts.syscalls
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        let mut ok = true;
        for t in &self.syscalls {
            match &t.result {
                Ok((sample, counts)) => {
                    let per = |calls: u64| calls as f64 / sample.statements.max(1) as f64;
                    let [reads, writes, epoll, futex] =
                        [&READS[..], &WRITES, &EPOLL_WAITS, &FUTEX].map(|g| counts.calls_of(g));
                    let total = counts.total.calls;
                    let other = total.saturating_sub(reads + writes + epoll + futex);
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |",
                        t.mode,
                        t.target,
                        sample.statements,
                        per(reads),
                        per(writes),
                        per(epoll),
                        per(futex),
                        per(other),
                        per(total),
                        sample.tps,
                    );
                }
                Err(err) => {
                    ok = false;
                    let _ = writeln!(
                        out,
                        "| {} | {} | error: {err} | | | | | | | |",
                        t.mode, t.target
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "\nCalls of every thread of the proxy process during one run (`strace -f -c -p`, \
             the logins of its {} sessions included), per statement: reads = read + \
             recvfrom + recvmsg + readv, writes = write + writev + sendto + sendmsg, \
             epoll_wait with epoll_pwait (and epoll_pwait2). strace stops the proxy at every \
             system call, so it runs far slower than in the throughput table: the counts, \
             not the TPS, are the figure.",
            self.opts.syscalls
        );
        ok
    }

    fn idle(&self, out: &mut String) -> bool {
        if self.idle.is_empty() {
            return true;
        }
        let _ = writeln!(
            out,
            "\n### Memory per idle session (fresh proxy process, TLS + login + one SELECT 1, \
             then idle)\n\n| target | sessions | RSS before KiB | RSS with sessions KiB \
             | KiB per session | RSS after closing KiB | open files limit (soft / hard) |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|");
        let mut ok = true;
        for (name, result) in &self.idle {
            match result {
                Ok(r) => {
                    let _ = writeln!(
                        out,
                        "| {name} | {} | {} | {} | {:.1} | {} | {} |",
                        r.sessions,
                        r.rss_before_kib,
                        r.rss_open_kib,
                        r.kib_per_session(),
                        r.rss_closed_kib,
                        r.nofile,
                    );
                }
                Err(err) => {
                    ok = false;
                    let _ = writeln!(out, "| {name} | error: {err} | | | | | |");
                }
            }
        }
        ok
    }

    fn failures(&self, out: &mut String) -> bool {
        let mut lines = Vec::new();
        for cell in &self.cells {
            for (ti, name) in self.targets.iter().enumerate() {
                for (round, r) in cell.runs[ti].iter().enumerate() {
                    if let Err(err) = r {
                        lines.push(format!(
                            "- round {} {} clients {} -M {} {name}: {err}",
                            round + 1,
                            cell.workload.name(),
                            cell.clients,
                            cell.mode
                        ));
                    }
                }
            }
        }
        for (ti, runs) in self.connect.iter().enumerate() {
            for (round, r) in runs.iter().enumerate() {
                if let Err(err) = r {
                    let name = self.targets.get(ti).copied().unwrap_or("?");
                    lines.push(format!("- round {} -C {name}: {err}", round + 1));
                }
            }
        }
        if lines.is_empty() {
            return true;
        }
        let _ = writeln!(out, "\nFailed runs:\n{}", lines.join("\n"));
        false
    }
}

fn ratio(target_index: usize, value: Option<f64>, direct: Option<f64>) -> String {
    match (value, direct) {
        _ if target_index == 0 => "1.00".to_owned(),
        (Some(t), Some(d)) if d > 0.0 => format!("{:.2}", t / d),
        _ => "—".to_owned(),
    }
}

fn per_round(runs: &Runs, f: impl Fn(&Sample) -> String) -> String {
    runs.iter()
        .map(|r| match r {
            Ok(s) => f(s),
            Err(_) => "error".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

fn ok_values(runs: &Runs, f: impl Fn(&Sample) -> Option<f64>) -> Vec<f64> {
    runs.iter()
        .filter_map(|r| r.as_ref().ok())
        .filter_map(f)
        .collect()
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

fn fmt_opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.decimals$}"))
}
