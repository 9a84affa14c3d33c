/**
 * Prune, as the standalone page's panel (static/panels.js): "Plan prune" shows what retention keeps and deletes and
 * why; "Apply prune" only after a plan, behind a confirmation naming how many backups go, since deleted backups
 * cannot be brought back. The apply is planned again by the server when it runs (the plan shown is a preview).
 */
import React, { useState } from 'react';
import {
  Alert, Box, Button, Dialog, DialogActions, DialogContent, DialogContentText, DialogTitle, Table, TableBody,
  TableCell, TableHead, TableRow, Typography,
} from '@mui/material';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { backupsAdapter, errorMessage } from './backupsAdapter';
import { formatBytes, formatUtc } from './format';
import type { ApiRun } from './types';
import { backupsQueryKeys } from './useBackups';

export interface PruneDecision {
  run: string;
  kind: string;
  created_at: string;
  action: string; // keep or delete
  reason: string;
  verified: boolean;
  pinned: boolean;
  size_bytes: number;
  protected: boolean;
}

interface PruneSummary {
  backups_kept?: number;
  backups_to_delete?: number;
  leftovers?: number;
  bytes_to_free?: number;
}

interface PrunePanelProps {
  onSuccess?: (message: string) => void;
  onError?: (message: string) => void;
}

const short = (id: string) => id.slice(0, 8);

function planOf(run: ApiRun) {
  const details = (run.details ?? {}) as { plan?: PruneDecision[]; summary?: PruneSummary; warnings?: string[];
    planned_at?: string };
  return { decisions: details.plan ?? [], summary: details.summary ?? {}, warnings: details.warnings ?? [],
    plannedAt: details.planned_at ?? run.created_at };
}

export const PrunePanel: React.FC<PrunePanelProps> = ({ onSuccess, onError }) => {
  const queryClient = useQueryClient();
  const refresh = () => queryClient.invalidateQueries({ queryKey: backupsQueryKeys.all });
  const [plan, setPlan] = useState<ApiRun | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [message, setMessage] = useState<{ severity: 'success' | 'error'; text: string } | null>(null);
  const planMutation = useMutation({ mutationFn: backupsAdapter.planPrune, onSettled: refresh });
  const applyMutation = useMutation({ mutationFn: backupsAdapter.applyPrune, onSettled: refresh });

  const fail = (error: unknown) => {
    setMessage({ severity: 'error', text: errorMessage(error) });
    onError?.(errorMessage(error));
  };

  const planPrune = async () => {
    setMessage(null);
    try {
      const run = await planMutation.mutateAsync();
      setPlan(run);
      const text = `Prune planned (run ${short(run.id)}); nothing was deleted`;
      setMessage({ severity: 'success', text });
      onSuccess?.(text);
    } catch (error) {
      fail(error);
    }
  };

  const applyPrune = async () => {
    setConfirming(false);
    setMessage(null);
    try {
      const run = await applyMutation.mutateAsync();
      setPlan(null);
      const text = `Prune queued: run ${short(run.id)}`;
      setMessage({ severity: 'success', text });
      onSuccess?.(text);
    } catch (error) {
      fail(error);
    }
  };

  const shown = plan ? planOf(plan) : null;
  const deletes = shown?.summary.backups_to_delete ?? 0;
  return (
    <Box component="section" aria-labelledby="prune-title" sx={{ mt: 3 }}>
      <Typography variant="subtitle1" id="prune-title">
        Prune
      </Typography>
      <Box sx={{ display: 'flex', gap: 1, my: 1 }}>
        <Button variant="outlined" onClick={() => void planPrune()} disabled={planMutation.isPending}>
          Plan prune
        </Button>
        <Button variant="outlined" color="error" onClick={() => setConfirming(true)}
          disabled={!plan || applyMutation.isPending}>
          Apply prune
        </Button>
      </Box>
      <Box role="status" aria-live="polite">
        {message && <Alert severity={message.severity} role="none" sx={{ mb: 1 }}>{message.text}</Alert>}
      </Box>
      {shown && (
        <>
          <Typography variant="body2">
            Planned {formatUtc(shown.plannedAt)}: keeps {shown.summary.backups_kept ?? 0}, deletes {deletes} backup(s)
            and {shown.summary.leftovers ?? 0} leftover file(s), freeing {formatBytes(shown.summary.bytes_to_free ?? 0)}.
          </Typography>
          {shown.warnings.map((warning) => (
            <Alert key={warning} severity="warning" sx={{ my: 0.5 }}>Warning: {warning}</Alert>
          ))}
          {shown.decisions.length > 0 && (
            <Table size="small" aria-label="Prune plan">
              <TableHead>
                <TableRow>
                  <TableCell>Backup</TableCell>
                  <TableCell>Taken</TableCell>
                  <TableCell align="right">Size</TableCell>
                  <TableCell>Verified</TableCell>
                  <TableCell>Action</TableCell>
                  <TableCell>Reason</TableCell>
                </TableRow>
              </TableHead>
              <TableBody>
                {shown.decisions.map((item) => (
                  <TableRow key={item.run} data-action={item.action}>
                    <TableCell>{item.kind} {short(item.run)}{item.pinned ? ' (pinned)' : ''}</TableCell>
                    <TableCell>{formatUtc(item.created_at)}</TableCell>
                    <TableCell align="right">{formatBytes(item.size_bytes)}</TableCell>
                    <TableCell>{item.verified ? 'yes' : 'no'}</TableCell>
                    <TableCell>{item.action}</TableCell>
                    <TableCell>{item.reason}{item.protected ? ' (protected)' : ''}</TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          )}
        </>
      )}
      <Dialog open={confirming} onClose={() => setConfirming(false)} aria-labelledby="prune-confirm-title">
        <DialogTitle id="prune-confirm-title">Apply prune?</DialogTitle>
        <DialogContent>
          <DialogContentText>
            The plan deletes {deletes} backup(s) and {shown?.summary.leftovers ?? 0} leftover file(s),{' '}
            {formatBytes(shown?.summary.bytes_to_free ?? 0)} in all. Retention is planned again when the prune runs,
            and deleted backups cannot be brought back.
          </DialogContentText>
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setConfirming(false)}>Cancel</Button>
          <Button color="error" variant="contained" onClick={() => void applyPrune()}>
            Delete {deletes} backup(s)
          </Button>
        </DialogActions>
      </Dialog>
    </Box>
  );
};

export default PrunePanel;
