//! A moto server (PyPI `moto[server]` >= 5.2.5) on loopback for the conformance tests: started on
//! a free port with `MOTO_PORT` set to it (moto's Step Functions calls its own Lambda API
//! through that port), configured to execute state machines and to answer Lambda invocations
//! from canned results, and killed when dropped.

use anyhow::{Context, bail};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The oldest moto whose Step Functions execution the conformance test trusts.
const MIN_VERSION: (u32, u32, u32) = (5, 2, 5);

const SETUP_HINT: &str =
    "run scripts/setup.sh (it installs moto: pip install 'moto[server]>=5.2.5')";

pub struct Moto {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Moto {
    /// Starts a server and waits until it accepts its configuration.
    pub fn start() -> anyhow::Result<Moto> {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
        let version = Command::new(&python)
            .args([
                "-c",
                "import moto, moto.server, flask; print(moto.__version__)",
            ])
            .output()
            .with_context(|| format!("cannot run {python} to look for moto: {SETUP_HINT}"))?;
        if !version.status.success() {
            bail!(
                "moto[server] is not installed for {python} ({}): {SETUP_HINT}",
                String::from_utf8_lossy(&version.stderr).trim()
            );
        }
        let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
        let parsed: Vec<u32> = version
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .map(|p| p.parse().unwrap_or(0))
            .collect();
        if parsed.len() < 3 || (parsed[0], parsed[1], parsed[2]) < MIN_VERSION {
            bail!("moto {version} is too old (need >= 5.2.5): {SETUP_HINT}");
        }

        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::env::temp_dir().join(format!("storyreel-asl-moto-{port}.log"));
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
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("cannot start moto.server with {python}"))?;
        let mut moto = Moto { child, port, log };

        let config =
            r#"{"stepfunctions":{"execute_state_machine":true},"lambda":{"use_docker":false}}"#;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = moto.child.try_wait()? {
                bail!("moto.server exited with {status}: {}", moto.log_tail());
            }
            match moto.post("/moto-api/config", config) {
                Ok((200..=299, _)) => return Ok(moto),
                Ok((status, body)) => bail!("moto refused its configuration ({status}): {body}"),
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200))
                }
                Err(e) => {
                    return Err(e.context(format!(
                        "moto.server did not answer on port {port} within 60 s: {}",
                        moto.log_tail()
                    )));
                }
            }
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Queues canned results for the next Lambda invocations in `region` (moto's simple
    /// Lambda backend answers each invocation with the next one, whatever the function).
    pub fn queue_lambda_results(&self, region: &str, results: &[String]) -> anyhow::Result<()> {
        let body = serde_json::json!({"results": results, "region": region}).to_string();
        match self.post("/moto-api/static/lambda-simple/response", &body)? {
            (200..=299, _) => Ok(()),
            (status, body) => bail!("moto refused the canned Lambda results ({status}): {body}"),
        }
    }

    /// A minimal HTTP/1.1 POST; moto's own API needs nothing more.
    fn post(&self, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
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
            .with_context(|| format!("not an HTTP response: {response:?}"))?;
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
