//! The demo estate's software, as an agent and a scanner would report it:
//! for each generated host, its dpkg inventory (`package` events shaped like
//! `vigil-agent`'s snapshot: `raw.package`, `version`, `manager`, `action`,
//! `files`), the long-running daemons the agent's process snapshot finds at
//! start (sshd, cron, nginx, postgres …), and a nightly Trivy report
//! (`vuln` events made by the Trivy importer from a report document).
//!
//! Web, worker and db hosts run Debian 12; the bastions are Debian 11 boxes
//! left behind on old patch levels. Each source package is either current or,
//! on a seeded share of hosts, still at an older version with real CVEs. The
//! packages own the executables the generator's process events run
//! ([`crate::generate`]), so some findings are `running` (the vulnerable
//! binary runs on that host: sshd, curl, nginx, postgres, git, rsync) and
//! others `dormant` (libraries, clients, tools that never run); a few hosts
//! upgraded after the scan, so their findings are `fixed`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use vigil_event::{Event, Kind, Process};

use crate::formats::trivy;
use crate::generate::{Host, Role};

const AGENT: &str = "vigil-agent";
const ALL: &[Role] = &[Role::Web, Role::Db, Role::Worker, Role::Bastion];
const WEB: &[Role] = &[Role::Web];
const DB: &[Role] = &[Role::Db];
const WORKER: &[Role] = &[Role::Worker];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// Debian 12.
    Bookworm,
    /// Debian 11.
    Bullseye,
}

impl Release {
    fn of(role: Role) -> Release {
        match role {
            Role::Bastion => Release::Bullseye,
            _ => Release::Bookworm,
        }
    }

    fn target(self, host: &str) -> String {
        match self {
            Release::Bookworm => format!("{host} (debian 12.5)"),
            Release::Bullseye => format!("{host} (debian 11.3)"),
        }
    }

    fn os_name(self) -> &'static str {
        match self {
            Release::Bookworm => "12.5",
            Release::Bullseye => "11.3",
        }
    }
}

/// A CVE as Trivy reports it against every binary package of the source.
struct Cve {
    id: &'static str,
    severity: &'static str,
    fixed: &'static str,
    title: &'static str,
}

/// An older version of a source still installed on `percent` % of the hosts
/// that have the source, and what it is vulnerable to.
struct Stale {
    version: &'static str,
    percent: u32,
    cves: &'static [Cve],
}

/// A Debian source package: its binary packages (name, files) at one version.
struct Source {
    release: Release,
    roles: &'static [Role],
    version: &'static str,
    binaries: &'static [(&'static str, &'static [&'static str])],
    stale: Option<Stale>,
}

const fn src(
    release: Release,
    roles: &'static [Role],
    version: &'static str,
    binaries: &'static [(&'static str, &'static [&'static str])],
) -> Source {
    Source { release, roles, version, binaries, stale: None }
}

use Release::{Bookworm, Bullseye};

/// Every package of the estate. Debian 12 is merged-/usr, so its lists name
/// `/usr/bin/…`; Debian 11's dpkg lists name `/bin/…` and the agent adds the
/// resolved `/usr/bin/…` form, as it does on a real host.
const SOURCES: &[Source] = &[
    // Debian 12: every web, worker and db host.
    src(Bookworm, ALL, "12.4+deb12u5", &[("base-files", &["/etc/debian_version", "/etc/os-release"])]),
    src(Bookworm, ALL, "5.2.15-2+b7", &[("bash", &["/usr/bin/bash", "/usr/bin/bashbug", "/etc/bash.bashrc"])]),
    src(
        Bookworm,
        ALL,
        "9.1-1",
        &[(
            "coreutils",
            &[
                "/usr/bin/base64",
                "/usr/bin/cat",
                "/usr/bin/chmod",
                "/usr/bin/cp",
                "/usr/bin/du",
                "/usr/bin/ls",
                "/usr/bin/mv",
                "/usr/bin/tail",
            ],
        )],
    ),
    src(Bookworm, ALL, "0.5.12-2", &[("dash", &["/usr/bin/dash"])]),
    src(Bookworm, ALL, "3.8-5", &[("grep", &["/usr/bin/grep", "/usr/bin/egrep"])]),
    src(Bookworm, ALL, "4.9.0-4", &[("findutils", &["/usr/bin/find", "/usr/bin/xargs"])]),
    src(Bookworm, ALL, "1.34+dfsg-1.2+deb12u1", &[("tar", &["/usr/bin/tar", "/usr/sbin/rmt-tar"])]),
    src(Bookworm, ALL, "2:4.0.2-3", &[("procps", &["/usr/bin/ps", "/usr/bin/top", "/usr/bin/free", "/usr/bin/pgrep"])]),
    src(
        Bookworm,
        ALL,
        "252.33-1~deb12u1",
        &[
            ("systemd", &["/usr/lib/systemd/systemd", "/usr/bin/systemctl", "/usr/bin/journalctl"]),
            ("libsystemd0", &["/usr/lib/x86_64-linux-gnu/libsystemd.so.0"]),
        ],
    ),
    src(Bookworm, ALL, "2.6.1", &[("apt", &["/usr/bin/apt", "/usr/bin/apt-get", "/usr/bin/apt-cache"])]),
    src(Bookworm, ALL, "3.21.0-1", &[("logrotate", &["/usr/sbin/logrotate", "/etc/logrotate.conf"])]),
    src(Bookworm, ALL, "3.0pl1-162", &[("cron", &["/usr/sbin/cron", "/usr/bin/crontab"])]),
    src(Bookworm, ALL, "8.2302.0-1", &[("rsyslog", &["/usr/sbin/rsyslogd", "/etc/rsyslog.conf"])]),
    src(Bookworm, ALL, "1:4.13+dfsg1-1", &[("passwd", &["/usr/sbin/useradd", "/usr/sbin/usermod", "/usr/bin/passwd"])]),
    src(Bookworm, ALL, "1.9.13p3-1+deb12u1", &[("sudo", &["/usr/bin/sudo", "/usr/bin/sudoedit"])]),
    src(Bookworm, ALL, "1.21.3-1+b2", &[("wget", &["/usr/bin/wget"])]),
    src(Bookworm, ALL, "1.219-1", &[("netcat-openbsd", &["/usr/bin/nc.openbsd"])]),
    src(Bookworm, ALL, "20230311", &[("ca-certificates", &["/usr/sbin/update-ca-certificates"])]),
    src(
        Bookworm,
        ALL,
        "3.11.2-6+deb12u5",
        &[
            ("python3.11-minimal", &["/usr/bin/python3.11"]),
            ("libpython3.11-stdlib", &["/usr/lib/python3.11/tarfile.py", "/usr/lib/python3.11/urllib/parse.py"]),
        ],
    ),
    src(Bookworm, ALL, "3.11.2-1+b1", &[("python3-minimal", &["/usr/bin/python3"])]),
    src(
        Bookworm,
        ALL,
        "5.4.1-0.2",
        &[("xz-utils", &["/usr/bin/xz", "/usr/bin/unxz"]), ("liblzma5", &["/usr/lib/x86_64-linux-gnu/liblzma.so.5.4.1"])],
    ),
    Source {
        release: Bookworm,
        roles: ALL,
        version: "1:9.2p1-2+deb12u3",
        binaries: &[
            ("openssh-client", &["/usr/bin/ssh", "/usr/bin/ssh-agent", "/usr/bin/scp", "/usr/bin/ssh-keygen"]),
            ("openssh-server", &["/usr/sbin/sshd", "/usr/lib/systemd/system/ssh.service"]),
            ("openssh-sftp-server", &["/usr/lib/openssh/sftp-server"]),
        ],
        stale: Some(Stale {
            version: "1:9.2p1-2+deb12u2",
            percent: 25,
            cves: &[Cve {
                id: "CVE-2024-6387",
                severity: "HIGH",
                fixed: "1:9.2p1-2+deb12u3",
                title: "openssh: regreSSHion: race condition in the signal handler of sshd allows unauthenticated remote code execution as root",
            }],
        }),
    },
    Source {
        release: Bookworm,
        roles: ALL,
        version: "7.88.1-10+deb12u8",
        binaries: &[("curl", &["/usr/bin/curl"]), ("libcurl4", &["/usr/lib/x86_64-linux-gnu/libcurl.so.4.8.0"])],
        stale: Some(Stale {
            version: "7.88.1-10+deb12u3",
            percent: 20,
            cves: &[
                Cve {
                    id: "CVE-2023-38545",
                    severity: "CRITICAL",
                    fixed: "7.88.1-10+deb12u4",
                    title: "curl: heap based buffer overflow in the SOCKS5 proxy handshake",
                },
            ],
        }),
    },
    Source {
        release: Bookworm,
        roles: ALL,
        version: "2.36-9+deb12u9",
        binaries: &[
            ("libc6", &["/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib64/ld-linux-x86-64.so.2"]),
            ("libc-bin", &["/usr/bin/iconv", "/usr/bin/getent", "/usr/bin/ldd", "/usr/sbin/ldconfig"]),
        ],
        stale: Some(Stale {
            version: "2.36-9+deb12u4",
            percent: 60,
            cves: &[Cve {
                id: "CVE-2024-2961",
                severity: "HIGH",
                fixed: "2.36-9+deb12u7",
                title: "glibc: out-of-bounds write in iconv ISO-2022-CN-EXT",
            }],
        }),
    },
    Source {
        release: Bookworm,
        roles: ALL,
        version: "3.0.15-1~deb12u1",
        binaries: &[
            ("openssl", &["/usr/bin/openssl", "/usr/bin/c_rehash"]),
            (
                "libssl3",
                &["/usr/lib/x86_64-linux-gnu/libssl.so.3", "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"],
            ),
        ],
        stale: Some(Stale {
            version: "3.0.11-1~deb12u2",
            percent: 50,
            cves: &[
                Cve {
                    id: "CVE-2024-0727",
                    severity: "MEDIUM",
                    fixed: "3.0.13-1~deb12u1",
                    title: "openssl: denial of service via null dereference in PKCS12 parsing",
                },
                Cve {
                    id: "CVE-2023-5678",
                    severity: "MEDIUM",
                    fixed: "3.0.13-1~deb12u1",
                    title: "openssl: generating or checking excessively long X9.42 DH keys may be very slow",
                },
            ],
        }),
    },
    // Web servers: nginx in front of a node API, deployed with git.
    Source {
        release: Bookworm,
        roles: WEB,
        version: "1.22.1-9+deb12u1",
        binaries: &[
            ("nginx", &["/usr/share/doc/nginx/copyright"]),
            ("nginx-common", &["/etc/nginx/nginx.conf", "/usr/lib/systemd/system/nginx.service"]),
            ("nginx-core", &["/usr/sbin/nginx"]),
        ],
        stale: Some(Stale {
            version: "1.22.1-9",
            percent: 30,
            cves: &[Cve {
                id: "CVE-2024-7347",
                severity: "MEDIUM",
                fixed: "1.22.1-9+deb12u1",
                title: "nginx: specially crafted MP4 file may cause denial of service in ngx_http_mp4_module",
            }],
        }),
    },
    src(
        Bookworm,
        WEB,
        "18.19.0+dfsg-6~deb12u2",
        &[("nodejs", &["/usr/bin/node"]), ("libnode108", &["/usr/lib/x86_64-linux-gnu/libnode.so.108"])],
    ),
    Source {
        release: Bookworm,
        roles: &[Role::Web, Role::Worker],
        version: "1:2.39.5-0+deb12u1",
        binaries: &[
            ("git", &["/usr/bin/git", "/usr/lib/git-core/git-remote-http"]),
            ("git-man", &["/usr/share/man/man1/git.1.gz"]),
        ],
        stale: Some(Stale {
            version: "1:2.39.2-1.1",
            percent: 25,
            cves: &[Cve {
                id: "CVE-2024-32002",
                severity: "CRITICAL",
                fixed: "1:2.39.5-0+deb12u1",
                title: "git: recursive clones on case-insensitive filesystems that support symlinks are susceptible to remote code execution",
            }],
        }),
    },
    // Database servers, and the workers that ship backups with rsync.
    Source {
        release: Bookworm,
        roles: DB,
        version: "15.10-0+deb12u1",
        binaries: &[
            (
                "postgresql-15",
                &[
                    "/usr/lib/postgresql/15/bin/postgres",
                    "/usr/lib/postgresql/15/bin/initdb",
                    "/usr/lib/postgresql/15/bin/pg_ctl",
                ],
            ),
            ("postgresql-client-15", &["/usr/lib/postgresql/15/bin/psql", "/usr/lib/postgresql/15/bin/pg_dump"]),
            ("libpq5", &["/usr/lib/x86_64-linux-gnu/libpq.so.5.15"]),
        ],
        stale: Some(Stale {
            version: "15.6-0+deb12u1",
            percent: 40,
            cves: &[
                Cve {
                    id: "CVE-2024-7348",
                    severity: "HIGH",
                    fixed: "15.8-0+deb12u1",
                    title: "postgresql: relation replacement during pg_dump executes arbitrary SQL",
                },
                Cve {
                    id: "CVE-2024-10979",
                    severity: "HIGH",
                    fixed: "15.10-0+deb12u1",
                    title: "postgresql: PL/Perl environment variable changes execute arbitrary code",
                },
            ],
        }),
    },
    src(Bookworm, DB, "248", &[("postgresql-common", &["/usr/bin/pg_lsclusters", "/usr/bin/pg_ctlcluster"])]),
    Source {
        release: Bookworm,
        roles: &[Role::Db, Role::Worker],
        version: "3.2.7-1+deb12u2",
        binaries: &[("rsync", &["/usr/bin/rsync", "/usr/lib/systemd/system/rsync.service"])],
        stale: Some(Stale {
            version: "3.2.7-1",
            percent: 25,
            cves: &[
                Cve {
                    id: "CVE-2024-12084",
                    severity: "CRITICAL",
                    fixed: "3.2.7-1+deb12u1",
                    title: "rsync: heap buffer overflow in the checksum parsing code",
                },
                Cve {
                    id: "CVE-2024-12085",
                    severity: "HIGH",
                    fixed: "3.2.7-1+deb12u1",
                    title: "rsync: info leak via uninitialized stack contents",
                },
            ],
        }),
    },
    src(Bookworm, WORKER, "3.11.2-6+deb12u5", &[("python3.11", &["/usr/bin/pydoc3.11"])]),
    // Debian 11: the bastions.
    src(Bullseye, ALL, "11.1+deb11u3", &[("base-files", &["/etc/debian_version", "/etc/os-release"])]),
    src(Bullseye, ALL, "5.1-2+deb11u1", &[("bash", &["/bin/bash", "/usr/bin/bash", "/usr/bin/bashbug"])]),
    src(
        Bullseye,
        ALL,
        "8.32-4+b1",
        &[(
            "coreutils",
            &[
                "/bin/cat",
                "/bin/chmod",
                "/bin/ls",
                "/usr/bin/base64",
                "/usr/bin/cat",
                "/usr/bin/chmod",
                "/usr/bin/du",
                "/usr/bin/ls",
                "/usr/bin/tail",
            ],
        )],
    ),
    src(Bullseye, ALL, "0.5.11+git20200708+dd9ef66-5", &[("dash", &["/bin/dash", "/usr/bin/dash"])]),
    src(Bullseye, ALL, "3.6-1+deb11u1", &[("grep", &["/bin/grep", "/usr/bin/grep"])]),
    src(Bullseye, ALL, "4.8.0-1", &[("findutils", &["/usr/bin/find", "/usr/bin/xargs"])]),
    src(Bullseye, ALL, "1.34+dfsg-1+deb11u1", &[("tar", &["/bin/tar", "/usr/bin/tar"])]),
    src(Bullseye, ALL, "2:3.3.17-5", &[("procps", &["/bin/ps", "/usr/bin/ps", "/usr/bin/top", "/usr/bin/free"])]),
    src(
        Bullseye,
        ALL,
        "247.3-7+deb11u4",
        &[(
            "systemd",
            &[
                "/bin/journalctl",
                "/bin/systemctl",
                "/lib/systemd/systemd",
                "/usr/bin/journalctl",
                "/usr/bin/systemctl",
                "/usr/lib/systemd/systemd",
            ],
        )],
    ),
    src(Bullseye, ALL, "2.2.4", &[("apt", &["/usr/bin/apt", "/usr/bin/apt-get"])]),
    src(Bullseye, ALL, "3.18.0-2+deb11u2", &[("logrotate", &["/usr/sbin/logrotate"])]),
    src(Bullseye, ALL, "3.0pl1-137", &[("cron", &["/usr/sbin/cron", "/usr/bin/crontab"])]),
    src(Bullseye, ALL, "8.2102.0-2+deb11u1", &[("rsyslog", &["/usr/sbin/rsyslogd"])]),
    src(Bullseye, ALL, "1:4.8.1-1", &[("passwd", &["/usr/sbin/useradd", "/usr/bin/passwd"])]),
    src(Bullseye, ALL, "1.21-1+deb11u1", &[("wget", &["/usr/bin/wget"])]),
    src(Bullseye, ALL, "1.217-3", &[("netcat-openbsd", &["/bin/nc.openbsd", "/usr/bin/nc.openbsd"])]),
    src(Bullseye, ALL, "3.9.2-1", &[("python3.9-minimal", &["/usr/bin/python3.9"])]),
    src(
        Bullseye,
        ALL,
        "7.74.0-1.3+deb11u14",
        &[("curl", &["/usr/bin/curl"]), ("libcurl4", &["/usr/lib/x86_64-linux-gnu/libcurl.so.4.7.0"])],
    ),
    Source {
        release: Bullseye,
        roles: ALL,
        version: "1:8.4p1-5+deb11u3",
        binaries: &[
            ("openssh-client", &["/usr/bin/ssh", "/usr/bin/ssh-agent", "/usr/bin/scp"]),
            ("openssh-server", &["/usr/sbin/sshd", "/lib/systemd/system/ssh.service"]),
        ],
        stale: Some(Stale {
            version: "1:8.4p1-5",
            percent: 40,
            cves: &[
                Cve {
                    id: "CVE-2023-38408",
                    severity: "CRITICAL",
                    fixed: "1:8.4p1-5+deb11u2",
                    title: "openssh: remote code execution in ssh-agent PKCS#11 support",
                },
                Cve {
                    id: "CVE-2023-48795",
                    severity: "MEDIUM",
                    fixed: "1:8.4p1-5+deb11u3",
                    title: "ssh: prefix truncation attack on the Binary Packet Protocol (Terrapin)",
                },
            ],
        }),
    },
    Source {
        release: Bullseye,
        roles: ALL,
        version: "1.1.1w-0+deb11u1",
        binaries: &[
            ("openssl", &["/usr/bin/openssl"]),
            (
                "libssl1.1",
                &["/usr/lib/x86_64-linux-gnu/libssl.so.1.1", "/usr/lib/x86_64-linux-gnu/libcrypto.so.1.1"],
            ),
        ],
        stale: Some(Stale {
            version: "1.1.1k-1+deb11u1",
            percent: 50,
            cves: &[Cve {
                id: "CVE-2022-0778",
                severity: "HIGH",
                fixed: "1.1.1k-1+deb11u2",
                title: "openssl: infinite loop in BN_mod_sqrt() reachable when parsing certificates",
            }],
        }),
    },
    Source {
        release: Bullseye,
        roles: ALL,
        version: "1.9.5p2-3+deb11u1",
        binaries: &[("sudo", &["/usr/bin/sudo", "/usr/bin/sudoedit"])],
        stale: Some(Stale {
            version: "1.9.5p2-3",
            percent: 50,
            cves: &[Cve {
                id: "CVE-2023-22809",
                severity: "HIGH",
                fixed: "1.9.5p2-3+deb11u1",
                title: "sudo: sudoedit arbitrary file write with the privileges of the RunAs user",
            }],
        }),
    },
    Source {
        release: Bullseye,
        roles: ALL,
        version: "2.31-13+deb11u11",
        binaries: &[
            ("libc6", &["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"]),
            ("libc-bin", &["/usr/bin/iconv", "/usr/bin/getent", "/sbin/ldconfig", "/usr/sbin/ldconfig"]),
        ],
        stale: Some(Stale {
            version: "2.31-13+deb11u3",
            percent: 70,
            cves: &[Cve {
                id: "CVE-2024-2961",
                severity: "HIGH",
                fixed: "2.31-13+deb11u10",
                title: "glibc: out-of-bounds write in iconv ISO-2022-CN-EXT",
            }],
        }),
    },
    Source {
        release: Bullseye,
        roles: ALL,
        version: "3.2.3-4+deb11u2",
        binaries: &[("rsync", &["/usr/bin/rsync"])],
        stale: Some(Stale {
            version: "3.2.3-4+deb11u1",
            percent: 30,
            cves: &[Cve {
                id: "CVE-2024-12085",
                severity: "HIGH",
                fixed: "3.2.3-4+deb11u2",
                title: "rsync: info leak via uninitialized stack contents",
            }],
        }),
    },
];

/// Daemons every host runs (pid, name, executable, command line, user).
const DAEMONS: &[(i32, &str, &str, &str, &str)] = &[
    (1, "systemd", "/usr/lib/systemd/systemd", "/sbin/init", "root"),
    (212, "rsyslogd", "/usr/sbin/rsyslogd", "/usr/sbin/rsyslogd -n -iNONE", "root"),
    (231, "cron", "/usr/sbin/cron", "/usr/sbin/cron -f", "root"),
    (268, "sshd", "/usr/sbin/sshd", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups", "root"),
];

/// And the ones of each role.
fn role_daemons(role: Role) -> &'static [(i32, &'static str, &'static str, &'static str, &'static str)] {
    match role {
        Role::Web => &[
            (281, "nginx", "/usr/sbin/nginx", "nginx: master process /usr/sbin/nginx -g daemon on; master_process on;", "root"),
            (290, "node", "/usr/bin/node", "/usr/bin/node /srv/api/server.js", "www-data"),
        ],
        Role::Db => &[(277, "postgres", "/usr/lib/postgresql/15/bin/postgres", "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main -c config_file=/etc/postgresql/15/main/postgresql.conf", "postgres")],
        Role::Worker => &[(284, "python3", "/usr/bin/python3.11", "/usr/bin/python3 /opt/app/worker.py --queue default", "deploy")],
        Role::Bastion => &[],
    }
}

/// What [`build`] made.
#[derive(Debug, Default)]
pub struct Inventory {
    pub packages: Vec<Event>,
    pub processes: Vec<Event>,
    pub vulns: Vec<Event>,
    /// Hosts that upgraded a vulnerable package after the scan.
    pub upgraded_hosts: Vec<String>,
}

/// One host's state: each source's version on it.
struct Installed<'a> {
    source: &'a Source,
    version: &'static str,
    stale: bool,
}

/// The inventory, daemons and scan findings of `hosts`, for a day that ends
/// at `end` (the agent started at `start`; Trivy scanned six hours ago).
pub fn build(hosts: &[Host], start: DateTime<Utc>, end: DateTime<Utc>, seed: u64) -> Inventory {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_1a7e_0f5c_4700);
    let mut out = Inventory::default();
    // Two hosts with a vulnerable openssh upgraded it after the nightly scan.
    let mut upgrades_left = 2;
    for (i, host) in hosts.iter().enumerate() {
        let release = Release::of(host.role);
        let installed: Vec<Installed<'_>> = SOURCES
            .iter()
            .filter(|s| s.release == release && s.roles.contains(&host.role))
            .map(|s| match &s.stale {
                Some(st) if rng.random_range(0..100) < st.percent => {
                    Installed { source: s, version: st.version, stale: true }
                }
                _ => Installed { source: s, version: s.version, stale: false },
            })
            .collect();

        let booted = start + Duration::seconds(20 + i as i64);
        for (pid, name, exe, cmd, user) in DAEMONS.iter().chain(role_daemons(host.role)) {
            out.processes.push(daemon(&host.name, booted, *pid, name, exe, cmd, user));
        }
        let inventoried = booted + Duration::seconds(25);
        for inst in &installed {
            for (pkg, files) in inst.source.binaries {
                out.packages.push(package(&host.name, inventoried, pkg, inst.version, "installed", None, files));
            }
        }

        let scanned = end - Duration::hours(6) + Duration::seconds(20 * i as i64);
        out.vulns.extend(scan(host, release, &installed, scanned));

        let openssh =
            installed.iter().find(|s| s.stale && s.source.binaries.iter().any(|(p, _)| *p == "openssh-server"));
        if let (Some(inst), true) = (openssh, upgrades_left > 0 && release == Release::Bookworm) {
            upgrades_left -= 1;
            let when = end - Duration::minutes(95) + Duration::seconds(i as i64);
            for (pkg, files) in inst.source.binaries {
                out.packages.push(package(
                    &host.name,
                    when,
                    pkg,
                    inst.source.version,
                    "upgraded",
                    Some(inst.version),
                    files,
                ));
            }
            out.upgraded_hosts.push(host.name.clone());
        }
    }
    out
}

/// A process the agent's snapshot finds running.
fn daemon(host: &str, time: DateTime<Utc>, pid: i32, name: &str, exe: &str, cmd: &str, user: &str) -> Event {
    let identity = format!("process|{host}|1|{pid}|0|snapshot|{exe}");
    let mut e = Event::new(Kind::Process, AGENT, time, identity.as_bytes());
    e.host = Some(host.to_string());
    e.activity_id = Some(1);
    e.user = Some(user.to_string());
    let ppid = if pid == 1 { 0 } else { 1 };
    e.process = Some(Process {
        pid: Some(pid),
        ppid: Some(ppid),
        name: Some(name.to_string()),
        path: Some(exe.to_string()),
        cmdline: Some(cmd.to_string()),
    });
    e.message = format!("process {name} ({pid}) running: {cmd}");
    e.raw = json!({
        "pid": pid, "ppid": ppid, "name": name, "exe": exe, "exe_deleted": false, "cmdline": cmd,
        "cwd": "/", "user": user, "complete": true, "origin": "snapshot", "process_source": "procfs",
        "snapshot": true,
    });
    e
}

/// A package event as the agent sends it (`docs/events.md`).
fn package(
    host: &str,
    time: DateTime<Utc>,
    name: &str,
    version: &str,
    action: &str,
    previous: Option<&str>,
    files: &[&str],
) -> Event {
    let snapshot = action == "installed";
    let identity = format!("package|{host}|dpkg|{name}|{version}|{action}|{snapshot}");
    let mut e = Event::new(Kind::Package, AGENT, time, identity.as_bytes());
    e.host = Some(host.to_string());
    e.message = match previous {
        Some(prev) => format!("{name} upgraded from {prev} to {version}"),
        None => format!("{name} {version} {action}"),
    };
    let mut files: Vec<&str> = files.to_vec();
    files.sort_unstable();
    let mut raw = json!({
        "package": name, "version": version, "manager": "dpkg", "action": action,
        "architecture": if name.starts_with("git-man") || name == "ca-certificates" { "all" } else { "amd64" },
        "snapshot": snapshot, "files": files,
    });
    if let (Some(prev), Some(map)) = (previous, raw.as_object_mut()) {
        map.insert("previous_version".into(), json!(prev));
    }
    e.raw = raw;
    e
}

/// The host's Trivy report (`trivy rootfs --format json /`), read back by
/// the Trivy importer into one `vuln` event per finding.
fn scan(host: &Host, release: Release, installed: &[Installed<'_>], at: DateTime<Utc>) -> Vec<Event> {
    let mut findings: BTreeMap<(String, &str), Value> = BTreeMap::new();
    for inst in installed.iter().filter(|s| s.stale) {
        let Some(stale) = &inst.source.stale else { continue };
        for cve in stale.cves {
            for (pkg, _) in inst.source.binaries {
                findings.insert(
                    (cve.id.to_string(), pkg),
                    json!({
                        "VulnerabilityID": cve.id,
                        "PkgID": format!("{pkg}@{}", inst.version),
                        "PkgName": pkg,
                        "InstalledVersion": inst.version,
                        "FixedVersion": cve.fixed,
                        "Status": "fixed",
                        "Layer": {},
                        "SeveritySource": "nvd",
                        "PrimaryURL": format!("https://avd.aquasec.com/nvd/{}", cve.id.to_ascii_lowercase()),
                        "DataSource": {"ID": "debian", "Name": "Debian Security Tracker", "URL": "https://salsa.debian.org/security-tracker-team/security-tracker"},
                        "Title": cve.title,
                        "Severity": cve.severity,
                    }),
                );
            }
        }
    }
    let report = json!({
        "SchemaVersion": 2,
        "CreatedAt": at.to_rfc3339(),
        "ArtifactName": host.name,
        "ArtifactType": "filesystem",
        "Metadata": {"OS": {"Family": "debian", "Name": release.os_name()}},
        "Results": [{
            "Target": release.target(&host.name),
            "Class": "os-pkgs",
            "Type": "debian",
            "Vulnerabilities": findings.into_values().collect::<Vec<_>>(),
        }],
    });
    // The report is our own; it always parses.
    trivy::parse_report(&report.to_string(), at).unwrap_or_default()
}
