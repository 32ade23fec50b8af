"""`python -m gateway.export_schema [PATH]`: write the served schema's SDL (default:
gateway/schema.graphql, which tests/gateway/test_contract.py keeps in step)."""

from __future__ import annotations

import sys
from pathlib import Path

from gateway.schema import build_schema
from gateway.settings import GatewaySettings

DEFAULT_PATH = Path(__file__).resolve().parent / "schema.graphql"


def served_sdl() -> str:
    return build_schema(GatewaySettings()).as_str().rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_PATH
    path.write_text(served_sdl(), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
