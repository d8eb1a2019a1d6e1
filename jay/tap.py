"""twistd entry point: ``twistd -n jay [--config FILE]``.

Configuration is loaded and validated here, before any port opens; a bad setting prints one
clear line on stderr and exits with status 1.
"""

from __future__ import annotations

import os
import sys

from twisted.application.service import IService
from twisted.python import usage

from jay import __version__


class Options(usage.Options):
    synopsis = "[--config FILE]"
    longdesc = (
        "Run jay, an S3-compatible object store with a native binary protocol. Every setting can "
        "also come from JAY_* environment variables (they win over the file)."
    )
    optParameters = [
        ["config", "c", None, "YAML configuration file (default: $JAY_CONFIG_FILE, else none)."],
        ["config-file", None, None, "Alias of --config."],
        [
            "worker",
            None,
            None,
            "Internal: run as one worker process of a supervisor (workers > 1).",
        ],
    ]

    def opt_version(self) -> None:
        print(f"jay {__version__}")
        sys.exit(0)


def makeService(options: Options) -> IService:
    from twisted.internet import reactor

    from jay.config.generated import ensure_secrets
    from jay.config.loader import config_path_from, load_config
    from jay.errors import ConfigError
    from jay.logs import make_observer
    from jay.service import build_service
    from jay.storage.libc import tune_allocator
    from jay.workers import WorkerRole, WorkerSupervisor

    environ = dict(os.environ)
    # Before the service allocates its first body buffer (serving processes; harmless in a
    # supervisor).
    tune_allocator(environ)
    path = config_path_from(options["config"] or options["config-file"], environ)
    try:
        config = ensure_secrets(load_config(path, environ))
        if options["worker"]:
            return build_service(config, reactor, WorkerRole.from_json(options["worker"]))
        if config.worker_count > 1:
            # This process supervises; the workers serve (jay/workers.py).
            return WorkerSupervisor(
                config,
                os.path.abspath(path) if path else None,
                reactor=reactor,
                log_observer=make_observer(config.log_level, config.log_format),
            )
        return build_service(config, reactor)
    except ConfigError as e:
        sys.stderr.write(f"jay: configuration error: {e.message}\n")
        sys.stderr.flush()
        raise SystemExit(1) from None
