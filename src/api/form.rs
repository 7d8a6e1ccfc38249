//! Request bodies of the classic GMS APIs: `application/x-www-form-urlencoded`
//! (text values) or `multipart/form-data` (text values and files). Anything
//! else is refused with 415, as GMS does.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};
use channels::storage::Item;

use super::error::ApiError;
use crate::observe::log::Asked;

const EXCEPTION: &str = "com.genesyslab.gsg.services.exceptions.BadRequestException";

/// The largest body a request may have, and the option that says so (named
/// in the error). Routes reading forms turn axum's own default limit off:
/// this one is the limit.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit {
    pub bytes: usize,
    pub option: &'static str,
}

impl BodyLimit {
    /// `[server] max-file-upload`: the bound of the classic APIs' forms.
    pub fn max_file_upload(bytes: usize) -> Self {
        Self {
            bytes,
            option: "[server] max-file-upload",
        }
    }
}

/// Reads a form body into items by key. Empty values are not stored (GMS:
/// "Value for key is undefined ... will not be stored"); a key given twice
/// keeps its last value.
pub async fn items(
    req: Request<Body>,
    limit: BodyLimit,
) -> Result<BTreeMap<String, Item>, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let asked = Asked::of(&req);
    let mut items = BTreeMap::new();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let body = axum::body::to_bytes(req.into_body(), limit.bytes)
            .await
            .map_err(|_| too_large(limit))?;
        for (k, v) in utf8_pairs(&body)? {
            if !v.is_empty() {
                items.insert(k, Item::Text { value: v });
            }
        }
    } else if content_type.starts_with("multipart/form-data") {
        let req = req.map(|body| Body::new(http_body_util::Limited::new(body, limit.bytes)));
        let mut multipart = Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, EXCEPTION, e.body_text()))?;
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(e) => return Err(multipart_error(e, limit)),
            };
            let Some(name) = field.name().map(str::to_owned) else {
                continue;
            };
            let file_name = field.file_name().map(str::to_owned);
            let content_type = field.content_type().map(str::to_owned);
            let data = field.bytes().await.map_err(|e| multipart_error(e, limit))?;
            if data.is_empty() {
                continue;
            }
            let item = match (file_name, content_type) {
                (None, None) => match String::from_utf8(data.to_vec()) {
                    Ok(value) => Item::Text { value },
                    Err(e) => Item::File {
                        file_name: None,
                        content_type: "application/octet-stream".into(),
                        data: e.into_bytes(),
                    },
                },
                (file_name, content_type) => Item::File {
                    file_name,
                    content_type: content_type.unwrap_or_else(|| "application/octet-stream".into()),
                    data: data.to_vec(),
                },
            };
            items.insert(name, item);
        }
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "com.genesyslab.gsg.services.exceptions.UnsupportedMediaTypeException",
            "the body must be application/x-www-form-urlencoded or multipart/form-data",
        ));
    }
    asked.parameters(items.iter().map(|(k, item)| {
        let shown = match item {
            Item::Text { value } => value.as_str(),
            Item::File { .. } => "[a file]",
        };
        (k.as_str(), shown)
    }));
    Ok(items)
}

/// The pairs of a URL-encoded form, refused (400) unless every name and
/// value decodes to UTF-8: `form_urlencoded` would put U+FFFD in their
/// place and store what the client never sent. Public for the fuzz target.
pub fn utf8_pairs(body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let decode = |part: &[u8]| {
        let spaced: Vec<u8> = part
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
        String::from_utf8(bytes).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                EXCEPTION,
                "the form is not UTF-8 (its names and values must be)",
            )
        })
    };
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut halves = pair.splitn(2, |&b| b == b'=');
            let name = decode(halves.next().unwrap_or_default())?;
            let value = decode(halves.next().unwrap_or_default())?;
            Ok((name, value))
        })
        .collect()
}

/// A query string's pairs, refused (400) unless they decode to UTF-8, as a
/// form's are (axum's `Query` would put U+FFFD where a byte was not).
#[derive(Debug)]
pub struct Utf8Query(pub Vec<(String, String)>);

impl Utf8Query {
    /// The pairs by name; a name given twice keeps its last value.
    pub fn by_name(self) -> BTreeMap<String, String> {
        self.0.into_iter().collect()
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Utf8Query {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        utf8_pairs(query.as_bytes())
            .map(Utf8Query)
            .map_err(|e| ApiError {
                message: "the query string is not UTF-8 (its names and values must be)".into(),
                ..e
            })
    }
}

fn too_large(limit: BodyLimit) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        EXCEPTION,
        format!(
            "the request body is larger than {} bytes ({})",
            limit.bytes, limit.option
        ),
    )
}

fn multipart_error(e: axum::extract::multipart::MultipartError, limit: BodyLimit) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            EXCEPTION,
            format!("malformed multipart body: {}", e.body_text()),
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_form_decodes_as_urlencoded_and_only_to_utf8() {
        let pairs = super::utf8_pairs(b"a=1&b=x+y%21&&c&name=J%C3%BCrgen").unwrap();
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [("a", "1"), ("b", "x y!"), ("c", ""), ("name", "Jürgen")]
        );
        let refused = super::utf8_pairs(b"nickname=%FF%FE").unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(super::utf8_pairs(b"%C3=x").is_err());
    }
}
