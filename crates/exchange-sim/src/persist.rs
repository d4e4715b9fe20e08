//! The state file (`SimConfig::state_file`, `--state`): accounts with their balances, orders and
//! trades, each symbol's price, statistics, candles, id counters and price-path position, the
//! clock's offset and the id generator, as JSON.
//!
//! It is written atomically (a temporary file beside it, flushed to disk, then renamed over it),
//! readable by its owner only, because it holds the accounts' HMAC secrets.
//!
//! On load the file wins for what changes while the simulator runs (balances, orders, trades,
//! prices, ids, revocations, the clock), the configuration for what an operator sets (keys,
//! permissions, symbol rules, price paths). Accounts only in the file come back as they were;
//! accounts only in the configuration start fresh; symbols only in the file are dropped. Request
//! weights and order counts are not kept (their windows are a minute and a day).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write as _};
use std::path::Path;

use base64::Engine as _;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::account::{Account, SimBalance};
use crate::candles::CandleHistory;
use crate::config::{SimAccount, SimKey, SimPermissions};
use crate::market::DayStats;
use crate::order::{SimOrder, SimTrade};
use crate::pricepath::SavedPath;
use crate::rng::SplitMix64;
use crate::state::SimState;

/// The version of the file's layout; a file of another version is refused.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
pub(crate) struct SavedState {
    format: u32,
    saved_at_ms: i64,
    clock_frozen_at_ms: Option<i64>,
    clock_offset_ms: i64,
    id_generator: u64,
    accounts: Vec<SavedAccount>,
    symbols: Vec<SavedSymbol>,
}

#[derive(Serialize, Deserialize)]
struct SavedAccount {
    api_key: String,
    key: SavedKey,
    permissions: SimPermissions,
    revoked: bool,
    uid: u64,
    create_time: i64,
    update_time: i64,
    balances: BTreeMap<String, SimBalance>,
    orders: Vec<SimOrder>,
    trades: Vec<SimTrade>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum SavedKey {
    Hmac { secret: String },
    Ed25519 { public_key_base64: String },
}

#[derive(Serialize, Deserialize)]
struct SavedSymbol {
    symbol: String,
    price: Decimal,
    stats: DayStats,
    update_id: u64,
    next_order_id: u64,
    next_trade_id: u64,
    path: SavedPath,
    candles: CandleHistory,
}

impl SavedState {
    /// A copy of everything the file keeps.
    pub(crate) fn of(state: &SimState, now_ms: i64) -> Self {
        let (clock_frozen_at_ms, clock_offset_ms) = state.clock.parts();
        let exchange = &state.exchange;
        Self {
            format: FORMAT,
            saved_at_ms: now_ms,
            clock_frozen_at_ms,
            clock_offset_ms,
            id_generator: exchange.rng.state(),
            accounts: exchange
                .accounts
                .iter()
                .map(|account| SavedAccount {
                    api_key: account.api_key.clone(),
                    key: match &account.key {
                        SimKey::Hmac { secret } => SavedKey::Hmac { secret: secret.clone() },
                        SimKey::Ed25519 { public_key } => SavedKey::Ed25519 {
                            public_key_base64: base64::engine::general_purpose::STANDARD.encode(public_key),
                        },
                    },
                    permissions: account.permissions,
                    revoked: account.revoked,
                    uid: account.uid,
                    create_time: account.create_time,
                    update_time: account.update_time,
                    balances: account.balances.clone(),
                    orders: account.orders.clone(),
                    trades: account.trades.clone(),
                })
                .collect(),
            symbols: exchange
                .symbols
                .values()
                .map(|symbol| SavedSymbol {
                    symbol: symbol.rules.symbol.clone(),
                    price: symbol.price,
                    stats: symbol.stats.clone(),
                    update_id: symbol.update_id,
                    next_order_id: symbol.next_order_id,
                    next_trade_id: symbol.next_trade_id,
                    path: symbol.path.save(),
                    candles: symbol.candles.clone(),
                })
                .collect(),
        }
    }

    /// Puts the saved state into `state` (freshly built from the configuration); see the module's
    /// notes for what wins.
    pub(crate) fn restore_into(self, state: &mut SimState) -> io::Result<()> {
        if self.format != FORMAT {
            return Err(invalid(format!("state file format {} (this simulator reads {FORMAT})", self.format)));
        }
        state.clock.restore(self.clock_frozen_at_ms, self.clock_offset_ms);
        let now_ms = state.clock.now_ms();
        let exchange = &mut state.exchange;
        exchange.rng = SplitMix64::new(self.id_generator);
        let configured = exchange.accounts.len();
        let mut restored = vec![false; configured];
        for saved in self.accounts {
            let index = match exchange.account_index(&saved.api_key) {
                Some(index) => index,
                None => {
                    let key = match saved.key {
                        SavedKey::Hmac { secret } => SimKey::Hmac { secret },
                        SavedKey::Ed25519 { public_key_base64 } => SimKey::Ed25519 {
                            public_key: base64::engine::general_purpose::STANDARD
                                .decode(public_key_base64)
                                .map_err(|_| invalid("an Ed25519 key in the state file is not base64".to_owned()))?,
                        },
                    };
                    let config = SimAccount {
                        api_key: saved.api_key.clone(),
                        key,
                        permissions: saved.permissions,
                        balances: Vec::new(),
                    };
                    exchange.accounts.push(Account::new(&config, saved.uid, saved.create_time));
                    exchange.accounts.len() - 1
                }
            };
            if let Some(flag) = restored.get_mut(index) {
                *flag = true;
            }
            let account = &mut exchange.accounts[index];
            account.revoked = saved.revoked;
            account.uid = saved.uid;
            account.create_time = saved.create_time;
            account.update_time = saved.update_time;
            account.balances = saved.balances;
            account.orders = saved.orders;
            account.reindex_open();
            account.trades = saved.trades;
        }
        // Fresh accounts get uids after every restored one.
        let mut next_uid = exchange.accounts.iter().map(|account| account.uid).max().unwrap_or(0);
        for (account, _) in exchange.accounts.iter_mut().zip(&restored).filter(|(_, restored)| !**restored) {
            next_uid += 1;
            account.uid = next_uid;
        }
        for saved in self.symbols {
            let Some(symbol) = exchange.symbols.get_mut(&saved.symbol) else { continue };
            symbol.price = saved.price;
            symbol.stats = saved.stats;
            symbol.update_id = saved.update_id;
            symbol.next_order_id = saved.next_order_id;
            symbol.next_trade_id = saved.next_trade_id;
            symbol.candles = saved.candles;
            symbol.path.resume(&saved.path, now_ms);
        }
        Ok(())
    }

    /// Reads the state file; `None` when there is none yet.
    ///
    /// # Errors
    ///
    /// The read error, or `InvalidData` for a file that is not a state file.
    pub(crate) fn load(path: &Path) -> io::Result<Option<Self>> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| invalid(format!("{} is not a readable state file: {error}", path.display())))
    }

    /// Writes the state file atomically.
    ///
    /// # Errors
    ///
    /// The first IO error; the previous file is then left as it was.
    pub(crate) fn write(&self, path: &Path) -> io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(io::Error::other)?;
        write_atomically(path, &bytes)
    }
}

/// Writes `bytes` to a temporary file beside `path` (owner-only), flushes it to disk and renames
/// it over `path`, so a reader (or a crash) sees the old file or the new one, never a mix.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = std::path::PathBuf::from(temporary);
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temporary, path)?;
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        // The rename itself reaches the disk with the directory.
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("state.json");
        write_atomically(&path, b"first").expect("written");
        write_atomically(&path, b"second").expect("written");
        assert_eq!(fs::read(&path).expect("readable"), b"second");
        let names: Vec<_> =
            fs::read_dir(dir.path()).expect("listable").map(|entry| entry.expect("entry").file_name()).collect();
        assert_eq!(names, ["state.json"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the file holds secrets");
        }
    }

    #[test]
    fn a_missing_file_is_no_state_and_a_foreign_one_is_refused() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        assert!(SavedState::load(&dir.path().join("none.json")).expect("no error").is_none());
        let path = dir.path().join("bad.json");
        fs::write(&path, b"{\"not\": \"a state\"}").expect("written");
        let error = SavedState::load(&path).err().expect("refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
