/**
 * The API's answers turned into what the section shows: one health verdict that includes the checklist, and
 * one row per backup (a nightly set with its members folded under it; each backup with its verification badge,
 * copies and retention word; verify and restore runs folded under the backup they concern).
 */
import type { ApiBackupPoint, ApiCheckItem, ApiCopy, ApiRto, ApiRun, ApiRunPage, ApiStatus } from './types';

export const BACKUP_KINDS = ['full', 'plain', 'schema', 'tables', 'config', 'volume', 'redis'];
const ACTIVE = ['queued', 'running'];

export interface HealthView {
  healthy: boolean;
  /** "Healthy", "1 check failing", "2 checks failing" or "No backup verified within 26 h". */
  headline: string;
  failing: ApiCheckItem[];
  newestVerifiedAt: string | null;
  newestVerifiedAgeHours: number | null;
  thresholdHours: number;
  running: ApiRun | null;
  nextRuns: { name: string; at: string }[];
  rto: ApiRto[];
  storageUsedBytes: number;
  storageFreeBytes: number | null;
  /** The API's verdict, as the standalone page shows it: "Unhealthy: 2 checks failing (3 warnings)". */
  verdict: string;
  lastBackup: ApiBackupPoint | null;
  /** The health chart's points: the newest succeeded database backups (at most 30), newest first. */
  recentBackups: ApiBackupPoint[];
  /** Retention's size budget in force; null: no budget. */
  sizeBudgetBytes: number | null;
}

export type VerifyState = 'passed' | 'failed' | 'running' | 'never';

export interface VerifyFailure {
  runId: string;
  at: string | null;
  reason: string | null;
  message: string | null;
}

export interface VerifyView {
  state: VerifyState;
  deep: boolean | null;
  at: string | null;
  runId: string | null;
  /** The newest verify that failed (it may be older than a later pass). */
  lastFailure: VerifyFailure | null;
  /** Verify and restore runs of this backup, newest first. */
  history: ApiRun[];
}

export interface CopyView {
  storage: string;
  label: string;
  state: string;
  error: string | null;
}

export interface BackupRow {
  id: string;
  kind: string;
  status: string;
  /** What the row says: "verified", "verify failed", "not verified", "running", "failed", ... */
  state: string;
  tone: 'success' | 'error' | 'warning' | 'info' | 'default';
  createdAt: string | null;
  sizeBytes: number | null;
  durationSeconds: number | null;
  artifact: string | null;
  pinned: boolean;
  retention: string | null;
  verify: VerifyView | null;
  copies: CopyView[];
  members: BackupRow[];
  setOffsite: boolean | null;
  error: string | null;
  run: ApiRun;
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

export function toHealth(status: ApiStatus): HealthView {
  const failing = status.checklist.filter(
    (item) => item.status === 'fail' || status.failing_checks.includes(item.key)
  );
  let headline = 'Healthy';
  if (failing.length > 0) {
    headline = `${plural(failing.length, 'check')} failing`;
  } else if (!status.healthy) {
    headline = `No backup verified within ${status.threshold_hours} h`;
  }
  return {
    healthy: status.healthy && failing.length === 0,
    headline,
    failing,
    newestVerifiedAt: status.newest_verified_at,
    newestVerifiedAgeHours: status.newest_verified_age_hours,
    thresholdHours: status.threshold_hours,
    running: status.running,
    nextRuns: Object.entries(status.next_runs).map(([name, at]) => ({ name, at })),
    rto: status.rto ?? [],
    storageUsedBytes: status.storage_used_bytes,
    storageFreeBytes: status.storage_free_bytes,
    // An older server without `verdict`: the same words from the headline.
    verdict: status.verdict || (status.healthy && failing.length === 0 ? 'Healthy' : `Unhealthy: ${headline}`),
    lastBackup: status.last_backup ?? null,
    recentBackups: status.recent_backups ?? [],
    sizeBudgetBytes: status.size_budget_bytes ?? null,
  };
}

/** A value from the list's `summary`, or from `details` (the detail endpoint, and servers before summaries). */
function fact(run: ApiRun, key: string): unknown {
  const fromSummary = (run.summary as Record<string, unknown> | undefined)?.[key];
  if (fromSummary !== undefined && fromSummary !== null) {
    return fromSummary;
  }
  const details = run.details ?? {};
  if (key === 'result' || key === 'reason' || key === 'message' || key === 'deep') {
    const verify = details.verify as Record<string, unknown> | undefined;
    return verify?.[key] ?? null;
  }
  return details[key] ?? null;
}

function text(value: unknown): string | null {
  return typeof value === 'string' && value ? value : null;
}

/** The backup a verify or restore run concerns. */
export function concerns(run: ApiRun): string | null {
  if (run.kind !== 'verify' && run.kind !== 'restore') {
    return null;
  }
  return text(fact(run, 'backup_run')) ?? run.parent_id;
}

const COPY_LABELS: Record<string, string> = { local: 'Local', s3: 'Off-site (S3)' };

export function toCopy(copy: ApiCopy): CopyView {
  return {
    storage: copy.storage,
    label: COPY_LABELS[copy.storage] ?? copy.storage,
    state: copy.state,
    error: copy.error,
  };
}

function verifyOf(backup: ApiRun, history: ApiRun[]): VerifyView {
  const verifies = history.filter((run) => run.kind === 'verify');
  const failed = verifies.find((run) => run.status === 'failed' || fact(run, 'result') === 'failed');
  const lastFailure = failed
    ? {
        runId: failed.id,
        at: failed.finished_at ?? failed.created_at,
        reason: text(fact(failed, 'reason')) ?? failed.error_code,
        message: text(fact(failed, 'message')) ?? failed.error,
      }
    : null;
  const newest = verifies[0];
  if (!newest) {
    // No verify on this page: a local copy whose size and sha256 were checked says as much.
    const local = backup.copies.find((copy) => copy.storage === 'local');
    const state: VerifyState = local?.state === 'failed' ? 'failed' : local?.state === 'verified' ? 'passed' : 'never';
    return { state, deep: null, at: local?.verified_at ?? null, runId: null, lastFailure, history };
  }
  let state: VerifyState = 'failed';
  if (ACTIVE.includes(newest.status)) {
    state = 'running';
  } else if (newest.status === 'succeeded' && fact(newest, 'result') !== 'failed') {
    state = 'passed';
  }
  const deep = fact(newest, 'deep');
  return {
    state,
    deep: typeof deep === 'boolean' ? deep : null,
    at: newest.finished_at ?? newest.created_at,
    runId: newest.id,
    lastFailure,
    history,
  };
}

function retentionWords(run: ApiRun): string | null {
  if (run.pinned) {
    return 'pinned: kept until unpinned';
  }
  if (run.pruned_at) {
    return 'deleted by retention';
  }
  const retention = run.summary?.retention;
  if (!retention) {
    return null;
  }
  return retention.action === 'delete'
    ? `deleted at the next prune: ${retention.reason}`
    : `kept: ${retention.reason}`;
}

function stateOf(run: ApiRun, verify: VerifyView | null): Pick<BackupRow, 'state' | 'tone'> {
  if (ACTIVE.includes(run.status)) {
    return { state: run.status, tone: 'info' };
  }
  if (run.status !== 'succeeded') {
    return { state: run.status, tone: 'error' };
  }
  if (!verify) {
    return { state: 'succeeded', tone: 'success' };
  }
  switch (verify.state) {
    case 'passed':
      return { state: 'verified', tone: 'success' };
    case 'failed':
      return { state: 'verify failed', tone: 'error' };
    case 'running':
      return { state: 'verifying', tone: 'info' };
    default:
      return { state: 'not verified', tone: 'warning' };
  }
}

function toRow(run: ApiRun, folded: Map<string, ApiRun[]>): BackupRow {
  const isBackup = BACKUP_KINDS.includes(run.kind);
  const verify = isBackup ? verifyOf(run, folded.get(run.id) ?? []) : null;
  const members = (run.members ?? []).map((member) => toRow(member, folded));
  const sizeBytes = run.members ? members.reduce((sum, m) => sum + (m.sizeBytes ?? 0), 0) : run.size_bytes;
  return {
    id: run.id,
    kind: run.kind,
    status: run.status,
    ...stateOf(run, verify),
    createdAt: run.created_at,
    sizeBytes,
    durationSeconds: run.duration_seconds,
    artifact: text(fact(run, 'artifact')),
    pinned: run.pinned,
    retention: isBackup ? retentionWords(run) : null,
    verify,
    copies: run.copies.map(toCopy),
    members,
    setOffsite: run.set_offsite,
    error: run.error,
    run,
  };
}

/**
 * The list as rows: sets with their members, backups, and the other runs (prune, drill, ...). A verify or
 * restore run whose backup is on the page is folded under that backup (its badge and history), not listed.
 */
export function toBackupRows(page: ApiRunPage): BackupRow[] {
  const everything = page.items.flatMap((run) => [run, ...(run.members ?? [])]);
  const backups = new Set(everything.filter((run) => BACKUP_KINDS.includes(run.kind)).map((run) => run.id));
  const folded = new Map<string, ApiRun[]>();
  for (const run of everything) {
    const target = concerns(run);
    if (target && backups.has(target)) {
      folded.set(target, [...(folded.get(target) ?? []), run]); // the page is newest first: so is each list
    }
  }
  return page.items
    .filter((run) => {
      const target = concerns(run);
      return !(target && backups.has(target));
    })
    .map((run) => toRow(run, folded));
}

/** The run a row or any of its members is, for following a started backup until it ends. */
export function findRun(page: ApiRunPage | undefined, runId: string): ApiRun | undefined {
  return page?.items.flatMap((run) => [run, ...(run.members ?? [])]).find((run) => run.id === runId);
}
