/**
 * The backup API's answers (openwatch_backup/api/schemas.py), as JSON: snake_case, times as ISO strings.
 * Only the fields the section reads are typed; the rest pass through untouched.
 */

export interface ApiCopy {
  storage: string; // local or s3
  state: string; // pending, copying, verified, failed or deleted
  location: string;
  size_bytes: number | null;
  sha256: string | null;
  attempts: number;
  error: string | null;
  verified_at: string | null;
  reverified_at: string | null;
  deleted_at: string | null;
}

export interface ApiRetention {
  action: string; // keep or delete
  reason: string;
  protected: boolean;
  prune_run: string;
  planned_at: string | null;
}

/** GET runs items carry this instead of `details` (null there); older servers send only `details`. */
export interface ApiRunSummary {
  set_id?: string | null;
  deep?: boolean | null;
  result?: string | null;
  reason?: string | null;
  message?: string | null;
  backup_run?: string | null;
  read_from?: string | null;
  artifact?: string | null;
  rate_bytes_per_s?: number | null;
  estimate_bytes?: number | null;
  retention?: ApiRetention | null;
}

export interface ApiRun {
  id: string;
  kind: string;
  status: string;
  trigger: string;
  requested_by: string | null;
  parent_id: string | null;
  phase: string | null;
  created_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  duration_seconds: number | null;
  bytes_done: number;
  artifact_location: string | null;
  size_bytes: number | null;
  sha256: string | null;
  pinned: boolean;
  pruned_at: string | null;
  details: Record<string, unknown> | null;
  summary?: ApiRunSummary;
  error_code: string | null;
  error: string | null;
  copies: ApiCopy[];
  members: ApiRun[] | null;
  set_offsite: boolean | null;
}

export interface ApiRunPage {
  items: ApiRun[];
  next_cursor: string | null;
}

export interface ApiCheckItem {
  key: string;
  title: string;
  cadence: string;
  status: string; // ok, fail, warn or skip
  detail: string;
  fix: string;
  /** The `openwatch-backup ...` commands in `fix`, each with the run it names (schemas.py CheckActionOut). */
  actions?: ApiCheckAction[];
}

export interface ApiCheckAction {
  command: string;
  verb: string; // verify, show, offsite, backup, drill, prune, ...
  run_id: string | null;
}

export interface ApiRto {
  scenario: string;
  state: string; // ok, warn or stated
  line: string;
  seconds: number | null;
  guide_rto: string;
  run_id: string | null;
  measured_at: string | null;
  /** The target in force (the guide's range, or the configured minutes). */
  target?: string | null;
}

/** A succeeded database backup's size and duration (GET status: last_backup, recent_backups). */
export interface ApiBackupPoint {
  id: string;
  kind: string;
  finished_at: string | null;
  size_bytes: number | null;
  duration_seconds: number | null;
}

/** GET status `live`: the newest database backup and its steps (api/live_chain.py). */
export interface ApiStep {
  name: 'preflight' | 'dump' | 'manifest' | 'verify' | 'offsite' | 'prune';
  state: 'pending' | 'running' | 'done' | 'failed' | 'skipped';
  run_id: string | null;
  note: string | null;
}

export interface ApiLive {
  run: ApiRun;
  steps: ApiStep[];
  active: boolean;
  estimate_bytes: number | null;
  estimate_from: string | null;
}

export interface ApiStatus {
  newest_verified_at: string | null;
  newest_verified_age_hours: number | null;
  threshold_hours: number;
  healthy: boolean;
  failing_checks: string[];
  running: ApiRun | null;
  next_runs: Record<string, string>;
  storage_used_bytes: number;
  storage_free_bytes: number | null;
  checklist: ApiCheckItem[];
  rto: ApiRto[];
  /** The newest database backup and its steps (live progress); null before the first backup. */
  live?: ApiLive | null;
  /** Health in words, the checklist included: "Healthy", "Unhealthy: 2 checks failing (3 warnings)". */
  verdict?: string;
  last_backup?: ApiBackupPoint | null;
  /** The newest succeeded database backups (at most 30), newest first. */
  recent_backups?: ApiBackupPoint[];
  /** Retention's size budget in force; null: no budget. */
  size_budget_bytes?: number | null;
}

/** Errors: `{"detail": "<one line>"}`; a 409 of POST runs adds the run already under way. */
export interface ApiErrorBody {
  detail?: string;
  code?: string | null;
  run?: ApiRun | null;
  /** A 422: each bad field with its words. */
  errors?: ApiFieldError[];
}

/** GET settings `limits`: a retention value's bounds, as PUT settings checks them (an input's min, max, step). */
export interface ApiNumberLimits {
  min: number | null;
  max: number | null;
  step: string; // "1" for whole numbers, "any" for decimals
}

/** GET settings `problems`: a stored or environment setting that cannot be used as it is. */
export interface ApiSettingProblem {
  key: string; // schedule.backup, retention.days, or an environment variable
  detail: string;
  allowed: string;
}

/** GET and PUT settings (SettingsOut); offsite and config are read-only and not shown by the form. */
export interface ApiSettings {
  schedule: { backup: string; drill: string };
  schedule_source: Record<string, string>; // "database" or "environment"
  next_runs: Record<string, string>;
  retention: Record<string, number>;
  allow_restore: boolean;
  problems: ApiSettingProblem[];
  limits: Record<string, ApiNumberLimits>;
  offsite?: ApiOffsite;
}

/** Where off-site copies go (OffsiteOut); credentials never appear. */
export interface ApiOffsite {
  configured: boolean;
  bucket: string | null;
  prefix: string | null;
  region: string | null;
  endpoint: string | null; // null: AWS
}

/** GET config (ConfigOut): the bundles as versions, newest first, and whether one can be taken (no passphrase shown). */
export interface ApiConfig {
  passphrase_set: boolean;
  passphrase_source: string | null;
  passphrase_problem: string | null;
  passphrase_warnings: string[];
  paths: string[];
  env_snapshot: boolean;
  cert_warn_days: number;
  versions_kept: number;
  active: ApiRun | null;
  versions: ApiConfigVersion[];
}

export interface ApiConfigVersion {
  run_id: string;
  artifact: string | null;
  trigger: string;
  requested_by: string | null;
  created_at: string | null;
  finished_at: string | null;
  size_bytes: number | null;
  sha256: string | null;
  key_id: string | null;
  members: number | null;
  paths: string[];
  env_snapshot: boolean | null;
  certificates: { subject: string | null; member: string | null; not_after: string | null; days_left: number | null;
    expiring: boolean }[];
  verify: { state: string; run_id: string; at: string | null; reason: string | null; message: string | null } | null;
  copies: ApiCopy[];
  present: boolean;
}

/** POST offsite/test (OffsiteTestOut): put, head, get, delete of a probe object, stopping at the first failure. */
export interface ApiOffsiteTest {
  ok: boolean;
  location: string;
  steps: { name: string; ok: boolean; seconds: number; code: string | null; error: string | null }[];
  summary: string;
}

/** PUT settings: only what changed (SettingsIn). */
export interface ApiSettingsChange {
  schedule?: { backup?: string; drill?: string };
  retention?: Record<string, number>;
  allow_restore?: boolean;
}

/** GET settings/cron-preview: a cron in words as beat reads it, and its next runs (UTC). */
export interface ApiCronPreview {
  text: string; // "daily at 01:30 UTC"
  next_runs: string[];
  time_of_day: string | null;
  weekdays: boolean;
}

/** A 422's list: each bad field ("retention.days", "schedule.backup") with its words ("must be at most 36,500"). */
export interface ApiFieldError {
  field: string;
  message: string;
}
