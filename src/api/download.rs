//! How a stored file (Storage API, chat files) is served: it came from a
//! client, so it must not run as a page of gmshub's origin. Only types a
//! browser cannot run script in are shown inline (raster images, PDF);
//! everything else is an attachment. Every answer carries
//! `Content-Security-Policy: sandbox` (a browser that renders it anyway
//! treats it as a unique origin with scripts off) and `nosniff`.
//! May use: `request`.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// Types shown inline. Not SVG: it is a document that runs script.
const INLINE: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
    "application/pdf",
];

/// Whether `content_type` (parameters ignored) is shown inline.
fn inline(content_type: &str) -> bool {
    let essence = super::request::essence(content_type);
    INLINE.iter().any(|t| t.eq_ignore_ascii_case(essence))
}

/// `data` as a download of `name` (when known) typed `content_type`.
pub fn file(name: Option<&str>, content_type: &str, data: Vec<u8>) -> Response {
    let mut response = data.into_response();
    let h = response.headers_mut();
    let typed = HeaderValue::from_str(content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, typed);
    let kind = if inline(content_type) {
        "inline"
    } else {
        "attachment"
    };
    let disposition = match name {
        Some(name) => {
            // Quotes, backslashes and controls would end or split the header.
            let name: String = name
                .chars()
                .map(|c| match c {
                    '"' | '\\' => '_',
                    c if c.is_control() => '_',
                    c => c,
                })
                .collect();
            HeaderValue::from_str(&format!("{kind}; filename=\"{name}\""))
                .unwrap_or(HeaderValue::from_static("attachment"))
        }
        None => HeaderValue::from_static(kind),
    };
    h.insert(header::CONTENT_DISPOSITION, disposition);
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(name: Option<&str>, content_type: &str) -> Response {
        file(name, content_type, b"x".to_vec())
    }

    #[test]
    fn only_images_and_pdf_are_inline_and_every_file_is_sandboxed() {
        for (content_type, kind) in [
            ("image/png", "inline"),
            ("IMAGE/JPEG; q=1", "inline"),
            ("application/pdf", "inline"),
            ("image/svg+xml", "attachment"),
            ("text/html", "attachment"),
            ("application/xhtml+xml", "attachment"),
            ("text/plain", "attachment"),
        ] {
            let r = served(Some("a.bin"), content_type);
            let h = r.headers();
            let disposition = h[header::CONTENT_DISPOSITION].to_str().unwrap();
            assert_eq!(disposition, format!("{kind}; filename=\"a.bin\""));
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], "sandbox");
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        }
        assert_eq!(
            served(None, "text/html").headers()[header::CONTENT_DISPOSITION],
            "attachment"
        );
    }

    #[test]
    fn a_file_name_cannot_break_the_header() {
        let r = served(Some("a\"b\\c\r\nSet-Cookie: x.html"), "text/html");
        assert_eq!(
            r.headers()[header::CONTENT_DISPOSITION],
            "attachment; filename=\"a_b_c__Set-Cookie: x.html\""
        );
        let r = served(Some("x"), "not a\ntype");
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/octet-stream"
        );
    }
}
