"""`openwatch-backup recover --from s3|DIR`: from a bare host to a running OpenWatch (issue 13, item 1)."""
