//! Money: exact decimals while computing, integer minor units plus an ISO 4217 code when stored
//! or served. Never floats.
//!
//! # Rounding rules
//! - A price line's amount is `quantity × unit price`, computed exactly (multiplication before
//!   division, so a time line is `milliseconds × price per hour ÷ 3,600,000`) and rounded **once**
//!   to the currency's minor unit, half away from zero ([`Currency::round`]).
//! - VAT is computed **once per rate** on the invoice total: the sum of the (already rounded) line
//!   amounts at that rate, times the rate, rounded the same way. Lines carry their rate, not a
//!   rounded VAT amount of their own, so rounding never accumulates across lines.
//! - The total excluding VAT is the sum of the line amounts (no further rounding is needed:
//!   every line is already in minor units); the total including VAT adds each rate's VAT.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An ISO 4217 alphabetic currency code (three upper-case letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// ISO 4217's "no currency": what a stored code that no longer parses is served as.
    pub const NONE: Currency = Currency(*b"XXX");

    /// Parses a three-letter upper-case code. Any such code is accepted; its minor unit comes
    /// from [`Currency::exponent`].
    pub fn parse(code: &str) -> Option<Currency> {
        let bytes = code.as_bytes();
        if bytes.len() == 3 && bytes.iter().all(u8::is_ascii_uppercase) {
            Some(Currency([bytes[0], bytes[1], bytes[2]]))
        } else {
            None
        }
    }

    pub fn code(&self) -> &str {
        // Only ASCII upper-case letters get in (see `parse`).
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Decimal places of the minor unit (ISO 4217): 0 for the yen and a few others, 3 for the
    /// dinars, 2 for everything else.
    pub fn exponent(&self) -> u32 {
        match self.code() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX" | "UYI" | "VND"
            | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }

    /// Rounds `amount` to this currency's minor unit, half away from zero (the rounding rule of
    /// the whole billing module).
    pub fn round(&self, amount: Decimal) -> Decimal {
        amount.round_dp_with_strategy(self.exponent(), RoundingStrategy::MidpointAwayFromZero)
    }

    /// `amount` rounded (see [`Currency::round`]) as a count of minor units.
    pub fn to_minor(&self, amount: Decimal) -> Money {
        let rounded = self.round(amount);
        let scaled = rounded * Decimal::from(10i64.pow(self.exponent()));
        // A sum that does not fit in i64 minor units is not a price anyone charges; saturate
        // rather than panic on absurd input.
        let minor = scaled
            .to_i64()
            .unwrap_or(if scaled.is_sign_negative() { i64::MIN } else { i64::MAX });
        Money { minor, currency: *self }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = ();
    fn from_str(s: &str) -> Result<Currency, ()> {
        Currency::parse(s).ok_or(())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Currency, D::Error> {
        let s = String::deserialize(d)?;
        Currency::parse(&s).ok_or_else(|| serde::de::Error::custom("expected an ISO 4217 code such as EUR"))
    }
}

/// An amount in integer minor units (cents for EUR) of a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    /// The exact decimal value (`minor ÷ 10^exponent`).
    pub fn amount(&self) -> Decimal {
        Decimal::new(self.minor, self.currency.exponent())
    }

    /// Sum of two amounts of the same currency (the engine never mixes currencies).
    pub fn plus(self, other: Money) -> Money {
        Money {
            minor: self.minor.saturating_add(other.minor),
            currency: self.currency,
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount(), self.currency)
    }
}

/// The served form: `{"amount": "12.34", "minor": 1234, "currency": "EUR"}`. The amount is a
/// string so no client parses it into a float by accident.
impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Money", 3)?;
        st.serialize_field("amount", &self.amount().to_string())?;
        st.serialize_field("minor", &self.minor)?;
        st.serialize_field("currency", &self.currency)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn currency_codes() {
        assert!(Currency::parse("EUR").is_some());
        assert!(Currency::parse("eur").is_none());
        assert!(Currency::parse("EURO").is_none());
        assert!(Currency::parse("E1R").is_none());
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().exponent(), 3);
        assert_eq!(Currency::parse("CHF").unwrap().exponent(), 2);
    }

    #[test]
    fn rounds_half_away_from_zero_to_the_minor_unit() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(eur.to_minor(d("1.005")).minor, 101);
        assert_eq!(eur.to_minor(d("1.0049999")).minor, 100);
        assert_eq!(eur.to_minor(d("-1.005")).minor, -101);
        assert_eq!(eur.to_minor(d("0.125")).minor, 13);
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(jpy.to_minor(d("99.5")).minor, 100);
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(kwd.to_minor(d("1.2345")).minor, 1235);
        assert_eq!(kwd.to_minor(d("1.2345")).amount(), d("1.235"));
    }

    #[test]
    fn serves_amount_as_string() {
        let eur = Currency::parse("EUR").unwrap();
        let v = serde_json::to_value(eur.to_minor(d("12.3"))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"amount": "12.30", "minor": 1230, "currency": "EUR"})
        );
    }
}
