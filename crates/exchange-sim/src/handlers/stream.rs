//! User data streams (USER_STREAM: the API key only, no signature): the listen-key endpoints, and
//! the WebSocket `/ws/<listenKey>` that pushes the account's events ([`crate::stream`]).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::handlers::{Reply, Request, json};
use crate::routes::error_response;
use crate::state::{Shared, SimState};
use crate::stream;

/// How often an open connection looks at the state, so that the market steps, fills and key
/// expiries due by the clock are pushed even when no request arrives.
const LOOK_EVERY: Duration = Duration::from_millis(250);

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ListenKeyReply {
    listen_key: String,
}

/// `POST /api/v3/userDataStream`.
pub(crate) fn start(state: &mut SimState, request: &Request<'_>) -> Result<Reply, ApiError> {
    let account = request.account()?;
    let listen_key = stream::open(state, account).map_err(|error| {
        tracing::error!(%error, "exchange-sim: no listen key could be made");
        ApiError::unknown()
    })?;
    json(&ListenKeyReply { listen_key })
}

/// `PUT /api/v3/userDataStream?listenKey=`.
pub(crate) fn keep_alive(state: &mut SimState, request: &Request<'_>) -> Result<Reply, ApiError> {
    let account = request.account()?;
    let listen_key = request.params.required("listenKey")?;
    stream::keep_alive(state, account, listen_key).map_err(|_| ApiError::invalid_listen_key())?;
    json(&serde_json::json!({}))
}

/// `DELETE /api/v3/userDataStream?listenKey=`.
pub(crate) fn close(state: &mut SimState, request: &Request<'_>) -> Result<Reply, ApiError> {
    let account = request.account()?;
    let listen_key = request.params.required("listenKey")?;
    stream::close(state, account, listen_key).map_err(|_| ApiError::invalid_listen_key())?;
    json(&serde_json::json!({}))
}

/// `GET /ws/<listenKey>`: upgrades to a WebSocket carrying the key's events; a key that is not
/// live is refused before the upgrade with -1125 (HTTP 400).
pub(crate) async fn connect(
    State(shared): State<Arc<Shared>>,
    Path(listen_key): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let subscribed = stream::subscribe(&mut shared.lock(), &listen_key);
    match subscribed {
        Ok(events) => upgrade.on_upgrade(move |socket| pump(shared, socket, events)),
        Err(stream::NoSuchListenKey) => error_response(&ApiError::invalid_listen_key()),
    }
}

/// Forwards the key's events until the key is closed or expires, the client leaves, the
/// connection falls too far behind, or the simulator stops.
async fn pump(shared: Arc<Shared>, mut socket: WebSocket, mut events: broadcast::Receiver<Utf8Bytes>) {
    let mut shutdown = shared.shutdown.clone();
    let stopped = async move {
        // Stopped, or the simulator is gone (the sender dropped): either way, end.
        let _ = shutdown.wait_for(|stopped| *stopped).await;
    };
    tokio::pin!(stopped);
    let mut looks = tokio::time::interval(LOOK_EVERY);
    looks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(text) => {
                    if socket.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed | RecvError::Lagged(_)) => break,
            },
            incoming = socket.recv() => match incoming {
                // Pings are answered by the WebSocket layer; nothing else from the client matters.
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            _ = looks.tick() => drop(shared.lock()),
            () = &mut stopped => break,
        }
    }
    // Best effort: the client may already be gone.
    let _ = socket.send(Message::Close(None)).await;
}
