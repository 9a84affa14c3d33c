/**
 * React Query hooks for the schedule and retention form: the settings, a cron's preview (asked once the admin
 * stops typing for PREVIEW_DELAY_MS, as the standalone page does), and saving.
 */
import { useEffect, useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { settingsAdapter } from './settingsAdapter';
import { backupsQueryKeys } from './useBackups';
import type { ApiSettingsChange } from './types';

export const PREVIEW_DELAY_MS = 300;

export const settingsQueryKeys = {
  settings: () => [...backupsQueryKeys.all, 'settings'] as const,
  cronPreview: (expr: string) => [...backupsQueryKeys.all, 'settings', 'cron-preview', expr] as const,
};

export function useBackupSettings() {
  // Not read again behind the admin's back (window focus): that would replace what they are typing.
  return useQuery({ queryKey: settingsQueryKeys.settings(), queryFn: settingsAdapter.getSettings,
    staleTime: 5 * 60_000, refetchOnWindowFocus: false });
}

/** `value`, once it has stayed the same for `delayMs`. */
export function useDebounced<T>(value: T, delayMs: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), delayMs);
    return () => clearTimeout(timer);
  }, [value, delayMs]);
  return settled;
}

/** The typed cron in words; nothing is asked for an empty field. The answer for an older text never shows. */
export function useCronPreview(expr: string) {
  const settled = useDebounced(expr.trim(), PREVIEW_DELAY_MS);
  const query = useQuery({
    queryKey: settingsQueryKeys.cronPreview(settled),
    queryFn: () => settingsAdapter.previewCron(settled),
    enabled: settled !== '',
    staleTime: 60_000,
  });
  return { ...query, expr: settled };
}

/** Save; the answer is the settings now in force. The status (next runs, size budget) and whether restores
 * are allowed (RestoreWizard's Restore button) are read again. */
export function useSaveSettings() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (change: ApiSettingsChange) => settingsAdapter.putSettings(change),
    onSuccess: (saved) => queryClient.setQueryData(settingsQueryKeys.settings(), saved),
    onSettled: () => Promise.all([
      queryClient.invalidateQueries({ queryKey: backupsQueryKeys.status() }),
      queryClient.invalidateQueries({ queryKey: [...backupsQueryKeys.all, 'restore-allowed'] }),
    ]),
  });
}
