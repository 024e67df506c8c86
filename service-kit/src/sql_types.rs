//! Column types that decode the same way on SQLite and PostgreSQL and serialise well in JSON.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Serialize, Serializer};
use sqlx::{Database, Decode, Encode, Type};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type as OaType};
use utoipa::openapi::{RefOr, Schema};

/// A UTC instant stored as BIGINT milliseconds and shown as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub i64);

impl Ts {
    /// From a chrono instant.
    pub fn from_datetime(t: DateTime<Utc>) -> Ts {
        Ts(t.timestamp_millis())
    }

    /// The current instant.
    pub fn now() -> Ts {
        Ts::from_datetime(Utc::now())
    }

    /// As a chrono instant.
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0).single().unwrap_or_default()
    }
}

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_datetime().to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl<DB: Database> Type<DB> for Ts
where
    i64: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <i64 as Type<DB>>::type_info()
    }
    fn compatible(ty: &DB::TypeInfo) -> bool {
        <i64 as Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: Database> Decode<'r, DB> for Ts
where
    i64: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Ts(<i64 as Decode<DB>>::decode(value)?))
    }
}

impl<'q, DB: Database> Encode<'q, DB> for Ts
where
    i64: Encode<'q, DB>,
{
    fn encode_by_ref(
        &self,
        buf: &mut <DB as Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <i64 as Encode<DB>>::encode_by_ref(&self.0, buf)
    }
}

impl utoipa::PartialSchema for Ts {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(OaType::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .into()
    }
}

impl utoipa::ToSchema for Ts {}

/// A boolean stored as BIGINT 0/1 (SQLite has no BOOLEAN that sqlx decodes portably).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flag(pub bool);

impl Serialize for Flag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(self.0)
    }
}

impl<DB: Database> Type<DB> for Flag
where
    i64: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <i64 as Type<DB>>::type_info()
    }
    fn compatible(ty: &DB::TypeInfo) -> bool {
        <i64 as Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: Database> Decode<'r, DB> for Flag
where
    i64: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Flag(<i64 as Decode<DB>>::decode(value)? != 0))
    }
}

impl utoipa::PartialSchema for Flag {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(OaType::Boolean).into()
    }
}

impl utoipa::ToSchema for Flag {}
