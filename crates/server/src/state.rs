//! Shared state of the HTTP layer and the small services handlers share: ids, audit rows, mail.

use std::sync::Arc;

use auth::Random;
use domain::{AuditId, Clock, Timestamp, UserId};
use mail::{Mailer, OutgoingMail};
use serde_json::Value;
use store::{AuditRecord, Store};

use crate::config::ServerConfig;
use crate::extract::ClientInfo;
use crate::hashing::HashPool;
use crate::live_vault::LiveVault;

/// What the composition root hands the server.
#[derive(Debug, Clone)]
pub struct AppDeps {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    /// Seals secrets at rest (TOTP seeds); sealed when the node has no usable root key. Its ring
    /// follows key rotations (`LiveVault::run_refresh`, started by `serve`).
    pub vault: Arc<LiveVault>,
    /// The exchanges API keys can be connected to (the binary names the adapters).
    pub venues: Arc<dyn exchange::Venues>,
    /// The paper market in which paper accounts are opened (its venue is one of `venues`).
    pub paper: Option<Arc<dyn exchange::PaperMarket>>,
}

#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub config: ServerConfig,
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub vault: Arc<LiveVault>,
    pub venues: Arc<dyn exchange::Venues>,
    pub paper: Option<Arc<dyn exchange::PaperMarket>>,
    pub hashes: HashPool,
    pub runner: crate::runner::Runner,
    pub webhook_limits: crate::webhooks::Limits,
    pub webhook_recorder: crate::webhooks::Recorder,
    pub in_flight: crate::middleware::InFlight,
    pub request_rates: crate::rate::RequestRates,
    /// What `GET /metrics` reports (`metrics.rs`); the edge counts connections into it too.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// # Errors
    /// When the configured Argon2 parameters are invalid.
    pub fn new(config: ServerConfig, deps: AppDeps) -> Result<AppState, auth::PasswordError> {
        let hasher = auth::PasswordHasher::new(config.hash_params)?;
        let hashes = HashPool::new(hasher, config.hash_concurrency, config.hash_queue)?;
        let runner = crate::runner::Runner::new(config.node_id.clone());
        let webhook_limits = crate::webhooks::Limits::new(&config.webhooks);
        let in_flight = crate::middleware::InFlight::new(&config);
        let request_rates = crate::rate::RequestRates::new(&config.request_rates);
        Ok(AppState(Arc::new(Inner {
            config,
            store: deps.store,
            mailer: deps.mailer,
            clock: deps.clock,
            random: deps.random,
            vault: deps.vault,
            venues: deps.venues,
            paper: deps.paper,
            runner,
            hashes,
            webhook_limits,
            webhook_recorder: crate::webhooks::Recorder::default(),
            in_flight,
            request_rates,
            metrics: Arc::new(crate::metrics::Metrics::new()),
        })))
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn random_16(&self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        self.random.fill(&mut bytes);
        bytes
    }

    /// An audit row for `kind`, stamped now, from this client.
    pub fn audit(&self, user: Option<UserId>, kind: &str, client: &ClientInfo, detail: Value) -> AuditRecord {
        AuditRecord {
            id: AuditId::from_random_bytes(self.random_16()),
            user_id: user,
            at: self.now(),
            kind: kind.to_owned(),
            ip: client.ip.to_string(),
            user_agent: client.user_agent.clone(),
            detail: detail.to_string(),
        }
    }

    /// Sends a mail to an account holder: the same as [`AppState::send_mail`], with the user's
    /// anti-phishing code at the top when they set one (AU-9).
    pub fn send_user_mail(&self, user: &store::UserRecord, mut mail: OutgoingMail) {
        if let Some(code) = &user.anti_phishing_code {
            mail.text = format!("Your anti-phishing code: {code}\n\n{}", mail.text);
        }
        self.send_mail(mail);
    }

    /// Sends a mail in the background: the answer to the request never waits for (or reveals,
    /// through its timing) the mail server. A failure is logged without the body.
    pub fn send_mail(&self, mail: OutgoingMail) {
        let mailer = self.mailer.clone();
        tokio::spawn(async move {
            if let Err(err) = mailer.send(&mail).await {
                tracing::error!(error = %err, subject = %mail.subject, "sending mail failed");
            }
        });
    }
}
