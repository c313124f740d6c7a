//! Sigma values and modifiers: a detection item's values become [`Val`]s,
//! with wildcards parsed ([`Pattern`]) and the value modifiers applied in
//! order (`base64offset|contains`, `windash`, …).

use base64::Engine as _;

use crate::SigmaError;

/// A piece of a Sigma string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    /// `*`: any run of characters.
    Star,
    /// `?`: one character.
    One,
}

/// A Sigma string with its wildcards.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pattern(pub Vec<Piece>);

impl Pattern {
    /// Parses Sigma's string syntax: `*` and `?` are wildcards, `\*`, `\?`
    /// and `\\` are the literal characters, any other backslash is itself.
    pub fn parse(s: &str) -> Pattern {
        let mut p = Pattern::default();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.peek() {
                    Some(&n @ ('*' | '?' | '\\')) => {
                        chars.next();
                        p.push_char(n);
                    }
                    _ => p.push_char('\\'),
                },
                '*' => p.push(Piece::Star),
                '?' => p.push(Piece::One),
                c => p.push_char(c),
            }
        }
        p
    }

    /// A literal string, no wildcards.
    pub fn literal(s: &str) -> Pattern {
        let mut p = Pattern::default();
        if !s.is_empty() {
            p.0.push(Piece::Lit(s.to_string()));
        }
        p
    }

    fn push_char(&mut self, c: char) {
        if let Some(Piece::Lit(s)) = self.0.last_mut() {
            s.push(c);
        } else {
            self.0.push(Piece::Lit(c.to_string()));
        }
    }

    fn push(&mut self, piece: Piece) {
        match (&piece, self.0.last()) {
            // `**` is `*`.
            (Piece::Star, Some(Piece::Star)) => {}
            (Piece::Lit(s), _) => {
                for c in s.chars() {
                    self.push_char(c);
                }
            }
            _ => self.0.push(piece),
        }
    }

    pub fn has_wildcards(&self) -> bool {
        self.0.iter().any(|p| !matches!(p, Piece::Lit(_)))
    }

    /// The text when there are no wildcards.
    pub fn plain(&self) -> Option<String> {
        let mut s = String::new();
        for p in &self.0 {
            match p {
                Piece::Lit(l) => s.push_str(l),
                _ => return None,
            }
        }
        Some(s)
    }

    pub fn starts_with_star(&self) -> bool {
        matches!(self.0.first(), Some(Piece::Star))
    }

    pub fn ends_with_star(&self) -> bool {
        matches!(self.0.last(), Some(Piece::Star))
    }

    fn contains(mut self) -> Pattern {
        if !self.starts_with_star() {
            self.0.insert(0, Piece::Star);
        }
        if !self.ends_with_star() {
            self.0.push(Piece::Star);
        }
        self
    }

    fn startswith(mut self) -> Pattern {
        if !self.ends_with_star() {
            self.0.push(Piece::Star);
        }
        self
    }

    fn endswith(mut self) -> Pattern {
        if !self.starts_with_star() {
            self.0.insert(0, Piece::Star);
        }
        self
    }
}

/// One value of a detection item after its modifiers.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// A string (or number written as one) with wildcards.
    Str(Pattern),
    /// Bytes from `wide`/`utf16*`, waiting for `base64`.
    Bytes(Vec<u8>),
    /// `re`: a regular expression and its flags.
    Re { re: String, i: bool, m: bool, s: bool },
    /// `cidr`.
    Cidr(String),
    /// `lt`/`lte`/`gt`/`gte`: SRQL's operator and the number.
    Cmp(&'static str, String),
    /// `exists`.
    Exists(bool),
    /// YAML `null`: the field is missing.
    Null,
}

/// Modifiers that change how a whole item matches, not its values.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    /// `all`: every value must match (AND).
    pub all: bool,
    /// `cased`: case-sensitive.
    pub cased: bool,
}

/// A scalar YAML value as a Sigma value (numbers and booleans as their text).
pub fn scalar(v: &serde_yaml::Value, field: &str) -> Result<Val, SigmaError> {
    Ok(match v {
        serde_yaml::Value::Null => Val::Null,
        serde_yaml::Value::String(s) => Val::Str(Pattern::parse(s)),
        serde_yaml::Value::Number(n) => Val::Str(Pattern::literal(&n.to_string())),
        serde_yaml::Value::Bool(b) => Val::Str(Pattern::literal(if *b { "true" } else { "false" })),
        other => {
            return Err(SigmaError::UnsupportedValue {
                field: field.into(),
                message: format!("a value must be a string, number, boolean or null, not {}", yaml_kind(other)),
            })
        }
    })
}

pub fn yaml_kind(v: &serde_yaml::Value) -> &'static str {
    match v {
        serde_yaml::Value::Null => "null",
        serde_yaml::Value::Bool(_) => "a boolean",
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "a string",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a map",
        serde_yaml::Value::Tagged(_) => "a tagged value",
    }
}

/// The most values one item may expand to (`windash` on many dashes, …).
const MAX_EXPANSION: usize = 512;

/// Applies `modifiers` (in order) to the raw YAML values of a field.
pub fn apply(field: &str, modifiers: &[String], raw: &[serde_yaml::Value]) -> Result<(Vec<Val>, Flags), SigmaError> {
    let mut flags = Flags::default();
    let mut vals: Vec<Val> = raw.iter().map(|v| scalar(v, field)).collect::<Result<_, _>>()?;
    for m in modifiers {
        let m = m.as_str();
        vals = match m {
            "all" => {
                flags.all = true;
                vals
            }
            "cased" => {
                flags.cased = true;
                vals
            }
            "contains" | "startswith" | "endswith" => affix(field, m, vals)?,
            "re" | "cidr" => verbatim(field, m, vals, raw)?,
            "i" | "ignorecase" | "m" | "multiline" | "s" | "dotall" => regex_flag(field, m, vals)?,
            "exists" => exists(field, vals)?,
            "lt" | "lte" | "gt" | "gte" => compare(field, m, vals)?,
            "wide" | "utf16le" | "utf16be" | "utf16" => utf16(field, m, vals)?,
            "base64" | "base64offset" => base64(field, m, vals)?,
            "windash" => windash_all(field, vals)?,
            // fieldref is planned per field (`Converter::field_refs`); expand
            // needs placeholder values Vigil does not keep.
            other => return Err(unsupported(field, other)),
        };
    }
    if vals.iter().any(|v| matches!(v, Val::Bytes(_))) {
        return Err(SigmaError::UnsupportedModifier {
            modifier: modifiers.iter().find(|m| m.starts_with("utf16") || *m == "wide").cloned().unwrap_or_default(),
            field: field.into(),
        });
    }
    Ok((vals, flags))
}

fn unsupported(field: &str, modifier: &str) -> SigmaError {
    SigmaError::UnsupportedModifier { modifier: modifier.to_string(), field: field.to_string() }
}

fn bad(field: &str, message: String) -> SigmaError {
    SigmaError::UnsupportedValue { field: field.to_string(), message }
}

/// `contains`, `startswith`, `endswith`: wildcards around the strings; a
/// `null` (the field is missing) stays as it is.
fn affix(field: &str, m: &str, mut vals: Vec<Val>) -> Result<Vec<Val>, SigmaError> {
    for v in &mut vals {
        if let Val::Str(p) = v {
            let q = std::mem::take(p);
            *p = match m {
                "contains" => q.contains(),
                "startswith" => q.startswith(),
                _ => q.endswith(),
            };
        } else if !matches!(v, Val::Null) {
            return Err(unsupported(field, m));
        }
    }
    Ok(vals)
}

/// `re` and `cidr`: their values are not Sigma strings, so their backslashes
/// are theirs; the rule's own text is taken while the values still line up
/// with it.
fn verbatim(field: &str, m: &str, vals: Vec<Val>, raw: &[serde_yaml::Value]) -> Result<Vec<Val>, SigmaError> {
    let aligned = vals.len() == raw.len();
    vals.into_iter()
        .enumerate()
        .map(|(i, v)| {
            let Val::Str(p) = v else { return Err(bad(field, format!("`{m}` needs string values"))) };
            let text = match (raw.get(i), aligned) {
                (Some(serde_yaml::Value::String(s)), true) => s.clone(),
                _ => raw_text(&p),
            };
            Ok(if m == "re" { Val::Re { re: text, i: false, m: false, s: false } } else { Val::Cidr(text) })
        })
        .collect()
}

/// `i`, `m`, `s` (and their long names): flags of the `re` before them.
fn regex_flag(field: &str, m: &str, mut vals: Vec<Val>) -> Result<Vec<Val>, SigmaError> {
    for v in &mut vals {
        match v {
            Val::Re { i, m: ml, s, .. } => match m {
                "i" | "ignorecase" => *i = true,
                "m" | "multiline" => *ml = true,
                _ => *s = true,
            },
            _ => return Err(bad(field, format!("`{m}` only follows `re`"))),
        }
    }
    Ok(vals)
}

fn exists(field: &str, vals: Vec<Val>) -> Result<Vec<Val>, SigmaError> {
    vals.into_iter()
        .map(|v| match v {
            Val::Str(p) => match p.plain().as_deref() {
                Some("true") => Ok(Val::Exists(true)),
                Some("false") => Ok(Val::Exists(false)),
                _ => Err(bad(field, "`exists` needs true or false".into())),
            },
            _ => Err(bad(field, "`exists` needs true or false".into())),
        })
        .collect()
}

/// `lt`, `lte`, `gt`, `gte`: SRQL's operator and the number.
fn compare(field: &str, m: &str, vals: Vec<Val>) -> Result<Vec<Val>, SigmaError> {
    let op = match m {
        "lt" => "<",
        "lte" => "<=",
        "gt" => ">",
        _ => ">=",
    };
    vals.into_iter()
        .map(|v| match v {
            Val::Str(p) => match p.plain() {
                Some(n) if n.trim().parse::<f64>().is_ok_and(f64::is_finite) => Ok(Val::Cmp(op, n.trim().to_string())),
                _ => Err(bad(field, format!("`{m}` needs a number"))),
            },
            _ => Err(bad(field, format!("`{m}` needs a number"))),
        })
        .collect()
}

/// `wide`, `utf16le`, `utf16be`, `utf16` (with a byte order mark): the
/// strings' bytes in that encoding, for a `base64` to follow.
fn utf16(field: &str, m: &str, vals: Vec<Val>) -> Result<Vec<Val>, SigmaError> {
    vals.into_iter()
        .map(|v| match v {
            Val::Str(p) => {
                let s = p.plain().ok_or_else(|| bad(field, format!("`{m}` does not take wildcards")))?;
                let mut out = Vec::new();
                if m == "utf16" {
                    out.extend_from_slice(&[0xff, 0xfe]);
                }
                for u in s.encode_utf16() {
                    if m == "utf16be" {
                        out.extend_from_slice(&u.to_be_bytes());
                    } else {
                        out.extend_from_slice(&u.to_le_bytes());
                    }
                }
                Ok(Val::Bytes(out))
            }
            _ => Err(bad(field, format!("`{m}` needs string values"))),
        })
        .collect()
}

/// `base64` (one literal per value) and `base64offset` (three).
fn base64(field: &str, m: &str, vals: Vec<Val>) -> Result<Vec<Val>, SigmaError> {
    let mut out = Vec::new();
    for v in vals {
        let bytes = match v {
            Val::Str(p) => p.plain().ok_or_else(|| bad(field, format!("`{m}` does not take wildcards")))?.into_bytes(),
            Val::Bytes(b) => b,
            _ => return Err(bad(field, format!("`{m}` needs string values"))),
        };
        if m == "base64" {
            out.push(Val::Str(Pattern::literal(&b64(&bytes))));
        } else {
            for s in base64_offsets(&bytes) {
                out.push(Val::Str(Pattern::literal(&s)));
            }
        }
    }
    Ok(out)
}

/// `windash` on every value, within [`MAX_EXPANSION`] values in all.
fn windash_all(field: &str, vals: Vec<Val>) -> Result<Vec<Val>, SigmaError> {
    let mut out = Vec::new();
    for v in vals {
        match v {
            Val::Str(p) => out.extend(windash(&p).into_iter().map(Val::Str)),
            _ => return Err(bad(field, "`windash` needs string values".into())),
        }
        if out.len() > MAX_EXPANSION {
            return Err(SigmaError::TooComplex {
                message: format!("`windash` on {field} expands to more than {MAX_EXPANSION} values"),
            });
        }
    }
    Ok(out)
}

/// The text of a pattern as the rule wrote it (for `re` and `cidr`, whose
/// values are not Sigma strings).
fn raw_text(p: &Pattern) -> String {
    let mut s = String::new();
    for piece in &p.0 {
        match piece {
            Piece::Lit(l) => s.push_str(l),
            Piece::Star => s.push('*'),
            Piece::One => s.push('?'),
        }
    }
    s
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The three base64 forms of `bytes` at offsets 0, 1 and 2 of a longer
/// encoded text, trimmed of the characters that depend on the neighbours
/// (as pySigma's `base64offset`).
pub fn base64_offsets(bytes: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END: [usize; 3] = [0, 3, 2];
    (0..3)
        .map(|i| {
            let mut padded = vec![b' '; i];
            padded.extend_from_slice(bytes);
            let enc = b64(&padded);
            let end_cut = END[(bytes.len() + i) % 3];
            let end = enc.len().saturating_sub(end_cut);
            enc.get(START[i]..end).unwrap_or_default().to_string()
        })
        .collect()
}

/// The dash-like characters `windash` swaps: hyphen-minus, slash, en dash,
/// em dash, horizontal bar.
pub const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

/// Every variant of `p` with each option-leading `-` or `/` (one that starts a
/// word: after a non-word character or at the start, before a word
/// character) replaced by each of [`DASHES`].
pub fn windash(p: &Pattern) -> Vec<Pattern> {
    // Flatten to characters (None = a wildcard piece).
    let mut items: Vec<Result<char, Piece>> = Vec::new();
    for piece in &p.0 {
        match piece {
            Piece::Lit(s) => items.extend(s.chars().map(Ok)),
            other => items.push(Err(other.clone())),
        }
    }
    let word = |c: Option<&Result<char, Piece>>| matches!(c, Some(Ok(c)) if c.is_alphanumeric() || *c == '_');
    let positions: Vec<usize> = (0..items.len())
        .filter(|&i| {
            matches!(items[i], Ok('-' | '/'))
                && !word(if i == 0 { None } else { items.get(i - 1) })
                && word(items.get(i + 1))
        })
        .collect();
    if positions.is_empty() {
        return vec![p.clone()];
    }
    let mut out = Vec::new();
    let n = positions.len() as u32;
    let total = DASHES.len().pow(n.min(6));
    for combo in 0..total {
        let mut k = combo;
        let mut chosen = items.clone();
        for &pos in &positions {
            chosen[pos] = Ok(DASHES[k % DASHES.len()]);
            k /= DASHES.len();
        }
        let mut q = Pattern::default();
        for it in chosen {
            match it {
                Ok(c) => q.push_char(c),
                Err(piece) => q.push(piece),
            }
        }
        if !out.contains(&q) {
            out.push(q);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sigma_escapes() {
        assert_eq!(Pattern::parse(r"C:\Windows\*"), Pattern::literal(r"C:\Windows*"));
        assert_eq!(Pattern::parse(r"C:\Windows\\*"), Pattern(vec![Piece::Lit(r"C:\Windows\".into()), Piece::Star]));
        assert_eq!(Pattern::parse(r"a\*b"), Pattern::literal("a*b"));
        assert_eq!(Pattern::parse(r"a\\*"), Pattern(vec![Piece::Lit(r"a\".into()), Piece::Star]));
        assert_eq!(Pattern::parse(r"a?b"), Pattern(vec![Piece::Lit("a".into()), Piece::One, Piece::Lit("b".into())]));
        assert_eq!(Pattern::parse("**"), Pattern(vec![Piece::Star]));
    }

    #[test]
    fn base64_offsets_match_pysigma() {
        // pySigma's documented example values for "/bin/sh".
        let v = base64_offsets(b"/bin/sh");
        assert_eq!(v, vec!["L2Jpbi9za", "9iaW4vc2", "vYmluL3No"]);
    }

    #[test]
    fn windash_variants() {
        let v = windash(&Pattern::parse(" -enc "));
        assert_eq!(v.len(), 5);
        assert!(v.contains(&Pattern::literal(" /enc ")));
        assert!(v.contains(&Pattern::literal(" \u{2015}enc ")));
        // Inside a word a dash is not an option.
        assert_eq!(windash(&Pattern::parse("a-b")).len(), 1);
    }
}
