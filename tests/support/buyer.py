"""Store test child process: runs actionsets against a database from a separate OS process.

    python tests/support/buyer.py URL SITE_TOML ACTION CONTACT COUNT KEY_PREFIX GO_FILE
                    [--params JSON] [--pause-at STEP] [--same-key]

Waits until GO_FILE exists (so every process starts together), runs COUNT actionsets with keys
KEY_PREFIX-0, KEY_PREFIX-1, ... (or KEY_PREFIX every time with --same-key), and prints one JSON
line per finished run. With --pause-at N, the second run stops before its step N, prints
``paused KEY`` and sleeps, so a test can SIGKILL it while that run's transaction is open.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from shortcodes.membership.config import load_config_file
from shortcodes.membership.steps import Step
from shortcodes.store import Actor, Store


def main() -> int:
    """Parse arguments, wait for the start signal, run the purchases."""
    parser = argparse.ArgumentParser()
    for name in ("url", "site", "action", "contact", "count", "key_prefix", "go_file"):
        parser.add_argument(name)
    parser.add_argument("--params", default="{}")
    parser.add_argument("--pause-at", type=int)
    parser.add_argument("--same-key", action="store_true")
    args = parser.parse_args()
    with Store.from_url(args.url, site=load_config_file(args.site).actions, pool_size=1) as store:
        store.get_tag("Gold")  # connect and warm up before the start signal
        print("ready", flush=True)
        deadline = time.monotonic() + 120
        while not Path(args.go_file).exists():
            if time.monotonic() > deadline:
                return 3
            time.sleep(0.002)
        for n in range(int(args.count)):
            key = args.key_prefix if args.same_key else f"{args.key_prefix}-{n}"
            result = store.run_actionset(
                args.action,
                args.contact,
                json.loads(args.params),
                key,
                Actor("visitor", args.contact),
                step_hook=_pause(key, args.pause_at) if n == 1 and args.pause_at else None,
            )
            line = {"key": key, "outcome": result.outcome, "replayed": result.replayed}
            print(json.dumps(line | {"run_id": result.run_id}), flush=True)
    return 0


def _pause(key: str, at: int) -> Callable[[int, Step | None], None]:
    def hook(index: int, step: Step | None) -> None:
        if index == at:
            print(f"paused {key}", flush=True)
            time.sleep(60)  # the test kills the process during this sleep

    return hook


if __name__ == "__main__":
    sys.exit(main())
