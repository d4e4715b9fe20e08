//! Bots, their deals, an account's trading policy and the kill switch (`spec/api.md` "Bots and
//! deals"). Commands that trade go to this node's runner; reads come from the store.

use std::fmt::Write as _;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::{Bot, BotId, Deal, DealId, DealStatus, Decimal, OrderIntent, Pair, TradingPolicy};
use engine::{DealBook, UserCommand};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use store::{DealFilter, ExchangeAccountStatus};

use crate::ApiError;
use crate::api::bots::{BotKind, SettingsFields, bot_settings, split_settings, stored_fields};
use crate::api::exchange_accounts::owned;
use crate::api::shown::{Amounts, pair_of, text};
use crate::extract::{ApiJson, ApiQuery, ClientInfo, StepUp, decimal_text};
use crate::runner;
use crate::session::Authed;
use crate::state::AppState;

const MAX_PAIRS: usize = 200;

fn bot_id(raw: &str) -> Result<BotId, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

fn deal_id(raw: &str) -> Result<DealId, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

async fn owned_bot(state: &AppState, authed: &Authed, id: &str) -> Result<Bot, ApiError> {
    state.store.bot(authed.user.id, bot_id(id)?).await?.ok_or(ApiError::NotFound)
}

fn pairs_of(raw: &Value) -> Result<Vec<Pair>, ApiError> {
    let bad = || ApiError::InvalidInput {
        field: "pairs",
        message: format!("pairs is a list of 1 to {MAX_PAIRS} pairs written quote first, as [\"USDT_BTC\"]."),
    };
    let list = raw.as_array().ok_or_else(bad)?;
    if list.is_empty() || list.len() > MAX_PAIRS {
        return Err(bad());
    }
    let mut pairs = Vec::with_capacity(list.len());
    for item in list {
        let pair = item.as_str().and_then(|p| Pair::parse_3commas(p).ok()).ok_or_else(bad)?;
        if !pairs.contains(&pair) {
            pairs.push(pair);
        }
    }
    Ok(pairs)
}

fn name_of(raw: Option<&Value>) -> Result<String, ApiError> {
    let name = raw.and_then(Value::as_str).map(str::trim).unwrap_or_default();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::InvalidInput {
            field: "name",
            message: "Give the bot a name of 1 to 100 characters.".to_owned(),
        });
    }
    Ok(name.to_owned())
}

fn settings_value(bot: &Bot) -> Value {
    serde_json::from_str(&bot.settings).unwrap_or(Value::Null)
}

fn order_json(order: &OrderIntent, amounts: &Amounts) -> Value {
    json!({
        "client_order_id": order.client_order_id,
        "role": order.role.as_str(),
        "safety_index": order.safety_index,
        "side": order.side.as_str().to_ascii_lowercase(),
        "type": order.kind.as_str(),
        "price": text(order.price),
        "quantity": amounts.maybe(order.quantity),
        "quote_amount": amounts.maybe(order.quote_amount),
        "state": order.state.as_str(),
        "cancel_requested": order.cancel_requested,
        "executed_quantity": amounts.show(order.executed_qty),
        "executed_quote": amounts.show(order.executed_quote),
        "fee_base": amounts.show(order.fee_base),
        "fee_quote": amounts.show(order.fee_quote),
        "error": order.error,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    })
}

fn deal_json(deal: &Deal, orders: &[OrderIntent], amounts: &Amounts) -> Value {
    let book = DealBook { deal: deal.clone(), orders: orders.to_vec() };
    let settings = bot_settings(&deal.settings).ok();
    let average = book.average_price();
    let take_profit = settings.as_ref().and_then(|s| book.take_profit_price(s));
    let targets: Vec<Value> = settings
        .as_ref()
        .and_then(|s| book.take_profit_targets(s))
        .unwrap_or_default()
        .iter()
        .map(|t| {
            json!({
                "step": t.step,
                "amount_percentage": text(t.amount_percentage),
                "profit_percentage": text(t.profit_percentage),
                "price": text(t.price),
            })
        })
        .collect();
    let stop_loss = settings.as_ref().and_then(|s| book.stop_loss_price(s));
    let position = book.position(false);
    json!({
        "id": deal.id,
        "bot_id": deal.bot_id,
        "exchange_account_id": deal.exchange_account_id,
        "pair": deal.pair.to_3commas(),
        "strategy": deal.strategy.as_str(),
        "status": deal.status.as_str(),
        "close_reason": deal.close_reason.map(|r| r.as_str()),
        "base_price": deal.base_price.map(text),
        "average_price": average.map(text),
        "take_profit_price": take_profit.map(text),
        "take_profit_targets": targets,
        "trailing_deviation": settings.as_ref().and_then(|s| s.dca.trailing_deviation()).map(text),
        "trailing_peak": deal.trailing_peak.map(text),
        "stop_loss_price": stop_loss.map(text),
        "position_base": amounts.show(position),
        "profit_quote": amounts.maybe(deal.profit_quote),
        "created_at": deal.created_at,
        "updated_at": deal.updated_at,
        "closed_at": deal.closed_at,
        "orders": orders.iter().map(|o| order_json(o, amounts)).collect::<Vec<_>>(),
    })
}

async fn bot_json(state: &AppState, bot: &Bot, amounts: &Amounts) -> Result<Value, ApiError> {
    let deals =
        state.store.deals(bot.user_id, &DealFilter { bot_id: Some(bot.id), status: None, limit: 10_000 }).await?;
    let active = deals.iter().filter(|(d, _)| !d.status.is_finished()).count();
    let finished = deals.iter().filter(|(d, _)| d.status.is_finished()).count();
    let profit: Decimal = deals.iter().filter_map(|(d, _)| d.profit_quote).sum();
    Ok(json!({
        "id": bot.id,
        "type": stored_fields(&bot.settings)?.kind().as_str(),
        "name": bot.name,
        "exchange_account_id": bot.exchange_account_id,
        "pairs": bot.pairs.iter().map(Pair::to_3commas).collect::<Vec<_>>(),
        "enabled": bot.enabled,
        "disabled_reason": bot.disabled_reason,
        "settings": settings_value(bot),
        "active_deals": active,
        "finished_deals": finished,
        "profit_quote": amounts.show(profit),
        "created_at": bot.created_at,
        "updated_at": bot.updated_at,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevealQuery {
    #[serde(default)]
    reveal: Option<bool>,
}

/// `POST /api/v1/bots`: a DCA bot, disabled until enabled unless `"enabled": true`.
pub async fn create(
    State(state): State<AppState>,
    client: ClientInfo,
    authed: Authed,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let (extra, mut fields) =
        split_settings(body, &["type", "name", "exchange_account_id", "pairs", "enabled", "bot_type"])?;
    let kind = match extra.get("type").and_then(Value::as_str) {
        Some("dca") | None => BotKind::Dca,
        Some("signal") => BotKind::Signal,
        Some(_) => {
            return Err(ApiError::InvalidInput {
                field: "type",
                message: "A bot's type is \"dca\" or \"signal\".".to_owned(),
            });
        }
    };
    fields.set_kind(kind);
    let name = name_of(extra.get("name"))?;
    let account_id =
        extra.get("exchange_account_id").and_then(Value::as_str).ok_or_else(|| ApiError::InvalidInput {
            field: "exchange_account_id",
            message: "Name the exchange account the bot trades on.".to_owned(),
        })?;
    let pairs = pairs_of(extra.get("pairs").unwrap_or(&Value::Null))?;
    let enabled = match extra.get("enabled") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::InvalidInput { field: "enabled", message: "enabled is true or false.".to_owned() });
        }
    };
    fields.bot_settings()?;
    let account = owned(&state, &authed, account_id).await?;
    check_pairs(&state, &account, &pairs).await?;
    let now = state.now();
    let bot = Bot {
        id: BotId::from_random_bytes(state.random_16()),
        user_id: authed.user.id,
        exchange_account_id: account.id,
        name,
        pairs,
        enabled,
        disabled_reason: None,
        settings: serde_json::to_string(&fields).map_err(ApiError::internal)?,
        created_at: now,
        updated_at: now,
    };
    let (secret, stored) = new_webhook_secret(&state, &bot).await?;
    let detail = json!({ "bot_id": bot.id, "exchange_account_id": account.id, "name": bot.name });
    state.store.insert_bot(&bot, &stored, &state.audit(Some(authed.user.id), "bot.created", &client, detail)).await?;
    state.runner.wake();
    let mut body = bot_json(&state, &bot, &Amounts::new(&authed, Some(true))).await?;
    body["webhook_secret"] = Value::from(secret.as_str());
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// How long a rotated webhook secret keeps working, so alerts can be edited (`spec/webhooks.md`).
const WEBHOOK_GRACE: Duration = Duration::from_secs(24 * 3600);

/// A fresh webhook secret for `bot` (256 random bits as 64 hex characters, WH-1) and what is
/// stored of it: its SHA-256 (checked against the secret a body carries) and the secret sealed
/// under the vault, bound to the bot (the HMAC key of signed requests, WH-4). The hex text itself
/// is the key, byte for byte, as the sender uses it.
async fn new_webhook_secret(
    state: &AppState,
    bot: &Bot,
) -> Result<(zeroize::Zeroizing<String>, store::NewWebhookSecret), ApiError> {
    let mut secret_bytes = zeroize::Zeroizing::new([0u8; 32]);
    state.random.fill(&mut *secret_bytes);
    let secret = zeroize::Zeroizing::new(secret_bytes.iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    }));
    let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    let binding = crate::webhooks::signing_binding(bot);
    let sealed = state.vault.seal(&binding, secret.as_bytes()).await.map_err(|err| match err {
        crate::live_vault::SealError::Vault(vault::VaultError::Sealed) => ApiError::VaultSealed,
        other => ApiError::internal(other),
    })?;
    Ok((secret, store::NewWebhookSecret { hash, sealed }))
}

/// `POST /api/v1/bots/{id}/rotate_webhook_secret` (*step-up*): a new webhook secret, shown this
/// once; the previous one keeps working for `WEBHOOK_GRACE` (24 h) so alerts can be edited, and a
/// secret revoked by the kill switch stays revoked. Audited `bot.webhook_rotated` (no secret).
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    client: ClientInfo,
    StepUp(authed): StepUp,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let bot = owned_bot(&state, &authed, &id).await?;
    let (secret, stored) = new_webhook_secret(&state, &bot).await?;
    let until = state.now().plus(WEBHOOK_GRACE);
    let detail = json!({ "bot_id": bot.id, "previous_valid_until": until });
    let audit = state.audit(Some(authed.user.id), "bot.webhook_rotated", &client, detail);
    if !state.store.rotate_webhook_secret(authed.user.id, bot.id, &stored, until, &audit).await? {
        return Err(ApiError::NotFound);
    }
    Ok(axum::Json(json!({ "webhook_secret": secret.as_str(), "previous_valid_until": until })).into_response())
}

/// Every pair must be open for trading at the account's venue.
async fn check_pairs(state: &AppState, account: &store::ExchangeAccountRecord, pairs: &[Pair]) -> Result<(), ApiError> {
    let exchange = crate::keys::open_account(state, account)?;
    let markets = exchange.markets(pairs).await.map_err(|err| match err {
        exchange::ExchangeError::InvalidRequest { .. } => ApiError::InvalidInput {
            field: "pairs",
            message: "The exchange does not list one of these pairs.".to_owned(),
        },
        other => crate::keys::venue_error(&other),
    })?;
    for pair in pairs {
        if !markets.iter().any(|m| m.pair == *pair && m.trading) {
            return Err(ApiError::InvalidInput {
                field: "pairs",
                message: format!("{} is not open for trading on this exchange.", pair.to_3commas()),
            });
        }
    }
    Ok(())
}

/// `GET /api/v1/bots`.
pub async fn list(
    State(state): State<AppState>,
    authed: Authed,
    ApiQuery(query): ApiQuery<RevealQuery>,
) -> Result<Response, ApiError> {
    let amounts = Amounts::new(&authed, query.reveal);
    let mut out = Vec::new();
    for bot in state.store.bots(authed.user.id).await? {
        out.push(bot_json(&state, &bot, &amounts).await?);
    }
    Ok(axum::Json(out).into_response())
}

/// `GET /api/v1/bots/{id}`.
pub async fn show(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<RevealQuery>,
) -> Result<Response, ApiError> {
    let bot = owned_bot(&state, &authed, &id).await?;
    Ok(axum::Json(bot_json(&state, &bot, &Amounts::new(&authed, query.reveal)).await?).into_response())
}

/// `GET /api/v1/bots/{id}/signals`: the bot's latest webhook signals (at most 100), newest first,
/// with what came of each. Parameters are shown as received; amounts follow hide-balances.
pub async fn signals(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<RevealQuery>,
) -> Result<Response, ApiError> {
    let bot = owned_bot(&state, &authed, &id).await?;
    let amounts = Amounts::new(&authed, query.reveal);
    let mut out = Vec::new();
    for signal in state.store.signals(authed.user.id, bot.id, 100).await? {
        let mut params: Value = serde_json::from_str(&signal.params).unwrap_or_else(|_| json!({}));
        if let Some(map) = params.as_object_mut() {
            if let Some(amount) = map.get("volume").and_then(Value::as_str).and_then(|t| t.parse::<Decimal>().ok()) {
                map.insert("volume".to_owned(), Value::from(amounts.show(amount)));
            }
            if let Some(order) = map.get_mut("order").and_then(Value::as_object_mut)
                && let Some(amount) =
                    order.get("amount").and_then(Value::as_str).and_then(|t| t.parse::<Decimal>().ok())
            {
                order.insert("amount".to_owned(), Value::from(amounts.show(amount)));
            }
        }
        out.push(json!({
            "id": signal.id,
            "action": signal.action.as_str(),
            "pair": signal.pair.as_ref().map(Pair::to_3commas),
            "params": params,
            "source_ip": signal.source_ip,
            "received_at": signal.received_at,
            "due_at": signal.due_at,
            "state": signal.state.as_str(),
            "outcome": signal.outcome,
            "handled_at": signal.handled_at,
        }));
    }
    Ok(axum::Json(out).into_response())
}

/// `PATCH /api/v1/bots/{id}`: name, pairs and any settings; the settings given replace those
/// stored, the rest stay. New settings apply to deals started from now on.
pub async fn update(
    State(state): State<AppState>,
    client: ClientInfo,
    authed: Authed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let mut bot = owned_bot(&state, &authed, &id).await?;
    let Value::Object(changes) = body else {
        return Err(ApiError::InvalidJson("the body must be a JSON object".to_owned()));
    };
    let mut merged = match settings_value(&bot) {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    let mut extra = serde_json::Map::new();
    let kind = stored_fields(&bot.settings)?.kind();
    let signing_on = changes.get("webhook_require_signature") == Some(&Value::Bool(true));
    for (key, value) in changes {
        if key == "bot_type" || key == "type" {
            return Err(ApiError::InvalidInput {
                field: "type",
                message: "A bot's type does not change; create a new bot instead.".to_owned(),
            });
        }
        if matches!(key.as_str(), "name" | "pairs") {
            extra.insert(key, value);
        } else if value.is_null() {
            merged.remove(&key);
        } else {
            merged.insert(key, value);
        }
    }
    let (_, mut fields): (_, SettingsFields) = split_settings(Value::Object(merged), &[])?;
    fields.set_kind(kind);
    fields.bot_settings()?;
    // Signed mode needs the secret sealed, which only secrets made since it exists are: an older
    // one has to be rotated first (its hash alone cannot check an HMAC). Checked when it is turned
    // on, so a bot whose secrets the kill switch revoked can still be edited.
    if signing_on {
        let sealed = state.store.webhook_secrets(bot.id).await?.and_then(|s| s.current_sealed);
        if sealed.is_none() {
            return Err(ApiError::InvalidInput {
                field: "webhook_require_signature",
                message: "This bot's webhook secret cannot sign: it was made before signed mode, or revoked. Rotate \
                          the webhook secret, then turn signed mode on."
                    .to_owned(),
            });
        }
    }
    if let Some(name) = extra.get("name") {
        bot.name = name_of(Some(name))?;
    }
    if let Some(pairs) = extra.get("pairs") {
        let pairs = pairs_of(pairs)?;
        let account =
            state.store.exchange_account(authed.user.id, bot.exchange_account_id).await?.ok_or(ApiError::NotFound)?;
        check_pairs(&state, &account, &pairs).await?;
        bot.pairs = pairs;
    }
    bot.settings = serde_json::to_string(&fields).map_err(ApiError::internal)?;
    bot.updated_at = state.now();
    let audit = state.audit(Some(authed.user.id), "bot.updated", &client, json!({ "bot_id": bot.id }));
    if !state.store.update_bot(&bot, &audit).await? {
        return Err(ApiError::NotFound);
    }
    state.runner.wake();
    Ok(axum::Json(bot_json(&state, &bot, &Amounts::new(&authed, None)).await?).into_response())
}

async fn set_enabled(
    state: &AppState,
    client: &ClientInfo,
    authed: &Authed,
    id: &str,
    enabled: bool,
) -> Result<Response, ApiError> {
    let mut bot = owned_bot(state, authed, id).await?;
    if enabled {
        let account =
            state.store.exchange_account(authed.user.id, bot.exchange_account_id).await?.ok_or(ApiError::NotFound)?;
        if account.status != ExchangeAccountStatus::Active {
            return Err(ApiError::Conflict {
                code: "account_paused",
                message: "Trading on this bot's exchange account is paused; check the key again first.",
            });
        }
    }
    bot.enabled = enabled;
    bot.disabled_reason = None;
    bot.updated_at = state.now();
    let kind = if enabled { "bot.enabled" } else { "bot.disabled" };
    let audit = state.audit(Some(authed.user.id), kind, client, json!({ "bot_id": bot.id, "reason": "user" }));
    if !state.store.update_bot(&bot, &audit).await? {
        return Err(ApiError::NotFound);
    }
    state.runner.wake();
    Ok(axum::Json(bot_json(state, &bot, &Amounts::new(authed, None)).await?).into_response())
}

/// `POST /api/v1/bots/{id}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    client: ClientInfo,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    set_enabled(&state, &client, &authed, &id, true).await
}

/// `POST /api/v1/bots/{id}/disable`: no new deals; open deals go on.
pub async fn disable(
    State(state): State<AppState>,
    client: ClientInfo,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    set_enabled(&state, &client, &authed, &id, false).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    #[serde(default)]
    pair: Option<String>,
}

/// `POST /api/v1/bots/{id}/start_new_deal` `{"pair"?}`: 200 with the new deal.
pub async fn start_new_deal(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let bot = owned_bot(&state, &authed, &id).await?;
    if !bot.enabled {
        return Err(ApiError::Refused {
            status: StatusCode::CONFLICT,
            code: "bot_disabled",
            message: match &bot.disabled_reason {
                Some(reason) => format!("The bot is disabled ({reason}); enable it first."),
                None => "The bot is disabled; enable it first.".to_owned(),
            },
        });
    }
    // The body is optional: none, or `{"pair": "USDT_BTC"}`.
    let body: StartBody = if body.iter().all(u8::is_ascii_whitespace) {
        StartBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|err| ApiError::InvalidJson(err.to_string()))?
    };
    let pair = match body.pair {
        None => None,
        Some(raw) => Some(pair_of(&raw)?),
    };
    let changed = runner::command(&state, authed.user.id, bot.id, UserCommand::StartDeal { bot: bot.id, pair }).await?;
    let id = changed.first().copied().ok_or_else(|| ApiError::internal("starting a deal changed no deal"))?;
    let (deal, orders) = state.store.deal(authed.user.id, id).await?.ok_or(ApiError::NotFound)?;
    Ok(axum::Json(deal_json(&deal, &orders, &Amounts::new(&authed, Some(true)))).into_response())
}

async fn all_deals(
    state: &AppState,
    client: &ClientInfo,
    authed: &Authed,
    id: &str,
    panic_sell: bool,
) -> Result<Response, ApiError> {
    let bot = owned_bot(state, authed, id).await?;
    let command =
        if panic_sell { UserCommand::PanicSellAll { bot: bot.id } } else { UserCommand::CancelAll { bot: bot.id } };
    let changed = runner::command(state, authed.user.id, bot.id, command).await?;
    let kind = if panic_sell { "bot.panic_sell_all_deals" } else { "bot.cancel_all_deals" };
    let detail = json!({ "bot_id": bot.id, "deals": changed.len() });
    state.store.append_audit(&state.audit(Some(authed.user.id), kind, client, detail)).await?;
    Ok(axum::Json(json!({ "deals": changed.len() })).into_response())
}

/// `POST /api/v1/bots/{id}/panic_sell_all_deals`: every open deal of the bot closes at market.
pub async fn panic_sell_all_deals(
    State(state): State<AppState>,
    client: ClientInfo,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    all_deals(&state, &client, &authed, &id, true).await
}

/// `POST /api/v1/bots/{id}/cancel_all_deals`: every open deal of the bot is canceled.
pub async fn cancel_all_deals(
    State(state): State<AppState>,
    client: ClientInfo,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    all_deals(&state, &client, &authed, &id, false).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DealsQuery {
    #[serde(default)]
    bot_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    reveal: Option<bool>,
}

/// `GET /api/v1/deals?bot_id=&status=&limit=`: newest first.
pub async fn deals(
    State(state): State<AppState>,
    authed: Authed,
    ApiQuery(query): ApiQuery<DealsQuery>,
) -> Result<Response, ApiError> {
    let bot_id = match &query.bot_id {
        None => None,
        Some(raw) => Some(
            raw.parse()
                .map_err(|_| ApiError::InvalidInput { field: "bot_id", message: "bot_id is a bot's id.".to_owned() })?,
        ),
    };
    let status = match &query.status {
        None => None,
        Some(raw) => Some(raw.parse::<DealStatus>().map_err(|_| ApiError::InvalidInput {
            field: "status",
            message: format!(
                "status is one of {}.",
                DealStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
        })?),
    };
    let filter = DealFilter { bot_id, status, limit: query.limit.unwrap_or(100).clamp(1, 1000) };
    let amounts = Amounts::new(&authed, query.reveal);
    let deals = state.store.deals(authed.user.id, &filter).await?;
    Ok(axum::Json(deals.iter().map(|(d, o)| deal_json(d, o, &amounts)).collect::<Vec<_>>()).into_response())
}

/// `GET /api/v1/deals/{id}`.
pub async fn deal(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<RevealQuery>,
) -> Result<Response, ApiError> {
    let (deal, orders) = state.store.deal(authed.user.id, deal_id(&id)?).await?.ok_or(ApiError::NotFound)?;
    Ok(axum::Json(deal_json(&deal, &orders, &Amounts::new(&authed, query.reveal))).into_response())
}

async fn deal_command(
    state: &AppState,
    authed: &Authed,
    id: &str,
    make: impl FnOnce(DealId) -> UserCommand,
) -> Result<Response, ApiError> {
    let (deal, _) = state.store.deal(authed.user.id, deal_id(id)?).await?.ok_or(ApiError::NotFound)?;
    if deal.status.is_finished() {
        return Err(ApiError::Refused {
            status: StatusCode::CONFLICT,
            code: "deal_not_open",
            message: "The deal is already closed.".to_owned(),
        });
    }
    runner::command(state, authed.user.id, deal.bot_id, make(deal.id)).await?;
    let (deal, orders) = state.store.deal(authed.user.id, deal.id).await?.ok_or(ApiError::NotFound)?;
    Ok(axum::Json(deal_json(&deal, &orders, &Amounts::new(authed, Some(true)))).into_response())
}

/// `POST /api/v1/deals/{id}/close_at_market`.
pub async fn close_at_market(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    deal_command(&state, &authed, &id, |deal| UserCommand::CloseAtMarket { deal }).await
}

/// `POST /api/v1/deals/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    deal_command(&state, &authed, &id, |deal| UserCommand::Cancel { deal }).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddFundsBody {
    quantity_quote: Value,
    #[serde(default)]
    price: Option<Value>,
}

/// `POST /api/v1/deals/{id}/add_funds` `{"quantity_quote", "price"?}`: an order of that much
/// quote, at market or as a limit order at `price`.
pub async fn add_funds(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AddFundsBody>,
) -> Result<Response, ApiError> {
    let bad = || ApiError::InvalidInput {
        field: "quantity_quote",
        message: "quantity_quote is a positive amount of the quote asset, e.g. \"25\".".to_owned(),
    };
    let quote: Decimal = decimal_text(&body.quantity_quote).and_then(|t| t.parse().ok()).ok_or_else(bad)?;
    if quote <= Decimal::ZERO {
        return Err(bad());
    }
    let price = match body.price.as_ref().filter(|p| !p.is_null()) {
        None => None,
        Some(raw) => {
            let price: Option<Decimal> = decimal_text(raw).and_then(|t| t.parse().ok()).filter(|p| *p > Decimal::ZERO);
            Some(price.ok_or_else(|| {
                ApiError::InvalidInput {
                    field: "price",
                    message: "price is a positive limit price in the quote asset, e.g. \"61250.5\", or absent for a \
                          market order."
                        .to_owned(),
                }
            })?)
        }
    };
    deal_command(&state, &authed, &id, |deal| UserCommand::AddFunds { deal, quote, price }).await
}

fn policy_json(policy: &TradingPolicy, is_default: bool) -> Value {
    json!({
        "pair_allowlist": policy.pair_allowlist.iter().map(Pair::to_3commas).collect::<Vec<_>>(),
        "max_order_notional": text(policy.max_order_notional),
        "max_daily_volume": text(policy.max_daily_volume),
        "max_orders_per_minute": policy.max_orders_per_minute,
        "max_price_deviation_percent": text(policy.max_price_deviation_percent),
        "min_quote_volume_24h": text(policy.min_quote_volume_24h),
        "default": is_default,
    })
}

/// `GET /api/v1/exchange-accounts/{id}/policy`: the order guard's rules for the account.
pub async fn policy(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let account = owned(&state, &authed, &id).await?;
    let (policy, is_default) = crate::order_guard::policy_of(&state, &account).await?;
    Ok(axum::Json(policy_json(&policy, is_default)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    #[serde(default)]
    pair_allowlist: Option<Value>,
    #[serde(default)]
    max_order_notional: Option<Value>,
    #[serde(default)]
    max_daily_volume: Option<Value>,
    #[serde(default)]
    max_orders_per_minute: Option<Value>,
    #[serde(default)]
    max_price_deviation_percent: Option<Value>,
    #[serde(default)]
    min_quote_volume_24h: Option<Value>,
}

/// `PUT /api/v1/exchange-accounts/{id}/policy` (*step-up*): the fields given replace the current
/// ones. Audited with the old and new values.
pub async fn set_policy(
    State(state): State<AppState>,
    client: ClientInfo,
    StepUp(authed): StepUp,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PolicyBody>,
) -> Result<Response, ApiError> {
    let account = owned(&state, &authed, &id).await?;
    let (old, _) = crate::order_guard::policy_of(&state, &account).await?;
    let mut policy = old.clone();
    let amount = |field: &'static str, raw: &Value| -> Result<Decimal, ApiError> {
        let bad = || ApiError::InvalidInput { field, message: format!("{field} is an amount of zero or more.") };
        let value: Decimal = decimal_text(raw).and_then(|t| t.parse().ok()).ok_or_else(bad)?;
        if value < Decimal::ZERO {
            return Err(bad());
        }
        Ok(value)
    };
    if let Some(raw) = &body.pair_allowlist {
        policy.pair_allowlist = match raw.as_array() {
            Some(list) if list.is_empty() => Vec::new(),
            _ => pairs_of(raw).map_err(|_| ApiError::InvalidInput {
                field: "pair_allowlist",
                message: "pair_allowlist is a list of pairs as [\"USDT_BTC\"]; empty allows any pair.".to_owned(),
            })?,
        };
    }
    if let Some(raw) = &body.max_order_notional {
        policy.max_order_notional = amount("max_order_notional", raw)?;
    }
    if let Some(raw) = &body.max_daily_volume {
        policy.max_daily_volume = amount("max_daily_volume", raw)?;
    }
    if let Some(raw) = &body.max_price_deviation_percent {
        policy.max_price_deviation_percent = amount("max_price_deviation_percent", raw)?;
    }
    if let Some(raw) = &body.min_quote_volume_24h {
        policy.min_quote_volume_24h = amount("min_quote_volume_24h", raw)?;
    }
    if let Some(raw) = &body.max_orders_per_minute {
        policy.max_orders_per_minute =
            raw.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| (1..=10_000).contains(n)).ok_or_else(|| {
                ApiError::InvalidInput {
                    field: "max_orders_per_minute",
                    message: "max_orders_per_minute is a whole number from 1 to 10000.".to_owned(),
                }
            })?;
    }
    let detail = json!({
        "exchange_account_id": account.id, "old": policy_json(&old, false), "new": policy_json(&policy, false),
    });
    let audit = state.audit(Some(authed.user.id), "trading_policy.changed", &client, detail);
    if !state.store.set_trading_policy(authed.user.id, account.id, &policy, state.now(), &audit).await? {
        return Err(ApiError::NotFound);
    }
    Ok(axum::Json(policy_json(&policy, false)).into_response())
}

/// `POST /api/v1/kill-switch` (*step-up*, TR-2): disables every bot, cancels every deal's open
/// orders (positions stay), revokes every webhook secret, ends every other session, and drops
/// this node's open ports to the user's accounts.
pub async fn kill_switch(
    State(state): State<AppState>,
    client: ClientInfo,
    StepUp(authed): StepUp,
) -> Result<Response, ApiError> {
    let audit = state.audit(Some(authed.user.id), "kill_switch", &client, json!({}));
    let outcome = state.store.kill_switch(authed.user.id, authed.session.id, state.now(), &audit).await?;
    let deals = runner::kill(&state, authed.user.id).await?;
    Ok(axum::Json(json!({
        "bots_disabled": outcome.bots_disabled,
        "sessions_ended": outcome.sessions_ended,
        "deals_canceled": deals,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DealChartQuery {
    #[serde(default)]
    limit: Option<u16>,
}

/// `GET /api/v1/deals/{id}/chart.svg[?limit=2..240]`: the last `limit` (60) one-minute candles of
/// the deal's pair, from its exchange account, with a marker for each of its orders that traded
/// (a filled triangle at its average fill price, on the minute it traded) or waits on the book (a
/// hollow one and a dashed line at its price). Refused and never-placed orders are left out.
pub async fn chart(
    State(state): State<AppState>,
    authed: Authed,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<DealChartQuery>,
) -> Result<Response, ApiError> {
    let (deal, orders) = state.store.deal(authed.user.id, deal_id(&id)?).await?.ok_or(ApiError::NotFound)?;
    let account =
        state.store.exchange_account(authed.user.id, deal.exchange_account_id).await?.ok_or(ApiError::NotFound)?;
    let exchange = crate::keys::open_account(&state, &account)?;
    let limit = query.limit.unwrap_or(60).clamp(2, 240);
    let candles = exchange.candles(&deal.pair, limit).await.map_err(|err| crate::keys::venue_error(&err))?;
    let markers: Vec<crate::chart::Marker> = orders.iter().flat_map(order_markers).collect();
    let svg = crate::chart::candles_with_markers_svg(&deal.pair.to_3commas(), &candles, &markers);
    Ok(([(axum::http::header::CONTENT_TYPE, "image/svg+xml; charset=utf-8")], svg).into_response())
}

/// An order's markers on the deal's chart: one for what it traded, one for what still waits (a
/// partly filled order has both), none for an order that never reached the book.
fn order_markers(order: &OrderIntent) -> Vec<crate::chart::Marker> {
    use domain::{IntentState, OrderRole};
    let label = match order.role {
        OrderRole::Base => "BO".to_owned(),
        OrderRole::Safety => format!("SO{}", order.safety_index),
        OrderRole::TakeProfit if order.safety_index > 1 => format!("TP{}", order.safety_index),
        OrderRole::TakeProfit => "TP".to_owned(),
        OrderRole::Close => "Close".to_owned(),
        OrderRole::AddFunds => "Add".to_owned(),
        OrderRole::Manual => "Manual".to_owned(),
    };
    let mut markers = Vec::new();
    if order.executed_qty > Decimal::ZERO {
        let average = order.executed_quote.checked_div(order.executed_qty).map_or(order.price, |p| p.round_dp(8));
        markers.push(crate::chart::Marker {
            price: average,
            side: order.side,
            filled: true,
            at: Some(order.updated_at),
            label: label.clone(),
        });
    }
    if matches!(order.state, IntentState::Pending | IntentState::Open) && order.price > Decimal::ZERO {
        markers.push(crate::chart::Marker { price: order.price, side: order.side, filled: false, at: None, label });
    }
    markers
}
