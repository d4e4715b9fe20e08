//! Accounts: key, permissions, balances (free and locked per asset), orders and trades.
//!
//! Invariant: for every asset, `free >= 0` and `locked >= 0`; `locked` is the sum of the
//! `reserved` amounts of the account's open orders in that asset.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::auth::Verifier;
use crate::config::{SimAccount, SimKey, SimPermissions};
use crate::order::{SimOrder, SimTrade};
use crate::stream::Outbox;

/// Free and locked amounts of one asset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimBalance {
    /// Available to new orders.
    pub free: Decimal,
    /// Reserved by open orders.
    pub locked: Decimal,
}

/// Not enough free balance for a reservation or a spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InsufficientBalance;

#[derive(Debug)]
pub(crate) struct Account {
    pub(crate) api_key: String,
    /// The key as configured, kept for the state file.
    pub(crate) key: SimKey,
    pub(crate) verifier: Verifier,
    pub(crate) permissions: SimPermissions,
    pub(crate) revoked: bool,
    pub(crate) uid: u64,
    pub(crate) create_time: i64,
    pub(crate) update_time: i64,
    pub(crate) balances: BTreeMap<String, SimBalance>,
    /// Every order in placement order; open ones stay here until filled or cancelled.
    pub(crate) orders: Vec<SimOrder>,
    /// The indices in `orders` of the open ones, ascending, kept by the matching engine
    /// ([`Self::opened`], [`Self::closed`]) so that placing, matching and cancelling cost what the
    /// open orders cost, not the whole history (rebuilt from `orders` when the state file is loaded).
    pub(crate) open: Vec<usize>,
    pub(crate) trades: Vec<SimTrade>,
    /// User data stream events waiting for the state lock to be released (not kept).
    pub(crate) outbox: Outbox,
}

impl Account {
    pub(crate) fn new(config: &SimAccount, uid: u64, now_ms: i64) -> Self {
        let mut balances = BTreeMap::new();
        for (asset, free) in &config.balances {
            balances.entry(asset.clone()).or_insert_with(SimBalance::default).free += *free;
        }
        Self {
            api_key: config.api_key.clone(),
            key: config.key.clone(),
            verifier: Verifier::new(&config.key),
            permissions: config.permissions,
            revoked: false,
            uid,
            create_time: now_ms,
            update_time: now_ms,
            balances,
            orders: Vec::new(),
            open: Vec::new(),
            trades: Vec::new(),
            outbox: Outbox::default(),
        }
    }

    /// Rebuilds [`Self::open`] from the orders' statuses (after the orders were replaced).
    pub(crate) fn reindex_open(&mut self) {
        self.open = self.orders.iter().enumerate().filter(|(_, order)| order.is_open()).map(|(i, _)| i).collect();
    }

    /// Notes that the order at `index`, the newest, is open.
    pub(crate) fn opened(&mut self, index: usize) {
        debug_assert!(self.open.last().is_none_or(|&last| last < index));
        self.open.push(index);
    }

    /// Notes that the order at `index` is no longer open.
    pub(crate) fn closed(&mut self, index: usize) {
        if let Ok(position) = self.open.binary_search(&index) {
            self.open.remove(position);
        }
    }

    /// Moves `amount` from free to locked.
    pub(crate) fn reserve(&mut self, asset: &str, amount: Decimal) -> Result<(), InsufficientBalance> {
        let balance = self.balances.entry(asset.to_owned()).or_default();
        if balance.free < amount {
            return Err(InsufficientBalance);
        }
        balance.free -= amount;
        balance.locked += amount;
        Ok(())
    }

    /// Moves `amount` from locked back to free.
    pub(crate) fn release(&mut self, asset: &str, amount: Decimal) {
        let balance = self.balances.entry(asset.to_owned()).or_default();
        let amount = amount.min(balance.locked);
        balance.locked -= amount;
        balance.free += amount;
    }

    /// Takes `amount` out of the locked part (it leaves the account).
    pub(crate) fn spend_locked(&mut self, asset: &str, amount: Decimal) {
        let balance = self.balances.entry(asset.to_owned()).or_default();
        balance.locked -= amount.min(balance.locked);
    }

    /// Adds `amount` to the free part.
    pub(crate) fn credit(&mut self, asset: &str, amount: Decimal) {
        self.balances.entry(asset.to_owned()).or_default().free += amount;
    }

    pub(crate) fn can_read(&self) -> bool {
        !self.revoked && self.permissions.reading
    }

    pub(crate) fn can_trade(&self) -> bool {
        !self.revoked && self.permissions.spot_trading
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimConfig;

    #[test]
    fn reserving_and_releasing_keeps_the_total() {
        let config = SimConfig::default_for_tests();
        let mut account = Account::new(&config.accounts[0], 1, 0);
        account.reserve("USDT", Decimal::new(4_000, 0)).expect("enough");
        assert_eq!(
            account.balances["USDT"],
            SimBalance { free: Decimal::new(6_000, 0), locked: Decimal::new(4_000, 0) }
        );
        assert_eq!(account.reserve("USDT", Decimal::new(6_001, 0)), Err(InsufficientBalance));
        account.release("USDT", Decimal::new(1_000, 0));
        account.spend_locked("USDT", Decimal::new(3_000, 0));
        assert_eq!(account.balances["USDT"], SimBalance { free: Decimal::new(7_000, 0), locked: Decimal::ZERO });
        assert_eq!(account.reserve("DOGE", Decimal::ONE), Err(InsufficientBalance));
    }
}
