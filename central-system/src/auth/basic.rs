//! HTTP Basic credentials on the WebSocket upgrade (OCPP security profiles 1 and 2).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The password in `Authorization: Basic base64(user:password)` when the user is `station_id`.
///
/// The prefix `"{station_id}:"` is matched on the decoded text instead of splitting at the first
/// colon, because OCPP 2.0.1 allows `:` inside station ids.
pub fn password_for(header: &str, station_id: &str) -> Option<String> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.strip_prefix(station_id)?.strip_prefix(':').map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(s: &str) -> String {
        format!("Basic {}", STANDARD.encode(s))
    }

    #[test]
    fn matches_the_station_and_extracts_the_password() {
        assert_eq!(password_for(&basic("CP-1:pa:ss"), "CP-1"), Some("pa:ss".into()));
        assert_eq!(password_for(&basic("CP:1:secret"), "CP:1"), Some("secret".into()));
        assert_eq!(password_for(&basic("CP-2:secret"), "CP-1"), None);
        assert_eq!(password_for(&basic("CP-10:secret"), "CP-1"), None);
        assert_eq!(password_for("Bearer abc", "CP-1"), None);
        assert_eq!(password_for("Basic !!!", "CP-1"), None);
        assert_eq!(password_for(&basic("CP-1"), "CP-1"), None);
    }
}
