//! `bulwark doctor`: checks a deployment with the settings `serve` would use (the same flags and
//! `BULWARK_*` variables, parsed by the same code) and prints one line per check: `ok`, `warn` or
//! `FAIL`, with what was found and, for warn and FAIL, the variable or command that fixes it. It
//! starts nothing and changes nothing: no data dir, root key, certificate or database is created,
//! no migration runs, no mail is sent. Exit status 1 when a check FAILs.

use std::io::{BufRead as _, Write as _};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{self, Settings, TlsSetting};

/// A certificate expiring sooner than this is a warning.
const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);
/// How long a network check waits.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

/// The lines printed so far, and whether one of them FAILed.
#[derive(Debug, Default)]
struct Report {
    failed: bool,
}

impl Report {
    fn line(&mut self, level: Level, check: &str, text: impl AsRef<str>) {
        let word = match level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => {
                self.failed = true;
                "FAIL"
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{word} {check}: {}", text.as_ref());
        let _ = out.flush();
    }
}

/// A configuration error found while parsing (by clap): the FAIL line, naming the variable.
pub fn parse_failure(err: &clap::Error) {
    use clap::CommandFactory as _;
    use clap::error::{ContextKind, ContextValue};
    let flag = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(flag)) => Some(flag.clone()),
        Some(ContextValue::Strings(flags)) => flags.first().cloned(),
        _ => None,
    };
    let variable = flag.and_then(|flag| {
        let long = flag.trim_start_matches('-').split([' ', '=']).next().unwrap_or_default().to_owned();
        let command = config::Cli::command();
        let doctor = command.find_subcommand("doctor")?;
        let arg = doctor.get_arguments().find(|arg| arg.get_long() == Some(long.as_str()))?;
        arg.get_env().map(|env| env.to_string_lossy().into_owned())
    });
    let rendered = err.render().to_string();
    let message = rendered.lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned();
    let mut report = Report::default();
    match variable {
        Some(variable) => report.line(Level::Fail, "configuration", format!("{variable}: {message}")),
        None => report.line(Level::Fail, "configuration", message),
    }
}

/// Runs every check; `Ok(true)` when none FAILed.
pub async fn run(args: config::ServeArgs) -> bool {
    let mut report = Report::default();
    let settings = match args.resolve_for_doctor() {
        Ok(settings) => settings,
        Err(err) => {
            report.line(Level::Fail, "configuration", format!("{err:#}"));
            return false;
        }
    };
    report.line(
        Level::Ok,
        "configuration",
        format!(
            "parsed as `serve` would (data dir {}, database {})",
            settings.data_dir.display(),
            if is_postgres(&settings.database_url) { "PostgreSQL" } else { "SQLite" }
        ),
    );
    bind_and_tls(&mut report, &settings);
    data_dir(&mut report, &settings.data_dir);
    root_key(&mut report, &settings.root_key_file);
    database(&mut report, &settings.database_url).await;
    smtp(&mut report, &settings).await;
    clock_skew(&mut report, &settings.binance_url).await;
    !report.failed
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn bind_and_tls(report: &mut Report, settings: &Settings) {
    let bind = settings.bind;
    match &settings.tls {
        TlsSetting::Off if bind.ip().is_loopback() => {
            report.line(Level::Ok, "bind", format!("{bind}: loopback, plain HTTP"));
        }
        TlsSetting::Off => match settings.bind_rule() {
            Err(err) => report.line(Level::Fail, "bind", format!("`serve` would refuse to start: {err}")),
            Ok(()) => report.line(
                Level::Warn,
                "bind",
                format!(
                    "{bind}: plain HTTP behind the trusted proxies {}: TLS must be terminated by the proxy \
                     (docs/deployment.md), or set BULWARK_TLS_CERT and BULWARK_TLS_KEY",
                    settings.server.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
                ),
            ),
        },
        TlsSetting::Files(files) => {
            report.line(Level::Ok, "bind", format!("{bind}: HTTPS"));
            certificate(report, files, "BULWARK_TLS_CERT and BULWARK_TLS_KEY");
        }
        TlsSetting::Auto => {
            report.line(Level::Ok, "bind", format!("{bind}: HTTPS (BULWARK_TLS=auto)"));
            let files = server::TlsFiles {
                cert: settings.data_dir.join("tls-cert.pem"),
                key: settings.data_dir.join("tls-key.pem"),
            };
            if files.cert.exists() && files.key.exists() {
                certificate(report, &files, "delete both files to make a new self-signed pair");
            } else {
                report.line(
                    Level::Ok,
                    "tls",
                    format!(
                        "BULWARK_TLS=auto: no {} yet: `serve` generates a self-signed certificate on its first start",
                        files.cert.display()
                    ),
                );
            }
        }
    }
}

/// The certificate chain and key load as `serve` loads them, and the leaf's expiry.
fn certificate(report: &mut Report, files: &server::TlsFiles, fix: &str) {
    let (cert, key) = (files.cert.display(), files.key.display());
    if let Err(err) = server::edge::Tls::load(files) {
        report.line(Level::Fail, "tls", format!("{cert} with {key} does not load: {err}: fix {fix}"));
        return;
    }
    let not_after = server::edge::leaf_certificate(&files.cert)
        .map_err(|err| err.to_string())
        .and_then(|der| not_after_unix(&der).ok_or_else(|| "cannot read its expiry".to_owned()));
    let now = unix_now();
    match not_after {
        Err(err) => report.line(Level::Warn, "tls", format!("{cert} loads, but {err}")),
        Ok(expiry) if expiry <= now => {
            report.line(Level::Fail, "tls", format!("{cert} expired {}: renew it ({fix})", date(expiry)));
        }
        Ok(expiry) if expiry - now < i64::try_from(EXPIRY_WARNING.as_secs()).unwrap_or(i64::MAX) => {
            report.line(Level::Warn, "tls", format!("{cert} expires {}: renew it soon ({fix})", date(expiry)));
        }
        Ok(expiry) => report.line(Level::Ok, "tls", format!("{cert} and {key} load; valid until {}", date(expiry))),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn date(unix: i64) -> String {
    domain::Timestamp::from_unix_millis(unix.saturating_mul(1000)).to_rfc3339()
}

/// The `notAfter` of a DER X.509 certificate, in seconds since 1970.
fn not_after_unix(der: &[u8]) -> Option<i64> {
    /// One DER element: (tag, content, rest).
    fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let length = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let (bytes, after) = rest.split_at(count);
            rest = after;
            bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b))
        };
        if rest.len() < length {
            return None;
        }
        let (content, rest) = rest.split_at(length);
        Some((tag, content, rest))
    }
    let (_, certificate, _) = element(der)?;
    let (_, mut tbs, _) = element(certificate)?;
    // [0] version (optional), serial, signature algorithm, issuer, then validity.
    let (tag, _, rest) = element(tbs)?;
    if tag == 0xa0 {
        tbs = rest;
        tbs = element(tbs)?.2;
    } else {
        tbs = rest;
    }
    tbs = element(tbs)?.2;
    tbs = element(tbs)?.2;
    let (_, validity, _) = element(tbs)?;
    let (_, _, rest) = element(validity)?;
    let (tag, time, _) = element(rest)?;
    let text = std::str::from_utf8(time).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let year: i64 = text.get(..2)?.parse().ok()?;
            (if year < 50 { 2000 + year } else { 1900 + year }, text.get(2..)?)
        }
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let field = |at: usize| -> Option<i64> { rest.get(at..at + 2)?.parse().ok() };
    let (month, day, hour, minute, second) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

#[cfg(unix)]
fn mode_of(metadata: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    metadata.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode_of(_: &std::fs::Metadata) -> u32 {
    0o700
}

/// Whether the file is owned by the user running this.
fn owned_by_me(metadata: &std::fs::Metadata) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt as _;
        metadata.uid() == rustix::process::geteuid().as_raw()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = metadata;
        true
    }
}

fn data_dir(report: &mut Report, dir: &Path) {
    let shown = dir.display();
    let metadata = match std::fs::metadata(dir) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            report.line(
                Level::Warn,
                "data dir",
                format!("{shown} does not exist: `bulwark serve` creates it (mode 0700) on its first start"),
            );
            return;
        }
        Err(err) => {
            report.line(Level::Fail, "data dir", format!("{shown}: {err}: fix BULWARK_DATA_DIR or its permissions"));
            return;
        }
    };
    if !metadata.is_dir() {
        report.line(Level::Fail, "data dir", format!("{shown} is not a directory: fix BULWARK_DATA_DIR"));
        return;
    }
    let mode = mode_of(&metadata);
    if mode & 0o022 != 0 {
        report.line(
            Level::Fail,
            "data dir",
            format!("{shown} has mode {mode:04o}: others can write into it: chmod 700 {shown}"),
        );
    } else if !owned_by_me(&metadata) {
        report.line(
            Level::Warn,
            "data dir",
            format!("{shown} is owned by another user than this one: run as its owner, or chown it"),
        );
    } else if mode & 0o077 != 0 {
        report.line(Level::Warn, "data dir", format!("{shown} has mode {mode:04o}: chmod 700 {shown}"));
    } else {
        report.line(Level::Ok, "data dir", format!("{shown} (mode {mode:04o}, owned by this user)"));
    }
}

fn root_key(report: &mut Report, path: &Path) {
    let shown = path.display();
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            report.line(
                Level::Warn,
                "root key",
                format!(
                    "no root key file at {shown}: `bulwark serve` creates it on the first start of a database; \
                     if the database already has a key ring the node starts SEALED until the file is restored \
                     (BULWARK_ROOT_KEY_FILE)"
                ),
            );
            return;
        }
        Err(err) => {
            report.line(Level::Fail, "root key", format!("{shown}: {err}: fix BULWARK_ROOT_KEY_FILE"));
            return;
        }
    };
    let mode = mode_of(&metadata);
    if mode & 0o077 != 0 {
        report.line(
            Level::Fail,
            "root key",
            format!("{shown} has mode {mode:04o}: group or others can reach it: chmod 600 {shown}"),
        );
        return;
    }
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = zeroize::Zeroizing::new(text);
            if let Err(err) = vault::RootKey::from_file_text(&text) {
                report.line(
                    Level::Fail,
                    "root key",
                    format!(
                        "{shown} does not hold a root key: {err}: restore it from the backup (BULWARK_ROOT_KEY_FILE)"
                    ),
                );
                return;
            }
        }
        Err(err) => {
            report.line(Level::Fail, "root key", format!("{shown} cannot be read: {err}: run as its owner"));
            return;
        }
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match std::fs::metadata(parent) {
        Ok(dir) if mode_of(&dir) & 0o005 != 0 => report.line(
            Level::Warn,
            "root key",
            format!(
                "{shown} (mode {mode:04o}) lies in {}, which everyone can list: chmod o-rwx {}",
                parent.display(),
                parent.display()
            ),
        ),
        _ => report.line(Level::Ok, "root key", format!("{shown} (mode {mode:04o})")),
    }
}

async fn database(report: &mut Report, url: &str) {
    if is_postgres(url) {
        let probe = tokio::time::timeout(Duration::from_secs(10), store_postgres::PgStore::probe(url)).await;
        match probe {
            Ok(Ok(version)) => report.line(Level::Ok, "database", format!("PostgreSQL {version} answers")),
            Ok(Err(err)) => {
                report.line(Level::Fail, "database", format!("{err}: fix BULWARK_DATABASE_URL or the server"))
            }
            Err(_) => report.line(
                Level::Fail,
                "database",
                "PostgreSQL did not answer within 10 s: fix BULWARK_DATABASE_URL or the server",
            ),
        }
        return;
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        report.line(Level::Fail, "database", "BULWARK_DATABASE_URL must start with sqlite: or postgres://");
        return;
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let file = rest.split('?').next().unwrap_or_default();
    if file.is_empty() || file == ":memory:" {
        report.line(Level::Ok, "database", "SQLite in memory");
        return;
    }
    let path = Path::new(file);
    let mut problems = Vec::new();
    let mut found = false;
    for suffix in ["", "-wal", "-shm"] {
        let candidate = format!("{file}{suffix}");
        if let Ok(metadata) = std::fs::metadata(&candidate) {
            found |= suffix.is_empty();
            let mode = mode_of(&metadata);
            if mode & 0o044 != 0 {
                problems.push((candidate, mode));
            }
        }
    }
    // `serve` (SQLite) creates these files with the umask's mode; the data dir's 0700 is then what
    // keeps others out. Readable files in a directory others can enter are a FAIL.
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let shut = std::fs::metadata(parent).is_ok_and(|dir| mode_of(&dir) & 0o011 == 0);
    let problems = if problems.is_empty() {
        String::new()
    } else {
        let files: Vec<String> = problems.iter().map(|(file, mode)| format!("{file} (mode {mode:04o})")).collect();
        let names: Vec<&str> = problems.iter().map(|(file, _)| file.as_str()).collect();
        format!("{}: chmod 600 {}", files.join(", "), names.join(" "))
    };
    if !problems.is_empty() && !shut {
        report.line(Level::Fail, "database", format!("group or others can read it: {problems}"));
    } else if !problems.is_empty() {
        report.line(
            Level::Warn,
            "database",
            format!("only the mode of {} keeps others out: {}", parent.display(), problems),
        );
    } else if found {
        report.line(Level::Ok, "database", format!("SQLite {} (readable by its owner only)", path.display()));
    } else {
        report.line(
            Level::Ok,
            "database",
            format!("SQLite {} does not exist yet: `bulwark serve` creates it on its first start", path.display()),
        );
    }
}

async fn smtp(report: &mut Report, settings: &Settings) {
    let Some(raw) = &settings.smtp_url else {
        report.line(
            Level::Warn,
            "smtp",
            format!(
                "BULWARK_SMTP_URL is unset: every mail is written to {} instead of being sent; set BULWARK_SMTP_URL",
                settings.data_dir.join("outbox").display()
            ),
        );
        return;
    };
    if let Err(err) = mail::SmtpMailer::new(raw, &settings.server.mail_from) {
        report.line(Level::Fail, "smtp", format!("{err}: fix BULWARK_SMTP_URL or BULWARK_MAIL_FROM"));
        return;
    }
    let Ok(url) = url::Url::parse(raw) else { return };
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
    let implicit_tls = url.scheme() == "smtps";
    let port = url.port().unwrap_or(if implicit_tls { 465 } else { 25 });
    let target = format!("{host}:{port}");
    let connect = tokio::time::timeout(NETWORK_TIMEOUT, tokio::net::TcpStream::connect((host.as_str(), port))).await;
    let stream = match connect {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => {
            report.line(
                Level::Fail,
                "smtp",
                format!("{target} is unreachable: {err}: fix BULWARK_SMTP_URL or start the mail server"),
            );
            return;
        }
        Err(_) => {
            report.line(
                Level::Fail,
                "smtp",
                format!("{target} did not accept a connection within 5 s: fix BULWARK_SMTP_URL"),
            );
            return;
        }
    };
    if implicit_tls {
        report.line(
            Level::Ok,
            "smtp",
            format!("{target} accepts connections (smtps: the greeting comes after TLS; not checked)"),
        );
        return;
    }
    let greeting = tokio::time::timeout(NETWORK_TIMEOUT, async move {
        let std = stream.into_std()?;
        std.set_nonblocking(false)?;
        std.set_read_timeout(Some(NETWORK_TIMEOUT))?;
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(std).read_line(&mut line).map(|_| line)
        })
        .await
        .map_err(std::io::Error::other)?
    })
    .await;
    match greeting {
        Ok(Ok(line)) if line.starts_with("220") => {
            report.line(Level::Ok, "smtp", format!("{target} greets: {}", line.trim_end()));
        }
        Ok(Ok(line)) => report.line(
            Level::Fail,
            "smtp",
            format!("{target} does not greet with 220 but {:?}: fix BULWARK_SMTP_URL", line.trim_end()),
        ),
        Ok(Err(err)) => report.line(Level::Fail, "smtp", format!("{target}: no greeting: {err}: fix BULWARK_SMTP_URL")),
        Err(_) => report.line(Level::Fail, "smtp", format!("{target}: no greeting within 5 s: fix BULWARK_SMTP_URL")),
    }
}

async fn clock_skew(report: &mut Report, url: &url::Url) {
    let mut config = exchange_binance::BinanceConfig::new(url.clone());
    config.request_timeout = NETWORK_TIMEOUT;
    let clock: Arc<dyn domain::Clock> = Arc::new(crate::SystemClock);
    let client = match exchange_binance::BinanceClient::new(config, clock) {
        Ok(client) => client,
        Err(err) => {
            report.line(Level::Warn, "clock", format!("cannot ask {url} for its time: {err}"));
            return;
        }
    };
    match tokio::time::timeout(NETWORK_TIMEOUT + Duration::from_secs(1), client.sync_clock()).await {
        Ok(Ok(offset)) if offset.abs() > 10_000 => report.line(
            Level::Fail,
            "clock",
            format!("this clock is {offset} ms off {url}: the venue refuses signed requests; sync it (NTP, timedatectl set-ntp true)"),
        ),
        Ok(Ok(offset)) if offset.abs() > 1_000 => report.line(
            Level::Warn,
            "clock",
            format!("this clock is {offset} ms off {url}: sync it (NTP, timedatectl set-ntp true)"),
        ),
        Ok(Ok(offset)) => report.line(Level::Ok, "clock", format!("within {} ms of {url}", offset.abs())),
        Ok(Err(err)) => {
            report.line(Level::Warn, "clock", format!("{url} did not tell its time ({err}); skew not checked (BULWARK_BINANCE_URL)"));
        }
        Err(_) => report.line(Level::Warn, "clock", format!("{url} did not answer within 5 s; skew not checked (BULWARK_BINANCE_URL)")),
    }
}
