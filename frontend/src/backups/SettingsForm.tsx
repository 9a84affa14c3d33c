/**
 * Schedule and retention settings (GET/PUT settings), as the standalone page's settings form: each cron in the
 * server's words as it is typed (GET settings/cron-preview, as beat reads it) with its next runs in local time;
 * retention inputs bounded by the server's own limits; a refusal's words under the field they concern; only the
 * changed values sent. Turning "allow restore" on asks first: it enables the restore wizard.
 */
import React, { useEffect, useMemo, useState } from 'react';
import {
  Alert, Box, Button, Checkbox, Dialog, DialogActions, DialogContent, DialogContentText, DialogTitle,
  FormControlLabel, FormHelperText, TextField, Typography,
} from '@mui/material';
import { errorMessage } from './backupsAdapter';
import { fieldErrors } from './settingsAdapter';
import { formatLocal } from './format';
import { useBackupSettings, useCronPreview, useSaveSettings } from './useBackupSettings';
import type { ApiSettings, ApiSettingsChange } from './types';

export interface SettingsFormProps {
  onSuccess?: (message: string) => void;
  onError?: (message: string) => void;
}

const CRONS = { backup: 'Backup schedule (cron, UTC)', drill: 'Restore drill schedule (cron, UTC)' } as const;
type CronName = keyof typeof CRONS;
const RETENTION_LABELS: Record<string, string> = {
  days: 'Keep database backups (days)', s3_days: 'Keep off-site copies (days)', keep_last: 'Keep last (verified)',
  keep_daily: 'Keep daily', keep_weekly: 'Keep weekly', keep_monthly: 'Keep monthly',
  size_budget_gib: 'Size budget (GiB, 0: none)', verified_floor: 'Verified floor', config_versions: 'Config versions',
  volume_weeks: 'Volume snapshots (weeks)',
};
const LOCAL_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'your time zone';

interface Draft {
  schedule: Record<CronName, string>;
  retention: Record<string, string>;
  allowRestore: boolean;
}

function draftOf(settings: ApiSettings): Draft {
  return {
    schedule: { backup: settings.schedule?.backup ?? '', drill: settings.schedule?.drill ?? '' },
    retention: Object.fromEntries(Object.entries(settings.retention ?? {}).map(([k, v]) => [k, String(v)])),
    allowRestore: !!settings.allow_restore,
  };
}

/** What to send: both crons when either changed (or one stored is unusable), changed retention values, allow
 * restore when flipped. Retention text that is not a number is refused here; bounds are the server's to judge. */
function changesOf(settings: ApiSettings, draft: Draft, problemKeys: Set<string>) {
  const change: ApiSettingsChange = {};
  const refused: Record<string, string> = {};
  const schedule = { backup: draft.schedule.backup.trim(), drill: draft.schedule.drill.trim() };
  if (schedule.backup !== (settings.schedule?.backup ?? '') || schedule.drill !== (settings.schedule?.drill ?? '')
    || problemKeys.has('schedule.backup') || problemKeys.has('schedule.drill')) {
    change.schedule = schedule;
  }
  const retention: Record<string, number> = {};
  for (const [key, before] of Object.entries(settings.retention ?? {})) {
    const text = (draft.retention[key] ?? '').trim();
    const value = Number(text);
    if (text === '' || !Number.isFinite(value)) {
      refused[`retention.${key}`] = 'must be a number';
    } else if (value !== Number(before) || problemKeys.has(`retention.${key}`)) {
      retention[key] = value;
    }
  }
  if (Object.keys(retention).length) {
    change.retention = retention;
  }
  if (draft.allowRestore !== !!settings.allow_restore) {
    change.allow_restore = draft.allowRestore;
  }
  return { change, refused };
}

/** "daily at 02:00 UTC" and under it "Next, local time (Europe/Berlin): 2026-12-02 03:00, ..."; or the error. */
function CronField({ name, value, error, saved, source, onChange }: {
  name: CronName; value: string; error?: string; saved: string; source?: string; onChange: (v: string) => void;
}) {
  const preview = useCronPreview(value);
  const current = preview.expr === value.trim();
  const previewError = current && preview.error ? errorMessage(preview.error) : '';
  const shown = error || previewError || (value.trim() === '' ? 'enter a cron expression, e.g. 0 2 * * * (02:00 UTC daily)' : '');
  const words = current && !preview.error && preview.data ? preview.data : null;
  const origin = value.trim() === saved ? `set in the ${source ?? 'defaults'}` : 'not saved yet';
  return (
    <Box sx={{ mb: 2 }}>
      <TextField id={`settings-cron-${name}`} label={CRONS[name]} value={value} size="small" fullWidth
        onChange={(e) => onChange(e.target.value)} error={!!shown} helperText={shown || undefined}
        slotProps={{ htmlInput: { spellCheck: false, autoComplete: 'off', 'data-testid': `cron-${name}` } }} />
      {!shown && words && (
        <FormHelperText component="div" data-testid={`cron-${name}-preview`} aria-live="polite">
          <span>{words.text}</span>
          {words.next_runs.length > 0 && (
            <span>
              {' · '}Next, local time ({LOCAL_ZONE}):{' '}
              {words.next_runs.map((at, index) => (
                <React.Fragment key={at}>
                  {index > 0 && ', '}
                  <time dateTime={at}>{formatLocal(at).replace(' local', '')}</time>
                </React.Fragment>
              ))}
            </span>
          )}
          {` (${origin})`}
        </FormHelperText>
      )}
    </Box>
  );
}

function AllowRestore({ checked, onChange }: { checked: boolean; onChange: (on: boolean) => void }) {
  const [asking, setAsking] = useState(false);
  return (
    <>
      <FormControlLabel
        control={<Checkbox checked={checked} onChange={(e) => (e.target.checked ? setAsking(true) : onChange(false))} />}
        label="Allow restore from this page" />
      <Dialog open={asking} onClose={() => setAsking(false)} aria-labelledby="allow-restore-title">
        <DialogTitle id="allow-restore-title">Allow restore?</DialogTitle>
        <DialogContent>
          <DialogContentText>
            An admin will be able to restore a backup from this page, into a new database or replacing OpenWatch's
            own. It takes effect when you save the settings.
          </DialogContentText>
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setAsking(false)}>Cancel</Button>
          <Button color="warning" variant="contained" onClick={() => { setAsking(false); onChange(true); }}>
            Allow restore
          </Button>
        </DialogActions>
      </Dialog>
    </>
  );
}

function Form({ settings, onSuccess, onError }: SettingsFormProps & { settings: ApiSettings }) {
  const [draft, setDraft] = useState(() => draftOf(settings));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [note, setNote] = useState<{ severity: 'success' | 'info' | 'error'; text: string } | null>(null);
  const save = useSaveSettings();
  const problems = settings.problems ?? [];
  const problemKeys = useMemo(() => new Set(problems.map((p) => p.key)), [problems]);

  useEffect(() => setDraft(draftOf(settings)), [settings]);

  const edit = (update: (d: Draft) => Draft, field: string) => {
    setDraft(update);
    setNote(null);
    setErrors(({ [field]: _dropped, ...rest }) => rest);
  };

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    const { change, refused } = changesOf(settings, draft, problemKeys);
    setErrors(refused);
    if (Object.keys(refused).length) {
      setNote({ severity: 'error', text: 'Not saved: fix the values marked above.' });
      return;
    }
    if (!Object.keys(change).length) {
      setNote({ severity: 'info', text: 'No changes to save.' });
      return;
    }
    try {
      await save.mutateAsync(change);
      setNote({ severity: 'success', text: 'Settings saved' });
      onSuccess?.('Settings saved');
    } catch (error) {
      const byField = fieldErrors(error);
      setErrors(byField);
      setNote({ severity: 'error', text: `Not saved: ${errorMessage(error)}` });
      if (!Object.keys(byField).length) {
        onError?.(errorMessage(error));
      }
    }
  };

  return (
    <Box component="form" noValidate onSubmit={(e) => void submit(e)} aria-labelledby="backup-settings-title">
      <Typography variant="subtitle1" id="backup-settings-title" sx={{ mt: 2, mb: 1 }}>
        Schedule and retention
      </Typography>
      {problems.length > 0 && (
        <Alert severity="warning" sx={{ mb: 2 }}>
          <ul aria-label="Settings that cannot be used" style={{ margin: 0, paddingLeft: 16 }}>
            {problems.map((p) => (
              <li key={p.key} data-key={p.key}>{p.detail} (allowed: {p.allowed})</li>
            ))}
          </ul>
        </Alert>
      )}
      {/* An answer without schedules (an older server) shows none rather than two empty, refused fields. */}
      {settings.schedule && (Object.keys(CRONS) as CronName[]).map((name) => (
        <CronField key={name} name={name} value={draft.schedule[name]} error={errors[`schedule.${name}`]}
          saved={settings.schedule?.[name] ?? ''} source={settings.schedule_source?.[name]}
          onChange={(v) => edit((d) => ({ ...d, schedule: { ...d.schedule, [name]: v } }), `schedule.${name}`)} />
      ))}
      <Box sx={{ display: 'grid', gridTemplateColumns: 'repeat(auto-fill, minmax(220px, 1fr))', gap: 2, mb: 1 }}>
        {Object.keys(draft.retention).map((key) => {
          const limits = settings.limits?.[key];
          const error = errors[`retention.${key}`];
          return (
            <TextField key={key} id={`settings-retention-${key}`} type="number" size="small"
              label={RETENTION_LABELS[key] ?? key.replace(/_/g, ' ')} value={draft.retention[key]}
              error={!!error || problemKeys.has(`retention.${key}`)} helperText={error || undefined}
              onChange={(e) => edit((d) => ({ ...d, retention: { ...d.retention, [key]: e.target.value } }),
                `retention.${key}`)}
              slotProps={{ htmlInput: { min: limits?.min ?? undefined, max: limits?.max ?? undefined,
                step: limits?.step ?? undefined, inputMode: 'decimal' } }} />
          );
        })}
      </Box>
      <AllowRestore checked={draft.allowRestore}
        onChange={(on) => edit((d) => ({ ...d, allowRestore: on }), 'allow_restore')} />
      <Box sx={{ display: 'flex', alignItems: 'center', gap: 2, mt: 1 }}>
        <Button type="submit" variant="contained" disabled={save.isPending}>Save settings</Button>
        <Box role="status" aria-live="polite">
          {note && <Typography variant="body2" color={note.severity === 'error' ? 'error' : undefined}>
            {note.text}
          </Typography>}
        </Box>
      </Box>
    </Box>
  );
}

export const SettingsForm: React.FC<SettingsFormProps> = ({ onSuccess, onError }) => {
  const query = useBackupSettings();
  if (query.error) {
    return <Alert severity="error" sx={{ mt: 2 }}>Settings: {errorMessage(query.error)}</Alert>;
  }
  if (!query.data) {
    return <Typography variant="body2" sx={{ mt: 2 }}>Loading settings…</Typography>;
  }
  return <Form settings={query.data} onSuccess={onSuccess} onError={onError} />;
};

export default SettingsForm;
