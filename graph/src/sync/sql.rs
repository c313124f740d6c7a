//! The SQL of one graph-sync page. Every statement reads the page straight
//! from `events` by its `(ingested_at, event_id)` range, bound as
//! `$1` after ingested_at (NULL: from the start), `$2` after event_id,
//! `$3` until ingested_at, `$4` until event_id (inclusive), so the page is
//! aggregated in PostgreSQL and never shipped to the client. Values from
//! events only ever reach SQL as columns or bind parameters; the raw record is
//! read through the guarded helpers of migration 0009 (`vigil_json_text`,
//! `vigil_event_bytes`), so a malformed record is skipped, never a failed cast.

/// The page predicate on `events e`: after the old watermark, up to and
/// including the new one. The bare `ingested_at` bounds let the BRIN index
/// narrow the scan; the row comparisons make it exact.
macro_rules! in_page {
    () => {
        "e.ingested_at <= $3
           AND (e.ingested_at, e.event_id) <= ($3, $4::uuid)
           AND ($1::timestamptz IS NULL
                OR (e.ingested_at >= $1 AND (e.ingested_at, e.event_id) > ($1, $2::uuid)))"
    };
}

/// Network events with both addresses, aggregated per edge key and added to
/// `connections`; `$5` are the sources whose `host` is the connection's
/// source host (agents report their own connections). Other ends are named
/// from `hosts` by address, or left NULL. Returns (edges upserted, events).
pub(super) const EDGES: &str = concat!(
    "WITH net AS (
        SELECT e.time, e.tenant, e.host, e.source, e.src_ip, e.dst_ip,
               coalesce(e.process_name, '') AS src_process,
               coalesce(e.dst_port, 0) AS dst_port,
               coalesce(e.protocol, '') AS protocol,
               vigil_event_bytes(e.raw) AS bytes
          FROM events e
         WHERE ",
    in_page!(),
    "
           AND e.kind = 'network' AND e.src_ip IS NOT NULL AND e.dst_ip IS NOT NULL
    ), agg AS (
        SELECT src_ip, src_process, dst_ip, dst_port, protocol,
               min(tenant) AS tenant,
               min(time) AS first_seen,
               max(time) AS last_seen,
               count(*) AS n,
               least(sum(bytes), 9223372036854775807)::int8 AS bytes,
               (array_agg(host ORDER BY time DESC)
                   FILTER (WHERE host IS NOT NULL AND source = ANY($5::text[])))[1] AS reporter
          FROM net
         GROUP BY src_ip, src_process, dst_ip, dst_port, protocol
    ), up AS (
        INSERT INTO connections AS c
               (src_host, src_ip, src_process, dst_host, dst_ip, dst_port, protocol,
                tenant, first_seen, last_seen, count, bytes)
        SELECT coalesce(a.reporter,
                        (SELECT h.host FROM hosts h WHERE h.ip = a.src_ip
                          ORDER BY h.last_seen DESC, h.host LIMIT 1)),
               a.src_ip, a.src_process,
               (SELECT h.host FROM hosts h WHERE h.ip = a.dst_ip
                 ORDER BY h.last_seen DESC, h.host LIMIT 1),
               a.dst_ip, a.dst_port, a.protocol, a.tenant, a.first_seen, a.last_seen, a.n, a.bytes
          FROM agg a
        ON CONFLICT (src_ip, src_process, dst_ip, dst_port, protocol) DO UPDATE SET
               src_host   = coalesce(EXCLUDED.src_host, c.src_host),
               dst_host   = coalesce(EXCLUDED.dst_host, c.dst_host),
               first_seen = least(c.first_seen, EXCLUDED.first_seen),
               last_seen  = greatest(c.last_seen, EXCLUDED.last_seen),
               count      = c.count + EXCLUDED.count,
               bytes      = least(c.bytes::numeric + EXCLUDED.bytes, 9223372036854775807)::int8
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM up)::int8, (SELECT coalesce(sum(n), 0) FROM agg)::int8"
);

/// Vulnerability events (Trivy's `raw.vulnerability.{VulnerabilityID,
/// PkgName, InstalledVersion, FixedVersion}`, or flat `raw.{cve, package,
/// installed_version, fixed_version}`) upserted into `vulnerabilities`; the
/// newest report decides versions and severity. New rows start `dormant` and
/// are classified afterwards. Returns the host of each row upserted.
pub(super) const VULNS: &str = concat!(
    "WITH ev AS (
        SELECT e.host, v.cve, v.package, v.installed, v.fixed, e.severity_id, e.tenant,
               e.time, e.ingested_at, e.event_id
          FROM events e
         CROSS JOIN LATERAL (
               SELECT coalesce(vigil_json_text(e.raw #> '{vulnerability,VulnerabilityID}'),
                               vigil_json_text(e.raw -> 'cve')) AS cve,
                      coalesce(vigil_json_text(e.raw #> '{vulnerability,PkgName}'),
                               vigil_json_text(e.raw -> 'package')) AS package,
                      coalesce(vigil_json_text(e.raw #> '{vulnerability,InstalledVersion}'),
                               vigil_json_text(e.raw -> 'installed_version')) AS installed,
                      coalesce(vigil_json_text(e.raw #> '{vulnerability,FixedVersion}'),
                               vigil_json_text(e.raw -> 'fixed_version')) AS fixed) v
         WHERE ",
    in_page!(),
    "
           AND e.kind = 'vuln' AND e.host IS NOT NULL AND v.cve IS NOT NULL AND v.package IS NOT NULL
    ), agg AS (
        SELECT DISTINCT ON (host, cve, package)
               host, cve, package, installed, fixed, severity_id, tenant,
               min(time) OVER w AS first_seen, max(time) OVER w AS last_seen
          FROM ev
        WINDOW w AS (PARTITION BY host, cve, package)
         ORDER BY host, cve, package, time DESC, ingested_at DESC, event_id DESC
    )
    INSERT INTO vulnerabilities AS v
           (host, cve, package, installed_version, fixed_version, severity_id, status, tenant, first_seen, last_seen)
    SELECT host, cve, package, installed, fixed, severity_id, 'dormant', tenant, first_seen, last_seen FROM agg
    ON CONFLICT (host, cve, package) DO UPDATE SET
           installed_version = CASE WHEN EXCLUDED.last_seen >= v.last_seen
                                    THEN EXCLUDED.installed_version ELSE v.installed_version END,
           fixed_version     = CASE WHEN EXCLUDED.last_seen >= v.last_seen
                                    THEN EXCLUDED.fixed_version ELSE v.fixed_version END,
           severity_id       = CASE WHEN EXCLUDED.last_seen >= v.last_seen
                                    THEN EXCLUDED.severity_id ELSE v.severity_id END,
           tenant            = CASE WHEN EXCLUDED.last_seen >= v.last_seen
                                    THEN EXCLUDED.tenant ELSE v.tenant END,
           first_seen        = least(v.first_seen, EXCLUDED.first_seen),
           last_seen         = greatest(v.last_seen, EXCLUDED.last_seen)
    RETURNING v.host"
);

/// The newest package event of the page per (host, package, manager), with
/// its action folded to `removed` or not and its files (strings only; NULL
/// when the event lists none, which keeps the files known so far).
macro_rules! page_packages {
    () => {
        concat!(
            "WITH pkg AS (
                SELECT DISTINCT ON (e.host, p.package, p.manager)
                       e.host, p.package, p.manager, p.version, p.removed, p.files, e.tenant, e.time
                  FROM events e
                 CROSS JOIN LATERAL (
                       SELECT vigil_json_text(e.raw -> 'package') AS package,
                              coalesce(vigil_json_text(e.raw -> 'manager'), '') AS manager,
                              vigil_json_text(e.raw -> 'version') AS version,
                              coalesce(lower(vigil_json_text(e.raw -> 'action')), 'installed')
                                  IN ('removed', 'purged', 'uninstalled', 'erased') AS removed,
                              CASE WHEN jsonb_typeof(e.raw -> 'files') = 'array' THEN ARRAY(
                                  SELECT DISTINCT f #>> '{}'
                                    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e.raw -> 'files') = 'array'
                                                                   THEN e.raw -> 'files' ELSE '[]'::jsonb END) f
                                   WHERE jsonb_typeof(f) = 'string' AND f #>> '{}' <> '')
                              END AS files) p
                 WHERE ",
            in_page!(),
            "
                   AND e.kind = 'package' AND e.host IS NOT NULL AND p.package IS NOT NULL
                 ORDER BY e.host, p.package, p.manager, e.time DESC, e.ingested_at DESC, e.event_id DESC
            ) "
        )
    };
}

/// Step 1 of 3 for packages: drop the files of every package the page
/// replaces (removed, or re-listed with its files) where the event is not
/// older than what is known.
pub(super) const PACKAGE_FILES_CLEAR: &str = concat!(
    page_packages!(),
    "DELETE FROM package_files f
      USING pkg JOIN packages cur
                  ON cur.host = pkg.host AND cur.package = pkg.package AND cur.manager = pkg.manager
      WHERE f.host = pkg.host AND f.package = pkg.package AND f.manager = pkg.manager
        AND cur.last_seen <= pkg.time
        AND (pkg.removed OR pkg.files IS NOT NULL)"
);

/// Step 2 of 3: upsert the packages, the newest event (by event time) winning;
/// a removal keeps the row as a tombstone. Returns the host of each row changed.
pub(super) const PACKAGES_UPSERT: &str = concat!(
    page_packages!(),
    "INSERT INTO packages AS p (host, package, manager, version, status, tenant, first_seen, last_seen)
     SELECT host, package, manager, version, CASE WHEN removed THEN 'removed' ELSE 'installed' END,
            tenant, time, time
       FROM pkg
     ON CONFLICT (host, package, manager) DO UPDATE SET
            version    = coalesce(EXCLUDED.version, p.version),
            status     = EXCLUDED.status,
            tenant     = EXCLUDED.tenant,
            first_seen = least(p.first_seen, EXCLUDED.first_seen),
            last_seen  = EXCLUDED.last_seen
      WHERE p.last_seen <= EXCLUDED.last_seen
     RETURNING p.host"
);

/// Step 3 of 3: the files of the installed packages step 2 applied.
pub(super) const PACKAGE_FILES_INSERT: &str = concat!(
    page_packages!(),
    "INSERT INTO package_files (host, path, package, manager)
     SELECT pkg.host, f.path, pkg.package, pkg.manager
       FROM pkg
       JOIN packages p ON p.host = pkg.host AND p.package = pkg.package AND p.manager = pkg.manager
                      AND p.last_seen = pkg.time AND p.status = 'installed'
      CROSS JOIN LATERAL unnest(pkg.files) AS f(path)
     WHERE pkg.files IS NOT NULL
     ON CONFLICT DO NOTHING"
);

/// Process launches (activity 1) and terminations (activity 2) applied to
/// `running_processes`, per (host, pid) in event-time order within the page:
/// the last launch stands unless a termination at or after it follows; a
/// termination removes the row only if that process started at or before it
/// (a reused pid's newer process stays). Returns (1 = started, 2 = stopped, host).
pub(super) const PROCESSES: &str = concat!(
    "WITH ev AS (
        SELECT e.host, e.process_pid AS pid, e.activity_id, e.time, e.ingested_at, e.event_id, e.tenant,
               e.process_path, e.process_name, e.process_cmdline, e.user_name
          FROM events e
         WHERE ",
    in_page!(),
    "
           AND e.kind = 'process' AND e.activity_id IN (1, 2)
           AND e.host IS NOT NULL AND e.process_pid IS NOT NULL
    ), launch AS (
        SELECT DISTINCT ON (host, pid) *
          FROM ev WHERE activity_id = 1
         ORDER BY host, pid, time DESC, ingested_at DESC, event_id DESC
    ), term AS (
        SELECT host, pid, max(time) AS time FROM ev WHERE activity_id = 2 GROUP BY host, pid
    ), live AS (
        SELECT l.* FROM launch l LEFT JOIN term t ON t.host = l.host AND t.pid = l.pid
         WHERE t.time IS NULL OR l.time > t.time
    ), dead AS (
        SELECT t.* FROM term t LEFT JOIN launch l ON l.host = t.host AND l.pid = t.pid
         WHERE l.time IS NULL OR t.time >= l.time
    ), stopped AS (
        DELETE FROM running_processes r USING dead d
         WHERE r.host = d.host AND r.pid = d.pid AND r.started <= d.time
        RETURNING r.host
    ), started AS (
        INSERT INTO running_processes AS r (host, pid, exe, name, cmdline, user_name, started, event_id, tenant)
        SELECT host, pid, process_path, process_name, process_cmdline, user_name, time, event_id, tenant FROM live
        ON CONFLICT (host, pid) DO UPDATE SET
               exe = EXCLUDED.exe, name = EXCLUDED.name, cmdline = EXCLUDED.cmdline,
               user_name = EXCLUDED.user_name, started = EXCLUDED.started,
               event_id = EXCLUDED.event_id, tenant = EXCLUDED.tenant
         WHERE r.started <= EXCLUDED.started
        RETURNING r.host
    )
    SELECT 1::int4, host FROM started
    UNION ALL
    SELECT 2::int4, host FROM stopped"
);

/// Re-classifies every vulnerability of the hosts `$1`:
/// - `fixed`: the host's inventory changed the package after the last report
///   of the vulnerability, and no longer has it installed at the reported
///   version (removed, or another version);
/// - `running`: an installed package of that name owns a file that is the
///   executable of a running process on the host;
/// - `dormant`: otherwise.
///
/// Only rows whose status changes are written; each is returned with, when
/// it is now running, the running binary (the most recently started).
pub(super) const CLASSIFY: &str = "WITH cls AS (
        SELECT v.host, v.cve, v.package,
               CASE
                 WHEN EXISTS (SELECT 1 FROM packages p
                               WHERE p.host = v.host AND p.package = v.package AND p.last_seen > v.last_seen)
                  AND NOT EXISTS (SELECT 1 FROM packages p
                                   WHERE p.host = v.host AND p.package = v.package AND p.status = 'installed'
                                     AND (v.installed_version IS NULL OR p.version IS NULL
                                          OR p.version = v.installed_version))
                   THEN 'fixed'
                 WHEN EXISTS (SELECT 1 FROM packages p
                                JOIN package_files f
                                  ON f.host = p.host AND f.package = p.package AND f.manager = p.manager
                                JOIN running_processes r ON r.host = f.host AND r.exe = f.path
                               WHERE p.host = v.host AND p.package = v.package AND p.status = 'installed')
                   THEN 'running'
                 ELSE 'dormant'
               END AS status
          FROM vulnerabilities v
         WHERE v.host = ANY($1::text[])
    ), changed AS (
        UPDATE vulnerabilities v SET status = c.status
          FROM cls c
         WHERE v.host = c.host AND v.cve = c.cve AND v.package = c.package AND v.status <> c.status
        RETURNING v.host, v.cve, v.package, v.status, v.installed_version, v.fixed_version, v.severity_id, v.tenant
    )
    SELECT c.host, c.cve, c.package, c.status, c.installed_version, c.fixed_version, c.severity_id, c.tenant,
           b.exe, b.pid, b.name, b.started
      FROM changed c
      LEFT JOIN LATERAL (
           SELECT r.exe, r.pid, r.name, r.started
             FROM packages p
             JOIN package_files f ON f.host = p.host AND f.package = p.package AND f.manager = p.manager
             JOIN running_processes r ON r.host = f.host AND r.exe = f.path
            WHERE p.host = c.host AND p.package = c.package AND p.status = 'installed'
            ORDER BY r.started DESC, r.pid
            LIMIT 1) b ON c.status = 'running'
     ORDER BY c.host, c.cve, c.package";

/// One `vulnerable-and-running` alert, raised once per id.
pub(super) const RAISE_ALERT: &str =
    "INSERT INTO alerts (alert_id, time, tenant, rule, title, severity_id, host, event_count, raw)
     VALUES ($1, now(), $2, $3, $4, $5, $6, 1, $7)
     ON CONFLICT (alert_id) DO NOTHING";
