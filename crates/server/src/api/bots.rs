//! DCA bot settings and the plan preview: the engine's order plan for a set of 3Commas-named
//! settings (`spec/dca.md`), rounded to a market's filters when an exchange account and pair are
//! given, so a user sees before starting a bot whether the venue would take every order. The bot
//! and deal routes are in `deals.rs`.
//!
//! Volumes are in the quote or the base currency (`percent` and `xbt` answer 422). How deals exit
//! (take-profit steps, trailing, the stop-loss family) follows 3Commas' fields; the choices made
//! where 3Commas is silent are in `docs/api.md` ("Exits: take-profit steps, trailing, stop loss").

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use domain::{
    DcaError, DcaPlan, DcaSettings, DcaSettingsInput, Decimal, ExitSettings, OrderKind, Price, RoundedPlan, StopLoss,
    StopLossType, Strategy, TakeProfitStep, TakeProfitType, VolumeType,
};
use engine::{BotSettings, StartCondition};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ApiError;
use crate::api::exchange_accounts::owned;
use crate::api::shown::{pair_of, text};
use crate::extract::{ApiJson, decimal_text};
use crate::keys;
use crate::session::Authed;
use crate::state::AppState;

/// The DCA settings of a bot, with 3Commas' names (`spec/dca.md`). Decimals come as JSON strings or
/// numbers. The same fields make a preview, a new bot and a change to one; a bot keeps them as
/// JSON and the runner reads them back with [`bot_settings`].
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsFields {
    /// `signal` for a signal bot (set from the bot's `type` at creation, never changed); absent
    /// for a DCA bot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bot_type: Option<String>,
    /// The order size of each deal (a signal bot's only entry).
    base_order_volume: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base_order_volume_type: Option<String>,
    /// Required for a DCA bot; a signal bot has no safety orders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    safety_order_volume: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    safety_order_volume_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_safety_orders: Option<Value>,
    /// Defaults to `max_safety_orders`: every safety order rests on the book.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    active_safety_orders_count: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    safety_order_step_percentage: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    martingale_step_coefficient: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    martingale_volume_coefficient: Option<Value>,
    /// Required unless `take_profit_steps` is given (then it may be left out, or must equal the last
    /// step's `profit_percentage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    take_profit: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    take_profit_type: Option<String>,
    /// `[{"amount_percentage", "profit_percentage"}, …]`: up to four steps whose amounts add up to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    take_profit_steps: Option<Value>,
    /// Trailing take profit on the last target, `trailing_deviation` % back from its peak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trailing_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trailing_deviation: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strategy: Option<String>,
    /// `market` (default) or `limit` at the current price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start_order_type: Option<String>,
    /// Percent below (long) or above (short) the average entry price; 0 or absent is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stop_loss_percentage: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stop_loss_timeout_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stop_loss_timeout_in_seconds: Option<Value>,
    /// `stop_loss` (default) or `stop_loss_and_disable_bot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stop_loss_type: Option<String>,
    /// Trailing stop loss: the percentage follows the best price since the deal bought.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tsl_enabled: Option<bool>,
    /// With take-profit steps: once the first step filled, the stop loss moves to the average price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sl_to_breakeven_enabled: Option<bool>,
    /// Seconds between deals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cooldown: Option<Value>,
    /// 1 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_active_deals: Option<Value>,
    /// 1 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allowed_deals_on_same_pair: Option<Value>,
    /// `[{"strategy": "nonstop" | "manual" | "trading_view"}]`; nonstop by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strategy_list: Option<Value>,
    /// Source addresses webhooks are taken from (IPs or CIDR blocks; `"tradingview"` stands for
    /// TradingView's four); absent or empty: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook_ip_allowlist: Option<Value>,
    /// For DCA-format messages without their own `max_lag`: seconds after the message's
    /// `timestamp` past which it is stale (a message without `timestamp` is then refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook_max_lag_seconds: Option<Value>,
    /// `true`: only requests bearing a valid `Bulwark-Signature` are taken (WH-4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook_require_signature: Option<Value>,
}

/// A DCA bot (`"type": "dca"`) or a signal bot (`"type": "signal"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotKind {
    Dca,
    Signal,
}

impl BotKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BotKind::Dca => "dca",
            BotKind::Signal => "signal",
        }
    }
}

/// TradingView's webhook source addresses (`spec/webhooks.md` section 1).
pub const TRADINGVIEW_IPS: [&str; 4] = ["52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7"];

/// How a bot takes webhooks, from its settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookSettings {
    /// `None`: any source address.
    pub ip_allowlist: Option<Vec<ipnet::IpNet>>,
    pub max_lag: Option<std::time::Duration>,
    /// Refuse requests without a `Bulwark-Signature` (signed mode, WH-4).
    pub require_signature: bool,
}

impl WebhookSettings {
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        // An IPv4 peer may arrive as an IPv4-mapped IPv6 address on a dual-stack socket.
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 @ std::net::IpAddr::V4(_) => v4,
        };
        self.ip_allowlist.as_ref().is_none_or(|nets| nets.iter().any(|net| net.contains(&ip)))
    }
}

/// Takes the fields named in `keys` out of a JSON object body and reads the rest as settings.
pub fn split_settings(
    body: Value,
    keys: &[&str],
) -> Result<(serde_json::Map<String, Value>, SettingsFields), ApiError> {
    let Value::Object(mut map) = body else {
        return Err(ApiError::InvalidJson("the body must be a JSON object".to_owned()));
    };
    let mut taken = serde_json::Map::new();
    for key in keys {
        if let Some(value) = map.remove(*key) {
            taken.insert((*key).to_owned(), value);
        }
    }
    let fields: SettingsFields = serde_json::from_value(Value::Object(map)).map_err(|err| {
        let text = err.to_string();
        let message = match text.split_once('`') {
            Some((_, rest)) if text.starts_with("unknown field") => {
                format!("Unknown setting `{}", rest.split_once(',').map_or(rest, |(name, _)| name))
            }
            _ => format!("The settings are not valid: {text}."),
        };
        ApiError::InvalidInput { field: "body", message }
    })?;
    Ok((taken, fields))
}

/// `POST /api/v1/bots/preview`: the plan of one deal.
pub async fn preview(
    State(state): State<AppState>,
    authed: Authed,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let (extra, fields) = split_settings(body, &["start_price", "exchange_account_id", "pair"])?;
    let settings = fields.bot_settings()?.dca;
    let start_price = extra.get("start_price").ok_or_else(|| ApiError::InvalidInput {
        field: "start_price",
        message: "Give the price the base order would fill at, as start_price.".to_owned(),
    })?;
    let start_price = Price::new(decimal("start_price", start_price)?).map_err(|_| ApiError::InvalidInput {
        field: "start_price",
        message: "start_price must be greater than zero.".to_owned(),
    })?;
    let plan = DcaPlan::new(&settings, start_price).map_err(|err| settings_error(&err))?;
    let text_of = |key: &str| extra.get(key).map(|v| v.as_str().map(str::to_owned).ok_or(key.to_owned()));
    let account = match text_of("exchange_account_id") {
        Some(Err(_)) => {
            return Err(ApiError::InvalidInput {
                field: "exchange_account_id",
                message: "Give the id as a string.".to_owned(),
            });
        }
        Some(Ok(id)) => Some(id),
        None => None,
    };
    let pair = match text_of("pair") {
        Some(Err(_)) => {
            return Err(ApiError::InvalidInput {
                field: "pair",
                message: "Write the pair quote first, as USDT_BTC.".to_owned(),
            });
        }
        Some(Ok(pair)) => Some(pair),
        None => None,
    };
    let rounded = match (&account, &pair) {
        (None, None) => None,
        (Some(id), Some(pair)) => Some(rounded_for(&state, &authed, id, pair, &plan).await?),
        (Some(_), None) => {
            return Err(ApiError::InvalidInput {
                field: "pair",
                message: "Name the pair to round the plan for, as USDT_BTC.".to_owned(),
            });
        }
        (None, Some(_)) => {
            return Err(ApiError::InvalidInput {
                field: "exchange_account_id",
                message: "Name the exchange account whose market rules the plan is rounded to.".to_owned(),
            });
        }
    };
    Ok(axum::Json(plan_json(&plan, rounded.as_ref())).into_response())
}

fn plan_json(plan: &DcaPlan, rounded: Option<&RoundedPlan>) -> Value {
    let Some(rounded) = rounded else {
        let orders: Vec<Value> = plan
            .orders()
            .iter()
            .map(|o| {
                json!({
                    "kind": o.kind.to_string(),
                    "index": o.index,
                    "side": o.side.as_str().to_ascii_lowercase(),
                    "deviation_percent": text(o.deviation_percent),
                    "price": text(o.price),
                    "size_quote": text(o.size_quote),
                    "size_base": text(o.size_base),
                    "total_quote": text(o.total_quote),
                    "average_price": text(o.average_price),
                    "take_profit_price": text(o.take_profit_price),
                    "take_profit_targets": o.take_profit_targets.iter().copied().map(text).collect::<Vec<_>>(),
                    "bounce_percent": text(o.bounce_percent),
                })
            })
            .collect();
        return json!({
            "orders": orders,
            "max_funds_per_deal": text(plan.max_funds_per_deal()),
            "max_deviation_percent": text(plan.max_deviation_percent()),
            "rounded": false,
        });
    };
    let orders: Vec<Value> = plan
        .orders()
        .iter()
        .zip(&rounded.orders)
        .map(|(o, r)| {
            let problems: Vec<String> = r.violation.iter().map(ToString::to_string).collect();
            json!({
                "kind": o.kind.to_string(),
                "index": o.index,
                "side": r.side.as_str().to_ascii_lowercase(),
                "deviation_percent": text(o.deviation_percent),
                "price": text(r.price),
                "size_quote": text(r.notional),
                "size_base": text(r.quantity),
                "total_quote": text(r.total_quote),
                "average_price": r.average_price.map(text),
                "take_profit_price": r.take_profit_price.map(text),
                "take_profit_targets": r.take_profit_targets.iter().copied().map(text).collect::<Vec<_>>(),
                "planned_price": text(o.price),
                "planned_size_quote": text(o.size_quote),
                "placeable": r.violation.is_none(),
                "problems": problems,
            })
        })
        .collect();
    json!({
        "orders": orders,
        "max_funds_per_deal": text(rounded.max_funds_per_deal()),
        "max_deviation_percent": text(plan.max_deviation_percent()),
        "rounded": true,
        "placeable": rounded.placeable(),
    })
}

async fn rounded_for(
    state: &AppState,
    authed: &Authed,
    id: &str,
    pair: &str,
    plan: &DcaPlan,
) -> Result<RoundedPlan, ApiError> {
    let pair = pair_of(pair)?;
    let account = owned(state, authed, id).await?;
    let exchange = keys::open_account(state, &account)?;
    let not_listed =
        || ApiError::InvalidInput { field: "pair", message: "The exchange does not list this pair.".to_owned() };
    let markets = exchange.markets(std::slice::from_ref(&pair)).await.map_err(|err| match err {
        exchange::ExchangeError::InvalidRequest { .. } => not_listed(),
        other => keys::venue_error(&other),
    })?;
    let market = markets.into_iter().find(|m| m.pair == pair).ok_or_else(not_listed)?;
    Ok(plan.rounded(&market.filters))
}

impl SettingsFields {
    /// The bot kind these settings are for.
    pub fn kind(&self) -> BotKind {
        match self.bot_type.as_deref() {
            Some("signal") => BotKind::Signal,
            _ => BotKind::Dca,
        }
    }

    /// `strategy`: long unless set.
    pub fn strategy(&self) -> Result<Strategy, ApiError> {
        match &self.strategy {
            None => Ok(Strategy::Long),
            Some(raw) => raw.parse().map_err(|err| settings_error(&err)),
        }
    }

    /// Marks the settings as a signal bot's (at creation).
    pub fn set_kind(&mut self, kind: BotKind) {
        self.bot_type = match kind {
            BotKind::Dca => None,
            BotKind::Signal => Some("signal".to_owned()),
        };
    }

    /// A signal bot's settings: one entry order per deal, no safety orders, started by signals;
    /// the take profit is optional (without one a deal holds until an exit signal or the stop loss).
    fn check_signal_bot(&self) -> Result<(), ApiError> {
        let dca_only: [(&'static str, bool); 8] = [
            ("safety_order_volume", self.safety_order_volume.is_some()),
            ("safety_order_volume_type", self.safety_order_volume_type.is_some()),
            ("max_safety_orders", self.max_safety_orders.is_some()),
            ("active_safety_orders_count", self.active_safety_orders_count.is_some()),
            ("safety_order_step_percentage", self.safety_order_step_percentage.is_some()),
            ("martingale_step_coefficient", self.martingale_step_coefficient.is_some()),
            ("martingale_volume_coefficient", self.martingale_volume_coefficient.is_some()),
            ("strategy_list", self.strategy_list.is_some()),
        ];
        if let Some((field, _)) = dca_only.iter().find(|(_, given)| *given) {
            return Err(ApiError::InvalidInput {
                field,
                message: format!(
                    "A signal bot has no {field}: it enters with one order of base_order_volume when a signal \
                     says so."
                ),
            });
        }
        Ok(())
    }

    fn dca(&self) -> Result<DcaSettings, ApiError> {
        let body = self;
        let signal = self.kind() == BotKind::Signal;
        if signal {
            self.check_signal_bot()?;
        }
        let required = |field: &'static str, raw: &Option<Value>| {
            raw.clone().ok_or_else(|| ApiError::InvalidInput { field, message: format!("Give {field}.") })
        };
        // A signal bot's plan is its entry alone: no safety orders (their size and step unused).
        let (safety_order_volume, max_safety_orders, safety_order_step_percentage) = if signal {
            (body.base_order_volume.clone(), Value::from(0), Value::from(1))
        } else {
            (
                required("safety_order_volume", &body.safety_order_volume)?,
                required("max_safety_orders", &body.max_safety_orders)?,
                required("safety_order_step_percentage", &body.safety_order_step_percentage)?,
            )
        };
        let volume_type = |field: &'static str, raw: &Option<String>| match raw {
            None => Ok(VolumeType::QuoteCurrency),
            Some(raw) => VolumeType::parse(field, raw).map_err(|err| settings_error(&err)),
        };
        let coefficient = |field: &'static str, raw: &Option<Value>| match raw {
            None => Ok(Decimal::ONE),
            Some(raw) => decimal(field, raw),
        };
        let max_safety_orders = count("max_safety_orders", &max_safety_orders)?;
        let active_safety_orders_count = match &body.active_safety_orders_count {
            None => max_safety_orders,
            Some(raw) => count("active_safety_orders_count", raw)?,
        };
        let take_profit_type = match &body.take_profit_type {
            None => TakeProfitType::Total,
            Some(raw) => raw.parse().map_err(|err| settings_error(&err))?,
        };
        let strategy = self.strategy()?;
        let steps = self.take_profit_steps()?;
        // Checked here as well as in `with_exits`, so that bad steps are named before the
        // `take_profit` that has to agree with them.
        if !steps.is_empty() {
            domain::check_steps(&steps, strategy).map_err(|err| settings_error(&err))?;
        }
        let input = DcaSettingsInput {
            base_order_volume: decimal("base_order_volume", &body.base_order_volume)?,
            base_order_volume_type: volume_type("base_order_volume_type", &body.base_order_volume_type)?,
            safety_order_volume: decimal("safety_order_volume", &safety_order_volume)?,
            safety_order_volume_type: volume_type("safety_order_volume_type", &body.safety_order_volume_type)?,
            max_safety_orders,
            active_safety_orders_count,
            safety_order_step_percentage: decimal("safety_order_step_percentage", &safety_order_step_percentage)?,
            martingale_step_coefficient: coefficient("martingale_step_coefficient", &body.martingale_step_coefficient)?,
            martingale_volume_coefficient: coefficient(
                "martingale_volume_coefficient",
                &body.martingale_volume_coefficient,
            )?,
            // Without a take profit, a signal bot's plan needs a nominal one; it is never placed
            // (`BotSettings::take_profit_enabled`).
            take_profit: if self.holds_until_exit() { Decimal::ONE } else { self.take_profit(&steps)? },
            take_profit_type,
            strategy,
        };
        let exits = ExitSettings {
            take_profit_steps: steps,
            trailing_deviation: match (self.trailing_enabled, &self.trailing_deviation) {
                (Some(true), Some(raw)) => Some(decimal("trailing_deviation", raw)?),
                (Some(true), None) => {
                    return Err(ApiError::InvalidInput {
                        field: "trailing_deviation",
                        message: "Give trailing_deviation, the percent the price may fall back from its peak."
                            .to_owned(),
                    });
                }
                _ => None,
            },
            stop_loss: self.stop_loss()?,
        };
        DcaSettings::new(input).and_then(|s| s.with_exits(exits)).map_err(|err| settings_error(&err))
    }

    /// A signal bot given no take profit (nor steps, nor trailing).
    fn holds_until_exit(&self) -> bool {
        self.kind() == BotKind::Signal
            && self.take_profit.is_none()
            && self.take_profit_steps.is_none()
            && self.trailing_enabled != Some(true)
    }

    /// `take_profit`, or the last step's profit when steps are given without it.
    fn take_profit(&self, steps: &[TakeProfitStep]) -> Result<Decimal, ApiError> {
        let given = self.take_profit.as_ref().map(|raw| decimal("take_profit", raw)).transpose()?;
        match (given, steps.last()) {
            (Some(tp), Some(last)) if tp != last.profit_percentage => Err(ApiError::InvalidInput {
                field: "take_profit",
                message: "With take_profit_steps, leave take_profit out or make it the last step's profit_percentage."
                    .to_owned(),
            }),
            (Some(tp), _) => Ok(tp),
            (None, Some(last)) => Ok(last.profit_percentage),
            (None, None) => Err(ApiError::InvalidInput {
                field: "take_profit",
                message: "Give take_profit, the percent of profit a deal closes at.".to_owned(),
            }),
        }
    }

    fn take_profit_steps(&self) -> Result<Vec<TakeProfitStep>, ApiError> {
        let bad = || ApiError::InvalidInput {
            field: "take_profit_steps",
            message: "take_profit_steps is a list of {\"amount_percentage\": \"50\", \"profit_percentage\": \"1.5\"}."
                .to_owned(),
        };
        let Some(raw) = &self.take_profit_steps else { return Ok(Vec::new()) };
        let items = raw.as_array().ok_or_else(bad)?;
        items
            .iter()
            .map(|item| {
                let object = item.as_object().filter(|o| o.len() == 2).ok_or_else(bad)?;
                let amount = object.get("amount_percentage").ok_or_else(bad)?;
                let profit = object.get("profit_percentage").ok_or_else(bad)?;
                Ok(TakeProfitStep {
                    amount_percentage: decimal("take_profit_steps", amount)?,
                    profit_percentage: decimal("take_profit_steps", profit)?,
                })
            })
            .collect()
    }

    fn stop_loss(&self) -> Result<StopLoss, ApiError> {
        let percentage = match &self.stop_loss_percentage {
            None => Decimal::ZERO,
            Some(raw) => decimal("stop_loss_percentage", raw)?,
        };
        let timeout = if self.stop_loss_timeout_enabled == Some(true) {
            match &self.stop_loss_timeout_in_seconds {
                None => 0,
                Some(raw) => count("stop_loss_timeout_in_seconds", raw)?,
            }
        } else {
            0
        };
        let kind = match &self.stop_loss_type {
            None => StopLossType::StopLoss,
            Some(raw) => StopLossType::parse(raw).map_err(|err| settings_error(&err))?,
        };
        StopLoss::new(
            percentage,
            timeout,
            self.tsl_enabled == Some(true),
            self.sl_to_breakeven_enabled == Some(true),
            kind,
        )
        .map_err(|err| settings_error(&err))
    }

    /// The checked settings the engine runs.
    ///
    /// # Errors
    /// 422 `invalid_input` naming the field.
    /// The webhook settings, checked.
    pub fn webhook(&self) -> Result<WebhookSettings, ApiError> {
        let bad_list = || ApiError::InvalidInput {
            field: "webhook_ip_allowlist",
            message: "webhook_ip_allowlist is a list of IP addresses or CIDR blocks (\"tradingview\" stands for \
                      TradingView's four addresses), at most 64."
                .to_owned(),
        };
        let ip_allowlist = match &self.webhook_ip_allowlist {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) if items.len() <= 64 => {
                let mut nets = Vec::new();
                for item in items {
                    let text = item.as_str().ok_or_else(bad_list)?.trim();
                    if text.eq_ignore_ascii_case("tradingview") {
                        nets.extend(
                            TRADINGVIEW_IPS
                                .iter()
                                .filter_map(|ip| ip.parse::<std::net::IpAddr>().ok())
                                .map(ipnet::IpNet::from),
                        );
                    } else if let Ok(net) = text.parse::<ipnet::IpNet>() {
                        nets.push(net.trunc());
                    } else {
                        nets.push(ipnet::IpNet::from(text.parse::<std::net::IpAddr>().map_err(|_| bad_list())?));
                    }
                }
                (!nets.is_empty()).then_some(nets)
            }
            Some(_) => return Err(bad_list()),
        };
        let max_lag = match &self.webhook_max_lag_seconds {
            None | Some(Value::Null) => None,
            Some(raw) => {
                let seconds = count("webhook_max_lag_seconds", raw)?;
                if !(1..=86_400).contains(&seconds) {
                    return Err(ApiError::InvalidInput {
                        field: "webhook_max_lag_seconds",
                        message: "webhook_max_lag_seconds is from 1 to 86400.".to_owned(),
                    });
                }
                Some(std::time::Duration::from_secs(u64::from(seconds)))
            }
        };
        let require_signature = match &self.webhook_require_signature {
            None | Some(Value::Null) => false,
            Some(Value::Bool(on)) => *on,
            Some(_) => {
                return Err(ApiError::InvalidInput {
                    field: "webhook_require_signature",
                    message: "webhook_require_signature is true or false.".to_owned(),
                });
            }
        };
        Ok(WebhookSettings { ip_allowlist, max_lag, require_signature })
    }

    pub fn bot_settings(&self) -> Result<BotSettings, ApiError> {
        self.webhook()?;
        let dca = self.dca()?;
        let start_order_type = match self.start_order_type.as_deref() {
            None | Some("market") => OrderKind::Market,
            Some("limit") => OrderKind::Limit,
            Some(_) => {
                return Err(ApiError::InvalidInput {
                    field: "start_order_type",
                    message: "start_order_type is market or limit.".to_owned(),
                });
            }
        };
        let seconds = |field: &'static str, raw: &Option<Value>, default: u32| match raw {
            None => Ok(default),
            Some(raw) => count(field, raw),
        };
        let cooldown_seconds = seconds("cooldown", &self.cooldown, 0)?;
        let max_active_deals = seconds("max_active_deals", &self.max_active_deals, 1)?;
        if !(1..=199).contains(&max_active_deals) {
            return Err(ApiError::InvalidInput {
                field: "max_active_deals",
                message: "max_active_deals is from 1 to 199.".to_owned(),
            });
        }
        let allowed_deals_on_same_pair = seconds("allowed_deals_on_same_pair", &self.allowed_deals_on_same_pair, 1)?;
        if !(1..=199).contains(&allowed_deals_on_same_pair) {
            return Err(ApiError::InvalidInput {
                field: "allowed_deals_on_same_pair",
                message: "allowed_deals_on_same_pair is from 1 to 199.".to_owned(),
            });
        }
        let start_condition = match (&self.strategy_list, self.kind()) {
            (_, BotKind::Signal) => StartCondition::TradingView,
            (None, BotKind::Dca) => StartCondition::Asap,
            (Some(list), BotKind::Dca) => start_condition(list)?,
        };
        Ok(BotSettings {
            dca,
            start_order_type,
            cooldown_seconds,
            max_active_deals,
            allowed_deals_on_same_pair,
            start_condition,
            take_profit_enabled: !self.holds_until_exit(),
        })
    }
}

/// `strategy_list`: one of 3Commas' start conditions this version runs.
fn start_condition(list: &Value) -> Result<StartCondition, ApiError> {
    let bad = || ApiError::InvalidInput {
        field: "strategy_list",
        message: "strategy_list is [{\"strategy\": \"nonstop\"}], [{\"strategy\": \"manual\"}] or \
                  [{\"strategy\": \"trading_view\"}]; other deal start conditions are not supported yet."
            .to_owned(),
    };
    let items = list.as_array().ok_or_else(bad)?;
    let [item] = items.as_slice() else { return Err(bad()) };
    match item.get("strategy").and_then(Value::as_str) {
        Some("nonstop") => Ok(StartCondition::Asap),
        Some("manual") => Ok(StartCondition::Manual),
        Some("trading_view") => Ok(StartCondition::TradingView),
        _ => Err(bad()),
    }
}

/// Reads a bot's stored settings (JSON written by this module).
///
/// # Errors
/// When the stored JSON is no longer valid settings.
pub fn bot_settings(stored: &str) -> Result<BotSettings, ApiError> {
    stored_fields(stored)?.bot_settings()
}

/// A bot's stored settings as fields, read once for whatever a caller needs of them (its kind,
/// webhook settings, strategy) without building the whole plan.
///
/// # Errors
/// When the stored settings do not parse (a corrupt row).
pub fn stored_fields(stored: &str) -> Result<SettingsFields, ApiError> {
    serde_json::from_str(stored).map_err(ApiError::internal)
}

fn settings_error(err: &DcaError) -> ApiError {
    let mut message = err.to_string();
    message.push('.');
    ApiError::InvalidInput { field: err.field(), message }
}

/// A Decimal from a JSON string or number; its sign is checked by the settings.
fn decimal(field: &'static str, raw: &Value) -> Result<Decimal, ApiError> {
    let bad = || ApiError::InvalidInput { field, message: format!("{field} is a number, e.g. \"1.5\".") };
    let text = decimal_text(raw).ok_or_else(bad)?;
    text.parse::<Decimal>().or_else(|_| Decimal::from_scientific(&text)).map_err(|_| bad())
}

/// A whole number of orders; anything above `u32::MAX` is kept out of range for the settings check.
fn count(field: &'static str, raw: &Value) -> Result<u32, ApiError> {
    raw.as_u64()
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        .ok_or_else(|| ApiError::InvalidInput { field, message: format!("{field} is a whole number, e.g. 5.") })
}
