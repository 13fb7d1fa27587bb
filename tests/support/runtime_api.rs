//! A loopback Lambda Runtime API: the HTTP protocol Lambda speaks with a custom runtime
//! (`/2018-06-01/runtime/invocation/next`, `.../{id}/response`, `.../{id}/error`,
//! `/2018-06-01/runtime/init/error`), so a test drives the real `functions/*` binaries exactly
//! as Lambda does, without Docker or AWS.
//!
//! The function binaries live in other packages of the workspace, where `CARGO_BIN_EXE_*` does
//! not reach: [`function_binary`] builds them once per test run with `cargo build -p
//! storyreel-fn-<step>` into the target directory and profile this test binary was built in
//! (found from the test executable's own path), which is a no-op when they are up to date.
//! `STORYREEL_LAMBDA_BIN_DIR` points at prebuilt binaries instead (e.g. from `cargo lambda`),
//! and `STORYREEL_LAMBDA_BUILD_DIR` at `sam build`'s output (`.aws-sam/build`, the bootstraps
//! that get deployed; scripts/build-lambdas.sh runs the Lambda tests on them).

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// How long one invocation may take before the test gives up (Lambda's own maximum).
pub const INVOCATION_TIMEOUT: Duration = Duration::from_secs(900);

/// Largest request head or body the server accepts.
const MAX_MESSAGE: usize = 64 << 20;

/// What a function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `POST /runtime/invocation/{id}/response` with this JSON body.
    Response(Value),
    /// `POST /runtime/invocation/{id}/error`.
    Error(Reported),
}

/// An error a function reported: the JSON body's `errorType`/`errorMessage` and the
/// `Lambda-Runtime-Function-Error-Type` header.
#[derive(Debug, Clone, PartialEq)]
pub struct Reported {
    pub error_type: String,
    pub error_message: String,
    pub header: Option<String>,
}

#[derive(Default)]
struct State {
    /// Events waiting for a `GET /next`: (request id, body).
    queue: VecDeque<(String, Vec<u8>)>,
    /// Request ids handed out and not yet answered.
    in_flight: Vec<String>,
    outcomes: HashMap<String, Outcome>,
    init_error: Option<Reported>,
    /// Requests that broke the protocol (unknown path or request id, answer given twice).
    violations: Vec<String>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
    next_id: AtomicU64,
    arn: String,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The Runtime API of one function, listening on `127.0.0.1` at an ephemeral port.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl RuntimeApi {
    /// Starts the server for the function `name` (used in the invoked ARN).
    pub fn start(name: &str) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the loopback Runtime API");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        RuntimeApi { addr, shared }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Queues `event` for the next `GET /next`; returns its request id.
    pub fn enqueue(&self, event: &Value) -> String {
        let n = self.shared.next_id.fetch_add(1, Ordering::SeqCst);
        let id = format!("5f0b3c2e-7d1a-4e6b-9c4f-{n:012x}");
        let body = serde_json::to_vec(event).expect("encode event");
        self.shared.lock().queue.push_back((id.clone(), body));
        self.shared.changed.notify_all();
        id
    }

    /// The answer to `request_id`, waiting up to `timeout` for it.
    pub fn outcome(&self, request_id: &str, timeout: Duration) -> Option<Outcome> {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if let Some(o) = st.outcomes.remove(request_id) {
                return Some(o);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// What the function posted to `/runtime/init/error`, if anything.
    pub fn init_error(&self) -> Option<Reported> {
        self.shared.lock().init_error.clone()
    }

    /// Requests that broke the protocol so far.
    pub fn violations(&self) -> Vec<String> {
        self.shared.lock().violations.clone()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        // Wakes the accept loop so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
    }
}

/// One HTTP/1.1 request.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Serves one connection: keep-alive requests until the client closes it or the API stops.
fn serve(conn: TcpStream, shared: &Shared) {
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut writer = conn;
    while !shared.stop.load(Ordering::SeqCst) {
        let req = match read_request(&mut reader) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                let _ = respond(&mut writer, 400, &[], e.as_bytes());
                return;
            }
        };
        let (status, headers, body) = route(&req, shared);
        if respond(&mut writer, status, &headers, &body).is_err() {
            return;
        }
    }
}

fn read_request(r: &mut impl BufRead) -> Result<Option<Request>, String> {
    let mut line = String::new();
    if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(format!("bad request line {line:?}"));
    };
    let (method, path) = (method.to_string(), path.to_string());
    let mut headers = Vec::new();
    let mut head = line.len();
    loop {
        let mut h = String::new();
        head += r.read_line(&mut h).map_err(|e| e.to_string())?;
        if head > MAX_MESSAGE {
            return Err("request head too large".into());
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("bad header {h:?}"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut req = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).map_err(|e| e.to_string())?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| format!("bad chunk size {size:?}"))?;
            if size == 0 {
                // Trailers, up to the blank line.
                loop {
                    let mut t = String::new();
                    if r.read_line(&mut t).map_err(|e| e.to_string())? == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            if req.body.len() + size > MAX_MESSAGE {
                return Err("request body too large".into());
            }
            let at = req.body.len();
            req.body.resize(at + size, 0);
            r.read_exact(&mut req.body[at..])
                .map_err(|e| e.to_string())?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf).map_err(|e| e.to_string())?;
        }
    } else if let Some(len) = req.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| format!("bad content-length {len:?}"))?;
        if len > MAX_MESSAGE {
            return Err("request body too large".into());
        }
        req.body.resize(len, 0);
        r.read_exact(&mut req.body).map_err(|e| e.to_string())?;
    }
    Ok(Some(req))
}

fn respond(
    w: &mut impl Write,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

type Answer = (u16, Vec<(&'static str, String)>, Vec<u8>);

fn accepted() -> Answer {
    (202, Vec::new(), br#"{"status":"OK"}"#.to_vec())
}

fn route(req: &Request, shared: &Shared) -> Answer {
    const BASE: &str = "/2018-06-01/runtime/";
    let path = req.path.strip_prefix(BASE).unwrap_or("");
    match (req.method.as_str(), path) {
        ("GET", "invocation/next") => next_invocation(shared),
        ("POST", "init/error") => {
            shared.lock().init_error = Some(reported(req));
            shared.changed.notify_all();
            accepted()
        }
        ("POST", p) if p.starts_with("invocation/") => {
            let rest = &p["invocation/".len()..];
            let outcome = match rest.rsplit_once('/') {
                Some((id, "response")) => serde_json::from_slice(&req.body)
                    .map(|v| (id, Outcome::Response(v)))
                    .map_err(|e| format!("response to {id} is not JSON: {e}")),
                Some((id, "error")) => Ok((id, Outcome::Error(reported(req)))),
                _ => Err(format!("unknown path {}", req.path)),
            };
            let mut st = shared.lock();
            match outcome {
                Ok((id, o)) => match st.in_flight.iter().position(|i| i == id) {
                    Some(at) => {
                        st.in_flight.remove(at);
                        st.outcomes.insert(id.to_string(), o);
                        drop(st);
                        shared.changed.notify_all();
                        accepted()
                    }
                    None => {
                        st.violations
                            .push(format!("answer to unknown or answered request {id}"));
                        (
                            400,
                            Vec::new(),
                            br#"{"errorType":"InvalidRequestID"}"#.to_vec(),
                        )
                    }
                },
                Err(e) => {
                    st.violations.push(e.clone());
                    (400, Vec::new(), e.into_bytes())
                }
            }
        }
        _ => {
            shared
                .lock()
                .violations
                .push(format!("unknown request {} {}", req.method, req.path));
            (404, Vec::new(), Vec::new())
        }
    }
}

/// `GET /next`: waits for an event, as Lambda holds the request until one arrives.
fn next_invocation(shared: &Shared) -> Answer {
    let mut st = shared.lock();
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return (500, Vec::new(), Vec::new());
        }
        if let Some((id, body)) = st.queue.pop_front() {
            st.in_flight.push(id.clone());
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let deadline = now + INVOCATION_TIMEOUT.as_millis() as u64;
            let headers = vec![
                ("Lambda-Runtime-Aws-Request-Id", id.clone()),
                ("Lambda-Runtime-Deadline-Ms", deadline.to_string()),
                ("Lambda-Runtime-Invoked-Function-Arn", shared.arn.clone()),
                (
                    "Lambda-Runtime-Trace-Id",
                    format!(
                        "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
                        now / 1000,
                        now,
                        now
                    ),
                ),
            ];
            return (200, headers, body);
        }
        st = shared
            .changed
            .wait_timeout(st, Duration::from_millis(500))
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

fn reported(req: &Request) -> Reported {
    let v: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("(no {k} in {})", String::from_utf8_lossy(&req.body)))
    };
    Reported {
        error_type: field("errorType"),
        error_message: field("errorMessage"),
        header: req
            .header("lambda-runtime-function-error-type")
            .map(str::to_string),
    }
}

/// A function binary running against its own [`RuntimeApi`], as one Lambda execution
/// environment. Killed when dropped.
pub struct Function {
    pub name: String,
    pub api: RuntimeApi,
    child: Child,
    log: PathBuf,
}

impl Function {
    /// Starts `bin` as the function `name`, with Lambda's reserved environment, storage at
    /// `STORYREEL_LOCAL_DIR=store` (unless `store` is `None`), scratch space and logs under
    /// `scratch`. Nothing from the test's own AWS, OpenAI or storyreel environment leaks in.
    pub fn start(bin: &Path, name: &str, store: Option<&Path>, scratch: &Path) -> Function {
        Function::start_with(bin, name, store, scratch, &[])
    }

    /// [`Function::start`] with `extra` environment variables (the function's configuration).
    pub fn start_with(
        bin: &Path,
        name: &str,
        store: Option<&Path>,
        scratch: &Path,
        extra: &[(&str, &str)],
    ) -> Function {
        let api = RuntimeApi::start(name);
        let tmp = scratch.join(format!("{name}-tmp"));
        std::fs::create_dir_all(&tmp).expect("create the function's scratch directory");
        let log = scratch.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("create the function's log");
        let mut cmd = Command::new(bin);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if ["AWS_", "OPENAI_", "STORYREEL_", "_LAMBDA", "_HANDLER"]
                .iter()
                .any(|p| k.starts_with(p))
            {
                cmd.env_remove(k.as_ref());
            }
        }
        let envs: [(&str, OsString); 7] = [
            ("AWS_LAMBDA_RUNTIME_API", api.endpoint().into()),
            ("AWS_LAMBDA_FUNCTION_NAME", name.into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2025/01/15/[$LATEST]0123456789abcdef0123456789abcdef".into(),
            ),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{name}").into(),
            ),
            ("TMPDIR", tmp.into_os_string()),
        ];
        cmd.envs(envs)
            .env("AWS_REGION", "us-east-1")
            .env("RUST_LOG", "info")
            // A Lambda has no libavcodec: decode as it does, even where this host has FFmpeg.
            .env("STORYREEL_H264_DECODER", "rusty_h264")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone log handle"))
            .stderr(out);
        if let Some(store) = store {
            cmd.env("STORYREEL_LOCAL_DIR", store);
        }
        cmd.envs(extra.iter().copied());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        Function {
            name: name.to_string(),
            api,
            child,
            log,
        }
    }

    /// Everything the function has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Invokes the function with `event` and waits for its answer; fails the test if the
    /// process dies or does not answer in time.
    pub fn invoke(&mut self, event: &Value) -> Outcome {
        let id = self.api.enqueue(event);
        let deadline = Instant::now() + INVOCATION_TIMEOUT;
        loop {
            if let Some(o) = self.api.outcome(&id, Duration::from_millis(200)) {
                let v = self.api.violations();
                assert!(v.is_empty(), "{}: protocol violations {v:?}", self.name);
                return o;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) during an invocation; log:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer within {INVOCATION_TIMEOUT:?}; log:\n{}",
                self.name,
                self.log()
            );
        }
    }

    /// Invokes and expects a successful response.
    pub fn ok(&mut self, event: &Value) -> Value {
        match self.invoke(event) {
            Outcome::Response(v) => v,
            Outcome::Error(e) => panic!(
                "{} failed on {event}: {e:?}; log:\n{}",
                self.name,
                self.log()
            ),
        }
    }

    /// Invokes and expects an error response.
    pub fn err(&mut self, event: &Value) -> Reported {
        match self.invoke(event) {
            Outcome::Error(e) => e,
            Outcome::Response(v) => {
                panic!("{} answered {v} to {event}, expected an error", self.name)
            }
        }
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The built `functions/<step>` binary (its `[[bin]]` name is the step's name).
///
/// With `STORYREEL_LAMBDA_BUILD_DIR` set (e.g. `.aws-sam/build`, relative to the workspace
/// root), the bootstrap `sam build` made for the step's function instead, as Lambda runs it:
/// `<dir>/<Step>Function/bootstrap` (`RenderChunkFunction` for `render-chunk`); nothing is built.
pub fn function_binary(step: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("STORYREEL_LAMBDA_BUILD_DIR") {
        let bin = sam_bootstrap(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), step);
        assert!(
            bin.is_file(),
            "STORYREEL_LAMBDA_BUILD_DIR is set but {} does not exist: run scripts/build-lambdas.sh \
             (or `sam build`) first, or unset it to test the workspace's own build",
            bin.display()
        );
        return bin;
    }
    let dir = function_bin_dir();
    let bin = dir.join(format!("{step}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} does not exist (built into {})",
        bin.display(),
        dir.display()
    );
    bin
}

/// `<dir>/<Logical id>/bootstrap`, where template.yaml's logical id is the step in PascalCase
/// followed by `Function`.
fn sam_bootstrap(dir: &Path, step: &str) -> PathBuf {
    let mut id = String::new();
    for word in step.split('-') {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.push_str(chars.as_str());
        }
    }
    dir.join(format!("{id}Function")).join("bootstrap")
}

/// Where the function binaries are, building them first (once per test run).
fn function_bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("STORYREEL_LAMBDA_BIN_DIR") {
            return PathBuf::from(dir);
        }
        // This test binary is <target>[/<triple>]/<profile>/deps/tests-<hash>.
        let exe = std::env::current_exe().expect("path of the test binary");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary under <target>/<profile>/deps")
            .to_path_buf();
        let profile = profile_dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("profile directory name");
        let above = profile_dir.parent().expect("target directory");
        let (target_dir, triple) = if above.join("CACHEDIR.TAG").is_file() {
            (above.to_path_buf(), None)
        } else {
            let root = above.parent().expect("target directory");
            (root.to_path_buf(), above.file_name())
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.arg("build")
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .args([
                "--profile",
                match profile {
                    "debug" => "dev",
                    p => p,
                },
            ]);
        if let Some(t) = triple {
            cmd.arg("--target").arg(t);
        }
        // Every binary of the workspace, with its tests selected too: then cargo resolves the
        // same features as the `cargo test --workspace` that built this test binary (dev-
        // dependencies included), so the dependencies it compiled are reused and only the
        // function binaries are linked. `-p storyreel-fn-*` alone resolves without the
        // dev-dependencies' features and recompiles much of the dependency tree.
        cmd.args(["--workspace", "--bins", "--tests"]);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "building the function binaries failed ({cmd:?}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        profile_dir
    })
}
