//! Password hashing off the async workers, bounded.
//!
//! Argon2id at 19 MiB takes tens of milliseconds of one core by design. Each computation runs on
//! tokio's blocking pool, at most `hash_concurrency` at a time, and at most `hash_queue` more may
//! wait; past that a request is refused at once with 429. A login flood therefore costs a bounded
//! amount of CPU and memory and never occupies the workers that serve everything else.

use std::sync::Arc;
use std::time::Duration;

use auth::{OsRandom, Password, PasswordHash, PasswordHasher, Verification};
use tokio::sync::Semaphore;

use crate::ApiError;

#[derive(Debug, Clone)]
pub struct HashPool {
    hasher: Arc<PasswordHasher>,
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    /// A hash of a random password, verified against when an email is unknown so that the answer
    /// takes as long as for a real account (AU-4).
    decoy: Arc<PasswordHash>,
}

impl HashPool {
    /// # Errors
    /// When the Argon2 parameters are invalid.
    pub fn new(hasher: PasswordHasher, concurrency: usize, queue: usize) -> Result<HashPool, auth::PasswordError> {
        let mut decoy_bytes = [0u8; 24];
        auth::Random::fill(&OsRandom, &mut decoy_bytes);
        let decoy_password = Password::new(&decoy_bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let decoy = hasher.hash(&decoy_password, &OsRandom)?;
        let concurrency = concurrency.max(1);
        Ok(HashPool {
            hasher: Arc::new(hasher),
            running: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(concurrency + queue)),
            decoy: Arc::new(decoy),
        })
    }

    async fn run<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&PasswordHasher) -> T + Send + 'static,
    {
        let Ok(_admitted) = self.admitted.clone().try_acquire_owned() else {
            return Err(ApiError::RateLimited(Duration::from_secs(1)));
        };
        let _running = self.running.clone().acquire_owned().await.map_err(ApiError::internal)?;
        let hasher = self.hasher.clone();
        tokio::task::spawn_blocking(move || work(&hasher)).await.map_err(ApiError::internal)
    }

    pub async fn hash(&self, password: Password) -> Result<PasswordHash, ApiError> {
        self.run(move |hasher| hasher.hash(&password, &OsRandom)).await?.map_err(ApiError::internal)
    }

    pub async fn verify(&self, password: Password, stored: PasswordHash) -> Result<Verification, ApiError> {
        self.run(move |hasher| hasher.verify(&password, &stored)).await
    }

    /// Hashes several secrets in one job (a new set of backup codes).
    pub async fn hash_many(&self, secrets: Vec<Password>) -> Result<Vec<PasswordHash>, ApiError> {
        self.run(move |hasher| secrets.iter().map(|s| hasher.hash(s, &OsRandom)).collect::<Result<Vec<_>, _>>())
            .await?
            .map_err(ApiError::internal)
    }

    /// The id of the first stored backup code that `secret` matches, checked in one job.
    pub async fn find_match(
        &self,
        secret: Password,
        stored: Vec<store::BackupCodeRecord>,
    ) -> Result<Option<domain::BackupCodeId>, ApiError> {
        self.run(move |hasher| {
            stored.into_iter().find_map(|record| {
                let hash = PasswordHash::from_phc(record.phc);
                matches!(hasher.verify(&secret, &hash), Verification::Valid { .. }).then_some(record.id)
            })
        })
        .await
    }

    /// Spends the time of one verification and reports failure.
    pub async fn verify_decoy(&self, password: Password) -> Result<Verification, ApiError> {
        let decoy = (*self.decoy).clone();
        self.run(move |hasher| {
            let _ = hasher.verify(&password, &decoy);
            Verification::Invalid
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(concurrency: usize, queue: usize) -> HashPool {
        let hasher = PasswordHasher::new(auth::HashParams { memory_kib: 64, iterations: 1, parallelism: 1 }).unwrap();
        HashPool::new(hasher, concurrency, queue).unwrap()
    }

    // B7's premise: when every slot and queue place is taken, the next request is refused at once
    // instead of piling up. A job that blocks until told to finish holds the one slot.
    #[tokio::test]
    async fn a_full_pool_refuses_at_once() {
        let pool = pool(1, 0);
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let holder = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move |_| wait.recv().is_ok()).await })
        };
        // Wait until the holder owns the slot.
        while pool.admitted.available_permits() != 0 {
            tokio::task::yield_now().await;
        }
        let refused = pool.verify_decoy(Password::new("x")).await;
        assert!(matches!(refused, Err(ApiError::RateLimited(_))), "{refused:?}");
        release.send(()).unwrap();
        assert!(holder.await.unwrap().unwrap());
        assert_eq!(pool.verify_decoy(Password::new("x")).await.unwrap(), Verification::Invalid, "free again");
    }

    #[tokio::test]
    async fn hashes_verify_through_the_pool() {
        let pool = pool(2, 2);
        let hash = pool.hash(Password::new("violet kettle thunder 42")).await.unwrap();
        let ok = pool.verify(Password::new("violet kettle thunder 42"), hash.clone()).await.unwrap();
        assert!(matches!(ok, Verification::Valid { .. }));
        assert_eq!(pool.verify(Password::new("nope"), hash).await.unwrap(), Verification::Invalid);
    }
}
