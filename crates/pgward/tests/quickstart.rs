//! The README's quick start, as a user runs it: `pgward dev` comes up, its printed psql
//! command works, SIGHUP reloads it without a restart, Ctrl-C removes everything;
//! `pgward passwd` prints a verifier.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn passwd_prints_a_scram_verifier_and_never_the_password() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgward"))
        .arg("passwd")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("SCRAM-SHA-256$4096:"), "{text}");
    assert!(!text.contains("correct horse"));
}

#[test]
fn dev_sandbox_serves_the_demo_and_cleans_up_on_ctrl_c() {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgward"))
        .args(["dev", "--port", &port.to_string()])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (log_tx, log_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = log_tx.send(line);
        }
    });
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut lines = Vec::new();
    let mut analyst = None;
    while analyst.is_none() && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if line.trim_start().starts_with("[analyst]") {
                analyst = Some(line.clone());
            }
            lines.push(line);
        }
    }
    let analyst = analyst.unwrap_or_else(|| panic!("no analyst command printed: {lines:?}"));
    let config_dir = lines
        .iter()
        .find_map(|l| l.strip_prefix("config: "))
        .map(|p| {
            std::path::PathBuf::from(p)
                .parent()
                .unwrap()
                .parent()
                .unwrap()
                .to_path_buf()
        })
        .expect("config line");
    // `[analyst] PGPASSWORD=... psql "<conninfo>"`: run it as printed.
    let command = analyst.trim_start().trim_start_matches("[analyst]").trim();
    let psql_works = || {
        Command::new("sh")
            .arg("-c")
            .arg(format!("{command} -XAtc 'SELECT 1'"))
            .output()
            .unwrap()
            .status
            .success()
    };
    let mut ok = false;
    for _ in 0..50 {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{command} -XAtc 'SELECT current_user, count(*) FROM orders'"
            ))
            .output()
            .unwrap();
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(text.starts_with("app_readonly|"), "{text}");
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(ok, "the printed psql command never worked");
    // SIGHUP: policies, users and certificates reloaded in place, still serving.
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut log = Vec::new();
    loop {
        if let Ok(line) = log_rx.recv_timeout(Duration::from_millis(200)) {
            let reloaded = line.contains("SIGHUP: users and certificates reloaded");
            log.push(line);
            if reloaded {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no reload logged after SIGHUP: {log:?}"
        );
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "pgward dev exited on SIGHUP"
    );
    assert!(psql_works(), "psql failed after SIGHUP");
    // Ctrl-C.
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pgward dev did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while config_dir.exists() {
        assert!(
            Instant::now() < deadline,
            "{} was not removed",
            config_dir.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
