// A hunt's or an alert's `meta`: Sigma rule metadata (id, level, status,
// author, ATT&CK tags as plain text, references as links that send no
// referrer and are never fetched by the UI), then any other keys as JSON.

import { attackTechnique, otherMeta, safeLink, sigmaOf } from '../meta';

export function SigmaBadge({ meta }: { meta: unknown }) {
  const s = sigmaOf(meta);
  if (!s) return null;
  return (
    <span className="badge sigma" data-testid="sigma-badge" title={s.title ? `Sigma rule: ${s.title}` : 'imported from a Sigma rule'}>
      Sigma
    </span>
  );
}

export function MetaView({ meta, skip = [], testId = 'meta-view' }: { meta: unknown; skip?: string[]; testId?: string }) {
  const s = sigmaOf(meta);
  const rest = otherMeta(meta, skip);
  if (!s && rest.length === 0) return null;
  return (
    <div className="meta-view" data-testid={testId}>
      {s && (
        <div className="sigma-box" data-testid="sigma-meta">
          <div className="sigma-head">
            <span className="badge sigma">Sigma</span>
            {s.title && <span className="strong">{s.title}</span>}
          </div>
          <dl className="meta-grid">
            {s.id && (
              <>
                <dt>id</dt>
                <dd className="mono" data-testid="sigma-id">
                  {s.id}
                </dd>
              </>
            )}
            {s.level && (
              <>
                <dt>level</dt>
                <dd className={`sev sev-${s.level.toLowerCase()}`}>{s.level}</dd>
              </>
            )}
            {s.status && (
              <>
                <dt>status</dt>
                <dd>{s.status}</dd>
              </>
            )}
            {s.author && (
              <>
                <dt>author</dt>
                <dd>{s.author}</dd>
              </>
            )}
            {s.tags.length > 0 && (
              <>
                <dt>tags</dt>
                <dd className="tags" data-testid="sigma-tags">
                  {s.tags.map((t) => {
                    const tech = attackTechnique(t);
                    return (
                      <span key={t} className={`tag${tech ? ' attack' : ''}`} title={tech ? `MITRE ATT&CK ${tech}` : undefined} data-testid="sigma-tag">
                        {t}
                      </span>
                    );
                  })}
                </dd>
              </>
            )}
            {s.references.length > 0 && (
              <>
                <dt>references</dt>
                <dd>
                  <ul className="refs" data-testid="sigma-references">
                    {s.references.map((r) => {
                      const link = safeLink(r);
                      return (
                        <li key={r}>
                          {link ? (
                            <a href={link} target="_blank" rel="noreferrer noopener" data-testid="sigma-reference">
                              {r}
                            </a>
                          ) : (
                            <span data-testid="sigma-reference">{r}</span>
                          )}
                        </li>
                      );
                    })}
                  </ul>
                </dd>
              </>
            )}
          </dl>
        </div>
      )}
      {rest.map(([k, v]) => (
        <div key={k} className="meta-other">
          <span className="dim small">{k}</span>
          <pre className="json">{JSON.stringify(v, null, 2)}</pre>
        </div>
      ))}
    </div>
  );
}
