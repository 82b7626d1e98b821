//! Why a token did not verify, in the words of golang-jwt (the library GoTrue verifies with),
//! since GoTrue puts them in its `bad_jwt` message and clients show that message.

use jsonwebtoken::errors::{Error, ErrorKind};

/// Why a token was refused: expired, or anything else with golang-jwt's reason.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("token is expired")]
    Expired,
    #[error("unable to parse or verify signature, {0}")]
    Invalid(String),
}

/// golang-jwt's wording for `err`; the library's own for what golang-jwt has no word for.
pub(super) fn reason(err: &Error) -> String {
    let words = match err.kind() {
        ErrorKind::InvalidToken => "token is malformed: token contains an invalid number of segments",
        ErrorKind::Base64(_) => "token is malformed: could not base64 decode the token",
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => "token is malformed: could not JSON decode the token",
        ErrorKind::InvalidSignature => "token signature is invalid: signature is invalid",
        ErrorKind::ExpiredSignature => "token has invalid claims: token is expired",
        ErrorKind::ImmatureSignature => "token has invalid claims: token is not valid yet",
        _ => return err.to_string(),
    };
    words.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_golang_jwt_s() {
        let header_only = jsonwebtoken::decode_header("not-a-token").unwrap_err();
        assert_eq!(
            reason(&header_only),
            "token is malformed: token contains an invalid number of segments"
        );
        let not_base64 = jsonwebtoken::decode_header("%%%.e30.x").unwrap_err();
        assert!(
            reason(&not_base64).starts_with("token is malformed: "),
            "{not_base64:?}"
        );
        let signature: Error = ErrorKind::InvalidSignature.into();
        assert_eq!(reason(&signature), "token signature is invalid: signature is invalid");
    }
}
