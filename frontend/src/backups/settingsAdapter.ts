/**
 * Settings API adapter: the schedule and retention form's calls (GET/PUT settings, the cron preview), through
 * OpenWatch's `api` client, as backupsAdapter.ts does for runs and status.
 */
import { api } from '../services/api';
import { BASE_URL } from './backupsAdapter';
import type { ApiCronPreview, ApiErrorBody, ApiFieldError, ApiSettings, ApiSettingsChange } from './types';

/** A 422's fields and their words (`errors`), keyed by field ("retention.days"); empty for any other error. */
export function fieldErrors(error: unknown): Record<string, string> {
  const body = (error as { response?: { data?: unknown } } | null)?.response?.data as ApiErrorBody | undefined;
  const listed: ApiFieldError[] = Array.isArray(body?.errors) ? body.errors : [];
  return Object.fromEntries(listed.filter((item) => item.field).map((item) => [item.field, item.message]));
}

export const settingsAdapter = {
  /** The schedules, retention values with their bounds, allow restore, and stored values that cannot be used. */
  async getSettings(): Promise<ApiSettings> {
    return api.get<ApiSettings>(`${BASE_URL}/settings`);
  },

  /** Save the changed values only; answers the settings as now in force. A refusal (422) names each field. */
  async putSettings(change: ApiSettingsChange): Promise<ApiSettings> {
    return api.put<ApiSettings>(`${BASE_URL}/settings`, change);
  },

  /** A cron expression in words, as beat reads it; a 400 says in one line what is wrong with it. */
  async previewCron(expr: string): Promise<ApiCronPreview> {
    return api.get<ApiCronPreview>(`${BASE_URL}/settings/cron-preview`, { params: { expr } });
  },
};

export default settingsAdapter;
