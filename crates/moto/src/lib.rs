//! A moto server (PyPI `moto[server]` >= 5.2.5) on loopback for the workspace's tests: one per
//! test, on a free port with `MOTO_PORT` set to it (moto's Step Functions calls its own Lambda
//! API through that port), killed when dropped. Tests point the real `aws-sdk-*` clients at
//! [`Moto::endpoint`].
//!
//! Test support only: failures panic with what to install.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The oldest moto the tests trust (older ones lack S3 and Step Functions behaviour they check).
const MIN_VERSION: (u32, u32, u32) = (5, 2, 5);

const SETUP_HINT: &str = "run scripts/setup-test-tools.sh (it installs 'moto[server]>=5.2.5' \
     into .tools/venv) and put .tools/venv/bin first on PATH, or set PYTHON";

/// A running moto server.
pub struct Moto {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Moto {
    /// Starts a server with `$PYTHON` (default `python3`) and waits until it answers.
    pub fn start() -> Moto {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
        let probe = Command::new(&python)
            .args([
                "-c",
                "import moto, moto.server, flask; print(moto.__version__)",
            ])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python} to look for moto ({e}): {SETUP_HINT}"));
        assert!(
            probe.status.success(),
            "moto[server] is not installed for {python} ({}): {SETUP_HINT}",
            String::from_utf8_lossy(&probe.stderr).trim()
        );
        let version = String::from_utf8_lossy(&probe.stdout).trim().to_string();
        let parsed: Vec<u32> = version
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .map(|p| p.parse().unwrap_or(0))
            .collect();
        assert!(
            parsed.len() == 3 && (parsed[0], parsed[1], parsed[2]) >= MIN_VERSION,
            "moto {version} (for {python}) is too old: {SETUP_HINT}"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::env::temp_dir().join(format!("storyreel-moto-{port}.log"));
        let child = Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .env("MOTO_PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the moto log"))
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start moto.server with {python} ({e}): {SETUP_HINT}")
            });
        let mut moto = Moto { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto.server exited with {status}: {}", moto.log_tail());
            }
            if let Ok((200..=299, _)) = moto.request("POST", "/moto-api/reset", "") {
                return moto;
            }
            assert!(
                Instant::now() < deadline,
                "moto.server did not answer on port {port} within 60 s: {}",
                moto.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Makes moto execute state machines, answering Lambda invocations from canned results.
    pub fn execute_state_machines(&self) {
        let config =
            r#"{"stepfunctions":{"execute_state_machine":true},"lambda":{"use_docker":false}}"#;
        match self.request("POST", "/moto-api/config", config) {
            Ok((200..=299, _)) => {}
            other => panic!("moto refused its configuration: {other:?}"),
        }
    }

    /// Queues canned results for the next Lambda invocations in `region` (moto's simple Lambda
    /// backend answers every invocation in a region from one FIFO, whatever the function).
    pub fn queue_lambda_results(&self, region: &str, results: &[String]) {
        let body = serde_json::json!({"results": results, "region": region}).to_string();
        match self.request("POST", "/moto-api/static/lambda-simple/response", &body) {
            Ok((200..=299, _)) => {}
            other => panic!("moto refused the canned Lambda results: {other:?}"),
        }
    }

    /// A minimal HTTP/1.1 request to moto's own API.
    fn request(&self, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not HTTP: {response:?}")))?;
        let body = response
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        Ok((status, body))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
