//! The benchmark's ceiling: the least an HTTP token endpoint can do here.
//! It answers `POST /oauth/token` with a fixed token-shaped JSON body of
//! 228 bytes, reading (and ignoring) the request body.
//!
//! Usage: ceiling ADDR

use axum::body::Bytes;
use axum::http::header;
use axum::routing::post;
use axum::Router;

const BODY: &str = concat!(
    r#"{"access_token":"eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJjZWlsaW5nIn0."#,
    r#"c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0","token_type":"Bearer","#,
    r#""expires_in":3600,"scope":"read","created_at":1800000000,"expires":1800003600}"#
);

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".into());
    let app = Router::new().route(
        "/oauth/token",
        post(|_body: Bytes| async {
            (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                BODY,
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    println!("listening on {addr}");
    axum::serve(listener, app).await.unwrap();
}
