//! `storyreel accounts` as a person runs it, against the loopback platforms
//! (`storyreel-platforms`): `connect` prints the consent URL, the test plays the browser (the
//! fake consent page answers 302 to the CLI's loopback listener), and the account lands in a
//! 0600 file or, with `--ssm`, in a SecureString parameter on moto. `list` tells working
//! tokens from revoked ones, `add` takes a token on stdin, `rm` forgets. No token and no client
//! secret ever appears in anything the CLI prints.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use storyreel_platforms::{
    GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET, Platforms, TIKTOK_CLIENT_KEY, TIKTOK_CLIENT_SECRET,
};

use crate::moto::{Moto, MotoConfig, REGION};
use crate::support;

/// One test's world: loopback platforms, a config directory, and everything the CLI printed.
struct World {
    p: Platforms,
    dir: tempfile::TempDir,
    printed: Vec<String>,
    moto: Option<Moto>,
}

impl World {
    fn new() -> World {
        World {
            p: Platforms::start(),
            dir: support::tempdir(),
            printed: Vec::new(),
            moto: None,
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config").join("storyreel")
    }

    fn file(&self) -> PathBuf {
        self.config().join("accounts.json")
    }

    /// `storyreel` with only this world's configuration: the platform endpoints, the clients
    /// in the environment, the config directory, and moto when there is one.
    fn storyreel(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_storyreel"));
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") || k.starts_with("STORYREEL_") {
                c.env_remove(k);
            }
        }
        c.args(args)
            .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws-credentials",
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("STORYREEL_CONFIG_DIR", self.config())
            .env("STORYREEL_YOUTUBE_CLIENT_ID", GOOGLE_CLIENT_ID)
            .env("STORYREEL_YOUTUBE_CLIENT_SECRET", GOOGLE_CLIENT_SECRET)
            .env("STORYREEL_TIKTOK_CLIENT_KEY", TIKTOK_CLIENT_KEY)
            .env("STORYREEL_TIKTOK_CLIENT_SECRET", TIKTOK_CLIENT_SECRET)
            .stdin(Stdio::null());
        for (k, v) in self.p.env() {
            c.env(k, v);
        }
        if let Some(m) = &self.moto {
            c.env("AWS_ENDPOINT_URL", m.endpoint())
                .env("AWS_REGION", REGION)
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test");
        }
        c
    }

    /// Runs a command to the end, keeping what it printed.
    fn run(&mut self, mut c: Command, stdin: Option<&str>) -> Output {
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        if stdin.is_some() {
            c.stdin(Stdio::piped());
        }
        let mut child = c.spawn().expect("run storyreel");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        self.keep(&out);
        out
    }

    fn keep(&mut self, out: &Output) {
        self.printed
            .push(String::from_utf8_lossy(&out.stdout).into_owned());
        self.printed
            .push(String::from_utf8_lossy(&out.stderr).into_owned());
    }

    fn ok(&mut self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(self.storyreel(args), stdin);
        assert!(
            out.status.success(),
            "storyreel {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `accounts connect ...`, started: returns the child and the URL it printed.
    fn start_connect(&self, args: &[&str]) -> (Child, String, std::thread::JoinHandle<String>) {
        let mut child = self
            .storyreel(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run storyreel accounts connect");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        let url = loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                panic!("connect ended without printing a URL:\n{seen}");
            }
            seen.push_str(&line);
            if let Some(url) = line
                .trim()
                .strip_prefix("Open this URL to allow storyreel to upload: ")
            {
                break url.to_string();
            }
        };
        let rest = std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = stderr.read_to_string(&mut rest);
            seen + &rest
        });
        (child, url, rest)
    }

    /// Waits (at most a minute) for a started `connect` and keeps what it printed.
    fn finish(&mut self, mut child: Child, stderr: std::thread::JoinHandle<String>) -> Output {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("connect did not finish within a minute");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = Vec::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut stdout)
            .unwrap();
        let out = Output {
            status,
            stdout,
            stderr: stderr.join().unwrap().into_bytes(),
        };
        self.keep(&out);
        out
    }

    /// `accounts connect <args>` with the test as the browser: open the consent URL, follow
    /// its redirect to the CLI's listener.
    fn connect(&mut self, args: &[&str]) -> String {
        let (child, url, stderr) = self.start_connect(args);
        let (status, location, _) = http_get(&url);
        assert_eq!(status, 302, "the consent page redirects");
        let location = location.expect("a Location");
        assert!(location.starts_with("http://127.0.0.1:"), "{location}");
        let (status, _, body) = http_get(&location);
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("You can close this tab"), "{body}");
        let out = self.finish(child, stderr);
        assert!(
            out.status.success(),
            "connect failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The accounts file, checked to be private.
    fn accounts(&self) -> Vec<Value> {
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&self.config()), 0o700);
        assert_eq!(mode(&self.file()), 0o600);
        let v: Value = serde_json::from_slice(&std::fs::read(self.file()).unwrap()).unwrap();
        v["accounts"].as_array().unwrap().clone()
    }

    fn account(&self, platform: &str, name: &str) -> Option<Value> {
        self.accounts()
            .into_iter()
            .find(|a| a["platform"] == platform && a["name"] == name)
    }

    /// Nothing printed holds an issued token or a client secret.
    fn assert_no_secret_printed(&self) {
        let mut secrets = self.p.issued_tokens();
        assert!(!secrets.is_empty());
        secrets.push(GOOGLE_CLIENT_SECRET.into());
        secrets.push(TIKTOK_CLIENT_SECRET.into());
        for text in &self.printed {
            for s in &secrets {
                assert!(!text.contains(s.as_str()), "a secret was printed:\n{text}");
            }
        }
    }
}

/// A GET over loopback HTTP/1.1: status, Location, body.
fn http_get(url: &str) -> (u16, Option<String>, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, target) = rest
        .find('/')
        .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let location = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("location")
            .then(|| v.trim().to_string())
    });
    (status, location, body.to_string())
}

fn line_of<'a>(table: &'a str, platform: &str, name: &str) -> &'a str {
    table
        .lines()
        .find(|l| {
            let mut cells = l.split_whitespace();
            cells.next() == Some(platform) && cells.next() == Some(name)
        })
        .unwrap_or_else(|| panic!("no {platform} {name} row in:\n{table}"))
}

#[test]
fn connect_list_revoke_add_and_remove_with_the_accounts_file() {
    let mut w = World::new();
    let out = w.connect(&[
        "accounts",
        "connect",
        "youtube",
        "--name",
        "main",
        "--no-browser",
    ]);
    assert_eq!(out.trim(), "connected youtube:main");
    let yt = w.account("youtube", "main").expect("the account is stored");
    let refresh = yt["refresh_token"].as_str().unwrap().to_string();
    assert!(w.p.issued_tokens().contains(&refresh));
    assert_eq!(yt["client_id"], GOOGLE_CLIENT_ID);
    assert!(yt["scope"].as_str().unwrap().contains("youtube.upload"));
    assert!(yt["connected_at"].as_u64().unwrap() > 1_600_000_000);

    let table = w.ok(&["accounts", "list"], None);
    assert!(table.starts_with("PLATFORM"), "{table}");
    let row = line_of(&table, "youtube", "main");
    assert!(row.ends_with(" ok") && row.contains(" UTC "), "{row}");

    w.p.revoke(&refresh);
    let table = w.ok(&["accounts", "list"], None);
    assert!(
        line_of(&table, "youtube", "main")
            .ends_with("revoked — reconnect with storyreel accounts connect youtube --name main"),
        "{table}"
    );
    let table = w.ok(&["accounts", "list", "--no-check"], None);
    assert!(
        line_of(&table, "youtube", "main").ends_with("not checked"),
        "{table}"
    );

    // Reconnecting replaces the account.
    w.connect(&[
        "accounts",
        "connect",
        "youtube",
        "--name",
        "main",
        "--no-browser",
    ]);
    assert_eq!(w.accounts().len(), 1);
    let table = w.ok(&["accounts", "list"], None);
    assert!(
        line_of(&table, "youtube", "main").ends_with(" ok"),
        "{table}"
    );

    // A token from elsewhere, on stdin, with the client given as flags. TikTok rotates it on
    // the check, so the stored token is the new one.
    let granted =
        w.p.grant_refresh_token(storyreel_platforms::Platform::TikTok);
    let mut add = w.storyreel(&[
        "accounts",
        "add",
        "tiktok",
        "--name",
        "main",
        "--refresh-token-stdin",
        "--client-id",
        TIKTOK_CLIENT_KEY,
        "--client-secret",
        TIKTOK_CLIENT_SECRET,
    ]);
    add.env_remove("STORYREEL_TIKTOK_CLIENT_KEY")
        .env_remove("STORYREEL_TIKTOK_CLIENT_SECRET");
    let out = w.run(add, Some(&format!("  {granted}\n")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "connected tiktok:main"
    );
    let tt = w.account("tiktok", "main").unwrap();
    let stored = tt["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(stored, granted, "the rotated token is stored");
    assert!(tt["open_id"].as_str().is_some_and(|o| !o.is_empty()));
    // Twice: each check rotates the token and stores the new one, or the second would fail.
    for _ in 0..2 {
        let table = w.ok(&["accounts", "list"], None);
        assert!(
            line_of(&table, "tiktok", "main").ends_with(" ok"),
            "{table}"
        );
    }
    assert_ne!(
        w.account("tiktok", "main").unwrap()["refresh_token"]
            .as_str()
            .unwrap(),
        stored
    );

    // A revoked token is refused by add, and nothing is stored.
    let dead =
        w.p.grant_refresh_token(storyreel_platforms::Platform::YouTube);
    w.p.revoke(&dead);
    let out = w.run(
        w.storyreel(&[
            "accounts",
            "add",
            "youtube",
            "--name",
            "old",
            "--refresh-token-stdin",
        ]),
        Some(&dead),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("connected again"), "{err}");
    assert!(w.account("youtube", "old").is_none());

    let out = w.ok(&["accounts", "rm", "tiktok", "--name", "main"], None);
    assert!(out.starts_with("removed tiktok:main"), "{out}");
    assert!(w.account("tiktok", "main").is_none());
    let out = w.run(
        w.storyreel(&["accounts", "rm", "tiktok", "--name", "main"]),
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no tiktok account named \"main\""), "{err}");

    let out = w.run(
        w.storyreel(&["accounts", "connect", "youtube", "--name", "a b"]),
        None,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid account name"),
        "{out:?}"
    );
    assert_eq!(w.accounts().len(), 1);
    w.assert_no_secret_printed();
}

#[test]
fn connect_ignores_a_forged_state_and_explains_a_refusal() {
    let mut w = World::new();
    let (child, url, stderr) = w.start_connect(&[
        "accounts",
        "connect",
        "tiktok",
        "--name",
        "main",
        "--no-browser",
    ]);
    let query = url.split_once('?').unwrap().1;
    let param = |k: &str| {
        query.split('&').find_map(|kv| {
            let (key, v) = kv.split_once('=')?;
            (key == k).then(|| v.to_string())
        })
    };
    let redirect = param("redirect_uri")
        .unwrap()
        .replace("%3A", ":")
        .replace("%2F", "/");
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    let state = param("state").unwrap();
    assert_eq!(
        param("code_challenge").unwrap().len(),
        64,
        "hex SHA-256 for TikTok"
    );

    let (status, _, body) = http_get(&format!("{redirect}?code=forged&state=not-ours"));
    assert_eq!(status, 400, "{body}");
    let (status, _, _) = http_get(&format!("{redirect}favicon.ico"));
    assert_eq!(status, 404);
    let (status, _, body) = http_get(&format!(
        "{redirect}?error=access_denied&state={state}&error_description=no"
    ));
    assert_eq!(status, 200);
    assert!(body.contains("not granted"), "{body}");
    let out = w.finish(child, stderr);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("access was declined"), "{err}");
    assert!(!w.file().exists(), "nothing stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_in_ssm_parameter_store_on_moto() {
    let mut w = World::new();
    w.moto = Some(Moto::start());
    let ssm = aws_sdk_ssm::Client::new(&w.moto.as_ref().unwrap().config().await);

    let out = w.connect(&[
        "accounts",
        "connect",
        "youtube",
        "--name",
        "main",
        "--no-browser",
        "--ssm",
    ]);
    assert_eq!(out.trim(), "connected youtube:main");
    assert!(!w.file().exists(), "--ssm writes no local file");
    let param = ssm
        .get_parameter()
        .name("/storyreel/accounts/youtube/main")
        .with_decryption(true)
        .send()
        .await
        .unwrap()
        .parameter
        .unwrap();
    assert_eq!(
        param.r#type,
        Some(aws_sdk_ssm::types::ParameterType::SecureString)
    );
    let account: Value = serde_json::from_str(param.value.as_deref().unwrap()).unwrap();
    assert_eq!(
        (&account["platform"], &account["name"]),
        (&"youtube".into(), &"main".into())
    );
    let refresh = account["refresh_token"].as_str().unwrap().to_string();
    assert!(w.p.issued_tokens().contains(&refresh));

    let granted =
        w.p.grant_refresh_token(storyreel_platforms::Platform::TikTok);
    w.ok(
        &[
            "accounts",
            "add",
            "tiktok",
            "--name",
            "b-2",
            "--refresh-token-stdin",
            "--ssm",
        ],
        Some(&granted),
    );
    let table = w.ok(&["accounts", "list", "--ssm"], None);
    assert!(
        line_of(&table, "youtube", "main").ends_with(" ok"),
        "{table}"
    );
    assert!(line_of(&table, "tiktok", "b-2").ends_with(" ok"), "{table}");

    w.p.revoke(&refresh);
    let table = w.ok(&["accounts", "list", "--ssm"], None);
    assert!(
        line_of(&table, "youtube", "main").ends_with(
            "revoked — reconnect with storyreel accounts connect youtube --name main --ssm"
        ),
        "{table}"
    );

    w.ok(
        &["accounts", "rm", "youtube", "--name", "main", "--ssm"],
        None,
    );
    let gone = ssm
        .get_parameter()
        .name("/storyreel/accounts/youtube/main")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_ssm::error::ProvideErrorMetadata::code(&gone),
        Some("ParameterNotFound")
    );

    // Another prefix, from the environment; list pages through more than one page.
    for i in 0..12 {
        let t =
            w.p.grant_refresh_token(storyreel_platforms::Platform::YouTube);
        let mut c = w.storyreel(&[
            "accounts",
            "add",
            "youtube",
            "--name",
            &format!("n{i:02}"),
            "--refresh-token-stdin",
            "--ssm",
        ]);
        c.env("STORYREEL_ACCOUNTS_SSM_PREFIX", "/other/acc");
        let out = w.run(c, Some(&t));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    ssm.get_parameter()
        .name("/other/acc/youtube/n00")
        .send()
        .await
        .unwrap();
    let mut c = w.storyreel(&["accounts", "list", "--ssm", "--no-check"]);
    c.env("STORYREEL_ACCOUNTS_SSM_PREFIX", "/other/acc/");
    let out = w.run(c, None);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(table.lines().count(), 13, "{table}");
    let table = w.ok(&["accounts", "list", "--ssm", "--no-check"], None);
    assert_eq!(
        table.lines().count(),
        2,
        "only tiktok b-2 under the default prefix:\n{table}"
    );
    w.assert_no_secret_printed();
}
