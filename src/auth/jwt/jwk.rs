//! Private JSON Web Keys (RFC 7517, RFC 7518) as `GOTRUE_JWT_KEYS` holds them: each becomes a
//! signing key for jsonwebtoken and the public JWK that `/.well-known/jwks.json` publishes.
//! [`generate`] makes new ones for `latchkey keys` and the zero-setup mode.
//!
//! ES512 (P-521) is left out: jsonwebtoken has no P-521 signer or verifier, so a key with it is
//! refused by name rather than signed with something else (GoTrue signs with ES512 too).

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters, EllipticCurveKeyType, Jwk,
    KeyAlgorithm, KeyOperations, OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse, RSAKeyParameters, RSAKeyType,
};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use p256::elliptic_curve::sec1::{FromEncodedPoint, ModulusSize, ToEncodedPoint};
use p256::elliptic_curve::{AffinePoint, CurveArithmetic, FieldBytesSize, SecretKey};
use p256::pkcs8::{AssociatedOid, EncodePrivateKey};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::rand_core::{OsRng, RngCore};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BigUint, RsaPrivateKey};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

/// The algorithms a key may carry: every one jsonwebtoken signs and verifies.
pub const SUPPORTED: [Algorithm; 12] = [
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// RSA keys below this many bits are refused (NIST's floor; GoTrue has none).
const MIN_RSA_BITS: usize = 2048;
/// The shortest symmetric key accepted, as for `GOTRUE_JWT_SECRET`.
const MIN_OCT_BYTES: usize = 32;

/// JWKs write base64url without padding; tolerate padding on input.
const B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A private JWK as written in `GOTRUE_JWT_KEYS`. Private members (`d`, `p`, `q`, `k`) are
/// secrets: no `Debug`, and they never reach a message or a log.
#[derive(Deserialize)]
struct PrivateJwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(default)]
    key_ops: Vec<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
    d: Option<String>,
    p: Option<String>,
    q: Option<String>,
    k: Option<String>,
}

/// One key of the set, ready to sign and verify with.
pub struct PrivateKey {
    pub kid: String,
    pub alg: Algorithm,
    /// `key_ops` contains `sign`: this key signs new tokens (one per set).
    pub signs: bool,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// The public half as published: `use: sig`, `key_ops: [verify]`, `alg`, `kid`. `None`
    /// for a symmetric key, which is never published.
    pub public: Option<Jwk>,
}

/// Parses a JSON array of private JWKs. Messages name the key (by position and `kid`) and the
/// member at fault, never a key's value.
pub fn parse_set(json: &str) -> Result<Vec<PrivateKey>, String> {
    let raw: Vec<Value> = serde_json::from_str(json).map_err(|_| "must be a JSON array of private JWKs".to_owned())?;
    raw.into_iter()
        .enumerate()
        .map(|(index, value)| {
            let jwk: PrivateJwk = serde_json::from_value(value)
                .map_err(|_| format!("key {}: not a JWK with string members", index + 1))?;
            let kid = jwk.kid.clone().unwrap_or_default();
            parse_key(jwk).map_err(|reason| format!("key {} (kid {kid:?}): {reason}", index + 1))
        })
        .collect()
}

fn parse_key(jwk: PrivateJwk) -> Result<PrivateKey, String> {
    let kid = jwk.kid.clone().filter(|kid| !kid.is_empty()).ok_or("has no `kid`")?;
    let alg = algorithm(&jwk)?;
    let signs = jwk.key_ops.iter().any(|op| op == "sign");
    let (encoding, params) = match alg.family() {
        AlgorithmFamily::Hmac => {
            let key = bytes(jwk.k.as_deref(), "k")?;
            if key.len() < MIN_OCT_BYTES {
                return Err(format!(
                    "`k` is {} bytes; at least {MIN_OCT_BYTES} are required",
                    key.len()
                ));
            }
            let key = (EncodingKey::from_secret(&key), DecodingKey::from_secret(&key));
            return Ok(PrivateKey {
                kid,
                alg,
                signs,
                encoding: key.0,
                decoding: key.1,
                public: None,
            });
        }
        AlgorithmFamily::Rsa => rsa_key(&jwk)?,
        AlgorithmFamily::Ec if alg == Algorithm::ES256 => ec_key::<p256::NistP256>(&jwk, "P-256", EllipticCurve::P256)?,
        AlgorithmFamily::Ec => ec_key::<p384::NistP384>(&jwk, "P-384", EllipticCurve::P384)?,
        AlgorithmFamily::Ed => ed25519_key(&jwk)?,
    };
    let public = published(&kid, alg, params);
    let decoding = DecodingKey::from_jwk(&public).map_err(|_| "has no usable public key")?;
    Ok(PrivateKey {
        kid,
        alg,
        signs,
        encoding,
        decoding,
        public: Some(public),
    })
}

/// The `alg` member, which must be present, supported and fit the key type: a key cannot be
/// used with an algorithm of another family.
fn algorithm(jwk: &PrivateJwk) -> Result<Algorithm, String> {
    let name = jwk.alg.as_deref().ok_or("has no `alg`")?;
    if name == "ES512" {
        return Err("ES512 (P-521) is not supported: jsonwebtoken has no P-521; use ES256".into());
    }
    let alg = SUPPORTED
        .into_iter()
        .find(|alg| format!("{alg:?}") == name)
        .ok_or_else(|| format!("`alg` {name:?} is not one of {}", supported_names()))?;
    let kty = match alg.family() {
        AlgorithmFamily::Hmac => "oct",
        AlgorithmFamily::Rsa => "RSA",
        AlgorithmFamily::Ec => "EC",
        AlgorithmFamily::Ed => "OKP",
    };
    if jwk.kty != kty {
        return Err(format!("`alg` {name} needs `kty` {kty:?}, not {:?}", jwk.kty));
    }
    Ok(alg)
}

pub fn supported_names() -> String {
    SUPPORTED.map(|alg| format!("{alg:?}")).join(", ")
}

/// Decodes a base64url member; `what` names it in the message.
fn bytes(value: Option<&str>, what: &str) -> Result<Vec<u8>, String> {
    B64.decode(value.ok_or_else(|| format!("has no `{what}`"))?)
        .map_err(|_| format!("`{what}` is not base64url"))
}

/// Checks a public member the JWK gives against the one derived from its private part.
fn matches(given: Option<&str>, derived: &str, what: &str) -> Result<(), String> {
    match given {
        Some(given) if given.trim_end_matches('=') != derived => {
            Err(format!("`{what}` does not belong to the private key"))
        }
        _ => Ok(()),
    }
}

fn rsa_key(jwk: &PrivateJwk) -> Result<(EncodingKey, AlgorithmParameters), String> {
    let number = |value: Option<&str>, what| bytes(value, what).map(|b| BigUint::from_bytes_be(&b));
    let mut primes = Vec::new();
    if jwk.p.is_some() || jwk.q.is_some() {
        primes = vec![number(jwk.p.as_deref(), "p")?, number(jwk.q.as_deref(), "q")?];
    }
    let key = RsaPrivateKey::from_components(
        number(jwk.n.as_deref(), "n")?,
        number(jwk.e.as_deref(), "e")?,
        number(jwk.d.as_deref(), "d")?,
        primes,
    )
    .map_err(|_| "is not a consistent RSA private key")?;
    key.validate().map_err(|_| "is not a consistent RSA private key")?;
    if key.size() * 8 < MIN_RSA_BITS {
        return Err(format!(
            "is a {}-bit RSA key; at least {MIN_RSA_BITS} bits are required",
            key.size() * 8
        ));
    }
    let der = key.to_pkcs1_der().map_err(|_| "could not be encoded")?;
    Ok((EncodingKey::from_rsa_der(der.as_bytes()), rsa_public(&key)))
}

fn rsa_public(key: &RsaPrivateKey) -> AlgorithmParameters {
    AlgorithmParameters::RSA(RSAKeyParameters {
        key_type: RSAKeyType::RSA,
        n: B64.encode(key.n().to_bytes_be()),
        e: B64.encode(key.e().to_bytes_be()),
    })
}

fn ec_key<C>(jwk: &PrivateJwk, crv: &str, curve: EllipticCurve) -> Result<(EncodingKey, AlgorithmParameters), String>
where
    C: CurveArithmetic + AssociatedOid,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
    FieldBytesSize<C>: ModulusSize,
{
    if jwk.crv.as_deref() != Some(crv) {
        return Err(format!("needs `crv` {crv:?}"));
    }
    let d = bytes(jwk.d.as_deref(), "d")?;
    let key = SecretKey::<C>::from_slice(&d).map_err(|_| format!("`d` is not a {crv} private key"))?;
    let params = ec_public(&key, curve);
    if let AlgorithmParameters::EllipticCurve(public) = &params {
        matches(jwk.x.as_deref(), &public.x, "x")?;
        matches(jwk.y.as_deref(), &public.y, "y")?;
    }
    let der = key.to_pkcs8_der().map_err(|_| "could not be encoded")?;
    Ok((EncodingKey::from_ec_der(der.as_bytes()), params))
}

fn ec_public<C>(key: &SecretKey<C>, curve: EllipticCurve) -> AlgorithmParameters
where
    C: CurveArithmetic,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
    FieldBytesSize<C>: ModulusSize,
{
    let point = key.public_key().to_encoded_point(false);
    // An uncompressed point of a valid key always has both coordinates.
    let coordinate = |c: Option<&p256::elliptic_curve::FieldBytes<C>>| c.map(|c| B64.encode(c)).unwrap_or_default();
    AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
        key_type: EllipticCurveKeyType::EC,
        curve,
        x: coordinate(point.x()),
        y: coordinate(point.y()),
    })
}

fn ed25519_key(jwk: &PrivateJwk) -> Result<(EncodingKey, AlgorithmParameters), String> {
    if jwk.crv.as_deref() != Some("Ed25519") {
        return Err("needs `crv` \"Ed25519\"".into());
    }
    let d: [u8; 32] = bytes(jwk.d.as_deref(), "d")?
        .try_into()
        .map_err(|_| "`d` is not a 32-byte Ed25519 private key")?;
    let key = ed25519_dalek::SigningKey::from_bytes(&d);
    let params = ed25519_public(&key);
    if let AlgorithmParameters::OctetKeyPair(public) = &params {
        matches(jwk.x.as_deref(), &public.x, "x")?;
    }
    let der = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&key).map_err(|_| "could not be encoded")?;
    Ok((EncodingKey::from_ed_der(der.as_bytes()), params))
}

fn ed25519_public(key: &ed25519_dalek::SigningKey) -> AlgorithmParameters {
    AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
        key_type: OctetKeyPairType::OctetKeyPair,
        curve: EllipticCurve::Ed25519,
        x: B64.encode(key.verifying_key().to_bytes()),
    })
}

/// The public JWK as GoTrue publishes one (`conf/jwk.go`): `use: sig`, `key_ops: [verify]`.
fn published(kid: &str, alg: Algorithm, algorithm: AlgorithmParameters) -> Jwk {
    Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_operations: Some(vec![KeyOperations::Verify]),
            key_algorithm: Some(KeyAlgorithm::from(alg)),
            key_id: Some(kid.to_owned()),
            ..CommonParameters::default()
        },
        algorithm,
    }
}

/// The algorithms `latchkey keys generate` makes keys for.
pub const GENERATED: [Algorithm; 3] = [Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA];

/// A new private JWK for `alg` (one of [`GENERATED`]) with a random UUID as `kid` and
/// `key_ops: [sign, verify]`, in the shape `GOTRUE_JWT_KEYS` takes (the Supabase CLI's).
pub fn generate(alg: Algorithm) -> Result<SecretString, String> {
    let kid = uuid::Uuid::new_v4().to_string();
    let mut jwk = match alg {
        Algorithm::ES256 => {
            let key = SecretKey::<p256::NistP256>::random(&mut OsRng);
            let mut jwk = params_json(ec_public(&key, EllipticCurve::P256));
            jwk["d"] = B64.encode(key.to_bytes()).into();
            jwk
        }
        Algorithm::EdDSA => {
            let mut seed = [0u8; 32];
            OsRng.fill_bytes(&mut seed);
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            let mut jwk = params_json(ed25519_public(&key));
            jwk["d"] = B64.encode(key.to_bytes()).into();
            jwk
        }
        Algorithm::RS256 => rsa_private_json(
            &RsaPrivateKey::new(&mut OsRng, MIN_RSA_BITS).map_err(|err| format!("RSA key generation: {err}"))?,
        ),
        other => return Err(format!("cannot generate {other:?} keys; choose ES256, RS256 or EdDSA")),
    };
    jwk["kid"] = kid.into();
    jwk["alg"] = format!("{alg:?}").into();
    jwk["use"] = "sig".into();
    jwk["key_ops"] = json!(["sign", "verify"]);
    Ok(SecretString::from(jwk.to_string()))
}

fn params_json(params: AlgorithmParameters) -> Value {
    // Serialising plain strings into JSON cannot fail.
    serde_json::to_value(params).unwrap_or_default()
}

fn rsa_private_json(key: &RsaPrivateKey) -> Value {
    let b64 = |n: &BigUint| B64.encode(n.to_bytes_be());
    let mut jwk = params_json(rsa_public(key));
    jwk["d"] = b64(key.d()).into();
    if let [p, q] = key.primes() {
        jwk["p"] = b64(p).into();
        jwk["q"] = b64(q).into();
    }
    if let (Some(dp), Some(dq), Some(qi)) = (key.dp(), key.dq(), key.crt_coefficient()) {
        jwk["dp"] = b64(dp).into();
        jwk["dq"] = b64(dq).into();
        jwk["qi"] = b64(&qi).into();
    }
    jwk
}
