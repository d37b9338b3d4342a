//! Who may post webhooks and use the admin API.
//!
//! Webhooks: when `webhook_auth` is configured, the `Authorization` header must equal it (the
//! 8x8 webhook `httpAuthHeader`), compared in constant time; when `allow_ips` is configured,
//! the client address must be in one of the networks. The client address is the socket's peer,
//! or, when `trusted_proxy_header` is configured and the request carries it, the first address
//! in that header (the client as the trusted proxy saw it). The admin API takes
//! `Authorization: Bearer <admin_token>` and is disabled when no token is configured.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use ipnet::IpNet;
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// The webhook access rules.
#[derive(Debug, Clone, Default)]
pub struct WebhookAuth {
    /// Expected `Authorization` header.
    pub header: Option<String>,
    /// Allowed client networks; empty allows any.
    pub allow: Vec<IpNet>,
    /// Header carrying the client address, set by a trusted proxy.
    pub proxy_header: Option<String>,
}

impl WebhookAuth {
    /// Checks a webhook request.
    pub fn check(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<(), ApiError> {
        if !self.allow.is_empty() {
            let ip = self.client_ip(headers, peer)?;
            if !self.allow.iter().any(|net| net.contains(&ip)) {
                return Err(ApiError::Forbidden {
                    code: "ip_not_allowed",
                    message: format!("webhooks from {ip} are not allowed (allow_ips)"),
                });
            }
        }
        if let Some(expected) = &self.header {
            let got = headers.get(AUTHORIZATION).ok_or(ApiError::Unauthorized {
                code: "missing_credentials",
                message:
                    "the Authorization header is missing; configure the webhook's httpAuthHeader"
                        .to_owned(),
            })?;
            if !bool::from(got.as_bytes().ct_eq(expected.as_bytes())) {
                return Err(ApiError::Unauthorized {
                    code: "bad_credentials",
                    message: "the Authorization header does not match webhook_auth".to_owned(),
                });
            }
        }
        Ok(())
    }

    fn client_ip(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<IpAddr, ApiError> {
        if let Some(name) = &self.proxy_header
            && let Some(value) = headers.get(name.as_str())
        {
            let first = value
                .to_str()
                .ok()
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .unwrap_or_default();
            return first.parse().map_err(|_| ApiError::Forbidden {
                code: "ip_not_allowed",
                message: format!("{name} does not start with an IP address: {first:?}"),
            });
        }
        peer.map(|p| p.ip()).ok_or(ApiError::Forbidden {
            code: "ip_not_allowed",
            message: "the client address is unknown".to_owned(),
        })
    }
}

/// Checks the admin API's bearer token.
pub fn check_admin(token: Option<&str>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Err(ApiError::Forbidden {
            code: "admin_disabled",
            message:
                "the admin API is disabled; set admin_token (SWITCHBOARD_ADMIN_TOKEN) to enable it"
                    .to_owned(),
        });
    };
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized {
            code: "missing_credentials",
            message: "send Authorization: Bearer <admin_token>".to_owned(),
        })?;
    if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized {
            code: "bad_credentials",
            message: "the bearer token does not match admin_token".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_header_must_match_exactly() {
        let auth = WebhookAuth {
            header: Some("Basic c2VjcmV0".to_owned()),
            ..Default::default()
        };
        assert!(
            auth.check(&headers(&[("authorization", "Basic c2VjcmV0")]), None)
                .is_ok()
        );
        let wrong = auth.check(&headers(&[("authorization", "Basic c2VjcmV")]), None);
        assert_eq!(wrong.unwrap_err().code(), "bad_credentials");
        assert_eq!(
            auth.check(&headers(&[]), None).unwrap_err().code(),
            "missing_credentials"
        );
    }

    #[test]
    fn the_allowlist_reads_the_trusted_proxy_header() {
        let auth = WebhookAuth {
            allow: vec!["203.0.113.0/24".parse().unwrap()],
            proxy_header: Some("x-forwarded-for".to_owned()),
            ..Default::default()
        };
        let peer = Some("10.1.2.3:5555".parse().unwrap());
        assert!(
            auth.check(
                &headers(&[("x-forwarded-for", "203.0.113.9, 10.0.0.1")]),
                peer
            )
            .is_ok()
        );
        let denied = auth.check(&headers(&[("x-forwarded-for", "198.51.100.1")]), peer);
        assert_eq!(denied.unwrap_err().code(), "ip_not_allowed");
        // Without the header, the peer address decides.
        assert!(auth.check(&headers(&[]), peer).is_err());
        assert!(
            auth.check(&headers(&[]), Some("203.0.113.1:1".parse().unwrap()))
                .is_ok()
        );
    }

    #[test]
    fn the_admin_api_needs_its_token() {
        assert_eq!(
            check_admin(None, &headers(&[])).unwrap_err().code(),
            "admin_disabled"
        );
        assert!(check_admin(Some("t0k"), &headers(&[("authorization", "Bearer t0k")])).is_ok());
        assert_eq!(
            check_admin(Some("t0k"), &headers(&[("authorization", "Bearer nope")]))
                .unwrap_err()
                .code(),
            "bad_credentials"
        );
    }
}
