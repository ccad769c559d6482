"""The LLM API simulator: OpenAI Chat Completions and Responses (and Azure OpenAI's), and Anthropic Messages
over real HTTP, scripted per model from a YAML profile, so aigate's gates can be exercised with no key
and no network."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aigate.simulator.profile import ProfileError, SimProfile, load_profile

__all__ = ["ProfileError", "SimProfile", "load_profile", "serve"]


def serve(profile_path: str | Path, host: str = "127.0.0.1", port: int = 8788, quiet: bool = False) -> int:
    """`aigate simulate`: serve until SIGINT or SIGTERM and return 0; a bad profile or a port that cannot be
    bound is one line on stderr and 2."""
    import uvicorn

    from aigate.simulator.server import bind, build_app, server_config, url_of

    try:
        profile = load_profile(profile_path)
    except ProfileError as e:
        print(f"aigate simulate: {e}", file=sys.stderr)
        return 2
    try:
        sock = bind(host, port)
    except OSError as e:
        print(f"aigate simulate: cannot listen on {url_of(host, port)}: {e.strerror or e}", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    config = server_config(build_app(profile))
    server = uvicorn.Server(config)

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started and not quiet:
            names = ", ".join(profile.models)
            print(f"aigate simulator listening on {url_of(host, port)} (models: {names})", flush=True)
        await task

    factory = getattr(config, "get_loop_factory", lambda: None)()
    with _stop_on_signals(server), asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())
    sock.close()
    return 0


@contextlib.contextmanager
def _stop_on_signals(server: Any) -> Iterator[None]:
    """SIGINT/SIGTERM ask uvicorn to stop (a second one forces it), and nothing is re-raised afterwards:
    stopping the simulator is its normal end. uvicorn installs its own handlers only on the main thread,
    where it would re-raise the signal after shutdown; it is told not to by handling them here first."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: object) -> None:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    server.capture_signals = contextlib.nullcontext
    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)
