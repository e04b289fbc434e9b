//! Starts real clusters: the server comes up with TLS and cert auth only, and goes away
//! with its files when the Cluster is dropped (or stays, with `keep`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pgward_sandbox::{Cluster, ClusterOptions, DEMO_DATABASE, DEMO_USERS};

#[test]
fn start_load_demo_and_tear_down() {
    let cluster = Cluster::start(ClusterOptions::default()).unwrap();
    let root = cluster.root_dir().to_path_buf();
    assert!(cluster.data_dir().join("PG_VERSION").is_file());
    assert_eq!(cluster.psql_admin("SHOW ssl").unwrap(), "on");
    let hba = std::fs::read_to_string(cluster.data_dir().join("pg_hba.conf")).unwrap();
    let rules: Vec<&str> = hba.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rules, ["hostssl all all 127.0.0.1/32 cert map=pgward"]);

    cluster.load_demo().unwrap();
    cluster.load_demo().unwrap(); // idempotent
    let counts = cluster
        .psql_admin_in(
            DEMO_DATABASE,
            "SELECT (SELECT count(*) FROM customers) || ' ' || (SELECT count(*) FROM products) \
             || ' ' || (SELECT count(*) FROM orders)",
        )
        .unwrap();
    assert_eq!(counts, "30 12 60");
    for user in DEMO_USERS {
        let info = cluster.conninfo(user.name, DEMO_DATABASE).unwrap();
        let out = cluster
            .psql(&info, &["-At", "-c", "SELECT current_user"], None)
            .unwrap();
        assert!(out.success(), "{}: {}", user.name, out.stderr);
        assert_eq!(out.stdout.trim(), user.name);
    }

    drop(cluster);
    assert!(!root.exists(), "{} should be removed", root.display());
}

#[test]
fn keep_leaves_the_files() {
    let cluster = Cluster::start(ClusterOptions {
        keep: true,
        ..ClusterOptions::default()
    })
    .unwrap();
    let root = cluster.root_dir().to_path_buf();
    drop(cluster);
    assert!(root.join("data").join("PG_VERSION").is_file());
    assert!(
        !root.join("data").join("postmaster.pid").exists(),
        "server stopped"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn fixed_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = Cluster::start(ClusterOptions {
        port: Some(port),
        ..ClusterOptions::default()
    })
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("could not bind"), "{text}");
    assert!(!text.contains('\n'));
}

/// The cluster must not outlive a process that dies without running Drop (tests keep their
/// cluster in a static; a developer may `kill -9` a hung test). The test re-runs itself as a
/// child that starts a cluster, then SIGKILLs that child.
#[test]
fn killed_owner_takes_the_server_with_it() {
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};

    const CHILD: &str = "PGWARD_SANDBOX_LIFECYCLE_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let cluster = Cluster::start(ClusterOptions::default()).unwrap();
        println!("ROOT={}", cluster.root_dir().display());
        println!("PORT={}", cluster.port());
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "killed_owner_takes_the_server_with_it",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut root = None;
    let mut port = None;
    while root.is_none() || port.is_none() {
        let line = lines.next().expect("child ended early").unwrap();
        if let Some(r) = line.strip_prefix("ROOT=") {
            root = Some(std::path::PathBuf::from(r));
        }
        if let Some(p) = line.strip_prefix("PORT=") {
            port = Some(p.parse::<u16>().unwrap());
        }
    }
    let (root, port) = (root.unwrap(), port.unwrap());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    child.kill().unwrap(); // SIGKILL: no Drop, no atexit
    child.wait().unwrap();

    let deadline = Instant::now() + Duration::from_secs(15);
    while (root.exists() || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!root.exists(), "{} left behind", root.display());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "server still up"
    );
}
