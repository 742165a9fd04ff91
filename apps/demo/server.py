"""Serving the page: where it listens (this machine only unless told otherwise), its upload limit and
the one folder it may serve files from; `python -m apps.demo` starts here."""

from __future__ import annotations

import argparse

from apps.demo.layout import CSS, build_demo
from apps.demo.limits import MAX_UPLOAD
from apps.demo.picks import preference_folder, set_preference_folder
from apps.demo.service import runs_dir
from t2i_guidance.registries import DEFAULT_PRESET, available_presets


def launch(demo, host: str = "127.0.0.1", port: int = 7860, **kwargs):
    return demo.launch(server_name=host, server_port=port, max_file_size=MAX_UPLOAD, css=CSS,
                       allowed_paths=[str(runs_dir())], **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m apps.demo", description="t2i-guidance demo")
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"one of {', '.join(available_presets())}")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--preferences", default=str(preference_folder()),
                        help="folder on this machine where the artist's picks are kept, when they tick "
                             "'keep my picks' (default: %(default)s)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    set_preference_folder(args.preferences)
    launch(build_demo(args.preset), args.host, args.port)
