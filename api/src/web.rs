//! Serves the analyst UI: the Vite build in `web/dist`, at `/`.
//!
//! The folder is `VIGIL_WEB_DIR` when set, else the `web/dist` of the source
//! tree the binary was built from (found next to the executable or from the
//! build's manifest path). Without a build, `/` serves a landing page that
//! says how to build it. Any non-API path that is not a file gets
//! `index.html`, so the UI's own routes survive a reload; unknown `/api/…`
//! paths stay JSON 404s. Every UI response carries a strict
//! Content-Security-Policy: the bundle loads nothing from another origin, and
//! the policy makes sure of it.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// Only same-origin scripts, styles, images and API calls. Chart and graph
/// libraries set inline styles, hence `'unsafe-inline'` for styles only.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; object-src 'none'; \
base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// The UI build folder, when one exists: `configured` (`VIGIL_WEB_DIR`), else
/// the checkout's `web/dist` near the binary.
pub fn locate(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = configured {
        return dir.join("index.html").is_file().then(|| dir.to_path_buf());
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // target/{debug,release}/vigil → the checkout's web/dist.
        candidates.extend(exe.ancestors().skip(1).take(4).map(|p| p.join("web/dist")));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/dist"));
    candidates.into_iter().find(|d| d.join("index.html").is_file())
}

/// Answers every request no route took: the UI's files, or a JSON 404 under `/api/`.
pub async fn fallback(dir: Option<PathBuf>, req: Request<Body>) -> Response {
    if is_api(req.uri()) {
        let body = json!({"error": {"code": "not_found", "message": format!("no endpoint {}", req.uri().path())}});
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    }
    let Some(dir) = dir else {
        return with_headers(Html(include_str!("index.html")).into_response(), false);
    };
    let immutable = req.uri().path().starts_with("/assets/");
    let service = ServeDir::new(&dir).fallback(ServeFile::new(dir.join("index.html")));
    match service.oneshot(req).await {
        Ok(resp) => with_headers(resp.map(Body::new), immutable),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the UI files: {e}")).into_response(),
    }
}

fn is_api(uri: &Uri) -> bool {
    let p = uri.path();
    p == "/api" || p.starts_with("/api/")
}

fn with_headers(mut resp: Response, immutable: bool) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Vite names assets by content hash; index.html must be revalidated so a
    // new build is picked up.
    let cache = if immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}
