//! A moto server (PyPI `moto[server]` >= 5.2.5) on loopback for the cloud tests: one per test,
//! on a free port with `MOTO_PORT` set to it (moto's Step Functions calls its own Lambda API
//! through that port), killed when dropped. The real `aws-sdk-*` clients talk to it through an
//! endpoint override, with fixed credentials, in us-east-1.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{Credentials, Region};
use storyreel::cloud::SdkConfig;

const SETUP_HINT: &str = "run scripts/setup.sh (pip install 'moto[server]>=5.2.5')";

/// The region the tests use.
pub const REGION: &str = "us-east-1";
/// moto's default account.
pub const ACCOUNT: &str = "123456789012";

pub struct Moto {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Moto {
    /// Starts a server and waits until it answers.
    pub fn start() -> Moto {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
        let probe = Command::new(&python)
            .args(["-c", "import moto, moto.server, flask"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python} to look for moto ({e}): {SETUP_HINT}"));
        assert!(
            probe.status.success(),
            "moto[server] is not installed for {python} ({}): {SETUP_HINT}",
            String::from_utf8_lossy(&probe.stderr).trim()
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

    /// The AWS configuration for this server: storyreel's loader (retry policy included) with
    /// the endpoint, the region and fixed credentials.
    pub async fn config(&self) -> SdkConfig {
        config_for(&self.endpoint()).await
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

/// storyreel's AWS configuration pointed at `endpoint` (moto, or a scripted server).
pub async fn config_for(endpoint: &str) -> SdkConfig {
    storyreel::cloud::config_loader()
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await
}
