/** The recorded answers, typed: each file is {method, path, status, body} as scripts/record_fixtures.py saved it. */
import type { ApiCronPreview, ApiRun, ApiRunPage, ApiSettings, ApiStatus } from '../backups/types';
import type { Recorded } from './server';
import postRuns202 from './fixtures/post_runs_202.json';
import postRuns409 from './fixtures/post_runs_409.json';
import postVerify202 from './fixtures/post_verify_202.json';
import runBackup from './fixtures/run_backup.json';
import runBackupVerifyFailed from './fixtures/run_backup_verify_failed.json';
import runSet from './fixtures/run_set.json';
import runsSets from './fixtures/runs_sets.json';
import runsSetsRunning from './fixtures/runs_sets_running.json';
import status from './fixtures/status.json';
import status401 from './fixtures/status_401.json';
import statusRunning from './fixtures/status_running.json';
import statusLiveDumping from './fixtures/status_live_dumping.json';
import statusLiveVerified from './fixtures/status_live_verified.json';
// Written from the API's own code without a running stack (scripts/write_settings_fixtures.py): SettingsOut built by
// the pydantic model with retention_limits(), cron_preview() answers, and the 422 that api/errors.py words.
import settings from './fixtures/settings.json';
import settingsPut200 from './fixtures/settings_put_200.json';
import settingsPut422 from './fixtures/settings_put_422.json';
import cronPreviewDaily from './fixtures/cron_preview_daily.json';
import cronPreviewSunday from './fixtures/cron_preview_sunday.json';
import cronPreviewWeekdays from './fixtures/cron_preview_weekdays.json';
import cronPreview400 from './fixtures/cron_preview_400.json';
// Written from the API's own code without a running stack (scripts/write_prune_fixtures.py): plan_retention()'s plan in
// a prune RunOut, the queued apply, and conflict()'s 409.
import prunePlan from './fixtures/prune_plan.json';
import pruneApply202 from './fixtures/prune_apply_202.json';
import pruneApply409 from './fixtures/prune_apply_409.json';
// Written from the API's own code without a running stack (scripts/write_offsite_fixtures.py): settings with OffsiteOut
// configured, OffsiteTestOut from a ProbeResult (passed; put refused), and the 422 of required_offsite(None).
import settingsOffsite from './fixtures/settings_offsite.json';
import offsiteTestOk from './fixtures/offsite_test_ok.json';
import offsiteTestFailed from './fixtures/offsite_test_failed.json';
import offsiteTest422 from './fixtures/offsite_test_422.json';
// Written from the API's own models without a running stack (scripts/write_config_fixtures.py): ConfigOut with and
// without a passphrase, POST config/backup's 202, 409 (conflict()) and 422 (require_passphrase()).
import config from './fixtures/config.json';
import configNoPassphrase from './fixtures/config_no_passphrase.json';
import configBackup202 from './fixtures/config_backup_202.json';
import configBackup409 from './fixtures/config_backup_409.json';
import configBackup422 from './fixtures/config_backup_422.json';

export const fixtures = {
  postRuns202,
  postRuns409,
  postVerify202,
  runBackup,
  runBackupVerifyFailed,
  runSet,
  runsSets,
  runsSetsRunning,
  status,
  status401,
  statusRunning,
  statusLiveDumping,
  statusLiveVerified,
  settings,
  settingsPut200,
  settingsPut422,
  cronPreviewDaily,
  cronPreviewSunday,
  cronPreviewWeekdays,
  cronPreview400,
  prunePlan,
  pruneApply202,
  pruneApply409,
  settingsOffsite,
  offsiteTestOk,
  offsiteTestFailed,
  offsiteTest422,
  config,
  configNoPassphrase,
  configBackup202,
  configBackup409,
  configBackup422,
} satisfies Record<string, Recorded>;

export const statusBody = (f: Recorded) => f.body as ApiStatus;
export const pageBody = (f: Recorded) => f.body as ApiRunPage;
export const runBody = (f: Recorded) => f.body as ApiRun;
export const settingsBody = (f: Recorded) => f.body as ApiSettings;
export const previewBody = (f: Recorded) => f.body as ApiCronPreview;
