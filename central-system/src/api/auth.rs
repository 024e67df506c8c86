//! The bearer-token extractor and role checks.

use super::problem::Problem;
use crate::app::AppState;
use crate::auth::jwt::{Claims, Role};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use service_kit::extract::{bearer, unauthorized};

/// The authenticated caller of an API request.
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

impl Caller {
    /// Refuses with 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Problem> {
        if roles.contains(&self.0.role) {
            Ok(())
        } else {
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "your role may not do this",
            ))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let token = bearer(parts)?;
        let claims = state
            .jwt
            .verify(token, chrono::Utc::now().timestamp())
            .map_err(|e| unauthorized(&format!("invalid token: {e}")))?;
        Ok(Caller(claims))
    }
}

/// An authenticated admin; refuses others with 403 before the body is even read.
#[derive(Debug, Clone)]
pub struct Admin(pub Claims);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(&[Role::Admin])?;
        Ok(Admin(caller.0))
    }
}
