"""`make audit`'s dependency check: pip-audit on the pinned requirements, with a verdict CI can trust.

pip-audit asks PyPI's JSON API for each package's advisories. Where that API cannot be
reached (an offline machine or a mirror-only network) it marks every package as "not
audited" and still says "No known vulnerabilities found": this script says instead that
no verdict was possible, and exits 0 so such a machine's CI is not blocked. Any known
vulnerability fails (exit 1) unless it is listed in IGNORED with the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REQUIREMENTS = ["requirements/base.txt", "requirements/dev.txt"]
# Vulnerability id -> why it does not apply to us. Empty: nothing is ignored.
IGNORED: dict[str, str] = {}


def main() -> int:
    with tempfile.TemporaryDirectory() as directory:
        report_path = Path(directory) / "report.json"
        command = [sys.executable, "-m", "pip_audit", "--disable-pip", "--no-deps", "--progress-spinner", "off",
                   "--format", "json", "--output", str(report_path)]  # fmt: skip
        for requirement in REQUIREMENTS:
            command += ["-r", requirement]
        for vuln_id in IGNORED:
            command += ["--ignore-vuln", vuln_id]
        run = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if not report_path.exists():
            sys.stdout.write(f"pip-audit did not run:\n{run.stderr}\n")
            return 1
        report = json.loads(report_path.read_text())
    dependencies = report.get("dependencies", [])
    skipped = [d for d in dependencies if d.get("skip_reason")]
    vulnerable = [d for d in dependencies if d.get("vulns")]
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            sys.stdout.write(
                f"VULNERABLE {dependency['name']}=={dependency['version']}: {vuln['id']} (fixed in {fixes})\n"
            )
    audited = len(dependencies) - len(skipped)
    if vulnerable:
        sys.stdout.write(f"pip-audit: {len(vulnerable)} of {audited} audited packages have known vulnerabilities.\n")
        return 1
    if dependencies and audited == 0:
        sys.stdout.write(
            f"pip-audit: NO VERDICT - the vulnerability database could not be reached from this machine, so none of "
            f"the {len(dependencies)} pinned packages was audited (first reason: {skipped[0]['skip_reason']}). "
            "Run `make audit` where PyPI's JSON API is reachable.\n"
        )
        return 0
    sys.stdout.write(f"pip-audit: no known vulnerabilities in {audited} audited packages.\n")
    for dependency in skipped:
        sys.stdout.write(f"  not audited: {dependency['name']} ({dependency['skip_reason']})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
