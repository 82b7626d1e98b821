//! The checks of an ID token that need no network: its header, the key that may verify it, its
//! audience, `at_hash` and `nonce`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, Header};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::{ACCEPTED_ALGORITHMS, ExpectedNonce, IdTokenError};

/// The token's header, if it names an accepted algorithm.
pub(super) fn header(token: &str) -> Result<Header, IdTokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| IdTokenError::Malformed(e.to_string()))?;
    if !ACCEPTED_ALGORITHMS.contains(&header.alg) {
        return Err(IdTokenError::Algorithm(format!("{:?}", header.alg)));
    }
    Ok(header)
}

/// The `iss` claim of a token, read without verifying anything: only to choose where its keys
/// are (an Apple or Azure token names its tenant's issuer). The verification that follows
/// checks the issuer again, with the signature.
pub fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// Whether a published key may verify a token signed with `alg`: a public key (never a
/// symmetric one), meant for signatures, of the algorithm it is published for.
pub(super) fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    let public = !matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_));
    let for_signing = !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption));
    let same_alg = match jwk.common.key_algorithm {
        None => true,
        Some(published) => published == KeyAlgorithm::from(alg),
    };
    public && for_signing && same_alg
}

pub(super) fn refusal(err: jsonwebtoken::errors::Error) -> IdTokenError {
    match err.into_kind() {
        ErrorKind::InvalidSignature => IdTokenError::Signature,
        ErrorKind::ExpiredSignature => IdTokenError::Expired,
        ErrorKind::InvalidIssuer => IdTokenError::Issuer,
        ErrorKind::MissingRequiredClaim(claim) => IdTokenError::MissingClaim(claim),
        ErrorKind::InvalidAlgorithm => IdTokenError::Algorithm("does not fit the key".into()),
        other => IdTokenError::Malformed(format!("{other:?}")),
    }
}

/// One of the token's audiences (a string or a list) must be one of ours. Checked after the
/// signature and expiry, as GoTrue does, so that the refusal can name the audiences.
pub(super) fn check_audience(claims: &Value, audiences: &[String]) -> Result<(), IdTokenError> {
    let theirs: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).collect(),
        _ => return Err(IdTokenError::MissingClaim("aud".into())),
    };
    let ours = |aud: &&str| !aud.is_empty() && audiences.iter().any(|ours| ours == aud);
    if theirs.iter().any(ours) {
        Ok(())
    } else {
        Err(IdTokenError::Audience(theirs.join(" ")))
    }
}

/// The token's `at_hash` (when it has one) must be the hash of the access token the client
/// sent with it (OIDC Core 3.1.3.8): the left half of the digest of the signing algorithm's
/// size, base64url. Without an access token there is nothing to compare (GoTrue only logs).
pub(super) fn check_access_token_hash(
    claims: &Value,
    alg: Algorithm,
    access_token: Option<&str>,
) -> Result<(), IdTokenError> {
    let (Some(expected), Some(access_token)) = (claims.get("at_hash").and_then(Value::as_str), access_token) else {
        return Ok(());
    };
    let digest = match alg {
        Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 => Sha384::digest(access_token).to_vec(),
        Algorithm::RS512 | Algorithm::PS512 | Algorithm::EdDSA => Sha512::digest(access_token).to_vec(),
        _ => Sha256::digest(access_token).to_vec(),
    };
    let actual = URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2]);
    if actual == expected {
        Ok(())
    } else {
        Err(IdTokenError::AccessTokenHash)
    }
}

/// GoTrue's rule: the token has a nonce exactly when the client sent one, and then it is the
/// expected value.
pub(super) fn check_nonce(claims: &Value, expected: ExpectedNonce<'_>) -> Result<(), IdTokenError> {
    let nonce = claims.get("nonce").and_then(Value::as_str).filter(|n| !n.is_empty());
    match (expected, nonce) {
        (ExpectedNonce::Unchecked, _) | (ExpectedNonce::Absent, None) => Ok(()),
        (ExpectedNonce::Exactly(expected), Some(nonce)) if nonce == expected => Ok(()),
        (ExpectedNonce::Exactly(_), Some(_)) => Err(IdTokenError::Nonce),
        (ExpectedNonce::Exactly(_), None) | (ExpectedNonce::Absent, Some(_)) => Err(IdTokenError::NoncePresence),
    }
}

/// What supabase-js sends as `nonce` is the raw value; the app gave the provider its SHA-256,
/// in lower-case hex, which is what the token carries (GoTrue's `token_oidc.go`; Apple's and
/// Google's native SDKs both take the hashed value).
pub fn hashed_nonce(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}
