/**
 * Backups API adapter: type-safe calls to the backup plugin's router, which OpenWatch mounts under
 * /api/system/backups (README "Install into OpenWatch"), through OpenWatch's `api` client (its login included).
 * Built like OpenWatch's services/adapters/auditAdapter.ts.
 */
import { api } from '../services/api';
import type { ApiConfig, ApiErrorBody, ApiOffsiteTest, ApiRun, ApiRunPage, ApiStatus } from './types';

export const BASE_URL = '/api/system/backups';

export interface RunFilters {
  limit?: number;
  kind?: string;
  status?: string;
}

/** "Back up now": started (202), or refused because one is queued or running (409, with that run). */
export type StartBackupResult =
  | { started: true; run: ApiRun }
  | { started: false; run: ApiRun | null; message: string };

interface ErrorLike {
  status?: number;
  message?: string;
  response?: { status?: number; data?: unknown };
}

/** The HTTP status of a failed call (OpenWatch's client puts it on the error and on error.response). */
export function errorStatus(error: unknown): number | undefined {
  const e = error as ErrorLike | null;
  return e?.status ?? e?.response?.status;
}

/** The backend's one line (`detail`), else the client's message: what the admin reads. */
export function errorMessage(error: unknown): string {
  const e = error as ErrorLike | null;
  const body = e?.response?.data as ApiErrorBody | undefined;
  if (body && typeof body.detail === 'string' && body.detail) {
    return body.detail;
  }
  return e?.message || 'The backup API did not answer';
}

export const backupsAdapter = {
  /** Health: newest verified backup, the running run, next runs, the checklist, the RTO rows. */
  async getStatus(): Promise<ApiStatus> {
    return api.get<ApiStatus>(`${BASE_URL}/status`);
  },

  /** Runs, newest first, each nightly set one item with its member backups (`members`). */
  async listRuns(filters?: RunFilters): Promise<ApiRunPage> {
    return api.get<ApiRunPage>(`${BASE_URL}/runs`, { params: { group: 'sets', limit: 50, ...filters } });
  },

  /** One run with all its details (a set with its members). */
  async getRun(runId: string): Promise<ApiRun> {
    return api.get<ApiRun>(`${BASE_URL}/runs/${encodeURIComponent(runId)}`);
  },

  /** "Back up now". A 409 is an answer, not a failure: the backup already under way. */
  async startBackup(): Promise<StartBackupResult> {
    try {
      return { started: true, run: await api.post<ApiRun>(`${BASE_URL}/runs`, {}) };
    } catch (error) {
      if (errorStatus(error) !== 409) {
        throw error;
      }
      const body = (error as ErrorLike).response?.data as ApiErrorBody | undefined;
      return { started: false, run: body?.run ?? null, message: errorMessage(error) };
    }
  },

  /** Verify a backup: quick (file, size, sha256, readable) or deep (restored into a scratch database). */
  async verify(runId: string, deep = false): Promise<ApiRun> {
    return api.post<ApiRun>(`${BASE_URL}/runs/${encodeURIComponent(runId)}/verify`, { deep });
  },

  /** Plan retention now: a prune run whose details hold the plan (keep/delete with reasons); nothing is deleted. */
  async planPrune(): Promise<ApiRun> {
    return api.post<ApiRun>(`${BASE_URL}/prune/plan`, {});
  },

  /** Apply retention (202, the queued prune run; 409 while one is queued or running). Never implicit: apply true. */
  async applyPrune(): Promise<ApiRun> {
    return api.post<ApiRun>(`${BASE_URL}/prune`, { apply: true });
  },

  /** "Test connection": put, head, get and delete a probe object off-site; 422 (one line) when not configured. */
  async testOffsite(): Promise<ApiOffsiteTest> {
    return api.post<ApiOffsiteTest>(`${BASE_URL}/offsite/test`, {});
  },

  /** Config bundles: versions newest first, the passphrase's state (never the passphrase). */
  async getConfig(): Promise<ApiConfig> {
    return api.get<ApiConfig>(`${BASE_URL}/config`);
  },

  /** "Back up config now" (202); 409 while one is queued or running, 422 (one line) without a passphrase. */
  async backupConfig(): Promise<ApiRun> {
    return api.post<ApiRun>(`${BASE_URL}/config/backup`, {});
  },
};

export default backupsAdapter;
