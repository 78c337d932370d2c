"""Offline episodes: shard writer and reader, collection, replay sampler, summaries."""
