//! Sigma conditions: `and`, `or`, `not`, parentheses, `1 of x*`,
//! `all of x*`, `1 of them`, `all of them`.

use crate::SigmaError;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Ref(String),
    /// `1 of pattern` (`any of`): OR over the matching detections.
    OneOf(String),
    /// `all of pattern`: AND over the matching detections.
    AllOf(String),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    Word(String),
}

fn bad(message: impl Into<String>) -> SigmaError {
    SigmaError::BadCondition { message: message.into() }
}

fn lex(s: &str) -> Result<Vec<Tok>, SigmaError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' {
            chars.next();
            out.push(Tok::LParen);
        } else if c == ')' {
            chars.next();
            out.push(Tok::RParen);
        } else if c == '|' {
            return Err(SigmaError::UnsupportedAggregation {
                message: format!(
                    "the condition `{s}` uses the deprecated `| count()` aggregation; write a correlation rule"
                ),
            });
        } else {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '(' || c == ')' || c == '|' {
                    break;
                }
                w.push(c);
                chars.next();
            }
            out.push(Tok::Word(w));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_word(&self) -> Option<String> {
        match self.toks.get(self.pos) {
            Some(Tok::Word(w)) => Some(w.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn or(&mut self) -> Result<Cond, SigmaError> {
        let mut parts = vec![self.and()?];
        while self.peek_word().as_deref() == Some("or") {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Cond::Or(parts) })
    }

    fn and(&mut self) -> Result<Cond, SigmaError> {
        let mut parts = vec![self.not()?];
        while self.peek_word().as_deref() == Some("and") {
            self.pos += 1;
            parts.push(self.not()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Cond::And(parts) })
    }

    fn not(&mut self) -> Result<Cond, SigmaError> {
        if self.peek_word().as_deref() == Some("not") {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Cond, SigmaError> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let c = self.or()?;
                if self.toks.get(self.pos) != Some(&Tok::RParen) {
                    return Err(bad("a `(` is never closed"));
                }
                self.pos += 1;
                Ok(c)
            }
            Some(Tok::Word(w)) => {
                self.pos += 1;
                let lw = w.to_ascii_lowercase();
                if matches!(lw.as_str(), "and" | "or" | "not" | "of") {
                    return Err(bad(format!("unexpected `{w}`")));
                }
                if self.peek_word().as_deref() == Some("of") {
                    self.pos += 1;
                    let target = match self.toks.get(self.pos) {
                        Some(Tok::Word(t)) => t.clone(),
                        _ => return Err(bad(format!("`{w} of` needs a name pattern or `them`"))),
                    };
                    self.pos += 1;
                    return match lw.as_str() {
                        "1" | "any" => Ok(Cond::OneOf(target)),
                        "all" => Ok(Cond::AllOf(target)),
                        n if n.parse::<u32>().is_ok() => Err(SigmaError::UnsupportedAggregation {
                            message: format!("`{w} of` (more than one of) is not supported"),
                        }),
                        _ => Err(bad(format!("`{w} of`: expected `1 of` or `all of`"))),
                    };
                }
                Ok(Cond::Ref(w))
            }
            Some(Tok::RParen) => Err(bad("unexpected `)`")),
            None => Err(bad("the condition ends too early")),
        }
    }
}

/// Parses one condition string.
pub fn parse(s: &str) -> Result<Cond, SigmaError> {
    let toks = lex(s)?;
    if toks.is_empty() {
        return Err(bad("empty condition"));
    }
    let mut p = Parser { toks, pos: 0 };
    let c = p.or()?;
    if p.pos != p.toks.len() {
        return Err(bad(format!("unexpected text after the condition in `{s}`")));
    }
    Ok(c)
}

/// Whether `name` matches a Sigma name pattern (`*` any run, `?` one char).
pub fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_forms() {
        let c = parse("a or b and not c").unwrap();
        assert_eq!(
            c,
            Cond::Or(vec![
                Cond::Ref("a".into()),
                Cond::And(vec![Cond::Ref("b".into()), Cond::Not(Box::new(Cond::Ref("c".into())))])
            ])
        );
        assert_eq!(parse("1 of sel_*").unwrap(), Cond::OneOf("sel_*".into()));
        assert_eq!(parse("all of them").unwrap(), Cond::AllOf("them".into()));
        assert_eq!(
            parse("(a or b) and c").unwrap(),
            Cond::And(vec![Cond::Or(vec![Cond::Ref("a".into()), Cond::Ref("b".into())]), Cond::Ref("c".into())])
        );
        assert!(parse("(a or b").is_err());
        assert!(parse("a and").is_err());
        assert!(matches!(parse("sel | count() > 5"), Err(SigmaError::UnsupportedAggregation { .. })));
        assert!(glob("sel_*", "sel_a") && !glob("sel_*", "filter") && glob("*", "x") && glob("s?l", "sel"));
    }
}
