//! The webhook routes TradingView alerts post to, at 3Commas' paths (`spec/webhooks.md`):
//! `POST /trade_signal/trading_view` (the DCA-bot message) and `POST /signal_bots/webhooks` (the
//! Signal-bot message).
//!
//! A hit is checked in this order, each step answering at once when it fails, and every hit is in
//! the audit log without its secret or body:
//!
//! 1. the source address's rate (429 `rate_limited`, before the body is read);
//! 2. the body's size (413 `body_too_large`, 16 KiB) and shape (400 `invalid_json`, 422
//!    `invalid_signal`), whatever the Content-Type;
//! 3. the bot and its secret: an unknown bot, a wrong secret and a revoked one get the same 401
//!    `invalid_token` after the same work (the hash is compared against a stand-in when there is no
//!    bot); failures count against the address's own, tighter limit. A request bearing a
//!    `Bulwark-Signature` header (signed mode, WH-4) must also carry a valid HMAC of its body under
//!    the bot's secret (the current one, or the previous one in its grace period), and may leave the
//!    secret out of the body: a malformed header or a signature that does not match (an unknown bot
//!    included) is 401 `invalid_signature`, a `t` over 300 s off 422 `stale_signal`. A bot set to
//!    `webhook_require_signature` refuses unsigned requests with 401 `invalid_signature`;
//! 4. the bot's source-address allowlist (403 `source_not_allowed`), then the bot's rate (429);
//! 5. the signal's age (422 `stale_signal`), and that it fits the bot (422 `invalid_signal`);
//! 6. the replay check and the durable record, one atomic store step (409 `duplicate_signal`);
//! 7. 202 `{"status":"accepted","signal_id"}`, then the runner acts on it (`runner::on_signal`).
//!
//! A signal is durable before it is answered: a crash after the 202 leaves it pending, and the node
//! that runs its bot acts on it after the restart, once (`Store::save_deal` finishes it with the
//! deal it changed).

use std::net::IpAddr;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{Bot, BotId, Pair, Signal, SignalAction, SignalId, SignalState, Strategy};
use serde_json::{Value, json};
use store::WebhookSecrets;
use webhook::signature::{SignatureError, SignatureHeader};
use webhook::{DcaAction, DcaSignal, Freshness, PresentedSecret, Stale};

use crate::ApiError;
use crate::api::bots::{BotKind, stored_fields};
use crate::config::WebhookConfig;
use crate::extract::ClientInfo;
use crate::rate::{Limiter, Refusal};
use crate::state::AppState;

/// The webhook routes' in-memory rate limits (`rate.rs`).
#[derive(Debug)]
pub struct Limits {
    per_ip: Limiter<IpAddr>,
    failures_per_ip: Limiter<IpAddr>,
    per_bot: Limiter<BotId>,
}

impl Limits {
    pub fn new(config: &WebhookConfig) -> Limits {
        Limits {
            per_ip: Limiter::new(config.per_ip),
            failures_per_ip: Limiter::new(config.failures_per_ip),
            per_bot: Limiter::new(config.per_bot),
        }
    }
}

/// The group commit of accepted signals: requests hand their signal to one task, which records
/// whatever has queued up meanwhile in one transaction (`Store::record_signals`: one commit, one
/// fsync on SQLite, for the lot) and answers each. Under load the batches grow by themselves;
/// alone, a signal is recorded at once. Started on first use.
#[derive(Debug, Default)]
pub struct Recorder {
    queue: std::sync::OnceLock<tokio::sync::mpsc::Sender<RecordJob>>,
}

type RecordJob = (store::NewSignal, tokio::sync::oneshot::Sender<store::StoreResult<bool>>);

/// The most signals one transaction records.
const MAX_BATCH: usize = 256;

impl Recorder {
    /// Records one signal as `Store::record_signal` would, committed with the others queued.
    async fn record(
        &self,
        store: &std::sync::Arc<dyn store::Store>,
        item: store::NewSignal,
    ) -> store::StoreResult<bool> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::channel(4 * MAX_BATCH);
            tokio::spawn(run_recorder(std::sync::Arc::clone(store), rx));
            tx
        });
        let (answer_tx, answer_rx) = tokio::sync::oneshot::channel();
        let gone = || store::StoreError::Unavailable("the signal recorder stopped".to_owned());
        queue.send((item, answer_tx)).await.map_err(|_| gone())?;
        answer_rx.await.map_err(|_| gone())?
    }
}

async fn run_recorder(store: std::sync::Arc<dyn store::Store>, mut rx: tokio::sync::mpsc::Receiver<RecordJob>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let (items, answers): (Vec<store::NewSignal>, Vec<_>) = jobs.into_iter().unzip();
        match store.record_signals(&items).await {
            Ok(results) => {
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(result);
                }
            }
            Err(err) => {
                let text = err.to_string();
                for answer in answers {
                    let _ = answer.send(Err(store::StoreError::Unavailable(text.clone())));
                }
            }
        }
    }
}

/// Which of the two message formats a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Dca,
    Signal,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Format::Dca => "dca",
            Format::Signal => "signal",
        }
    }
}

/// `POST /trade_signal/trading_view`: the 3Commas DCA-bot message.
pub async fn trading_view(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    body: Body,
) -> Response {
    intake(&state, &client, &headers, body, Format::Dca).await
}

/// `POST /signal_bots/webhooks`: the 3Commas Signal-bot message.
pub async fn signal_bots(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    body: Body,
) -> Response {
    intake(&state, &client, &headers, body, Format::Signal).await
}

/// A hit that was not accepted: the answer, and what the audit row says.
struct Rejection {
    error: ApiError,
    /// The bot's owner, when the bot is known (they see the refusals of their bot).
    user: Option<domain::UserId>,
    detail: Value,
    /// False for the rest of a flood already reported this minute.
    audit: bool,
}

impl Rejection {
    fn new(error: ApiError, detail: Value) -> Rejection {
        Rejection { error, user: None, detail, audit: true }
    }
}

async fn intake(state: &AppState, client: &ClientInfo, headers: &HeaderMap, body: Body, format: Format) -> Response {
    let verdict = accept(state, client, headers, body, format).await;
    state.metrics.webhook(format.as_str(), verdict.as_ref().map(|_| ()).map_err(|rejection| rejection.error.code()));
    match verdict {
        Ok(id) => (StatusCode::ACCEPTED, axum::Json(json!({ "status": "accepted", "signal_id": id }))).into_response(),
        Err(rejection) => {
            let code = rejection.error.code();
            if rejection.audit {
                let mut detail = rejection.detail;
                detail["format"] = json!(format.as_str());
                detail["outcome"] = json!(code);
                let record = state.audit(rejection.user, "webhook.rejected", client, detail);
                if let Err(err) = state.store.append_audit(&record).await {
                    tracing::warn!(error = %err, "a webhook refusal was not audited");
                }
            } else {
                tracing::debug!(ip = %client.ip, code, "webhook refused (flood already audited this minute)");
            }
            rejection.error.into_response()
        }
    }
}

fn rate_limited(refusal: Refusal, what: &str) -> Rejection {
    Rejection {
        error: ApiError::RateLimited(refusal.retry_after),
        user: None,
        detail: json!({ "limit": what }),
        audit: refusal.first,
    }
}

fn invalid_token() -> ApiError {
    ApiError::Refused {
        status: StatusCode::UNAUTHORIZED,
        code: "invalid_token",
        message: "The bot id or its webhook secret is not right. Copy the alert message again from the bot's page."
            .to_owned(),
    }
}

fn invalid_signature(message: &str) -> ApiError {
    ApiError::Refused { status: StatusCode::UNAUTHORIZED, code: "invalid_signature", message: message.to_owned() }
}

fn signature_refused(err: &SignatureError) -> ApiError {
    match err {
        SignatureError::OutsideTolerance => ApiError::Refused {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "stale_signal",
            message: format!("{err}; it was not acted on. Sign with the current time."),
        },
        SignatureError::Malformed { .. } => invalid_signature(&format!("{err}.")),
        SignatureError::Mismatch => invalid_signature(
            "The Bulwark-Signature does not match the body under this bot's webhook secret (sign t + \".\" + the \
             exact body bytes with HMAC-SHA256).",
        ),
    }
}

/// The binding a bot's webhook secrets are sealed with (the current and the previous one alike).
pub fn signing_binding(bot: &Bot) -> vault::envelope::Binding {
    vault::envelope::Binding::webhook_secret(&bot.user_id.to_string(), &bot.id.to_string())
}

fn invalid_signal(field: &'static str, message: &str) -> ApiError {
    ApiError::Refused {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: "invalid_signal",
        message: format!("`{field}` {message}"),
    }
}

/// The message as parsed, which holds the presented secret (never copied out of it).
enum Message {
    Dca(DcaSignal),
    Signal(webhook::Signal),
}

impl Message {
    /// The secret the body carries; only a signed request may leave it out.
    fn secret(&self) -> Option<&PresentedSecret> {
        match self {
            Message::Dca(m) => m.email_token(),
            Message::Signal(m) => m.secret(),
        }
    }
}

/// What a parsed message asks, in either format.
struct Parsed {
    bot_ref: String,
    message: Message,
    action: SignalAction,
    pair: Option<Pair>,
    /// `tv_instrument` of a Signal-format message, matched against the bot's pairs later.
    instrument: Option<String>,
    delay: std::time::Duration,
    timestamp: Option<domain::Timestamp>,
    max_lag: Option<std::time::Duration>,
    params: Value,
}

/// Parses the body; `signed`: the request bears a signature, so the secret may be left out.
fn parse(format: Format, body: &[u8], signed: bool) -> Result<Parsed, webhook::ParseError> {
    match format {
        Format::Dca => {
            let signal = if signed { DcaSignal::parse_signed(body)? } else { DcaSignal::parse(body)? };
            let (action, params) = match signal.action() {
                DcaAction::StartDeal => (SignalAction::StartDeal, json!({})),
                DcaAction::CloseAtMarketPrice => (SignalAction::CloseAtMarketPrice, json!({})),
                DcaAction::CloseAtMarketPriceAll => (SignalAction::CloseAtMarketPriceAll, json!({})),
                DcaAction::AddFundsInQuote { volume, price } => (
                    SignalAction::AddFundsInQuote,
                    json!({ "volume": volume.get().to_string(), "price": price.map(|p| p.get().to_string()) }),
                ),
                DcaAction::StartTrailing => (SignalAction::StartTrailing, json!({})),
            };
            Ok(Parsed {
                bot_ref: signal.bot_id().as_str().to_owned(),
                action,
                pair: signal.pair().cloned(),
                instrument: None,
                delay: signal.delay(),
                timestamp: signal.timestamp(),
                max_lag: signal.max_lag(),
                params,
                message: Message::Dca(signal),
            })
        }
        Format::Signal => {
            let signal = if signed { webhook::Signal::parse_signed(body)? } else { webhook::Signal::parse(body)? };
            let action = match signal.action() {
                webhook::SignalAction::Buy => SignalAction::Buy,
                webhook::SignalAction::Sell => SignalAction::Sell,
                webhook::SignalAction::EnterLong => SignalAction::EnterLong,
                webhook::SignalAction::ExitLong => SignalAction::ExitLong,
                webhook::SignalAction::EnterShort => SignalAction::EnterShort,
                webhook::SignalAction::ExitShort => SignalAction::ExitShort,
            };
            let params = json!({
                "trigger_price": signal.trigger_price().map(|p| p.get().to_string()),
                "tv_exchange": signal.tv_exchange(),
                "tv_instrument": signal.tv_instrument(),
                "order": signal.order().map(|o| json!({
                    "amount": o.amount.get().to_string(),
                    "currency_type": match o.currency_type {
                        webhook::CurrencyType::Base => "base",
                        webhook::CurrencyType::Quote => "quote",
                    },
                })),
            });
            Ok(Parsed {
                bot_ref: signal.bot_uuid().as_str().to_owned(),
                action,
                pair: None,
                instrument: signal.tv_instrument().map(str::to_owned),
                delay: std::time::Duration::ZERO,
                timestamp: signal.timestamp(),
                max_lag: signal.max_lag(),
                params,
                message: Message::Signal(signal),
            })
        }
    }
}

/// The key a signature is checked against when the bot does not exist or has no sealed secret, so
/// that the answer is the same `invalid_signature` after the same HMAC work.
const STAND_IN_KEY: &[u8] = b"bulwark stand-in webhook key: matches nothing a sender can know";

/// Checks a signed request: `t` within 300 s of now, then any `v1` against the body's HMAC under the
/// bot's sealed secrets (the current one, and the previous one inside its grace period), opened
/// for this request only (invariant 9). The outer error is the vault failing, not the sender.
async fn signature_matches(
    state: &AppState,
    header: &SignatureHeader,
    body: &[u8],
    bot: Option<&Bot>,
    secrets: Option<&WebhookSecrets>,
    now: domain::Timestamp,
) -> Result<Result<(), SignatureError>, ApiError> {
    let mut keys: Vec<zeroize::Zeroizing<Vec<u8>>> = Vec::new();
    if let (Some(bot), Some(secrets)) = (bot, secrets) {
        let previous_valid = secrets.previous_until.is_some_and(|until| now <= until);
        let sealed = [secrets.current_sealed.as_ref(), secrets.previous_sealed.as_ref().filter(|_| previous_valid)];
        let binding = signing_binding(bot);
        for blob in sealed.into_iter().flatten() {
            let key = state.vault.open_with_reload(&binding, blob).await.map_err(|err| match err {
                vault::VaultError::Sealed => ApiError::VaultSealed,
                other => ApiError::internal(format!("opening the webhook secret of bot {}: {other}", bot.id)),
            })?;
            keys.push(key);
        }
    }
    let keys: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
    Ok(verify_with(header, body, &keys, now))
}

/// `header.verify` under `keys`; with no key at all (no bot, or no sealed secret) the work is done
/// under the stand-in key and the answer is `Mismatch` whatever it found — the stand-in is in this
/// source, so a signature made with it must not count.
fn verify_with(
    header: &SignatureHeader,
    body: &[u8],
    keys: &[&[u8]],
    now: domain::Timestamp,
) -> Result<(), SignatureError> {
    if keys.is_empty() {
        header.verify(body, &[STAND_IN_KEY], now)?;
        return Err(SignatureError::Mismatch);
    }
    header.verify(body, keys, now)
}

/// The hash a secret is compared against when the bot does not exist, so that an unknown bot costs
/// the same work as a wrong secret.
const STAND_IN_HASH: [u8; 32] = [0x5a; 32];

/// Whether `secret` is one of the bot's: the current one, or the previous one inside its grace
/// period. Both comparisons always run.
fn secret_matches(secret: &PresentedSecret, secrets: Option<&WebhookSecrets>, now: domain::Timestamp) -> bool {
    let (current, previous) = match secrets {
        Some(s) => {
            let previous_valid = s.previous_until.is_some_and(|until| now <= until);
            (s.current, s.previous.filter(|_| previous_valid))
        }
        None => (None, None),
    };
    let current_ok = webhook::secret::matches(secret, &current.unwrap_or(STAND_IN_HASH));
    let previous_ok = webhook::secret::matches(secret, &previous.unwrap_or(STAND_IN_HASH));
    (current_ok && current.is_some()) | (previous_ok && previous.is_some())
}

async fn accept(
    state: &AppState,
    client: &ClientInfo,
    headers: &HeaderMap,
    body: Body,
    format: Format,
) -> Result<SignalId, Rejection> {
    let now = state.now();
    let limits = &state.webhook_limits;
    limits.per_ip.hit(&client.ip, now).map_err(|r| rate_limited(r, "address"))?;
    limits.failures_per_ip.check(&client.ip, now).map_err(|r| rate_limited(r, "address_failures"))?;

    let too_large = || Rejection::new(ApiError::BodyTooLarge, json!({}));
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > webhook::MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, webhook::MAX_BODY_BYTES).await.map_err(|_| too_large())?;
    // Signed mode: the header is read before the body, so a request cannot be both.
    let signature = match headers.get(webhook::signature::HEADER) {
        Some(value) => Some(SignatureHeader::parse(value.as_bytes()).map_err(|err| {
            let _ = limits.failures_per_ip.hit(&client.ip, now);
            Rejection::new(signature_refused(&err), json!({}))
        })?),
        None => None,
    };
    let parsed = parse(format, &bytes, signature.is_some()).map_err(|err| {
        let error = match err.code() {
            "body_too_large" => ApiError::BodyTooLarge,
            "invalid_json" => ApiError::InvalidJson(err.to_string()),
            _ => ApiError::Refused {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "invalid_signal",
                message: format!("The signal is not valid: {err}."),
            },
        };
        Rejection::new(error, json!({ "field": err.field() }))
    })?;

    // The bot and its secret. Only a UUID can name a bot; anything else is looked up as nothing.
    let bot_id: Option<BotId> = parsed.bot_ref.parse().ok();
    let target = match bot_id {
        Some(id) => state.store.webhook_target(id).await.map_err(|e| Rejection::new(e.into(), json!({})))?,
        None => None,
    };
    let secrets = target.as_ref().map(|(_, s)| s);
    // A body without a secret is a signed one: the signature alone vouches for it.
    let secret_ok = parsed.message.secret().is_none_or(|secret| secret_matches(secret, secrets, now));
    let signature_ok = match (&signature, secret_ok) {
        (Some(header), true) => {
            let bot = target.as_ref().map(|(b, _)| b);
            signature_matches(state, header, &bytes, bot, secrets, now)
                .await
                .map_err(|e| Rejection::new(e, json!({})))?
        }
        _ => Ok(()),
    };
    let owner = target.as_ref().map(|(b, _)| b.user_id);
    // A wrong secret in the body, or no bot, is `invalid_token`; a signature that does not hold
    // (never with no bot: there is no key then) is `invalid_signature` or `stale_signal`.
    let checked = match (target, secret_ok, signature_ok) {
        (Some((bot, _)), true, Ok(())) => Ok(bot),
        (_, true, Err(err)) => Err(signature_refused(&err)),
        _ => Err(invalid_token()),
    };
    let bot = checked.map_err(|error| {
        let _ = limits.failures_per_ip.hit(&client.ip, now);
        let detail = json!({ "bot_id": parsed.bot_ref, "signed": signature.is_some() });
        Rejection { error, user: owner, detail, audit: true }
    })?;
    let owned = |error: ApiError, mut detail: Value| {
        detail["bot_id"] = json!(bot.id.to_string());
        detail["action"] = json!(parsed.action.as_str());
        Rejection { error, user: Some(bot.user_id), detail, audit: true }
    };

    // The stored settings, read once: the webhook settings, the kind and the direction.
    let fields = stored_fields(&bot.settings).map_err(|e| owned(e, json!({})))?;
    let settings = fields.webhook().map_err(|e| owned(e, json!({})))?;
    let strategy = fields.strategy().map_err(|e| owned(e, json!({})))?;
    if settings.require_signature && signature.is_none() {
        let _ = limits.failures_per_ip.hit(&client.ip, now);
        let error = invalid_signature(
            "This bot takes only signed requests: add a Bulwark-Signature header (its settings, \
             webhook_require_signature).",
        );
        return Err(owned(error, json!({ "signed": false })));
    }
    if !settings.allows(client.ip) {
        let error = ApiError::Refused {
            status: StatusCode::FORBIDDEN,
            code: "source_not_allowed",
            message: "This bot takes webhooks only from the addresses in its allowlist.".to_owned(),
        };
        return Err(owned(error, json!({})));
    }
    if let Err(refusal) = limits.per_bot.hit(&bot.id, now) {
        let mut rejection = owned(ApiError::RateLimited(refusal.retry_after), json!({ "limit": "bot" }));
        rejection.audit = refusal.first;
        return Err(rejection);
    }

    // The Signal format's own lag, else the DCA format's, else the bot's setting.
    let max_lag = parsed.max_lag.or(settings.max_lag);
    match Freshness::check(parsed.timestamp, max_lag, now) {
        Freshness::Fresh => {}
        Freshness::Undated if format == Format::Dca && settings.max_lag.is_some() => {
            let error = invalid_signal(
                "timestamp",
                "is required by this bot (it refuses signals older than its lag): add \"timestamp\": \"{{timenow}}\" to \
                 the alert's message.",
            );
            return Err(owned(error, json!({})));
        }
        Freshness::Undated => {}
        Freshness::Stale(stale) => {
            let message = match stale {
                Stale::TooOld { past } => {
                    format!(
                        "The signal is older than its max_lag allows (by {} s); it was not acted on.",
                        past.as_secs()
                    )
                }
                Stale::Ahead { ahead } => {
                    format!("The signal's timestamp is {} s in the future; check the sender's clock.", ahead.as_secs())
                }
            };
            let error = ApiError::Refused { status: StatusCode::UNPROCESSABLE_ENTITY, code: "stale_signal", message };
            return Err(owned(error, json!({})));
        }
    }

    let (pair, action) = fit(&bot, &parsed, format, fields.kind(), strategy).map_err(|e| owned(e, json!({})))?;
    let id = SignalId::from_random_bytes(state.random_16());
    // Starting on a disabled bot is refused at once (and shown in its signal log); the bot's other
    // commands still reach its open deals.
    let (signal_state, outcome) = if action.starts_deal(strategy) && !bot.enabled {
        (SignalState::Refused, Some("Not acted on: the bot is disabled.".to_owned()))
    } else {
        (SignalState::Pending, None)
    };
    let signal = Signal {
        id,
        bot_id: bot.id,
        user_id: bot.user_id,
        action,
        pair: pair.clone(),
        params: parsed.params.to_string(),
        source_ip: client.ip.to_string(),
        received_at: now,
        due_at: now.plus(parsed.delay),
        state: signal_state,
        outcome: outcome.clone(),
        handled_at: outcome.as_ref().map(|_| now),
    };
    let detail = json!({
        "format": format.as_str(),
        "bot_id": bot.id.to_string(),
        "action": action.as_str(),
        "pair": pair.as_ref().map(Pair::to_3commas),
        "signal_id": id.to_string(),
        "delay_seconds": parsed.delay.as_secs(),
        "outcome": "accepted",
    });
    let audit = state.audit(Some(bot.user_id), "webhook.accepted", client, detail);
    let dedupe_key = webhook::secret::dedupe_key(&bot.id.to_string(), &bytes);
    let since = now.minus(state.config.webhooks.dedupe_window);
    let item = store::NewSignal { signal: signal.clone(), dedupe_key, dedupe_since: since, audit };
    let recorded = state.webhook_recorder.record(&state.store, item).await.map_err(|e| owned(e.into(), json!({})))?;
    if !recorded {
        let error = ApiError::Refused {
            status: StatusCode::CONFLICT,
            code: "duplicate_signal",
            message: "The same signal for this bot arrived moments ago; it is acted on once.".to_owned(),
        };
        return Err(owned(error, json!({})));
    }
    if signal.state == SignalState::Pending {
        state.runner.signal(signal);
    }
    Ok(id)
}

/// The pair a signal is for (checked against the bot's), and its action. A DCA bot takes both
/// formats; a signal bot (`kind`) only its own; the entries and exits must be the bot's `strategy`'s.
fn fit(
    bot: &Bot,
    parsed: &Parsed,
    format: Format,
    kind: BotKind,
    strategy: Strategy,
) -> Result<(Option<Pair>, SignalAction), ApiError> {
    if format == Format::Dca && kind == BotKind::Signal {
        return Err(invalid_signal(
            "message_type",
            "is the DCA-bot message; this is a signal bot: post the Signal-bot message to /signal_bots/webhooks.",
        ));
    }
    if let Some(pair) = &parsed.pair
        && !bot.pairs.contains(pair)
    {
        return Err(invalid_signal("pair", "is not one of this bot's pairs."));
    }
    let pair = match (&parsed.pair, &parsed.instrument) {
        (Some(pair), _) => Some(pair.clone()),
        (None, Some(instrument)) => {
            // TradingView's `{{ticker}}`: `BTCUSDT`, sometimes with the exchange (`BINANCE:BTCUSDT`)
            // or a perpetual's suffix (`BTCUSDT.P`, refused: Bulwark trades spot).
            let ticker = instrument.rsplit(':').next().unwrap_or(instrument).to_ascii_uppercase();
            let found = bot.pairs.iter().find(|p| format!("{}{}", p.base, p.quote) == ticker);
            match found {
                Some(pair) => Some(pair.clone()),
                None => return Err(invalid_signal("tv_instrument", "names none of this bot's pairs.")),
            }
        }
        (None, None) => None,
    };
    let short = strategy == Strategy::Short;
    let action = parsed.action;
    let wrong_side = match action {
        SignalAction::EnterLong | SignalAction::ExitLong => short,
        SignalAction::EnterShort | SignalAction::ExitShort => !short,
        _ => false,
    };
    if wrong_side {
        let side = if short { "short" } else { "long" };
        return Err(invalid_signal("action", &format!("does not fit this bot: it trades {side}.")));
    }
    Ok((pair, action))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parsers are the only way to build a presented secret: a minimal DCA message.
    fn presented(text: &str) -> DcaSignal {
        let body = format!(r#"{{"message_type":"bot","bot_id":"b","email_token":"{text}","delay_seconds":0}}"#);
        DcaSignal::parse(body.as_bytes()).expect("message")
    }

    #[test]
    fn the_previous_secret_works_only_inside_its_grace_period() {
        let now = domain::Timestamp::from_unix_millis(1_000_000);
        let secrets = WebhookSecrets {
            current: Some(webhook::secret::hash(b"new")),
            previous: Some(webhook::secret::hash(b"old")),
            previous_until: Some(now),
            current_sealed: None,
            previous_sealed: None,
        };
        assert!(secret_matches(presented("new").email_token().unwrap(), Some(&secrets), now));
        assert!(secret_matches(presented("old").email_token().unwrap(), Some(&secrets), now));
        assert!(!secret_matches(
            presented("old").email_token().unwrap(),
            Some(&secrets),
            now.plus(std::time::Duration::from_millis(1))
        ));
        assert!(!secret_matches(presented("other").email_token().unwrap(), Some(&secrets), now));
        let revoked = WebhookSecrets::default();
        assert!(!secret_matches(presented("new").email_token().unwrap(), Some(&revoked), now));
        assert!(!secret_matches(presented("new").email_token().unwrap(), None, now));
    }

    #[test]
    fn a_signature_under_the_stand_in_key_never_counts() {
        let now = domain::Timestamp::from_unix_millis(1_700_000_000_000);
        let body = br#"{"message_type":"bot","bot_id":"b"}"#;
        let signed = |key: &[u8], t: i64| {
            SignatureHeader::parse(webhook::signature::header_value(key, t, body).as_bytes()).unwrap()
        };
        let stand_in = signed(STAND_IN_KEY, 1_700_000_000);
        assert_eq!(verify_with(&stand_in, body, &[], now), Err(SignatureError::Mismatch));
        assert_eq!(verify_with(&stand_in, body, &[b"real"], now), Err(SignatureError::Mismatch));
        assert_eq!(verify_with(&signed(b"real", 1_700_000_000), body, &[b"real"], now), Ok(()));
        // A stale `t` is stale whether or not there is a key: the answer tells nothing of the bot.
        let stale = signed(STAND_IN_KEY, 1_699_999_000);
        assert_eq!(verify_with(&stale, body, &[], now), Err(SignatureError::OutsideTolerance));
        assert_eq!(verify_with(&stale, body, &[b"real"], now), Err(SignatureError::OutsideTolerance));
    }

    #[test]
    fn the_stand_in_hash_is_no_secrets_hash() {
        // A presented secret hashing to the stand-in must still fail when there is no bot.
        let none = WebhookSecrets::default();
        assert!(!secret_matches(
            presented("x").email_token().unwrap(),
            Some(&none),
            domain::Timestamp::from_unix_millis(0)
        ));
    }
}
