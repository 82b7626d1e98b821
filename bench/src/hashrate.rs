//! The physical limit for password sign-in and sign-up: raw argon2id hashes per second at the
//! server's parameters, on as many threads as the load can keep busy (one per client, at most
//! one per core), each reusing its working memory (the fastest way to hash; allocating it per
//! hash costs page faults on every hash).

use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::server::Argon2Params;

pub fn hashes_per_second(params: Argon2Params, threads: usize, duration: Duration) -> anyhow::Result<f64> {
    let params = Params::new(params.m_kib, params.t, params.p, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let params = params.clone();
            std::thread::spawn(move || {
                let mut memory = vec![Block::new(); params.block_count()];
                let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                let salt: [u8; 16] = *b"bench-salt-16byt";
                let mut output = [0u8; 32];
                let mut done = 0u64;
                while Instant::now() < deadline {
                    if argon2
                        .hash_password_into_with_memory(b"bench-password-123", &salt, &mut output, &mut memory)
                        .is_ok()
                    {
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.join().map_err(|_| anyhow::anyhow!("hashing thread panicked"))?;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}
