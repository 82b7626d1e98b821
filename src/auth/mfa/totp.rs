//! TOTP as GoTrue uses it (pquerna/otp): SHA-1, 6 digits, 30-second steps, one step of clock
//! skew either side, a 160-bit secret written in base32. The codes come from `totp-rs`; the QR
//! code from `qrcode`. What is ours: the `otpauth://` URI in GoTrue's form, and the rule that a
//! step is accepted once (RFC 6238 §5.2), which the caller applies with [`matching_step`].

use std::time::{SystemTime, UNIX_EPOCH};

use qrcode::render::svg;
use qrcode::types::QrError;
use qrcode::{EcLevel, QrCode};
use rand::RngCore;
use totp_rs::{Builder, Secret, Totp};
use url::Url;

use crate::error::Error;

/// RFC 4226's recommended secret size, and pquerna/otp's default.
const SECRET_BYTES: usize = 20;
/// GoTrue's QR code: error correction level H, 3 pixels a module.
const QR_MODULE_PIXELS: u32 = 3;

/// A new random secret, base32 without padding (32 characters), as GoTrue stores and shows it.
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    Secret::from(bytes.to_vec()).to_base32()
}

/// GoTrue's issuer: the one given at enrolment, else the host (and port) of the site URL.
pub fn issuer(given: Option<&str>, site_url: &Url) -> String {
    match given.map(str::trim).filter(|i| !i.is_empty()) {
        Some(issuer) => issuer.to_owned(),
        None => {
            let host = site_url.host_str().unwrap_or_default();
            match site_url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            }
        }
    }
}

/// The Key URI authenticator apps read, in pquerna/otp's form:
/// `otpauth://totp/<issuer>:<account>?algorithm=SHA1&digits=6&issuer=<issuer>&period=30&secret=<secret>`.
/// Built here rather than with `totp-rs`, which refuses a `:` in the issuer, and GoTrue's
/// default issuer (`localhost:3000`) has one; apps take the issuer from the parameter.
pub fn otpauth_uri(secret: &str, issuer: &str, account: &str) -> String {
    let mut uri = Url::parse("otpauth://totp/").expect("a constant URL parses");
    // `set_path` percent-encodes what a path cannot hold (spaces, `?`, `#`, ...).
    uri.set_path(&format!("/{issuer}:{account}"));
    let query = [
        ("algorithm", "SHA1"),
        ("digits", "6"),
        ("issuer", issuer),
        ("period", "30"),
        ("secret", secret),
    ]
    .iter()
    .map(|(name, value)| format!("{name}={}", query_escape(value)))
    .collect::<Vec<_>>()
    .join("&");
    uri.set_query(Some(&query));
    uri.to_string()
}

/// Go's query escaping: form encoding with `%20` for spaces (form encoding writes `+`, which
/// some authenticator apps show as a plus sign).
fn query_escape(value: &str) -> String {
    // `byte_serialize` writes a literal `+` as `%2B`, so every `+` left stands for a space.
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The QR code of `uri` as an SVG document (supabase-js turns it into a `data:` URI). Named
/// colours, not `#rrggbb`: a `#` would end a `data:` URI that is not percent-encoded.
/// A URI too long for a QR code (a very long issuer or email, written twice or percent-encoded)
/// is the request's fault: a 400 here, where GoTrue answers a 500.
pub fn qr_svg(uri: &str) -> Result<String, Error> {
    let code = QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::H).map_err(|err| match err {
        QrError::DataTooLong => Error::validation("issuer is too long for a QR code"),
        other => Error::internal_with_message("Error generating QR Code", other),
    })?;
    Ok(code
        .render::<svg::Color<'_>>()
        .module_dimensions(QR_MODULE_PIXELS, QR_MODULE_PIXELS)
        .dark_color(svg::Color("black"))
        .light_color(svg::Color("white"))
        .build())
}

/// The time step whose code `code` is, at `unix_time`, looking one step back and one ahead
/// (GoTrue's skew); `None` for a wrong code. Comparison is constant-time (`totp-rs`).
pub fn matching_step(secret: &str, code: &str, unix_time: u64) -> Result<Option<u64>, Error> {
    Ok(totp(secret)?.check(code.trim(), unix_time))
}

/// Whether codes can be checked against `secret` as stored: base32 of at least 128 bits.
/// GoTrue's own secrets are (160 bits); an encrypted or hand-edited one is not.
pub fn is_usable_secret(secret: &str) -> bool {
    totp(secret).is_ok()
}

/// The current Unix time, for [`matching_step`].
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn totp(secret: &str) -> Result<Totp, Error> {
    let bytes = Secret::try_from_base32(secret.trim().to_ascii_uppercase())
        .map_err(|_| Error::internal("stored TOTP secret is not base32"))?;
    Builder::new()
        .with_secret(bytes)
        .build()
        .map_err(|err| Error::internal(format!("stored TOTP secret is unusable: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 secret ("12345678901234567890") in base32.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn codes_match_rfc_6238_and_name_their_step() {
        // RFC 6238 B: T = 59 s gives 94287082 (8 digits); GoTrue uses 6, the last six.
        assert_eq!(matching_step(RFC_SECRET, "287082", 59).unwrap(), Some(1));
        assert_eq!(
            matching_step(RFC_SECRET, "081804", 1_111_111_109).unwrap(),
            Some(37_037_036)
        );
        assert_eq!(matching_step(RFC_SECRET, "000000", 59).unwrap(), None);
    }

    #[test]
    fn one_step_of_skew_either_side_and_no_more() {
        let at = 1_111_111_109; // step 37 037 036
        assert_eq!(matching_step(RFC_SECRET, "081804", at + 30).unwrap(), Some(37_037_036));
        assert_eq!(matching_step(RFC_SECRET, "081804", at - 30).unwrap(), Some(37_037_036));
        assert_eq!(matching_step(RFC_SECRET, "081804", at + 60).unwrap(), None);
        assert_eq!(matching_step(RFC_SECRET, "081804", at - 60).unwrap(), None);
    }

    #[test]
    fn malformed_codes_are_wrong_codes() {
        for code in ["", "28708", "2870820", "28708a", "+87082", "２８７０８２"] {
            assert_eq!(matching_step(RFC_SECRET, code, 59).unwrap(), None, "{code:?}");
        }
        assert_eq!(matching_step(RFC_SECRET, " 287082 ", 59).unwrap(), Some(1));
    }

    #[test]
    fn new_secrets_are_160_random_bits_in_base32() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c)));
        assert!(matching_step(&a, "123456", now()).is_ok(), "a new secret is usable");
    }

    #[test]
    fn lower_case_secrets_from_elsewhere_still_work() {
        let lower = RFC_SECRET.to_ascii_lowercase();
        assert_eq!(matching_step(&lower, "287082", 59).unwrap(), Some(1));
        assert!(matching_step("not base32!", "287082", 59).is_err());
    }

    #[test]
    fn usable_secrets_are_base32_of_128_bits_or_more() {
        assert!(is_usable_secret(RFC_SECRET));
        assert!(is_usable_secret(&new_secret().to_ascii_lowercase()));
        for unusable in [
            "",
            "JBSWY3DPEHPK3PXP",
            "not base32!",
            r#"{"key_id":"k","alg":"aes-gcm-hkdf"}"#,
        ] {
            assert!(!is_usable_secret(unusable), "{unusable:?}");
        }
    }

    #[test]
    fn the_issuer_is_the_given_one_or_the_site_host() {
        let site = Url::parse("http://localhost:3000/app").unwrap();
        assert_eq!(issuer(None, &site), "localhost:3000");
        assert_eq!(issuer(Some("  "), &site), "localhost:3000");
        assert_eq!(issuer(Some("Acme"), &site), "Acme");
        assert_eq!(issuer(None, &Url::parse("https://example.com").unwrap()), "example.com");
    }

    #[test]
    fn the_uri_is_pquernas() {
        let uri = otpauth_uri("ABC234", "localhost:3000", "ada@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/localhost:3000:ada@example.com?algorithm=SHA1&digits=6&issuer=localhost%3A3000&period=30&secret=ABC234"
        );
        let spaced = otpauth_uri("ABC234", "My App?#", "a b");
        assert!(spaced.starts_with("otpauth://totp/My%20App%3F%23:a%20b?"), "{spaced}");
        assert!(spaced.contains("&issuer=My%20App%3F%23&"), "{spaced}");
        assert_eq!(Url::parse(&spaced).unwrap().query_pairs().count(), 5);
    }

    #[test]
    fn the_qr_code_is_an_svg_without_hash_signs() {
        let svg = qr_svg(&otpauth_uri(&new_secret(), "localhost:3000", "ada@example.com")).unwrap();
        assert!(svg.contains("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains('#'), "a data: URI would end at the first #");
        let too_long = otpauth_uri("ABC234", &"ü".repeat(255), "ada@example.com");
        assert_eq!(
            qr_svg(&too_long).unwrap_err().code(),
            crate::error::ErrorCode::ValidationFailed
        );
    }
}
