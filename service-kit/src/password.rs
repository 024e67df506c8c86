//! Passwords (station Basic auth, booking logins), stored as argon2id PHC strings, hashed and
//! verified by a bounded pool.
//!
//! Why bounded: one argon2 computation holds its whole memory cost (19 MiB with the defaults)
//! for its duration, and both services run it before anyone is authenticated. Unbounded, 500
//! concurrent wrong passwords took a service to 4.7 GB. Here at most `workers` computations run
//! at once (by default one per core) and at most `queue` more wait; a request beyond that gets
//! [`Busy`] at once, which the caller answers with 429/503 and `Retry-After`. The worst case is
//! then `workers x memory` and a wait of `queue / workers` computations, whatever the load.
//!
//! Parameters apply to new hashes; a stored hash carries its own parameters in its PHC string
//! and keeps verifying with them after they change.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Argon2id cost and pool size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordConfig {
    /// Memory cost of a new hash, KiB (argon2 `m`; default 19456 = 19 MiB, OWASP's minimum).
    pub memory_kib: u32,
    /// Passes over the memory (argon2 `t`; default 2).
    pub iterations: u32,
    /// Lanes (argon2 `p`; default 1).
    pub parallelism: u32,
    /// Computations running at once (default: the machine's available parallelism).
    pub workers: Option<usize>,
    /// Computations waiting beyond those before [`Busy`] is answered (default 4 per worker).
    pub queue: Option<usize>,
}

impl Default for PasswordConfig {
    fn default() -> PasswordConfig {
        PasswordConfig {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
            workers: None,
            queue: None,
        }
    }
}

/// Every worker and queue place is taken: answer 429/503 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password verification is at capacity; retry shortly")]
pub struct Busy;

/// Why a hash could not be made.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The pool is full.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// Argon2 refused (it does not, for passwords within our length limits).
    #[error("hashing a password: {0}")]
    Failed(String),
}

/// The bounded argon2id pool; one per service, shared by every request.
#[derive(Debug)]
pub struct Passwords {
    argon2: Argon2<'static>,
    /// Places in the pool (running + waiting); taken without waiting.
    admission: Arc<Semaphore>,
    /// Running computations; waited for by admitted requests.
    running: Arc<Semaphore>,
    workers: usize,
    capacity: usize,
    verified: AtomicU64,
}

/// A place in the pool, taken before any slow work; dropping it gives the place back.
#[derive(Debug)]
pub struct Admission(#[allow(dead_code)] OwnedSemaphorePermit);

impl Passwords {
    /// A pool with these parameters; invalid argon2 parameters are an error at start-up.
    pub fn new(config: &PasswordConfig) -> anyhow::Result<Passwords> {
        let params = Params::new(config.memory_kib, config.iterations, config.parallelism, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters (memory KiB, iterations, parallelism): {e}"))?;
        let workers = config
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
            .max(1);
        let capacity = workers + config.queue.unwrap_or(4 * workers);
        Ok(Passwords {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            admission: Arc::new(Semaphore::new(capacity)),
            running: Arc::new(Semaphore::new(workers)),
            workers,
            capacity,
            verified: AtomicU64::new(0),
        })
    }

    /// Computations that may run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Running plus waiting computations before [`Busy`].
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Passwords checked so far (a test and metric hook: how many slow checks a flood caused).
    pub fn verified(&self) -> u64 {
        self.verified.load(Ordering::Relaxed)
    }

    /// Takes a place in the pool, or [`Busy`] at once.
    pub fn admit(&self) -> Result<Admission, Busy> {
        self.admission
            .clone()
            .try_acquire_owned()
            .map(Admission)
            .map_err(|_| Busy)
    }

    /// Runs `work` on a blocking thread once a worker is free.
    async fn run<T: Send + 'static>(
        &self,
        admission: Admission,
        work: impl FnOnce(&Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        // The semaphore is never closed; an error would mean it was, and then nothing runs.
        let running = self.running.clone().acquire_owned().await.map_err(|_| Busy)?;
        let argon2 = self.argon2.clone();
        tokio::task::spawn_blocking(move || {
            let out = work(&argon2);
            drop((running, admission));
            out
        })
        .await
        .map_err(|_| Busy)
    }

    /// Hashes a password with argon2id, the configured parameters and a random salt.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let admission = self.admit()?;
        self.run(admission, move |argon2| {
            let salt = SaltString::generate(&mut OsRng);
            argon2
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| HashError::Failed(e.to_string()))
        })
        .await?
    }

    /// Checks a password against a stored hash (with the hash's own parameters); a malformed
    /// hash never verifies. [`Busy`] when the pool is full: nothing was checked.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, Busy> {
        let admission = self.admit()?;
        self.verify_admitted(admission, password, phc).await
    }

    /// [`Passwords::verify`] with a place taken before (so a caller can reserve, then look up).
    pub async fn verify_admitted(&self, admission: Admission, password: String, phc: String) -> Result<bool, Busy> {
        self.verified.fetch_add(1, Ordering::Relaxed);
        self.run(admission, move |argon2| {
            PasswordHash::new(&phc)
                .map(|parsed| argon2.verify_password(password.as_bytes(), &parsed).is_ok())
                .unwrap_or(false)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap(workers: usize, queue: usize) -> Passwords {
        Passwords::new(&PasswordConfig {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            workers: Some(workers),
            queue: Some(queue),
        })
        .expect("pool")
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let p = cheap(1, 1);
        let h = p.hash("s3cret-pass".into()).await.expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{h}");
        assert_eq!(p.verify("s3cret-pass".into(), h.clone()).await, Ok(true));
        assert_eq!(p.verify("wrong".into(), h).await, Ok(false));
        assert_eq!(p.verify("x".into(), "not a hash".into()).await, Ok(false));
        assert_eq!(p.verified(), 3);
    }

    #[tokio::test]
    async fn a_hash_made_with_other_parameters_still_verifies() {
        let old = Passwords::new(&PasswordConfig::default()).expect("pool");
        let h = old.hash("s3cret-pass".into()).await.expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(cheap(1, 0).verify("s3cret-pass".into(), h).await, Ok(true));
    }

    #[tokio::test]
    async fn a_full_pool_answers_busy_at_once_and_checks_nothing() {
        let p = cheap(2, 1);
        assert_eq!(p.capacity(), 3);
        let held: Vec<Admission> = (0..3).map(|_| p.admit().expect("place")).collect();
        assert_eq!(p.verify("pw".into(), "x".into()).await, Err(Busy));
        assert!(matches!(p.hash("pw".into()).await, Err(HashError::Busy(Busy))));
        assert_eq!(p.verified(), 0);
        drop(held);
        assert_eq!(p.verify("pw".into(), "x".into()).await, Ok(false));
    }

    #[test]
    fn invalid_parameters_are_refused() {
        let config = PasswordConfig {
            memory_kib: 1,
            ..PasswordConfig::default()
        };
        assert!(Passwords::new(&config).is_err());
    }
}
