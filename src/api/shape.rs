//! Every error a REST client gets is in its API's own shape, including
//! those no handler wrote: axum's extractor rejections (plain text: a body
//! over its limit, a malformed form or JSON, a missing header), an unknown
//! path (an empty 404) or method (an empty 405). Chat API v2 answers with
//! its Digital Channels response, the other GMS APIs with
//! `{message, exception}`. Bayeux and the pages keep their own.
//! May use: `error`, `wire`.

use axum::body::to_bytes;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::wire::chat_v2::{code, ChatV2Response};

/// Which error shape a path's API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    ChatV2,
    Classic,
    /// Bayeux, the pages, the assets: not reshaped.
    Own,
}

impl Family {
    pub fn of(path: &str) -> Self {
        if path.starts_with("/genesys/2/chat") {
            Family::ChatV2
        } else if path.starts_with("/genesys/cometd") {
            Family::Own
        } else if path.starts_with("/genesys/") || path.starts_with("/gmshub/") {
            Family::Classic
        } else {
            Family::Own
        }
    }
}

/// The framework's error texts are short; anything longer is not one.
const MAX_TEXT: usize = 1024;

/// `response` in `family`'s shape when it is an error that is not JSON.
pub async fn errors(family: Family, response: Response) -> Response {
    let status = response.status();
    if family == Family::Own || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| t.contains("json"));
    if json || status == StatusCode::UNAUTHORIZED {
        // 401 stays as GMS sends it: the challenge and an empty body.
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match to_bytes(body, MAX_TEXT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = match (text.is_empty(), status) {
        (false, _) => text,
        (true, StatusCode::NOT_FOUND) => "no such resource".to_owned(),
        (true, StatusCode::METHOD_NOT_ALLOWED) => "method not allowed here".to_owned(),
        (true, _) => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let mut shaped = match family {
        Family::ChatV2 => chat_v2(status, message),
        _ => ApiError::new(status, exception(status), message).into_response(),
    };
    // Keep what the answer said besides its body (Allow, Retry-After, ...).
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            shaped.headers_mut().insert(name.clone(), value.clone());
        }
    }
    shaped
}

/// A Chat API v2 error answer: the Digital Channels response with the error
/// code that goes with `status`, under that status.
pub fn chat_v2(status: StatusCode, advice: String) -> Response {
    let code = match status {
        StatusCode::NOT_FOUND => code::CHAT_NOT_FOUND,
        StatusCode::PAYLOAD_TOO_LARGE => code::TOO_LARGE,
        StatusCode::FORBIDDEN => code::FORBIDDEN,
        StatusCode::TOO_MANY_REQUESTS => code::UNAVAILABLE,
        s if s.is_server_error() => code::UNAVAILABLE,
        _ => code::BAD_REQUEST,
    };
    (status, axum::Json(ChatV2Response::bad(None, code, advice))).into_response()
}

fn exception(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "com.genesyslab.gsg.services.exceptions.NotFoundException",
        StatusCode::FORBIDDEN => "com.genesyslab.gsg.services.exceptions.ForbiddenException",
        StatusCode::TOO_MANY_REQUESTS => "com.genesyslab.gsg.services.exceptions.ServiceException",
        s if s.is_server_error() => "com.genesyslab.gsg.services.exceptions.ServiceException",
        _ => "com.genesyslab.gsg.services.exceptions.BadRequestException",
    }
}

/// An answer with `body`, for the tests.
#[cfg(test)]
fn answer(status: StatusCode, content_type: Option<&str>, body: &str) -> Response {
    let mut r = Response::new(axum::body::Body::from(body.to_owned()));
    *r.status_mut() = status;
    if let Some(t) = content_type {
        r.headers_mut()
            .insert(header::CONTENT_TYPE, t.parse().unwrap());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    async fn json(r: Response) -> (StatusCode, Value) {
        let status = r.status();
        let bytes = to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn framework_errors_take_each_apis_shape() {
        let plain = || {
            answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                Some("text/plain; charset=utf-8"),
                "length limit exceeded",
            )
        };
        let (status, v) = json(errors(Family::Classic, plain()).await).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(v["message"], "length limit exceeded");
        assert!(v["exception"]
            .as_str()
            .unwrap()
            .ends_with("BadRequestException"));
        let (status, v) = json(errors(Family::ChatV2, plain()).await).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(v["statusCode"], 2);
        assert_eq!(v["errors"][0]["code"], code::TOO_LARGE);

        let (status, v) =
            json(errors(Family::Classic, answer(StatusCode::NOT_FOUND, None, "")).await).await;
        assert_eq!(
            (status, v["message"].as_str()),
            (StatusCode::NOT_FOUND, Some("no such resource"))
        );

        // JSON errors, 401 challenges, successes and Bayeux pass untouched.
        let mine = answer(
            StatusCode::BAD_REQUEST,
            Some("application/json"),
            r#"{"mine":1}"#,
        );
        assert_eq!(json(errors(Family::Classic, mine).await).await.1["mine"], 1);
        let challenge = answer(StatusCode::UNAUTHORIZED, None, "");
        let r = errors(Family::Classic, challenge).await;
        assert_eq!(to_bytes(r.into_body(), 16).await.unwrap().len(), 0);
        let ok = answer(StatusCode::OK, Some("text/plain"), "ONLINE");
        assert_eq!(json(errors(Family::Classic, ok).await).await.1, Value::Null);
        let bayeux = answer(StatusCode::BAD_REQUEST, Some("text/plain"), "x");
        assert_eq!(json(errors(Family::Own, bayeux).await).await.1, Value::Null);
    }

    #[test]
    fn families_by_path() {
        assert_eq!(Family::of("/genesys/2/chat/s"), Family::ChatV2);
        assert_eq!(Family::of("/genesys/1/storage/1"), Family::Classic);
        assert_eq!(Family::of("/gmshub/agent/login"), Family::Classic);
        assert_eq!(Family::of("/genesys/cometd/connect"), Family::Own);
        assert_eq!(Family::of("/chat"), Family::Own);
    }
}
