//! Password hashing on a fixed set of threads.
//!
//! New hashes are argon2id with the configured (OWASP by default) parameters. Stored bcrypt
//! (`$2a$`/`$2b$`/`$2y$`, GoTrue's format) and argon2 PHC hashes verify too, and are reported
//! as needing a rehash so the caller can upgrade them after a successful sign-in.
//! Hashing never runs on the async executor: a fixed set of hashing threads
//! (`LATCHKEY_MAX_CONCURRENT_HASHES`, default one per CPU) takes jobs from a queue, so a flood
//! of sign-ins queues instead of exhausting memory or starving other requests. Each thread
//! keeps its argon2 working memory (19 MiB by default) from one hash to the next: allocating
//! it per hash made every blocking-pool thread keep a freed copy in its own malloc arena (the
//! server grew to 640 MiB under a sign-up load) and faulted the pages in on every hash. A
//! thread that finishes a hash takes the next job itself, without a trip through the async
//! runtime, so the cores do not idle between hashes.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHasher as _, RECOMMENDED_SALT_LEN, Version};
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

use super::limits::{self, MAX_BCRYPT_COST, bcrypt_cost};
use crate::config::PasswordConfig;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the hashing threads stopped")]
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Invalid,
    Valid { needs_rehash: bool },
}

/// argon2 working memory for the configured parameters (`m_cost` blocks of 1 KiB).
type Memory = Vec<Block>;

/// Work for a hashing thread, given that thread's working memory.
type Job = Box<dyn FnOnce(&mut Memory) + Send>;

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    /// The queue the hashing threads take jobs from; they stop when every `Hasher` is gone.
    jobs: mpsc::UnboundedSender<Job>,
    /// Working-memory buffers allocated so far: at most one per hashing thread.
    buffers: Arc<AtomicUsize>,
    /// A hash of a random password, verified against when the user does not exist so that the
    /// answer takes as long as for a real user.
    dummy_hash: Arc<str>,
    /// argon2id verifications run at the current parameters (see `verifications_at_current_params`).
    verified_at_current_params: Arc<AtomicU64>,
    /// Jobs sent and not yet taken by a hashing thread (see `queue_depth`).
    queued: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("params", &self.params)
            .field("buffers", &self.buffers.load(Ordering::Relaxed))
            .finish()
    }
}

impl Hasher {
    pub fn new(config: &PasswordConfig) -> Result<Hasher, HashError> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )
        .map_err(|e| HashError::Hash(e.to_string()))?;
        // Computed here with a throw-away buffer (start-up, not a request), so that an idle
        // server keeps no hashing memory.
        let dummy_password: [u8; 16] = rand::random();
        let dummy_hash = argon2id(&params)
            .hash_password(&dummy_password)
            .map_err(|e| HashError::Hash(e.to_string()))?
            .to_string();
        let buffers = Arc::new(AtomicUsize::new(0));
        let jobs = start_threads(config.max_concurrent_hashes, params.block_count(), buffers.clone())?;
        Ok(Hasher {
            params,
            jobs,
            buffers,
            dummy_hash: dummy_hash.into(),
            verified_at_current_params: Arc::default(),
            queued: Arc::default(),
        })
    }

    /// Hashes and verifications waiting for a hashing thread: above zero, sign-ins are queueing
    /// for CPU (`LATCHKEY_MAX_CONCURRENT_HASHES`).
    pub fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let params = self.params.clone();
        let password = password.to_owned();
        self.run(move |memory| hash_with_memory(&params, memory, password.as_bytes()))
            .await?
    }

    /// Checks `password` against `stored`; `None` (unknown user, or a user without a password)
    /// is checked against the dummy hash and is always `Invalid`.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<Verification, HashError> {
        let (stored, real) = match stored {
            Some(hash) if !hash.is_empty() => (hash.to_owned(), true),
            _ => (self.dummy_hash.to_string(), false),
        };
        let password = password.to_owned();
        let params = self.params.clone();
        let counter = self.verified_at_current_params.clone();
        let verification = self
            .run(move |memory| verify_blocking(&params, memory, &password, &stored, &counter))
            .await?;
        Ok(if real { verification } else { Verification::Invalid })
    }

    /// How many argon2id verifications at the current parameters this hasher (and its clones)
    /// has run. The tests read it to check, without timing anything, that a sign-in for an
    /// unknown email costs exactly what a wrong password for a real user costs.
    pub fn verifications_at_current_params(&self) -> u64 {
        self.verified_at_current_params.load(Ordering::Relaxed)
    }

    /// Runs `work` on a hashing thread, with that thread's working memory.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (reply, answer) = oneshot::channel();
        let queued = self.queued.clone();
        queued.fetch_add(1, Ordering::Relaxed);
        let job: Job = Box::new(move |memory| {
            queued.fetch_sub(1, Ordering::Relaxed);
            // A request that went away while queued (timeout, disconnect) needs no hash.
            if !reply.is_closed() {
                let _ = reply.send(work(memory));
            }
        });
        if self.jobs.send(job).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(HashError::Stopped);
        }
        answer.await.map_err(|_| HashError::Stopped)
    }
}

/// Starts `threads` hashing threads that take jobs from one queue; each allocates its working
/// memory (`blocks` KiB) on its first job and keeps it.
fn start_threads(
    threads: usize,
    blocks: usize,
    buffers: Arc<AtomicUsize>,
) -> Result<mpsc::UnboundedSender<Job>, HashError> {
    let (sender, receiver) = mpsc::unbounded_channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    for i in 0..threads.max(1) {
        let receiver = receiver.clone();
        let buffers = buffers.clone();
        std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                let mut memory = Memory::new();
                loop {
                    // One idle thread waits on the queue, the others on the lock.
                    let job = receiver.lock().unwrap_or_else(PoisonError::into_inner).blocking_recv();
                    let Some(job) = job else {
                        return;
                    };
                    if memory.is_empty() {
                        memory = vec![Block::new(); blocks];
                        buffers.fetch_add(1, Ordering::Relaxed);
                    }
                    job(&mut memory);
                }
            })
            .map_err(|e| HashError::Hash(format!("starting a hashing thread: {e}")))?;
    }
    Ok(sender)
}

fn argon2id(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

/// `argon2id(params).hash_password(password)`, computed in `memory`: the same PHC string
/// (random 16-byte salt, the parameters' output length).
fn hash_with_memory(params: &Params, memory: &mut Memory, password: &[u8]) -> Result<String, HashError> {
    let error = |e: &dyn std::fmt::Display| HashError::Hash(e.to_string());
    let salt: [u8; RECOMMENDED_SALT_LEN] = rand::random();
    let mut output = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    argon2id(params)
        .hash_password_into_with_memory(password, &salt, &mut output, memory.as_mut_slice())
        .map_err(|e| error(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| error(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| error(&e))?),
        hash: Some(Output::new(&output).map_err(|e| error(&e))?),
    };
    Ok(hash.to_string())
}

fn verify_blocking(
    current: &Params,
    memory: &mut Memory,
    password: &str,
    stored: &str,
    verified_at_current: &AtomicU64,
) -> Verification {
    if stored.starts_with("$2") {
        // Only a hash put there by SQL can be this expensive (imports are checked): treat it
        // as not matching rather than let sign-in attempts burn a hashing thread on it.
        if let Some(cost) = bcrypt_cost(stored).filter(|cost| *cost > MAX_BCRYPT_COST) {
            tracing::warn!(
                cost,
                max = MAX_BCRYPT_COST,
                "a stored bcrypt hash is too expensive to verify; set a new password for its user"
            );
            return Verification::Invalid;
        }
        // bcrypt reads only the first 72 bytes of `password` (see `limits`).
        return match bcrypt::verify(password, stored) {
            Ok(true) => Verification::Valid { needs_rehash: true },
            _ => Verification::Invalid,
        };
    }
    let Ok(hash) = PasswordHash::new(stored) else {
        return Verification::Invalid;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return Verification::Invalid;
    };
    if !limits::argon2_params_allowed(&params) {
        return Verification::Invalid;
    }
    let algorithm = hash.algorithm.as_str();
    if !matches!(algorithm, "argon2id" | "argon2i" | "argon2d") {
        return Verification::Invalid;
    }
    // Algorithm, version and parameters come from the stored hash itself (no version means
    // 0x13, as in the argon2 crate's verifier).
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return Verification::Invalid,
    };
    let Ok(alg) = Algorithm::new(algorithm) else {
        return Verification::Invalid;
    };
    let up_to_date = algorithm == "argon2id"
        && hash.version == Some(0x13)
        && params.m_cost() == current.m_cost()
        && params.t_cost() == current.t_cost()
        && params.p_cost() == current.p_cost();
    if up_to_date {
        verified_at_current.fetch_add(1, Ordering::Relaxed);
    }
    if !recompute_matches(&Argon2::new(alg, version, params.clone()), memory, password, &hash) {
        return Verification::Invalid;
    }
    Verification::Valid {
        needs_rehash: !up_to_date,
    }
}

/// Hashes `password` with the stored hash's salt and compares, in constant time, with its
/// output. Uses the pooled `memory` when it is large enough (hashes at the current parameters)
/// and a temporary buffer otherwise (imported hashes, bounded by `MAX_IMPORTED_M_COST`).
fn recompute_matches(argon2: &Argon2<'_>, memory: &mut Memory, password: &str, hash: &PasswordHash) -> bool {
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let mut output = vec![0u8; expected.len()];
    let needed = argon2.params().block_count();
    let mut temporary;
    let blocks = if memory.len() >= needed {
        memory.as_mut_slice()
    } else {
        temporary = vec![Block::new(); needed];
        temporary.as_mut_slice()
    };
    argon2
        .hash_password_into_with_memory(password.as_bytes(), salt.as_ref(), &mut output, blocks)
        .is_ok()
        && bool::from(output.as_slice().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests;
