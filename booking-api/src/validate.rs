//! Domain newtypes that validate on construction, so an invalid value cannot exist past the
//! edge, and [`Fields`], which gathers every invalid field of a request into one 400 problem.

use serde::Serialize;
use service_kit::problem::{FieldError, Problem};
use std::fmt;

/// Why one value is invalid: a stable code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// e.g. `invalid_format`, `out_of_range`, `too_short`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl Invalid {
    fn new(code: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            code,
            message: message.into(),
        }
    }
}

/// Collects field errors of one request.
#[derive(Debug, Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    /// No errors yet.
    pub fn new() -> Fields {
        Fields::default()
    }

    /// Keeps the value, or records the error under `field`.
    pub fn check<T>(&mut self, field: &str, result: Result<T, Invalid>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(FieldError::new(field, e.code, e.message));
                None
            }
        }
    }

    /// Records an error.
    pub fn push(&mut self, field: &str, code: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, code, message));
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when every field was valid, else a 400 problem listing them.
    pub fn finish(self) -> Result<(), Problem> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Problem::invalid(self.0))
        }
    }
}

/// A Sri Lankan national identity card number: the old format (9 digits and `V` or `X`) or the
/// new one (12 digits). Stored upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Nic(String);

impl Nic {
    /// Validates the format and the day-of-year part (001-366, or 501-866 for women).
    pub fn parse(raw: &str) -> Result<Nic, Invalid> {
        let s = raw.trim().to_ascii_uppercase();
        let bad = || Invalid::new("invalid_format", "a NIC is 9 digits and V or X, or 12 digits");
        // The slices below count bytes: other characters would split one (a panic, found by the
        // API probe through `GET /owners/{nic}`).
        if !s.is_ascii() {
            return Err(bad());
        }
        let (digits, day) = match s.len() {
            10 if s.ends_with('V') || s.ends_with('X') => (&s[..9], &s[2..5]),
            12 => (&s[..], &s[4..7]),
            _ => return Err(bad()),
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let day: u32 = day.parse().map_err(|_| bad())?;
        if !((1..=366).contains(&day) || (501..=866).contains(&day)) {
            return Err(Invalid::new(
                "invalid_value",
                "the NIC's day-of-year digits are out of range",
            ));
        }
        Ok(Nic(s))
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Email(String);

impl Email {
    /// A pragmatic check: one `@`, a non-empty local part, a dotted domain of letters, digits and
    /// hyphens, at most 254 characters.
    pub fn parse(raw: &str) -> Result<Email, Invalid> {
        let s = raw.trim().to_ascii_lowercase();
        let bad = || Invalid::new("invalid_format", "not a valid email address");
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        if local.is_empty() || local.len() > 64 || domain.contains('@') || !domain.contains('.') {
            return Err(bad());
        }
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        if !labels_ok {
            return Err(bad());
        }
        Ok(Email(s))
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number in E.164: `+`, a non-zero digit, 7 to 15 digits in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phone(String);

impl Phone {
    /// Validates E.164 (no spaces or separators).
    pub fn parse(raw: &str) -> Result<Phone, Invalid> {
        let s = raw.trim();
        let digits = s.strip_prefix('+').unwrap_or_default();
        if digits.len() >= 7
            && digits.len() <= 15
            && !digits.starts_with('0')
            && digits.bytes().all(|b| b.is_ascii_digit())
        {
            Ok(Phone(s.to_string()))
        } else {
            Err(Invalid::new(
                "invalid_format",
                "a phone number is E.164: + and 7-15 digits, e.g. +94771234567",
            ))
        }
    }

    /// The number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A point on Earth in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coordinates {
    /// Latitude, -90 to 90.
    pub lat: f64,
    /// Longitude, -180 to 180.
    pub lon: f64,
}

impl Coordinates {
    /// Validates the ranges; each error names the coordinate.
    pub fn parse(lat: f64, lon: f64) -> Result<Coordinates, (&'static str, Invalid)> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err((
                "latitude",
                Invalid::new("out_of_range", "latitude must be between -90 and 90"),
            ));
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err((
                "longitude",
                Invalid::new("out_of_range", "longitude must be between -180 and 180"),
            ));
        }
        Ok(Coordinates { lat, lon })
    }

    /// Great-circle distance in kilometres (haversine).
    pub fn distance_km(&self, other: &Coordinates) -> f64 {
        const EARTH_RADIUS_KM: f64 = 6371.0088;
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = (other.lat - self.lat).to_radians();
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().asin()
    }
}

/// A password acceptable for a new account: 10 to 128 characters.
#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword(String);

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(..)")
    }
}

impl NewPassword {
    /// Checks the length.
    pub fn parse(raw: &str) -> Result<NewPassword, Invalid> {
        match raw.chars().count() {
            n if n < 10 => Err(Invalid::new("too_short", "a password has at least 10 characters")),
            n if n > 128 => Err(Invalid::new("too_long", "a password has at most 128 characters")),
            _ => Ok(NewPassword(raw.to_string())),
        }
    }

    /// The password, to hash.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A non-empty trimmed text of at most `max` characters.
pub fn text(raw: &str, max: usize) -> Result<String, Invalid> {
    let s = raw.trim();
    if s.is_empty() {
        Err(Invalid::new("required", "must not be empty"))
    } else if s.chars().count() > max {
        Err(Invalid::new("too_long", format!("at most {max} characters")))
    } else {
        Ok(s.to_string())
    }
}

/// Connector types a station or vehicle may have.
pub const CONNECTOR_TYPES: &[&str] = &["Type1", "Type2", "CCS1", "CCS2", "CHAdeMO", "GBT", "NACS"];

/// A known connector type, in its canonical spelling.
pub fn connector_type(raw: &str) -> Result<String, Invalid> {
    CONNECTOR_TYPES
        .iter()
        .find(|t| t.eq_ignore_ascii_case(raw.trim()))
        .map(|t| t.to_string())
        .ok_or_else(|| {
            Invalid::new(
                "unknown_value",
                format!("connector type must be one of {}", CONNECTOR_TYPES.join(", ")),
            )
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nic_formats() {
        assert_eq!(Nic::parse("912345678v").unwrap().as_str(), "912345678V");
        assert!(Nic::parse("915345678X").is_ok());
        assert!(Nic::parse("199123456789").is_ok());
        assert!(Nic::parse("199156456789").is_ok());
        for bad in [
            "91234567V",
            "9123456789",
            "91234567AV",
            "19912345678",
            "1991234567890",
            "",
            "990005678V",
            "199100012345",
            "993705678V",
            // Multi-byte characters where the byte slices would cut one.
            "\u{c8}\u{d9d64}\u{cf}\u{b834d}",
            "a\u{e9}cdefghV",
            "199\u{e9}3456789",
        ] {
            assert!(Nic::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
        for bad in [
            "alice",
            "@x.com",
            "a@b",
            "a@b..com",
            "a b@c.com",
            "a@-b.com",
            "a@b@c.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones() {
        assert!(Phone::parse("+94771234567").is_ok());
        for bad in [
            "0771234567",
            "+0771234567",
            "+94 77 123",
            "+123",
            "+1234567890123456",
            "+94-77",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn coordinates_and_distance() {
        assert_eq!(Coordinates::parse(91.0, 0.0).unwrap_err().0, "latitude");
        assert_eq!(Coordinates::parse(0.0, -181.0).unwrap_err().0, "longitude");
        assert!(Coordinates::parse(f64::NAN, 0.0).is_err());
        let colombo = Coordinates::parse(6.9271, 79.8612).unwrap();
        let kandy = Coordinates::parse(7.2906, 80.6337).unwrap();
        let d = colombo.distance_km(&kandy);
        assert!((d - 94.0).abs() < 3.0, "{d}");
    }

    #[test]
    fn passwords_texts_connectors() {
        assert!(NewPassword::parse("short").is_err());
        assert!(NewPassword::parse("long enough pass").is_ok());
        assert_eq!(text("  x ", 3).unwrap(), "x");
        assert!(text("   ", 3).is_err());
        assert!(text("abcd", 3).is_err());
        assert_eq!(connector_type("ccs2").unwrap(), "CCS2");
        assert!(connector_type("Schuko").is_err());
    }

    #[test]
    fn fields_collect_every_error() {
        let mut f = Fields::new();
        assert!(f.check("email", Email::parse("x")).is_none());
        assert!(f.check("phone", Phone::parse("+94771234567")).is_some());
        f.push("nic", "required", "missing");
        let p = f.finish().unwrap_err();
        assert_eq!(p.status, 400);
        let errors = p.errors.unwrap();
        assert_eq!(errors[0]["field"], "email");
        assert_eq!(errors[1]["field"], "nic");
    }
}
