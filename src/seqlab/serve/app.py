"""``seqlab serve``: a local page to sample from a checkpoint and look inside it (the optional ``serve`` extra).

Starlette + uvicorn on 127.0.0.1; the page's assets live in this package and
load nothing from the network. The HTTP API, usable without the page:

    GET /api/info                  the checkpoint: backbone, vocabulary, which views apply
    GET /api/generate?prompt=...&max_tokens=N&seed=S&temperature=T&top_k=K&top_p=P&num_samples=M
                                   server-sent events: one ``data:`` JSON object per token,
                                   {"token": text, "sample": i, "probability": p}, then an event named ``done``
    GET /api/inspect?text=...      the model reading ``text``: its tokens, the hidden state's path on its top two
                                   principal components, gate values (gated cells), attention maps (Transformer)
    GET /api/status                {"generating": how many generations are running}

A parameter out of range is an HTTP 400 with {"error": "..."} and the server
carries on. Each generation steps in a worker thread, one step at a time, so
several tabs share the model; when a tab closes, its stream is cancelled and
its generation stops at the next step.
"""
from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import SeqlabError
from ..generate import check_sampling, generate_batch

STATIC = Path(__file__).parent / "static"
HOST = "127.0.0.1"
LIMITS = {"max_tokens": (1, 5000), "num_samples": (1, 16), "top_k": (0, 1_000_000), "seed": (0, 2**62)}
MAX_PROMPT_CHARACTERS = 10_000
MAX_INSPECT_TOKENS = 400


def require_serve() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise SeqlabError("seqlab serve needs the serve extra: pip install 'seqlab[serve]'") from None


class BadRequest(Exception):
    """A request parameter the server refuses (HTTP 400)."""


def _number(query: Any, name: str, kind: Callable[[str], Any], default: Any) -> Any:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = kind(text)
    except ValueError:
        raise BadRequest(f"{name} must be a {'whole ' if kind is int else ''}number, got {text!r}") from None
    low, high = LIMITS.get(name, (None, None))
    if low is not None and not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


def _prompt(query: Any, name: str) -> str:
    text = query.get(name, "")
    if len(text) > MAX_PROMPT_CHARACTERS:
        raise BadRequest(f"{name} has {len(text)} characters, more than {MAX_PROMPT_CHARACTERS}")
    return text


def inspect_text(model: torch.nn.Module, tokenizer: Any, text: str) -> dict[str, Any]:
    """What the page draws for ``text``: tokens, the state's 2-D path, gates and attention where they apply."""
    from ..diagnostics.attention import attention_maps, has_attention_maps
    from ..diagnostics.gates import gate_values, has_gates
    from ..diagnostics.reading import read_sequence
    from ..diagnostics.trajectories import state_trajectory

    tokens = tokenizer.encode(text)[-MAX_INSPECT_TOKENS:]
    limit = model.backbone.forward_limit
    if limit is not None:
        tokens = tokens[-limit:]
    if len(tokens) < 2:
        raise BadRequest("text must have at least two tokens to inspect")
    labels = [tokenizer.decode([int(token)]) for token in tokens]
    reading = read_sequence(model, tokens)
    trajectory = state_trajectory(reading.outputs.double().numpy(), labels)
    result: dict[str, Any] = {"tokens": labels, "trajectory": trajectory.projection.round(5).tolist(),
                              "explained": trajectory.explained.round(4).tolist(), "gates": None, "attention": None}
    if has_gates(model.backbone):
        # per layer and gate, the mean over units at each position: (T,) curves
        result["gates"] = [{name: values.mean(dim=1).round(decimals=4).tolist() for name, values in layer.items()}
                           for layer in gate_values(model.backbone, reading)]
    if has_attention_maps(model.backbone):
        maps = attention_maps(model, tokens).maps  # (L, nh, T, T)
        result["attention"] = maps.mean(axis=1).round(4).tolist()  # per layer, averaged over heads
    return result


def create_app(checkpoint: Any) -> Any:
    """The Starlette application around one loaded checkpoint."""
    import anyio
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, StreamingResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    model, tokenizer = checkpoint.model, checkpoint.tokenizer
    model.eval()
    lock = threading.Lock()  # one step at a time on the shared model; tabs interleave step by step
    running = {"count": 0}

    def bad_request(message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=400)

    async def index(request: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html")

    async def info(request: Request) -> JSONResponse:
        from ..diagnostics.attention import has_attention_maps
        from ..diagnostics.gates import has_gates

        return JSONResponse({"checkpoint": str(checkpoint.directory), "task": checkpoint.config.task.name,
                             "backbone": checkpoint.config.model.backbone, "vocab_size": model.vocab_size,
                             "gates": has_gates(model.backbone), "attention": has_attention_maps(model.backbone)})

    async def status(request: Request) -> JSONResponse:
        return JSONResponse({"generating": running["count"]})

    async def generate(request: Request) -> Any:
        query = request.query_params
        try:
            prompt = _prompt(query, "prompt")
            settings = {"max_tokens": _number(query, "max_tokens", int, 200),
                        "temperature": _number(query, "temperature", float, 1.0),
                        "top_k": _number(query, "top_k", int, 0), "top_p": _number(query, "top_p", float, 1.0),
                        "num_samples": _number(query, "num_samples", int, 1)}
            seed = _number(query, "seed", int, None)
            check_sampling(**settings)
            tokenizer.encode(prompt)  # a prompt the tokenizer refuses is refused here, before the stream starts
        except (BadRequest, SeqlabError) as error:
            return bad_request(str(error))
        steps = generate_batch(model, tokenizer, prompt, seed=seed, **settings)

        def next_step() -> Any:
            with lock:
                return next(steps, None)

        async def events() -> Any:
            running["count"] += 1
            try:
                while (step := await anyio.to_thread.run_sync(next_step)) is not None:
                    for sample, (text, probability) in enumerate(zip(step.texts, step.probabilities)):
                        if text:
                            payload = {"token": text, "sample": sample, "probability": round(probability, 4)}
                            yield f"data: {json.dumps(payload)}\n\n"
                yield "event: done\ndata: {}\n\n"
            finally:  # also when the client has gone: the stream is cancelled and the generator closed
                running["count"] -= 1
                steps.close()

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    async def inspect(request: Request) -> JSONResponse:
        try:
            text = _prompt(request.query_params, "text")

            def read() -> dict[str, Any]:
                with lock:
                    return inspect_text(model, tokenizer, text)

            return JSONResponse(await anyio.to_thread.run_sync(read))
        except (BadRequest, SeqlabError) as error:
            return bad_request(str(error))

    routes = [Route("/", index), Route("/api/info", info), Route("/api/status", status),
              Route("/api/generate", generate), Route("/api/inspect", inspect),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    return Starlette(routes=routes)


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:port, or one line saying the port is taken."""
    if not 0 <= port <= 65535:
        raise SeqlabError(f"--port must be between 0 and 65535, got {port}")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind((HOST, port))
    except OSError as error:
        listener.close()
        raise SeqlabError(f"cannot listen on {HOST}:{port} ({error.strerror}); give another --port") from None
    listener.listen()
    return listener


def serve(checkpoint_directory: str | Path, *, port: int = 8000) -> None:
    """Serve the explorer for a checkpoint on 127.0.0.1:port until interrupted."""
    from ..train.checkpoint import load_checkpoint

    require_serve()
    listener = bind(port)  # first, so a taken port is reported at once
    try:
        checkpoint = load_checkpoint(checkpoint_directory)
        if checkpoint.config.task.name not in ("lm", "music"):
            raise SeqlabError(f"seqlab serve samples from language models; checkpoint {checkpoint_directory} holds a "
                              f"{checkpoint.config.task.name!r} task")
    except SeqlabError:
        listener.close()
        raise
    import uvicorn

    print(f"seqlab explorer on http://{HOST}:{listener.getsockname()[1]}/ (Ctrl-C stops it)", flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(checkpoint), log_level="warning"))
    server.run(sockets=[listener])
