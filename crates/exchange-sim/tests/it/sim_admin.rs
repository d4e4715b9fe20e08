//! The simulator's own endpoints for a shared paper market: opening an account (public, loopback)
//! and starting one over (SIGNED by the account).

use reqwest::Method;

use crate::{Client, Signer, d, sim};

#[tokio::test]
async fn an_account_is_opened_with_a_random_key_and_started_over_only_with_its_own_signature() {
    let sim = sim().await;
    let anyone = Client::new(&sim, None, Signer::Hmac(String::new()));
    let opened = anyone.send(Method::POST, "/sim/v1/accounts", "balances=USDT:1000,BTC:0.5", "").await.unwrap();
    assert_eq!(opened.status, 200, "{}", opened.json);
    let key = opened.json["apiKey"].as_str().unwrap().to_owned();
    let secret = opened.json["secretKey"].as_str().unwrap().to_owned();
    assert_eq!((key.len(), secret.len()), (64, 64));
    let other = anyone.send(Method::POST, "/sim/v1/accounts", "balances=USDT:1", "").await.unwrap();
    assert_ne!(other.json["apiKey"], opened.json["apiKey"], "keys are random");
    assert_eq!(sim.balances(&key)["BTC"].free, d("0.5"));

    // The new key trades like any other.
    let owner = Client::new(&sim, Some(&key), Signer::Hmac(secret.clone()));
    let placed =
        owner.order(&sim, "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=20000").await;
    assert_eq!(placed.status, 200, "{}", placed.json);

    // Starting over needs the account's own signature.
    let stranger = Client::new(&sim, Some(&key), Signer::Hmac("not-the-secret".to_owned()));
    let refused = stranger.signed(&sim, Method::POST, "/sim/v1/account/reset", "balances=USDT:1000000").await;
    assert_eq!(refused.code(), -1022);
    let reset = owner.signed(&sim, Method::POST, "/sim/v1/account/reset", "balances=USDT:50").await;
    assert_eq!((reset.status, reset.json["canceledOrders"].as_i64()), (200, Some(1)), "{}", reset.json);
    let balances = sim.balances(&key);
    assert_eq!((balances["USDT"].free, balances["USDT"].locked), (d("50"), d("0")));
    assert!(!balances.contains_key("BTC"));

    for bad in ["balances=", "balances=USDT", "balances=USDT:-1", "balances=US-DT:1", "balances=USDT:1e13", ""] {
        let reply = anyone.send(Method::POST, "/sim/v1/accounts", bad, "").await.unwrap();
        assert_eq!(reply.status, 400, "{bad}: {}", reply.json);
    }
}
