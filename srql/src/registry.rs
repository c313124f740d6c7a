//! The field registry: every entity SRQL can search, the table behind it,
//! and each field's column and type. SQL identifiers come only from here.

use serde::Serialize;

/// What a field holds, which decides the operators and values it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "type", content = "labels")]
pub enum FieldType {
    /// Exact-match identifiers (host names, users, kinds).
    Keyword,
    /// Prose (messages, command lines): `field:value` matches a phrase within it.
    Text,
    Int,
    Float,
    Bool,
    Time,
    Ip,
    Uuid,
    /// A small integer with names (`severity:high` = 4); ordered.
    Enum(&'static [(&'static str, i64)]),
    /// A JSON document; `field.path.to.key` reaches inside.
    Json,
}

impl FieldType {
    pub fn name(&self) -> &'static str {
        match self {
            FieldType::Keyword => "keyword",
            FieldType::Text => "text",
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
            FieldType::Time => "time",
            FieldType::Ip => "ip",
            FieldType::Uuid => "uuid",
            FieldType::Enum(_) => "enum",
            FieldType::Json => "json",
        }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, FieldType::Int | FieldType::Float)
    }
}

/// OCSF severity ids with their names first, then the syslog and logging
/// words ServiceRadar queries use for them.
pub const SEVERITY: &[(&str, i64)] = &[
    ("unknown", 0),
    ("info", 1),
    ("low", 2),
    ("medium", 3),
    ("high", 4),
    ("critical", 5),
    ("fatal", 6),
    ("informational", 1),
    ("information", 1),
    ("notice", 1),
    ("debug", 1),
    ("trace", 1),
    ("warning", 3),
    ("warn", 3),
    ("error", 4),
    ("err", 4),
    ("crit", 5),
    ("alert", 5),
    ("emergency", 6),
    ("emerg", 6),
];

pub const STATUS: &[(&str, i64)] = &[("unknown", 0), ("success", 1), ("failure", 2)];

/// One searchable field.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldDef {
    /// The name SRQL and results use.
    pub name: &'static str,
    /// Other names accepted (ServiceRadar/OCSF spellings).
    pub aliases: &'static [&'static str],
    /// The table column.
    pub column: &'static str,
    #[serde(flatten)]
    pub ty: FieldType,
    pub description: &'static str,
}

/// One searchable entity (`in:name`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EntityDef {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    #[serde(skip)]
    pub table: &'static str,
    /// A fixed condition narrowing the table (e.g. `in:logs`), SQL constant.
    #[serde(skip)]
    pub base_filter: Option<&'static str>,
    /// The field time filters and timecharts use.
    #[schema(required)]
    pub time_field: Option<&'static str>,
    /// Whether a query without `time:` gets the default window.
    pub default_window: bool,
    /// Fields free text searches (the SQL fallback until BM25).
    #[serde(skip)]
    pub text_columns: &'static [&'static str],
    /// Columns that break ties in the default order (unique per row).
    #[serde(skip)]
    pub key_columns: &'static [&'static str],
    /// Whether `| SIMILAR_TO` can run on it (rows have embeddings by event id).
    pub similarity: bool,
    pub description: &'static str,
    pub fields: &'static [FieldDef],
}

impl EntityDef {
    /// The field named `name` (or one of its aliases), case-insensitively.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name) || f.aliases.iter().any(|a| a.eq_ignore_ascii_case(name)))
    }

    pub fn field_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.fields.iter().flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()))
    }
}

const fn f(
    name: &'static str,
    aliases: &'static [&'static str],
    column: &'static str,
    ty: FieldType,
    description: &'static str,
) -> FieldDef {
    FieldDef { name, aliases, column, ty, description }
}

use FieldType::*;

const EVENT_FIELDS: &[FieldDef] = &[
    f("time", &["timestamp", "@timestamp"], "time", Time, "when the event happened"),
    f("event_id", &["id", "uid"], "event_id", Uuid, "the event's id"),
    f("tenant", &[], "tenant", Keyword, "tenant"),
    f("kind", &["type"], "kind", Keyword, "process, network, auth, alert, metric, vuln, log, package"),
    f("source", &["product", "service_name"], "source", Keyword, "producer: vigil-agent, zeek, sshd …"),
    f("host", &["hostname", "device", "device_name"], "host", Keyword, "host name"),
    f("severity", &["severity_id", "severity_text", "level"], "severity_id", Enum(SEVERITY), "unknown … critical"),
    f("class_uid", &["class"], "class_uid", Int, "OCSF class"),
    f("category_uid", &["category"], "category_uid", Int, "OCSF category"),
    f("activity_id", &["activity"], "activity_id", Int, "OCSF activity"),
    f("status", &["status_id", "outcome"], "status_id", Enum(STATUS), "success or failure"),
    f("message", &["msg", "body"], "message", Text, "the event's message"),
    f("user", &["user_name", "username"], "user_name", Keyword, "user name"),
    f("pid", &["process_pid", "process.pid"], "process_pid", Int, "process id"),
    f("ppid", &["process_ppid", "process.ppid"], "process_ppid", Int, "parent process id"),
    f("process", &["process_name", "process.name", "comm"], "process_name", Keyword, "process name"),
    f("process_path", &["exe", "process.path", "image"], "process_path", Keyword, "executable path"),
    f(
        "cmdline",
        &["process_cmdline", "command_line", "process.cmdline", "commandline"],
        "process_cmdline",
        Text,
        "command line",
    ),
    f("src_ip", &["src_endpoint_ip", "source_ip", "src"], "src_ip", Ip, "source address"),
    f("src_port", &["src_endpoint_port", "source_port", "sport"], "src_port", Int, "source port"),
    f("dst_ip", &["dst_endpoint_ip", "destination_ip", "dst"], "dst_ip", Ip, "destination address"),
    f("dst_port", &["dst_endpoint_port", "destination_port", "dport", "port"], "dst_port", Int, "destination port"),
    f("protocol", &["proto", "protocol_name"], "protocol", Keyword, "tcp, udp, ssh …"),
    f("ingested_at", &[], "ingested_at", Time, "when Vigil stored it"),
    f("raw", &[], "raw", Json, "the original record; raw.a.b reaches inside"),
];

const ALERT_FIELDS: &[FieldDef] = &[
    f("time", &["timestamp"], "time", Time, "when the alert was raised"),
    f("alert_id", &["id", "uid"], "alert_id", Uuid, "the alert's id"),
    f("tenant", &[], "tenant", Keyword, "tenant"),
    f("rule", &["hunt", "rule_name"], "rule", Keyword, "the hunt or rule that raised it"),
    f("title", &["message", "name"], "title", Text, "what happened"),
    f("severity", &["severity_id", "level"], "severity_id", Enum(SEVERITY), "unknown … critical"),
    f("status", &["state"], "status", Keyword, "open, acknowledged, closed"),
    f("host", &["hostname", "device"], "host", Keyword, "host name"),
    f("assignee", &["owner"], "assignee", Keyword, "who handles it"),
    f("event_count", &["count"], "event_count", Int, "matching events"),
    f("raw", &["details"], "raw", Json, "details; raw.a.b reaches inside"),
];

const CONNECTION_FIELDS: &[FieldDef] = &[
    f("last_seen", &["time", "timestamp"], "last_seen", Time, "last time the connection was seen"),
    f("first_seen", &[], "first_seen", Time, "first time it was seen"),
    f("tenant", &[], "tenant", Keyword, "tenant"),
    f("src_host", &["host", "hostname"], "src_host", Keyword, "source host"),
    f("src_ip", &["src_endpoint_ip", "source_ip"], "src_ip", Ip, "source address"),
    f("process", &["src_process", "process_name"], "src_process", Keyword, "process that opened it"),
    f("dst_host", &[], "dst_host", Keyword, "destination host"),
    f("dst_ip", &["dst_endpoint_ip", "destination_ip"], "dst_ip", Ip, "destination address"),
    f("dst_port", &["dst_endpoint_port", "port"], "dst_port", Int, "destination port"),
    f("protocol", &["proto", "protocol_name"], "protocol", Keyword, "tcp, udp …"),
    f("count", &["connections"], "count", Int, "times seen"),
    f("bytes", &["bytes_total"], "bytes", Int, "bytes transferred"),
];

const HOST_FIELDS: &[FieldDef] = &[
    f("host", &["hostname", "name", "device"], "host", Keyword, "host name"),
    f("tenant", &[], "tenant", Keyword, "tenant"),
    f("ip", &["ip_address"], "ip", Ip, "primary address"),
    f("os", &["os_name"], "os", Keyword, "operating system"),
    f("agent_id", &["agent"], "agent_id", Keyword, "reporting agent"),
    f("tags", &["metadata"], "tags", Json, "tags; tags.role reaches inside"),
    f("first_seen", &[], "first_seen", Time, "first report"),
    f("last_seen", &["time", "timestamp"], "last_seen", Time, "last report"),
];

const VULN_FIELDS: &[FieldDef] = &[
    f("host", &["hostname", "device"], "host", Keyword, "host name"),
    f("cve", &["vulnerability_id", "id"], "cve", Keyword, "CVE id"),
    f("package", &["pkg", "package_name"], "package", Keyword, "vulnerable package"),
    f("installed_version", &["version"], "installed_version", Keyword, "installed version"),
    f("fixed_version", &[], "fixed_version", Keyword, "first fixed version"),
    f("severity", &["severity_id", "level"], "severity_id", Enum(SEVERITY), "unknown … critical"),
    f("status", &["state"], "status", Keyword, "running, dormant, fixed"),
    f("tenant", &[], "tenant", Keyword, "tenant"),
    f("first_seen", &[], "first_seen", Time, "first report"),
    f("last_seen", &["time", "timestamp"], "last_seen", Time, "last report"),
];

/// Every entity, the default (`events`) first.
pub static ENTITIES: &[EntityDef] = &[
    EntityDef {
        name: "events",
        aliases: &["event", "activity"],
        table: "events",
        base_filter: None,
        time_field: Some("time"),
        default_window: true,
        text_columns: &["message", "process_cmdline", "raw::text"],
        key_columns: &["event_id"],
        similarity: true,
        description: "normalised security events (OCSF-aligned)",
        fields: EVENT_FIELDS,
    },
    EntityDef {
        name: "logs",
        aliases: &["log"],
        table: "events",
        base_filter: Some("kind = 'log'"),
        time_field: Some("time"),
        default_window: true,
        text_columns: &["message", "raw::text"],
        key_columns: &["event_id"],
        similarity: true,
        description: "log lines (events of kind log)",
        fields: EVENT_FIELDS,
    },
    EntityDef {
        name: "alerts",
        aliases: &["alert"],
        table: "alerts",
        base_filter: None,
        time_field: Some("time"),
        default_window: true,
        text_columns: &["title", "rule"],
        key_columns: &["alert_id"],
        similarity: false,
        description: "alerts raised by hunts and detections",
        fields: ALERT_FIELDS,
    },
    EntityDef {
        name: "connections",
        aliases: &["connection", "flows", "flow", "network_activity"],
        table: "connections",
        base_filter: None,
        time_field: Some("last_seen"),
        default_window: true,
        text_columns: &["src_host", "dst_host", "src_process"],
        key_columns: &["src_ip", "src_process", "dst_ip", "dst_port", "protocol"],
        similarity: false,
        description: "observed connections aggregated per source, process and destination",
        fields: CONNECTION_FIELDS,
    },
    EntityDef {
        name: "hosts",
        aliases: &["host", "devices", "device", "device_inventory"],
        table: "hosts",
        base_filter: None,
        time_field: Some("last_seen"),
        default_window: false,
        text_columns: &["host", "os"],
        key_columns: &["host"],
        similarity: false,
        description: "known hosts",
        fields: HOST_FIELDS,
    },
    EntityDef {
        name: "vulnerabilities",
        aliases: &["vulnerability", "vulns", "vuln", "cves"],
        table: "vulnerabilities",
        base_filter: None,
        time_field: Some("last_seen"),
        default_window: false,
        text_columns: &["cve", "package"],
        key_columns: &["host", "cve", "package"],
        similarity: false,
        description: "vulnerable packages per host, running or dormant",
        fields: VULN_FIELDS,
    },
];

/// The entity named `name` (or an alias).
pub fn entity(name: &str) -> Option<&'static EntityDef> {
    ENTITIES
        .iter()
        .find(|e| e.name.eq_ignore_ascii_case(name) || e.aliases.iter().any(|a| a.eq_ignore_ascii_case(name)))
}

pub fn entity_names() -> impl Iterator<Item = &'static str> {
    ENTITIES.iter().flat_map(|e| std::iter::once(e.name).chain(e.aliases.iter().copied()))
}
