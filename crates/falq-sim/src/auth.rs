//! The pure check of an `Authorization` header against the mode and the configured key.

use crate::SimMode;

/// Why a request is refused with 401.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// Another scheme than the mode's (`Key` sent to a relay, `Bearer` to direct).
    WrongScheme,
    /// The right scheme with an empty key.
    EmptyKey,
    /// A key other than the configured one.
    WrongKey,
}

impl AuthFailure {
    /// The `detail` of the 401 answer.
    pub(crate) fn detail(&self, mode: SimMode) -> String {
        let scheme = mode.auth_scheme();
        match self {
            AuthFailure::Missing => {
                format!("Missing Authorization header: expected 'Authorization: {scheme} <key>'")
            }
            AuthFailure::WrongScheme => {
                format!("Invalid authorization scheme: expected '{scheme} <key>'")
            }
            AuthFailure::EmptyKey => "Missing API key".to_string(),
            AuthFailure::WrongKey => "Invalid API key".to_string(),
        }
    }
}

/// Accepts `<scheme> <key>` with the mode's scheme (any case) and a non-empty key equal to
/// the configured one, when one is configured.
pub(crate) fn check_auth(mode: SimMode, configured: Option<&str>, header: Option<&str>) -> Result<(), AuthFailure> {
    let header = header.map(str::trim).filter(|h| !h.is_empty()).ok_or(AuthFailure::Missing)?;
    let (scheme, key) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case(mode.auth_scheme()) {
        return Err(AuthFailure::WrongScheme);
    }
    let key = key.trim();
    if key.is_empty() {
        return Err(AuthFailure::EmptyKey);
    }
    match configured {
        Some(expected) if expected != key => Err(AuthFailure::WrongKey),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_table() {
        use AuthFailure::*;
        use SimMode::*;
        type Case = (SimMode, Option<&'static str>, Option<&'static str>, Result<(), AuthFailure>);
        let cases: &[Case] = &[
            (Relay, None, Some("Bearer abc"), Ok(())),
            (Relay, None, Some("bearer abc"), Ok(())),
            (Relay, None, Some("Key abc"), Err(WrongScheme)),
            (Relay, None, Some("Bearer "), Err(EmptyKey)),
            (Relay, None, Some("Bearer"), Err(EmptyKey)),
            (Relay, None, None, Err(Missing)),
            (Relay, None, Some("  "), Err(Missing)),
            (Relay, Some("k1"), Some("Bearer k1"), Ok(())),
            (Relay, Some("k1"), Some("Bearer k2"), Err(WrongKey)),
            (Direct, None, Some("Key abc"), Ok(())),
            (Direct, None, Some("Bearer abc"), Err(WrongScheme)),
            (Direct, Some("k1"), Some("Key k1"), Ok(())),
            (Direct, Some("k1"), Some("Key k1x"), Err(WrongKey)),
            (Direct, None, Some("abc"), Err(WrongScheme)),
        ];
        for (mode, configured, header, expected) in cases {
            assert_eq!(&check_auth(*mode, *configured, *header), expected, "{mode} {configured:?} {header:?}");
        }
    }
}
