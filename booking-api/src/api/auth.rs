//! Roles, access-token claims and the bearer-token extractor.
//!
//! Every handler takes a [`Caller`] (or [`Only`], which refuses other roles before the body is
//! read) and states the roles it admits; station scope (an operator's assigned stations, a
//! BackOffice's own stations) is checked against the database by the feature that loads the
//! station, so scope changes apply at once. The token's `stations` claim tells clients the
//! scope at issue time.

use crate::app::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use service_kit::extract::{bearer, unauthorized};
use service_kit::problem::Problem;
use utoipa::ToSchema;

/// The four roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs the platform: approves BackOffice applications, sees everything.
    Admin,
    /// A business that owns stations, admitted through an application.
    #[serde(rename = "backoffice")]
    BackOffice,
    /// Staff of a BackOffice, assigned to some of its stations.
    Operator,
    /// An EV owner who books slots.
    Owner,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::BackOffice => "backoffice",
            Role::Operator => "operator",
            Role::Owner => "owner",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "backoffice" => Some(Role::BackOffice),
            "operator" => Some(Role::Operator),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// Issuer and audience of access tokens: the central system's differ, so a secret shared by
/// mistake does not let its operator tokens in here (nor ours there).
pub const SCOPE: service_kit::jwt::Scope = service_kit::jwt::Scope {
    issuer: "evcs-booking-api",
    audience: "evcs-booking-api",
};

/// Claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Account id.
    pub sub: String,
    /// Role.
    pub role: Role,
    /// Station scope of an operator (empty for other roles).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stations: Vec<i64>,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Account id.
    pub id: i64,
    /// Role.
    pub role: Role,
    /// Operator station scope.
    pub stations: Vec<i64>,
}

impl Caller {
    /// Refuses with 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Problem> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "the {} role may not do this",
                self.role.as_str()
            )))
        }
    }

    /// Whether this caller is an operator assigned to `station_id` now. The database decides,
    /// not the token's claim, so a BackOffice that takes a station away takes it at once.
    pub async fn operates(&self, db: &service_kit::db::Db, station_id: i64) -> Result<bool, Problem> {
        if self.role != Role::Operator {
            return Ok(false);
        }
        Ok(crate::accounts::store::operator_assigned(db, self.id, station_id).await?)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let token = bearer(parts)?;
        Caller::from_token(state, token).map(|(caller, _)| caller)
    }
}

impl Caller {
    /// The caller an access token names, with the token's expiry (seconds since the epoch);
    /// 401 for a token that does not verify now. For endpoints that take the token from
    /// elsewhere than the Authorization header (the live WebSocket).
    pub fn from_token(state: &AppState, token: &str) -> Result<(Caller, i64), Problem> {
        let claims: Claims = state
            .jwt
            .verify(token, state.clock.now().timestamp())
            .map_err(|e| unauthorized(&format!("invalid token: {e}")))?;
        let id = claims.sub.parse().map_err(|_| unauthorized("invalid token subject"))?;
        Ok((
            Caller {
                id,
                role: claims.role,
                stations: claims.stations,
            },
            claims.exp,
        ))
    }
}

/// A set of roles an endpoint admits, checked by the [`Only`] extractor.
pub trait Roles: Send + Sync + 'static {
    /// The admitted roles.
    const ROLES: &'static [Role];
}

/// Admins.
#[derive(Debug)]
pub struct Admins;
impl Roles for Admins {
    const ROLES: &'static [Role] = &[Role::Admin];
}

/// BackOffices.
#[derive(Debug)]
pub struct BackOffices;
impl Roles for BackOffices {
    const ROLES: &'static [Role] = &[Role::BackOffice];
}

/// Admins and BackOffices (station management).
#[derive(Debug)]
pub struct Managers;
impl Roles for Managers {
    const ROLES: &'static [Role] = &[Role::Admin, Role::BackOffice];
}

/// EV owners.
#[derive(Debug)]
pub struct Owners;
impl Roles for Owners {
    const ROLES: &'static [Role] = &[Role::Owner];
}

/// A caller whose role is in `R`: refuses others with 403 before the body is read, so a
/// forbidden caller learns nothing from validation errors.
#[derive(Debug)]
pub struct Only<R: Roles>(pub Caller, pub std::marker::PhantomData<R>);

impl<R: Roles> FromRequestParts<AppState> for Only<R> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(R::ROLES)?;
        Ok(Only(caller, std::marker::PhantomData))
    }
}
