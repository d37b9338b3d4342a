//! `switchboard-loadgen backend`: a small HTTP backend for flows' fetch nodes, serving JSON
//! from a file, so a look-up flow (`flows/lookup/balance.yaml`) can be tried and load-tested
//! without a real system behind it.
//!
//! The data file maps request paths to JSON answers (`{"/accounts/12345678": {"balance":
//! 1520.75}}`); any method is accepted, a path the file does not hold is a 404, and `--delay`
//! holds every answer back to rehearse a slow backend.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// What the backend serves.
#[derive(Debug, Clone)]
pub struct Data {
    answers: HashMap<String, String>,
    delay: Duration,
}

impl Data {
    /// Reads the data file: a JSON object of paths to answers. `Err` says what is wrong.
    pub fn parse(text: &str, delay: Duration) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let serde_json::Value::Object(map) = value else {
            return Err("must be a JSON object of paths (\"/accounts/1\") to answers".to_owned());
        };
        let mut answers = HashMap::new();
        for (path, answer) in map {
            if !path.starts_with('/') {
                return Err(format!("key {path:?} is not a path; start it with /"));
            }
            answers.insert(path, answer.to_string());
        }
        Ok(Self { answers, delay })
    }

    /// How many paths it answers.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    /// Whether it answers none.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }
}

/// The backend's routes.
pub fn app(data: Arc<Data>) -> Router {
    Router::new().fallback(answer).with_state(data)
}

async fn answer(State(data): State<Arc<Data>>, uri: Uri) -> Response {
    if !data.delay.is_zero() {
        tokio::time::sleep(data.delay).await;
    }
    let json = [(header::CONTENT_TYPE, "application/json")];
    match data.answers.get(uri.path()) {
        Some(body) => (StatusCode::OK, json, body.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            json,
            r#"{"error":"not found"}"#.to_owned(),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn serves_the_file_and_404s_the_rest() {
        let data = Data::parse(r#"{"/accounts/1": {"balance": 5}}"#, Duration::ZERO).unwrap();
        let app = app(Arc::new(data));
        let found = app
            .clone()
            .oneshot(
                axum::http::Request::get("/accounts/1")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(found.status(), StatusCode::OK);
        let body = axum::body::to_bytes(found.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"{"balance":5}"#);
        let missing = app
            .oneshot(
                axum::http::Request::post("/accounts/2")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn a_bad_file_is_named() {
        assert!(
            Data::parse("[1]", Duration::ZERO)
                .unwrap_err()
                .contains("JSON object")
        );
        assert!(
            Data::parse(r#"{"x": 1}"#, Duration::ZERO)
                .unwrap_err()
                .contains("not a path")
        );
    }
}
