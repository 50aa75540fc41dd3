//! Project automation: `cargo xtask test` runs every test, PostgreSQL
//! contract included, starting the local PostgreSQL server if it is down.

use std::process::{Command, ExitCode};
use std::thread::sleep;
use std::time::Duration;

const POSTGRES_URL_VARIABLE: &str = "PAYCORE_TEST_POSTGRES_URL";
const POSTGRES_URL_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";
const POSTGRES_START_WAIT_SECONDS_MAX: u32 = 60;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let result = match arguments.first().map(String::as_str) {
        Some("test") => test(&arguments[1..]),
        _ => Err("usage: cargo xtask test [extra cargo test arguments]".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn test(extra: &[String]) -> Result<(), String> {
    ensure_postgres()?;
    let url =
        std::env::var(POSTGRES_URL_VARIABLE).unwrap_or_else(|_| POSTGRES_URL_DEFAULT.to_owned());
    println!("xtask: PostgreSQL contract tests on {url}");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(["test", "--workspace", "--all-targets"])
        .args(extra)
        .env(POSTGRES_URL_VARIABLE, &url)
        .status()
        .map_err(|error| format!("running cargo test: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo test failed: {status}"))
    }
}

fn postgres_ready() -> bool {
    Command::new("pg_isready")
        .args(["-h", "127.0.0.1", "-p", "5432", "-q"])
        .status()
        .is_ok_and(|status| status.success())
}

/// Starts the machine's PostgreSQL cluster if it is not answering.
fn ensure_postgres() -> Result<(), String> {
    if std::env::var_os(POSTGRES_URL_VARIABLE).is_some() || postgres_ready() {
        return Ok(());
    }
    let versions = std::fs::read_dir("/etc/postgresql").map_err(|error| {
        format!("PostgreSQL is down and not installed (/etc/postgresql: {error})")
    })?;
    for version in versions.flatten() {
        let version = version.file_name().to_string_lossy().into_owned();
        println!("xtask: starting PostgreSQL {version}");
        let _ = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &version, "main", "start"])
            .status();
    }
    for _ in 0..POSTGRES_START_WAIT_SECONDS_MAX {
        if postgres_ready() {
            return Ok(());
        }
        sleep(Duration::from_secs(1));
    }
    Err("PostgreSQL did not start".to_owned())
}
