//! The cache: one model run per normalised text.

use vigil_embed::{CachedEmbedder, EmbedConfig, EmbedError, Embedder, DIM};

#[test]
fn thousand_lines_from_three_templates_embed_three_texts() -> Result<(), EmbedError> {
    let cached = CachedEmbedder::new(Embedder::load(&EmbedConfig::default())?, 10_000);
    let texts: Vec<String> = (0..1000u32)
        .map(|i| match i % 3 {
            0 => format!(
                "sshd[{}]: Failed password for root from 10.{}.{}.{} port {} ssh2",
                1000 + i,
                i % 256,
                (i * 7) % 256,
                (i * 13) % 256,
                40000 + i
            ),
            1 => format!("GET /api/items/{} HTTP/1.1 200 {}ms from 2001:db8::{:x}", i * 31, i % 97, i + 1),
            _ => format!("job {:08x}-{:04x}-4abc-8def-{:012x} finished in {} s", i * 7919, i, i * 104729, i % 60),
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let first = cached.embed(&refs[..500])?;
    let second = cached.embed(&refs[500..])?;
    assert_eq!(first.len() + second.len(), 1000);
    let stats = cached.stats();
    assert_eq!(stats.misses, 3, "{stats:?}");
    assert_eq!(stats.hits, 997, "{stats:?}");
    assert_eq!(stats.entries, 3, "{stats:?}");
    assert!(first.iter().chain(&second).all(|v| v.len() == DIM));
    // Same template, same vector; in input order.
    assert!(std::sync::Arc::ptr_eq(&first[0], &second[1]));
    assert!(!std::sync::Arc::ptr_eq(&first[0], &first[1]));
    assert!(cached.model_id().starts_with("all-MiniLM-L6-v2/"));
    Ok(())
}

#[test]
fn small_capacity_evicts_but_still_answers() -> Result<(), EmbedError> {
    let cached = CachedEmbedder::new(Embedder::load(&EmbedConfig::default())?, 2);
    for round in 0..2 {
        let v = cached.embed(&["alpha", "beta", "gamma", "alpha"])?;
        assert_eq!(v.len(), 4, "round {round}");
        assert!(std::sync::Arc::ptr_eq(&v[0], &v[3]));
    }
    assert!(cached.stats().entries <= 2, "{:?}", cached.stats());
    Ok(())
}
