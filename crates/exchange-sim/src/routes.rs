//! The one HTTP handler: logs the request, fires an injected fault if one matches, charges the
//! request weight, authenticates SIGNED requests, calls the endpoint and renders Binance's headers
//! and error shape.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;

use crate::auth::{check_timestamp, signed_payload};
use crate::config::is_well_formed_api_key;
use crate::endpoint::{Endpoint, Security};
use crate::error::ApiError;
use crate::faults::{Fault, LostReply};
use crate::handlers::{self, Reply, Request};
use crate::params::Params;
use crate::server::ConnInfo;
use crate::state::{RequestRecord, Shared, SimState};
use crate::weights::Budget;

const USED_WEIGHT: HeaderName = HeaderName::from_static("x-mbx-used-weight-1m");
const SAPI_USED_WEIGHT: HeaderName = HeaderName::from_static("x-sapi-used-ip-weight-1m");
const ORDER_COUNT_10S: HeaderName = HeaderName::from_static("x-mbx-order-count-10s");
const ORDER_COUNT_1D: HeaderName = HeaderName::from_static("x-mbx-order-count-1d");
const API_KEY: &str = "x-mbx-apikey";

/// The raw request, as received.
struct Incoming<'a> {
    method: &'a Method,
    path: &'a str,
    query: &'a str,
    body: &'a [u8],
    headers: &'a HeaderMap,
    conn: &'a ConnInfo,
    log_index: usize,
}

pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let query = uri.query().unwrap_or("");
    let received_at = std::time::Instant::now();
    let (log_index, fault) = {
        let mut state = shared.lock();
        let log_index = state.push_record(RequestRecord {
            method: method.to_string(),
            path: path.to_owned(),
            query: query.to_owned(),
            body: String::from_utf8_lossy(&body).into_owned(),
            api_key: headers.get(API_KEY).and_then(|value| value.to_str().ok()).map(str::to_owned),
            signed: false,
            status: None,
            received_at,
        });
        (log_index, state.faults.take_for(path))
    };
    let incoming = Incoming { method: &method, path, query, body: &body, headers: &headers, conn: &conn, log_index };

    let mut lost = None;
    match fault {
        None => {}
        Some(Fault::Latency { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Some(Fault::ServerError { .. }) => return refuse(&shared, &incoming, ApiError::unknown()),
        Some(Fault::RateLimited { retry_after_secs }) => {
            let limit = shared.lock().limits.request_weight_per_minute;
            return refuse(&shared, &incoming, ApiError::too_much_weight(limit, retry_after_secs));
        }
        Some(Fault::IpBanned { retry_after_secs }) => {
            let until = shared.lock().clock.now_ms().saturating_add(seconds_to_ms(retry_after_secs));
            return refuse(&shared, &incoming, ApiError::ip_banned(until, retry_after_secs));
        }
        Some(Fault::Timeout { .. }) => {
            shared.hang().await;
            return refuse(&shared, &incoming, ApiError::backend_timeout());
        }
        Some(Fault::LostResponse { reply, .. }) => lost = Some(reply),
    }

    let response = process(&mut shared.lock(), &incoming);
    match lost {
        None => response,
        Some(LostReply::ServiceUnavailable) => refuse(&shared, &incoming, ApiError::backend_timeout()),
        Some(LostReply::GatewayTimeout) => {
            set_status(&shared, log_index, Some(StatusCode::GATEWAY_TIMEOUT));
            plain(StatusCode::GATEWAY_TIMEOUT, Body::empty())
        }
        Some(LostReply::ConnectionDropped) => {
            set_status(&shared, log_index, None);
            conn.kill();
            response
        }
        Some(LostReply::Hang) => {
            set_status(&shared, log_index, None);
            shared.hang().await;
            refuse(&shared, &incoming, ApiError::backend_timeout())
        }
    }
}

/// Handles a request that no fault stopped: weight, authentication, endpoint.
fn process(state: &mut SimState, incoming: &Incoming<'_>) -> Response {
    let now_ms = state.clock.now_ms();
    let ip = incoming.conn.peer.ip();
    let Some(endpoint) = Endpoint::resolve(incoming.method, incoming.path) else {
        let mut response = plain(StatusCode::NOT_FOUND, Body::empty());
        add_weight_headers(&mut response, state, incoming, Budget::Api, now_ms);
        set_record_status(state, incoming.log_index, Some(StatusCode::NOT_FOUND));
        return response;
    };
    let params = Params::parse(incoming.query.as_bytes(), incoming.body);
    let weight = endpoint.weight(params.as_ref().ok());
    let (budget, limit) = match endpoint.budget() {
        Budget::Api => (Budget::Api, state.limits.request_weight_per_minute),
        Budget::Sapi => (Budget::Sapi, state.limits.sapi_weight_per_minute),
    };
    let charge = state.weights.charge(budget, ip, weight, limit, now_ms);
    let result = match charge.retry_after {
        Some(retry_after) => Err(ApiError::too_much_weight(limit, retry_after)),
        None => params.and_then(|params| {
            let account = authenticate(state, endpoint, incoming, &params, now_ms)?;
            let request = Request { params: &params, account, now_ms };
            dispatch(state, endpoint, &request)
        }),
    };
    let mut response = match result {
        Ok(reply) => {
            let mut response = json_response(StatusCode::OK, reply.body);
            if let Some(counts) = reply.order_counts {
                let headers = response.headers_mut();
                headers.insert(ORDER_COUNT_10S, HeaderValue::from(counts.ten_seconds));
                headers.insert(ORDER_COUNT_1D, HeaderValue::from(counts.day));
            }
            response
        }
        Err(error) => error_response(&error),
    };
    add_weight_headers(&mut response, state, incoming, budget, now_ms);
    set_record_status(state, incoming.log_index, Some(response.status()));
    response
}

fn dispatch(state: &mut SimState, endpoint: Endpoint, request: &Request<'_>) -> Result<Reply, ApiError> {
    use handlers::{account, market, trade};
    match endpoint {
        Endpoint::Ping => market::ping(),
        Endpoint::Time => market::time(request),
        Endpoint::ExchangeInfo => market::exchange_info(state, request),
        Endpoint::TickerPrice => market::ticker_price(state, request),
        Endpoint::Ticker24h => market::ticker_24h(state, request),
        Endpoint::Depth => market::depth(state, request),
        Endpoint::Klines => handlers::klines::klines(state, request),
        Endpoint::Account => account::account(state, request),
        Endpoint::ApiRestrictions => account::api_restrictions(state, request),
        Endpoint::QueryOrder => account::query_order(state, request),
        Endpoint::OpenOrders => account::open_orders(state, request),
        Endpoint::MyTrades => account::my_trades(state, request),
        Endpoint::NewOrder => trade::new_order(state, request),
        Endpoint::CancelOrder => trade::cancel_order(state, request),
        Endpoint::StartUserDataStream => handlers::stream::start(state, request),
        Endpoint::KeepAliveUserDataStream => handlers::stream::keep_alive(state, request),
        Endpoint::CloseUserDataStream => handlers::stream::close(state, request),
        Endpoint::SimOpenAccount => handlers::sim_admin::open_account(state, request),
        Endpoint::SimResetAccount => handlers::sim_admin::reset_account(state, request),
    }
}

/// For SIGNED endpoints: the key (-2014, -2015), the timing rule (-1021), the signature (-1022) and
/// the key's permission (-2015), in that order; USER_STREAM ones stop after the key. Returns the
/// account.
fn authenticate(
    state: &mut SimState,
    endpoint: Endpoint,
    incoming: &Incoming<'_>,
    params: &Params,
    now_ms: i64,
) -> Result<Option<usize>, ApiError> {
    let security = endpoint.security();
    if security == Security::Public {
        return Ok(None);
    }
    let api_key = incoming
        .headers
        .get(API_KEY)
        .and_then(|value| value.to_str().ok())
        .filter(|key| is_well_formed_api_key(key))
        .ok_or_else(ApiError::bad_api_key_format)?;
    let index = state.exchange.account_index(api_key).ok_or_else(ApiError::rejected_key)?;
    if state.exchange.accounts[index].revoked {
        return Err(ApiError::rejected_key());
    }
    if security == Security::ApiKeyOnly {
        return Ok(Some(index));
    }
    check_timestamp(params, now_ms)?;
    let signed = signed_payload(incoming.query, &String::from_utf8_lossy(incoming.body))?;
    let account = &state.exchange.accounts[index];
    if !account.verifier.verify(signed.payload.as_bytes(), &signed.signature) {
        return Err(ApiError::invalid_signature());
    }
    let permitted = match security {
        Security::Public | Security::AnyKey | Security::ApiKeyOnly => true,
        Security::Read => account.can_read(),
        Security::Trade => account.can_trade(),
    };
    if let Some(record) = state.record_mut(incoming.log_index) {
        record.signed = true;
    }
    if permitted { Ok(Some(index)) } else { Err(ApiError::rejected_key()) }
}

/// Answers a request a fault stopped, with the weight headers but without charging weight.
fn refuse(shared: &Shared, incoming: &Incoming<'_>, error: ApiError) -> Response {
    let mut state = shared.lock();
    let now_ms = state.clock.now_ms();
    let mut response = error_response(&error);
    let budget = Endpoint::resolve(incoming.method, incoming.path).map_or(Budget::Api, Endpoint::budget);
    add_weight_headers(&mut response, &mut state, incoming, budget, now_ms);
    set_record_status(&mut state, incoming.log_index, Some(response.status()));
    response
}

fn set_status(shared: &Shared, log_index: usize, status: Option<StatusCode>) {
    set_record_status(&mut shared.lock(), log_index, status);
}

fn set_record_status(state: &mut SimState, log_index: usize, status: Option<StatusCode>) {
    if let Some(record) = state.record_mut(log_index) {
        record.status = status.map(|status| status.as_u16());
    }
}

/// `X-MBX-USED-WEIGHT-1M` on every response, plus `X-SAPI-USED-IP-WEIGHT-1M` on SAPI ones.
fn add_weight_headers(
    response: &mut Response,
    state: &mut SimState,
    incoming: &Incoming<'_>,
    budget: Budget,
    now_ms: i64,
) {
    let ip = incoming.conn.peer.ip();
    let used = state.weights.used(Budget::Api, ip, now_ms);
    response.headers_mut().insert(USED_WEIGHT, HeaderValue::from(used));
    if budget == Budget::Sapi {
        let used = state.weights.used(Budget::Sapi, ip, now_ms);
        response.headers_mut().insert(SAPI_USED_WEIGHT, HeaderValue::from(used));
    }
}

pub(crate) fn error_response(error: &ApiError) -> Response {
    let body = serde_json::json!({ "code": error.code, "msg": error.msg }).to_string();
    let mut response = json_response(error.status, body);
    if let Some(seconds) = error.retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = plain(status, Body::from(body));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    response
}

fn plain(status: StatusCode, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

fn seconds_to_ms(seconds: u64) -> i64 {
    i64::try_from(seconds).unwrap_or(i64::MAX / 1_000).saturating_mul(1_000)
}
