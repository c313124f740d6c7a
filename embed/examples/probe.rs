//! Prints the cosine similarity of a query to each stdin line (a tuning aid):
//! `cargo run -p vigil-embed --example probe -- "query" < lines.txt`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let e = vigil_embed::Embedder::load(&vigil_embed::EmbedConfig::default())?;
    let q = std::env::args().nth(1).ok_or("usage: probe QUERY < lines")?;
    let texts: Vec<String> = std::io::stdin().lines().collect::<Result<_, _>>()?;
    let mut all = vec![q.as_str()];
    all.extend(texts.iter().map(|s| s.as_str()));
    let v = e.embed(&all)?;
    for (i, t) in texts.iter().enumerate() {
        let s: f32 = v[0].iter().zip(&v[i + 1]).map(|(a, b)| a * b).sum();
        println!("{s:.3}  {t}");
    }
    Ok(())
}
