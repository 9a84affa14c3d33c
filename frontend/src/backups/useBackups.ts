/**
 * React Query hooks for the Backups section, modelled on OpenWatch's hooks/useAuditQueries.ts: a query-key
 * factory, queries that poll faster while something runs, and mutations that refresh what they change.
 */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { backupsAdapter, type RunFilters } from './backupsAdapter';
import type { ApiRunPage, ApiStatus } from './types';

/** While a run is queued or running: 3 s; otherwise 30 s. */
export const FAST_POLL_MS = 3000;
export const SLOW_POLL_MS = 30000;

export const backupsQueryKeys = {
  all: ['backups'] as const,
  status: () => [...backupsQueryKeys.all, 'status'] as const,
  runs: () => [...backupsQueryKeys.all, 'runs'] as const,
  runList: (filters?: RunFilters) => [...backupsQueryKeys.runs(), 'list', filters] as const,
  runDetail: (id: string) => [...backupsQueryKeys.runs(), 'detail', id] as const,
};

function anyActive(page: ApiRunPage | undefined): boolean {
  return !!page?.items.some((run) =>
    [run, ...(run.members ?? [])].some((r) => r.status === 'queued' || r.status === 'running')
  );
}

export function useBackupStatus() {
  return useQuery({
    queryKey: backupsQueryKeys.status(),
    queryFn: backupsAdapter.getStatus,
    // Fast also while the newest backup's verify, off-site copy or prune is still to come (live progress).
    refetchInterval: (query) => {
      const data = query.state.data as ApiStatus | undefined;
      return data?.running || data?.live?.active ? FAST_POLL_MS : SLOW_POLL_MS;
    },
  });
}

export function useBackupRuns(filters?: RunFilters) {
  return useQuery({
    queryKey: backupsQueryKeys.runList(filters),
    queryFn: () => backupsAdapter.listRuns(filters),
    refetchInterval: (query) => (anyActive(query.state.data as ApiRunPage | undefined) ? FAST_POLL_MS : SLOW_POLL_MS),
  });
}

export function useBackupRun(runId: string | null) {
  return useQuery({
    queryKey: backupsQueryKeys.runDetail(runId ?? ''),
    queryFn: () => backupsAdapter.getRun(runId as string),
    enabled: !!runId,
  });
}

function useRefreshAll() {
  const queryClient = useQueryClient();
  return () => queryClient.invalidateQueries({ queryKey: backupsQueryKeys.all });
}

/** "Back up now"; resolves with the started run or the one already under way (409). */
export function useStartBackup() {
  const refresh = useRefreshAll();
  return useMutation({ mutationFn: backupsAdapter.startBackup, onSettled: refresh });
}

export function useVerifyBackup() {
  const refresh = useRefreshAll();
  return useMutation({
    mutationFn: ({ runId, deep }: { runId: string; deep?: boolean }) => backupsAdapter.verify(runId, deep),
    onSettled: refresh,
  });
}
