"""Background maintenance over the storage service: scrubber, GC, backups (JAY_SPEC §7).

Every pass is bounded and resumable, runs on an injected clock, and does its disk and database
work in the storage pools, never on the reactor thread.
"""
