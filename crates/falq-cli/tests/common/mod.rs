//! Helpers shared by the CLI's test binaries: a scratch directory, the `falq` binary
//! with a clean environment, and a `falq sim` process. Each binary uses some of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A scratch directory of one test (its FALQ_HOME, its outputs), removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh, empty directory named after the test and this process.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("falq-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// A path inside it.
    pub fn path(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn fixture_png() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/input.png").display().to_string()
}

/// `falq` with a clean environment: no relay, no key, its own FALQ_HOME.
pub fn falq(home: &Scratch) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_falq"));
    c.env_remove("FAL_BASE_URL")
        .env_remove("FAL_KEY")
        .env_remove("FAL_AUTH_SCHEME")
        .env("FALQ_HOME", home.path("home"))
        .current_dir(&home.0);
    c.stdin(Stdio::null());
    c
}

pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output { status, stdout, stderr } = cmd.output().expect("falq runs");
    (status.code().unwrap_or(-1), String::from_utf8_lossy(&stdout).into_owned(), String::from_utf8_lossy(&stderr).into_owned())
}

/// A `falq sim` process on a free port; killed on drop.
pub struct SimProcess {
    pub child: Child,
    pub base_url: String,
}

impl SimProcess {
    pub fn start(home: &Scratch, args: &[&str]) -> Self {
        let (child, base_url) = tests::spawn_listening(falq(home).args(["sim", "--addr", "127.0.0.1:0"]).args(args));
        Self { child, base_url }
    }

    pub fn counters(&self) -> Value {
        let addr = self.base_url.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        use std::io::{Read, Write};
        write!(s, "GET /_sim/counters?per_job=0 HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
        // The body may be chunked: take the JSON object.
        let start = body.find('{').unwrap();
        let end = body.rfind('}').unwrap();
        serde_json::from_str(&body[start..=end]).unwrap()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn is_image(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap_or_default();
    bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.starts_with(b"\xff\xd8\xff")
}

pub fn jobs(home: &Scratch) -> Vec<Value> {
    let (code, out, err) = run(falq(home).args(["jobs", "--json"]));
    assert_eq!(code, 0, "{err}");
    out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}
