"""`openwatch-backup adopt DIR`: take over the backups the guide's own script wrote (issue 13, item 4)."""
