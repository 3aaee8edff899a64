//! What the auth service does. Password hashing runs on the blocking pool before the write
//! transaction opens, so the shared group commit never waits on argon2.

use super::error::AuthError;
use super::model::*;
use super::secrets;
use super::store;
use crate::bus::{Envelope, Meta, Names, outbox};
use crate::store::{Store, WriteError};
use redb::WriteTransaction;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// How long a setup token works.
pub const SETUP_TTL: Duration = Duration::from_secs(30 * 60);

/// Session lifetimes (config `session_idle_timeout`, `session_max_age`).
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    pub idle: Duration,
    pub max_age: Duration,
}

impl Lifetimes {
    /// A session's `last_seen_at` is refreshed at most this often (a write per request would
    /// cost an fsync each); idle expiry is exact to within this.
    fn touch_every(self) -> u64 {
        (self.idle.as_secs() / 4).clamp(1, 60)
    }
}

pub struct Auth {
    pub db: Store,
    pub names: Names,
    pub lifetimes: Lifetimes,
    /// The hash of the one-time setup token and when it stops working, while no admin exists.
    pub setup: Mutex<Option<(String, Instant)>>,
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn emit(
    t: &WriteTransaction,
    names: &Names,
    kind: &str,
    id: &str,
    version: u64,
    data: impl serde::Serialize,
    meta: &Meta,
) -> Result<(), AuthError> {
    outbox::append(t, names, &Envelope::new(kind, id, version, data, meta))?;
    Ok(())
}

fn admins(t: &WriteTransaction) -> Result<usize, AuthError> {
    Ok(store::accounts(t)?
        .iter()
        .filter(|a| a.role == Role::Admin)
        .count())
}

fn flatten(e: WriteError<AuthError>) -> AuthError {
    match e {
        WriteError::Rejected(e) => e,
        WriteError::Store(e) => AuthError::Store(e),
    }
}

/// Hashes a password on the blocking pool.
pub async fn hash(password: String) -> String {
    tokio::task::spawn_blocking(move || secrets::hash_password(&password))
        .await
        .expect("hashing does not panic")
}

async fn verify(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || secrets::verify_password(&password, &hash))
        .await
        .unwrap_or(false)
}

/// Inserts a new account (fields checked by the caller) and its event.
pub fn insert_account(
    t: &WriteTransaction,
    names: &Names,
    email: String,
    role: Role,
    password_hash: String,
    meta: &Meta,
) -> Result<AccountRecord, AuthError> {
    if store::account_by_email(t, &email)?.is_some() {
        return Err(AuthError::EmailTaken);
    }
    let now = crate::clock::now_rfc3339();
    let account = AccountRecord {
        id: crate::ids::new("acc"),
        email,
        role,
        password_hash,
        created_at: now.clone(),
        updated_at: now,
        last_login_at: None,
        version: 1,
    };
    store::put_account(t, &account, None)?;
    let view = Account::from(&account);
    emit(t, names, "account.created", &account.id, 1, view, meta)?;
    Ok(account)
}

/// Saves a changed account (version bumped here) and its event.
fn update_account(
    t: &WriteTransaction,
    names: &Names,
    before: &AccountRecord,
    mut account: AccountRecord,
    meta: &Meta,
) -> Result<AccountRecord, AuthError> {
    account.updated_at = crate::clock::now_rfc3339();
    account.version = before.version + 1;
    store::put_account(t, &account, Some(before))?;
    let view = Account::from(&account);
    emit(
        t,
        names,
        "account.updated",
        &account.id,
        account.version,
        view,
        meta,
    )?;
    Ok(account)
}

/// Sets a new password, ending every session of the account but `keep`.
pub fn set_password(
    t: &WriteTransaction,
    names: &Names,
    before: &AccountRecord,
    password_hash: String,
    keep: Option<&str>,
    meta: &Meta,
) -> Result<AccountRecord, AuthError> {
    let changed = AccountRecord {
        password_hash,
        ..before.clone()
    };
    let account = update_account(t, names, before, changed, meta)?;
    store::end_sessions(t, &account.id, keep)?;
    Ok(account)
}

/// Inserts a new API token and its event; returns it with its secret.
pub fn insert_token(
    t: &WriteTransaction,
    names: &Names,
    body: TokenCreateBody,
    created_by: String,
    meta: &Meta,
) -> Result<CreatedToken, AuthError> {
    let secret = secrets::new_token();
    let record = TokenRecord {
        id: crate::ids::new("tok"),
        name: body.name,
        role: body.role,
        hash: secrets::digest(&secret),
        created_at: crate::clock::now_rfc3339(),
        created_by,
        last_used_at: None,
        expires_at: body.expires_at,
    };
    store::put_token(t, &record)?;
    let info = ApiToken::from(&record);
    emit(t, names, "token.created", &record.id, 1, &info, meta)?;
    Ok(CreatedToken {
        info,
        token: secret,
    })
}

/// Checks a token request: a name, and an expiry in the future when given.
pub fn check_token(body: &TokenCreateBody) -> Result<TokenCreateBody, AuthError> {
    let mut errors = Vec::new();
    let name = crate::services::required_text("name", &body.name, 100, &mut errors);
    let expires_at = match &body.expires_at {
        None => None,
        Some(text) => match crate::clock::parse_rfc3339(text) {
            Some(t) if t > SystemTime::now() => Some(crate::clock::rfc3339(t)),
            Some(_) => {
                errors.push(field("expires_at", "must be in the future"));
                None
            }
            None => {
                errors.push(field("expires_at", "must be an RFC 3339 time"));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(AuthError::Invalid(errors));
    }
    Ok(TokenCreateBody {
        name,
        role: body.role,
        expires_at,
    })
}

fn field(field: &str, message: &str) -> crate::bus::rpc::FieldError {
    crate::bus::rpc::FieldError {
        field: field.into(),
        message: message.into(),
    }
}

fn new_session(
    t: &WriteTransaction,
    lifetimes: Lifetimes,
    account: &AccountRecord,
) -> Result<NewSession, AuthError> {
    let secret = secrets::random(32);
    let now = now_secs();
    let record = SessionRecord {
        account_id: account.id.clone(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + lifetimes.max_age.as_secs(),
        csrf_token: secrets::random(32),
    };
    store::put_session(t, &secrets::digest(&secret), &record)?;
    Ok(NewSession {
        max_age_secs: lifetimes.max_age.as_secs(),
        principal: session_principal(lifetimes, account, &record),
        account: Account::from(account),
        secret,
    })
}

fn session_principal(
    lifetimes: Lifetimes,
    account: &AccountRecord,
    s: &SessionRecord,
) -> Principal {
    Principal {
        id: account.id.clone(),
        email: Some(account.email.clone()),
        role: account.role,
        csrf_token: Some(s.csrf_token.clone()),
        account_id: Some(account.id.clone()),
        valid_until: Some(s.expires_at.min(s.last_seen_at + lifetimes.idle.as_secs())),
    }
}

impl Auth {
    /// Whether an admin account exists.
    pub async fn has_admin(&self) -> Result<bool, AuthError> {
        Ok(self
            .db
            .read(store::read_accounts)
            .await?
            .iter()
            .any(|a| a.role == Role::Admin))
    }

    /// A fresh one-time setup token (any previous one stops working).
    pub fn new_setup_token(&self) -> String {
        let token = secrets::random(24);
        *self.setup.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((secrets::digest(&token), Instant::now() + SETUP_TTL));
        token
    }

    /// `POST /api/auth/setup`: the first admin, with the one-time token; signs them in.
    pub async fn setup(&self, body: SetupBody, meta: Meta) -> Result<NewSession, AuthError> {
        let valid = {
            let setup = self.setup.lock().unwrap_or_else(|e| e.into_inner());
            setup.as_ref().is_some_and(|(hash, until)| {
                Instant::now() < *until && secrets::same(hash, &secrets::digest(&body.setup_token))
            })
        };
        if !valid {
            return Err(if self.has_admin().await? {
                AuthError::AlreadySetUp
            } else {
                AuthError::InvalidSetupToken
            });
        }
        let mut errors = Vec::new();
        let email = check_email(&body.email, &mut errors);
        check_password("password", &body.password, &mut errors);
        if !errors.is_empty() {
            return Err(AuthError::Invalid(errors));
        }
        let password_hash = hash(body.password).await;
        let (names, lifetimes) = (self.names.clone(), self.lifetimes);
        let session = self
            .db
            .write(move |t| {
                if admins(t)? > 0 {
                    return Err(AuthError::AlreadySetUp);
                }
                let account = insert_account(
                    t,
                    &names,
                    email.clone(),
                    Role::Admin,
                    password_hash.clone(),
                    &meta,
                )?;
                new_session(t, lifetimes, &account)
            })
            .await
            .map_err(flatten)?;
        // Used once.
        *self.setup.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(session)
    }

    /// `POST /api/auth/login`.
    pub async fn login(&self, body: LoginBody) -> Result<NewSession, AuthError> {
        let email = body.email.trim().to_lowercase();
        let found = {
            let email = email.clone();
            self.db
                .read(move |t| store::read_account_by_email(t, &email))
                .await?
        };
        // An unknown email costs the same as a wrong password.
        let hash = found
            .as_ref()
            .map(|a| a.password_hash.clone())
            .unwrap_or_else(|| secrets::decoy_hash().to_string());
        let ok = verify(body.password, hash).await;
        let Some(account) = found.filter(|_| ok) else {
            return Err(AuthError::InvalidCredentials);
        };
        let lifetimes = self.lifetimes;
        self.db
            .write(move |t| {
                // Deleted between the check and now: refuse.
                let Some(mut current) = store::account(t, &account.id)? else {
                    return Err(AuthError::InvalidCredentials);
                };
                current.last_login_at = Some(crate::clock::now_rfc3339());
                store::put_account(t, &current, Some(&account))?;
                new_session(t, lifetimes, &current)
            })
            .await
            .map_err(flatten)
    }

    /// `POST /api/auth/logout`: ends the session.
    pub async fn logout(&self, hash: String) -> Result<(), AuthError> {
        self.db
            .write(move |t| store::remove_session(t, &hash).map_err(AuthError::Store))
            .await
            .map_err(flatten)
    }

    /// Who a credential belongs to, if it still works.
    pub async fn authenticate(&self, c: Credential) -> Result<Principal, AuthError> {
        match c.kind {
            CredentialKind::Session => self.authenticate_session(c.hash).await,
            CredentialKind::Token => self.authenticate_token(c.hash).await,
        }
    }

    async fn authenticate_session(&self, hash: String) -> Result<Principal, AuthError> {
        let lifetimes = self.lifetimes;
        let found = {
            let hash = hash.clone();
            self.db
                .read(move |t| {
                    let Some(s) = store::read_session(t, &hash)? else {
                        return Ok(None);
                    };
                    Ok(store::read_account(t, &s.account_id)?.map(|a| (s, a)))
                })
                .await?
        };
        let Some((session, account)) = found else {
            return Err(AuthError::Unauthenticated);
        };
        let now = now_secs();
        if session.expires_at <= now || session.last_seen_at + lifetimes.idle.as_secs() <= now {
            self.logout(hash).await?;
            return Err(AuthError::SessionExpired);
        }
        if now - session.last_seen_at < lifetimes.touch_every() {
            return Ok(session_principal(lifetimes, &account, &session));
        }
        let touched = SessionRecord {
            last_seen_at: now,
            ..session
        };
        let principal = session_principal(lifetimes, &account, &touched);
        self.db
            .write(move |t| {
                // Ended meanwhile (logout, password change): stays ended.
                if store::session(t, &hash)?.is_none() {
                    return Err(AuthError::Unauthenticated);
                }
                store::put_session(t, &hash, &touched)?;
                Ok(())
            })
            .await
            .map_err(flatten)?;
        Ok(principal)
    }

    async fn authenticate_token(&self, hash: String) -> Result<Principal, AuthError> {
        let found = self
            .db
            .read(move |t| store::read_token_by_hash(t, &hash))
            .await?;
        let Some(token) = found else {
            return Err(AuthError::Unauthenticated);
        };
        let expires = token
            .expires_at
            .as_deref()
            .and_then(crate::clock::parse_rfc3339);
        let valid_until = expires.map(|e| crate::clock::unix_millis(e) / 1000);
        if valid_until.is_some_and(|v| v <= now_secs()) {
            return Err(AuthError::TokenExpired);
        }
        // Last use is kept to the minute: a write per request would cost an fsync each.
        let stale = token
            .last_used_at
            .as_deref()
            .and_then(crate::clock::parse_rfc3339)
            .is_none_or(|t| t.elapsed().unwrap_or_default() >= Duration::from_secs(60));
        if stale {
            let id = token.id.clone();
            self.db
                .write(move |t| {
                    if let Some(mut current) = store::token(t, &id)? {
                        current.last_used_at = Some(crate::clock::now_rfc3339());
                        store::put_token(t, &current)?;
                    }
                    Ok::<_, AuthError>(())
                })
                .await
                .map_err(flatten)?;
        }
        Ok(Principal {
            id: token.id,
            email: None,
            role: token.role,
            csrf_token: None,
            account_id: None,
            valid_until,
        })
    }

    /// `POST /api/auth/password`: the caller's own password; their other sessions end.
    pub async fn change_password(&self, req: PasswordRequest, meta: Meta) -> Result<(), AuthError> {
        let id = req.account_id.clone();
        let account = self
            .db
            .read(move |t| store::read_account(t, &id))
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        if !verify(req.body.current_password, account.password_hash.clone()).await {
            return Err(AuthError::field(
                "current_password",
                "is not the current password",
            ));
        }
        let mut errors = Vec::new();
        check_password("new_password", &req.body.new_password, &mut errors);
        if !errors.is_empty() {
            return Err(AuthError::Invalid(errors));
        }
        let password_hash = hash(req.body.new_password).await;
        let (names, keep) = (self.names.clone(), req.keep_session);
        self.db
            .write(move |t| {
                let before = store::account(t, &account.id)?.ok_or(AuthError::Unauthenticated)?;
                set_password(
                    t,
                    &names,
                    &before,
                    password_hash.clone(),
                    keep.as_deref(),
                    &meta,
                )?;
                Ok(())
            })
            .await
            .map_err(flatten)
    }

    pub async fn accounts(&self) -> Result<Vec<Account>, AuthError> {
        let mut all = self.db.read(store::read_accounts).await?;
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all.iter().map(Account::from).collect())
    }

    pub async fn create_account(
        &self,
        body: AccountCreateBody,
        meta: Meta,
    ) -> Result<Account, AuthError> {
        let mut errors = Vec::new();
        let email = check_email(&body.email, &mut errors);
        check_password("password", &body.password, &mut errors);
        if !errors.is_empty() {
            return Err(AuthError::Invalid(errors));
        }
        let password_hash = hash(body.password).await;
        let names = self.names.clone();
        let account = self
            .db
            .write(move |t| {
                let (email, hash) = (email.clone(), password_hash.clone());
                insert_account(t, &names, email, body.role, hash, &meta)
            })
            .await
            .map_err(flatten)?;
        Ok(Account::from(&account))
    }

    /// `PATCH /api/admin/accounts/{id}`: role, email and/or a new password (which ends the
    /// account's sessions). The last admin cannot stop being one.
    pub async fn patch_account(
        &self,
        req: AccountPatchRequest,
        meta: Meta,
    ) -> Result<Account, AuthError> {
        let mut errors = Vec::new();
        let email = req
            .body
            .email
            .as_deref()
            .map(|e| check_email(e, &mut errors));
        if let Some(p) = &req.body.password {
            check_password("password", p, &mut errors);
        }
        if !errors.is_empty() {
            return Err(AuthError::Invalid(errors));
        }
        let password_hash = match req.body.password {
            Some(p) => Some(hash(p).await),
            None => None,
        };
        let names = self.names.clone();
        let (id, expected, role) = (req.id, req.expected_version, req.body.role);
        let account = self
            .db
            .write(move |t| {
                let before = store::account(t, &id)?.ok_or(AuthError::NotFound("account"))?;
                if let Some(v) = expected.filter(|v| *v != before.version) {
                    return Err(AuthError::Stale {
                        expected: v,
                        current: before.version,
                    });
                }
                if before.role == Role::Admin
                    && role.is_some_and(|r| r != Role::Admin)
                    && admins(t)? <= 1
                {
                    return Err(AuthError::LastAdmin);
                }
                if let Some(e) = &email
                    && *e != before.email
                    && store::account_by_email(t, e)?.is_some()
                {
                    return Err(AuthError::EmailTaken);
                }
                let mut changed = before.clone();
                if let Some(r) = role {
                    changed.role = r;
                }
                if let Some(e) = &email {
                    changed.email.clone_from(e);
                }
                let new_password = password_hash.is_some();
                if let Some(h) = &password_hash {
                    changed.password_hash.clone_from(h);
                }
                if !new_password && changed.role == before.role && changed.email == before.email {
                    return Ok(before);
                }
                let account = update_account(t, &names, &before, changed, &meta)?;
                if new_password {
                    store::end_sessions(t, &account.id, None)?;
                }
                Ok(account)
            })
            .await
            .map_err(flatten)?;
        Ok(Account::from(&account))
    }

    /// `DELETE /api/admin/accounts/{id}`: the account and its sessions.
    pub async fn delete_account(&self, id: String, meta: Meta) -> Result<(), AuthError> {
        let names = self.names.clone();
        self.db
            .write(move |t| {
                let account = store::account(t, &id)?.ok_or(AuthError::NotFound("account"))?;
                if account.role == Role::Admin && admins(t)? <= 1 {
                    return Err(AuthError::LastAdmin);
                }
                store::end_sessions(t, &account.id, None)?;
                store::remove_account(t, &account)?;
                let view = Account::from(&account);
                emit(
                    t,
                    &names,
                    "account.deleted",
                    &id,
                    account.version + 1,
                    view,
                    &meta,
                )
            })
            .await
            .map_err(flatten)
    }

    pub async fn tokens(&self) -> Result<Vec<ApiToken>, AuthError> {
        let mut all = self.db.read(store::read_tokens).await?;
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all.iter().map(ApiToken::from).collect())
    }

    pub async fn create_token(
        &self,
        req: TokenCreateRequest,
        meta: Meta,
    ) -> Result<CreatedToken, AuthError> {
        let body = check_token(&req.body)?;
        let names = self.names.clone();
        self.db
            .write(move |t| insert_token(t, &names, body.clone(), req.created_by.clone(), &meta))
            .await
            .map_err(flatten)
    }

    pub async fn revoke_token(&self, id: String, meta: Meta) -> Result<(), AuthError> {
        let names = self.names.clone();
        self.db
            .write(move |t| {
                let token = store::token(t, &id)?.ok_or(AuthError::NotFound("token"))?;
                store::remove_token(t, &token)?;
                emit(
                    t,
                    &names,
                    "token.revoked",
                    &id,
                    2,
                    ApiToken::from(&token),
                    &meta,
                )
            })
            .await
            .map_err(flatten)
    }

    /// Drops sessions past their end (they are refused anyway; this keeps the store small).
    pub async fn prune(&self) -> Result<usize, AuthError> {
        let idle = self.lifetimes.idle.as_secs();
        self.db
            .write(move |t| store::prune_sessions(t, now_secs(), idle).map_err(AuthError::Store))
            .await
            .map_err(flatten)
    }
}
