/**
 * Off-site storage, as the standalone page's card (static/offsite.js): where copies go (bucket, prefix, region,
 * endpoint; never a credential), and "Test connection", which puts, heads, gets and deletes a probe object and
 * lists each step, so a refused permission or a wrong endpoint is found before the nightly copy fails.
 */
import React, { useState } from 'react';
import { Alert, Box, Button, List, ListItem, ListItemText, Typography } from '@mui/material';
import { useMutation } from '@tanstack/react-query';
import { backupsAdapter, errorMessage } from './backupsAdapter';
import type { ApiOffsite, ApiOffsiteTest } from './types';
import { useBackupSettings } from './useBackupSettings';

function Where({ offsite }: { offsite: ApiOffsite }) {
  if (!offsite.configured) {
    return (
      <Typography variant="body2">
        Off-site storage is not configured: set OPENWATCH_BACKUP_S3_BUCKET to copy backups off-site.
      </Typography>
    );
  }
  return (
    <Typography variant="body2">
      Bucket {offsite.bucket}
      {offsite.prefix ? `, prefix ${offsite.prefix}` : ''}
      {offsite.region ? `, region ${offsite.region}` : ''}, endpoint {offsite.endpoint ?? 'AWS S3'}
    </Typography>
  );
}

function Steps({ result }: { result: ApiOffsiteTest }) {
  return (
    <>
      <Alert severity={result.ok ? 'success' : 'error'} role="none" sx={{ my: 1 }}>
        {result.summary}
      </Alert>
      <List dense aria-label="Connection test steps">
        {result.steps.map((step) => (
          <ListItem key={step.name} disableGutters>
            <ListItemText
              primary={`${step.name}: ${step.ok ? 'ok' : 'failed'} (${Math.round(step.seconds * 1000)} ms)`}
              secondary={step.ok ? undefined : `${step.code ? `[${step.code}] ` : ''}${step.error ?? ''}`}
            />
          </ListItem>
        ))}
      </List>
    </>
  );
}

export const OffsitePanel: React.FC<{ onError?: (message: string) => void }> = ({ onError }) => {
  const settings = useBackupSettings();
  const [result, setResult] = useState<ApiOffsiteTest | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const test = useMutation({ mutationFn: backupsAdapter.testOffsite });

  const testConnection = async () => {
    setResult(null);
    setFailure(null);
    try {
      setResult(await test.mutateAsync());
    } catch (error) {
      setFailure(errorMessage(error));
      onError?.(errorMessage(error));
    }
  };

  const offsite = settings.data?.offsite;
  return (
    <Box component="section" aria-labelledby="offsite-title" sx={{ mt: 3 }}>
      <Typography variant="subtitle1" id="offsite-title">
        Off-site storage
      </Typography>
      {offsite && <Where offsite={offsite} />}
      <Button variant="outlined" sx={{ my: 1 }} onClick={() => void testConnection()} disabled={test.isPending}>
        Test connection
      </Button>
      <Box role="status" aria-live="polite">
        {test.isPending && <Typography variant="body2">Testing the connection...</Typography>}
        {failure && <Alert severity="error" role="none">{failure}</Alert>}
        {result && <Steps result={result} />}
      </Box>
    </Box>
  );
};

export default OffsitePanel;
