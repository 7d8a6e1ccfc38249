//! A `multipart/form-data` body, as the classic GMS APIs (Storage, Chat v1,
//! the chat file upload) read one: its items, or a 400/413 in the API's
//! shape (415 for a content type it cannot read, such as a boundary that is
//! not ASCII); never a panic.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use channels::storage::Item;
use gmshub::api::form::{items, BodyLimit};
use libfuzzer_sys::fuzz_target;

/// The first line of the input is the boundary, the rest the body; `None`
/// for a boundary no header could carry (HTTP refuses it before gmshub).
fn request(data: &[u8]) -> Option<Request<Body>> {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(0);
    let boundary = String::from_utf8_lossy(&data[..split]).replace(['\r', '"'], "");
    let body = data.get(split + 1..).unwrap_or_default().to_vec();
    Request::builder()
        .method("POST")
        .header(
            "content-type",
            format!("multipart/form-data; boundary=\"{boundary}\""),
        )
        .body(Body::from(body))
        .ok()
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = request(data) else {
        return;
    };
    let limit = BodyLimit::max_file_upload(4096);
    match runtime().block_on(items(request, limit)) {
        Ok(read) => assert!(read.values().all(|item| match item {
            Item::Text { value } => value.len() <= 4096,
            Item::File { data, .. } => data.len() <= 4096,
        })),
        Err(e) => assert!(
            [
                StatusCode::BAD_REQUEST,
                StatusCode::PAYLOAD_TOO_LARGE,
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            ]
            .contains(&e.status),
            "{}: {}",
            e.status,
            e.message
        ),
    }
});
