//! The UI's files at `/`: a built UI (`VIGIL_WEB_DIR`) with its own routes
//! surviving a reload, long caching only for hashed assets, a strict CSP, and
//! `/api/…` staying JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use vigil_store::testing::TempDatabase;

#[tokio::test]
async fn serves_the_ui_build_with_a_fallback_to_index_and_json_404s_under_api() {
    let db = TempDatabase::create().await.unwrap();
    let dir = std::env::temp_dir().join(format!("vigil-web-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html><title>Vigil test UI</title>").unwrap();
    std::fs::write(dir.join("assets/app-1a2b3c.js"), "console.log('vigil')").unwrap();
    let (_server, base) = common::serve(&db.url, &[("VIGIL_WEB_DIR", dir.to_str().unwrap())]).await;
    let client = reqwest::Client::new();

    for path in ["/", "/index.html", "/search", "/alerts/42"] {
        let r = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("default-src 'self'") && csp.contains("connect-src 'self'"), "{path}: {csp}");
        assert_eq!(r.headers()["cache-control"], "no-cache", "{path}");
        assert!(r.text().await.unwrap().contains("Vigil test UI"), "{path} is not the UI's index.html");
    }

    let r = client.get(format!("{base}/assets/app-1a2b3c.js")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().contains("javascript"));
    assert!(r.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    assert_eq!(r.text().await.unwrap(), "console.log('vigil')");

    // Nothing outside the folder, however the path is spelled.
    for path in ["/../Cargo.toml", "/%2e%2e/Cargo.toml", "/assets/..%2f..%2fCargo.toml"] {
        let body = client.get(format!("{base}{path}")).send().await.unwrap().text().await.unwrap();
        assert!(!body.contains("[package]"), "{path} escaped the UI folder");
    }

    let r = client.get(format!("{base}/api/v1/no-such-endpoint")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn without_a_ui_build_the_landing_page_says_how_to_build_it() {
    let db = TempDatabase::create().await.unwrap();
    let (_server, base) = common::serve(&db.url, &[("VIGIL_WEB_DIR", "/nonexistent")]).await;
    let r = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("content-security-policy"));
    let body = r.text().await.unwrap();
    assert!(body.contains("scripts/setup.sh"), "{body}");
}
