//! Identity: login, refresh and logout for every role; owner self-registration and lifecycle;
//! BackOffice applications reviewed by admins; operators created and scoped by their BackOffice;
//! admins; the first admin created on an empty database; password changes ([`passwords`]).

pub mod login_limit;
pub mod passwords;
pub mod store;
pub mod tokens;

use crate::api::auth::{Admins, BackOffices, Caller, Only, Role};
use crate::app::AppState;
use crate::audit;
use crate::validate::{self, Email, Fields, NewPassword, Nic, Phone};
use axum::extract::State;
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use login_limit::Limited;
use serde::{Deserialize, Serialize};
use serde_json::json;
use service_kit::db::{Db, StoreError};
use service_kit::extract::ApiPath;
use service_kit::extract::{ApiJson, ApiQuery};
use service_kit::page::{Page, PageQuery};
use service_kit::password::Passwords;
use service_kit::problem::Problem;
use service_kit::server::PeerAddr;
use store::{Account, NewAccount};
use tokens::TokenResponse;
use utoipa::ToSchema;

/// Account routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
        .route("/me", get(me))
        .route("/owners", post(register_owner).get(owners))
        .route("/owners/{nic}", get(owner))
        .route("/owners/{nic}/deactivate", post(deactivate_owner))
        .route("/owners/{nic}/reactivate", post(reactivate_owner))
        .route("/admins", post(create_admin))
        .route("/backoffice-applications", post(apply).get(applications))
        .route("/backoffice-applications/{id}/approve", post(approve_application))
        .route("/backoffice-applications/{id}/reject", post(reject_application))
        .route("/operators", post(create_operator).get(operators))
        .route("/operators/{id}/stations", put(set_operator_stations))
        .merge(passwords::router())
}

/// Body of `POST /auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    /// NIC for EV owners, email for everyone else.
    pub identifier: String,
    /// Password.
    pub password: String,
}

/// Body of `POST /auth/refresh` and `POST /auth/logout`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from login or the last refresh.
    pub refresh_token: String,
}

/// Body of `POST /owners`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterOwner {
    /// Sri Lankan NIC (old 9 digits + V/X, or new 12 digits): the login identifier.
    pub nic: String,
    /// Full name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Phone in E.164.
    pub phone: String,
    /// Password (10-128 characters).
    pub password: String,
}

/// Body of `POST /admins`, `POST /backoffice-applications` and `POST /operators`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewStaff {
    /// Email: the login identifier.
    pub email: String,
    /// Full name.
    pub name: String,
    /// Phone in E.164 (required for BackOffice applications and operators).
    pub phone: Option<String>,
    /// Password (10-128 characters).
    pub password: String,
    /// Business name (BackOffice applications only, required there).
    pub business_name: Option<String>,
    /// NIC of the applicant (BackOffice, optional).
    pub nic: Option<String>,
    /// Stations the operator may act on (operators only; must belong to the BackOffice).
    pub station_ids: Option<Vec<i64>>,
}

/// Body of `PUT /operators/{id}/stations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperatorScope {
    /// The complete new set of stations.
    pub station_ids: Vec<i64>,
}

/// An account as served, with an operator's scope.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    /// The account.
    #[serde(flatten)]
    pub account: Account,
    /// An operator's stations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub station_ids: Option<Vec<i64>>,
}

/// Query of account lists.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

impl From<Account> for AccountView {
    fn from(account: Account) -> AccountView {
        AccountView {
            account,
            station_ids: None,
        }
    }
}

async fn view(db: &Db, account: Account) -> Result<AccountView, Problem> {
    let station_ids = if account.role() == Some(Role::Operator) {
        Some(store::operator_stations(db, account.id).await?)
    } else {
        None
    };
    Ok(AccountView { account, station_ids })
}

fn conflict_taken(e: StoreError) -> Problem {
    match e {
        StoreError::Conflict => Problem::conflict("ACCOUNT_EXISTS", "an account with this email or NIC already exists"),
        other => other.into(),
    }
}

/// `POST /auth/login` (public): NIC for owners, email for others. The attempt is reserved in
/// the rate limit before the slow password check (see [`login_limit`] for the policy); a full
/// password pool answers 503 with `Retry-After` and the attempt does not count.
async fn login(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>, Problem> {
    let now = state.clock.now_ms();
    let (nic, email) = match Nic::parse(&req.identifier) {
        Ok(nic) => (Some(nic.as_str().to_string()), None),
        Err(_) => (None, Some(req.identifier.trim().to_ascii_lowercase())),
    };
    let key = nic.clone().or_else(|| email.clone()).unwrap_or_default();
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let peer = login_limit::client_address(
        PeerAddr::of(&extensions).map(|a| a.ip()),
        forwarded,
        &state.config.trusted_proxies,
    );
    let attempt = state.login_limiter.reserve(&key, peer, now).map_err(rate_limited)?;
    let admission = match state.passwords.admit() {
        Ok(admission) => admission,
        Err(busy) => {
            state.login_limiter.unchecked(attempt);
            return Err(busy.into());
        }
    };
    let found = match store::credentials(&state.db, nic.as_deref(), email.as_deref()).await {
        Ok(found) => found,
        Err(e) => {
            state.login_limiter.unchecked(attempt);
            return Err(e.into());
        }
    };
    // Verify against a dummy hash when the account is unknown, so timing does not reveal it.
    let hash = found
        .as_ref()
        .map(|(_, h)| h.clone())
        .unwrap_or_else(|| state.dummy_hash.clone());
    let ok = match state.passwords.verify_admitted(admission, req.password, hash).await {
        Ok(ok) => ok && found.is_some(),
        Err(busy) => {
            state.login_limiter.unchecked(attempt);
            return Err(busy.into());
        }
    };
    let Some((account, _)) = found.filter(|_| ok) else {
        // The reservation stays: it is this failure.
        drop(attempt);
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_CREDENTIALS",
            "unknown identifier or wrong password",
        ));
    };
    state.login_limiter.succeeded(attempt);
    match account.status.as_str() {
        "active" => {}
        "pending" => {
            return Err(Problem::forbidden_code(
                "ACCOUNT_PENDING",
                "the BackOffice application awaits review",
            ))
        }
        "rejected" => {
            return Err(Problem::forbidden_code(
                "ACCOUNT_REJECTED",
                "the BackOffice application was rejected",
            ))
        }
        _ => {
            return Err(Problem::forbidden_code(
                "ACCOUNT_INACTIVE",
                "the account is deactivated",
            ))
        }
    }
    Ok(Json(tokens::issue(&state, &account).await?))
}

/// The 429 of a rate-limited login, with `Retry-After`.
fn rate_limited(limited: Limited) -> Problem {
    let (secs, whose) = match limited {
        Limited::Identifier(secs) => (secs, "this identifier"),
        Limited::Address(secs) => (secs, "this client address"),
    };
    let mut p = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "LOGIN_RATE_LIMITED",
        format!("too many failed logins for {whose}; retry in {secs} s"),
    );
    if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
        p.headers.push((header::RETRY_AFTER, value));
    }
    p
}

fn invalid_refresh(code: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, code, "the refresh token is not valid")
}

/// `POST /auth/refresh` (public, the refresh token is the credential): rotates the token.
async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, Problem> {
    let now = state.clock.now_ms();
    let hash = tokens::sha256_hex(req.refresh_token.as_bytes());
    let row = store::refresh_by_hash(&state.db, &hash)
        .await?
        .ok_or_else(|| invalid_refresh("INVALID_REFRESH_TOKEN"))?;
    if row.revoked_at.is_some() || !store::revoke_refresh(&state.db, row.id, now).await? {
        // Reuse of a rotated token: someone else holds a copy; end every session of the account.
        store::revoke_all_refresh(&state.db, row.account_id, now).await?;
        return Err(invalid_refresh("REFRESH_TOKEN_REUSED"));
    }
    if row.expires_at <= now {
        return Err(invalid_refresh("REFRESH_TOKEN_EXPIRED"));
    }
    let account = store::by_id(&state.db, row.account_id)
        .await?
        .ok_or_else(|| invalid_refresh("INVALID_REFRESH_TOKEN"))?;
    if account.status != "active" {
        return Err(Problem::forbidden_code("ACCOUNT_INACTIVE", "the account is not active"));
    }
    Ok(Json(tokens::issue(&state, &account).await?))
}

/// `POST /auth/logout` (public, the refresh token is the credential): revokes the token.
async fn logout(State(state): State<AppState>, ApiJson(req): ApiJson<RefreshRequest>) -> Result<StatusCode, Problem> {
    let hash = tokens::sha256_hex(req.refresh_token.as_bytes());
    if let Some(row) = store::refresh_by_hash(&state.db, &hash).await? {
        store::revoke_refresh(&state.db, row.id, state.clock.now_ms()).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /me` (every role).
async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<AccountView>, Problem> {
    let account = store::by_id(&state.db, caller.id)
        .await?
        .ok_or_else(|| Problem::not_found("account"))?;
    Ok(Json(view(&state.db, account).await?))
}

/// Validated fields shared by every new account.
struct Person {
    email: Email,
    name: String,
    phone: Option<Phone>,
    password: NewPassword,
}

fn person(
    fields: &mut Fields,
    email: &str,
    name: &str,
    phone: Option<&str>,
    password: &str,
    phone_required: bool,
) -> Option<Person> {
    let email = fields.check("email", Email::parse(email));
    let name = fields.check("name", validate::text(name, 200));
    let phone = match phone {
        Some(p) => fields.check("phone", Phone::parse(p)).map(Some),
        None if phone_required => {
            fields.push("phone", "required", "a phone number is required");
            None
        }
        None => Some(None),
    };
    let password = fields.check("password", NewPassword::parse(password));
    Some(Person {
        email: email?,
        name: name?,
        phone: phone?,
        password: password?,
    })
}

/// What some kinds of account carry besides a [`Person`].
#[derive(Debug, Default)]
struct Extras<'a> {
    nic: Option<&'a str>,
    business_name: Option<&'a str>,
    backoffice_id: Option<i64>,
    stations: &'a [i64],
}

/// Creates an account in one transaction with its audit event; answers 201 with it.
async fn create_account(
    state: &AppState,
    role: Role,
    status: &str,
    p: Person,
    extras: Extras<'_>,
    actor: Option<&Caller>,
) -> Result<(StatusCode, Json<AccountView>), Problem> {
    let hash = state.passwords.hash(p.password.into_inner()).await?;
    let now = state.clock.now_ms();
    let new = NewAccount {
        role,
        status,
        nic: extras.nic,
        email: p.email.as_str(),
        name: &p.name,
        phone: p.phone.as_ref().map(|x| x.as_str()),
        business_name: extras.business_name,
        backoffice_id: extras.backoffice_id,
        password_hash: &hash,
    };
    let mut tx = state.db.begin().await?;
    let id = store::insert(&mut tx, &new, now).await.map_err(conflict_taken)?;
    if !extras.stations.is_empty() {
        store::set_operator_stations(&mut tx, id, extras.stations).await?;
    }
    let action = format!("{}.created", role.as_str());
    let payload = json!({ "role": role, "status": status, "stationIds": extras.stations });
    audit::record(&mut tx, "account", &id.to_string(), &action, actor, &payload, now).await?;
    tx.commit().await?;
    let account = store::by_id(&state.db, id)
        .await?
        .ok_or_else(|| Problem::internal("account vanished"))?;
    Ok((StatusCode::CREATED, Json(view(&state.db, account).await?)))
}

fn unchecked() -> Problem {
    Problem::internal("validation passed without values")
}

/// `POST /owners` (public): EV owner self-registration.
async fn register_owner(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RegisterOwner>,
) -> Result<(StatusCode, Json<AccountView>), Problem> {
    let mut fields = Fields::new();
    let nic = fields.check("nic", Nic::parse(&req.nic));
    let person = person(
        &mut fields,
        &req.email,
        &req.name,
        Some(&req.phone),
        &req.password,
        true,
    );
    fields.finish()?;
    let (Some(nic), Some(p)) = (nic, person) else {
        return Err(unchecked());
    };
    let extras = Extras {
        nic: Some(nic.as_str()),
        ..Extras::default()
    };
    create_account(&state, Role::Owner, "active", p, extras, None).await
}

async fn owner_for(state: &AppState, caller: &Caller, nic: &str) -> Result<Account, Problem> {
    let nic = Nic::parse(nic).map_err(|e| Problem::invalid_field("nic", e.code, e.message))?;
    let account = store::owner_by_nic(&state.db, nic.as_str())
        .await?
        .ok_or_else(|| Problem::not_found("owner"))?;
    if caller.role == Role::Owner && caller.id != account.id {
        return Err(Problem::forbidden("owners may only see their own account"));
    }
    Ok(account)
}

/// `GET /owners/{nic}` (admin, or the owner themself).
async fn owner(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(nic): ApiPath<String>,
) -> Result<Json<AccountView>, Problem> {
    caller.require(&[Role::Admin, Role::Owner])?;
    let account = owner_for(&state, &caller, &nic).await?;
    Ok(Json(AccountView::from(account)))
}

async fn change_status(
    state: &AppState,
    caller: &Caller,
    account: &Account,
    from: &[&str],
    to: &str,
    action: &str,
) -> Result<Account, Problem> {
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    if !store::set_status(&mut tx, account.id, from, to, now).await? {
        return Err(Problem::conflict(
            "ILLEGAL_TRANSITION",
            format!("the account is {}, so it cannot become {to}", account.status),
        ));
    }
    audit::record(
        &mut tx,
        "account",
        &account.id.to_string(),
        action,
        Some(caller),
        &json!({ "from": account.status, "to": to }),
        now,
    )
    .await?;
    tx.commit().await?;
    if to != "active" {
        // A deactivated or rejected account keeps no session beyond its current access token.
        store::revoke_all_refresh(&state.db, account.id, now).await?;
    }
    store::by_id(&state.db, account.id)
        .await?
        .ok_or_else(|| Problem::not_found("account"))
}

/// `POST /owners/{nic}/deactivate` (admin, or the owner themself).
async fn deactivate_owner(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(nic): ApiPath<String>,
) -> Result<Json<AccountView>, Problem> {
    caller.require(&[Role::Admin, Role::Owner])?;
    let account = owner_for(&state, &caller, &nic).await?;
    let account = change_status(&state, &caller, &account, &["active"], "inactive", "owner.deactivated").await?;
    Ok(Json(AccountView::from(account)))
}

/// `POST /owners/{nic}/reactivate` (admin).
async fn reactivate_owner(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(nic): ApiPath<String>,
) -> Result<Json<AccountView>, Problem> {
    caller.require(&[Role::Admin])?;
    let account = owner_for(&state, &caller, &nic).await?;
    let account = change_status(&state, &caller, &account, &["inactive"], "active", "owner.reactivated").await?;
    Ok(Json(AccountView::from(account)))
}

/// `POST /admins` (admin).
async fn create_admin(
    State(state): State<AppState>,
    Only(caller, _): Only<Admins>,
    ApiJson(req): ApiJson<NewStaff>,
) -> Result<(StatusCode, Json<AccountView>), Problem> {
    let p = staff(&req, false, false)?;
    create_account(&state, Role::Admin, "active", p, Extras::default(), Some(&caller)).await
}

/// The validated person of an admin (`operator` false) or operator body; other staff fields
/// are refused.
fn staff(req: &NewStaff, operator: bool, phone_required: bool) -> Result<Person, Problem> {
    let mut fields = Fields::new();
    reject_extra(&mut fields, req, false, operator);
    let p = person(
        &mut fields,
        &req.email,
        &req.name,
        req.phone.as_deref(),
        &req.password,
        phone_required,
    );
    fields.finish()?;
    p.ok_or_else(unchecked)
}

/// Fields that only some kinds of staff take.
fn reject_extra(fields: &mut Fields, req: &NewStaff, business: bool, stations: bool) {
    if !business && req.business_name.is_some() {
        fields.push(
            "businessName",
            "not_allowed",
            "only BackOffice applications have a business name",
        );
    }
    if !business && req.nic.is_some() {
        fields.push("nic", "not_allowed", "only BackOffice applications carry a NIC here");
    }
    if !stations && req.station_ids.is_some() {
        fields.push("stationIds", "not_allowed", "only operators have stations");
    }
}

/// `POST /backoffice-applications` (public): a business applies; an admin reviews.
async fn apply(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<NewStaff>,
) -> Result<(StatusCode, Json<AccountView>), Problem> {
    let mut fields = Fields::new();
    reject_extra(&mut fields, &req, true, false);
    let p = person(
        &mut fields,
        &req.email,
        &req.name,
        req.phone.as_deref(),
        &req.password,
        true,
    );
    let business = match req.business_name.as_deref() {
        Some(b) => fields.check("businessName", validate::text(b, 200)),
        None => {
            fields.push("businessName", "required", "a business name is required");
            None
        }
    };
    let nic = match req.nic.as_deref() {
        Some(n) => fields.check("nic", Nic::parse(n)).map(Some),
        None => Some(None),
    };
    fields.finish()?;
    let (Some(p), Some(business), Some(nic)) = (p, business, nic) else {
        return Err(unchecked());
    };
    let extras = Extras {
        nic: nic.as_ref().map(|n| n.as_str()),
        business_name: Some(&business),
        ..Extras::default()
    };
    create_account(&state, Role::BackOffice, "pending", p, extras, None).await
}

/// A page of accounts of `role` (optionally of one employer), with operators' scopes.
async fn list_accounts(
    state: &AppState,
    role: Role,
    q: ListQuery,
    employer: Option<i64>,
) -> Result<Json<Page<AccountView>>, Problem> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let rows = store::list(&state.db, role, q.status.as_deref(), employer, page.int_key()?, limit).await?;
    let mut items = Vec::with_capacity(rows.len());
    for account in rows {
        items.push(view(&state.db, account).await?);
    }
    Ok(Json(Page::new(items, limit, |a: &AccountView| {
        a.account.id.to_string()
    })))
}

/// `GET /backoffice-applications?status=` (admin).
async fn applications(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<AccountView>>, Problem> {
    caller.require(&[Role::Admin])?;
    list_accounts(&state, Role::BackOffice, q, None).await
}

/// `GET /owners?status=` (admin).
async fn owners(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<AccountView>>, Problem> {
    caller.require(&[Role::Admin])?;
    list_accounts(&state, Role::Owner, q, None).await
}

async fn review(
    state: AppState,
    caller: Caller,
    id: i64,
    to: &str,
    action: &str,
) -> Result<Json<AccountView>, Problem> {
    caller.require(&[Role::Admin])?;
    let account = store::by_id(&state.db, id)
        .await?
        .filter(|a| a.role() == Some(Role::BackOffice))
        .ok_or_else(|| Problem::not_found("application"))?;
    let account = change_status(&state, &caller, &account, &["pending"], to, action).await?;
    Ok(Json(AccountView::from(account)))
}

/// `POST /backoffice-applications/{id}/approve` (admin).
async fn approve_application(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<AccountView>, Problem> {
    review(state, caller, id, "active", "backoffice.approved").await
}

/// `POST /backoffice-applications/{id}/reject` (admin).
async fn reject_application(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<AccountView>, Problem> {
    review(state, caller, id, "rejected", "backoffice.rejected").await
}

/// Checks that every station belongs to `backoffice_id`; a foreign or unknown one is 403/400.
async fn own_stations(state: &AppState, backoffice_id: i64, stations: &[i64]) -> Result<Vec<i64>, Problem> {
    let mut out: Vec<i64> = stations.to_vec();
    out.sort_unstable();
    out.dedup();
    for (i, id) in out.iter().enumerate() {
        match crate::stations::store::owner_of(&state.db, *id).await? {
            Some(owner) if owner == backoffice_id => {}
            Some(_) => {
                return Err(Problem::forbidden(format!(
                    "station {id} belongs to another BackOffice"
                )))
            }
            None => {
                return Err(Problem::invalid_field(
                    &format!("stationIds[{i}]"),
                    "unknown_station",
                    format!("station {id} does not exist"),
                ))
            }
        }
    }
    Ok(out)
}

/// `POST /operators` (BackOffice): staff assigned to some of its stations.
async fn create_operator(
    State(state): State<AppState>,
    Only(caller, _): Only<BackOffices>,
    ApiJson(req): ApiJson<NewStaff>,
) -> Result<(StatusCode, Json<AccountView>), Problem> {
    let p = staff(&req, true, true)?;
    let stations = own_stations(&state, caller.id, req.station_ids.as_deref().unwrap_or_default()).await?;
    let extras = Extras {
        backoffice_id: Some(caller.id),
        stations: &stations,
        ..Extras::default()
    };
    create_account(&state, Role::Operator, "active", p, extras, Some(&caller)).await
}

/// `GET /operators` (BackOffice: its own; admin: all).
async fn operators(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<AccountView>>, Problem> {
    caller.require(&[Role::Admin, Role::BackOffice])?;
    let employer = (caller.role == Role::BackOffice).then_some(caller.id);
    list_accounts(&state, Role::Operator, q, employer).await
}

/// `PUT /operators/{id}/stations` (the operator's BackOffice): replaces the station scope. It
/// takes effect at once; the `stations` claim of tokens issued before shows the old scope.
async fn set_operator_stations(
    State(state): State<AppState>,
    Only(caller, _): Only<BackOffices>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<OperatorScope>,
) -> Result<Json<AccountView>, Problem> {
    let account = store::by_id(&state.db, id)
        .await?
        .filter(|a| a.role() == Some(Role::Operator))
        .ok_or_else(|| Problem::not_found("operator"))?;
    if account.backoffice_id != Some(caller.id) {
        return Err(Problem::forbidden("this operator works for another BackOffice"));
    }
    let stations = own_stations(&state, caller.id, &req.station_ids).await?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    store::set_operator_stations(&mut tx, id, &stations).await?;
    audit::record(
        &mut tx,
        "account",
        &id.to_string(),
        "operator.scope_changed",
        Some(&caller),
        &json!({ "stationIds": stations }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(view(&state.db, account).await?))
}

/// The generated credentials of the first admin.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminCredentials {
    /// Login email.
    pub email: String,
    /// Generated password, shown once.
    pub password: String,
}

impl std::fmt::Debug for AdminCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCredentials")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// Creates an admin with a generated password when the database has none; returns the
/// credentials then (and `None` on every later start).
pub async fn bootstrap_admin(
    db: &Db,
    passwords: &Passwords,
    email: &str,
    now_ms: i64,
) -> anyhow::Result<Option<AdminCredentials>> {
    if store::admin_exists(db).await? {
        return Ok(None);
    }
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("admin email: {}", e.message))?;
    use base64::Engine;
    use rand::RngCore;
    let mut raw = [0u8; 18];
    rand::rng().fill_bytes(&mut raw);
    let generated = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let hash = passwords.hash(generated.clone()).await?;
    let mut tx = db.begin().await?;
    let inserted = store::insert(
        &mut tx,
        &NewAccount {
            role: Role::Admin,
            status: "active",
            nic: None,
            email: email.as_str(),
            name: "Administrator",
            phone: None,
            business_name: None,
            backoffice_id: None,
            password_hash: &hash,
        },
        now_ms,
    )
    .await;
    let id = match inserted {
        Ok(id) => id,
        // Another replica bootstrapped at the same moment.
        Err(StoreError::Conflict) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    audit::record(
        &mut tx,
        "account",
        &id.to_string(),
        "admin.bootstrapped",
        None,
        &json!({ "email": email.as_str() }),
        now_ms,
    )
    .await?;
    tx.commit().await?;
    Ok(Some(AdminCredentials {
        email: email.as_str().to_string(),
        password: generated,
    }))
}
