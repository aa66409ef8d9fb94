"""`vigil console [--port N] [--host 127.0.0.1] [--stack NAME]`: mounted by vigil_cli.main
(``register(app)``)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from vigil_cli import safe
from vigil_cli.stack import resolve
from vigil_console.app import App
from vigil_console.backend import Backend
from vigil_console.security import Guard, is_loopback
from vigil_console.server import ConsoleServer

err = safe.console(stderr=True)
TOKEN_ENV = "VIGIL_CONSOLE_TOKEN"  # a fixed token (scripts, screenshots); else a random one per start


def console(
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port (0: any free port)")] = 8765,
    host: Annotated[
        str, typer.Option("--host", help="address to listen on (loopback only, unless --allow-remote)")
    ] = "127.0.0.1",
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="allow a non-loopback --host (anyone who can reach it and has the token acts with your AWS credentials)",
        ),
    ] = False,
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack", metavar="NAME", help="CloudFormation stack name (default: the running offline stack)"
        ),
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="AWS region of the stack")] = None,
    endpoint_url: Annotated[
        str | None, typer.Option("--endpoint-url", metavar="URL", help="AWS endpoint override")
    ] = None,
) -> None:
    """Serve the web console (findings, summary, coverage, usage, rules, response) on loopback."""
    if not is_loopback(host):
        if not allow_remote:
            err.print(
                f"[red]error:[/] --host {safe.markup(host)} is not a loopback address; the console acts with "
                "your AWS credentials. Use an SSH tunnel, or pass --allow-remote if you must.",
                highlight=False,
            )
            raise typer.Exit(2)
        err.print(
            f"[bold yellow]warning:[/] listening on {safe.markup(host)}: anyone who can reach it and has the "
            "token acts on the stack with your credentials (no TLS).",
            highlight=False,
        )
    target = resolve(stack, region, endpoint_url)
    try:
        server = ConsoleServer(host, port)
    except OSError as exc:
        err.print(
            f"[red]error:[/] cannot listen on {safe.markup(host)}:{port}: {safe.markup(exc)}", highlight=False
        )
        raise typer.Exit(1) from None
    token = os.environ.get(TOKEN_ENV) or None
    guard = Guard(server.port, host, token) if token else Guard(server.port, host)
    label = stack or ("offline stack" if target.offline else "")
    server.app = App(Backend(target), guard, stack_label=label)
    shown = f"[{host}]" if ":" in host else host
    err.print(f"Vigil console for {safe.markup(label or target.region)}; Ctrl-C stops it.", highlight=False)
    # the URL goes to stdout alone on its line, as Jupyter prints it (scripts read it)
    print(f"http://{shown}:{server.port}/?token={guard.token}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def register(app: typer.Typer) -> None:
    from vigil_cli import plainhelp

    app.command("console", cls=plainhelp.Command)(console)
