//! The text actually embedded, which is also the cache key.

/// Masks what varies between otherwise identical log lines and collapses
/// whitespace: IPv4 and IPv6 addresses → `<ip>`, UUIDs → `<uuid>`, hex ids of
/// 8 or more hex digits with at least one letter, and `0x…` literals →
/// `<hex>`, other digit runs → `<num>`. Case is kept. Digit runs glued to the
/// end of a word are kept when short (`ssh2`, `sha256`, `web01`, `log4j`) and
/// masked from 4 digits on (`session12345` → `session<num>`). Deterministic.
pub fn normalize(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            space = !out.is_empty();
            i += 1;
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        let rest = &chars[i..];
        let at_start = i == 0 || !is_word(chars[i - 1]);
        // Not the tail of a longer dotted number (1.3.6.1.4.1 is no address).
        let after_dot = i > 0 && chars[i - 1] == '.';
        if at_start {
            let masked = match_uuid(rest)
                .map(|n| (n, "<uuid>"))
                .or_else(|| match_ipv4(rest).filter(|_| !after_dot).map(|n| (n, "<ip>")))
                .or_else(|| match_ipv6(rest).filter(|_| !after_dot).map(|n| (n, "<ip>")))
                .or_else(|| match_hex(rest).map(|n| (n, "<hex>")));
            if let Some((n, mask)) = masked {
                out.push_str(mask);
                i += n;
                continue;
            }
        }
        if c.is_ascii_digit() {
            let n = run(rest, |c| c.is_ascii_digit());
            if at_start || n > 3 {
                out.push_str("<num>");
            } else {
                out.extend(&rest[..n]);
            }
            i += n;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// True when a match of `n` chars ends at a word boundary.
fn ends(s: &[char], n: usize) -> bool {
    s.get(n).is_none_or(|&c| !is_word(c))
}

fn run(s: &[char], f: impl Fn(char) -> bool) -> usize {
    s.iter().take_while(|&&c| f(c)).count()
}

fn match_uuid(s: &[char]) -> Option<usize> {
    let mut n = 0;
    for (k, len) in [8, 4, 4, 4, 12].into_iter().enumerate() {
        if k > 0 {
            (s.get(n) == Some(&'-')).then_some(())?;
            n += 1;
        }
        (s.len() >= n + len && s[n..n + len].iter().all(char::is_ascii_hexdigit)).then_some(())?;
        n += len;
    }
    ends(s, n).then_some(n)
}

fn match_ipv4(s: &[char]) -> Option<usize> {
    let mut n = 0;
    for k in 0..4 {
        if k > 0 {
            (s.get(n) == Some(&'.')).then_some(())?;
            n += 1;
        }
        let d = run(&s[n..], |c| c.is_ascii_digit());
        (1..=3).contains(&d).then_some(())?;
        n += d;
    }
    // Not a longer dotted number (an OID or a version like 1.2.3.4.5).
    let longer = s.get(n) == Some(&'.') && s.get(n + 1).is_some_and(char::is_ascii_digit);
    (ends(s, n) && !longer).then_some(n)
}

fn match_ipv6(s: &[char]) -> Option<usize> {
    let mut n = run(s, |c| c.is_ascii_hexdigit() || c == ':');
    let text: String = s[..n].iter().collect();
    let mut body = text.as_str();
    if body.ends_with(':') && !body.ends_with("::") {
        body = &body[..body.len() - 1];
        n -= 1;
    }
    let colons = body.matches(':').count();
    let groups: Vec<&str> = body.split(':').collect();
    let valid = colons >= 2
        && (body.contains("::") || colons == 7)
        && body.matches("::").count() <= 1
        && !body.contains(":::")
        && groups.iter().all(|g| g.len() <= 4)
        && groups.iter().any(|g| !g.is_empty());
    if !valid {
        return None;
    }
    // An IPv4-mapped tail: ::ffff:10.0.0.1
    if s.get(n) == Some(&'.') {
        let last = groups.last().map_or(0, |g| g.len());
        return match_ipv4(&s[n - last..]).map(|m| n - last + m);
    }
    ends(s, n).then_some(n)
}

fn match_hex(s: &[char]) -> Option<usize> {
    if s.len() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
        let d = run(&s[2..], |c| c.is_ascii_hexdigit());
        if d > 0 && ends(s, 2 + d) {
            return Some(2 + d);
        }
    }
    let n = run(s, |c| c.is_ascii_hexdigit());
    let letters = s[..n].iter().any(|c| c.is_ascii_alphabetic());
    (n >= 8 && letters && ends(s, n)).then_some(n)
}
