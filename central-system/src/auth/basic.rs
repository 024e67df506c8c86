//! HTTP Basic credentials on the WebSocket upgrade (OCPP security profiles 1 and 2).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Parses `Authorization: Basic base64(user:password)`; `None` when absent or malformed.
pub fn parse(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_basic_credentials() {
        let h = format!("Basic {}", STANDARD.encode("CP-1:pa:ss"));
        assert_eq!(parse(&h), Some(("CP-1".into(), "pa:ss".into())));
        assert_eq!(parse("Bearer abc"), None);
        assert_eq!(parse("Basic !!!"), None);
        assert_eq!(parse(&format!("Basic {}", STANDARD.encode("nocolon"))), None);
    }
}
