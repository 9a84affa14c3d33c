/**
 * The guarded restore (issue 14 item 5), as the standalone page's restore.js does it: a Restore button only when
 * "allow restore" is saved on and the backup can be restored, then a wizard: 1. the API's checks, 2. into a new
 * database (the default, a name prefilled) or over the live one (its name typed; a safety backup first), 3. the
 * restore run followed to its result. The API refuses the same things again (409): this is not the guard.
 */
import React, { useState } from 'react';
import {
  Alert,
  Box,
  Button,
  Checkbox,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  FormControlLabel,
  LinearProgress,
  List,
  ListItem,
  ListItemText,
  Radio,
  RadioGroup,
  Step,
  StepLabel,
  Stepper,
  TextField,
  Typography,
} from '@mui/material';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { backupsAdapter, errorMessage } from './backupsAdapter';
import type { VerifyView } from './backupsView';
import { formatDuration } from './format';
import { restoreAdapter, type RestoreBody, type RestoreCheck } from './restoreAdapter';
import type { ApiRun } from './types';
import { backupsQueryKeys } from './useBackups';

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const SCRATCH_PREFIX = 'owbscratch_';
const REPLACEABLE = ['full', 'plain']; // the kinds that hold the whole database
const DATABASE_KINDS = ['full', 'plain', 'schema', 'tables'];
const ACTIVE = ['queued', 'running'];
export const RESTORE_POLL_MS = 1000;
const STEPS = ['Checks', 'Where to', 'Progress and result'];
const CHECK_TITLES: Record<string, string> = {
  allowed: 'Restores allowed in the settings',
  restorable: 'A succeeded database backup',
  verified: 'Its last verify',
  file: 'Its file and checksum',
  compatible: 'Server version compatible',
  target: 'Target database',
  sessions: 'Sessions on the live database',
  idle: 'No backup or restore running',
};

const pad = (n: number) => String(n).padStart(2, '0');

/** openwatch_restore_YYYYMMDD_HHMM (UTC). */
export function suggestedName(now: Date = new Date()): string {
  return `openwatch_restore_${now.getUTCFullYear()}${pad(now.getUTCMonth() + 1)}${pad(now.getUTCDate())}_` +
    `${pad(now.getUTCHours())}${pad(now.getUTCMinutes())}`;
}

/** What is wrong with a new database's name, in words; null when it may be tried. */
export function nameProblem(name: string, live: string): string | null {
  if (!name) return 'Enter a name for the new database.';
  if (!NAME.test(name)) return 'Use letters, digits and _ (up to 63), not starting with a digit.';
  if (name === live) return `${live} is the live database: choose another name, or "Replace".`;
  if (name.toLowerCase().startsWith(SCRATCH_PREFIX)) {
    return `Names starting with ${SCRATCH_PREFIX} are the backup tool's scratch databases: choose another.`;
  }
  return null;
}

/** A database backup that succeeded, is still there, and whose last verify did not fail. */
export function canRestore(backup: ApiRun, verify?: VerifyView | null): boolean {
  return DATABASE_KINDS.includes(backup.kind) && backup.status === 'succeeded' && !backup.pruned_at &&
    verify?.state !== 'failed';
}

function CheckList({ checks }: { checks: RestoreCheck[] }) {
  return (
    <List dense aria-label="Compatibility checks">
      {checks.map((check) => (
        <ListItem key={check.name} data-check={check.name} divider>
          <ListItemText
            primary={`${check.ok ? 'ok' : 'failing'}: ${CHECK_TITLES[check.name] ?? check.name}`}
            secondary={check.detail}
            slotProps={{ primary: { color: check.ok ? 'success.main' : 'error.main' } }}
          />
        </ListItem>
      ))}
    </List>
  );
}

function resultText(run: ApiRun): string {
  const restore = (run.details?.restore ?? {}) as Record<string, unknown>;
  const seconds = typeof restore.seconds === 'number' ? restore.seconds : run.duration_seconds;
  if (run.status !== 'succeeded') {
    return `The restore ${run.status}: ${run.error ?? run.error_code ?? 'no reason was recorded'}. ` +
      'The live database was not changed.';
  }
  if (restore.mode === 'full') {
    return `Restored ${String(restore.database)} from the backup in ${formatDuration(seconds)}. The old database ` +
      `is kept as ${String(restore.kept_database)}.`;
  }
  return `Restored into database ${String(restore.database)} in ${formatDuration(seconds)}.`;
}

export interface RestoreWizardProps {
  backup: ApiRun;
  open: boolean;
  onClose: () => void;
  now?: Date;
}

export const RestoreWizard: React.FC<RestoreWizardProps> = ({ backup, open, onClose, now }) => {
  const queryClient = useQueryClient();
  const [step, setStep] = useState(0);
  const [mode, setMode] = useState<'into' | 'replace'>('into');
  const [into, setInto] = useState(() => suggestedName(now));
  const [confirm, setConfirm] = useState('');
  const [safety, setSafety] = useState(true);
  const [terminate, setTerminate] = useState(false);
  const [restoreId, setRestoreId] = useState<string | null>(null);

  const checks = useQuery({
    queryKey: [...backupsQueryKeys.all, 'restore-check', backup.id],
    queryFn: () => restoreAdapter.check(backup.id, into),
    enabled: open,
    staleTime: 0,
  });
  const start = useMutation({
    mutationFn: (body: RestoreBody) => restoreAdapter.start(backup.id, body),
    onSuccess: (run) => {
      setRestoreId(run.id);
      setStep(2);
    },
  });
  const run = useQuery({
    queryKey: backupsQueryKeys.runDetail(restoreId ?? ''),
    queryFn: () => backupsAdapter.getRun(restoreId as string),
    enabled: !!restoreId,
    refetchInterval: (query) => {
      const data = query.state.data as ApiRun | undefined;
      return !data || ACTIVE.includes(data.status) ? RESTORE_POLL_MS : false;
    },
  });

  const live = checks.data?.live_database ?? '';
  const blocking = (checks.data?.checks ?? []).filter((check) => !check.ok && check.name !== 'target');
  const problem = mode === 'into' ? nameProblem(into.trim(), live) : confirm === live ? null : `Type ${live} to confirm.`;
  const finished = run.data && !ACTIVE.includes(run.data.status) ? run.data : null;

  const close = () => {
    if (restoreId) void queryClient.invalidateQueries({ queryKey: backupsQueryKeys.all });
    onClose();
  };
  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    if (problem) return;
    start.mutate(mode === 'into' ? { into: into.trim() }
      : { confirm, safety_backup: safety, terminate_connections: terminate });
  };

  return (
    <Dialog open={open} onClose={close} maxWidth="sm" fullWidth aria-labelledby="restore-wizard-title">
      <DialogTitle id="restore-wizard-title">{`Restore ${backup.kind} backup ${backup.id.slice(0, 8)}`}</DialogTitle>
      <DialogContent>
        <Stepper activeStep={step} sx={{ mb: 2 }}>
          {STEPS.map((label) => (
            <Step key={label}>
              <StepLabel>{label}</StepLabel>
            </Step>
          ))}
        </Stepper>
        {step === 0 && (
          <Box>
            <Typography role="status" fontWeight={600}>
              {checks.isLoading && 'Checking...'}
              {checks.error && `The checks could not be run: ${errorMessage(checks.error)}`}
              {checks.data && (blocking.length
                ? `${blocking.length} ${blocking.length === 1 ? 'check is' : 'checks are'} failing: this backup ` +
                  'cannot be restored now. Fix what they say, then check again.'
                : 'The checks passed. Next, choose where to restore.')}
            </Typography>
            {checks.data && <CheckList checks={checks.data.checks} />}
          </Box>
        )}
        {step === 1 && (
          <Box component="form" id="restore-wizard-form" onSubmit={submit} noValidate>
            <RadioGroup aria-label="Where to restore" value={mode}
              onChange={(event) => setMode(event.target.value as 'into' | 'replace')}>
              <FormControlLabel value="into" control={<Radio />} label="Into a new database (nothing is replaced)" />
              {mode === 'into' && (
                <TextField label="New database name" value={into} onChange={(event) => setInto(event.target.value)}
                  error={!!problem} helperText={problem ?? 'A new database: nothing is replaced.'}
                  slotProps={{ htmlInput: { maxLength: 63, spellCheck: false } }} sx={{ ml: 4, mb: 1 }} />
              )}
              <FormControlLabel value="replace" control={<Radio />} label="Replace the live database"
                disabled={!REPLACEABLE.includes(backup.kind)} />
            </RadioGroup>
            {mode === 'replace' && (
              <Box sx={{ ml: 4 }}>
                <Alert severity="warning" sx={{ mb: 1 }}>
                  OpenWatch&apos;s data is replaced by the backup&apos;s. The old database is kept under a dated name,
                  never dropped.
                </Alert>
                <TextField label={`Type the live database's name, ${live}, to confirm`} value={confirm}
                  onChange={(event) => setConfirm(event.target.value)} fullWidth
                  slotProps={{ htmlInput: { maxLength: 63, spellCheck: false } }} />
                <FormControlLabel label="Take a safety backup of the live database first"
                  control={<Checkbox checked={safety} onChange={(event) => setSafety(event.target.checked)} />} />
                <FormControlLabel label="Disconnect OpenWatch's open sessions"
                  control={<Checkbox checked={terminate} onChange={(event) => setTerminate(event.target.checked)} />} />
              </Box>
            )}
            {start.error && <Alert severity="error" sx={{ mt: 1 }}>{`Not started: ${errorMessage(start.error)}`}</Alert>}
          </Box>
        )}
        {step === 2 && (
          <Box aria-live="polite">
            {!finished && (
              <>
                <Typography>
                  {`Restore run ${restoreId?.slice(0, 8)} is ${run.data?.status ?? 'queued'}` +
                    `${run.data?.phase ? `: ${run.data.phase}` : ''}...`}
                </Typography>
                <LinearProgress aria-label="Restore progress" sx={{ my: 1 }} />
              </>
            )}
            {finished && (
              <Alert severity={finished.status === 'succeeded' ? 'success' : 'error'}>{resultText(finished)}</Alert>
            )}
          </Box>
        )}
      </DialogContent>
      <DialogActions>
        {step === 0 && (
          <>
            <Button onClick={close}>Cancel</Button>
            <Button onClick={() => void checks.refetch()}>Check again</Button>
            <Button variant="contained" disabled={!checks.data || blocking.length > 0} onClick={() => setStep(1)}>
              Next
            </Button>
          </>
        )}
        {step === 1 && (
          <>
            <Button onClick={() => setStep(0)}>Back</Button>
            <Button type="submit" form="restore-wizard-form" variant="contained" color="error"
              disabled={!!problem || start.isPending}>
              {mode === 'into' ? 'Restore into the new database' : `Replace ${live}`}
            </Button>
          </>
        )}
        {step === 2 && <Button variant="contained" onClick={close}>Close</Button>}
      </DialogActions>
    </Dialog>
  );
};

/** The Restore button: shown only when "allow restore" is saved on and this backup can be restored. */
export const RestoreButton: React.FC<{ backup: ApiRun; verify?: VerifyView | null }> = ({ backup, verify }) => {
  const [open, setOpen] = useState(false);
  const allowed = useQuery({ queryKey: [...backupsQueryKeys.all, 'restore-allowed'], queryFn: restoreAdapter.allowed });
  if (!allowed.data || !canRestore(backup, verify)) return null;
  return (
    <>
      <Button color="warning" onClick={() => setOpen(true)}
        aria-label={`Restore ${backup.kind} backup ${backup.id.slice(0, 8)}`}>
        Restore
      </Button>
      {open && <RestoreWizard backup={backup} open={open} onClose={() => setOpen(false)} />}
    </>
  );
};

export default RestoreWizard;
