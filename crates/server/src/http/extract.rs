//! Extractors of the admin API whose refusals are [`ApiError`]s: the JSON error shape, like
//! every other refusal, instead of axum's plain-text rejections.
//!
//! [`Admin`] checks the bearer token. Put it first among a handler's arguments: axum runs
//! extractors in order, so a request without the token is a 401 before its query or path is
//! looked at (and a caller without the token learns nothing about the route's parameters).

use std::sync::Arc;

use axum::extract::{FromRequestParts, rejection};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::App;
use super::auth::check_admin;
use super::error::ApiError;

/// A request that carries the admin token.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<Arc<App>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        check_admin(app.admin_token.as_deref(), &parts.headers).map(|()| Self)
    }
}

/// [`axum::extract::Query`], refused as a 400 `invalid_query` naming the problem.
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|e: rejection::QueryRejection| ApiError::BadRequest {
                code: "invalid_query",
                field: None,
                message: format!(
                    "{}; see the route's parameters in the README",
                    e.body_text()
                ),
            })
    }
}

/// [`axum::extract::Path`], refused as a 400 `invalid_path` naming the problem.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|e: rejection::PathRejection| ApiError::BadRequest {
                code: "invalid_path",
                field: None,
                message: e.body_text(),
            })
    }
}
