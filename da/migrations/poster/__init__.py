"""The DA poster's record (`PosterStore`): 0001 baseline, the tables as posters wrote them
before migrations (batches, meta)."""
