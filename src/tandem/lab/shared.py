"""Where the project's reference material lives: ``shared/`` beside the repository.

CI clones the repository into a fresh folder with a copy of ``shared/`` next to it, so paths
are found relative to the checkout, never as absolute paths; ``TANDEM_SHARED`` overrides.
"""

from __future__ import annotations

import os
from pathlib import Path

from tandem.lab.servers import repo_root


def shared_dir() -> Path:
    env = os.environ.get("TANDEM_SHARED")
    return Path(env) if env else repo_root().parent / "shared"


#: Captures and lease files of a real ISC dhcpd 4.4.3 failover pair.
VECTORS = shared_dir() / "vectors" / "isc-dhcpd-pair"
