/**
 * The guarded restore's calls (issue 14 item 5), beside backupsAdapter.ts: the settings' "allow restore", the
 * checks a restore needs (GET runs/{id}/restore/check, nothing changed), and the restore itself (POST
 * runs/{id}/restore: 202 with the run, 409 with one line when it would fail, 403 when restores are off).
 */
import { api } from '../services/api';
import { BASE_URL } from './backupsAdapter';
import type { ApiRun } from './types';

export interface RestoreCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface RestoreCheckAnswer {
  backup_id: string;
  mode: 'into' | 'replace';
  into: string | null;
  live_database: string;
  ok: boolean;
  checks: RestoreCheck[];
}

/** Into a new database, or over the live one with its name typed. */
export type RestoreBody =
  | { into: string }
  | { confirm: string; safety_backup: boolean; terminate_connections: boolean };

export const restoreAdapter = {
  async allowed(): Promise<boolean> {
    const settings = await api.get<{ allow_restore?: boolean }>(`${BASE_URL}/settings`);
    return !!settings.allow_restore;
  },

  async check(runId: string, into?: string): Promise<RestoreCheckAnswer> {
    return api.get<RestoreCheckAnswer>(`${BASE_URL}/runs/${encodeURIComponent(runId)}/restore/check`,
      { params: into ? { into } : {} });
  },

  async start(runId: string, body: RestoreBody): Promise<ApiRun> {
    return api.post<ApiRun>(`${BASE_URL}/runs/${encodeURIComponent(runId)}/restore`, body);
  },
};

export default restoreAdapter;
