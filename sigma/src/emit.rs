//! Sigma values → SRQL terms, per the SRQL type of the target field
//! (docs/srql.md): keyword equality is case-sensitive, wildcards make a
//! case-insensitive ILIKE, a quoted value treats only `%` as a wildcard,
//! regexes are PostgreSQL AREs (case-sensitive on keyword, IP and JSON
//! values, case-insensitive on text). Sigma matches case-insensitively by
//! default, so plain values become ILIKE patterns or `(?i)` regexes and
//! `cased` picks the case-sensitive forms.

use std::net::IpAddr;

use vigil_srql::registry::{self, FieldType};

use crate::value::{Flags, Pattern, Piece, Val};
use crate::SigmaError;

/// How a target field compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Keyword,
    Text,
    Number,
    Ip,
    /// A value inside a JSON field (`raw.a.b`).
    Json,
}

/// The kind of an SRQL field of `in:events`, or why it cannot take Sigma values.
pub fn kind_of(field: &str, sigma_field: &str) -> Result<Kind, SigmaError> {
    let bad = |message: String| SigmaError::UnmappedField { field: sigma_field.into(), message };
    let valid = field.split('.').all(|seg| {
        let mut c = seg.chars();
        c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
            && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
    });
    if !valid {
        return Err(bad(format!("`{field}` is not a field name SRQL can write")));
    }
    let events = registry::entity("events").ok_or_else(|| bad("no events entity".into()))?;
    let (root, rest) = match field.split_once('.') {
        Some((r, rest)) => (r, Some(rest)),
        None => (field, None),
    };
    let def = events.field(root).ok_or_else(|| bad(format!("`{root}` is not a field of in:events")))?;
    Ok(match (&def.ty, rest) {
        (FieldType::Json, Some(_)) => Kind::Json,
        (_, Some(_)) => return Err(bad(format!("`{root}` is not a JSON field; `{field}` cannot reach inside it"))),
        (FieldType::Keyword, None) => Kind::Keyword,
        (FieldType::Text, None) => Kind::Text,
        (FieldType::Int | FieldType::Float, None) => Kind::Number,
        (FieldType::Ip, None) => Kind::Ip,
        (other, None) => {
            return Err(bad(format!("`{field}` is a {} field, which Sigma values cannot match", other.name())))
        }
    })
}

/// A quoted SRQL value: `"` and `\` escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// An SRQL regex literal `/…/` for an ARE: every unescaped `/` escaped.
pub fn regex_literal(re: &str, field: &str) -> Result<String, SigmaError> {
    let mut out = String::with_capacity(re.len() + 4);
    out.push('/');
    let mut chars = re.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => {
                    return Err(SigmaError::UnsupportedRegex {
                        field: field.into(),
                        message: "the regex ends with a lone backslash".into(),
                    })
                }
            },
            '/' => out.push_str("\\/"),
            c => out.push(c),
        }
    }
    out.push('/');
    Ok(out)
}

/// Escapes a literal for an ARE (ASCII punctuation gets a backslash).
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn has_case(s: &str) -> bool {
    s.chars().any(|c| c.to_lowercase().ne(c.to_uppercase()))
}

/// The ARE for a Sigma pattern: anchored unless it starts/ends with `*`.
fn pattern_regex(p: &Pattern) -> String {
    let mut out = String::new();
    let n = p.0.len();
    if !p.starts_with_star() {
        out.push('^');
    }
    for (i, piece) in p.0.iter().enumerate() {
        match piece {
            Piece::Lit(l) => out.push_str(&regex_escape(l)),
            Piece::Star if i == 0 || i + 1 == n => {}
            Piece::Star => out.push_str(".*"),
            Piece::One => out.push('.'),
        }
    }
    if !p.ends_with_star() {
        out.push('$');
    }
    out
}

/// The quoted ILIKE form (`*` → `%`), when the pattern has no `?` and no literal `%`.
fn pattern_like(p: &Pattern) -> Option<String> {
    let mut s = String::new();
    for piece in &p.0 {
        match piece {
            Piece::Lit(l) if l.contains('%') => return None,
            Piece::Lit(l) => s.push_str(l),
            Piece::Star => s.push('%'),
            Piece::One => return None,
        }
    }
    Some(s)
}

/// Regex with embedded options (`(?i)`, `(?c)`, newline handling).
fn with_options(opts: &str, re: &str) -> String {
    if opts.is_empty() {
        re.to_string()
    } else {
        format!("(?{opts}){re}")
    }
}

/// One SRQL term for `field` (of `kind`) matching `val`.
pub fn term(field: &str, sigma_field: &str, kind: Kind, val: &Val, flags: Flags) -> Result<String, SigmaError> {
    let bad = |message: String| SigmaError::UnsupportedValue { field: sigma_field.into(), message };
    let case_opt = |insensitive: bool| -> &'static str {
        match (kind, insensitive) {
            (Kind::Text, true) => "",
            (Kind::Text, false) => "c",
            (_, true) => "i",
            (_, false) => "",
        }
    };
    let regex =
        |re: String| -> Result<String, SigmaError> { Ok(format!("{field}:{}", regex_literal(&re, sigma_field)?)) };
    match val {
        Val::Null => Ok(format!("!{field}:*")),
        Val::Exists(true) => Ok(format!("{field}:*")),
        Val::Exists(false) => Ok(format!("!{field}:*")),
        Val::Bytes(_) => Err(bad("encoded bytes need `base64`".into())),
        Val::Re { re, i, m, s } => {
            if kind == Kind::Number {
                return Err(bad(format!("`{field}` is numeric in Vigil; a regex cannot apply")));
            }
            // A leading `(?i)` / `(?s)` … (pySigma passes them through) joins the flags.
            let (re, i, m, s) = leading_flags(re, *i, *m, *s);
            check_are(&re, sigma_field)?;
            let nl = match (m, s) {
                (false, false) => "p",
                (true, false) => "n",
                (true, true) => "w",
                (false, true) => "",
            };
            let opts = format!("{}{nl}", case_opt(i));
            regex(with_options(&opts, &re))
        }
        Val::Cmp(op, n) => match kind {
            Kind::Number | Kind::Json => Ok(format!("{field}:{op}{n}")),
            _ => Err(bad(format!("`{field}` is not numeric; `{op}` needs a number field"))),
        },
        Val::Cidr(c) => cidr(field, sigma_field, kind, c),
        Val::Str(p) => {
            if p.0.is_empty() {
                return match kind {
                    Kind::Keyword | Kind::Json => Ok(format!("{field}:\"\"")),
                    Kind::Text => regex("^$".into()),
                    _ => Err(bad(format!("an empty value cannot match `{field}`"))),
                };
            }
            if p.0 == [Piece::Star] {
                return Ok(format!("{field}:*"));
            }
            let insensitive = !flags.cased;
            match kind {
                Kind::Keyword | Kind::Json => {
                    if let Some(s) = p.plain() {
                        if (!insensitive || !has_case(&s)) && !s.contains('%') {
                            return Ok(format!("{field}:{}", quote(&s)));
                        }
                    } else if insensitive {
                        if let Some(like) = pattern_like(p) {
                            return Ok(format!("{field}:{}", quote(&like)));
                        }
                    }
                    regex(with_options(case_opt(insensitive), &pattern_regex(p)))
                }
                Kind::Text => {
                    if insensitive && p.starts_with_star() && p.ends_with_star() {
                        let inner = Pattern(p.0[1..p.0.len() - 1].to_vec());
                        if let Some(like) = pattern_like(&inner) {
                            return Ok(format!("{field}:{}", quote(&like)));
                        }
                    }
                    regex(with_options(case_opt(insensitive), &pattern_regex(p)))
                }
                Kind::Number => match p.plain() {
                    Some(s) if s.trim().parse::<f64>().is_ok() => Ok(format!("{field}:{}", s.trim())),
                    _ => Err(bad(format!("`{field}` is numeric in Vigil; `{}` is not a number", show(p)))),
                },
                Kind::Ip => {
                    if let Some(s) = p.plain() {
                        if s.parse::<IpAddr>().is_ok() {
                            return Ok(format!("{field}:{}", quote(&s)));
                        }
                    } else if let Some(like) = pattern_like(p) {
                        if like.chars().all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '%')) {
                            return Ok(format!("{field}:{}", quote(&like.to_ascii_lowercase())));
                        }
                    }
                    regex(with_options("i", &pattern_regex(p)))
                }
            }
        }
    }
}

fn show(p: &Pattern) -> String {
    p.0.iter()
        .map(|x| match x {
            Piece::Lit(l) => l.clone(),
            Piece::Star => "*".into(),
            Piece::One => "?".into(),
        })
        .collect()
}

/// `cidr`: SRQL's IP fields take networks; elsewhere an IPv4 network
/// becomes prefixes of the dotted text.
fn cidr(field: &str, sigma_field: &str, kind: Kind, c: &str) -> Result<String, SigmaError> {
    let unsupported = || SigmaError::UnsupportedModifier { modifier: "cidr".into(), field: sigma_field.into() };
    let bad = |m: String| SigmaError::UnsupportedValue { field: sigma_field.into(), message: m };
    let (addr, prefix) = c.split_once('/').unwrap_or((c, ""));
    let addr: IpAddr = addr.trim().parse().map_err(|_| bad(format!("`{c}` is not a CIDR network")))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u32 = if prefix.is_empty() {
        max
    } else {
        prefix.trim().parse().ok().filter(|p| *p <= max).ok_or_else(|| bad(format!("`{c}` is not a CIDR network")))?
    };
    match kind {
        Kind::Ip => Ok(format!("{field}:{}", quote(&format!("{addr}/{prefix}")))),
        Kind::Keyword | Kind::Json => {
            let IpAddr::V4(v4) = addr else { return Err(unsupported()) };
            let o = v4.octets();
            let full = (prefix / 8) as usize;
            let rem = prefix % 8;
            let head: Vec<String> = o[..full].iter().map(|b| b.to_string()).collect();
            if full == 4 {
                return Ok(format!("{field}:{}", quote(&v4.to_string())));
            }
            let mut items = Vec::new();
            let span = 1u32 << (8 - rem);
            let start = u32::from(o[full]) & !(span - 1);
            if rem == 0 {
                items.push(if head.is_empty() { "%".to_string() } else { format!("{}.%", head.join(".")) });
            } else {
                for b in start..start + span {
                    let mut parts = head.clone();
                    parts.push(b.to_string());
                    let dotted = parts.join(".");
                    items.push(if full == 3 { dotted } else { format!("{dotted}.%") });
                }
            }
            if items.len() == 1 {
                Ok(format!("{field}:{}", quote(&items[0])))
            } else if kind == Kind::Keyword {
                Ok(format!("{field}:({})", items.iter().map(|i| quote(i)).collect::<Vec<_>>().join(",")))
            } else {
                Ok(format!(
                    "({})",
                    items.iter().map(|i| format!("{field}:{}", quote(i))).collect::<Vec<_>>().join(" OR ")
                ))
            }
        }
        _ => Err(unsupported()),
    }
}

/// Strips a leading `(?imsx…)` group, merging its flags (`x` is refused later).
fn leading_flags(re: &str, mut i: bool, mut m: bool, mut s: bool) -> (String, bool, bool, bool) {
    if let Some(rest) = re.strip_prefix("(?") {
        if let Some(end) = rest.find(')') {
            let flags = &rest[..end];
            if !flags.is_empty() && flags.chars().all(|c| matches!(c, 'i' | 'm' | 's')) {
                for c in flags.chars() {
                    match c {
                        'i' => i = true,
                        'm' => m = true,
                        _ => s = true,
                    }
                }
                return (rest[end + 1..].to_string(), i, m, s);
            }
        }
    }
    (re.to_string(), i, m, s)
}

/// Refuses regex syntax that PostgreSQL's AREs do not have (so the hunt
/// would fail at run time instead of at conversion).
fn check_are(re: &str, field: &str) -> Result<(), SigmaError> {
    for (bad, what) in [
        ("(?P<", "named groups"),
        ("(?<", "named groups"),
        ("(?'", "named groups"),
        ("\\K", "\\K"),
        ("\\p{", "Unicode properties"),
        ("\\P{", "Unicode properties"),
        ("(?i", "inline flags after the start"),
        ("(?s", "inline flags after the start"),
        ("(?m", "inline flags after the start"),
        ("(?x", "inline flags"),
        ("(?-", "inline flags"),
        ("*+", "possessive quantifiers"),
        ("++", "possessive quantifiers"),
        ("?+", "possessive quantifiers"),
        ("\\z", "\\z"),
        ("\\h", "\\h"),
        ("(?>", "atomic groups"),
        ("(?#", "comments"),
    ] {
        if re.contains(bad) {
            return Err(SigmaError::UnsupportedRegex {
                field: field.into(),
                message: format!("PostgreSQL regexes have no {what} (`{bad}`)"),
            });
        }
    }
    Ok(())
}

/// The values of one detection field as one SRQL expression: OR of the
/// values (AND with `all`), lists folded where SRQL can (`field:(a,b)`).
pub fn values(
    field: &str,
    sigma_field: &str,
    kind: Kind,
    vals: &[Val],
    flags: Flags,
) -> Result<Option<String>, SigmaError> {
    if vals.is_empty() {
        return Err(SigmaError::UnsupportedValue {
            field: sigma_field.into(),
            message: "an empty list of values".into(),
        });
    }
    let mut terms: Vec<String> =
        vals.iter().map(|v| term(field, sigma_field, kind, v, flags)).collect::<Result<_, _>>()?;
    terms.dedup();
    if terms.len() == 1 {
        return Ok(terms.pop());
    }
    let op = if flags.all { " AND " } else { " OR " };
    if !flags.all && matches!(kind, Kind::Text | Kind::Keyword) {
        // `field:"x"` terms fold into `field:("x","y")`: the same meaning on
        // text (any contained) and keyword (exact or ILIKE per item) fields.
        let prefix = format!("{field}:\"");
        let (foldable, rest): (Vec<String>, Vec<String>) = terms.into_iter().partition(|t| t.starts_with(&prefix));
        let mut parts = rest;
        if foldable.len() > 1 {
            let items: Vec<&str> = foldable.iter().map(|t| &t[field.len() + 1..]).collect();
            parts.insert(0, format!("{field}:({})", items.join(",")));
        } else {
            parts.splice(0..0, foldable);
        }
        if parts.len() == 1 {
            return Ok(parts.pop());
        }
        return Ok(Some(format!("({})", parts.join(op))));
    }
    Ok(Some(format!("({})", terms.join(op))))
}

/// Keyword search (detection items without a field): SRQL free text, which
/// searches the message, command line and raw record, case-insensitively.
pub fn keyword(val: &Val, flags: Flags) -> Result<String, SigmaError> {
    let field = "keywords";
    if flags.cased {
        return Err(SigmaError::UnsupportedModifier { modifier: "cased".into(), field: field.into() });
    }
    match val {
        Val::Str(p) => {
            let mut s = String::new();
            for piece in &p.0 {
                match piece {
                    // Free text treats `%` as a wildcard: a literal `%` also
                    // matches any run there (documented in docs/sigma.md).
                    Piece::Lit(l) => s.push_str(l),
                    Piece::Star => s.push('%'),
                    Piece::One => {
                        return Err(SigmaError::UnsupportedValue {
                            field: field.into(),
                            message: format!("free text has no one-character wildcard ({})", show(p)),
                        })
                    }
                }
            }
            let s = s.trim_matches('%');
            if s.is_empty() {
                return Err(SigmaError::UnsupportedValue {
                    field: field.into(),
                    message: "an empty keyword matches everything".into(),
                });
            }
            Ok(quote(s))
        }
        Val::Re { .. } => Err(SigmaError::UnsupportedModifier { modifier: "re".into(), field: field.into() }),
        _ => Err(SigmaError::UnsupportedValue { field: field.into(), message: "a keyword must be a string".into() }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn regex_literals_escape_slashes() {
        assert_eq!(regex_literal("a/b", "f").unwrap(), r"/a\/b/");
        assert_eq!(regex_literal(r"a\/b", "f").unwrap(), r"/a\/b/");
        assert_eq!(regex_literal(r"a\\/b", "f").unwrap(), r"/a\\\/b/");
        assert!(regex_literal("a\\", "f").is_err());
    }

    #[test]
    fn kinds() {
        assert_eq!(kind_of("process_path", "Image").unwrap(), Kind::Keyword);
        assert_eq!(kind_of("cmdline", "CommandLine").unwrap(), Kind::Text);
        assert_eq!(kind_of("dst_port", "DestinationPort").unwrap(), Kind::Number);
        assert_eq!(kind_of("dst_ip", "DestinationIp").unwrap(), Kind::Ip);
        assert_eq!(kind_of("raw.Event.EventData.X", "X").unwrap(), Kind::Json);
        assert!(kind_of("raw.c-uri", "c-uri").is_err());
        assert!(kind_of("nonsense", "x").is_err());
        assert!(kind_of("host.x", "x").is_err());
    }
}
