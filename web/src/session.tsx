import { createContext, useContext } from 'react';
import type { FieldsResponse, Permission, Session } from './api';

export interface AppContext {
  session: Session;
  fields: FieldsResponse | null;
  can: (p: Permission) => boolean;
  signOut: () => void;
}

export const SessionContext = createContext<AppContext | null>(null);

export function useApp(): AppContext {
  const c = useContext(SessionContext);
  if (!c) throw new Error('useApp outside the signed-in app');
  return c;
}

export function makeCan(session: Session): (p: Permission) => boolean {
  return (p) => session.permissions.includes(p) || session.permissions.includes('admin');
}
