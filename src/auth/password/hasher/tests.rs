//! The hashing threads: argon2id hashes, imported hashes, bounded working memory.

use super::*;

fn config() -> PasswordConfig {
    PasswordConfig {
        min_length: 6,
        required_characters: vec![],
        // Small parameters keep the unit tests fast; production uses the OWASP ones.
        argon2_memory_kib: 64,
        argon2_iterations: 1,
        argon2_parallelism: 1,
        max_concurrent_hashes: 2,
    }
}

#[tokio::test]
async fn hashes_are_argon2id_and_verify() {
    let hasher = Hasher::new(&config()).unwrap();
    let hash = hasher.hash("correct horse").await.unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
    assert_eq!(
        hasher.verify("correct horse", Some(&hash)).await.unwrap(),
        Verification::Valid { needs_rehash: false }
    );
    assert_eq!(
        hasher.verify("wrong", Some(&hash)).await.unwrap(),
        Verification::Invalid
    );
}

#[tokio::test]
async fn pooled_hashes_are_those_of_the_argon2_crate() {
    use argon2::PasswordVerifier as _;
    let hasher = Hasher::new(&config()).unwrap();
    let ours = hasher.hash("correct horse").await.unwrap();
    let parsed = PasswordHash::new(&ours).unwrap();
    assert_eq!(parsed.salt.unwrap().as_ref().len(), RECOMMENDED_SALT_LEN);
    assert_eq!(parsed.hash.unwrap().len(), Params::DEFAULT_OUTPUT_LEN);
    assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
    assert!(Argon2::default().verify_password(b"wrong", &parsed).is_err());
    let theirs = argon2id(&hasher.params)
        .hash_password(b"correct horse")
        .unwrap()
        .to_string();
    assert_eq!(
        hasher.verify("correct horse", Some(&theirs)).await.unwrap(),
        Verification::Valid { needs_rehash: false }
    );
}

#[tokio::test]
async fn working_memory_is_one_buffer_per_hashing_thread() {
    let hasher = Hasher::new(&config()).unwrap();
    let hashes: Vec<_> = (0..8)
        .map(|i| {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.hash(&format!("password-{i}")).await })
        })
        .collect();
    for hash in hashes {
        hash.await.unwrap().unwrap();
    }
    let buffers = hasher.buffers.load(Ordering::Relaxed);
    assert!((1..=2).contains(&buffers), "{buffers} buffers for 2 hashing threads");
}

#[tokio::test]
async fn unknown_users_never_verify() {
    let hasher = Hasher::new(&config()).unwrap();
    assert_eq!(hasher.verify("anything", None).await.unwrap(), Verification::Invalid);
    assert_eq!(hasher.verify("", Some("")).await.unwrap(), Verification::Invalid);
}

#[tokio::test]
async fn gotrue_bcrypt_hashes_verify_and_ask_for_rehash() {
    let hasher = Hasher::new(&config()).unwrap();
    let go_style = bcrypt::hash_with_result("secret123", 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA);
    assert!(go_style.starts_with("$2a$"));
    assert_eq!(
        hasher.verify("secret123", Some(&go_style)).await.unwrap(),
        Verification::Valid { needs_rehash: true }
    );
    assert_eq!(
        hasher.verify("nope", Some(&go_style)).await.unwrap(),
        Verification::Invalid
    );
}

#[tokio::test]
async fn argon2_hashes_with_other_parameters_ask_for_rehash() {
    let hasher = Hasher::new(&config()).unwrap();
    let old = argon2id(&Params::new(32, 2, 1, None).unwrap())
        .hash_password(b"pw-123456")
        .unwrap()
        .to_string();
    assert_eq!(
        hasher.verify("pw-123456", Some(&old)).await.unwrap(),
        Verification::Valid { needs_rehash: true }
    );
    let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::new(64, 1, 1, None).unwrap())
        .hash_password(b"pw-123456")
        .unwrap()
        .to_string();
    assert_eq!(
        hasher.verify("pw-123456", Some(&argon2i)).await.unwrap(),
        Verification::Valid { needs_rehash: true }
    );
}

#[tokio::test]
async fn bcrypt_hashes_above_the_cost_limit_never_verify() {
    let hasher = Hasher::new(&config()).unwrap();
    // A real hash of this password at cost 15 (about 2 s to verify; cost 31 would take
    // a day and a half), made once with the bcrypt crate.
    let cost_15 = "$2a$15$/6UdJyhtMLbQVsaVqLwAyORuYsg./gEjmtYKzDsrJNTUv7/ENp.b.";
    let started = std::time::Instant::now();
    assert_eq!(
        hasher.verify("cost-fifteen-password", Some(cost_15)).await.unwrap(),
        Verification::Invalid
    );
    // Refused without computing it (a generous bound: the computation takes seconds).
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

#[tokio::test]
async fn garbage_hashes_do_not_verify() {
    let hasher = Hasher::new(&config()).unwrap();
    for stored in [
        "plaintext",
        "$argon2id$broken",
        "$2a$10$short",
        "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
    ] {
        assert_eq!(
            hasher.verify("plaintext", Some(stored)).await.unwrap(),
            Verification::Invalid,
            "{stored}"
        );
    }
}
