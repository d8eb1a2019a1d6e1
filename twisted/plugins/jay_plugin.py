"""twistd plugin: ``twistd -n jay [--config FILE]``. Imports nothing from jay until used."""

from twisted.application.service import ServiceMaker

jay = ServiceMaker(
    "jay",
    "jay.tap",
    "S3-compatible object storage with a native binary protocol",
    "jay",
)
