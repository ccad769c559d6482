"""The `aigate` command: the same gates on a laptop and in any CI pipeline.

Exit codes are a contract CI relies on: 0 the decision is PASS, 1 FAIL, 2 invalid input or an error
that kept the gates from running.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from aigate import __version__
from aigate.api.errors import UsageError, WorkloadError
from aigate.console import TerminalProgress

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _write_output(text: str, output: str | None) -> None:
    if output is None or output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"--output {output}: cannot write: {e.strerror or e}") from None


def _endpoint_overrides(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, url = item.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise UsageError(f"--endpoint {item!r}: expected MODEL_NAME=http(s)://host:port")
        out[name] = url
    return out


def cmd_check(args: argparse.Namespace) -> int:
    from aigate.api.load import load_and_resolve
    from aigate.api.policy import load_policies
    from aigate.pipeline import CheckOptions, check_exit_code, run_check
    from aigate.policy.governance import PlatformDefault, effective, violations
    from aigate.report import render

    resolved = load_and_resolve(args.file)
    # as in a cluster: every policy given (the CLI knows no namespace labels), the platform default for the rest
    policy = effective(load_policies(args.policy, any_namespace=True) if args.policy else [], {}, PlatformDefault())
    refused = violations(resolved.workload, policy)
    if refused:
        for line in refused:
            _stderr(f"policy violation: {line}")
        return EXIT_FAIL
    progress = None if args.quiet else TerminalProgress(sys.stderr)
    opts = CheckOptions(
        environ=dict(os.environ),
        sign_key=Path(args.sign_key) if args.sign_key else None,
        evidence_out=Path(args.evidence_out) if args.evidence_out else None,
        endpoint_overrides=_endpoint_overrides(args.endpoint or []),
        concurrency=args.concurrency,
        progress=progress,
        policy=policy,
    )
    try:
        assessment = asyncio.run(run_check(resolved, opts))
    except WorkloadError as e:  # a reference or credential the file names: say which file
        raise WorkloadError(e.message, source=e.source or args.file) from None
    finally:
        if progress is not None:
            progress.close()
    _write_output(render(assessment, args.format, source=args.file), args.output)
    if assessment.evidence is not None and assessment.evidence.path and not args.quiet:
        _stderr(f"evidence written to {assessment.evidence.path}")
    return check_exit_code(assessment)


def cmd_report(args: argparse.Namespace) -> int:
    """Render signed evidence alone; verified first when --key is given (refused, exit 1, when it does not hold)."""
    from aigate.report.html import render_evidence_file

    code, text, message = render_evidence_file(
        Path(args.evidence), Path(args.key) if args.key else None, Path(args.workload) if args.workload else None
    )
    if code != EXIT_PASS:
        _stderr(message)
        return code
    _write_output(text, args.output)
    if not args.quiet:
        _stderr(message)
    return EXIT_PASS


def cmd_demo(args: argparse.Namespace) -> int:
    from aigate.demo import run_demo

    return run_demo(quiet=args.quiet, fmt=args.format, html_dir=Path(args.html_dir) if args.html_dir else None)


def cmd_simulate(args: argparse.Namespace) -> int:
    from aigate.simulator import serve

    return serve(args.profile, args.host, args.port, args.quiet)


def cmd_crd(args: argparse.Namespace) -> int:
    from aigate.api.crd import render_crd, render_policy_crd

    sys.stdout.write(render_policy_crd() if args.policy else render_crd())
    return EXIT_PASS


def cmd_digest(args: argparse.Namespace) -> int:
    from aigate.api.digest import canonical_spec, spec_digest
    from aigate.api.load import load_and_resolve

    resolved = load_and_resolve(args.file)
    if args.canonical_out:
        try:
            Path(args.canonical_out).write_bytes(canonical_spec(resolved))
        except OSError as e:
            raise UsageError(f"--canonical-out {args.canonical_out}: cannot write: {e.strerror or e}") from None
    print(spec_digest(resolved))
    return EXIT_PASS


def cmd_keygen(args: argparse.Namespace) -> int:
    from aigate.evidence.keys import write_keypair

    priv, pub = write_keypair(Path(args.out), args.type)
    print(f"private key: {priv} (mode 0600; keep it secret)")
    print(f"public key:  {pub}")
    return EXIT_PASS


def cmd_verify(args: argparse.Namespace) -> int:
    from aigate.pipeline import verify_file

    code, message = verify_file(Path(args.evidence), Path(args.key), Path(args.workload) if args.workload else None)
    (print if code == EXIT_PASS else _stderr)(message)
    return code


def cmd_run_gates(args: argparse.Namespace) -> int:
    """The gate Job's entry point (the operator starts it; not meant for people)."""
    from aigate.rungates import run_gates

    return run_gates(
        args.namespace,
        args.input,
        args.result,
        args.spec_digest,
        args.run_id,
        environ=dict(os.environ),
        progress=None if args.quiet else _stderr,
        canary=args.canary,
    )


def cmd_operator(args: argparse.Namespace) -> int:
    from aigate.controller.handlers import run_operator
    from aigate.kube.config import from_env

    return run_operator(from_env())


def cmd_webhook(args: argparse.Namespace) -> int:
    from aigate.webhook.server import run_webhook, settings_from_env

    return run_webhook(settings_from_env())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aigate",
        description="Test AI workloads before release: cost, reliability, fallback, tool control, provider "
        "dependency and signed evidence.",
    )
    p.add_argument("--version", action="version", version=f"aigate {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("check", help="run the gates on a workload file and print the readiness report")
    c.add_argument("file", help="AIWorkload YAML (may carry its ConfigMaps as further documents)")
    c.add_argument("--format", choices=["text", "json", "junit", "markdown", "html", "sarif"], default="text")
    c.add_argument("--output", "-o", help="write the report here instead of stdout")
    c.add_argument("--sign-key", help="sign the evidence with this private key (PEM)")
    c.add_argument("--evidence-out", help="where to write the signed evidence (default: <name>.evidence.json)")
    c.add_argument(
        "--endpoint", action="append", metavar="MODEL=URL", help="override spec.models[].endpoint (repeatable)"
    )
    c.add_argument("--concurrency", type=int, help="override the test concurrency")
    c.add_argument(
        "--policy",
        action="append",
        metavar="FILE",
        help="judge under the AIGatePolicy documents in FILE (repeatable; every policy given applies, whatever "
        "namespaces it selects): a workload they refuse fails, and the evidence records them; the platform "
        "default (enforcement enforce, validity at most 720h) applies to what none of them sets, as without "
        "--policy",
    )
    c.add_argument(
        "--quiet", "-q", action="store_true", help="no progress on stderr (a bar per phase on a terminal, else lines)"
    )
    c.set_defaults(func=cmd_check)

    d = sub.add_parser("demo", help="check the built-in failing and remediated examples against the simulator")
    d.add_argument("--format", choices=["text", "json", "junit", "markdown"], default="text")
    d.add_argument("--html-dir", help="write both workloads' HTML reports here (default: aigate-demo-reports/)")
    d.add_argument("--quiet", "-q", action="store_true")
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("simulate", help="serve the LLM API simulator (OpenAI and Anthropic wire formats)")
    s.add_argument("--profile", required=True, help="simulator profile YAML")
    s.add_argument("--port", type=int, default=8788)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--quiet", "-q", action="store_true")
    s.set_defaults(func=cmd_simulate)

    r = sub.add_parser("crd", help="print the AIWorkload CustomResourceDefinition")
    r.add_argument("--policy", action="store_true", help="the AIGatePolicy CustomResourceDefinition instead")
    r.set_defaults(func=cmd_crd)

    g = sub.add_parser("digest", help="print a workload's spec digest")
    g.add_argument("file")
    g.add_argument("--canonical-out", help="write the canonical spec bytes the digest is taken over")
    g.set_defaults(func=cmd_digest)

    k = sub.add_parser("keygen", help="write an evidence signing key pair")
    k.add_argument("--out", required=True, help="directory for aigate.key and aigate.pub")
    k.add_argument("--type", choices=["ecdsa-p256", "ed25519"], default="ecdsa-p256")
    k.set_defaults(func=cmd_keygen)

    v = sub.add_parser("verify", help="verify a signed evidence package offline")
    v.add_argument("evidence")
    v.add_argument("--key", required=True, help="public key (PEM)")
    v.add_argument("--workload", help="also check the evidence is for this workload file's current spec")
    v.set_defaults(func=cmd_verify)

    rp = sub.add_parser("report", help="render a signed evidence package as a readiness report (HTML)")
    rp.add_argument("evidence", help="the evidence file (a DSSE envelope or Sigstore bundle)")
    rp.add_argument("--format", choices=["html"], default="html")
    rp.add_argument("--key", help="public key (PEM): verify the evidence first and say so in the report")
    rp.add_argument("--workload", help="with --key: also check the evidence is for this workload file's current spec")
    rp.add_argument("--output", "-o", help="write the report here instead of stdout")
    rp.add_argument("--quiet", "-q", action="store_true", help="no line on stderr saying what was verified")
    rp.set_defaults(func=cmd_report)

    j = sub.add_parser("run-gates", help="(gate Job) measure an AIWorkload in the cluster and write the result")
    j.add_argument("--namespace", required=True, help="the gate namespace the Job runs in")
    j.add_argument("--input", required=True, help="the ConfigMap holding the resolved spec")
    j.add_argument("--result", required=True, help="the ConfigMap to write the result to")
    j.add_argument("--spec-digest", required=True, help="the digest the operator started this run for")
    j.add_argument("--run-id", required=True)
    j.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    j.add_argument(
        "--canary", action="store_true", help="a canary after launch: the input's canary cases once per model path"
    )
    j.set_defaults(func=cmd_run_gates)
    o = sub.add_parser(
        "operator",
        help="run the Kubernetes operator (settings from AIGATE_* environment variables; see the chart)",
    )
    o.set_defaults(func=cmd_operator)
    w = sub.add_parser(
        "webhook",
        help="serve the admission webhooks, apart from the operator (the same AIGATE_* settings; see the chart)",
    )
    w.set_defaults(func=cmd_webhook)
    return p


def _fail(msg: str, code: int = EXIT_ERROR) -> NoReturn:
    _stderr(f"aigate: error: {msg}")
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        code: int = args.func(args)
        return code
    except WorkloadError as e:
        _fail(str(e))
    except UsageError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        _stderr("aigate: interrupted")
        return 130
    except Exception as e:  # a bug of ours: one line for the user, the traceback on request
        if os.environ.get("AIGATE_DEBUG"):
            raise
        from aigate.redact import redact

        _fail(f"internal error: {type(e).__name__}: {redact(str(e))} (set AIGATE_DEBUG=1 for the traceback)")


if __name__ == "__main__":
    sys.exit(main())
