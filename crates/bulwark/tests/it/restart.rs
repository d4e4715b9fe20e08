//! Crash safety of the bot runtime (ARCHITECTURE.md invariant 5): `bulwark serve` is killed with
//! SIGKILL at chosen points of one DCA deal and restarted on the same data dir (database, root
//! key, node id) each time; in the end the venue holds every order of the deal once, no order of
//! the deal is left open and the deal is completed by its take profit.
//!
//! The venue is `bulwark exchange-sim`, a process of its own (it outlives every `serve`), replaying
//! a candle file the test writes, one candle a second. `serve` reaches it as its shared paper
//! market (`BULWARK_PAPER_MARKET`) through a small HTTP proxy in this test, which sees every
//! request `serve` sends to the venue (the user data stream's WebSocket is piped through as it
//! is). The proxy follows a plan: each step waits for one kind of request (a placement of a role,
//! a lookup of the order the step before named, the open-orders check, a cancel of a role) and
//! then kills `serve` at a chosen point of it. So each point is reached in every run whatever the
//! machine's speed (the simulator's random faults could not aim at one request), and a point that
//! is never reached fails the test. The proxy kills by pid with SIGKILL, under the lock that also
//! registers each new `serve` before it can send anything.
//!
//! `a_deal_survives_sigkill_at_every_step_without_a_duplicate_order` kills ten times. The price
//! stays at 30,000 for 30 s (base order and ladder), steps down to 29,690 (the first safety order
//! fills; the second, at 29,400, never does) and jumps to 31,000 at 57 s (the take profit fills):
//!
//! 1. the base order, right after the deal started (its intent is saved): killed *before it is
//!    sent* — the venue never sees it;
//! 2. the restarted node's lookup of it: the venue answers "unknown order", killed before the
//!    answer arrives (the next node starts its first-miss mark over), so the order is declared
//!    `not_placed` only after a full receive window and asked again under a new id;
//! 3. that new base order: *sent and filled* at the venue, killed *before the answer*;
//! 4. the restarted node's lookup of it (reconciliation): answered, killed before the answer;
//! 5. the first safety order of the ladder: sent, killed before the answer — the rest of the batch
//!    (second safety order, take profit) was saved but never sent: `not_placed`, asked again;
//! 6. the take profit: performed by the venue, its answer *lost* (503 -1007), and `serve` killed
//!    while the Binance adapter looks it up by client order id;
//! 7. *after a fill*: the safety order the first fill calls for is held in flight by the proxy
//!    while `serve` is killed, and delivered to the venue 4 s later — inside its receive window,
//!    after the restarted node first looked for it and did not find it: it must be adopted, never
//!    declared `not_placed` nor sent again;
//! 8. the take profit's cancel after that fill (not sent before kill 7, asked again by the
//!    engine's timer 10 s later): *performed*, killed before the answer;
//! 9. the restarted node's open-orders check: answered, killed before the answer;
//! 10. the replacement take profit: killed *before it is sent* (`not_placed`, asked again).
//!
//! The market goes on while `serve` is down. The test then waits for the deal to be completed with
//! no order open or pending, stops the simulator (SIGTERM: it writes its state file) and compares
//! the file's orders with the deal's: no client order id twice at the venue, every order the deal
//! sent there exactly once and in the state the deal recorded, none of the orders the deal
//! declared `not_placed` there at all, nothing of the deal open.
//!
//! `a_kill_while_a_completed_deal_cancels_its_safety_orders_leaves_none_open` kills once *after
//! the take profit filled*, before the first cancel of a safety order left on the book is sent.
//! The deal is saved `completed` before its cancels go out; a restarted node must load it again
//! (`Store::open_deals` counts a finished deal with a live order) and cancel those orders, or they
//! would stay open at the venue holding the account's funds. (This test found that bug.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::{Running, exchange_sim, spawn_reading_stdout};

const ORDER: &str = "/api/v3/order";
/// How long the proxy holds the safety order of kill point 7 before delivering it: within the
/// venue's receive window (5 s), and longer than a restart, so the restarted node looks first.
const HOLD: Duration = Duration::from_secs(4);
/// A whole run, from the simulator's start.
const DEADLINE: Duration = Duration::from_secs(110);

/// What an order is for, as the proxy tells from the placement (a long deal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// BUY MARKET.
    Base,
    /// BUY LIMIT.
    Safety,
    /// SELL LIMIT.
    TakeProfit,
}

/// Which request a step waits for.
#[derive(Debug, Clone, Copy)]
enum On {
    Place(Role),
    /// `GET /api/v3/order` naming the order of the step before.
    Lookup,
    /// `GET /api/v3/openOrders`.
    OpenOrders,
    Cancel(Role),
}

/// What the proxy does with it.
#[derive(Debug, Clone, Copy)]
enum Act {
    KillBeforeSending,
    /// The venue performs it; `serve` is killed before the answer reaches it.
    KillBeforeAnswer,
    /// The venue performs it; `serve` gets 503 -1007 instead of the answer (and lives).
    LoseAnswer,
    /// `serve` is killed; the venue gets the request `HOLD` later.
    HoldAcrossKill,
    /// Nothing: the step only counts the request, so a later step can name a later one like it.
    Pass,
    /// `serve` gets SIGTERM while the request is held; once it has stopped accepting connections
    /// (it is shutting down) the venue performs the request and `serve` gets the answer.
    TerminateWhileSending,
}

struct Step {
    name: &'static str,
    on: On,
    act: Act,
}

const fn step(name: &'static str, on: On, act: Act) -> Step {
    Step { name, on, act }
}

/// The kill points of the module's documentation, in order.
const EVERY_STEP: &[Step] = &[
    step("1 base order, before it is sent", On::Place(Role::Base), Act::KillBeforeSending),
    step("2 lookup of the unsent base order, before the answer", On::Lookup, Act::KillBeforeAnswer),
    step("3 new base order, sent and filled, before the answer", On::Place(Role::Base), Act::KillBeforeAnswer),
    step("4 lookup of the new base order, before the answer", On::Lookup, Act::KillBeforeAnswer),
    step("5 first safety order, sent, before the answer", On::Place(Role::Safety), Act::KillBeforeAnswer),
    step("6a take profit, performed, answer lost", On::Place(Role::TakeProfit), Act::LoseAnswer),
    step("6 the adapter's lookup of the lost take profit, before it is sent", On::Lookup, Act::KillBeforeSending),
    step("7 safety order after a fill, in flight across the kill", On::Place(Role::Safety), Act::HoldAcrossKill),
    step(
        "8 take-profit cancel after the fill, performed, before the answer",
        On::Cancel(Role::TakeProfit),
        Act::KillBeforeAnswer,
    ),
    step("9 open-orders check after the restart, before the answer", On::OpenOrders, Act::KillBeforeAnswer),
    step("10 replacement take profit, before it is sent", On::Place(Role::TakeProfit), Act::KillBeforeSending),
];

/// The kill after the take profit filled.
const AFTER_TAKE_PROFIT: &[Step] = &[step(
    "safety-order cancel after the take profit filled, before it is sent",
    On::Cancel(Role::Safety),
    Act::KillBeforeSending,
)];

/// What the proxy and the test thread share.
#[derive(Default)]
struct Shared {
    /// The running `serve`'s pid; `None` once killed, until the next one is registered.
    pid: Option<u32>,
    /// A kill step matched and its kill has not happened yet: no later step may match.
    doomed: bool,
    next: usize,
    /// The client order id the last matched step named.
    last_id: Option<String>,
    roles: BTreeMap<String, Role>,
    /// The step name and when it fired.
    fired: Vec<(&'static str, Duration)>,
    /// The order held across kill 7, and whether a lookup missed it before it was delivered.
    held: Option<String>,
    held_delivered: bool,
    held_missed_first: bool,
    /// The running `serve`'s address (`host:port`), to see when it stops accepting connections.
    serve_addr: Option<String>,
    /// The order on its way to the venue when `serve` got SIGTERM, and whether a later `serve`
    /// looked it up (it would only if its answer had not been saved).
    terminated: Option<String>,
    looked_up_terminated: bool,
    /// A SIGTERM was sent: the next exit of `serve` must be a clean one.
    expect_clean_exit: bool,
    notes: Vec<String>,
}

struct Proxy {
    plan: &'static [Step],
    upstream: String,
    upstream_addr: String,
    http: reqwest::Client,
    shared: Arc<Mutex<Shared>>,
    kills: mpsc::Sender<&'static str>,
    started: Instant,
}

/// One request as `serve` sent it.
struct Req {
    method: String,
    target: String,
    path: String,
    params: BTreeMap<String, String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    fn role(&self) -> Option<Role> {
        match (self.param("side")?, self.param("type")?) {
            ("BUY", "MARKET") => Some(Role::Base),
            ("BUY", "LIMIT") => Some(Role::Safety),
            ("SELL", "LIMIT") => Some(Role::TakeProfit),
            _ => None,
        }
    }
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn encode(&self) -> Vec<u8> {
        let reason = reqwest::StatusCode::from_u16(self.status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
        let mut head = format!("HTTP/1.1 {} {reason}\r\n", self.status);
        for (name, value) in &self.headers {
            if !hop_by_hop(name) {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", self.body.len()));
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn hop_by_hop(name: &str) -> bool {
    ["host", "content-length", "connection", "transfer-encoding", "keep-alive", "accept-encoding"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

enum Action {
    Forward,
    Kill(&'static str, Act),
    LoseAnswer,
}

impl Proxy {
    /// Books the request, and matches it against the plan's next step.
    fn decide(&self, req: &Req) -> Action {
        let mut shared = self.shared.lock().unwrap();
        if req.method == "POST"
            && req.path == ORDER
            && let (Some(id), Some(role)) = (req.param("newClientOrderId"), req.role())
        {
            shared.roles.insert(id.to_owned(), role);
        }
        if req.method == "GET"
            && req.path == ORDER
            && shared.terminated.is_some()
            && req.param("origClientOrderId") == shared.terminated.as_deref()
        {
            shared.looked_up_terminated = true;
        }
        if shared.pid.is_none() || shared.doomed {
            return Action::Forward;
        }
        let Some(step) = self.plan.get(shared.next) else { return Action::Forward };
        let named = req.param("origClientOrderId").or(req.param("newClientOrderId")).map(str::to_owned);
        let matched = match step.on {
            On::Place(role) => req.method == "POST" && req.path == ORDER && req.role() == Some(role),
            On::Lookup => req.method == "GET" && req.path == ORDER && named.is_some() && named == shared.last_id,
            On::OpenOrders => req.method == "GET" && req.path == "/api/v3/openOrders",
            On::Cancel(role) => {
                req.method == "DELETE"
                    && req.path == ORDER
                    && named.as_ref().and_then(|id| shared.roles.get(id)) == Some(&role)
            }
        };
        if !matched {
            return Action::Forward;
        }
        shared.next += 1;
        if named.is_some() {
            shared.last_id = named;
        }
        let at = self.started.elapsed();
        shared.fired.push((step.name, at));
        match step.act {
            Act::LoseAnswer => Action::LoseAnswer,
            Act::Pass => Action::Forward,
            act => {
                shared.doomed = true;
                if matches!(act, Act::HoldAcrossKill) {
                    shared.held = shared.last_id.clone();
                }
                Action::Kill(step.name, act)
            }
        }
    }

    /// SIGKILL to the registered `serve`, and word to the test thread.
    fn kill(&self, point: &'static str) {
        let mut shared = self.shared.lock().unwrap();
        shared.doomed = false;
        let pid = shared.pid.take().expect("a kill step matched only while serve is registered");
        let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("SIGKILL");
        self.kills.send(point).unwrap();
    }

    /// SIGTERM to the registered `serve` (a graceful shutdown); returns its address.
    fn terminate(&self) -> Option<String> {
        let mut shared = self.shared.lock().unwrap();
        shared.doomed = false;
        shared.expect_clean_exit = true;
        shared.terminated = shared.last_id.clone();
        let pid = shared.pid.take().expect("a terminate step matched only while serve is registered");
        let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        shared.serve_addr.clone()
    }

    async fn forward(&self, req: &Req) -> Answer {
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{}", self.upstream, req.target));
        for (name, value) in &req.headers {
            if !hop_by_hop(name) {
                request = request.header(name, value);
            }
        }
        let answer = match request.body(req.body.clone()).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                    .collect();
                let body = response.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
                Answer { status, headers, body }
            }
            Err(err) => Answer { status: 502, headers: Vec::new(), body: err.to_string().into_bytes() },
        };
        self.observe(req, &answer);
        answer
    }

    /// Notes whether the restarted node looked for the held order before the venue had it.
    fn observe(&self, req: &Req, answer: &Answer) {
        let mut shared = self.shared.lock().unwrap();
        if req.method == "GET"
            && req.path == ORDER
            && shared.held.is_some()
            && req.param("origClientOrderId") == shared.held.as_deref()
            && !shared.held_delivered
            && answer.status == 400
            && String::from_utf8_lossy(&answer.body).contains("-2013")
        {
            shared.held_missed_first = true;
        }
    }

    /// Answers one request (`None`: the connection is dropped unanswered).
    async fn handle(self: &Arc<Self>, req: Req) -> Option<Vec<u8>> {
        match self.decide(&req) {
            Action::Forward => Some(self.forward(&req).await.encode()),
            Action::LoseAnswer => {
                let _ = self.forward(&req).await;
                let body = br#"{"code":-1007,"msg":"Timeout waiting for response from backend server. Send status unknown; execution status unknown."}"#;
                let headers = vec![("content-type".to_owned(), "application/json;charset=UTF-8".to_owned())];
                Some(Answer { status: 503, headers, body: body.to_vec() }.encode())
            }
            Action::Kill(point, Act::KillBeforeSending) => {
                self.kill(point);
                None
            }
            Action::Kill(point, Act::HoldAcrossKill) => {
                self.kill(point);
                let proxy = Arc::clone(self);
                tokio::spawn(async move {
                    tokio::time::sleep(HOLD).await;
                    proxy.shared.lock().unwrap().held_delivered = true;
                    let answer = proxy.forward(&req).await;
                    let note = format!(
                        "{:?}: the held order reached the venue: {} {}",
                        proxy.started.elapsed(),
                        answer.status,
                        String::from_utf8_lossy(&answer.body)
                    );
                    proxy.shared.lock().unwrap().notes.push(note);
                });
                None
            }
            Action::Kill(point, Act::TerminateWhileSending) => {
                let addr = self.terminate();
                // Held until `serve` no longer accepts connections: it is shutting down.
                let deadline = Instant::now() + Duration::from_secs(10);
                while let Some(addr) = &addr
                    && TcpStream::connect(addr).await.is_ok()
                {
                    if Instant::now() > deadline {
                        self.shared.lock().unwrap().notes.push("serve accepted connections 10 s after SIGTERM".into());
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let answer = self.forward(&req).await;
                self.kills.send(point).unwrap();
                Some(answer.encode())
            }
            Action::Kill(point, _) => {
                let _ = self.forward(&req).await;
                self.kill(point);
                None
            }
        }
    }

    async fn connection(self: Arc<Self>, mut conn: TcpStream) {
        let mut buf = Vec::new();
        loop {
            let head_end = loop {
                if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at + 4;
                }
                if !read_more(&mut conn, &mut buf).await {
                    return;
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let mut lines = head.split("\r\n");
            let mut request_line = lines.next().unwrap_or_default().split(' ');
            let method = request_line.next().unwrap_or_default().to_owned();
            let target = request_line.next().unwrap_or_default().to_owned();
            let headers: Vec<(String, String)> = lines
                .filter_map(|line| line.split_once(':'))
                .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
                .collect();
            let header = |wanted: &str| headers.iter().find(|(name, _)| name.eq_ignore_ascii_case(wanted));
            let length: usize = header("content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
            while buf.len() < head_end + length {
                if !read_more(&mut conn, &mut buf).await {
                    return;
                }
            }
            if header("upgrade").is_some() {
                // The user data stream's WebSocket: piped as it is.
                let Ok(mut upstream) = TcpStream::connect(&self.upstream_addr).await else { return };
                if upstream.write_all(&buf).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
                }
                return;
            }
            let body = buf[head_end..head_end + length].to_vec();
            buf.drain(..head_end + length);
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            let mut params: BTreeMap<String, String> =
                url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            params.extend(url::form_urlencoded::parse(&body).into_owned());
            let req = Req { method, path: path.to_owned(), target: target.clone(), params, headers, body };
            match self.handle(req).await {
                Some(bytes) => {
                    if conn.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                None => return,
            }
        }
    }
}

async fn read_more(conn: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match conn.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// A candle file, one candle a second, moving from level to level.
fn candles(levels: &[i64]) -> String {
    let mut out = String::new();
    let mut previous = levels[0];
    for (i, &level) in levels.iter().enumerate() {
        let open_time = 1_700_000_040_000_i64 + 60_000 * i64::try_from(i).unwrap();
        let (high, low) = (previous.max(level), previous.min(level));
        out.push_str(&format!("{open_time},{previous},{high},{low},{level},10\n"));
        previous = level;
    }
    out
}

/// `bulwark serve` on `data`, with the proxy as its paper market; registered with the proxy as
/// soon as it is spawned, before it can send anything.
fn start_serve(data: &Path, market: &str, shared: &Mutex<Shared>, generation: usize) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bulwark"));
    command
        .arg("serve")
        .env_clear()
        .env("BULWARK_DATA_DIR", data)
        .env("BULWARK_BIND", "127.0.0.1:0")
        .env("BULWARK_LOG", "info,server=debug")
        .env("BULWARK_PAPER_MARKET", market)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (mut child, lines) = spawn_reading_stdout(&mut command);
    shared.lock().unwrap().pid = Some(child.id());
    loop {
        match lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                if let Some(addr) = line.split("address=").nth(1) {
                    let addr = addr.split_whitespace().next().unwrap();
                    return Running { child, base: format!("http://{addr}"), lines };
                }
            }
            Err(_) => {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
                }
                panic!("serve #{generation} did not start: {err}");
            }
        }
    }
}

/// A request to `serve` that may meet a dead process: `None` then.
fn call(
    runtime: &tokio::runtime::Runtime,
    base: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    cookie: &str,
) -> Option<(u16, Value)> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request =
        client.request(method, format!("{base}{path}")).header("cookie", format!("__Host-bulwark_session={cookie}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    runtime.block_on(async move {
        let response = request.send().await.ok()?;
        let status = response.status().as_u16();
        let text = response.text().await.ok()?;
        Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    })
}

fn dec(value: &Value) -> Decimal {
    value.as_str().unwrap_or_else(|| panic!("a decimal string, got {value}")).parse().expect("a decimal")
}

/// Sends SIGTERM and waits for the exit (the simulator writes its state file on the way out).
fn terminate(running: &mut Running) {
    let pid = rustix::process::Pid::from_child(&running.child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(30);
    while running.child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "exchange-sim did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a run ends with: the deal as `GET /api/v1/deals` shows it, the venue's orders by client
/// order id (from the simulator's state file), and what the proxy saw.
struct Outcome {
    deal: Value,
    venue: BTreeMap<String, Vec<Value>>,
    held: Option<String>,
    held_missed_first: bool,
    terminated: Option<String>,
    looked_up_terminated: bool,
    summary: String,
}

/// Starts the simulator on `levels` and `serve` behind the proxy following `plan`, opens a paper
/// account and a DCA bot, starts one deal, restarts `serve` after each kill, and waits until the
/// deal is completed with every order settled and every step fired.
fn run(plan: &'static [Step], levels: &[i64]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let candle_file = dir.path().join("btcusdt.csv");
    std::fs::write(&candle_file, candles(levels)).unwrap();
    let state_file = dir.path().join("sim-state.json");
    let replay = format!("BTCUSDT={}", candle_file.display());
    let (mut sim, sim_url) = exchange_sim(&[
        "--symbols",
        "BTCUSDT",
        "--replay",
        &replay,
        "--speed",
        "1",
        "--volatility",
        "0",
        "--state",
        state_file.to_str().unwrap(),
    ]);
    let started = Instant::now();

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let shared = Arc::new(Mutex::new(Shared::default()));
    let (kills_tx, kills) = mpsc::channel();
    let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let market = format!("http://{}", listener.local_addr().unwrap());
    let proxy = Arc::new(Proxy {
        plan,
        upstream_addr: sim_url.trim_start_matches("http://").to_owned(),
        upstream: sim_url,
        http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
        shared: Arc::clone(&shared),
        kills: kills_tx,
        started,
    });
    let accepting = Arc::clone(&proxy);
    runtime.spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(Arc::clone(&accepting).connection(conn));
        }
    });

    let mut log: Vec<String> = Vec::new();
    let mut generation = 1;
    let mut node = start_serve(&data, &market, &shared, generation);
    shared.lock().unwrap().serve_addr = Some(node.base.trim_start_matches("http://").to_owned());
    // The node id `serve` keeps in its data dir: the same after every restart, so a restarted node
    // takes its own bot leases back at once instead of waiting 30 s for them to expire.
    let node_id = std::fs::read_to_string(data.join("node-id")).expect("serve keeps its node id in the data dir");
    let cookie = node.sign_up(&data, "restart@example.com");
    let (status, account) = call(
        &runtime,
        &node.base,
        "POST",
        "/api/v1/exchange-accounts",
        Some(json!({"exchange": "paper", "name": "Paper", "balances": {"USDT": "10000"}})),
        &cookie,
    )
    .expect("serve answers");
    assert_eq!(status, 201, "{account}");
    let account = account["id"].as_str().unwrap().to_owned();
    // Example A of spec/dca.md at 30,000: BO 100, SO 100, 3 safety orders 1 % apart (two on the
    // book), take profit 1 % of the total; started by hand.
    let bot_body = json!({
        "type": "dca", "name": "Restarts", "exchange_account_id": account, "pairs": ["USDT_BTC"],
        "enabled": true,
        "base_order_volume": "100", "safety_order_volume": "100", "max_safety_orders": 3,
        "active_safety_orders_count": 2, "safety_order_step_percentage": "1",
        "take_profit": "1", "take_profit_type": "total", "strategy": "long",
        "strategy_list": [{"strategy": "manual"}],
    });
    let (status, bot) =
        call(&runtime, &node.base, "POST", "/api/v1/bots", Some(bot_body), &cookie).expect("serve answers");
    assert_eq!(status, 201, "{bot}");
    let bot = bot["id"].as_str().unwrap().to_owned();
    let started_deal =
        call(&runtime, &node.base, "POST", &format!("/api/v1/bots/{bot}/start_new_deal"), Some(json!({})), &cookie);
    if matches!(plan[0].on, On::Place(Role::Base)) {
        assert!(started_deal.is_none(), "serve was killed while placing the base order: {started_deal:?}");
    } else {
        assert_eq!(started_deal.as_ref().map(|(status, _)| *status), Some(200), "{started_deal:?}");
    }

    let report = |log: &[String], what: &str| -> String {
        let shared = shared.lock().unwrap();
        let tail: Vec<&str> = log.iter().filter(|l| !l.contains("path=/api/v1/deals")).map(String::as_str).collect();
        format!(
            "{what}\nkill points fired: {:#?}\nproxy notes: {:#?}\nserve log (last lines):\n{}",
            shared.fired,
            shared.notes,
            tail[tail.len().saturating_sub(150)..].join("\n")
        )
    };
    let deadline = started + DEADLINE;
    let mut completed_at: Option<Instant> = None;
    let deal = loop {
        // A kill from the proxy: reap, keep the log, start again on the same data dir.
        if let Ok(point) = kills.try_recv() {
            let exit = node.child.wait().expect("wait");
            if std::mem::take(&mut shared.lock().unwrap().expect_clean_exit) {
                assert!(exit.success(), "{}", report(&log, &format!("serve #{generation} ended {exit} after SIGTERM")));
            }
            while let Ok(line) = node.lines.recv_timeout(Duration::from_millis(200)) {
                log.push(format!("[serve #{generation}] {line}"));
            }
            log.push(format!("[test] {:?}: killed serve #{generation} at {point}", started.elapsed()));
            generation += 1;
            node = start_serve(&data, &market, &shared, generation);
            shared.lock().unwrap().serve_addr = Some(node.base.trim_start_matches("http://").to_owned());
            continue;
        }
        {
            let guard = shared.lock().unwrap();
            if guard.pid.is_some()
                && let Some(exit) = node.child.try_wait().unwrap()
            {
                drop(guard);
                panic!("{}", report(&log, &format!("serve #{generation} exited by itself: {exit}")));
            }
        }
        while let Ok(line) = node.lines.try_recv() {
            log.push(format!("[serve #{generation}] {line}"));
        }
        assert!(Instant::now() < deadline, "{}", report(&log, "the deal did not end within the deadline"));
        let deals = match call(
            &runtime,
            &node.base,
            "GET",
            &format!("/api/v1/deals?bot_id={bot}&reveal=true"),
            None,
            &cookie,
        ) {
            Some((200, Value::Array(deals))) => deals,
            _ => {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        assert!(deals.len() <= 1, "{}", report(&log, &format!("one deal only: {deals:#?}")));
        let Some(deal) = deals.into_iter().next() else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let status = deal["status"].as_str().unwrap().to_owned();
        assert!(
            !["canceled", "failed", "panic_sold"].contains(&status.as_str()),
            "{}",
            report(&log, &format!("the deal ended {status}: {deal:#}"))
        );
        let unsettled =
            deal["orders"].as_array().unwrap().iter().any(|o| o["state"] == "pending" || o["state"] == "open");
        let plan_done = shared.lock().unwrap().next == plan.len();
        if status == "completed" && !unsettled {
            assert!(plan_done, "{}", report(&log, &format!("the deal ended before every kill point: {deal:#}")));
            break deal;
        }
        if status == "completed" && plan_done {
            // Its last orders are being canceled; a cancel lost to a kill is asked again by the
            // engine's timer within 10 s, so 25 s is plenty.
            let since = *completed_at.get_or_insert_with(Instant::now);
            assert!(
                since.elapsed() < Duration::from_secs(25),
                "{}",
                report(&log, &format!("the completed deal keeps orders open or pending for 25 s: {deal:#}"))
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(std::fs::read_to_string(data.join("node-id")).unwrap(), node_id, "one node id across the restarts");
    let summary = {
        let shared = shared.lock().unwrap();
        format!(
            "{} kills, the deal completed after {:?}; kill points fired: {:#?}; the restarted node missed the held \
             order first: {}; proxy notes: {:#?}",
            generation - 1,
            started.elapsed(),
            shared.fired,
            shared.held_missed_first,
            shared.notes
        )
    };
    drop(node);

    // The venue's side, from the simulator's state file (written on SIGTERM).
    terminate(&mut sim);
    let state: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    let mut venue: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for account in state["accounts"].as_array().unwrap() {
        for order in account["orders"].as_array().unwrap() {
            venue.entry(order["client_order_id"].as_str().unwrap().to_owned()).or_default().push(order.clone());
        }
    }
    let shared = shared.lock().unwrap();
    Outcome {
        deal,
        venue,
        held: shared.held.clone(),
        held_missed_first: shared.held_missed_first,
        terminated: shared.terminated.clone(),
        looked_up_terminated: shared.looked_up_terminated,
        summary,
    }
}

/// No client order id twice at the venue; every order of the deal that was sent is there once, in
/// the state the deal recorded; none declared `not_placed` is there; nothing of the deal is open.
/// Returns how many were `not_placed`.
fn assert_venue_matches_the_deal(outcome: &Outcome) -> usize {
    let Outcome { deal, venue, .. } = outcome;
    for (id, orders) in venue {
        assert_eq!(orders.len(), 1, "client order id {id} reached the venue {} times: {orders:#?}", orders.len());
    }
    let orders = deal["orders"].as_array().unwrap();
    let ours: BTreeSet<&str> = orders.iter().map(|o| o["client_order_id"].as_str().unwrap()).collect();
    let prefix = ours.iter().next().unwrap().rsplit_once('-').unwrap().0;
    for id in venue.keys().filter(|id| id.starts_with(prefix)) {
        assert!(ours.contains(id.as_str()), "the venue holds {id}, which the deal does not know: {deal:#}");
    }
    let mut not_placed = 0;
    for order in orders {
        let id = order["client_order_id"].as_str().unwrap();
        let state = order["state"].as_str().unwrap();
        match (state, venue.get(id).map(|orders| &orders[0])) {
            ("not_placed", None) => not_placed += 1,
            ("filled" | "canceled", Some(found)) => {
                let at_venue = found["status"].as_str().unwrap();
                let expected: &[&str] = if state == "filled" { &["Filled"] } else { &["Canceled", "Expired"] };
                assert!(expected.contains(&at_venue), "{id} is {state} in the deal, {at_venue} at the venue: {deal:#}");
                assert_eq!(
                    dec(&order["executed_quantity"]),
                    dec(&found["executed_qty"]),
                    "{id}: the deal's executed quantity is the venue's"
                );
            }
            (state, found) => panic!("{id} ended {state} in the deal; at the venue: {found:#?}\n{deal:#}"),
        }
    }
    not_placed
}

/// 30,000 for `plateau` s, 29,850 for 3 s, 29,690 for 4 s (the first safety order, at 29,700,
/// fills), 29,550 for `low` s (above the second, at 29,400, so two safety orders are still on the
/// book when the deal closes), then 31,000, above any take profit the deal can have, to the end.
fn path(plateau: usize, low: usize) -> Vec<i64> {
    let mut levels = vec![30_000; plateau];
    levels.extend([29_850; 3]);
    levels.extend([29_690; 4]);
    levels.extend(vec![29_550; low]);
    levels.push(31_000);
    levels
}

#[test]
fn a_deal_survives_sigkill_at_every_step_without_a_duplicate_order() {
    // The first six kill points take about 16 s here (two receive windows of 6 s); the plateau
    // leaves room for a machine twice as slow. The take profit's cancel is asked again 10 s after
    // the first fill, so the jump comes 24 s after it.
    let outcome = run(EVERY_STEP, &path(30, 20));
    eprintln!("{}", outcome.summary);
    let deal = &outcome.deal;
    assert_eq!(deal["close_reason"], "take_profit", "{deal:#}");
    assert!(dec(&deal["profit_quote"]) > Decimal::ZERO, "{deal:#}");
    let not_placed = assert_venue_matches_the_deal(&outcome);
    // Never sent: the first base order (1), the ladder's second safety order and take profit (5),
    // the replacement take profit (10).
    assert_eq!(not_placed, 4, "{deal:#}");
    let orders = deal["orders"].as_array().unwrap();
    let held = outcome.held.as_deref().expect("kill point 7 held an order");
    let adopted = orders.iter().find(|o| o["client_order_id"] == held).expect("the held order is the deal's");
    assert_eq!(
        adopted["state"], "canceled",
        "the held safety order was adopted (and canceled at the close): {adopted:#}"
    );
    assert!(outcome.held_missed_first, "the restarted node looked for the held order before it reached the venue");
    assert_eq!(orders.iter().filter(|o| o["role"] == "safety" && o["state"] == "filled").count(), 1, "{deal:#}");
}

#[test]
fn a_kill_while_a_completed_deal_cancels_its_safety_orders_leaves_none_open() {
    // The base order and the ladder at 30,000, then straight to 31,000: the take profit fills
    // with both safety orders still on the book.
    let mut levels = vec![30_000; 8];
    levels.push(31_000);
    let outcome = run(AFTER_TAKE_PROFIT, &levels);
    eprintln!("{}", outcome.summary);
    assert_eq!(outcome.deal["close_reason"], "take_profit", "{:#}", outcome.deal);
    assert_venue_matches_the_deal(&outcome);
}

/// A graceful shutdown leaves no order half-sent: SIGTERM arrives while the safety order that the
/// first fill calls for is on its way to the venue (after the ladder's two), the venue performs it
/// only once `serve` has stopped accepting connections, and `serve` must wait for that answer,
/// save it and exit cleanly. The restarted node then knows the order: it never looks it up (it
/// would, had the answer been lost with the process), and the deal completes with every order
/// the venue holds recorded as the venue has it.
#[test]
fn sigterm_while_an_order_is_on_its_way_waits_for_its_answer() {
    const PLAN: &[Step] = &[
        step("the ladder's first safety order", On::Place(Role::Safety), Act::Pass),
        step("the ladder's second safety order", On::Place(Role::Safety), Act::Pass),
        step("SIGTERM while the next safety order is sent", On::Place(Role::Safety), Act::TerminateWhileSending),
    ];
    let outcome = run(PLAN, &path(10, 12));
    eprintln!("{}", outcome.summary);
    let deal = &outcome.deal;
    assert_eq!(deal["close_reason"], "take_profit", "{deal:#}");
    let terminated = outcome.terminated.as_deref().expect("SIGTERM was sent while an order was on its way");
    assert!(
        !outcome.looked_up_terminated,
        "the restarted node looked up {terminated}: its answer was not saved before the shutdown\n{}",
        outcome.summary
    );
    let orders = deal["orders"].as_array().unwrap();
    let sent = orders.iter().find(|o| o["client_order_id"] == terminated).expect("the order is the deal's");
    assert_eq!(sent["state"], "canceled", "on the book until the take profit closed the deal: {sent:#}");
    assert_eq!(assert_venue_matches_the_deal(&outcome), 0, "nothing was left unsent: {deal:#}");
}
