"""The local DA backend's index (`LocalDA`): 0001 baseline, the submissions table as
`PRAGMA user_version = 1` had it before migrations."""
