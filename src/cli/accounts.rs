//! `storyreel accounts`: connect YouTube and TikTok accounts (OAuth in the browser with a
//! loopback redirect, or a refresh token you already have), list them with whether their
//! tokens still work, and forget them. Accounts live in the local accounts file or, with
//! `--ssm`, in SSM Parameter Store for the deployed stack. No token is ever printed.

use std::io::Read;
use std::time::Duration;

use anyhow::{Context, bail};
use storyreel::cloud;
use storyreel::cloud::accounts::SsmTokens;
use storyreel_publish::accounts::{Account, AccountError, FsTokens, TokenStore, check_name};
use storyreel_publish::oauth::{self, OAuthClient, Pkce, Redirect};
use storyreel_publish::{Endpoints, ErrorKind, Platform, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long `connect` waits for the browser to come back.
const CONSENT_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How long one connection to the listener may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a request head read from the browser.
const MAX_REQUEST: usize = 16 * 1024;
/// The most read from stdin for `add --refresh-token-stdin`.
const MAX_TOKEN: u64 = 16 * 1024;

#[derive(clap::Args)]
pub struct AccountsArgs {
    #[command(subcommand)]
    command: AccountsCommand,
}

#[derive(clap::Subcommand)]
enum AccountsCommand {
    /// Connect an account in the browser (OAuth with a loopback redirect) and store it.
    Connect(ConnectArgs),
    /// Store an account from a refresh token you already have, read from stdin.
    Add(AddArgs),
    /// List connected accounts and whether their tokens still work.
    List(ListArgs),
    /// Forget an account (storyreel's access stays granted until you remove it in the
    /// platform's settings).
    Rm(RmArgs),
}

#[derive(clap::Args)]
struct StoreArgs {
    /// Keep accounts in SSM Parameter Store (SecureString parameters under
    /// $STORYREEL_ACCOUNTS_SSM_PREFIX, default /storyreel/accounts/) for the deployed stack,
    /// with the standard AWS configuration; else in the local accounts file
    /// ($STORYREEL_CONFIG_DIR, $XDG_CONFIG_HOME/storyreel or ~/.config/storyreel).
    #[arg(long)]
    ssm: bool,
}

#[derive(clap::Args)]
struct ClientArgs {
    /// The OAuth client: a Google "Desktop app" client id, or a TikTok client key (default:
    /// $STORYREEL_YOUTUBE_CLIENT_ID or $STORYREEL_TIKTOK_CLIENT_KEY).
    #[arg(long)]
    client_id: Option<String>,
    /// The client's secret (default: $STORYREEL_YOUTUBE_CLIENT_SECRET or
    /// $STORYREEL_TIKTOK_CLIENT_SECRET; prefer them, a flag shows in the process list).
    #[arg(long)]
    client_secret: Option<String>,
}

#[derive(clap::Args)]
struct ConnectArgs {
    /// youtube or tiktok.
    platform: Platform,
    /// Your name for the account (letters, digits, '-', '_'), as destinations name it
    /// (`youtube:main`).
    #[arg(long)]
    name: String,
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Only print the URL to open (do not start a browser).
    #[arg(long)]
    no_browser: bool,
}

#[derive(clap::Args)]
struct AddArgs {
    /// youtube or tiktok.
    platform: Platform,
    /// Your name for the account.
    #[arg(long)]
    name: String,
    /// Read the refresh token from stdin (required: a token never goes on the command line).
    #[arg(long, required = true)]
    refresh_token_stdin: bool,
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(clap::Args)]
struct ListArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Do not check that each account's token still refreshes.
    #[arg(long)]
    no_check: bool,
}

#[derive(clap::Args)]
struct RmArgs {
    /// youtube or tiktok.
    platform: Platform,
    /// The account's name.
    #[arg(long)]
    name: String,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(args: AccountsArgs) -> anyhow::Result<()> {
    match args.command {
        AccountsCommand::Connect(a) => connect(a).await,
        AccountsCommand::Add(a) => add(a).await,
        AccountsCommand::List(a) => list(a).await,
        AccountsCommand::Rm(a) => rm(a).await,
    }
}

async fn store(args: &StoreArgs) -> anyhow::Result<Box<dyn TokenStore>> {
    Ok(if args.ssm {
        Box::new(SsmTokens::from_env(&cloud::load_config().await))
    } else {
        Box::new(FsTokens::from_env()?)
    })
}

/// The OAuth client from the flags, else from the environment.
fn oauth_client(platform: Platform, args: &ClientArgs) -> anyhow::Result<OAuthClient> {
    let (id_env, secret_env, id_what) = match platform {
        Platform::YouTube => (
            "STORYREEL_YOUTUBE_CLIENT_ID",
            "STORYREEL_YOUTUBE_CLIENT_SECRET",
            "Google OAuth client id (a \"Desktop app\" client from the Google Cloud console)",
        ),
        Platform::TikTok => (
            "STORYREEL_TIKTOK_CLIENT_KEY",
            "STORYREEL_TIKTOK_CLIENT_SECRET",
            "TikTok client key (an app with Login Kit for Desktop, redirect URI http://127.0.0.1:*/ \
             registered, and the Content Posting API)",
        ),
    };
    let pick = |flag: &Option<String>, env: &str| {
        flag.clone()
            .or_else(|| std::env::var(env).ok())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let Some(client_id) = pick(&args.client_id, id_env) else {
        bail!("no {id_what}: pass --client-id or set {id_env}");
    };
    let Some(secret) = pick(&args.client_secret, secret_env) else {
        bail!("no client secret for {platform}: pass --client-secret or set {secret_env}");
    };
    Ok(OAuthClient {
        platform,
        client_id,
        client_secret: Secret::new(secret),
    })
}

fn http() -> anyhow::Result<reqwest::Client> {
    oauth::http_client().context("set up the HTTP client")
}

fn reconnect_hint(platform: Platform, name: &str, ssm: bool) -> String {
    format!(
        "storyreel accounts connect {platform} --name {name}{}",
        if ssm { " --ssm" } else { "" }
    )
}

/// Proves the refresh token works (and takes TikTok's rotated one), then stores the account.
async fn verify_and_store(
    store: &dyn TokenStore,
    http: &reqwest::Client,
    endpoints: &Endpoints,
    mut account: Account,
) -> anyhow::Result<()> {
    let (platform, name) = (account.platform, account.name.clone());
    oauth::refresh_account(http, endpoints, &mut account)
        .await
        .with_context(|| format!("check the {platform}:{name} refresh token"))?;
    store
        .put(&account)
        .await
        .with_context(|| format!("store {platform}:{name}"))?;
    println!("connected {platform}:{name}");
    Ok(())
}

async fn connect(a: ConnectArgs) -> anyhow::Result<()> {
    check_name(&a.name)?;
    let client = oauth_client(a.platform, &a.client)?;
    let store = store(&a.store).await?;
    let endpoints = Endpoints::from_env();
    let http = http()?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("listen on a loopback port for the browser's redirect")?;
    let port = listener.local_addr()?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/");
    let pkce = Pkce::new(a.platform);
    let state = oauth::random_state();
    let url = oauth::authorize_url(&endpoints, &client, &redirect_uri, &state, &pkce);
    eprintln!("Open this URL to allow storyreel to upload: {url}");
    if !a.no_browser {
        open_browser(&url);
    }
    eprintln!(
        "Waiting for {} to send you back to {redirect_uri} ...",
        a.platform.display_name()
    );
    let code = tokio::time::timeout(CONSENT_TIMEOUT, wait_for_redirect(&listener, &state))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "no answer from the browser within {} minutes: run the command again and open \
                 the new URL",
                CONSENT_TIMEOUT.as_secs() / 60
            )
        })??;
    drop(listener);
    let tokens = oauth::exchange_code(
        &http,
        &endpoints,
        &client,
        code.expose(),
        &redirect_uri,
        &pkce,
    )
    .await
    .context("exchange the authorization code")?;
    let Some(refresh_token) = tokens.refresh_token else {
        bail!(
            "{} granted no refresh token, so storyreel could not upload later without you: \
             remove storyreel's access in your account settings and connect again",
            a.platform.display_name()
        );
    };
    let account = Account {
        platform: a.platform,
        name: a.name,
        client_id: client.client_id,
        client_secret: client.client_secret,
        refresh_token,
        scope: tokens.scope,
        open_id: tokens.open_id,
        connected_at: storyreel::jobs::unix_now(),
    };
    verify_and_store(store.as_ref(), &http, &endpoints, account).await
}

/// Starts the desktop's browser on `url`, quietly; the URL is printed either way.
fn open_browser(url: &str) {
    let spawned = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = spawned {
        // Reap it in the background; whether it worked shows in the browser.
        std::thread::spawn(move || child.wait());
    }
}

/// What one connection to the listener brought.
enum Arrival {
    Code(Secret),
    Denied(String),
}

/// Accepts connections until one is the platform's redirect with our `state`. Each connection
/// is read on its own task, so a browser's idle pre-connection cannot hold up the real one.
async fn wait_for_redirect(listener: &TcpListener, state: &str) -> anyhow::Result<Secret> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Arrival>(4);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted.context("accept the browser's connection")?;
                let (tx, state) = (tx.clone(), state.to_string());
                tokio::spawn(async move {
                    if let Ok(Some(arrival)) =
                        tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &state)).await
                    {
                        let _ = tx.send(arrival).await;
                    }
                });
            }
            Some(arrival) = rx.recv() => {
                return match arrival {
                    Arrival::Code(code) => Ok(code),
                    Arrival::Denied(why) => Err(anyhow::anyhow!(why)),
                };
            }
        }
    }
}

/// Reads one request, answers the browser, and says what arrived (None: not the redirect).
async fn answer(mut stream: TcpStream, state: &str) -> Option<Arrival> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let redirect = if method == "GET" {
        oauth::parse_redirect(target, "/", state)
    } else {
        Redirect::Other
    };
    let (status, title, text, arrival) = match redirect {
        Redirect::Code(code) => (
            "200 OK",
            "storyreel is connected",
            "storyreel has the authorization. You can close this tab and return to the terminal.",
            Some(Arrival::Code(code)),
        ),
        Redirect::Error { error, description } => {
            let why = if error == "access_denied" {
                "access was declined in the browser (access_denied): nothing was stored; run \
                 the command again and allow access to connect the account"
                    .to_string()
            } else {
                format!(
                    "the platform answered {error}{}: nothing was stored",
                    description.map(|d| format!(" ({d})")).unwrap_or_default()
                )
            };
            (
                "200 OK",
                "storyreel was not connected",
                "Access was not granted, so storyreel cannot upload. See the terminal for what to do.",
                Some(Arrival::Denied(why)),
            )
        }
        Redirect::WrongState => (
            "400 Bad Request",
            "Unexpected request",
            "This answer does not belong to the storyreel command that is waiting (its state does not match). Open the URL the terminal printed.",
            None,
        ),
        Redirect::Other => ("404 Not Found", "Not found", "Nothing here.", None),
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>{title}</h1><p>{text}</p></body></html>"
    );
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    arrival
}

async fn add(a: AddArgs) -> anyhow::Result<()> {
    check_name(&a.name)?;
    let client = oauth_client(a.platform, &a.client)?;
    let store = store(&a.store).await?;
    let mut token = String::new();
    std::io::stdin()
        .take(MAX_TOKEN)
        .read_to_string(&mut token)
        .context("read the refresh token from stdin")?;
    let token = token.trim();
    if token.is_empty() {
        bail!(
            "no refresh token on stdin (pipe it in, e.g. `storyreel accounts add ... < token.txt`)"
        );
    }
    let account = Account {
        platform: a.platform,
        name: a.name,
        client_id: client.client_id,
        client_secret: client.client_secret,
        refresh_token: Secret::new(token),
        scope: String::new(),
        open_id: None,
        connected_at: storyreel::jobs::unix_now(),
    };
    verify_and_store(store.as_ref(), &http()?, &Endpoints::from_env(), account).await
}

async fn list(a: ListArgs) -> anyhow::Result<()> {
    let store = store(&a.store).await?;
    let accounts = store
        .list()
        .await
        .with_context(|| format!("list the accounts in {}", store.describe()))?;
    if accounts.is_empty() {
        eprintln!(
            "no accounts in {} (connect one with `storyreel accounts connect youtube --name main{}`)",
            store.describe(),
            if a.store.ssm { " --ssm" } else { "" }
        );
        return Ok(());
    }
    let http = http()?;
    let endpoints = Endpoints::from_env();
    let mut rows = vec![[
        "PLATFORM".to_string(),
        "NAME".into(),
        "CONNECTED".into(),
        "TOKEN".into(),
    ]];
    for mut account in accounts {
        let status = if a.no_check {
            "not checked".to_string()
        } else {
            check(store.as_ref(), &http, &endpoints, &mut account, a.store.ssm).await
        };
        rows.push([
            account.platform.to_string(),
            account.name.clone(),
            utc_minute(account.connected_at),
            status,
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}

/// Whether the account's token still refreshes. A rotated TikTok token is stored at once: the
/// old one no longer works.
async fn check(
    store: &dyn TokenStore,
    http: &reqwest::Client,
    endpoints: &Endpoints,
    account: &mut Account,
    ssm: bool,
) -> String {
    match oauth::refresh_account(http, endpoints, account).await {
        Ok(r) if r.rotated => match store.put(account).await {
            Ok(()) => "ok".into(),
            Err(e) => format!("ok, but storing the rotated refresh token failed: {e:#}"),
        },
        Ok(_) => "ok".into(),
        Err(e) if e.kind() == ErrorKind::Reconnect => format!(
            "revoked — reconnect with {}",
            reconnect_hint(account.platform, &account.name, ssm)
        ),
        Err(e) => format!("error: {e}"),
    }
}

/// `2025-01-31 17:04 UTC` (`-` when unknown).
fn utc_minute(secs: u64) -> String {
    if secs == 0 {
        return "-".into();
    }
    let (y, m, d) = storyreel::jobs::utc_date(secs);
    let of_day = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        of_day / 3600,
        of_day % 3600 / 60
    )
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < N {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

async fn rm(a: RmArgs) -> anyhow::Result<()> {
    check_name(&a.name)?;
    let store = store(&a.store).await?;
    if !store.remove(a.platform, &a.name).await? {
        return Err(AccountError::NotConnected {
            platform: a.platform,
            name: a.name,
            store: store.describe(),
        }
        .into());
    }
    println!(
        "removed {}:{} from {}",
        a.platform,
        a.name,
        store.describe()
    );
    eprintln!(
        "storyreel's access stays granted until you remove it in your {} account's settings",
        a.platform.display_name()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_times() {
        let rows = vec![
            ["A".to_string(), "BB".into(), "C".into()],
            ["long".into(), "x".into(), "last one".into()],
        ];
        assert_eq!(table(&rows), "A     BB  C\nlong  x   last one\n");
        assert_eq!(utc_minute(0), "-");
        assert_eq!(utc_minute(1_700_000_000), "2023-11-14 22:13 UTC");
    }
}
