//! What relay-bench reads from the operating system: a process's CPU ticks, resident memory
//! and open-files limit from /proc, the clock tick rate, the load average, programs on the
//! PATH, and raising our own RLIMIT_NOFILE (with `prlimit`: the workspace forbids unsafe
//! code, so there is no setrlimit call here). It never changes anything but our own limit.

use std::path::PathBuf;
use std::process::Command;

/// A process's CPU time in clock ticks: in user space and in the kernel (utime and stime,
/// fields 14 and 15 of /proc/<pid>/stat).
#[derive(Clone, Copy)]
pub struct CpuTicks {
    pub user: u64,
    pub system: u64,
}

impl CpuTicks {
    pub fn total(self) -> u64 {
        self.user + self.system
    }

    /// What was spent between `before` and `self`.
    pub fn since(self, before: CpuTicks) -> CpuTicks {
        CpuTicks {
            user: self.user.saturating_sub(before.user),
            system: self.system.saturating_sub(before.system),
        }
    }
}

/// utime and stime of a process (fields 14 and 15 of /proc/<pid>/stat).
pub fn cpu_ticks(pid: u32) -> Result<CpuTicks, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("reading /proc/{pid}/stat: {e}"))?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("malformed /proc stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14, stime 15.
    let num = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("no field {} in /proc/{pid}/stat", i + 3))
    };
    Ok(CpuTicks {
        user: num(11)?,
        system: num(12)?,
    })
}

/// Resident set size in KiB (`VmRSS` of /proc/<pid>/status).
pub fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("reading /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// The soft and hard "Max open files" of a process, as /proc/<pid>/limits writes them.
pub fn nofile_limit(pid: u32) -> Option<(String, String)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut words = line.trim_start_matches("Max open files").split_whitespace();
    Some((words.next()?.to_owned(), words.next()?.to_owned()))
}

/// The soft open-files limit of a process as a number (`unlimited` as u64::MAX).
pub fn nofile_soft(pid: u32) -> Option<u64> {
    let (soft, _) = nofile_limit(pid)?;
    parse_limit(&soft)
}

fn parse_limit(text: &str) -> Option<u64> {
    if text == "unlimited" {
        Some(u64::MAX)
    } else {
        text.parse().ok()
    }
}

/// Raises our own RLIMIT_NOFILE to at least `need` (children started afterwards inherit
/// it). Returns what happened, for the report.
pub fn raise_nofile(need: u64) -> String {
    let me = std::process::id();
    let Some((soft, hard)) = nofile_limit(me) else {
        return "open-files limit unknown (no /proc/self/limits)".to_owned();
    };
    let (soft_n, hard_n) = (parse_limit(&soft), parse_limit(&hard));
    if soft_n.is_some_and(|s| s >= need) {
        return format!("open-files limit {soft} (soft) / {hard} (hard), enough for {need}");
    }
    let Some(prlimit) = find_program("prlimit") else {
        return format!("open-files limit {soft}: too low for {need}, and no prlimit to raise it");
    };
    let set = |soft: u64, hard: &str| {
        Command::new(&prlimit)
            .args(["--pid", &me.to_string()])
            .arg(format!("--nofile={soft}:{hard}"))
            .output()
            .map_err(|e| format!("running prlimit: {e}"))
            .and_then(|o| {
                if o.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&o.stderr).trim().to_owned())
                }
            })
    };
    let outcome = if hard_n.is_some_and(|h| h >= need) {
        set(need, &hard)
    } else {
        set(need, &need.to_string()).map_err(|e| {
            // Raising the hard limit needs CAP_SYS_RESOURCE, which root in a container may
            // lack; anyone may raise the soft limit up to the hard one.
            match hard_n.map_or(Ok(()), |h| set(h, &hard)) {
                Ok(()) => e,
                Err(e2) => format!("{e}; {e2}"),
            }
        })
    };
    let now = nofile_limit(me).map_or_else(|| "?".to_owned(), |(s, h)| format!("{s} / {h}"));
    match outcome {
        Ok(()) => format!("open-files limit (soft / hard) raised from {soft} / {hard} to {now}"),
        Err(e) => format!(
            "open-files limit (soft / hard) {now}, wanted {need}: the hard limit could not be \
             raised ({e})"
        ),
    }
}

/// The effective uid, from the second field of `Uid:` in /proc/self/status.
pub fn euid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The uid and gid of an OS user, from `id`.
pub fn user_ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

pub fn clock_ticks() -> (u64, &'static str) {
    let measured = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok());
    match measured {
        Some(t) if t > 0 => (t, "from getconf CLK_TCK"),
        _ => (100, "getconf failed: assumed 100"),
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "?".to_owned(),
        |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

/// `PATH` plus the sbin directories (Debian installs pgbouncer in /usr/sbin, which a
/// non-login shell's PATH may lack).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
