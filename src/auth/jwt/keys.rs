//! The keys access tokens are signed and verified with: the signing key, the keys that only
//! verify (rotation), and the legacy HS256 secret, as GoTrue's `conf/jwk.go` and
//! `api/auth.go:parseJWTClaims` arrange them.
//!
//! A token is verified by the key its `kid` names, with that key's own algorithm, and only if
//! the algorithm is accepted (`GOTRUE_JWT_VALID_METHODS`). Without a `kid`, only an HS256 token
//! can pass, with the secret. So a token "signed" with a public key's bytes as an HMAC secret,
//! a token naming a key the set lacks, and `alg: none` all fail before any signature check.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::jwk::{self, PrivateKey};
pub use super::reasons::JwtError;
use super::reasons::reason;
use super::verified::{Lookup, VerifiedTokens, claims_of_verified};
use crate::config::ConfigError;

/// Where the keys come from: GoTrue's variables, read by `config::JwtConfig`.
#[derive(Clone, Copy)]
pub struct KeySettings<'a> {
    /// `GOTRUE_JWT_SECRET`: signs when there is no key set, and verifies HS256 tokens without
    /// a `kid` (or with `secret_kid`) while HS256 is accepted.
    pub secret: &'a SecretString,
    /// `GOTRUE_JWT_KEY_ID`: the secret's `kid`. Unset, one is derived from the secret, so
    /// every token carries a `kid` (GoTrue then sends none).
    pub secret_kid: Option<&'a str>,
    /// `GOTRUE_JWT_KEYS`: a JSON array of private JWKs, exactly one with `key_ops` `sign`.
    pub private_keys: Option<&'a SecretString>,
    /// `GOTRUE_JWT_VALID_METHODS`. Unset: the algorithms of the set, as in GoTrue (HS256 only
    /// when the set has an HS256 key or there is no set).
    pub valid_methods: Option<&'a [Algorithm]>,
    /// Whether the secret keeps verifying HS256 tokens by default even though the set has no
    /// HS256 key: the zero-setup mode's generated key, which must not void API keys made
    /// earlier with the kept secret (as a new Supabase project keeps its legacy keys valid).
    pub secret_still_verifies: bool,
}

/// One verifying key with its algorithm and the rules of the claims.
struct Verifier {
    alg: Algorithm,
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    fn new(alg: Algorithm, key: DecodingKey) -> Verifier {
        // Like GoTrue, `aud` and `iss` are not checked here and there is no leeway on `exp`.
        // No claim is required either: GoTrue checks `exp` only when a token has one, and
        // service keys minted by hand or by older tooling often have none. Only a holder of
        // the key can mint such a token.
        let mut validation = Validation::new(alg);
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.required_spec_claims.clear();
        Verifier { alg, key, validation }
    }
}

/// The keys that verify tokens, by `kid`, plus the HS256 secret. Cheap to clone.
#[derive(Clone)]
pub struct KeyRing(Arc<Ring>);

struct Ring {
    by_kid: HashMap<String, Verifier>,
    /// The secret, and the `kid` it answers to (`None`: any `kid`, see [`KeyRing::from_secret`]).
    secret: Option<(Option<String>, Verifier)>,
    accepted: Vec<Algorithm>,
    /// Tokens this ring verified, with their claims (see [`VerifiedTokens`]).
    verified: VerifiedTokens,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kids: Vec<&String> = self.0.by_kid.keys().collect();
        kids.sort();
        f.debug_struct("KeyRing")
            .field("kids", &kids)
            .field("accepted", &self.0.accepted)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// HS256 tokens signed with `secret`, whatever `kid` they carry: one secret is one key,
    /// as PostgREST's `PGRST_JWT_SECRET` (the RLS API's [`crate::rls::Rls::new`]).
    pub fn from_secret(secret: &SecretString) -> KeyRing {
        KeyRing(Arc::new(Ring {
            by_kid: HashMap::new(),
            secret: Some((None, hs256(secret))),
            accepted: vec![Algorithm::HS256],
            verified: VerifiedTokens::default(),
        }))
    }

    /// The public keys of a JWK set (such as Latchkey's `/.well-known/jwks.json`). Keys without
    /// `kid` or `alg`, symmetric keys and encryption keys are skipped; the accepted algorithms
    /// are those of the keys kept.
    pub fn from_jwks(set: &JwkSet) -> KeyRing {
        let by_kid: HashMap<String, Verifier> = set
            .keys
            .iter()
            .filter(|jwk| !matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)))
            .filter(|jwk| jwk.common.public_key_use != Some(PublicKeyUse::Encryption))
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                let alg: Algorithm = jwk.common.key_algorithm?.to_string().parse().ok()?;
                let key = DecodingKey::from_jwk(jwk).ok()?;
                (key.family() == alg.family()).then(|| (kid, Verifier::new(alg, key)))
            })
            .collect();
        let accepted = distinct(by_kid.values().map(|v| v.alg));
        KeyRing(Arc::new(Ring {
            by_kid,
            secret: None,
            accepted,
            verified: VerifiedTokens::default(),
        }))
    }

    /// Whether a key of this `kid` is in the ring.
    pub fn knows(&self, kid: &str) -> bool {
        self.0.by_kid.contains_key(kid) || self.0.secret.as_ref().is_some_and(|(k, _)| k.as_deref() == Some(kid))
    }

    /// The algorithms a token may be signed with.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.0.accepted
    }

    /// The claims of `token` if a key of the ring signed it with its own algorithm and it has
    /// not expired.
    pub fn verify<T: DeserializeOwned + Clone + Send + Sync + 'static>(&self, token: &str) -> Result<T, JwtError> {
        match self.0.verified.lookup::<T>(token) {
            Lookup::Claims(claims) => return Ok(claims),
            Lookup::Verified => return claims_of_verified(token),
            Lookup::Expired => return Err(JwtError::Expired),
            Lookup::Unknown => {}
        }
        let header = jsonwebtoken::decode_header(token).map_err(|err| JwtError::Invalid(reason(&err)))?;
        if !self.0.accepted.contains(&header.alg) {
            return Err(JwtError::Invalid(format!("signing method {:?} is invalid", header.alg)));
        }
        let verifier = self.verifier(&header)?;
        if verifier.alg != header.alg {
            // The confusion attack: a key used with another algorithm than its own.
            return Err(JwtError::Invalid(format!(
                "signing method {:?} does not match the key {:?}",
                header.alg,
                header.kid.unwrap_or_default()
            )));
        }
        let claims = jsonwebtoken::decode::<T>(token, &verifier.key, &verifier.validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => JwtError::Expired,
                _ => JwtError::Invalid(reason(&err)),
            })?;
        self.0.verified.insert(token, &claims);
        Ok(claims)
    }

    fn verifier(&self, header: &Header) -> Result<&Verifier, JwtError> {
        let secret = self.0.secret.as_ref();
        match header.kid.as_deref() {
            Some(kid) => self
                .0
                .by_kid
                .get(kid)
                .or_else(|| {
                    secret
                        .filter(|(k, _)| k.as_deref().is_none_or(|k| k == kid))
                        .map(|(_, v)| v)
                })
                .ok_or_else(|| JwtError::Invalid(format!("unrecognized JWT kid {kid:?}"))),
            // GoTrue's backward compatibility: tokens minted before keys had ids.
            None if header.alg == Algorithm::HS256 => secret
                .map(|(_, v)| v)
                .ok_or_else(|| JwtError::Invalid("token has no kid".into())),
            None => Err(JwtError::Invalid("token has no kid".into())),
        }
    }
}

/// `algorithms` once each, in their first order (`Algorithm` has no `Ord` to sort by).
fn distinct(algorithms: impl Iterator<Item = Algorithm>) -> Vec<Algorithm> {
    let mut out = Vec::new();
    for alg in algorithms {
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    out
}

fn hs256(secret: &SecretString) -> Verifier {
    Verifier::new(
        Algorithm::HS256,
        DecodingKey::from_secret(secret.expose_secret().as_bytes()),
    )
}

/// The key new tokens are signed with.
struct Signer {
    header: Header,
    key: EncodingKey,
}

/// Every key of the server: the signing key, the verifying ring and the published set. Cheap
/// to clone.
#[derive(Clone)]
pub struct JwtKeys {
    signer: Arc<Signer>,
    ring: KeyRing,
    public: Arc<JwkSet>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("signing_kid", &self.signer.header.kid)
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// HS256 with `secret` only, its `kid` derived from it (no key set).
    pub fn new(secret: &SecretString) -> JwtKeys {
        let kid = derived_kid(secret);
        JwtKeys {
            signer: Arc::new(signer(
                Algorithm::HS256,
                &kid,
                EncodingKey::from_secret(secret.expose_secret().as_bytes()),
            )),
            ring: KeyRing(Arc::new(Ring {
                by_kid: HashMap::new(),
                secret: Some((Some(kid), hs256(secret))),
                accepted: vec![Algorithm::HS256],
                verified: VerifiedTokens::default(),
            })),
            public: Arc::new(JwkSet { keys: vec![] }),
        }
    }

    /// The keys `settings` describe; an error names the variable at fault.
    pub fn from_settings(settings: &KeySettings<'_>) -> Result<JwtKeys, ConfigError> {
        let secret_kid = settings
            .secret_kid
            .map_or_else(|| derived_kid(settings.secret), str::to_owned);
        let Some(json) = settings.private_keys else {
            let accepted = settings.valid_methods.map_or(vec![Algorithm::HS256], <[_]>::to_vec);
            let signer = signer(
                Algorithm::HS256,
                &secret_kid,
                EncodingKey::from_secret(settings.secret.expose_secret().as_bytes()),
            );
            return assemble(signer, HashMap::new(), (secret_kid, settings.secret), accepted, vec![]);
        };
        let keys = jwk::parse_set(json.expose_secret()).map_err(|message| error("GOTRUE_JWT_KEYS", message))?;
        let signing: Vec<&PrivateKey> = keys.iter().filter(|key| key.signs).collect();
        let [signing] = signing.as_slice() else {
            return Err(error(
                "GOTRUE_JWT_KEYS",
                format!("exactly one key must have `key_ops` \"sign\"; {} have", signing.len()),
            ));
        };
        let signer = signer(signing.alg, &signing.kid, signing.encoding.clone());
        let legacy = settings.secret_still_verifies.then_some(Algorithm::HS256);
        let accepted = match settings.valid_methods {
            Some(methods) => methods.to_vec(),
            None => distinct(keys.iter().map(|key| key.alg).chain(legacy)),
        };
        let public = keys.iter().filter_map(|key| key.public.clone()).collect();
        let mut by_kid = HashMap::new();
        for key in keys {
            if by_kid.contains_key(&key.kid) {
                return Err(error("GOTRUE_JWT_KEYS", format!("two keys have the kid {:?}", key.kid)));
            }
            by_kid.insert(key.kid, Verifier::new(key.alg, key.decoding));
        }
        assemble(signer, by_kid, (secret_kid, settings.secret), accepted, public)
    }

    /// Signs `claims` with the signing key, naming it in the `kid` header.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&self.signer.header, claims, &self.signer.key)
    }

    pub fn verify<T: DeserializeOwned + Clone + Send + Sync + 'static>(&self, token: &str) -> Result<T, JwtError> {
        self.ring.verify(token)
    }

    /// The keys that verify, for callers that only verify (the RLS API).
    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// The public keys of every asymmetric key, as `/.well-known/jwks.json` serves them.
    pub fn public_keys(&self) -> &JwkSet {
        &self.public
    }

    /// The signing key's `kid` and algorithm.
    pub fn signing_key(&self) -> (&str, Algorithm) {
        (
            self.signer.header.kid.as_deref().unwrap_or_default(),
            self.signer.header.alg,
        )
    }
}

fn signer(alg: Algorithm, kid: &str, key: EncodingKey) -> Signer {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    Signer { header, key }
}

/// Builds the keys once the parts are known, refusing settings that could not work.
fn assemble(
    signer: Signer,
    by_kid: HashMap<String, Verifier>,
    (secret_kid, secret): (String, &SecretString),
    accepted: Vec<Algorithm>,
    public: Vec<jsonwebtoken::jwk::Jwk>,
) -> Result<JwtKeys, ConfigError> {
    if !accepted.contains(&signer.header.alg) {
        // The server would refuse every token it issues.
        return Err(error(
            "GOTRUE_JWT_VALID_METHODS",
            format!("must contain {:?}, the signing key's algorithm", signer.header.alg),
        ));
    }
    if by_kid.contains_key(&secret_kid) {
        return Err(error(
            "GOTRUE_JWT_KEY_ID",
            format!("{secret_kid:?} is also the kid of a key in GOTRUE_JWT_KEYS"),
        ));
    }
    Ok(JwtKeys {
        signer: Arc::new(signer),
        ring: KeyRing(Arc::new(Ring {
            by_kid,
            secret: Some((Some(secret_kid), hs256(secret))),
            accepted,
            verified: VerifiedTokens::default(),
        })),
        public: Arc::new(JwkSet { keys: public }),
    })
}

fn error(var: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.into(),
        message: message.into(),
    }
}

/// A `kid` for the secret when `GOTRUE_JWT_KEY_ID` names none: 16 hex digits of a hash of it.
/// It says no more about the secret than any HS256 token signed with it already does.
fn derived_kid(secret: &SecretString) -> String {
    let digest = Sha256::new()
        .chain_update(b"latchkey jwt secret kid\0")
        .chain_update(secret.expose_secret().as_bytes())
        .finalize();
    hex::encode(&digest[..8])
}
