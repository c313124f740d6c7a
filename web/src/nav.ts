import type { Permission, Session } from './api';
import { makeCan } from './session';

export interface NavItem {
  page: string;
  label: string;
  needs: Permission;
}

/** The pages, each shown only to roles with its permission. */
export const NAV: NavItem[] = [
  { page: 'search', label: 'Search', needs: 'search' },
  { page: 'overview', label: 'Overview', needs: 'search' },
  { page: 'alerts', label: 'Alerts', needs: 'alerts:read' },
  { page: 'hunts', label: 'Hunts', needs: 'hunts:read' },
  { page: 'graph', label: 'Graph', needs: 'graph' },
  { page: 'tail', label: 'Live tail', needs: 'tail' },
  { page: 'agents', label: 'Agents', needs: 'inventory' },
];

/** Whether a session may use the UI at all (an ingest token may not). */
export function canUseUi(s: Session): boolean {
  const can = makeCan(s);
  return NAV.some((n) => can(n.needs));
}
