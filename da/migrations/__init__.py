"""Schema revisions of this package's databases, one directory each, run by
storage/migrate.py when they open:

    poster/  the DA poster's record (da/poster.py `PosterStore`: batches, meta)
    local/   the local DA backend's index (da/local.py `LocalDA`: submissions)
"""
