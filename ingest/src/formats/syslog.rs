//! BSD syslog lines (`/var/log/auth.log`, `/var/log/messages`), with the
//! authentication stories of sshd, su, sudo and the PAM modules pulled out into
//! auth events, and cron jobs into process events. Lines this parser does not
//! recognise are kept as `log` events, never dropped.

use std::net::IpAddr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde_json::json;
use vigil_event::{Endpoint, Event, Kind, Process, Severity};

use super::ParseError;

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// OCSF Authentication activities.
const AUTH_LOGON: i32 = 1;
/// OCSF status ids.
const SUCCESS: i16 = 1;
const FAILURE: i16 = 2;

/// Parses the `Mmm dd hh:mm:ss` prefix (syslog carries no year) and returns
/// the time and the rest of the line.
pub fn parse_timestamp(line: &str, year: i32) -> Option<(DateTime<Utc>, &str)> {
    let month = MONTHS.iter().position(|m| line.get(..3) == Some(*m))? as u32 + 1;
    let rest = line.get(3..)?.trim_start();
    let (day, rest) = rest.split_once(' ')?;
    let day: u32 = day.parse().ok()?;
    let (clock, rest) = rest.split_once(' ')?;
    let time = NaiveTime::parse_from_str(clock, "%H:%M:%S").ok()?;
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    Some((NaiveDateTime::new(date, time).and_utc(), rest))
}

/// The year to give a year-less syslog line: the reference time's year, or the
/// previous one when that would put the line in the future (December lines
/// read in January).
pub fn infer_year(month_day: (u32, u32), reference: DateTime<Utc>) -> i32 {
    let (m, d) = month_day;
    if (m, d) > (reference.month(), reference.day()) {
        reference.year() - 1
    } else {
        reference.year()
    }
}

/// Parses one line; `year` supplies what syslog leaves out.
pub fn parse_line(line: &str, line_no: usize, year: i32) -> Result<Event, ParseError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (time, rest) = parse_timestamp(line, year)
        .ok_or_else(|| ParseError::new(line_no, "expected a syslog timestamp `Mmm dd hh:mm:ss`"))?;
    let (host, rest) =
        rest.split_once(' ').ok_or_else(|| ParseError::new(line_no, "expected a host name after the timestamp"))?;
    let (tag, msg) = match rest.split_once(": ") {
        Some((tag, msg)) if !tag.contains(' ') => (tag, msg),
        _ => match rest.strip_suffix(':') {
            Some(tag) if !tag.contains(' ') => (tag, ""),
            _ => ("", rest),
        },
    };
    let (program, pid) = split_tag(tag);

    let mut e = Event::new(Kind::Log, program.unwrap_or("syslog"), time, line.as_bytes());
    e.host = Some(host.to_string());
    e.severity = Severity::Info;
    e.message = msg.trim().to_string();
    e.process = Some(Process { pid, name: program.map(str::to_string), ..Default::default() });
    e.raw = json!({ "line": line });
    classify(&mut e, program.unwrap_or_default(), msg);
    Ok(e)
}

/// `sshd[24200]` → (`sshd`, 24200); `sshd(pam_unix)[1]` → (`sshd`, 1); `kernel` → (`kernel`, none).
fn split_tag(tag: &str) -> (Option<&str>, Option<i32>) {
    if tag.is_empty() {
        return (None, None);
    }
    let (name, pid) = match tag.split_once('[') {
        Some((n, p)) => (n, p.trim_end_matches(']').parse().ok()),
        None => (tag, None),
    };
    let name = name.split('(').next().unwrap_or(name);
    (Some(name), pid)
}

fn classify(e: &mut Event, program: &str, msg: &str) {
    let msg = msg.trim();
    match program {
        "sshd" => sshd(e, msg),
        "su" | "sudo" | "login" | "klogind" | "ftpd" | "passwd" => other_auth(e, program, msg),
        "CRON" | "cron" | "crond" => cron(e, msg),
        _ => {
            if msg.contains("authentication failure") {
                other_auth(e, program, msg)
            }
        }
    }
}

fn sshd(e: &mut Event, msg: &str) {
    if let Some(rest) = msg.strip_prefix("Failed password for ").or_else(|| msg.strip_prefix("Failed publickey for ")) {
        let rest = rest.strip_prefix("invalid user ").unwrap_or(rest);
        auth(e, FAILURE, word_before(rest, " from "), ip_after(msg, " from "), port_after(msg));
        e.protocol = Some("ssh".into());
    } else if let Some(rest) = msg.strip_prefix("Accepted ") {
        let user = rest.split_once(" for ").and_then(|(_, r)| word_before(r, " from "));
        auth(e, SUCCESS, user, ip_after(msg, " from "), port_after(msg));
        e.protocol = Some("ssh".into());
    } else if let Some(rest) = msg.strip_prefix("Invalid user ") {
        auth(e, FAILURE, word_before(rest, " from "), ip_after(msg, " from "), port_after(msg));
        e.protocol = Some("ssh".into());
    } else if msg.contains("POSSIBLE BREAK-IN ATTEMPT") {
        e.severity = Severity::Medium;
        if let Some(ip) = msg.split_once('[').and_then(|(_, r)| r.split_once(']')).and_then(|(ip, _)| ip.parse().ok()) {
            e.src = Some(Endpoint { ip, port: None });
        }
    } else if msg.contains("authentication failure") {
        pam_failure(e, msg);
    }
}

fn other_auth(e: &mut Event, program: &str, msg: &str) {
    if msg.contains("authentication failure") {
        pam_failure(e, msg);
    } else if let Some(rest) = msg.strip_prefix("session opened for user ") {
        auth(e, SUCCESS, rest.split_whitespace().next(), None, None);
    } else if program == "sudo" {
        // `alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/bash`
        if let Some((user, rest)) = msg.split_once(" : ") {
            let failed = rest.contains("incorrect password") || rest.contains("NOT in sudoers");
            auth(e, if failed { FAILURE } else { SUCCESS }, Some(user.trim()), None, None);
            if let Some(cmd) = rest.split(" ; ").find_map(|kv| kv.trim().strip_prefix("COMMAND=")) {
                if let Some(p) = e.process.as_mut() {
                    p.cmdline = Some(cmd.to_string());
                }
            }
        }
    }
}

fn pam_failure(e: &mut Event, msg: &str) {
    let field = |k: &str| msg.split_whitespace().find_map(|w| w.strip_prefix(k)).filter(|v| !v.is_empty());
    let ip = field("rhost=").and_then(|h| h.parse::<IpAddr>().ok());
    auth(e, FAILURE, field("user="), ip, None);
    if ip.is_none() {
        if let Some(host) = field("rhost=") {
            if let Some(obj) = e.raw.as_object_mut() {
                obj.insert("rhost".into(), json!(host));
            }
        }
    }
}

fn cron(e: &mut Event, msg: &str) {
    // `(root) CMD (run-parts /etc/cron.hourly)`
    if let Some((user, rest)) = msg.strip_prefix('(').and_then(|m| m.split_once(") CMD (")) {
        e.kind = Kind::Process;
        e.activity_id = Some(1);
        e.user = Some(user.to_string());
        if let Some(p) = e.process.as_mut() {
            p.cmdline = Some(rest.trim_end_matches(')').to_string());
        }
    }
}

fn auth(e: &mut Event, status: i16, user: Option<&str>, ip: Option<IpAddr>, port: Option<u16>) {
    e.kind = Kind::Auth;
    e.activity_id = Some(AUTH_LOGON);
    e.status_id = Some(status);
    e.severity = if status == FAILURE { Severity::Low } else { Severity::Info };
    e.user = user.filter(|u| !u.is_empty()).map(str::to_string);
    if let Some(ip) = ip {
        e.src = Some(Endpoint { ip, port });
    }
}

fn word_before<'a>(s: &'a str, sep: &str) -> Option<&'a str> {
    s.split_once(sep).map(|(w, _)| w.trim()).or_else(|| s.split_whitespace().next())
}

fn ip_after(s: &str, sep: &str) -> Option<IpAddr> {
    s.rsplit_once(sep)?.1.split_whitespace().next()?.parse().ok()
}

fn port_after(s: &str) -> Option<u16> {
    s.split_once(" port ")?.1.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Event {
        parse_line(line, 1, 2026).unwrap()
    }

    #[test]
    fn sshd_failed_password_is_a_failed_logon() {
        let e = parse("Dec 10 07:07:38 LabSZ sshd[24206]: Failed password for invalid user test9 from 52.80.34.196 port 36060 ssh2");
        assert_eq!(e.kind, Kind::Auth);
        assert_eq!(e.status_id, Some(FAILURE));
        assert_eq!(e.user.as_deref(), Some("test9"));
        assert_eq!(e.src, Some(Endpoint { ip: "52.80.34.196".parse().unwrap(), port: Some(36060) }));
        assert_eq!(e.host.as_deref(), Some("LabSZ"));
        assert_eq!(e.process.as_ref().unwrap().pid, Some(24206));
        assert_eq!(e.source, "sshd");
    }

    #[test]
    fn sshd_accepted_is_a_successful_logon() {
        let e =
            parse("Dec 10 09:32:20 LabSZ sshd[24680]: Accepted password for fztu from 119.137.62.142 port 49116 ssh2");
        assert_eq!((e.kind, e.status_id, e.user.as_deref()), (Kind::Auth, Some(SUCCESS), Some("fztu")));
    }

    #[test]
    fn pam_failures_carry_user_and_remote_host() {
        let e = parse("Jun 15 02:04:59 combo sshd(pam_unix)[20882]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4  user=root");
        assert_eq!((e.kind, e.user.as_deref()), (Kind::Auth, Some("root")));
        assert_eq!(e.src.unwrap().ip.to_string(), "218.188.2.4");
        let e = parse("Jun 15 02:04:59 combo sshd(pam_unix)[20882]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=220-135-151-1.hinet-ip.hinet.net  user=root");
        assert!(e.src.is_none());
        assert_eq!(e.raw["rhost"], "220-135-151-1.hinet-ip.hinet.net");
    }

    #[test]
    fn break_in_warning_is_medium_with_the_source_ip() {
        let e = parse("Dec 10 06:55:46 LabSZ sshd[24200]: reverse mapping checking getaddrinfo for ns.marryaldkfaczcz.com [173.234.31.186] failed - POSSIBLE BREAK-IN ATTEMPT!");
        assert_eq!(e.severity, Severity::Medium);
        assert_eq!(e.src.unwrap().ip.to_string(), "173.234.31.186");
    }

    #[test]
    fn su_sudo_and_cron() {
        let e = parse("Jun 14 15:16:01 combo su(pam_unix)[1]: session opened for user news by (uid=0)");
        assert_eq!((e.kind, e.user.as_deref(), e.status_id), (Kind::Auth, Some("news"), Some(SUCCESS)));
        let e = parse(
            "Nov 23 10:00:00 web-01 sudo: alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/bash -i",
        );
        assert_eq!((e.kind, e.user.as_deref()), (Kind::Auth, Some("alice")));
        assert_eq!(e.process.unwrap().cmdline.as_deref(), Some("/bin/bash -i"));
        let e = parse("Nov 23 10:17:01 web-01 CRON[4242]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)");
        assert_eq!((e.kind, e.user.as_deref()), (Kind::Process, Some("root")));
    }

    #[test]
    fn unknown_programs_stay_log_events_and_garbage_is_an_error() {
        let e = parse("Jun 14 15:16:01 combo kernel: Linux version 2.6.5-1.358");
        assert_eq!((e.kind, e.message.as_str()), (Kind::Log, "Linux version 2.6.5-1.358"));
        let err = parse_line("not syslog at all", 7, 2026).unwrap_err();
        assert_eq!(err.line, 7);
    }

    #[test]
    fn year_inference_never_lands_in_the_future() {
        let jan = DateTime::parse_from_rfc3339("2027-01-02T00:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(infer_year((12, 31), jan), 2026);
        assert_eq!(infer_year((1, 1), jan), 2027);
    }
}
