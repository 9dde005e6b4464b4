"""Start-up: CPU before the first request, and to import the package and build a tagger.

Each figure in a fresh interpreter (median of a few runs), as CPU time of that process
(``time.process_time``, interpreter start-up included):

- ``import vibe_jet_tagging`` plus ``JetTagger(...)`` (few_shot, a server URL, no cache): what a
  notebook pays before its first jet (target < 1 s);
- ``vjt tag sample --limit 1`` against an emulated server (in its own process): the CPU the
  command has spent when it sends its first chat request (the bytes of ``POST
  .../chat/completions`` leaving a socket; target < 1.5 s).

Also the modules each imported by then, for the heavy stacks that should wait until used
(tracing, ``openai.types``, the report stack).

    python benchmarks/startup.py [--quick]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Any

from _common import parser, save, table

from vibe_jet_tagging.emulator import EmulatedServer

BUILD_TARGET_S = 1.0
FIRST_REQUEST_TARGET_S = 1.5
WATCHED = (
    "langchain_core.tracers",
    "langsmith",
    "openai.types.responses",
    "openai.types.beta",
    "matplotlib",
    "sklearn",
    "vibe_jet_tagging.evaluation",
)

_BUILD = """
import json, sys, time
import vibe_jet_tagging
from vibe_jet_tagging import JetTagger
imported = time.process_time()
tagger = JetTagger("openai/gpt-oss-120b", base_url=sys.argv[1], cache=None)
built = time.process_time()
print(json.dumps({"import_s": imported, "build_s": built, "modules": sorted(sys.modules)}))
"""

_FIRST = """
import json, os, socket, sys, time
def first_chat(data):
    if "VJT_FIRST" not in os.environ and bytes(data[:40]).startswith(b"POST ") and (
        b"/chat/completions" in bytes(data[:200])
    ):
        os.environ["VJT_FIRST"] = "1"
        print("FIRST " + json.dumps({"cpu_s": time.process_time(), "modules": sorted(sys.modules)}),
              file=sys.stderr, flush=True)
for name in ("send", "sendall"):
    original = getattr(socket.socket, name)
    def patched(self, data, *args, _original=original):
        first_chat(data)
        return _original(self, data, *args)
    setattr(socket.socket, name, patched)
from vibe_jet_tagging.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run(code: str, *args: str, env: dict[str, str]) -> tuple[dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    for line in (proc.stdout + "\n" + proc.stderr).splitlines():
        if line.startswith("{"):
            return json.loads(line), proc.stderr
        if line.startswith("FIRST "):
            return json.loads(line.removeprefix("FIRST ")), proc.stderr
    raise RuntimeError(f"no figure from the child: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")


def watched(modules: list[str]) -> list[str]:
    return sorted({w for w in WATCHED for m in modules if m == w or m.startswith(w + ".")})


def main(quick: bool) -> list[dict[str, Any]]:
    runs = 2 if quick else 5
    rows = []
    with EmulatedServer(process=True) as server, tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "VJT_CACHE_DIR": f"{folder}/cache",
            "VJT_KEY_FILE": f"{folder}/key",
            "VJT_CONFIG": f"{folder}/none.toml",
        }
        builds = [run(_BUILD, server.base_url, env=env)[0] for _ in range(runs)]
        total = statistics.median(b["build_s"] for b in builds)
        rows.append(
            {
                "what": "import vibe_jet_tagging + JetTagger(...)",
                "cpu_s": total,
                "import_s": statistics.median(b["import_s"] for b in builds),
                "target_s": BUILD_TARGET_S,
                "met": total < BUILD_TARGET_S,
                "heavy_imported": watched(builds[0]["modules"]),
            }
        )
        args = ["tag", "sample", "--limit", "1", "--base-url", server.base_url]
        firsts = []
        for i in range(runs):
            out = ["-o", f"{folder}/out-{i}.jsonl", "--no-cache"]
            firsts.append(run(_FIRST, *args, *out, env=env)[0])
        cpu = statistics.median(f["cpu_s"] for f in firsts)
        rows.append(
            {
                "what": "vjt tag sample --limit 1: CPU before its first request",
                "cpu_s": cpu,
                "import_s": None,
                "target_s": FIRST_REQUEST_TARGET_S,
                "met": cpu < FIRST_REQUEST_TARGET_S,
                "heavy_imported": watched(firsts[0]["modules"]),
            }
        )
    return rows


if __name__ == "__main__":
    args = parser(__doc__.splitlines()[0]).parse_args()
    rows = main(args.quick)
    print(
        table(
            ["what", "CPU [s]", "of it imports [s]", "target [s]", "met", "heavy stacks imported"],
            [
                [
                    r["what"],
                    r["cpu_s"],
                    "" if r["import_s"] is None else r["import_s"],
                    f"< {r['target_s']}",
                    "yes" if r["met"] else "no",
                    ", ".join(r["heavy_imported"]) or "-",
                ]
                for r in rows
            ],
        )
    )
    print(f"results: {save('startup', {'runs': 2 if args.quick else 5}, rows)}")
