"""Run the local OpenAI-compatible LLM stand-in on its own: ``python examples/llm_standin.py``.

Point any ``openai`` client at it (``OPENAI_BASE_URL=http://127.0.0.1:8001/v1``, any
``OPENAI_API_KEY``). It answers chat completions — plain and streamed — by quoting the first
numbered passage (``[1] ...``) of the prompt. It listens on loopback only. The example
service starts one in-process when no real endpoint is configured; run this one to share a
stand-in between processes or to poke at it with curl.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from otel_rerank.demo import LLMStandIn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--delay", type=float, default=0.0, help="simulated seconds per reply")
    args = parser.parse_args(argv)
    try:
        standin = LLMStandIn(args.host, args.port, delay_s=args.delay)
    except (ValueError, OSError) as exc:
        print(f"llm_standin: error: {exc}", file=sys.stderr)
        return 2
    print(f"OPENAI_BASE_URL={standin.base_url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        standin.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
